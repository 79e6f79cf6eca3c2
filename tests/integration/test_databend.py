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
With script_mode = run (a second service, under runc and runsc): the unknown shape runs as-is
(pip from the test index, the imports from the import server), behind the
token check; from inside, the index and import ports are reachable, the
service's gRPC/admin ports and other host ports are not; the re-signed
variant reuses the sandbox; a package injection is still refused; with the
template scheduler (no egress limit) it is FAILED_PRECONDITION.

Needs root, runc and overlayfs; prints "1..0 # SKIP ..." and exits 77 without
them.  Results are TAP lines.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import harness  # noqa: E402
import tap  # noqa: E402
from harness import BIN, called, udf_call  # noqa: E402
from http_server import ImportServer  # noqa: E402

VECTORS = harness.DATABEND
TENANT = "test_tenant"
DEADLINE = 5.0  # Databend's default cloud_control_grpc_timeout
REVALIDATE_MS = 5000
SECRET = "databend-test-secret-0123456789"

grpc = None
pb = None  # resource_pb2
TMP = BASE = INDEX = None


def vector(name, rpc, port, suffix=""):
    """NAME.RPC[SUFFIX].json, its imports at the import server on port."""
    return harness.vector(name, port, VECTORS, ".%s%s" % (rpc, suffix))


def expect(name):
    return harness.expect(name, VECTORS)


def serve(name, config=None):
    """The service with sandboxes under runc (layer cache shared)."""
    return harness.SandboxService(os.path.join(TMP, name), INDEX, [("3", "oci:%s:python" % BASE)],
                                  os.path.join(TMP, "layers"), (23000, 23999), config=config, secret=SECRET,
                                  tenant=TENANT, args=("--imports-revalidate-ms", str(REVALIDATE_MS)))


# ---- the checks ----


def endpoint_down(endpoint):
    """Nothing answers there (the forwarder closes connections to a stopped sandbox)."""
    try:
        with urllib.request.urlopen(endpoint + "/health", timeout=2):
            return False
    except urllib.error.HTTPError:
        return False
    except (urllib.error.URLError, OSError):
        return True


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
    stub = srv.unary("/resourceproto.WorkerService/ListWorkers", pb.ListWorkersResponse)
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
        stub = srv.unary(path)
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


# ---- script_mode = run ----

PROBE_CODE = """# /// script
# dependencies = ["humanize==4.9.0"]
# ///
import socket
import helper
import humanize

HOST = %r

def add_one(x: int) -> int:
    if x < 1000:
        humanize.intcomma(x)
        return helper.add_one(x)
    # x = PORT (the sandbox's 127.0.0.1) or 100000 + PORT (the host's address):
    # 1 when a TCP connection opens there, else 0.
    addr = ("127.0.0.1", x) if x < 100000 else (HOST, x - 100000)
    s = socket.socket()
    s.settimeout(3)
    try:
        s.connect(addr)
        return 1
    except OSError:
        return 0
    finally:
        s.close()
"""


def host_address():
    """An IPv4 address of this host other than loopback, or None."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show"], stdout=subprocess.PIPE, text=True).stdout
    for line in out.splitlines():
        parts = line.split()
        addr = parts[3].split("/")[0] if len(parts) > 3 else ""
        if addr and not addr.startswith("127."):
            return addr
    return None


def odd(d, code=None, **kw):
    """A script of a shape the parser does not know (a newer Databend's, say):
    `set -eu` for line 2; the UDF's code replaced by code."""
    script = d["script"].replace("set -euo pipefail\n", "set -eu\n", 1)
    if code is not None:
        start = script.index("cat <<'UDF_CODE' > /app/udf.py\n") + len("cat <<'UDF_CODE' > /app/udf.py\n")
        end = script.index("\nUDF_CODE\n", start)
        script = script[:start] + code.rstrip("\n") + script[end:]
    return dict(d, script=script, **kw)


def run_mode_elsewhere(imports):
    """script_mode = run with a backend that cannot limit a sandbox's egress
    (template; kubernetes alike): FAILED_PRECONDITION naming the setting."""
    srv = harness.Service(os.path.join(TMP, "runmode-template"),
                          ["--store", os.path.join(TMP, "runmode-template", "store"), "--scheduler", "template",
                           "--base-image", "3=oci:%s:python" % BASE, "--index-url", INDEX, "--imports-allow",
                           "127.0.0.1", "--script-mode", "run"], tenant=TENANT)
    try:
        d = odd(vector("add_one_helper", "create_worker", imports.port), name="elsewhere")
        r = srv.create_worker(d)
        tap.check("script_mode = run with the template scheduler: FAILED_PRECONDITION naming the setting",
                  r.code == "FAILED_PRECONDITION" and "script_mode = run" in r.details and "template" in r.details,
                  repr(r))
        bad = dict(d, script=d["script"].replace("humanize==4.9.0\n", "numpy; curl evil\n", 1))
        r = srv.create_worker(bad)
        tap.check("... an injection there is INVALID_ARGUMENT first", r.code == "INVALID_ARGUMENT" and
                  "'numpy;'" in r.details, repr(r))
    finally:
        harness.check_clean_stop(srv, "script_mode = run with the template scheduler: stopped cleanly")


def signed_files(root):
    """Files under root/store holding a signature, gzip ones read unpacked."""
    import gzip
    found = []
    for dirpath, _, names in os.walk(os.path.join(root, "store")):
        for n in names:
            path = os.path.join(dirpath, n)
            try:
                data = Path(path).read_bytes()
                if data[:2] == b"\x1f\x8b":
                    data = gzip.decompress(data)
            except (OSError, EOFError, gzip.BadGzipFile):
                continue
            if b"X-Amz-Signature" in data:
                found.append(path)
    return found


def run_mode(imports, runtime="runc", ports=(24000, 24499)):
    """script_mode = run: an unknown shape runs as-is, pip from the index,
    its imports from the import server, nothing else reachable."""
    p = imports.port
    hostip = host_address()
    index_before = len(index_log())
    t = "script_mode = run (%s): " % runtime
    srv = harness.SandboxService(os.path.join(TMP, "runmode-" + runtime), INDEX, [("3", "oci:%s:python" % BASE)],
                                 os.path.join(TMP, "layers"), ports, runtime=runtime, secret=SECRET, tenant=TENANT,
                                 args=("--script-mode", "run"), opts={"start_timeout_ms": "120000"})
    try:
        code = PROBE_CODE % (hostip or "192.0.2.1")
        d = odd(vector("add_one_helper", "create_worker", p), code, name="probe")
        n_before = len(imports.requests)
        r = srv.query("create_worker", d)
        ok, why = called(r, "add_one", [1], 2)
        tap.check(t + "an unknown shape runs as-is and answers (%.1f s)" % r.elapsed, ok,
                  why + srv.stderr_tail())
        if not ok:
            return
        boxes = set(srv.containers())
        # The image holds no signature; the sandbox's downloader sent the URL as signed.
        signed = json.loads(d["script"].split("cat <<'UDF_IMPORTS' > /app/imports.json\n", 1)[1].split("\n", 1)[0])
        want_query = signed[0]["url"].split("?", 1)[1]
        sent = [q for (path, rng, h), q in zip(imports.requests[n_before:], imports.queries[n_before:])
                if path == "imports/helper.py"]
        tap.check(t + "the sandbox fetched the import with its presigned query string",
                  sent and all(q == want_query for q in sent), repr(sent))
        tap.check(t + "no signature in the store (images, their layers unpacked)", not signed_files(srv.dir),
                  repr(signed_files(srv.dir)))
        tap.check(t + "Databend's stub runs behind the x-authorization check",
                  udf_call(r.endpoint, "add_one", [1], "0" * len(r.token))[0] == 401)
        index_port = int(INDEX.split(":")[2].split("/")[0])
        listener = harness.free_port()  # some other port of the host, listening
        import socket
        other = socket.socket()
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        other.bind(("0.0.0.0", 0))
        other.listen(8)
        other_port = other.getsockname()[1]

        def reach(port, host=False):
            status, out = udf_call(r.endpoint, "add_one", [port + (100000 if host else 0)], r.token)
            return (out or {}).get("result") if status == 200 else "HTTP %s %r" % (status, out)

        got = {"index": reach(index_port), "imports": reach(p), "grpc": reach(srv.grpc_port),
               "admin": reach(srv.admin_port), "other": reach(other_port)}
        if hostip:
            got.update({"host grpc": reach(srv.grpc_port, True), "host other": reach(other_port, True)})
        other.close()
        want = {k: (1 if k in ("index", "imports") else 0) for k in got}
        tap.check(t + "the sandbox reaches the index and the import server, not the service's "
                  "gRPC/admin ports nor another host port (%s)" % (
                      "loopback and " + hostip if hostip else "loopback only"), got == want, "got %r, want %r" % (got, want))
        new = index_log()[index_before:]
        tap.check(t + "pip in the sandbox installed from the configured index",
                  any("humanize" in x and ".whl" in x for x in new), repr(new[-5:]))

        # The same UDF re-signed (new presigned URLs): the running sandbox.
        before = imports.count()
        d2 = odd(vector("add_one_helper", "create_worker", p, ".resigned"), code, name="probe")
        r2 = srv.create_worker(d2)
        tap.check(t + "the re-signed variant reuses the running sandbox",
                  r2.code == "OK" and r2.endpoint == r.endpoint and set(srv.containers()) == boxes and
                  imports.count() == before, "%r %r" % (r, r2))

        # A refusal for content stays one: nothing started, nothing fetched.
        n_req, boxes = imports.count(), set(srv.containers())
        bad = odd(vector("add_one_helper", "create_worker", p), name="evil")
        bad["script"] = bad["script"].replace("humanize==4.9.0\n", "numpy; curl evil\n", 1)
        r3 = srv.create_worker(bad)
        r4 = srv.apply_resource(dict(type="udf", script=bad["script"]))
        tap.check(t + "a package injection is still refused naming the string, before "
                  "anything starts", r3.code == "INVALID_ARGUMENT" and "'numpy;'" in r3.details and
                  r4.code == "INVALID_ARGUMENT" and imports.count() == n_req and set(srv.containers()) == boxes,
                  "%r %r" % (r3, r4))
        tap.check(t + "no signature in the service's log",
                  "X-Amz-Signature" not in Path(srv.stderr_path).read_text(errors="replace"))
    finally:
        harness.check_clean_stop(srv, t + "the service stopped cleanly")


def index_log():
    """The index's requests so far ("GET /path STATUS" lines)."""
    try:
        return Path(TMP, "index.log").read_text().splitlines()
    except OSError:
        return []


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


def main():
    global TMP, BASE, INDEX, pb, grpc
    os.chdir(harness.REPO)
    harness.skip_unless(**harness.SANDBOX_NEEDS)
    TMP = tempfile.mkdtemp(prefix="udfb-databend-test.")
    os.chmod(TMP, 0o755)
    imports = None
    try:
        try:
            (pb,) = harness.load_protos(TMP, "resource")
            grpc = harness.grpc
            BASE = harness.python_base()
            INDEX, _ = harness.start_index(TMP, log=os.path.join(TMP, "index.log"))
            imports = ImportServer(harness.vector_files(VECTORS))
            env = {}
            for path in VECTORS.glob("*.expect.json"):
                d = json.loads(path.read_text())
                if d["call"] and d["call"].get("env"):
                    env["%s.%s" % (TENANT, d["udf"]["name"])] = d["call"]["env"]
            prebuilt = prebuild(imports)
            srv = serve("main", config={"env": env})
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
        harness.check_clean_stop(srv)
        try:
            run_mode_elsewhere(imports)
        except Exception:
            tap.check("the script_mode = run (template) checks ran to the end", False, traceback.format_exc())
        for runtime, ports in (("runc", (24000, 24499)), ("runsc", (24500, 24999))):
            if runtime == "runsc" and not shutil.which("runsc"):
                continue
            try:
                run_mode(imports, runtime, ports)
            except Exception:
                tap.check("the script_mode = run (%s) checks ran to the end" % runtime, False,
                          traceback.format_exc())
        return tap.done()
    finally:
        if imports:
            imports.close()
        harness.remove_sandbox_leftovers()
        shutil.rmtree(TMP, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
