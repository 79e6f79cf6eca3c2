#!/usr/bin/python3
"""Integration test of the WORKER statements as Databend sends them
(resourceproto.WorkerService: CreateWorker with an empty script, AlterWorker,
DropWorker, ListWorkers) together with a UDF's CreateWorker under the same
name, through the running service with the local backend (sandboxes under
runc, their state read from runc itself), with restarts of the service
between steps, a kill -9 right after an ALTER and one in the middle of a
stream of ALTERs.

The sequence: CREATE WORKER with options -> the UDF's CreateWorker (script)
-> SHOW -> restart -> ALTER SET size, SET TAG -> SUSPEND (sandbox stopped)
-> UDF call refused (FAILED_PRECONDITION) -> restart -> still refused ->
RESUME (sandbox started on the same endpoint) -> UDF call answers ->
auto_resume, auto_suspend -> DROP (sandbox gone) -> SHOW empty.  Plus the
refusals: ALREADY_EXISTS, NOT_FOUND, PERMISSION_DENIED, INVALID_ARGUMENT
for names and options (listing the known ones), and /metrics' gauges.

Uses the harness (tests/lib/harness.py: the service, the import server,
the package index); the runtime inside the base is the TEST DOUBLE of databend_udf
(tests/runtime-double).  Needs root, runc and overlayfs; prints
"1..0 # SKIP ..." and exits 77 without them.  Results are TAP lines.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import harness  # noqa: E402
import tap  # noqa: E402
from harness import DATABEND, called  # noqa: E402
from http_server import ImportServer  # noqa: E402

TENANT = "test_tenant"
DEADLINE = 5.0  # Databend's default cloud_control_grpc_timeout
SECRET = "databend-test-secret-0123456789"
UDF = "add_one_helper"
pb = None  # resource_pb2
TMP = BASE = INDEX = None


def serve():
    """The service (again: its store and state survive a restart), with
    sandboxes under runc, whose own state the checks read (the service
    would pick runsc where installed)."""
    return harness.SandboxService(os.path.join(TMP, "w"), INDEX, [("3", "oci:%s:python" % BASE)],
                                  os.path.join(TMP, "layers"), (23000, 23999), secret=SECRET, tenant=TENANT,
                                  args=("--imports-revalidate-ms", "5000", "--scheduler-opt", "runtime=runc"))


def vector(port):
    return harness.vector(UDF, port, DATABEND, ".create_worker")


def svc(srv, method, req, resp):
    return srv.rpc("/resourceproto.WorkerService/" + method, req, resp, "worker_client_version")


def create(srv, name, options=None, tags=None, if_not_exists=False, tenant_id=TENANT):
    return srv.create_worker({"tenantId": tenant_id, "name": name, "ifNotExists": if_not_exists,
                              "options": options or {}, "tags": tags or {}})


def alter(srv, name, **kw):
    state = kw.pop("state", 0)
    return svc(srv, "AlterWorker", pb.AlterWorkerRequest(tenant_id=TENANT, name=name, state_action=state, **kw),
               pb.AlterWorkerResponse)


def drop(srv, name, if_exists=False):
    return svc(srv, "DropWorker", pb.DropWorkerRequest(tenant_id=TENANT, name=name, if_exists=if_exists),
               pb.DropWorkerResponse)


def show(srv):
    stub = srv.unary("/resourceproto.WorkerService/ListWorkers", pb.ListWorkersResponse)
    r = stub(pb.ListWorkersRequest(tenant_id=TENANT), timeout=DEADLINE,
             metadata=[("x-databend-tenant", TENANT), ("worker_client_version", "v1")])
    return [(w.name, dict(w.tags), dict(w.options), w.created_at, w.updated_at) for w in r.workers]


def running(srv):
    """Containers runc itself reports running under this service's root."""
    out = subprocess.run(["runc", "--root", srv.runtime_root, "list", "-f", "json"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True).stdout.strip()
    return sorted(c["id"] for c in json.loads(out or "[]") or [] if c.get("status") == "running")


def wait_for(cond, timeout=60.0):
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        v = cond()
        if v:
            return v
        time.sleep(0.2)
    return cond()


def udf(srv, imports):
    return srv.query("create_worker", vector(imports.port))


def restart(srv):
    srv.stop()
    return serve()


def run(srv, imports):
    name = vector(imports.port)["name"]

    # Refusals: names, options, tenants.
    r = create(srv, "bad name")
    tap.check("a name with a space: INVALID_ARGUMENT naming the character",
              r.code == "INVALID_ARGUMENT" and "character 4" in r.details, repr(r))
    r = create(srv, "x" * 129)
    tap.check("a 129-byte name: INVALID_ARGUMENT", r.code == "INVALID_ARGUMENT" and "1 to 128" in r.details, repr(r))
    r = create(srv, "w1", options={"colour": "red"})
    tap.check("an unknown option: INVALID_ARGUMENT listing the known ones",
              r.code == "INVALID_ARGUMENT" and "colour" in r.details and "auto_suspend" in r.details and
              "max_cluster_count" in r.details, repr(r))
    bad = [({"size": "huge"}, "xsmall, small, medium, large, xlarge"), ({"auto_suspend": "soon"}, "seconds"),
           ({"auto_resume": "maybe"}, "true or false"), ({"min_cluster_count": "0"}, "1 to"),
           ({"min_cluster_count": "3", "max_cluster_count": "2"}, "above")]
    got = [(create(srv, "w1", options=o), want) for o, want in bad]
    tap.check("bad option values: INVALID_ARGUMENT saying what is allowed",
              all(r.code == "INVALID_ARGUMENT" and want in r.details for r, want in got), repr(got))
    r = create(srv, "w1", tenant_id="other_tenant")
    tap.check("tenant_id other than x-databend-tenant: PERMISSION_DENIED", r.code == "PERMISSION_DENIED", repr(r))
    tap.check("nothing refused was recorded", show(srv) == [], repr(show(srv)))

    # CREATE WORKER with options, then the UDF's CreateWorker under that name.
    opts = {"size": "small", "auto_resume": "false", "max_cluster_count": "2"}
    r = create(srv, name, options=opts, tags={"team": "a"})
    tap.check("CREATE WORKER with options: recorded, no endpoint",
              r.code == "OK" and r.endpoint == "" and dict(r.worker.options) == opts, repr(r))
    r2 = create(srv, name, options={"size": "large"})
    r3 = create(srv, name, options={"size": "large"}, if_not_exists=True)
    tap.check("CREATE again: ALREADY_EXISTS; IF NOT EXISTS: OK and unchanged",
              r2.code == "ALREADY_EXISTS" and r3.code == "OK" and dict(r3.worker.options) == opts, "%r %r" % (r2, r3))
    r = udf(srv, imports)
    ok, why = called(r, "add_one", [1], 2)
    tap.check("the UDF's CreateWorker under that name: endpoint answers", ok, why + srv.stderr_tail())
    endpoint = r.endpoint
    before = show(srv)
    tap.check("SHOW WORKERS: the UDF's call kept the tags and options CREATE WORKER set",
              len(before) == 1 and before[0][:3] == (name, {"team": "a"}, opts) and
              before[0][3].endswith("Z") and "T" in before[0][3], repr(before))
    tap.check("its sandbox runs (runc)", len(running(srv)) == 1, repr(running(srv)))
    m = srv.metrics()
    tap.check("/metrics: one active worker on the local backend, a ready sandbox",
              wait_for(lambda: srv.metrics().get('udfb_workers{backend="local",state="active"}') == 1 and
                       srv.metrics().get('udfb_sandboxes{state="ready"}', 0) >= 1, 10),
              repr({k: v for k, v in m.items() if "workers" in k or "sandboxes" in k}))

    # A restart: the registry survives.
    srv = restart(srv)
    after = show(srv)
    tap.check("after a restart: the same worker, same created_at", after == before, "%r\n%r" % (before, after))
    r = udf(srv, imports)
    ok, why = called(r, "add_one", [1], 2)
    tap.check("after a restart: the UDF call answers", ok, why + srv.stderr_tail())
    endpoint = r.endpoint

    # ALTER: size and tag, visible at once; the sandbox restarts with the new size.
    ids = running(srv)
    r = alter(srv, name, set_options={"size": "medium"}, set_tags={"env": "prod"})
    now = show(srv)
    tap.check("ALTER SET size, SET TAG: visible in SHOW at once",
              r.code == "OK" and now[0][1] == {"team": "a", "env": "prod"} and now[0][2]["size"] == "medium" and
              now[0][4] >= before[0][4], "%r %r" % (r, now))
    new_ids = wait_for(lambda: (lambda x: x if x and x != ids else None)(running(srv)), 60)
    tap.check("... the running sandbox was restarted for the new size", new_ids and new_ids != ids,
              "%r -> %r" % (ids, new_ids))
    cfg = Path(srv.state_dir, "sandboxes", (new_ids or ["?"])[0], "config.json")
    mem = json.loads(cfg.read_text()).get("linux", {}).get("resources", {}).get("memory") if cfg.exists() else None
    print("# the restarted sandbox's memory limit: %r" % (mem,))
    tap.check("... with medium's memory limit (1024 MiB) where cgroups are in use",
              mem is None or mem.get("limit") == 1024 << 20, repr(mem))
    r = alter(srv, name, set_options={"bogus": "1"})
    tap.check("ALTER SET an unknown option: INVALID_ARGUMENT, nothing changed",
              r.code == "INVALID_ARGUMENT" and "known" in r.details and show(srv) == now, repr(r))
    r = alter(srv, "nosuch", set_tags={"a": "b"})
    tap.check("ALTER of an unknown worker: NOT_FOUND", r.code == "NOT_FOUND", repr(r))

    # SUSPEND: the sandbox stops, the UDF call is refused.
    r = alter(srv, name, state=pb.Suspend)
    tap.check("ALTER WORKER SUSPEND: OK", r.code == "OK", repr(r))
    tap.check("... its sandbox is stopped (runc lists none running)", wait_for(lambda: running(srv) == [], 30) is not None
              and running(srv) == [], repr(running(srv)))
    r = udf(srv, imports)
    tap.check("... the UDF call is refused: FAILED_PRECONDITION 'worker %s is suspended'" % name,
              r.code == "FAILED_PRECONDITION" and ("worker %s is suspended" % name) in r.details, repr(r))
    m = srv.metrics()
    tap.check("/metrics: the worker counted suspended",
              wait_for(lambda: srv.metrics().get('udfb_workers{backend="local",state="suspended"}') == 1, 10),
              repr({k: v for k, v in m.items() if "workers" in k}))

    srv = restart(srv)
    r = udf(srv, imports)
    tap.check("after a restart: still suspended, still refused", r.code == "FAILED_PRECONDITION" and running(srv) == [],
              repr(r))

    # RESUME: started again on the same endpoint.
    r = alter(srv, name, state=pb.Resume)
    tap.check("ALTER WORKER RESUME: OK, and its sandbox starts (runc)",
              r.code == "OK" and wait_for(lambda: len(running(srv)) == 1, 60), repr(r) + srv.stderr_tail())
    r = udf(srv, imports)
    ok, why = called(r, "add_one", [1], 2)
    tap.check("... the UDF call answers, on the same endpoint", ok and r.endpoint == endpoint,
              "%s %r (was %s)" % (why, r.endpoint, endpoint))

    # auto_resume: a call resumes a suspended worker.
    alter(srv, name, set_options={"auto_resume": "true"})
    alter(srv, name, state=pb.Suspend)
    wait_for(lambda: running(srv) == [], 30)
    r = udf(srv, imports)
    ok, why = called(r, "add_one", [1], 2)
    tap.check("auto_resume = true: a call for the suspended worker resumes it and answers", ok, why + srv.stderr_tail())

    # auto_suspend: idle past it, the worker suspends itself.
    r = alter(srv, name, set_options={"auto_suspend": "2"}, unset_options=["auto_resume"])
    stopped = wait_for(lambda: running(srv) == [] and
                       srv.metrics().get('udfb_workers{backend="local",state="suspended"}') == 1, 20)
    tap.check("auto_suspend = 2: idle, the worker is suspended and its sandbox stopped", r.code == "OK" and stopped,
              repr(r) + srv.stderr_tail())
    r = udf(srv, imports)
    tap.check("... and a call is refused (auto_resume unset)", r.code == "FAILED_PRECONDITION", repr(r))
    alter(srv, name, state=pb.Resume, unset_options=["auto_suspend"])
    wait_for(lambda: len(running(srv)) == 1, 60)

    # A kill -9 right after an ALTER: the record is the new one.
    r = alter(srv, name, set_tags={"after": "kill"})
    srv.kill()
    srv = serve()
    reg = list(Path(srv.dir, "store", "workers").glob("*.json"))
    tap.check("kill -9 after ALTER: the new record, one parseable registry file",
              r.code == "OK" and show(srv)[0][1].get("after") == "kill" and len(reg) == 1 and
              json.loads(reg[0].read_text())["tenant"] == TENANT, repr(show(srv)))
    Path(srv.dir, "store", "workers", ".tmp-torn").write_text('{"tenant": "test_tenant", "workers": [')
    srv = restart(srv)
    tap.check("a torn temporary file (a write a crash interrupted) is ignored", len(show(srv)) == 1, repr(show(srv)))

    # A kill -9 in the middle of ALTERs: two clients stream ALTERs (each
    # sets its seq and mirror tags to the same number) and the service is
    # killed while they run.  After it, every acknowledged ALTER is there and
    # nothing is torn: each pair agrees, at most one ALTER past the last
    # acknowledged (the one the kill interrupted, stored but not answered).
    acked, stop = {"a": [0], "b": [0]}, threading.Event()

    def stream(who):
        i = 0
        while not stop.is_set():
            i += 1
            r = alter(srv, name, set_tags={"seq_" + who: str(i), "mirror_" + who: str(i)})
            if r.code != "OK":
                return
            acked[who].append(i)
    threads = [threading.Thread(target=stream, args=(w,)) for w in acked]
    for t in threads:
        t.start()
    wait_for(lambda: min(len(v) for v in acked.values()) > 10, 30)
    srv.kill()
    stop.set()
    for t in threads:
        t.join(30)
    srv = serve()
    tags = show(srv)[0][1]
    reg = list(Path(srv.dir, "store", "workers").glob("*.json"))
    whole = all(tags.get("seq_" + w) == tags.get("mirror_" + w) and
                acked[w][-1] <= int(tags.get("seq_" + w) or -1) <= acked[w][-1] + 1 for w in acked)
    tap.check("kill -9 mid-ALTER (%d and %d ALTERs acknowledged): every acknowledged one kept, none torn" %
              (acked["a"][-1], acked["b"][-1]), whole and len(reg) == 1 and
              json.loads(reg[0].read_text())["tenant"] == TENANT, "%r %r" % (tags, {w: v[-3:] for w, v in acked.items()}))
    alter(srv, name, unset_tags=["seq_a", "mirror_a", "seq_b", "mirror_b"])

    # DROP: the sandbox and the record go.
    r = udf(srv, imports)
    wait_for(lambda: len(running(srv)) == 1, 60)
    reg = list(Path(srv.dir, "store", "workers").glob("*.json"))
    key = json.loads(reg[0].read_text())["workers"][0].get("key", "") if len(reg) == 1 else ""
    r = drop(srv, name)
    tap.check("DROP WORKER: OK, its sandbox removed (runc), SHOW empty",
              r.code == "OK" and wait_for(lambda: running(srv) == [], 30) is not None and running(srv) == [] and
              show(srv) == [], "%r %r %r" % (r, running(srv), show(srv)))
    tap.check("DROP again: NOT_FOUND; IF EXISTS: OK", [drop(srv, name).code, drop(srv, name, True).code] ==
              ["NOT_FOUND", "OK"])
    ls = subprocess.run([harness.BIN, "cache", "ls", "--store", os.path.join(srv.dir, "store")],
                        capture_output=True, text=True, timeout=60)
    tap.check("... the worker's image stays in the store for gc (cache ls lists its key)",
              ls.returncode == 0 and key.startswith("sha256:") and key[:23] in ls.stdout, "%s\n%s" % (key, ls.stdout))
    tap.check("no registry file is left for the tenant", list(Path(srv.dir, "store", "workers").glob("*.json")) == [])
    srv = restart(srv)
    tap.check("after a restart: SHOW still empty", show(srv) == [], repr(show(srv)))
    m = srv.metrics()
    tap.check("/metrics: no worker", m.get('udfb_workers{backend="local",state="active"}') == 0 and
              m.get('udfb_workers{backend="local",state="suspended"}') == 0)

    # The other order: the UDF's call first, then CREATE WORKER of its name.
    r = udf(srv, imports)
    first = [w[:3] for w in show(srv)]
    r2 = create(srv, name, options={"size": "small"}, tags={"team": "late"})
    r3 = udf(srv, imports)
    ok, why = called(r3, "add_one", [1], 2)
    after = [w[:3] for w in show(srv)]
    tap.check("the UDF's call first, CREATE WORKER after: it gets the tags and options, a later call keeps them",
              r.code == r2.code == "OK" and ok and first == [(name, {}, {})] and
              after == [(name, {"team": "late"}, {"size": "small"})], "%r %r %r %s" % (r2, first, after, why))
    drop(srv, name)
    return srv


def main():
    global TMP, BASE, INDEX, pb
    os.chdir(harness.REPO)
    harness.skip_unless(**harness.SANDBOX_NEEDS)
    TMP = tempfile.mkdtemp(prefix="udfb-workers-test.")
    os.chmod(TMP, 0o755)
    imports = None
    srv = None
    try:
        try:
            (pb,) = harness.load_protos(TMP, "resource")
            BASE = harness.python_base()
            INDEX, _ = harness.start_index(TMP)
            imports = ImportServer(harness.vector_files(DATABEND))
            srv = serve()
        except Exception:
            tap.check("setup (protoc, grpc, base image, package index, service)", False, traceback.format_exc())
            return tap.done()
        try:
            srv = run(srv, imports)
        except Exception:
            tap.check("the checks ran to the end", False, traceback.format_exc() + (srv.stderr_tail() if srv else ""))
        harness.check_clean_stop(harness.SERVICES[-1])
        reports = harness.sanitizer_reports()
        tap.check("no sanitizer report in any run's log (%d runs)" % len(harness.SERVICES), not reports, repr(reports))
        return tap.done()
    finally:
        if imports:
            imports.close()
        harness.remove_sandbox_leftovers()
        shutil.rmtree(TMP, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
