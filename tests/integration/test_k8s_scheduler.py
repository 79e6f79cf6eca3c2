#!/usr/bin/python3
"""Integration test of the `kubernetes` scheduler against a FAKE API server.

There is no Kubernetes cluster here.  The API server below is a FAKE on
127.0.0.1 written for this test: it records every request, answers a
server-side apply PATCH by storing the object and returning it, answers a
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
WORKER statements: a sized worker's Deployment (replicas, resources),
SUSPEND applies replicas 0, a call is refused, RESUME applies the replicas
again, DROP deletes the objects (each request recorded).  Results are TAP
lines.
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
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = os.environ.get("UDFB_BIN") or str(REPO / "bin" / "udf-builder")
APPLY = "/udfproto.UdfService/ApplyUdfResource"
TOKEN = "fake-k8s-bearer-" + uuid.uuid4().hex
SECRET = "k8s-test-secret-0123456789abcdef"

n = 0
failures = 0


def token_accepted(token, keys):
    """The stub's check (templates/server.py, service/token.h): the token is
    "v2.<expires>.<mac>" under one of the sandbox's keys, not expired."""
    m = re.fullmatch(r"v2\.([0-9]+)\.([0-9a-f]{64})", token)
    if not m or int(m.group(1)) < time.time():
        return False
    msg = b"udfb-token-v2\n" + m.group(1).encode()
    return any(hmac.compare_digest(hmac.new(k.encode(), msg, hashlib.sha256).hexdigest(), m.group(2)) for k in keys if k)


def tap(ok, desc, detail=""):
    global n, failures
    n += 1
    if not ok:
        failures += 1
    print("%s %d - %s" % ("ok" if ok else "not ok", n, desc), flush=True)
    if not ok and detail:
        for line in str(detail).splitlines()[:40]:
            print("#   " + line, flush=True)


def skip(reason):
    print("1..0 # SKIP " + reason, flush=True)
    sys.exit(77)


class FakeKube:
    """A FAKE Kubernetes API server (see the module docstring)."""

    def __init__(self):
        self.requests = []
        self.objects = {}  # path without query -> object
        self.gets = {}
        self.lock = threading.Lock()
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

            def handle_any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path, _, query = self.path.partition("?")
                rec = {"method": self.command, "path": path, "query": query,
                       "content_type": self.headers.get("Content-Type"),
                       "authorization": self.headers.get("Authorization"),
                       "body": json.loads(body) if body else None}
                with outer.lock:
                    outer.requests.append(rec)
                    if self.command == "PATCH":
                        if "forbidden" in path:
                            return self.status(403, "Forbidden", 'deployments.apps is forbidden: User "system:serviceaccount:udf:udf-builder" cannot patch resource')
                        outer.objects[path] = rec["body"]
                        return self.reply(200, rec["body"])
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

    def take(self, lists=False):
        """The requests since the last take; without lists=True, leaving
        out the ConfigMap LISTs every replica polls the worker registry with."""
        with self.lock:
            r, self.requests = self.requests, []
        return [x for x in r if lists or not (x["method"] == "GET" and x["path"].endswith("configmaps"))]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def sh(*cmd, timeout=300):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=True,
                          timeout=timeout, cwd=REPO).stdout


def workers(channel, kube, tmp):
    """Databend's WORKER statements on Kubernetes: CREATE WORKER with a
    size and min_cluster_count, the UDF's CreateWorker (Databend's script),
    SUSPEND (its Deployment applied with replicas 0), a refused call, RESUME
    (replicas back), DROP (DELETE of its objects)."""
    import importlib
    import grpc
    sys.path.insert(0, str(REPO / "tests" / "integration"))
    import test_databend as db
    pb_dir = os.path.join(tmp, "pb")
    subprocess.run(["protoc", "--python_out=" + pb_dir, "--proto_path=proto", "proto/resource.proto"], cwd=REPO, check=True)
    pb = importlib.import_module("resource_pb2")
    imports = db.ImportServer()
    tenant = "tenant-w"

    def rpc(method, req, resp):
        stub = channel.unary_unary("/resourceproto.WorkerService/" + method, request_serializer=lambda m: m.SerializeToString(),
                                   response_deserializer=resp.FromString)
        md = [("x-databend-tenant", tenant), ("x-databend-user", "'root'@'%'"), ("x-databend-query-id", str(uuid.uuid4())),
              ("worker_client_version", "v1")]
        try:
            return "OK", stub(req, timeout=60, metadata=md)
        except grpc.RpcError as e:
            return e.code().name, e.details()

    try:
        v = db.vector("read_stage_dup_basename", "create_worker", imports.port)
        name = v["name"]
        code, _ = rpc("CreateWorker", pb.CreateWorkerRequest(tenant_id=tenant, name=name,
                                                             options={"size": "large", "min_cluster_count": "2"}),
                      pb.CreateWorkerResponse)
        tap(code == "OK", "CREATE WORKER %s WITH size='large', min_cluster_count='2'" % name, code)
        kube.take()
        udf = pb.CreateWorkerRequest(tenant_id=tenant, name=name, if_not_exists=True, type="udf", script=v["script"])
        code, resp = rpc("CreateWorker", udf, pb.CreateWorkerResponse)
        conv = kube.take()
        deps = [r for r in conv if r["method"] == "PATCH" and "/deployments/" in r["path"]]
        dep = deps[-1]["body"] if deps else {}
        res = (dep.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or [{}])[0].get("resources")
        tap(code == "OK" and dep.get("spec", {}).get("replicas") == 2 and
            res == {"requests": {"cpu": "2000m", "memory": "2048Mi"}, "limits": {"cpu": "2000m", "memory": "2048Mi"}},
            "the UDF's CreateWorker: its Deployment has min_cluster_count replicas and the size's resources",
            "%s %r\n%s" % (code, resp if code != "OK" else resp.endpoint, json.dumps(dep)[:1500]))
        dep_path = deps[-1]["path"] if deps else "?"
        objs_file = os.path.join(tmp, "worker-objects.yaml")
        Path(objs_file).write_text("---\n" + json.dumps(dep, indent=1) + "\n")
        val = subprocess.run(["node", "tests/k8s/validate.js", "--sandbox", objs_file], cwd=REPO, capture_output=True,
                             text=True, timeout=60)
        tap(val.returncode == 0, "the sized Deployment validates (kubernetes-models)", val.stdout + val.stderr)

        code, _ = rpc("AlterWorker", pb.AlterWorkerRequest(tenant_id=tenant, name=name, state_action=pb.Suspend),
                      pb.AlterWorkerResponse)
        seen = []
        until = time.monotonic() + 10
        while time.monotonic() < until and not any(r["method"] == "PATCH" and r["path"] == dep_path and
                                                   r["body"]["spec"]["replicas"] == 0 for r in seen):
            time.sleep(0.05)
            seen += kube.take()
        tap(code == "OK" and any(r["method"] == "PATCH" and r["path"] == dep_path and r["body"]["spec"]["replicas"] == 0
                                 for r in seen) and not any(r["method"] == "DELETE" for r in seen),
            "SUSPEND: the Deployment is applied with replicas 0 (recorded), nothing deleted",
            [(r["method"], r["path"]) for r in seen])
        code, det = rpc("CreateWorker", udf, pb.CreateWorkerResponse)
        tap(code == "FAILED_PRECONDITION" and ("worker %s is suspended" % name) in det,
            "a UDF call for the suspended worker: FAILED_PRECONDITION", (code, det))
        kube.take()
        code, _ = rpc("AlterWorker", pb.AlterWorkerRequest(tenant_id=tenant, name=name, state_action=pb.Resume),
                      pb.AlterWorkerResponse)
        seen = []
        until = time.monotonic() + 10
        while time.monotonic() < until and not any(r["method"] == "PATCH" and r["path"] == dep_path and
                                                   r["body"]["spec"]["replicas"] == 2 for r in seen):
            time.sleep(0.05)
            seen += kube.take()
        tap(code == "OK" and any(r["method"] == "PATCH" and r["path"] == dep_path and r["body"]["spec"]["replicas"] == 2
                                 for r in seen), "RESUME: the Deployment is applied with its replicas again",
            [(r["method"], r["path"]) for r in seen])
        code, resp = rpc("CreateWorker", udf, pb.CreateWorkerResponse)
        tap(code == "OK" and resp.endpoint.endswith(".svc.cluster.local:8815"), "... and the UDF call answers",
            (code, resp))
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
        tap(code == "OK" and any(r["method"] == "PATCH" and r["path"] == dep_path and r["body"]["spec"]["replicas"] == 0
                                 for r in seen) and code2 == "FAILED_PRECONDITION",
            "auto_suspend = 1: idle, the worker suspends itself (replicas 0) and a call is refused",
            (code, code2, det, [(r["method"], r["path"]) for r in seen]))
        kube.take()
        code, _ = rpc("DropWorker", pb.DropWorkerRequest(tenant_id=tenant, name=name), pb.DropWorkerResponse)
        seen = []
        until = time.monotonic() + 10
        while time.monotonic() < until and len([r for r in seen if r["method"] == "DELETE"]) < 4:
            time.sleep(0.05)
            seen += kube.take()
        dels = sorted(r["path"].split("/")[-2] for r in seen if r["method"] == "DELETE")
        tap(code == "OK" and dels == ["configmaps", "deployments", "networkpolicies", "services"],
            "DROP: DELETE of its registry ConfigMap, Deployment, Service and NetworkPolicy (recorded)",
            [(r["method"], r["path"]) for r in seen])
        code, lst = rpc("ListWorkers", pb.ListWorkersRequest(tenant_id=tenant), pb.ListWorkersResponse)
        tap(code == "OK" and len(lst.workers) == 0, "SHOW WORKERS: empty", (code, lst))
    finally:
        imports.close()


def start(cmd, env, tmp, name):
    import grpc
    err = open(os.path.join(tmp, name + ".stderr"), "wb")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, env=env, cwd=tmp)
    box = []
    t = threading.Thread(target=lambda: box.append(proc.stdout.readline().decode()), daemon=True)
    t.start()
    t.join(20)
    m = re.fullmatch(r"serving grpc_port=(\d+) admin_port=(\d+)\n", box[0] if box else "")
    if not m:
        proc.kill()
        raise AssertionError("%s did not start: %r" % (name, box))
    ch = grpc.insecure_channel("127.0.0.1:%s" % m.group(1))
    grpc.channel_ready_future(ch).result(timeout=20)
    return proc, ch, err


def replicas(cmd, env, tmp, kube):
    """Two service replicas, each with its own store, on one API server:
    the cluster (a ConfigMap per worker) is the registry they share."""
    import grpc
    import resource_pb2 as pb
    procs = []
    try:
        chans = []
        for i in (1, 2):
            c = list(cmd)
            c[c.index("--store") + 1] = os.path.join(tmp, "replica%d-store" % i)
            p, ch, err = start(c, env, tmp, "replica%d" % i)
            procs.append((p, ch, err))
            chans.append(ch)
        tenant = "tenant-r"

        def rpc(ch, method, req, resp):
            stub = ch.unary_unary("/resourceproto.WorkerService/" + method, request_serializer=lambda m: m.SerializeToString(),
                                  response_deserializer=resp.FromString)
            md = [("x-databend-tenant", tenant), ("worker_client_version", "v1")]
            try:
                return "OK", stub(req, timeout=20, metadata=md)
            except grpc.RpcError as e:
                return e.code().name, e.details()

        def show(ch):
            code, r = rpc(ch, "ListWorkers", pb.ListWorkersRequest(tenant_id=tenant), pb.ListWorkersResponse)
            return code, [(w.name, dict(w.tags), dict(w.options)) for w in r.workers] if code == "OK" else r

        kube.take(lists=True)
        code, _ = rpc(chans[0], "CreateWorker", pb.CreateWorkerRequest(tenant_id=tenant, name="shared_wh",
                      tags={"team": "x"}, options={"size": "small", "auto_resume": "false"}), pb.CreateWorkerResponse)
        cms = {p: o for p, o in kube.objects.items() if "/configmaps/" in p}
        tap(code == "OK" and len(cms) == 1, "replica 1: CREATE WORKER writes one ConfigMap", (code, list(cms)))
        objs_file = os.path.join(tmp, "configmap.yaml")
        Path(objs_file).write_text("".join("---\n" + json.dumps(o, indent=1) + "\n" for o in cms.values()))
        val = subprocess.run(["node", "tests/k8s/validate.js", "--sandbox", objs_file], cwd=REPO, capture_output=True,
                             text=True, timeout=60)
        tap(val.returncode == 0, "the registry ConfigMap validates (kubernetes-models)", val.stdout + val.stderr)
        want = ("shared_wh", {"team": "x"}, {"size": "small", "auto_resume": "false"})
        tap(show(chans[1]) == ("OK", [want]), "replica 2 lists the worker replica 1 created", show(chans[1]))
        code, _ = rpc(chans[0], "CreateWorker", pb.CreateWorkerRequest(tenant_id=tenant, name="shared_wh"),
                      pb.CreateWorkerResponse)
        code2, _ = rpc(chans[1], "CreateWorker", pb.CreateWorkerRequest(tenant_id=tenant, name="shared_wh"),
                       pb.CreateWorkerResponse)
        tap(code == code2 == "ALREADY_EXISTS", "CREATE again through either replica: ALREADY_EXISTS", (code, code2))
        code, _ = rpc(chans[1], "AlterWorker", pb.AlterWorkerRequest(tenant_id=tenant, name="shared_wh",
                      set_tags={"env": "prod"}, state_action=pb.Suspend), pb.AlterWorkerResponse)
        tap(code == "OK" and show(chans[0]) == ("OK", [(want[0], {"team": "x", "env": "prod"}, want[2])]),
            "replica 2 alters and suspends it; replica 1 lists the change", (code, show(chans[0])))
        rec = json.loads(list(o for p, o in kube.objects.items() if "/configmaps/" in p)[0]["data"]["worker"])
        tap(rec.get("state") == "suspended", "the ConfigMap records the state", rec)
        # A restart of replica 1 with an empty store: the cluster still has it.
        p, ch, err = procs[0]
        ch.close()
        p.send_signal(signal.SIGTERM)
        p.wait(20)
        err.close()
        c = list(cmd)
        c[c.index("--store") + 1] = os.path.join(tmp, "replica3-store")
        procs[0] = start(c, env, tmp, "replica3")
        chans[0] = procs[0][1]
        tap(show(chans[0]) == show(chans[1]) and len(show(chans[0])[1]) == 1,
            "a replica started later (empty store) lists the same workers", (show(chans[0]), show(chans[1])))
        code, _ = rpc(chans[1], "DropWorker", pb.DropWorkerRequest(tenant_id=tenant, name="shared_wh"), pb.DropWorkerResponse)
        cms = [p for p in kube.objects if "/configmaps/" in p]
        tap(code == "OK" and not cms and show(chans[0]) == ("OK", []),
            "replica 2 drops it: the ConfigMap is deleted, replica 1 lists none", (code, cms, show(chans[0])))
        code, _ = rpc(chans[0], "DropWorker", pb.DropWorkerRequest(tenant_id=tenant, name="shared_wh"), pb.DropWorkerResponse)
        tap(code == "NOT_FOUND", "... and a DROP through replica 1 is NOT_FOUND", code)
    except Exception:
        import traceback
        tap(False, "the two-replica checks ran to the end", traceback.format_exc())
    finally:
        for p, ch, err in procs:
            ch.close()
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
            err.close()
        kube.take(lists=True)  # this part's requests are not the next check's
        logs = [Path(tmp, "replica%d.stderr" % i).read_text(errors="replace") for i in (1, 2, 3)
                if Path(tmp, "replica%d.stderr" % i).exists()]
        tap(all(p.returncode == 0 for p, _, _ in procs) and not any("Sanitizer" in t for t in logs),
            "the replicas exit 0 on SIGTERM (no sanitizer report)", [p.returncode for p, _, _ in procs])


def main():
    if not os.access(BIN, os.X_OK):
        skip("%s is not built" % BIN)
    for tool in ("docker-registry", "skopeo", "node", "protoc"):
        if not shutil.which(tool):
            skip("%s is not installed" % tool)
    try:
        import grpc
    except ImportError:
        skip("python3-grpcio is not installed")
    if not (REPO / "tests/k8s/node_modules/kubernetes-models").is_dir():
        skip("tests/k8s/node_modules is not installed (npm ci in tests/k8s)")
    tmp = tempfile.mkdtemp(prefix="udfb-k8s-test.")
    reg_pid = reg_dir = None
    proc = None
    kube = None
    try:
        out = sh("bash", "-c", ". tests/lib/registry.sh && udfb_registry_start >&2 && "
                 "echo \"$REGISTRY $UDFB_REGISTRY_PID $UDFB_REGISTRY_DIR\"")
        registry, reg_pid, reg_dir = out.split()[-3:]
        tiny = sh("bash", "-c", ". tests/lib/base-image.sh && udfb_tiny_image").strip().splitlines()[-1]
        sh("skopeo", "copy", "--quiet", "--preserve-digests", "--dest-tls-verify=false", "oci:%s:tiny" % tiny,
           "docker://%s/udfb/base:tiny" % registry)

        import importlib
        pb = os.path.join(tmp, "pb")
        os.makedirs(pb)
        subprocess.run(["protoc", "--python_out=" + pb, "--proto_path=proto", "proto/udf.proto"], cwd=REPO, check=True)
        sys.path.insert(0, pb)
        udf_pb2 = importlib.import_module("udf_pb2")

        kube = FakeKube()
        token_file = os.path.join(tmp, "token")
        Path(token_file).write_text(TOKEN + "\n")
        cfg = os.path.join(tmp, "config.json")
        Path(cfg).write_text(json.dumps({"token_secrets": [SECRET]}))
        env = {k: v for k, v in os.environ.items() if not k.startswith("UDFB_") or k == "UDFB_TEST_CACHE"}
        env.pop("KUBERNETES_SERVICE_HOST", None)
        env["UDFB_REGISTRY_INSECURE"] = registry
        env["DOCKER_CONFIG"] = os.path.join(tmp, "no-docker-config")
        stderr_path = os.path.join(tmp, "stderr")
        cmd = [BIN, "serve", "--config", cfg, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
               "--store", os.path.join(tmp, "store"), "--scheduler", "kubernetes", "--default-runtime", "3",
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
        stderr = open(stderr_path, "wb")
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, env=env, cwd=tmp)
        box = []
        t = threading.Thread(target=lambda: box.append(proc.stdout.readline().decode()), daemon=True)
        t.start()
        t.join(20)
        m = re.fullmatch(r"serving grpc_port=(\d+) admin_port=(\d+)\n", box[0] if box else "")
        tap(bool(m), "serve --scheduler kubernetes starts", box)
        if not m:
            print("#   " + Path(stderr_path).read_text(errors="replace")[-2000:].replace("\n", "\n#   "))
            return
        channel = grpc.insecure_channel("127.0.0.1:%s" % m.group(1))
        grpc.channel_ready_future(channel).result(timeout=20)
        apply = channel.unary_unary(APPLY, request_serializer=lambda m: m.SerializeToString(),
                                    response_deserializer=udf_pb2.ApplyUdfResourceResponse.FromString)

        def req(nonce):
            spec = {"version": 1, "kind": "udf", "language": "python", "handler": "f", "input_types": ["INT"],
                    "result_type": "INT", "imports": [], "packages": [], "runtime_version": "3",
                    "code": "# %s\ndef f(x):\n    return x + 1\n" % nonce}
            return udf_pb2.ApplyUdfResourceRequest(spec=json.dumps(spec, separators=(",", ":")))

        def call(r, tenant, apply=apply):
            md = [("x-databend-tenant", tenant), ("x-databend-user", "'root'@'%'"),
                  ("x-databend-query-id", str(uuid.uuid4())), ("udf_client_version", "v1")]
            try:
                resp = apply(r, timeout=60, metadata=md)
                return "OK", resp.endpoint, dict(resp.headers)
            except grpc.RpcError as e:
                return e.code().name, e.details() or "", {}

        r1 = req(uuid.uuid4().hex)
        code, ep, headers = call(r1, "tenant-a")
        tap(code == "OK", "ApplyUdfResource for tenant-a answers OK", (code, ep))
        mm = re.fullmatch(r"http://(udf-[0-9a-f]{16})\.(udf-tenant-a-[0-9a-f]{10})\.svc\.cluster\.local:8815", ep)
        tap(bool(mm), "the endpoint is http://<service>.<namespace>.svc.cluster.local:8815", ep)
        name, ns = (mm.group(1), mm.group(2)) if mm else ("?", "?")
        conv = kube.take()
        patches = [r for r in conv if r["method"] == "PATCH"]
        want = ["/api/v1/namespaces/%s" % ns,
                "/apis/apps/v1/namespaces/%s/deployments/%s" % (ns, name),
                "/api/v1/namespaces/%s/services/%s" % (ns, name),
                "/apis/networking.k8s.io/v1/namespaces/%s/networkpolicies/%s" % (ns, name)]
        tap([r["path"] for r in patches] == want, "applies namespace -> deployment -> service -> networkpolicy",
            json.dumps([(r["method"], r["path"]) for r in conv], indent=1))
        tap(all(r["content_type"] == "application/apply-patch+yaml" for r in patches),
            "every apply is Content-Type application/apply-patch+yaml", [r["content_type"] for r in patches])
        tap(all(sorted(r["query"].split("&")) == ["fieldManager=udf-builder", "force=true"] for r in patches),
            "every apply has fieldManager=udf-builder&force=true", [r["query"] for r in patches])
        tap(all(r["authorization"] == "Bearer " + TOKEN for r in conv),
            "every request carries the bearer token (from the YAML kubeconfig's user)")
        gets = [r for r in conv if r["method"] == "GET"]
        tap(len(gets) >= 2 and all(r["path"] == want[1] for r in gets) and conv[-1]["method"] == "GET",
            "readiness: GETs of the Deployment after the applies until readyReplicas >= 1",
            [(r["method"], r["path"]) for r in conv])
        dep = patches[1]["body"] if len(patches) > 1 else {}
        img = dep.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [{}])[0].get("image", "")
        tap(re.fullmatch(re.escape(registry) + r"/udfb/udf@sha256:[0-9a-f]{64}", img) is not None,
            "the Deployment's image is HOST/REPO@sha256:... (no docker://, no tag)", img)
        if img:
            pushed = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", "docker://" + img],
                                    capture_output=True)
            tap(pushed.returncode == 0, "the image is in the registry by that digest", pushed.stderr[-300:])
        pod = dep.get("spec", {}).get("template", {}).get("spec", {})
        envs = {e["name"]: e.get("value") for e in (pod.get("containers") or [{}])[0].get("env", [])}
        tap(envs.get("UDF_SERVER_ADDR") == "0.0.0.0:8815" and envs.get("RESOURCE_STATUS_ADDR") == "0.0.0.0:8080"
            and token_accepted(headers.get("x-authorization", ""), (envs.get("UDF_AUTH_KEYS") or "").split(",")),
            "env: UDF_SERVER_ADDR, RESOURCE_STATUS_ADDR and the sandbox keys the caller's token checks with", envs)
        tap(pod.get("runtimeClassName") == "runsc", "runtimeClassName defaults to runsc", pod.get("runtimeClassName"))

        code2, ep2, _ = call(r1, "tenant-a")
        again = kube.take()
        tap(code2 == "OK" and ep2 == ep and not again,
            "a second call for the same key is answered from memory: same endpoint, no API request",
            (code2, ep2, [(r["method"], r["path"]) for r in again]))

        code3, ep3, _ = call(req(uuid.uuid4().hex), "Tenant_B")
        conv_b = kube.take()
        ns_b = [r["path"] for r in conv_b if r["method"] == "PATCH" and r["path"].startswith("/api/v1/namespaces/")
                and r["path"].count("/") == 4]
        tap(code3 == "OK" and len(ns_b) == 1 and ns_b[0] != want[0] and re.match(r"/api/v1/namespaces/udf-tenant-b-[0-9a-f]{10}$", ns_b[0]),
            "a second tenant gets its own namespace", (code3, ep3, ns_b))

        # Every object applied, validated with kubernetes-models.
        objs = [o for o in kube.objects.values()]
        objs_file = os.path.join(tmp, "objects.yaml")
        Path(objs_file).write_text("".join("---\n" + json.dumps(o, indent=1) + "\n" for o in objs))
        v = subprocess.run(["node", "tests/k8s/validate.js", "--sandbox", objs_file], cwd=REPO, capture_output=True,
                           text=True, timeout=60)
        tap(v.returncode == 0 and len(objs) == 8, "node tests/k8s/validate.js --sandbox: %d objects valid" % len(objs),
            v.stdout + v.stderr)
        npol = [o for o in objs if o["kind"] == "NetworkPolicy"][0]
        blocks = [p["ipBlock"] for r in npol["spec"]["egress"] for p in r["to"] if "ipBlock" in p]
        tap(any(b["cidr"] == "0.0.0.0/0" and b.get("except") == ["169.254.169.254/32"] for b in blocks)
            and all("except" not in b for b in blocks if b["cidr"] == "10.0.0.0/8"),
            "a CIDR holding 169.254.169.254 gets it excepted; others do not", blocks)

        code4, det4, _ = call(req(uuid.uuid4().hex), "forbidden")
        tap(code4 == "INVALID_ARGUMENT" and re.search(r"kubernetes: apply Namespace udf-forbidden-[0-9a-f]{10}: HTTP 403: .*forbidden", det4)
            and "\n" not in det4, "an API 403 is a one-line gRPC error naming the object and the Status message",
            (code4, det4))
        kube.take()

        # Idleness: tenant-a's Deployment is applied with replicas 0 after
        # idle_ms, and the next call applies it again with replicas 1.
        seen = []
        until = time.monotonic() + 10
        while time.monotonic() < until and not any(
                r["method"] == "PATCH" and r["path"] == want[1] and r["body"]["spec"]["replicas"] == 0 for r in seen):
            time.sleep(0.1)
            seen += kube.take()
        tap(any(r["method"] == "PATCH" and r["path"] == want[1] and r["body"]["spec"]["replicas"] == 0 for r in seen),
            "an idle sandbox's Deployment is scaled to zero by apply", [(r["method"], r["path"]) for r in seen])
        code5, ep5, _ = call(r1, "tenant-a")
        back = kube.take()
        tap(code5 == "OK" and ep5 == ep and any(r["method"] == "PATCH" and r["path"] == want[1]
                                                and r["body"]["spec"]["replicas"] == 1 for r in back),
            "the next call scales it back to one replica, same endpoint", (code5, ep5, [(r["method"], r["path"]) for r in back]))

        workers(channel, kube, tmp)
        replicas(cmd, env, tmp, kube)

        channel.close()
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = "timeout"
        stderr.close()
        text = Path(stderr_path).read_text(errors="replace")
        tap(rc == 0, "SIGTERM: the service exits 0 (no sanitizer report)", "rc %s\n%s" % (rc, text[-3000:]))
        tap(TOKEN not in text and TOKEN[16:] not in text, "the bearer token never appears in the service's stderr")

        # An oci: destination (the default: a layout in the store) cannot run
        # on Kubernetes: the call fails saying a docker:// --dest is needed.
        cmd2 = list(cmd)
        i = cmd2.index("--dest")
        del cmd2[i:i + 2]
        cmd2[cmd2.index("--store") + 1] = os.path.join(tmp, "store2")
        err2 = open(os.path.join(tmp, "stderr2"), "wb")
        proc = subprocess.Popen(cmd2, stdout=subprocess.PIPE, stderr=err2, env=env, cwd=tmp)
        box = []
        t = threading.Thread(target=lambda: box.append(proc.stdout.readline().decode()), daemon=True)
        t.start()
        t.join(20)
        m = re.fullmatch(r"serving grpc_port=(\d+) admin_port=(\d+)\n", box[0] if box else "")
        if m:
            ch2 = grpc.insecure_channel("127.0.0.1:%s" % m.group(1))
            grpc.channel_ready_future(ch2).result(timeout=20)
            apply2 = ch2.unary_unary(APPLY, request_serializer=lambda m: m.SerializeToString(),
                                     response_deserializer=udf_pb2.ApplyUdfResourceResponse.FromString)
            code6, det6, _ = call(req(uuid.uuid4().hex), "tenant-a", apply2)
            ch2.close()
        else:
            code6, det6 = "no server", repr(box)
        conv6 = kube.take()
        # The second service's reaper may scale the first one's idle
        # Deployments to zero meanwhile: those PATCHes are not this call's.
        applied = [r for r in conv6 if r["method"] == "PATCH" and
                   ((r.get("body") or {}).get("spec") or {}).get("replicas") != 0]
        tap(code6 == "UNIMPLEMENTED" and "docker://" in det6 and not applied,
            "an oci: destination: UNIMPLEMENTED saying a docker:// --dest is needed, nothing applied",
            (code6, det6, [(r["method"], r["path"]) for r in applied]))
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        err2.close()
    finally:
        if proc and proc.poll() is None:
            proc.kill()
            proc.wait(10)
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
        print("1..%d" % n, flush=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
