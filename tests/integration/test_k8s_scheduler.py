#!/usr/bin/python3
"""Integration test of the `kubernetes` scheduler against a FAKE API server.

There is no Kubernetes cluster here.  The API server below is a FAKE on
127.0.0.1 written for this test: it records every request, answers a
server-side apply PATCH by storing the object and returning it, keeps a
resourceVersion per object as a real API server does (every write takes the
next revision; POST creates or answers 409 AlreadyExists, PUT updates or
answers 404 when gone; a write naming a stale resourceVersion is refused
with 409 Conflict), answers a
GET of a Deployment with status.readyReplicas 1 from the second GET on,
answers DELETE by removing the object, and refuses (403, a Status object)
every apply in a namespace whose name holds "forbidden".  It checks nothing
a real API server would check; the objects themselves are validated against
the Kubernetes OpenAPI schema by tests/k8s/validate.js (kubernetes-models).

Everything else is production: `udf-builder serve --scheduler kubernetes`,
the build, and a real push of the image to a loopback docker-registry
(tests/lib/registry.sh) with the tiny base from tests/lib/base-image.sh.

Checked: ApplyUdfResource returns the predicted endpoint
http://udf-<key16>.udf-<label>.svc.cluster.local:8815; the conversation is
namespace -> deployment -> service -> networkpolicy applies (PATCH,
application/apply-patch+yaml, fieldManager=udf-builder, force=true, the
bearer token) then GETs of the Deployment until ready; a second call for the
same key is answered from memory (the scheduler's alive() says yes) and
makes no API request -- by design: ensure() itself always re-applies, which
is idempotent under server-side apply, but the service only calls it for a
sandbox it does not know alive; two tenants get two namespaces; the objects
validate (node tests/k8s/validate.js --sandbox); a 403 is a clear gRPC error
naming the object and the Status message; the token never appears in the
service's stderr.  The service reads a YAML kubeconfig (libyaml).  Databend's
WORKER statements: a sized worker's Deployment (replicas, resources, a size
table of the operator's), its HorizontalPodAutoscaler for max_cluster_count,
SUSPEND applies replicas 0, a call is refused, RESUME applies the replicas
again, auto_suspend and auto_resume, DROP deletes the objects (each request
recorded); the UDF's call never overwrites CREATE WORKER's tags and options,
in either order.  Two replicas on one API server share the registry (a
ConfigMap per worker) and race ALTERs of one worker: every change survives
(409 Conflict, re-read, redone).  Results are TAP lines.
"""

import hashlib
import hmac
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import harness  # noqa: E402
import tap  # noqa: E402
from harness import REPO  # noqa: E402
from http_server import ImportServer  # noqa: E402

APPLY = "/udfproto.UdfService/ApplyUdfResource"
TOKEN = "fake-k8s-bearer-" + uuid.uuid4().hex
SECRET = "k8s-test-secret-0123456789abcdef"
# A size table of the operator's (config "worker_sizes") in place of the built-in one.
SIZES = {"small": {"cpu_millis": 500, "memory_mb": 512}, "large": {"cpu_millis": 2000, "memory_mb": 2048},
         "huge": {"cpu_millis": 3000, "memory_mb": 6144}}

def token_accepted(token, keys):
    """The stub's check (templates/server.py, service/token.h): the token is
    "v2.<expires>.<mac>" under one of the sandbox's keys, not expired."""
    m = re.fullmatch(r"v2\.([0-9]+)\.([0-9a-f]{64})", token)
    if not m or int(m.group(1)) < time.time():
        return False
    msg = b"udfb-token-v2\n" + m.group(1).encode()
    return any(hmac.compare_digest(hmac.new(k.encode(), msg, hashlib.sha256).hexdigest(), m.group(2)) for k in keys if k)


class FakeKube:
    """A FAKE Kubernetes API server (see the module docstring)."""

    def __init__(self):
        self.requests = []
        self.objects = {}  # path without query -> object
        self.gets = {}
        self.lock = threading.Lock()
        self.revision = 0  # etcd's revision: every write takes the next as its resourceVersion
        self.conflicts = 0  # 409s answered to a stale resourceVersion
        self.pair = None  # see pair_reads
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def reply(self, code, obj):
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def status(self, code, reason, msg):
                self.reply(code, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": msg,
                                  "reason": reason, "code": code})

            def store(self, path, obj):
                """Stores a copy of obj under its next resourceVersion, as
                the API server does on every write; returns the copy."""
                obj = json.loads(json.dumps(obj))
                outer.revision += 1
                obj.setdefault("metadata", {})["resourceVersion"] = str(outer.revision)
                outer.objects[path] = obj
                return obj

            def stale(self, path, body):
                """A write naming a resourceVersion other than the stored
                one is refused with 409 Conflict (optimistic concurrency)."""
                want = ((body or {}).get("metadata") or {}).get("resourceVersion")
                have = (outer.objects.get(path, {}).get("metadata") or {}).get("resourceVersion")
                if want is None or want == have:
                    return False
                outer.conflicts += 1
                self.status(409, "Conflict", 'Operation cannot be fulfilled on configmaps "%s": the object has been '
                            'modified; please apply your changes to the latest version and try again'
                            % path.rsplit("/", 1)[-1])
                return True

            def handle_any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path, _, query = self.path.partition("?")
                rec = {"method": self.command, "path": path, "query": query,
                       "content_type": self.headers.get("Content-Type"),
                       "authorization": self.headers.get("Authorization"),
                       "body": json.loads(body) if body else None}
                if self.command == "GET" and "/configmaps/" in path:
                    outer.paired()
                with outer.lock:
                    outer.requests.append(rec)
                    if self.command == "PATCH":
                        if "forbidden" in path:
                            return self.status(403, "Forbidden", 'deployments.apps is forbidden: User "system:serviceaccount:udf:udf-builder" cannot patch resource')
                        if self.stale(path, rec["body"]):
                            return
                        return self.reply(200, self.store(path, rec["body"]))
                    if self.command == "POST":
                        # create: 409 AlreadyExists when the name is taken
                        full = path + "/" + ((rec["body"] or {}).get("metadata") or {}).get("name", "")
                        if full in outer.objects:
                            return self.status(409, "AlreadyExists", "%s already exists" % full)
                        return self.reply(201, self.store(full, rec["body"]))
                    if self.command == "PUT":
                        # update: 404 when gone, 409 on a stale resourceVersion
                        if path not in outer.objects:
                            return self.status(404, "NotFound", "%s not found" % path)
                        if self.stale(path, rec["body"]):
                            return
                        return self.reply(200, self.store(path, rec["body"]))
                    if self.command == "GET" and (path == "/api/v1/configmaps" or path.endswith("/configmaps")):
                        # A LIST (the worker registry's poll): every ConfigMap under it.
                        items = [o for p, o in sorted(outer.objects.items()) if "/configmaps/" in p and
                                 (path == "/api/v1/configmaps" or p.startswith(path + "/"))]
                        return self.reply(200, {"kind": "ConfigMapList", "apiVersion": "v1", "items": items})
                    if self.command == "GET":
                        obj = outer.objects.get(path)
                        if obj is None:
                            return self.status(404, "NotFound", "%s not found" % path)
                        outer.gets[path] = outer.gets.get(path, 0) + 1
                        obj = json.loads(json.dumps(obj))
                        if outer.gets[path] > 1:
                            obj["status"] = {"replicas": 1, "readyReplicas": 1}
                        return self.reply(200, obj)
                    if self.command == "DELETE":
                        if outer.objects.pop(path, None) is None:
                            return self.status(404, "NotFound", "%s not found" % path)
                        return self.reply(200, {"kind": "Status", "status": "Success"})
                return self.status(405, "MethodNotAllowed", "no")

            do_GET = do_PATCH = do_DELETE = do_POST = do_PUT = handle_any

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def pair_reads(self, n):
        """The next n GETs of a ConfigMap wait until all n have come (5 s
        at most), so n replicas read the same resourceVersion before any of
        them writes: a race made certain rather than left to timing."""
        with self.lock:
            self.pair = {"n": n, "seen": 0, "all": threading.Event()}

    def paired(self):
        with self.lock:
            p = self.pair
            if not p or p["seen"] >= p["n"]:
                return
            p["seen"] += 1
            if p["seen"] == p["n"]:
                p["all"].set()
        p["all"].wait(5)

    def take(self, lists=False):
        """The requests since the last take; without lists=True, leaving
        out the ConfigMap LISTs every replica polls the worker registry with."""
        with self.lock:
            r, self.requests = self.requests, []
        return [x for x in r if lists or not (x["method"] == "GET" and x["path"].endswith("configmaps"))]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def workers(srv, kube, tmp):
    """Databend's WORKER statements on Kubernetes: CREATE WORKER with a
    size and min_cluster_count, the UDF's CreateWorker (Databend's script),
    SUSPEND (its Deployment applied with replicas 0), a refused call, RESUME
    (replicas back), DROP (DELETE of its objects)."""
    (pb,) = harness.load_protos(tmp, "resource")
    imports = ImportServer(harness.vector_files(harness.DATABEND))
    tenant = "tenant-w"

    def rpc(method, req, resp):
        stub = srv.unary("/resourceproto.WorkerService/" + method, resp)
        try:
            return "OK", stub(req, timeout=60, metadata=harness.metadata(tenant, "worker_client_version"))
        except harness.grpc.RpcError as e:
            return e.code().name, e.details()

    def show():
        code, r = rpc("ListWorkers", pb.ListWorkersRequest(tenant_id=tenant), pb.ListWorkersResponse)
        return [(w.name, dict(w.tags), dict(w.options)) for w in r.workers] if code == "OK" else code

    def record(until_fn, timeout=10):
        """The worker's record in its registry ConfigMap once until_fn(rec) holds (or the last one)."""
        rec, until = None, time.monotonic() + timeout
        while time.monotonic() < until:
            with kube.lock:
                cms = [o for p, o in kube.objects.items() if "/configmaps/" in p and "/udf-tenant-w-" in p]
            rec = json.loads(cms[0]["data"]["worker"]) if len(cms) == 1 else None
            if rec is not None and until_fn(rec):
                break
            time.sleep(0.05)
        return rec

    def patched(pred, timeout=10):
        """The requests until one PATCH of the Deployment satisfies pred(body)."""
        seen, until = [], time.monotonic() + timeout
        while time.monotonic() < until and not any(r["method"] == "PATCH" and r["path"] == dep_path and pred(r["body"])
                                                   for r in seen):
            time.sleep(0.05)
            seen += kube.take()
        return seen, any(r["method"] == "PATCH" and r["path"] == dep_path and pred(r["body"]) for r in seen)

    def gauges(until_fn, timeout=5):
        """((active, suspended) workers on the kubernetes backend, sandboxes by state) from /metrics,
        once until_fn holds (the gauges are set once a second)."""
        until = time.monotonic() + timeout
        while True:
            m = srv.metrics()
            w = tuple(int(m.get('udfb_workers{backend="kubernetes",state="%s"}' % st, -1)) for st in ("active", "suspended"))
            sb = {st: int(m.get('udfb_sandboxes{state="%s"}' % st, -1)) for st in ("starting", "ready", "failed", "stopped")}
            if until_fn(w, sb) or time.monotonic() > until:
                return w, sb
            time.sleep(0.1)

    def resources(body):
        return ((body.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or [{}])[0]
                .get("resources", {}).get("limits"))

    try:
        v = harness.vector("read_stage_dup_basename", imports.port, harness.DATABEND, ".create_worker")
        name = v["name"]
        dep_path = "?"
        code, det = rpc("CreateWorker", pb.CreateWorkerRequest(tenant_id=tenant, name=name, options={"size": "xlarge"}),
                        pb.CreateWorkerResponse)
        tap.ok(code == "INVALID_ARGUMENT" and "known: small, large, huge" in det,
               "size 'xlarge' is not in the configured worker_sizes: INVALID_ARGUMENT listing the table's", (code, det))
        created = {"size": "large", "min_cluster_count": "2", "max_cluster_count": "4"}
        code, _ = rpc("CreateWorker", pb.CreateWorkerRequest(tenant_id=tenant, name=name, tags={"team": "k"},
                                                             options={"size": "large", "min_cluster_count": "2",
                                                                      "max_cluster_count": "4"}),
                      pb.CreateWorkerResponse)
        tap.ok(code == "OK", "CREATE WORKER %s WITH size='large', min_cluster_count='2', max_cluster_count='4'" % name,
               code)
        kube.take()
        udf = pb.CreateWorkerRequest(tenant_id=tenant, name=name, if_not_exists=True, type="udf", script=v["script"])
        code, resp = rpc("CreateWorker", udf, pb.CreateWorkerResponse)
        conv = kube.take()
        # This tenant's: another tenant's idle sandbox may be scaled down meanwhile.
        deps = [r for r in conv if r["method"] == "PATCH" and "/deployments/" in r["path"] and
                "/namespaces/udf-tenant-w-" in r["path"]]
        dep = deps[-1]["body"] if deps else {}
        res = (dep.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or [{}])[0].get("resources")
        tap.ok(code == "OK" and dep.get("spec", {}).get("replicas") == 2 and
               res == {"requests": {"cpu": "2000m", "memory": "2048Mi"}, "limits": {"cpu": "2000m", "memory": "2048Mi"}},
               "the UDF's CreateWorker: its Deployment has min_cluster_count replicas and the size's resources",
               "%s %r\n%s" % (code, resp if code != "OK" else resp.endpoint, json.dumps(dep)[:1500]))
        dep_path = deps[-1]["path"] if deps else "?"
        rec = record(lambda r: r.get("key"))
        tap.ok(rec is not None and rec.get("key", "").startswith("sha256:") and rec.get("tags") == {"team": "k"} and
               rec.get("options") == created and show() == [(name, {"team": "k"}, created)],
               "the UDF's CreateWorker records its key in the ConfigMap and keeps the tags and options CREATE WORKER set",
               (rec, show()))
        hpas = [r["body"] for r in conv if r["method"] == "PATCH" and "/horizontalpodautoscalers/" in r["path"]]
        hpa = hpas[-1] if hpas else {}
        tap.ok(hpa.get("apiVersion") == "autoscaling/v2" and hpa.get("spec", {}).get("minReplicas") == 2 and
               hpa["spec"].get("maxReplicas") == 4 and hpa["spec"].get("scaleTargetRef") ==
               {"apiVersion": "apps/v1", "kind": "Deployment", "name": dep.get("metadata", {}).get("name")},
               "max_cluster_count: a HorizontalPodAutoscaler on its Deployment from 2 to 4 replicas", json.dumps(hpa))
        objs_file = os.path.join(tmp, "worker-objects.yaml")
        Path(objs_file).write_text("".join("---\n" + json.dumps(o, indent=1) + "\n" for o in [dep] + hpas[-1:]))
        val = subprocess.run(["node", "tests/k8s/validate.js", "--sandbox", objs_file], cwd=REPO, capture_output=True,
                             text=True, timeout=60)
        tap.ok(val.returncode == 0 and val.stdout.count("\nok ") + val.stdout.startswith("ok ") >= 2,
               "the sized Deployment and its autoscaler validate (kubernetes-models)", val.stdout + val.stderr)
        kube.take()
        code, _ = rpc("AlterWorker", pb.AlterWorkerRequest(tenant_id=tenant, name=name,
                                                           unset_options=["max_cluster_count"]), pb.AlterWorkerResponse)
        seen = []
        until = time.monotonic() + 10
        while time.monotonic() < until and not any(r["method"] == "DELETE" for r in seen):
            time.sleep(0.05)
            seen += kube.take()
        tap.ok(code == "OK" and [r["path"] for r in seen if r["method"] == "DELETE"] ==
               [p.replace("/apis/apps/v1/", "/apis/autoscaling/v2/").replace("/deployments/", "/horizontalpodautoscalers/")
                for p in [dep_path]], "ALTER ... UNSET max_cluster_count: its autoscaler is deleted",
               [(r["method"], r["path"]) for r in seen])

        code, _ = rpc("AlterWorker", pb.AlterWorkerRequest(tenant_id=tenant, name=name, state_action=pb.Suspend),
                      pb.AlterWorkerResponse)
        seen = []
        until = time.monotonic() + 10
        while time.monotonic() < until and not any(r["method"] == "PATCH" and r["path"] == dep_path and
                                                   r["body"]["spec"]["replicas"] == 0 for r in seen):
            time.sleep(0.05)
            seen += kube.take()
        tap.ok(code == "OK" and any(r["method"] == "PATCH" and r["path"] == dep_path and r["body"]["spec"]["replicas"] == 0
                                 for r in seen) and not any(r["method"] == "DELETE" for r in seen),
               "SUSPEND: the Deployment is applied with replicas 0 (recorded), nothing deleted",
               [(r["method"], r["path"]) for r in seen])
        code, det = rpc("CreateWorker", udf, pb.CreateWorkerResponse)
        tap.ok(code == "FAILED_PRECONDITION" and ("worker %s is suspended" % name) in det,
               "a UDF call for the suspended worker: FAILED_PRECONDITION", (code, det))
        g = gauges(lambda w, sb: w == (0, 1) and sb["stopped"] >= 1)
        tap.ok(g[0] == (0, 1) and g[1]["stopped"] >= 1,
               "/metrics: the worker counted suspended on the kubernetes backend, its sandbox stopped (scaled to zero)", g)
        kube.take()
        code, _ = rpc("AlterWorker", pb.AlterWorkerRequest(tenant_id=tenant, name=name, state_action=pb.Resume),
                      pb.AlterWorkerResponse)
        seen = []
        until = time.monotonic() + 10
        while time.monotonic() < until and not any(r["method"] == "PATCH" and r["path"] == dep_path and
                                                   r["body"]["spec"]["replicas"] == 2 for r in seen):
            time.sleep(0.05)
            seen += kube.take()
        tap.ok(code == "OK" and any(r["method"] == "PATCH" and r["path"] == dep_path and r["body"]["spec"]["replicas"] == 2
                                 for r in seen), "RESUME: the Deployment is applied with its replicas again",
               [(r["method"], r["path"]) for r in seen])
        code, resp = rpc("CreateWorker", udf, pb.CreateWorkerResponse)
        tap.ok(code == "OK" and resp.endpoint.endswith(".svc.cluster.local:8815"), "... and the UDF call answers",
               (code, resp))
        g = gauges(lambda w, sb: w == (1, 0) and sb["ready"] >= 1)
        tap.ok(g[0] == (1, 0) and g[1]["ready"] >= 1, "/metrics: active again, a ready sandbox", g)
        kube.take()
        code, _ = rpc("AlterWorker", pb.AlterWorkerRequest(tenant_id=tenant, name=name,
                                                           set_options={"size": "huge", "min_cluster_count": "3"}),
                      pb.AlterWorkerResponse)
        seen, ok = patched(lambda b: b["spec"]["replicas"] == 3 and resources(b) == {"cpu": "3000m", "memory": "6144Mi"})
        tap.ok(code == "OK" and ok, "ALTER SET size='huge' (a configured size), min_cluster_count='3': the Deployment "
               "is applied again with 3 replicas and 3000m/6144Mi", [(r["method"], r["path"]) for r in seen])
        kube.take()
        code, _ = rpc("AlterWorker", pb.AlterWorkerRequest(tenant_id=tenant, name=name, set_options={"auto_suspend": "1"}),
                      pb.AlterWorkerResponse)
        seen = []
        until = time.monotonic() + 10
        while time.monotonic() < until and not any(r["method"] == "PATCH" and r["path"] == dep_path and
                                                   r["body"]["spec"]["replicas"] == 0 for r in seen):
            time.sleep(0.05)
            seen += kube.take()
        code2, det = rpc("CreateWorker", udf, pb.CreateWorkerResponse)
        tap.ok(code == "OK" and any(r["method"] == "PATCH" and r["path"] == dep_path and r["body"]["spec"]["replicas"] == 0
                                 for r in seen) and code2 == "FAILED_PRECONDITION",
               "auto_suspend = 1: idle, the worker suspends itself (replicas 0) and a call is refused",
               (code, code2, det, [(r["method"], r["path"]) for r in seen]))
        rec = record(lambda r: r.get("state") == "suspended")
        tap.ok(rec is not None and rec.get("state") == "suspended", "... and its ConfigMap records it suspended", rec)
        code, _ = rpc("AlterWorker", pb.AlterWorkerRequest(tenant_id=tenant, name=name,
                                                           set_options={"auto_resume": "true", "auto_suspend": "0"}),
                      pb.AlterWorkerResponse)
        kube.take()
        code2, resp = rpc("CreateWorker", udf, pb.CreateWorkerResponse)
        seen, ok = patched(lambda b: b["spec"]["replicas"] == 3)
        rec = record(lambda r: r.get("state") == "active")
        tap.ok(code == code2 == "OK" and resp.endpoint.endswith(":8815") and ok and rec.get("state") == "active",
               "auto_resume = true: a call resumes the suspended worker (replicas 3 again, ConfigMap active)",
               (code, code2, rec, [(r["method"], r["path"]) for r in seen]))
        kube.take()
        code, _ = rpc("DropWorker", pb.DropWorkerRequest(tenant_id=tenant, name=name), pb.DropWorkerResponse)
        seen = []
        until = time.monotonic() + 10
        while time.monotonic() < until and len([r for r in seen if r["method"] == "DELETE"]) < 5:
            time.sleep(0.05)
            seen += kube.take()
        dels = sorted(r["path"].split("/")[-2] for r in seen if r["method"] == "DELETE")
        tap.ok(code == "OK" and dels == ["configmaps", "deployments", "horizontalpodautoscalers", "networkpolicies",
                                         "services"],
               "DROP: DELETE of its registry ConfigMap, autoscaler, Deployment, Service and NetworkPolicy (recorded)",
               [(r["method"], r["path"]) for r in seen])
        code, lst = rpc("ListWorkers", pb.ListWorkersRequest(tenant_id=tenant), pb.ListWorkersResponse)
        tap.ok(code == "OK" and len(lst.workers) == 0, "SHOW WORKERS: empty", (code, lst))

        # The other order: the UDF's call first, then CREATE WORKER of its name.
        code, resp = rpc("CreateWorker", udf, pb.CreateWorkerResponse)
        first = show()
        rec = record(lambda r: r.get("key"))
        code2, _ = rpc("CreateWorker", pb.CreateWorkerRequest(tenant_id=tenant, name=name, tags={"team": "late"},
                                                              options={"size": "small"}), pb.CreateWorkerResponse)
        code3, _ = rpc("CreateWorker", udf, pb.CreateWorkerResponse)
        time.sleep(0.5)  # the UDF call's record change is written in the background
        rec = record(lambda r: r.get("declared"))
        tap.ok(code == code2 == code3 == "OK" and first == [(name, {}, {})] and
               show() == [(name, {"team": "late"}, {"size": "small"})] and rec.get("tags") == {"team": "late"} and
               rec.get("options") == {"size": "small"} and rec.get("key", "").startswith("sha256:"),
               "the UDF's call first, CREATE WORKER after: the record gets its tags and options, keeps its key, and "
               "a later UDF call changes neither", (code, code2, code3, first, show(), rec))
        code, _ = rpc("DropWorker", pb.DropWorkerRequest(tenant_id=tenant, name=name), pb.DropWorkerResponse)
        tap.ok(code == "OK" and show() == [], "... DROP WORKER: SHOW empty again", (code, show()))
    finally:
        imports.close()


def serve(dir, args, env, store=None):
    """The service under test in dir (its stderr in dir/stderr), with args
    and, when given, another --store."""
    args = list(args)
    if store:
        args[args.index("--store") + 1] = store
    return harness.Service(dir, args, config={"token_secrets": [SECRET], "worker_sizes": SIZES}, env=env,
                           unset=("KUBERNETES_SERVICE_HOST",), start_timeout=20)


def replicas(args, env, tmp, kube):
    """Two service replicas, each with its own store, on one API server:
    the cluster (a ConfigMap per worker) is the registry they share."""
    import resource_pb2 as pb
    srvs, started = [], []
    try:
        chans = []
        for i in (1, 2):
            srvs.append(serve(os.path.join(tmp, "replica%d" % i), args, env, os.path.join(tmp, "replica%d-store" % i)))
            started.append(srvs[-1])
            chans.append(srvs[-1].channel)
        tenant = "tenant-r"

        def rpc(ch, method, req, resp):
            stub = ch.unary_unary("/resourceproto.WorkerService/" + method, request_serializer=lambda m: m.SerializeToString(),
                                  response_deserializer=resp.FromString)
            md = [("x-databend-tenant", tenant), ("worker_client_version", "v1")]
            try:
                return "OK", stub(req, timeout=20, metadata=md)
            except harness.grpc.RpcError as e:
                return e.code().name, e.details()

        def show(ch):
            code, r = rpc(ch, "ListWorkers", pb.ListWorkersRequest(tenant_id=tenant), pb.ListWorkersResponse)
            return code, [(w.name, dict(w.tags), dict(w.options)) for w in r.workers] if code == "OK" else r

        kube.take(lists=True)
        code, _ = rpc(chans[0], "CreateWorker", pb.CreateWorkerRequest(tenant_id=tenant, name="shared_wh",
                      tags={"team": "x"}, options={"size": "small", "auto_resume": "false"}), pb.CreateWorkerResponse)
        cms = {p: o for p, o in kube.objects.items() if "/configmaps/" in p}
        tap.ok(code == "OK" and len(cms) == 1, "replica 1: CREATE WORKER writes one ConfigMap", (code, list(cms)))
        objs_file = os.path.join(tmp, "configmap.yaml")
        Path(objs_file).write_text("".join("---\n" + json.dumps(o, indent=1) + "\n" for o in cms.values()))
        val = subprocess.run(["node", "tests/k8s/validate.js", "--sandbox", objs_file], cwd=REPO, capture_output=True,
                             text=True, timeout=60)
        tap.ok(val.returncode == 0, "the registry ConfigMap validates (kubernetes-models)", val.stdout + val.stderr)
        want = ("shared_wh", {"team": "x"}, {"size": "small", "auto_resume": "false"})
        tap.ok(show(chans[1]) == ("OK", [want]), "replica 2 lists the worker replica 1 created", show(chans[1]))
        code, _ = rpc(chans[0], "CreateWorker", pb.CreateWorkerRequest(tenant_id=tenant, name="shared_wh"),
                      pb.CreateWorkerResponse)
        code2, _ = rpc(chans[1], "CreateWorker", pb.CreateWorkerRequest(tenant_id=tenant, name="shared_wh"),
                       pb.CreateWorkerResponse)
        tap.ok(code == code2 == "ALREADY_EXISTS", "CREATE again through either replica: ALREADY_EXISTS", (code, code2))
        code, _ = rpc(chans[1], "AlterWorker", pb.AlterWorkerRequest(tenant_id=tenant, name="shared_wh",
                      set_tags={"env": "prod"}, state_action=pb.Suspend), pb.AlterWorkerResponse)
        tap.ok(code == "OK" and show(chans[0]) == ("OK", [(want[0], {"team": "x", "env": "prod"}, want[2])]),
               "replica 2 alters and suspends it; replica 1 lists the change", (code, show(chans[0])))
        rec = json.loads(list(o for p, o in kube.objects.items() if "/configmaps/" in p)[0]["data"]["worker"])
        tap.ok(rec.get("state") == "suspended", "the ConfigMap records the state", rec)
        # Both replicas ALTER the same worker at once, each having read the
        # same resourceVersion (pair_reads): one write wins, the other gets
        # 409 Conflict, reads again and redoes its change.  Both survive.
        rounds, codes, conflicts = 3, [], kube.conflicts
        for rnd in range(rounds):
            kube.pair_reads(2)
            got = [None, None]
            alters = [pb.AlterWorkerRequest(tenant_id=tenant, name="shared_wh", set_tags={"by1_%d" % rnd: "a"},
                                            set_options={"auto_resume": ("true", "false")[rnd % 2]}),
                      pb.AlterWorkerRequest(tenant_id=tenant, name="shared_wh", set_tags={"by2_%d" % rnd: "b"},
                                            unset_tags=["env"] if rnd == 0 else [])]

            def alter(i):
                got[i] = rpc(chans[i], "AlterWorker", alters[i], pb.AlterWorkerResponse)[0]
            ts = [threading.Thread(target=alter, args=(i,)) for i in (0, 1)]
            for t in ts:
                t.start()
            for t in ts:
                t.join(60)
            codes.append(tuple(got))
        tags = {"team": "x", **{"by%d_%d" % (i, r): "ab"[i - 1] for r in range(rounds) for i in (1, 2)}}
        want2 = ("OK", [(want[0], tags, {"size": "small", "auto_resume": "true"})])
        # At least one round raced (a replica's own background write may
        # take one of a round's paired reads, so not every round does).
        tap.ok(all(c == ("OK", "OK") for c in codes) and show(chans[0]) == want2 and show(chans[1]) == want2 and
               kube.conflicts - conflicts >= 1,
               "two replicas ALTER the same worker at once, %d times: every change survives (%d x 409 Conflict, "
               "re-read, redone)" % (rounds, kube.conflicts - conflicts), (codes, show(chans[0]), show(chans[1])))
        # A restart of replica 1 with an empty store: the cluster still has it.
        srvs[0].stop(20)
        srvs[0] = serve(os.path.join(tmp, "replica3"), args, env, os.path.join(tmp, "replica3-store"))
        started.append(srvs[0])
        chans[0] = srvs[0].channel
        tap.ok(show(chans[0]) == show(chans[1]) and len(show(chans[0])[1]) == 1,
               "a replica started later (empty store) lists the same workers", (show(chans[0]), show(chans[1])))
        codes = [rpc(chans[1], "CreateWorker", pb.CreateWorkerRequest(tenant_id=tenant, name=n), pb.CreateWorkerResponse)[0]
                 for n in ("zz_wh", "aa_wh")]
        names = [w[0] for w in show(chans[0])[1]]
        codes += [rpc(chans[0], "DropWorker", pb.DropWorkerRequest(tenant_id=tenant, name=n), pb.DropWorkerResponse)[0]
                  for n in ("zz_wh", "aa_wh")]
        tap.ok(codes == ["OK"] * 4 and names == ["aa_wh", "shared_wh", "zz_wh"],
               "SHOW WORKERS through the other replica: sorted by name", (codes, names))
        code, _ = rpc(chans[1], "DropWorker", pb.DropWorkerRequest(tenant_id=tenant, name="shared_wh"), pb.DropWorkerResponse)
        cms = [p for p in kube.objects if "/configmaps/" in p]
        tap.ok(code == "OK" and not cms and show(chans[0]) == ("OK", []),
               "replica 2 drops it: the ConfigMap is deleted, replica 1 lists none", (code, cms, show(chans[0])))
        code, _ = rpc(chans[0], "DropWorker", pb.DropWorkerRequest(tenant_id=tenant, name="shared_wh"), pb.DropWorkerResponse)
        tap.ok(code == "NOT_FOUND", "... and a DROP through replica 1 is NOT_FOUND", code)
    except Exception:
        tap.ok(False, "the two-replica checks ran to the end", traceback.format_exc())
    finally:
        rcs = [s.stop(20) for s in srvs]
        kube.take(lists=True)  # this part's requests are not the next check's
        logs = [s.log() for s in started]
        tap.ok(rcs and all(rc == 0 for rc in rcs) and not any("Sanitizer" in t for t in logs),
                  "the replicas exit 0 on SIGTERM (no sanitizer report)", rcs)


def main():
    harness.skip_unless(tools=("docker-registry", "skopeo", "node", "protoc"), grpc_module=True)
    if not (REPO / "tests/k8s/node_modules/kubernetes-models").is_dir():
        tap.skip_all("tests/k8s/node_modules is not installed (npm ci in tests/k8s)")
    tmp = tempfile.mkdtemp(prefix="udfb-k8s-test.")
    reg_pid = reg_dir = None
    srv = None
    kube = None
    try:
        out = harness.sh("bash", "-c", ". tests/lib/registry.sh && udfb_registry_start >&2 && "
                         "echo \"$REGISTRY $UDFB_REGISTRY_PID $UDFB_REGISTRY_DIR\"", timeout=300)
        registry, reg_pid, reg_dir = out.split()[-3:]
        tiny = harness.tiny_image()
        harness.sh("skopeo", "copy", "--quiet", "--preserve-digests", "--dest-tls-verify=false", "oci:%s:tiny" % tiny,
                   "docker://%s/udfb/base:tiny" % registry, timeout=300)
        (udf_pb2,) = harness.load_protos(tmp, "udf")

        kube = FakeKube()
        token_file = os.path.join(tmp, "token")
        Path(token_file).write_text(TOKEN + "\n")
        env = {"UDFB_REGISTRY_INSECURE": registry, "DOCKER_CONFIG": os.path.join(tmp, "no-docker-config")}
        cmd = ["--store", os.path.join(tmp, "store"), "--scheduler", "kubernetes", "--default-runtime", "3",
               "--base-image", "3=docker://%s/udfb/base:tiny" % registry, "--dest", "docker://%s/udfb/udf" % registry,
               "--imports-allow", "127.0.0.1"]
        # A kubeconfig in YAML, as kubectl writes it (read with libyaml).
        kubeconfig = os.path.join(tmp, "kubeconfig")
        Path(kubeconfig).write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: fake\npreferences: {}\n"
            "clusters:\n- name: fake\n  cluster:\n    server: http://127.0.0.1:%d\n"
            "contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake-user\n    namespace: default\n"
            "users:\n- name: fake-user\n  user:\n    tokenFile: %s\n" % (kube.port, token_file))
        opts = {"kubeconfig": kubeconfig, "poll_ms": "20",
                "start_timeout_ms": "5000", "idle_ms": "2500", "reap_interval_ms": "100", "egress_cidrs": "10.0.0.0/8,0.0.0.0/0",
                "query_namespace_selector": "kubernetes.io/metadata.name=databend"}
        for k, v in opts.items():
            cmd += ["--scheduler-opt", "%s=%s" % (k, v)]
        try:
            srv = serve(tmp, cmd, env)
        except AssertionError as e:
            tap.ok(False, "serve --scheduler kubernetes starts", str(e), lines=60)
            return tap.done()
        tap.ok(True, "serve --scheduler kubernetes starts")
        bad = os.path.join(tmp, "bad-sizes.json")
        Path(bad).write_text(json.dumps({"token_secrets": [SECRET], "worker_sizes": {
            "small": SIZES["small"], "tiny": {"cpu_millis": 0, "memory_mb": 64}}}))
        bad_cmd = list(cmd)
        bad_cmd[bad_cmd.index("--store") + 1] = os.path.join(tmp, "bad-store")
        p = subprocess.run([harness.BIN, "serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
                            "--config", bad] + bad_cmd, env=harness.scrubbed_env(env, ("KUBERNETES_SERVICE_HOST",)),
                           capture_output=True, text=True, timeout=60, cwd=tmp)
        tap.ok(p.returncode != 0 and "worker_sizes.tiny: must be" in p.stderr,
               "a worker_sizes row with cpu_millis 0 stops start-up, naming the row", (p.returncode, p.stderr[-600:]))
        apply = srv.unary(APPLY, udf_pb2.ApplyUdfResourceResponse)

        def req(nonce):
            spec = {"version": 1, "kind": "udf", "language": "python", "handler": "f", "input_types": ["INT"],
                    "result_type": "INT", "imports": [], "packages": [], "runtime_version": "3",
                    "code": "# %s\ndef f(x):\n    return x + 1\n" % nonce}
            return udf_pb2.ApplyUdfResourceRequest(spec=json.dumps(spec, separators=(",", ":")))

        def call(r, tenant, apply=apply):
            try:
                resp = apply(r, timeout=60, metadata=harness.metadata(tenant))
                return "OK", resp.endpoint, dict(resp.headers)
            except harness.grpc.RpcError as e:
                return e.code().name, e.details() or "", {}

        r1 = req(uuid.uuid4().hex)
        code, ep, headers = call(r1, "tenant-a")
        tap.ok(code == "OK", "ApplyUdfResource for tenant-a answers OK", (code, ep))
        mm = re.fullmatch(r"http://(udf-[0-9a-f]{16})\.(udf-tenant-a-[0-9a-f]{10})\.svc\.cluster\.local:8815", ep)
        tap.ok(bool(mm), "the endpoint is http://<service>.<namespace>.svc.cluster.local:8815", ep)
        name, ns = (mm.group(1), mm.group(2)) if mm else ("?", "?")
        conv = kube.take()
        patches = [r for r in conv if r["method"] == "PATCH"]
        want = ["/api/v1/namespaces/%s" % ns,
                "/apis/apps/v1/namespaces/%s/deployments/%s" % (ns, name),
                "/api/v1/namespaces/%s/services/%s" % (ns, name),
                "/apis/networking.k8s.io/v1/namespaces/%s/networkpolicies/%s" % (ns, name)]
        tap.ok([r["path"] for r in patches] == want, "applies namespace -> deployment -> service -> networkpolicy",
               json.dumps([(r["method"], r["path"]) for r in conv], indent=1))
        tap.ok(all(r["content_type"] == "application/apply-patch+yaml" for r in patches),
               "every apply is Content-Type application/apply-patch+yaml", [r["content_type"] for r in patches])
        tap.ok(all(sorted(r["query"].split("&")) == ["fieldManager=udf-builder", "force=true"] for r in patches),
               "every apply has fieldManager=udf-builder&force=true", [r["query"] for r in patches])
        tap.ok(all(r["authorization"] == "Bearer " + TOKEN for r in conv),
               "every request carries the bearer token (from the YAML kubeconfig's user)")
        gets = [r for r in conv if r["method"] == "GET"]
        tap.ok(len(gets) >= 2 and all(r["path"] == want[1] for r in gets) and conv[-1]["method"] == "GET",
               "readiness: GETs of the Deployment after the applies until readyReplicas >= 1",
               [(r["method"], r["path"]) for r in conv])
        dep = patches[1]["body"] if len(patches) > 1 else {}
        img = dep.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [{}])[0].get("image", "")
        tap.ok(re.fullmatch(re.escape(registry) + r"/udfb/udf@sha256:[0-9a-f]{64}", img) is not None,
               "the Deployment's image is HOST/REPO@sha256:... (no docker://, no tag)", img)
        if img:
            pushed = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", "docker://" + img],
                                    capture_output=True)
            tap.ok(pushed.returncode == 0, "the image is in the registry by that digest", pushed.stderr[-300:])
        pod = dep.get("spec", {}).get("template", {}).get("spec", {})
        envs = {e["name"]: e.get("value") for e in (pod.get("containers") or [{}])[0].get("env", [])}
        tap.ok(envs.get("UDF_SERVER_ADDR") == "0.0.0.0:8815" and envs.get("RESOURCE_STATUS_ADDR") == "0.0.0.0:8080"
               and token_accepted(headers.get("x-authorization", ""), (envs.get("UDF_AUTH_KEYS") or "").split(",")),
               "env: UDF_SERVER_ADDR, RESOURCE_STATUS_ADDR and the sandbox keys the caller's token checks with", envs)
        tap.ok(pod.get("runtimeClassName") == "runsc", "runtimeClassName defaults to runsc", pod.get("runtimeClassName"))

        code2, ep2, _ = call(r1, "tenant-a")
        again = kube.take()
        tap.ok(code2 == "OK" and ep2 == ep and not again,
               "a second call for the same key is answered from memory: same endpoint, no API request",
               (code2, ep2, [(r["method"], r["path"]) for r in again]))

        code3, ep3, _ = call(req(uuid.uuid4().hex), "Tenant_B")
        conv_b = kube.take()
        ns_b = [r["path"] for r in conv_b if r["method"] == "PATCH" and r["path"].startswith("/api/v1/namespaces/")
                and r["path"].count("/") == 4]
        tap.ok(code3 == "OK" and len(ns_b) == 1 and ns_b[0] != want[0] and re.match(r"/api/v1/namespaces/udf-tenant-b-[0-9a-f]{10}$", ns_b[0]),
               "a second tenant gets its own namespace", (code3, ep3, ns_b))

        # Every object applied, validated with kubernetes-models.
        objs = [o for o in kube.objects.values()]
        objs_file = os.path.join(tmp, "objects.yaml")
        Path(objs_file).write_text("".join("---\n" + json.dumps(o, indent=1) + "\n" for o in objs))
        v = subprocess.run(["node", "tests/k8s/validate.js", "--sandbox", objs_file], cwd=REPO, capture_output=True,
                           text=True, timeout=60)
        tap.ok(v.returncode == 0 and len(objs) == 8, "node tests/k8s/validate.js --sandbox: %d objects valid" % len(objs),
               v.stdout + v.stderr)
        npol = [o for o in objs if o["kind"] == "NetworkPolicy"][0]
        blocks = [p["ipBlock"] for r in npol["spec"]["egress"] for p in r["to"] if "ipBlock" in p]
        tap.ok(any(b["cidr"] == "0.0.0.0/0" and b.get("except") == ["169.254.169.254/32"] for b in blocks)
               and all("except" not in b for b in blocks if b["cidr"] == "10.0.0.0/8"),
               "a CIDR holding 169.254.169.254 gets it excepted; others do not", blocks)

        code4, det4, _ = call(req(uuid.uuid4().hex), "forbidden")
        tap.ok(code4 == "INVALID_ARGUMENT" and re.search(r"kubernetes: apply Namespace udf-forbidden-[0-9a-f]{10}: HTTP 403: .*forbidden", det4)
               and "\n" not in det4, "an API 403 is a one-line gRPC error naming the object and the Status message",
               (code4, det4))

        # Idleness: tenant-a's Deployment is applied with replicas 0 after
        # idle_ms, and the next call applies it again with replicas 1.  The
        # scale-down may come while the checks above run (validate.js and
        # the 403 take seconds on a loaded machine): what came since the
        # last look counts too.
        seen = kube.take()
        until = time.monotonic() + 10
        while time.monotonic() < until and not any(
                r["method"] == "PATCH" and r["path"] == want[1] and r["body"]["spec"]["replicas"] == 0 for r in seen):
            time.sleep(0.1)
            seen += kube.take()
        tap.ok(any(r["method"] == "PATCH" and r["path"] == want[1] and r["body"]["spec"]["replicas"] == 0 for r in seen),
               "an idle sandbox's Deployment is scaled to zero by apply", [(r["method"], r["path"]) for r in seen])
        code5, ep5, _ = call(r1, "tenant-a")
        back = kube.take()
        tap.ok(code5 == "OK" and ep5 == ep and any(r["method"] == "PATCH" and r["path"] == want[1]
                                                and r["body"]["spec"]["replicas"] == 1 for r in back),
               "the next call scales it back to one replica, same endpoint", (code5, ep5, [(r["method"], r["path"]) for r in back]))

        workers(srv, kube, tmp)
        replicas(cmd, env, tmp, kube)

        rc = srv.stop(20)
        text = srv.log()
        tap.ok(rc == 0, "SIGTERM: the service exits 0 (no sanitizer report)", "rc %s\n%s" % (rc, text[-3000:]))
        tap.ok(TOKEN not in text and TOKEN[16:] not in text, "the bearer token never appears in the service's stderr")

        # An oci: destination (the default: a layout in the store) cannot run
        # on Kubernetes: the call fails saying a docker:// --dest is needed.
        cmd2 = list(cmd)
        i = cmd2.index("--dest")
        del cmd2[i:i + 2]
        srv2 = None
        try:
            srv2 = serve(os.path.join(tmp, "oci-dest"), cmd2, env, os.path.join(tmp, "store2"))
            code6, det6, _ = call(req(uuid.uuid4().hex), "tenant-a", srv2.unary(APPLY, udf_pb2.ApplyUdfResourceResponse))
        except AssertionError as e:
            code6, det6 = "no server", str(e)
        conv6 = kube.take()
        # The second service's reaper may scale the first one's idle
        # Deployments to zero meanwhile: those PATCHes are not this call's.
        applied = [r for r in conv6 if r["method"] == "PATCH" and
                   ((r.get("body") or {}).get("spec") or {}).get("replicas") != 0]
        tap.ok(code6 == "UNIMPLEMENTED" and "docker://" in det6 and not applied,
               "an oci: destination: UNIMPLEMENTED saying a docker:// --dest is needed, nothing applied",
               (code6, det6, [(r["method"], r["path"]) for r in applied]))
        if srv2:
            srv2.stop(20)
    finally:
        harness.kill_all()
        if kube:
            kube.close()
        if reg_pid:
            try:
                os.kill(int(reg_pid), signal.SIGTERM)
            except OSError:
                pass
        if reg_dir:
            shutil.rmtree(reg_dir, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
