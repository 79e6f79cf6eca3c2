#!/usr/bin/python3
"""Integration test of Databend's released wire: every vector of
tests/data/databend (a copy of ../shared/testdata/databend, byte for byte
what released Databend nodes send) through the running service, as a query
node sends it: Debian's python3-grpcio, the method paths
/resourceproto.ResourceService/ApplyResource and
/resourceproto.WorkerService/CreateWorker, Databend's metadata
(x-databend-tenant, x-databend-user, x-databend-query-id, the version marker)
and its 5 s deadline, with sandboxes started locally under runc.

The runtime inside the base is the TEST DOUBLE of databend_udf
(tests/runtime-double: JSON over HTTP instead of Arrow Flight); the image runs
Databend's own stub from the script behind udf-builder's token wrapper.

Checks: each UDF with a `call` answers its expected value through both RPCs;
missing_import fails naming the location; the re-signed variant is answered
from memory with no request to the import server; an object replaced at the
import server is served after the revalidation window; a store that ignores
Range is downloaded once; CREATE OR REPLACE hands out the new sandbox only;
an unknown script shape and a package injection are refused before anything
is fetched or started; tenant_id must be the caller's; the WORKER statements;
unknown methods answer UNIMPLEMENTED at once; the markers are counted.

Needs root, runc and overlayfs; prints "1..0 # SKIP ..." and exits 77 without
them.  Results are TAP lines.
"""

import hashlib
import http.server
import importlib
import io
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
import urllib.error
import urllib.request
import uuid
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "lib"))
import tap  # noqa: E402

BIN = os.environ.get("UDFB_BIN") or str(REPO / "bin" / "udf-builder")
VECTORS = REPO / "tests" / "data" / "databend"
APPLY_RESOURCE = "/resourceproto.ResourceService/ApplyResource"
CREATE_WORKER = "/resourceproto.WorkerService/CreateWorker"
TENANT = "test_tenant"
DEADLINE = 5.0  # Databend's default cloud_control_grpc_timeout
COLD_TIMEOUT = 180.0  # a first build unpacks the base once: queries are retried until then
REVALIDATE_MS = 5000
SECRET = "databend-test-secret-0123456789"

grpc = None
pb = None
TMP = None
SERVERS = []


def sh(*cmd, check=True, timeout=120):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=check,
                          timeout=timeout).stdout


def skip_reason():
    if os.geteuid() != 0:
        return "needs root (runc, overlay mounts)"
    if not shutil.which("runc"):
        return "runc is not installed"
    if "overlay" not in Path("/proc/filesystems").read_text():
        return "no overlayfs in this kernel"
    if not os.access(BIN, os.X_OK):
        return "%s is not built (run make)" % BIN
    try:
        import grpc  # noqa: F401
    except ImportError:
        return "python3-grpcio is not installed"
    return None


def load_protos():
    global grpc, pb
    import grpc as grpc_mod

    grpc = grpc_mod
    out = os.path.join(TMP, "pb")
    os.makedirs(out)
    subprocess.run(["protoc", "--python_out=" + out, "--proto_path=proto", "proto/resource.proto"], cwd=REPO, check=True)
    sys.path.insert(0, out)
    pb = importlib.import_module("resource_pb2")


# ---- the import server: an object store on loopback ----


class ImportServer:
    """Serves the vectors' files as an object store does: ETag, and Range
    (bytes=0-0 -> 206 with Content-Range) unless honor_range is off.  Counts
    requests per path and records the Host header each carried."""

    def __init__(self):
        self.files = {}
        self.requests = []
        self.honor_range = True
        self.lock = threading.Lock()
        for path in sorted(VECTORS.glob("*.expect.json")):
            for name, content in json.loads(path.read_text())["files"].items():
                self.put(name, content)
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                path = self.path.split("?", 1)[0].lstrip("/")
                with outer.lock:
                    outer.requests.append((path, self.headers.get("Range"), self.headers.get("Host")))
                    body = outer.files.get(path)
                    honor = outer.honor_range
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                etag = '"%s"' % hashlib.md5(body).hexdigest()
                rng = self.headers.get("Range")
                if honor and rng == "bytes=0-0" and body:
                    self.send_response(206)
                    self.send_header("Content-Range", "bytes 0-0/%d" % len(body))
                    out = body[:1]
                else:
                    self.send_response(200)
                    out = body
                self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def put(self, name, content):
        if name.startswith("zip:"):
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as z:
                for member, text in sorted(content.items()):
                    z.writestr(zipfile.ZipInfo(member, (2020, 1, 1, 0, 0, 0)), text)
            name, data = name[4:], buf.getvalue()
        else:
            data = content.encode() if isinstance(content, str) else content
        with self.lock:
            self.files[name] = data

    def count(self, path=None):
        with self.lock:
            return len([r for r in self.requests if path is None or r[0] == path])

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def vector(name, rpc, port, suffix=""):
    text = (VECTORS / ("%s.%s%s.json" % (name, rpc, suffix))).read_text()
    return json.loads(text.replace("IMPORTS_BASE", "127.0.0.1:%d" % port))


def expect(name):
    return json.loads((VECTORS / (name + ".expect.json")).read_text())


# ---- the service ----


class Reply:
    def __init__(self, code, details="", endpoint="", headers=None, worker=None, elapsed=0.0):
        self.code, self.details, self.endpoint, self.headers = code, details, endpoint, headers or {}
        self.worker, self.elapsed = worker, elapsed

    @property
    def token(self):
        return self.headers.get("x-authorization")

    def __repr__(self):
        return "Reply(%s, %r, endpoint=%r, %.3f s)" % (self.code, self.details, self.endpoint, self.elapsed)


class Server:
    def __init__(self, name, config=None, extra=()):
        global BASE
        self.dir = os.path.join(TMP, name)
        os.makedirs(self.dir, exist_ok=True)
        self.state_dir = os.path.join(self.dir, "state")
        self.runtime_root = os.path.join(self.state_dir, "runtime")
        self.stderr_path = os.path.join(self.dir, "stderr")
        cfg = dict(config or {})
        cfg.setdefault("token_secrets", [SECRET])
        cfg_path = os.path.join(self.dir, "config.json")
        Path(cfg_path).write_text(json.dumps(cfg))
        env = {k: v for k, v in os.environ.items() if not k.startswith("UDFB_") or k == "UDFB_TEST_CACHE"}
        cmd = [BIN, "serve", "--config", cfg_path, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
               "--store", os.path.join(self.dir, "store"), "--scheduler", "local", "--imports-allow", "127.0.0.1",
               "--base-image", "3=oci:%s:python" % BASE, "--index-url", INDEX,
               "--imports-revalidate-ms", str(REVALIDATE_MS)] + list(extra)
        for k, v in {"state_dir": self.state_dir, "layers_dir": os.path.join(TMP, "layers"), "port_min": "23000",
                     "port_max": "23999", "runtime": "runc"}.items():
            cmd += ["--scheduler-opt", "%s=%s" % (k, v)]
        self.stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.stderr, env=env, cwd=self.dir)
        SERVERS.append(self)
        box = []
        t = threading.Thread(target=lambda: box.append(self.proc.stdout.readline().decode()), daemon=True)
        t.start()
        t.join(30)
        m = re.fullmatch(r"serving grpc_port=(\d+) admin_port=(\d+)\n", box[0] if box else "")
        if not m:
            self.kill()
            raise AssertionError("server did not start: %r%s" % (box, self.stderr_tail()))
        self.admin = "http://127.0.0.1:%s" % m.group(2)
        self.channel = grpc.insecure_channel("127.0.0.1:%s" % m.group(1))
        grpc.channel_ready_future(self.channel).result(timeout=30)

    def rpc(self, path, req, resp_cls, marker, tenant=TENANT, timeout=DEADLINE):
        stub = self.channel.unary_unary(path, request_serializer=lambda m: m.SerializeToString(),
                                        response_deserializer=resp_cls.FromString)
        md = [("x-databend-tenant", tenant), ("x-databend-user", "'root'@'%'"),
              ("x-databend-query-id", str(uuid.uuid4())), (marker, "v1")]
        t0 = time.monotonic()
        try:
            resp = stub(req, timeout=timeout, metadata=md)
        except grpc.RpcError as e:
            return Reply(e.code().name, e.details() or "", elapsed=time.monotonic() - t0)
        return Reply("OK", "", getattr(resp, "endpoint", ""), dict(getattr(resp, "headers", {})),
                     getattr(resp, "worker", None), time.monotonic() - t0)

    def apply_resource(self, d, **kw):
        req = pb.ApplyResourceRequest(type=d.get("type", ""), script=d.get("script", ""))
        return self.rpc(APPLY_RESOURCE, req, pb.ApplyResourceResponse, "resource_client_version", **kw)

    def create_worker(self, d, **kw):
        req = pb.CreateWorkerRequest(tenant_id=d.get("tenantId", ""), name=d.get("name", ""),
                                     if_not_exists=d.get("ifNotExists", False), type=d.get("type", ""),
                                     script=d.get("script", ""), tags=d.get("tags", {}), options=d.get("options", {}))
        return self.rpc(CREATE_WORKER, req, pb.CreateWorkerResponse, "worker_client_version", **kw)

    def query(self, rpc, d, timeout=COLD_TIMEOUT):
        """As Databend's queries do: each call has the 5 s deadline; a
        DEADLINE_EXCEEDED fails that query and the next one asks again."""
        until = time.monotonic() + timeout
        while True:
            r = self.create_worker(d) if rpc == "create_worker" else self.apply_resource(d)
            if r.code != "DEADLINE_EXCEEDED" or time.monotonic() > until:
                return r
            time.sleep(0.2)

    def metrics(self):
        with urllib.request.urlopen(self.admin + "/metrics", timeout=10) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out

    def containers(self):
        out = sh("runc", "--root", self.runtime_root, "list", "-q", check=False)
        return [line for line in out.splitlines() if line]

    def stderr_tail(self, n=30):
        try:
            lines = Path(self.stderr_path).read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\nserver stderr (last %d lines):\n  " % n + "\n  ".join(lines[-n:])

    def stop(self):
        self.channel.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
        self.stderr.close()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def udf_call(endpoint, function, args, token):
    req = urllib.request.Request(endpoint + "/call", data=json.dumps({"function": function, "args": args}).encode(),
                                 method="POST", headers={"Content-Type": "application/json", "x-authorization": token})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read().decode())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read().decode() or "null")


def endpoint_down(endpoint):
    """Nothing answers there (the forwarder closes connections to a stopped sandbox)."""
    try:
        with urllib.request.urlopen(endpoint + "/health", timeout=2):
            return False
    except urllib.error.HTTPError:
        return False
    except (urllib.error.URLError, OSError):
        return True


def called(r, handler, args, want):
    if r.code != "OK" or not r.endpoint or not r.token:
        return False, "reply %r" % r
    status, out = udf_call(r.endpoint, handler, args, r.token)
    return status == 200 and out.get("result") == want, "HTTP %s %r (want %r)" % (status, out, want)


# ---- the checks ----


def run(srv, imports):
    p = imports.port
    names = sorted(x.name[: -len(".expect.json")] for x in VECTORS.glob("*.expect.json"))
    endpoints = {}
    for name in names:
        exp = expect(name)
        if not exp["call"]:
            continue
        for rpc in ("create_worker", "apply_resource"):
            d = vector(name, rpc, p)
            r = srv.query(rpc, d)
            ok, why = called(r, exp["udf"]["handler"], exp["call"]["args"], exp["call"]["expect"])
            tap.check("%s via %s answers %r (%.3f s)" % (name, rpc, exp["call"]["expect"], r.elapsed), ok,
                      why + srv.stderr_tail())
            endpoints[(name, rpc)] = r

    log = Path(srv.stderr_path).read_text(errors="replace")
    tap.check("the prebuilt images were cache hits for the service (no build)",
              "(cached)" in log and "(built)" not in log, srv.stderr_tail(60))

    # Databend's stub checks no header: the wrapper around it does.
    r = endpoints.get(("read_env", "create_worker"))
    if r and r.token:
        bad = "0" * len(r.token)
        tap.check("Databend's stub runs behind the x-authorization check",
                  udf_call(r.endpoint, "read_env", [], bad)[0] == 401 and
                  udf_call(r.endpoint, "read_env", [], r.token)[0] == 200)

    # The same script through both RPCs is one image: the same sandbox.
    a, b = endpoints.get(("read_stage_dup_basename", "create_worker")), endpoints.get(("read_stage_dup_basename", "apply_resource"))
    tap.check("one script, both RPCs: one sandbox", a and b and a.endpoint == b.endpoint, "%r %r" % (a, b))

    # A repeated query within the window: answered from memory, no request.
    d = vector("read_pkg_zip_whl_egg", "create_worker", p)
    srv.query("create_worker", d)
    before = imports.count()
    times = []
    for _ in range(20):
        r = srv.create_worker(d)
        times.append(r.elapsed)
    times.sort()
    tap.check("repeated CreateWorker within the window: no import request (median %.2f ms)" % (times[10] * 1e3),
              imports.count() == before and r.code == "OK", "%d requests; %r" % (imports.count() - before, r))

    # missing_import: the location is named, no URL.
    for rpc in ("create_worker", "apply_resource"):
        r = srv.query(rpc, vector("missing_import", rpc, p))
        tap.check("missing_import via %s fails naming the location" % rpc,
                  r.code != "OK" and "@udf_import_stage/imports/missing.py" in r.details and "X-Amz" not in r.details,
                  repr(r))

    # The re-signed variant: a cache hit with no import request.
    first = srv.query("create_worker", vector("add_one_helper", "create_worker", p))
    before = imports.count()
    resigned = srv.create_worker(vector("add_one_helper", "create_worker", p, ".resigned"))
    tap.check("re-signed CreateWorker: same sandbox, no import request",
              resigned.code == "OK" and resigned.endpoint == first.endpoint and imports.count() == before,
              "%r %r, %d requests" % (first, resigned, imports.count() - before))
    hosts = {h for (path, rng, h) in imports.requests}
    tap.check("imports were fetched with the presign host header", hosts == {"127.0.0.1:%d" % p}, repr(hosts))
    probes = [r for r in imports.requests if r[1] == "bytes=0-0"]
    tap.check("imports were identified by a first-byte GET", len(probes) >= 1, repr(imports.requests[:5]))

    # A replaced object is served after the revalidation window.
    imports.put("imports/helper.py", "def add_one(x: int) -> int:\n    return x + 100\n")
    time.sleep(REVALIDATE_MS / 1000 + 0.5)
    r = srv.query("create_worker", vector("add_one_helper", "create_worker", p, ".resigned"))
    ok, why = called(r, "add_one", [1], 101)
    tap.check("a replaced import is served after the window", ok and r.endpoint != first.endpoint, why)
    imports.put("imports/helper.py", expect("add_one_helper")["files"]["imports/helper.py"])

    # An object store that ignores Range: one download, not two.
    imports.honor_range = False
    imports.put("imports/norange.py", "VALUE = 7\n")
    d = vector("add_one_helper", "create_worker", p)
    d["script"] = d["script"].replace("imports/helper.py", "imports/norange.py").replace(
        "import helper\n", "import norange as helper\n").replace(
        "return helper.add_one(x)", "return x + helper.VALUE")
    d["name"] = "norange"
    d["script"] = d["script"].replace('"add_one"', '"add_one"')
    before = imports.count("imports/norange.py")
    r = srv.query("create_worker", d)
    ok, why = called(r, "add_one", [1], 8)
    tap.check("a store ignoring Range: served, the object fetched once",
              ok and imports.count("imports/norange.py") - before == 1,
              "%s; %d requests" % (why, imports.count("imports/norange.py") - before))
    imports.honor_range = True

    # CREATE OR REPLACE: the same name, a new script; only the new sandbox.
    d_old = vector("read_env", "create_worker", p)
    old = srv.query("create_worker", d_old)
    d_new = dict(d_old)
    d_new["script"] = d_old["script"].replace('return os.getenv("UDF_ENV_TEST", "")',
                                              'return "v2:" + os.getenv("UDF_ENV_TEST", "")')
    new = srv.query("create_worker", d_new)
    ok, why = called(new, "read_env", [], "v2:sandbox_env_ok")
    again = [srv.create_worker(d_new) for _ in range(5)]
    tap.check("CREATE OR REPLACE: the new script's sandbox, and only it, from then on",
              ok and new.endpoint != old.endpoint and all(a.endpoint == new.endpoint for a in again),
              "%s; %r %r" % (why, old, again))
    tap.check("CREATE OR REPLACE: the worker names its update", new.worker is not None and new.worker.name == "read_env",
              repr(new.worker))
    # The old sandbox is stopped by the service's own timer once no call has
    # reached it for 10 s: no further call is made meanwhile.
    t0 = time.monotonic()
    while time.monotonic() - t0 < 40 and not endpoint_down(old.endpoint):
        time.sleep(0.5)
    took = time.monotonic() - t0
    tap.check("CREATE OR REPLACE: the old sandbox stopped by a timer once no call needs it (%.1f s)" % took,
              endpoint_down(old.endpoint) and endpoint_down(old.endpoint) and not endpoint_down(new.endpoint)
              and "stopped the replaced sandbox of key" in Path(srv.stderr_path).read_text(errors="replace"),
              srv.stderr_tail())
    strict = dict(d_old, ifNotExists=False)
    r = srv.create_worker(strict)
    tap.check("if_not_exists=false with another script: ALREADY_EXISTS", r.code == "ALREADY_EXISTS", repr(r))

    # Refusals before anything is fetched or started.
    base = vector("add_one_helper", "create_worker", p)
    # Containers started meanwhile, by id: the housekeeping timer may stop a
    # replaced sandbox during these calls, which starts nothing.
    n_req, boxes = imports.count(), set(srv.containers())
    bad = dict(base, script=base["script"].replace("humanize==4.9.0\n", "numpy; curl evil\n", 1), name="evil")
    r = srv.create_worker(bad)
    tap.check("a package injection is refused naming the string", r.code == "INVALID_ARGUMENT" and "'numpy;'" in r.details,
              repr(r))
    r = srv.apply_resource(dict(type="udf", script=bad["script"]))
    tap.check("... also via ApplyResource", r.code == "INVALID_ARGUMENT" and "'numpy;'" in r.details, repr(r))
    odd = dict(base, script=base["script"].replace("set -euo pipefail\n", "set -eu\n"), name="odd")
    r = srv.create_worker(odd)
    tap.check("an unknown script shape is refused naming the line and the template version",
              r.code == "INVALID_ARGUMENT" and "line 2" in r.details and "v1.2.874" in r.details, repr(r))
    tap.check("refused scripts fetched nothing and started nothing",
              imports.count() == n_req and not set(srv.containers()) - boxes,
              "%d requests, new sandboxes %r" % (imports.count() - n_req, sorted(set(srv.containers()) - boxes)))
    r = srv.create_worker(dict(base, tenantId="other_tenant"))
    tap.check("tenant_id other than x-databend-tenant: PERMISSION_DENIED", r.code == "PERMISSION_DENIED", repr(r))

    # The WORKER statements.
    w = {"tenantId": TENANT, "name": "wh1", "ifNotExists": True, "options": {"size": "small"}, "tags": {"team": "a"}}
    r = srv.create_worker(w)
    tap.check("CREATE WORKER (empty script): recorded, no endpoint", r.code == "OK" and r.endpoint == "" and
              r.worker.name == "wh1" and dict(r.worker.options) == {"size": "small"}, repr(r))
    alter = srv.rpc("/resourceproto.WorkerService/AlterWorker",
                    pb.AlterWorkerRequest(tenant_id=TENANT, name="wh1", set_tags={"env": "prod"}, unset_tags=["team"]),
                    pb.AlterWorkerResponse, "worker_client_version")
    lst = srv.rpc("/resourceproto.WorkerService/ListWorkers", pb.ListWorkersRequest(tenant_id=TENANT),
                  pb.ListWorkersResponse, "worker_client_version")
    stub = srv.channel.unary_unary("/resourceproto.WorkerService/ListWorkers",
                                   request_serializer=lambda m: m.SerializeToString(),
                                   response_deserializer=pb.ListWorkersResponse.FromString)
    listed = stub(pb.ListWorkersRequest(tenant_id=TENANT), timeout=DEADLINE,
                  metadata=[("x-databend-tenant", TENANT), ("worker_client_version", "v1")])
    by_name = {x.name: x for x in listed.workers}
    tap.check("ALTER WORKER and SHOW WORKERS", alter.code == "OK" and lst.code == "OK" and
              dict(by_name["wh1"].tags) == {"env": "prod"} and "read_env" in by_name, repr(listed))
    drop = lambda ie: srv.rpc("/resourceproto.WorkerService/DropWorker",  # noqa: E731
                              pb.DropWorkerRequest(tenant_id=TENANT, name="wh1", if_exists=ie),
                              pb.DropWorkerResponse, "worker_client_version")
    tap.check("DROP WORKER, again NOT_FOUND, IF EXISTS OK",
              [drop(False).code, drop(False).code, drop(True).code] == ["OK", "NOT_FOUND", "OK"])

    # Other services on the channel: UNIMPLEMENTED at once, naming the method.
    for path in ("/taskproto.TaskService/CreateTask", "/notificationproto.NotificationService/ListNotification",
                 "/billingproto.BillingService/Query", "/nosuch.Service/Method"):
        stub = srv.channel.unary_unary(path, request_serializer=lambda b: b, response_deserializer=lambda b: b)
        t0 = time.monotonic()
        try:
            stub(b"", timeout=DEADLINE)
            code, details = "OK", ""
        except grpc.RpcError as e:
            code, details = e.code().name, e.details()
        tap.check("%s: UNIMPLEMENTED naming it, in %.3f s" % (path, time.monotonic() - t0),
                  code == "UNIMPLEMENTED" and path in details and time.monotonic() - t0 < 1, "%s %r" % (code, details))

    m = srv.metrics()
    tap.check("markers counted in /metrics",
              m.get('udfb_client_versions_total{marker="worker_client_version",value="v1"}', 0) > 0 and
              m.get('udfb_client_versions_total{marker="resource_client_version",value="v1"}', 0) > 0, repr(
                  {k: v for k, v in m.items() if "client_versions" in k}))
    tap.check("CreateWorker calls counted by RPC",
              m.get('udfb_rpc_calls_total{rpc="CreateWorker",code="OK"}', 0) > 0 and
              m.get('udfb_rpc_calls_total{rpc="unimplemented",code="UNIMPLEMENTED"}', 0) >= 4)
    tap.check("no signature in the service's log",
              "X-Amz-Signature" not in Path(srv.stderr_path).read_text(errors="replace"))


def prebuild(imports):
    """What a released Databend will ask for, built ahead into the store the
    service then uses: one CreateWorker or ApplyResource JSON a line."""
    lines = []
    for path in sorted(VECTORS.glob("*.expect.json")):
        name = path.name[: -len(".expect.json")]
        if not json.loads(path.read_text())["call"]:
            continue
        lines.append(json.dumps(vector(name, "create_worker", imports.port)))
        d = vector(name, "apply_resource", imports.port)
        d["tenant"] = TENANT  # the metadata's tenant: ApplyResourceRequest has none
        lines.append(json.dumps(d))
    jsonl = os.path.join(TMP, "databend.jsonl")
    Path(jsonl).write_text("\n".join(lines) + "\n")
    store = os.path.join(TMP, "main", "store")
    p = subprocess.run([BIN, "prebuild", jsonl, "--store", store, "--dest", "oci:%s/images" % store,
                        "--base", "oci:%s:python" % BASE, "--index-url", INDEX, "--imports-allow", "127.0.0.1",
                        "-j", "2"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
    return p.returncode, p.stdout


def keys_without_building(imports):
    """`prebuild --dry-run` and `key` take script requests with imports: each
    import is named by its first-byte GET, and the keys are those of the
    images prebuild built (their tags end in the key's hex)."""
    jsonl = os.path.join(TMP, "databend.jsonl")
    store = os.path.join(TMP, "main", "store")
    p = subprocess.run([BIN, "prebuild", jsonl, "--dry-run", "--store", store, "--base", "oci:%s:python" % BASE,
                        "--index-url", INDEX, "--imports-allow", "127.0.0.1"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=300)
    rows = [line.split(" ", 1) for line in p.stdout.splitlines() if line.strip()]
    tags = Path(store, "images", "index.json").read_text()
    ok = p.returncode == 0 and rows and all(k.startswith("sha256:") and k[7:] in tags for k, _ in rows)
    one = os.path.join(TMP, "one.json")
    Path(one).write_text(json.dumps(vector("add_one_helper", "create_worker", imports.port)))
    k = subprocess.run([BIN, "key", one, "--store", store, "--base", "oci:%s:python" % BASE, "--imports-allow",
                        "127.0.0.1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    ok = ok and k.returncode == 0 and k.stdout.strip()[7:] in tags
    return ok, "dry-run exit %d:\n%s\nkey exit %d: %s" % (p.returncode, p.stdout, k.returncode, k.stdout)


def warm(imports):
    """warm takes the same lines: one warm image per distinct package set."""
    jsonl = os.path.join(TMP, "databend.jsonl")
    store = os.path.join(TMP, "warm-store")
    p = subprocess.run([BIN, "warm", jsonl, "--runtime", "3", "--store", store, "--dest", "oci:%s/images" % store,
                        "--base", "oci:%s:python" % BASE, "--index-url", INDEX], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=900)
    lines = [json.loads(x) for x in p.stdout.splitlines() if x.strip()]
    ok = p.returncode == 0 and len(lines) == 1 and lines[0]["from"].endswith(":1") and lines[0]["installed"] == 1
    return ok, "exit %d\n%s\n%s" % (p.returncode, p.stdout, p.stderr)


def start_index():
    import pkgindex_server
    import wheels

    wheels.build(os.path.join(TMP, "wheels"))
    s = pkgindex_server.start(os.path.join(TMP, "wheels"))
    return "http://127.0.0.1:%d/simple" % s.port


def cleanup():
    for s in SERVERS:
        s.kill()
        if os.path.isdir(s.runtime_root):
            for cid in sh("runc", "--root", s.runtime_root, "list", "-q", check=False).splitlines():
                if cid:
                    sh("runc", "--root", s.runtime_root, "delete", "--force", cid, check=False)
        for line in Path("/proc/mounts").read_text().splitlines():
            mnt = line.split()[1]
            if mnt.startswith(s.state_dir):
                subprocess.run(["umount", "-l", mnt], check=False)


def main():
    global TMP, BASE, INDEX
    os.chdir(REPO)
    reason = skip_reason()
    if reason:
        print("1..0 # SKIP %s" % reason)
        return 77
    TMP = tempfile.mkdtemp(prefix="udfb-databend-test.")
    os.chmod(TMP, 0o755)
    imports = None
    try:
        try:
            load_protos()
            BASE = sh("bash", "-c", ". tests/lib/base-image.sh && udfb_base_image", timeout=1200).strip().splitlines()[-1]
            INDEX = start_index()
            imports = ImportServer()
            env = {}
            for path in VECTORS.glob("*.expect.json"):
                d = json.loads(path.read_text())
                if d["call"] and d["call"].get("env"):
                    env["%s.%s" % (TENANT, d["udf"]["name"])] = d["call"]["env"]
            prebuilt = prebuild(imports)
            srv = Server("main", config={"env": env})
        except Exception:
            tap.check("setup (protoc, grpc, base image, package index, service)", False, traceback.format_exc())
            return tap.done()
        tap.check("prebuild takes the vectors' CreateWorker and ApplyResource lines", prebuilt[0] == 0, prebuilt[1])
        tap.check("warm takes them: humanize (add_one_helper's one package set) warmed once", *warm(imports))
        tap.check("prebuild --dry-run and key take them, imports named by a first-byte GET: the built images' keys",
                  *keys_without_building(imports))
        try:
            run(srv, imports)
        except Exception:
            tap.check("the checks ran to the end", False, traceback.format_exc() + srv.stderr_tail())
        srv.stop()
        log = Path(srv.stderr_path).read_text(errors="replace")
        tap.check("the service stopped cleanly on SIGTERM (exit 0, no sanitizer report)",
                  srv.proc.returncode == 0 and "Sanitizer" not in log, "exit %r%s" % (srv.proc.returncode, srv.stderr_tail(60)))
        return tap.done()
    finally:
        if imports:
            imports.close()
        cleanup()
        shutil.rmtree(TMP, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
