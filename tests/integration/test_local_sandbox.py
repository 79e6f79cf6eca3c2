#!/usr/bin/python3
"""Integration test of the `local` scheduler: real sandboxes under runc.

Starts `udf-builder serve --scheduler local` with the Debian python base from
tests/lib/base-image.sh.  The runtime inside that base is a TEST DOUBLE
(tests/runtime-double: stand-ins for databend_udf and pyarrow, which cannot be
installed here) that serves UDFs as JSON over HTTP instead of Arrow Flight:
POST /call {"function", "args"} with the call's headers -> {"result"}, 401 on
a bad x-authorization.  Everything else is production: the image the service
builds and publishes, the stub (templates/server.py), /health and /stats, the
OCI bundle, runc, the overlay root, the limits.

Through the real gRPC service (Debian's grpcio, as a Databend query node
calls it): each shared vector in tests/data/requests with a `call` gets an
endpoint whose sandbox answers /health with 1 and the call with the expected
value; a wrong or missing x-authorization is refused; /stats counts; a
killed sandbox is restarted by the next call; an idle one is stopped; a base
without databend_udf fails with the sandbox's own last line; the sandbox is
confined (user, capabilities, read-only root, seccomp, cgroup limits where
the host has them); SIGTERM to the service stops every sandbox, unless
keep_on_exit, and then the next start adopts them.

Needs root, runc and overlayfs; prints "1..0 # SKIP ..." and exits 77 without
them.  Results are TAP lines.
"""

import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
import unittest
import urllib.error
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import harness  # noqa: E402
import tap  # noqa: E402
from harness import (BIN, REPO, REQUESTS, fresh_request, http, poll, sh, udf_call, vector_request,  # noqa: E402
                     udf_request as code_request)
from http_server import ImportServer  # noqa: E402

START_TIMEOUT = 30.0
CALL_TIMEOUT = 120.0  # the first start unpacks the 170 MB base once: seconds on a slow disk
TENANT = "tenant-a"
SECRET = "local-sandbox-secret-0123456789"
# Vectors whose call cannot run here (none: add_one_helper's humanize comes
# from the test wheels, tests/lib/wheels.py, served as a package index).
SKIP_VECTORS = {}
INDEX = None  # the loopback package index of the test wheels
RUNTIME = "runc"  # the OCI runtime of the pass running now: runc, then runsc

BASE = None  # the python base layout
NODB = None  # the same base with databend_udf whited out
TMP = None
LAYERS = None  # one layer cache for every server of this test


def load_bases(tmp):
    """The python base, and a copy with one more layer whose whiteout hides
    databend_udf (a base the operator got wrong; also a whiteout test)."""
    global BASE, NODB
    BASE = harness.python_base()
    NODB = os.path.join(tmp, "nodb-oci")
    shutil.copytree(BASE, NODB, copy_function=os.link)
    os.unlink(os.path.join(NODB, "index.json"))
    shutil.copy(os.path.join(BASE, "index.json"), os.path.join(NODB, "index.json"))
    layer = os.path.join(tmp, "nodb.tar")
    with tarfile.open(layer, "w", format=tarfile.PAX_FORMAT) as t:
        for name in ("usr/local/lib/python3.11/dist-packages/.wh.databend_udf.py",):
            info = tarfile.TarInfo(name)
            info.mtime = 0
            t.addfile(info, io.BytesIO(b""))
    sh("umoci", "raw", "add-layer", "--image", NODB + ":python", layer)


def process_ended(pid):
    """pid is gone or a zombie (the service, its subreaper, reaps it later),
    every thread of it: a leader that returned shows "Z" while the other
    threads of a Go runtime (runsc) still run, and its pidfd (what the
    service watches) turns readable only when the last one ends."""
    if pid <= 0:
        return True
    try:
        tasks = [t.name for t in Path("/proc/%d/task" % pid).iterdir()]
    except OSError:
        return True
    for tid in tasks:
        try:
            stat = Path("/proc/%d/task/%s/stat" % (pid, tid)).read_text()
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X"):
            return False
    return True


def Server(name, opts=(), config=None, bases=None, args=()):
    """The local scheduler in TMP/RUNTIME/name under this pass's runtime,
    the python base unless bases, the layer cache every server of the test
    shares."""
    return harness.SandboxService(os.path.join(TMP, RUNTIME, name), INDEX, bases or [("3", "oci:%s:python" % BASE)],
                                  LAYERS, (21000, 21999), runtime=RUNTIME, opts=dict(opts),
                                  args=("--default-runtime", "3") + tuple(args), config=config, secret=SECRET,
                                  tenant=TENANT, start_timeout=START_TIMEOUT, call_timeout=CALL_TIMEOUT)


def our_mounts(prefix):
    return [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines() if line.split()[1].startswith(prefix)]


# ---- tests ----


class LocalSandboxTest(unittest.TestCase):
    """One server for most tests: sandboxes live across tests."""

    @classmethod
    def setUpClass(cls):
        cls.imports = ImportServer(harness.vector_files())
        cls.vector_env = {}
        for path in sorted(REQUESTS.glob("*.expect.json")):
            call = json.loads(path.read_text()).get("call")
            if call and call.get("env"):
                cls.vector_env["%s.%s" % (TENANT, path.name[: -len(".expect.json")])] = call["env"]
        # The env scope is "<tenant>.<handler>"; the vectors' handlers are their names.
        cls.srv = Server("main", opts={"memory": "256m", "pids": "64", "cpus": "0.5"}, config={"env": cls.vector_env},
                         bases=[("3", "oci:%s:python" % BASE), ("3.10", "oci:%s:python" % NODB)])

    @classmethod
    def tearDownClass(cls):
        cls.imports.close()

    def ready(self, req, tenant=TENANT):
        r = self.srv.call(req, tenant)
        self.assertEqual(r.code, "OK", "%r%s" % (r, self.srv.stderr_tail()))
        self.assertRegex(r.endpoint, r"^http://127\.0\.0\.1:21\d\d\d$")
        self.assertEqual(list(r.headers), ["x-authorization"])
        return r

    def test_1_vectors(self):
        ran = 0
        for path in sorted(REQUESTS.glob("*.expect.json")):
            name = path.name[: -len(".expect.json")]
            call = json.loads(path.read_text()).get("call")
            if not call:
                continue
            with self.subTest(vector=name):
                if name in SKIP_VECTORS:
                    print("# vector %s skipped: %s" % (name, SKIP_VECTORS[name]), flush=True)
                    continue
                req = vector_request(name, self.imports.port)
                r = self.ready(req)
                handler = json.loads(req.spec)["handler"]
                status, body = http("GET", self.srv.status_url(r.endpoint, "/health"))
                self.assertEqual((status, body), (200, "1"))
                status, out = udf_call(r.endpoint, handler, call["args"], r.token)
                self.assertEqual(status, 200, out)
                self.assertEqual(out["result"], call["expect"], name)
                ran += 1
                print("# vector %s: %s at %s in %.3f s" % (name, out["result"], r.endpoint, r.elapsed), flush=True)
        self.assertGreaterEqual(ran, 3)

    def test_2_token_and_stats(self):
        req = vector_request("read_stage_dup_basename", self.imports.port)
        r = self.ready(req)
        stats_url = self.srv.status_url(r.endpoint, "/stats")
        before = json.loads(http("GET", stats_url)[1])["request_count"]
        for bad in (None, "", "0" * 64, r.token[:-1] + ("0" if r.token[-1] != "0" else "1")):
            status, out = udf_call(r.endpoint, "read_stage", [], bad)
            self.assertEqual(status, 401, (bad, out))
            self.assertNotIn(r.token, json.dumps(out))
        self.assertEqual(json.loads(http("GET", stats_url)[1])["request_count"], before, "refused calls are not counted")
        for _ in range(3):
            self.assertEqual(udf_call(r.endpoint, "read_stage", [], r.token)[0], 200)
        stats = json.loads(http("GET", stats_url)[1])
        self.assertEqual(stats["request_count"], before + 3)
        self.assertRegex(stats["last_request_time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
        # Another tenant's token for the same code is not this sandbox's.
        other = self.ready(req, tenant="tenant-b")
        self.assertNotEqual(other.endpoint, r.endpoint)
        self.assertEqual(udf_call(r.endpoint, "read_stage", [], other.token)[0], 401)

    def test_3_reuse_is_warm(self):
        req = vector_request("read_pkg_zip_whl_egg", self.imports.port)
        first = self.ready(req)
        rec = self.srv.record(first.endpoint)
        times = []
        for _ in range(20):
            r = self.ready(req)
            self.assertEqual(r.endpoint, first.endpoint)
            times.append(r.elapsed)
        self.assertEqual(self.srv.record(first.endpoint)["id"], rec["id"], "the same container serves")
        times.sort()
        print("# warm ApplyUdfResource: median %.2f ms, max %.2f ms" % (times[10] * 1e3, times[-1] * 1e3), flush=True)

    def test_4_killed_sandbox_restarts(self):
        req = vector_request("read_env", self.imports.port)
        r = self.ready(req)
        old = self.srv.record(r.endpoint)
        pid = self.srv.sandbox_pid(old["id"])
        self.srv.on("kill", old["id"], "KILL")
        poll(lambda: http_down(self.srv.status_url(r.endpoint, "/health")), 10, "the killed sandbox to stop answering")
        # Its sockets close a moment before the process is gone; the service
        # learns of a death from the process (pidfd), so wait for runc too.
        poll(lambda: '"status": "running"' not in self.srv.on("state", old["id"], check=False).replace('":"', '": "'),
             10, "runc to see the killed sandbox stopped")
        # Under runsc the runtime reports the container stopped while the
        # sandbox process (the one the service watches) is still shutting
        # down: the death is the service's to see once that process ends.
        poll(lambda: process_ended(pid), 10, "the killed sandbox's process to end")
        r2 = self.ready(req)
        self.assertEqual(r2.endpoint, r.endpoint, "a restarted sandbox keeps its endpoint")
        new = self.srv.record(r2.endpoint)
        self.assertNotEqual(new["id"], old["id"])
        self.assertNotIn(old["id"], self.srv.containers(), "the dead container is deleted")
        self.assertEqual(http("GET", self.srv.status_url(r2.endpoint, "/health")), (200, "1"))
        self.assertEqual(udf_call(r2.endpoint, "read_env", [], r2.token), (200, {"result": "sandbox_env_ok"}))
        print("# killed sandbox restarted by the next call in %.3f s" % r2.elapsed, flush=True)

    def test_8_installed_packages(self):
        # alpha 2.0 needs beta>=1.1: both installed natively, one layer each.
        code = ("import alpha\nimport beta\n\n"
                "def pk(x):\n    return '%s %s' % (alpha.describe(), beta.describe())\n")
        req = code_request(code, "pk", "STRING", "3.11", ["INT"])
        spec = json.loads(req.spec)
        spec["packages"] = ["alpha"]
        req.spec = json.dumps(spec)
        r = self.ready(req)
        status, out = udf_call(r.endpoint, "pk", [1], r.token)
        self.assertEqual(status, 200, out)
        self.assertEqual(out["result"], "alpha 2.0 beta 1.2")

    def test_5_base_without_runtime_fails_clearly(self):
        req = code_request("def g():\n    return 'x'\n", "g", runtime="3.10")
        r = self.srv.call(req)
        self.assertEqual(r.code, "INVALID_ARGUMENT", r)
        self.assertIn("exited at start: ", r.details)
        self.assertIn("databend_udf", r.details)  # the whiteout hid it
        print("# %s" % r.details, flush=True)

    def test_6_confinement(self):
        code = (
            "import ctypes, json, os, socket\n"
            "def probe():\n"
            "    st = dict(l.split(':', 1) for l in open('/proc/self/status').read().splitlines() if ':' in l)\n"
            "    out = {k: st.get(k, 'absent').strip() for k in ('Uid', 'Gid', 'CapEff', 'CapBnd', 'NoNewPrivs', 'Seccomp')}\n"
            "    for path in ('/app/x', '/usr/x', '/tmp/x'):\n"
            "        try:\n"
            "            open(path, 'w').write('1'); out[path] = 'ok'\n"
            "        except OSError as e:\n"
            "            out[path] = e.errno\n"
            "    libc = ctypes.CDLL(None, use_errno=True)\n"
            "    out['unshare_user'] = libc.unshare(0x10000000) == -1 and ctypes.get_errno()\n"
            "    out['pid'] = os.getpid()\n"
            "    out['hostname'] = socket.gethostname()\n"
            "    import resource\n"
            "    out['nofile'] = resource.getrlimit(resource.RLIMIT_NOFILE)[0]\n"
            "    out['suid'] = [p for p in ('/usr/bin/su', '/bin/su', '/usr/bin/passwd') if os.path.exists(p) and os.stat(p).st_mode & 0o6000]\n"
            "    return json.dumps(out)\n"
        )
        r = self.ready(code_request(code, "probe"))
        status, out = udf_call(r.endpoint, "probe", [], r.token)
        self.assertEqual(status, 200, out)
        p = json.loads(out["result"])
        print("# inside the sandbox: %s" % json.dumps(p, sort_keys=True), flush=True)
        self.assertEqual(p["Uid"].split()[0], "65534")
        self.assertEqual(p["Gid"].split()[0], "65534")
        self.assertEqual(int(p["CapEff"], 16), 0)
        self.assertEqual(int(p["CapBnd"], 16), 0)
        # gVisor's own kernel answers: its /proc/self/status has no NoNewPrivs
        # line, a read-only root is EACCES, it has no user namespaces (EINVAL),
        # and the spec's seccomp filter is not loaded into it (docs/service.md).
        gvisor = RUNTIME == "runsc"
        self.assertEqual(p["NoNewPrivs"], "absent" if gvisor else "1")
        self.assertEqual(p["Seccomp"], "0" if gvisor else "2")
        self.assertEqual(p["/app/x"], 13 if gvisor else 30)  # EROFS
        self.assertEqual(p["/usr/x"], 13 if gvisor else 30)
        self.assertEqual(p["/tmp/x"], "ok")
        self.assertEqual(p["unshare_user"], 22 if gvisor else 1)  # EPERM from the seccomp filter
        self.assertEqual(p["pid"], 1, "a pid namespace of its own")
        self.assertTrue(p["hostname"].startswith("udf-"), p["hostname"])
        self.assertEqual(p["nofile"], 1024)
        self.assertEqual(p["suid"], [], "setuid bits are dropped on unpack")
        self.check_cgroup_limits(r.endpoint)

    def check_cgroup_limits(self, endpoint):
        rec = self.srv.record(endpoint)
        pid = json.loads(self.srv.on("state", rec["id"]))["pid"]
        paths = dict(line.split(":", 2)[1:] for line in Path("/proc/%d/cgroup" % pid).read_text().splitlines())
        if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
            base = "/sys/fs/cgroup" + paths.get("", "/")
            mem, pids = os.path.join(base, "memory.max"), os.path.join(base, "pids.max")
            cpu = os.path.join(base, "cpu.max")
        else:
            mem = "/sys/fs/cgroup/memory%s/memory.limit_in_bytes" % paths.get("memory", "/")
            pids = "/sys/fs/cgroup/pids%s/pids.max" % paths.get("pids", "/")
            cpu = "/sys/fs/cgroup/cpu%s/cpu.cfs_quota_us" % paths.get("cpu", paths.get("cpu,cpuacct", "/"))
        log = Path(self.srv.stderr_path).read_text(errors="replace")
        if "without memory, CPU and process limits" in log or not os.path.exists(mem):
            print("# cgroup limits: NOT available on this host (the server said so); not checked", flush=True)
            return
        self.assertEqual(Path(mem).read_text().strip(), str(256 << 20))
        self.assertEqual(Path(pids).read_text().strip(), "64")
        self.assertIn("50000", Path(cpu).read_text())
        print("# cgroup limits: memory %s, pids %s, cpu %s" % (Path(mem).read_text().strip(),
              Path(pids).read_text().strip(), Path(cpu).read_text().strip()), flush=True)

    def test_7_list_on_disk(self):
        """Every running sandbox has its container, its overlay root, and nothing else is mounted."""
        ids = set(self.srv.containers())
        recs = {json.loads(p.read_text())["id"] for p in Path(self.srv.state_dir, "sandboxes").glob("*/sandbox.json")}
        self.assertEqual(ids, recs)
        self.assertEqual(len(our_mounts(self.srv.state_dir)), len(ids))

    def test_10_network_confined(self):
        """A tenant's code reaches nothing of the host: not the service's
        gRPC and admin ports, not an import server on loopback, not a port
        open on every host address, not another sandbox, not the metadata
        address; and it sees only its own loopback."""
        other = self.ready(fresh_request(), tenant="tenant-b")
        other_rec = self.srv.record(other.endpoint)
        anyl = socket.create_server(("0.0.0.0", 0))  # a host service on every address
        host_addrs = host_addresses()
        self.addCleanup(anyl.close)
        for a in host_addrs:
            socket.create_connection((a, anyl.getsockname()[1]), timeout=2).close()  # reachable from the host
        targets = {"grpc": ["127.0.0.1", self.srv.grpc_port], "admin": ["127.0.0.1", self.srv.admin_port],
                   "imports": ["127.0.0.1", self.imports.port], "metadata": ["169.254.169.254", 80],
                   "other_udf": ["127.0.0.1", other_rec["udf_port"]],
                   "other_status": ["127.0.0.1", other_rec["status_port"]]}
        for k, a in enumerate(host_addrs):
            targets["host_%d_%s" % (k, a)] = [a, anyl.getsockname()[1]]
        code = ("import errno, json, socket\n"
                "def net(targets):\n"
                "    out = {}\n"
                "    for name, (host, port) in sorted(json.loads(targets).items()):\n"
                "        s = socket.socket(socket.AF_INET6 if ':' in host else socket.AF_INET)\n"
                "        s.settimeout(1.0)\n"
                "        try:\n"
                "            s.connect((host, port)); out[name] = 'CONNECTED'\n"
                "        except socket.timeout:\n"
                "            out[name] = 'timeout'\n"
                "        except OSError as e:\n"
                "            out[name] = errno.errorcode.get(e.errno, str(e.errno))\n"
                "        finally:\n"
                "            s.close()\n"
                "    out['interfaces'] = sorted(n for _, n in socket.if_nameindex())\n"
                "    return json.dumps(out)\n")
        r = self.ready(code_request(code, "net", "STRING", "3.11", ["STRING"]))
        status, out = udf_call(r.endpoint, "net", [json.dumps(targets)], r.token)
        self.assertEqual(status, 200, out)
        seen = json.loads(out["result"])
        print("# from inside a sandbox: %s" % json.dumps(seen, sort_keys=True), flush=True)
        self.assertEqual(seen.pop("interfaces"), ["lo"])
        self.assertEqual(sorted(seen), sorted(targets))
        for name, how in seen.items():
            self.assertIn(how, ("ECONNREFUSED", "ENETUNREACH", "EHOSTUNREACH", "EADDRNOTAVAIL"), name)
        # Meanwhile both endpoints serve from the host.
        self.assertEqual(udf_call(other.endpoint, "f", [1], other.token), (200, {"result": 2}))

    def test_11_no_port_squatting(self):
        """A UDF that binds every port of the scheduler's range (as far as its
        file limit goes) does not stop another tenant's sandbox from starting."""
        code = ("import socket\n"
                "held = []\n"
                "def squat(lo, hi):\n"
                "    for port in range(lo, hi + 1):\n"
                "        for host in ('127.0.0.1', '0.0.0.0'):\n"
                "            try:\n"
                "                s = socket.socket(); s.bind((host, port)); s.listen(1); held.append(s); break\n"
                "            except OSError:\n"
                "                pass\n"
                "    return len(held)\n")
        r = self.ready(code_request(code, "squat", "INT", "3.11", ["INT", "INT"]))
        status, out = udf_call(r.endpoint, "squat", [21000, 21999], r.token)
        self.assertEqual(status, 200, out)
        print("# a sandbox bound %d ports of 21000-21999 (in its own namespace)" % out["result"], flush=True)
        self.assertGreater(out["result"], 500)
        other = self.srv.call(fresh_request(), tenant="tenant-c")
        self.assertEqual(other.code, "OK", "%r%s" % (other, self.srv.stderr_tail()))
        self.assertEqual(udf_call(other.endpoint, "f", [41], other.token), (200, {"result": 42}))

    def test_9_sigterm_stops_every_sandbox(self):
        self.assertTrue(self.srv.containers())
        pids = [int(p.read_text()) for p in Path(self.srv.state_dir, "sandboxes").glob("*/pid")]
        nets = {os.readlink("/proc/%d/ns/net" % pid) for pid in pids}
        self.assertNotIn(os.readlink("/proc/self/ns/net"), nets, "each sandbox has a network namespace of its own")
        self.assertEqual(len(nets), len(pids), "one namespace per sandbox")
        t0 = time.monotonic()
        self.assertEqual(self.srv.stop(), 0, self.srv.stderr_tail())
        took = time.monotonic() - t0
        print("# SIGTERM to exit with %d sandboxes: %.2f s" % (len(pids), took), flush=True)
        self.assertLess(took, 10.0, "within the grace period (grace_ms 10000)")
        self.assertEqual(self.srv.containers(), [], "the runtime lists none")
        self.assertEqual([p for p in pids if os.path.exists("/proc/%d" % p)], [], "no sandbox process is left")
        self.assertEqual(set(namespaces_in_use()) & nets, set(), "no sandbox's network namespace is left")
        self.assertEqual(our_mounts(self.srv.state_dir), [])
        self.assertEqual(list(Path(self.srv.state_dir, "sandboxes").iterdir()), [])
        log = Path(self.srv.stderr_path).read_text(errors="replace")
        self.assertNotIn(SECRET, log)


def host_addresses():
    """The host's own non-loopback IPv4 addresses (the namespace of this test)."""
    out = json.loads(sh("ip", "-j", "-4", "addr", "show"))
    return [a["local"] for i in out for a in i.get("addr_info", []) if not a["local"].startswith("127.")]


def namespaces_in_use():
    """Every network namespace a process holds, or a mount pins."""
    seen = set()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                seen.add(os.readlink(d / "ns" / "net"))
            except OSError:
                pass
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        m = re.search(r" (net:\[\d+\]) ", line)
        if m:
            seen.add(m.group(1))
    return seen


def http_down(url):
    try:
        with urllib.request.urlopen(url, timeout=1):
            return False
    except (urllib.error.URLError, OSError):
        return True


class IdleAndLimitsTest(unittest.TestCase):
    """A server with a short idle_ms and one sandbox per tenant."""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server("idle", opts={"idle_ms": "1500", "reap_interval_ms": "100", "max_per_tenant": "1",
                                       "port_min": "22000", "port_max": "22999"})

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        if rc != 0:
            raise AssertionError("server exit %s%s" % (rc, cls.srv.stderr_tail()))

    def test_idle_stop_and_limit(self):
        req = fresh_request()
        r = self.srv.call(req)
        self.assertEqual(r.code, "OK", "%r%s" % (r, self.srv.stderr_tail()))
        self.assertEqual(udf_call(r.endpoint, "f", [41], r.token), (200, {"result": 42}))
        # One sandbox per tenant: a second UDF of the same tenant is refused while the first runs.
        r2 = self.srv.call(fresh_request())
        self.assertEqual(r2.code, "RESOURCE_EXHAUSTED", r2)
        self.assertIn("max_per_tenant", r2.details)
        # Calls keep it alive; then it idles past idle_ms and is stopped.
        for _ in range(4):
            time.sleep(0.5)
            self.assertEqual(udf_call(r.endpoint, "f", [1], r.token)[0], 200)
        t_last = time.monotonic()
        poll(lambda: not self.srv.containers(), 10, "the idle sandbox to be stopped")
        idle_for = time.monotonic() - t_last
        print("# stopped %.2f s after its last call (idle_ms 1500, reaper every 100 ms)" % idle_for, flush=True)
        self.assertGreater(idle_for, 1.4)
        self.assertTrue(http_down(r.endpoint + "/functions"))
        # The next call starts it again, on the same endpoint.
        r3 = self.srv.call(req)
        self.assertEqual(r3.code, "OK", r3)
        self.assertEqual(r3.endpoint, r.endpoint)
        self.assertEqual(udf_call(r3.endpoint, "f", [1], r3.token), (200, {"result": 2}))


class KeepOnExitTest(unittest.TestCase):
    """keep_on_exit: sandboxes outlive the service and the next start adopts
    them; a start without it removes what an earlier run left."""

    def test_adopted_then_removed(self):
        state = os.path.join(TMP, RUNTIME, "keep-state")
        opts = {"keep_on_exit": "1", "state_dir": state, "port_min": "24000", "port_max": "24999"}
        first = Server("keep1", opts=opts)
        req = fresh_request()
        r = first.call(req)
        self.assertEqual(r.code, "OK", "%r%s" % (r, first.stderr_tail()))
        cid = first.record(r.endpoint)["id"]
        self.assertEqual(first.stop(), 0, first.stderr_tail())
        self.assertEqual(first.containers(), [cid], "left running")
        # Its endpoint is the service's listening port (the sandbox binds no
        # host port): down while no service runs, served again once adopted.
        self.assertTrue(http_down(r.endpoint + "/functions"))
        second = Server("keep2", opts=opts)
        r2 = second.call(req)
        self.assertEqual((r2.code, r2.endpoint), ("OK", r.endpoint), r2)
        self.assertEqual(udf_call(r.endpoint, "f", [1], r.token), (200, {"result": 2}))
        self.assertEqual(second.record(r2.endpoint)["id"], cid, "adopted, not restarted" + second.stderr_tail())
        self.assertIn("adopted", Path(second.stderr_path).read_text())
        self.assertEqual(second.stop(), 0, second.stderr_tail())
        third = Server("keep3", opts={"state_dir": state, "port_min": "24000", "port_max": "24999"})
        self.assertEqual(third.containers(), [], "a start without keep_on_exit removes leftovers")
        self.assertEqual(our_mounts(state), [])
        self.assertEqual(third.stop(), 0, third.stderr_tail())


class CrashTest(unittest.TestCase):
    """A service killed with SIGKILL leaves its sandboxes running; the next
    start on the same state_dir removes them: no process, mount or
    namespace is left."""

    def test_leftovers_of_a_crash_removed(self):
        state = os.path.join(TMP, RUNTIME, "crash-state")
        opts = {"state_dir": state, "port_min": "29000", "port_max": "29999"}
        first = Server("crash1", opts=opts)
        r = first.call(fresh_request())
        self.assertEqual(r.code, "OK", "%r%s" % (r, first.stderr_tail()))
        rec = first.record(r.endpoint)
        pid = int(Path(state, "sandboxes", rec["id"], "pid").read_text())
        net = os.readlink("/proc/%d/ns/net" % pid)
        first.kill()
        self.assertTrue(os.path.exists("/proc/%d" % pid), "the sandbox outlives a SIGKILLed service")
        second = Server("crash2", opts=opts)
        self.assertEqual(second.containers(), [], "the runtime lists none")
        poll(lambda: not os.path.exists("/proc/%d" % pid), 10, "the sandbox's process to be gone")
        # Its other processes end a moment later (seen under ASan: the first
        # gone, the namespace still held): gone within the same 10 s.
        poll(lambda: net not in namespaces_in_use(), 10, "its network namespace to be gone")
        self.assertEqual(our_mounts(state), [])
        self.assertEqual(second.stop(), 0, second.stderr_tail())


class DefaultRuntimeTest(unittest.TestCase):
    """No runtime named: runsc where it is installed and starts a sandbox
    (its platform probed), else runc with a warning naming the weaker
    isolation."""

    def test_default_runtime(self):
        if RUNTIME != "runsc":
            self.skipTest("checked once, in the runsc pass")
        srv = Server("default-runtime", opts={"runtime": "", "port_min": "28000", "port_max": "28999"})
        self.assertEqual(srv.stop(), 0, srv.stderr_tail())
        log = Path(srv.stderr_path).read_text()
        line = [l for l in log.splitlines() if "local scheduler: " in l and "network" in l][0]
        print("# %s" % json.loads(line)["msg"], flush=True)
        self.assertRegex(line, r"runsc version .*--platform=(systrap|kvm|ptrace) --network=host")
        self.assertIn("network namespace per sandbox", line)
        self.assertNotIn("on the host's kernel", log)


class QueryCidrsTest(unittest.TestCase):
    """Endpoints on a host address (bind 0.0.0.0, advertise_address): only
    the query nodes named in query_cidrs (and loopback, the service's own
    probes) get through the forwarder."""

    def test_only_named_query_nodes(self):
        if RUNTIME != "runc":
            self.skipTest("the forwarder is the same under every runtime: checked under runc")
        addrs = host_addresses()
        if not addrs:
            self.skipTest("this host has no non-loopback IPv4 address")
        a = addrs[0]
        for k, (cidrs, allowed) in enumerate((("%s/32" % a, True), ("198.51.100.0/24", False))):
            srv = Server("cidrs-%d" % k, opts={"bind_address": "0.0.0.0", "advertise_address": a, "query_cidrs": cidrs,
                                               "port_min": "27000", "port_max": "27999"})
            try:
                r = srv.call(fresh_request())
                self.assertEqual(r.code, "OK", "%r%s" % (r, srv.stderr_tail()))
                self.assertRegex(r.endpoint, r"^http://%s:27\d\d\d$" % re.escape(a))
                if allowed:
                    self.assertEqual(udf_call(r.endpoint, "f", [1], r.token), (200, {"result": 2}), cidrs)
                else:
                    self.assertTrue(http_down(r.endpoint + "/functions"), "a peer outside %s is cut off" % cidrs)
                loop = "http://127.0.0.1:" + r.endpoint.rsplit(":", 1)[1]
                self.assertEqual(udf_call(loop, "f", [1], r.token), (200, {"result": 2}), "loopback always")
            finally:
                self.assertEqual(srv.stop(), 0, srv.stderr_tail())


# ---- egress_cidrs: networks the test makes ----

BANNER_SERVER = ("import socket, sys\n"
                 "s = socket.create_server((sys.argv[1], 0)); print(s.getsockname()[1], flush=True)\n"
                 "while True:\n"
                 "    c, _ = s.accept(); c.sendall(sys.argv[2].encode()); c.close()\n")


class TestNet:
    """A network namespace of this test's own, joined to the host by a veth
    pair: the host side holds <prefix>.1/24 (a host address), the namespace
    <prefix>.2/24, where a server answers each connection with a banner."""

    def __init__(self, tag):
        self.ns = "udfbt-%d-%s" % (os.getpid(), tag)
        self.veth = "ut%d%s" % (os.getpid() % 100000, tag[0])
        used = sh("ip", "-4", "route", "show")
        while True:
            self.prefix = "10.%d.%d" % (64 + uuid.uuid4().int % 64, uuid.uuid4().int % 256)
            if self.prefix + "." not in used:
                break
        self.cidr = self.prefix + ".0/24"
        self.host, self.addr = self.prefix + ".1", self.prefix + ".2"
        sh("ip", "netns", "add", self.ns)
        sh("ip", "link", "add", self.veth, "type", "veth", "peer", "name", "eth0", "netns", self.ns)
        sh("ip", "addr", "add", self.host + "/24", "dev", self.veth)
        sh("ip", "link", "set", self.veth, "up")
        sh("ip", "-n", self.ns, "addr", "add", self.addr + "/24", "dev", "eth0")
        sh("ip", "-n", self.ns, "link", "set", "eth0", "up")
        sh("ip", "-n", self.ns, "link", "set", "lo", "up")
        self.srv = subprocess.Popen(["ip", "netns", "exec", self.ns, sys.executable, "-c", BANNER_SERVER, self.addr,
                                     "hello from " + tag], stdout=subprocess.PIPE, text=True)
        self.port = int(self.srv.stdout.readline())

    def close(self):
        self.srv.kill()
        self.srv.wait()
        subprocess.run(["ip", "link", "del", self.veth], check=False, stderr=subprocess.DEVNULL)
        subprocess.run(["ip", "netns", "del", self.ns], check=False)


EGRESS_PROBE = ("import errno, json, socket\n"
                "def probe(targets):\n"
                "    out = {}\n"
                "    for name, (host, port) in sorted(json.loads(targets).items()):\n"
                "        s = socket.socket()\n"
                "        s.settimeout(2.0)\n"
                "        try:\n"
                "            if name.endswith('_bound_to_eth0'):  # past the routes, straight to the device\n"
                "                s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b'eth0')\n"
                "            s.connect((host, port)); out[name] = 'CONNECTED ' + s.recv(100).decode()\n"
                "        except socket.timeout:\n"
                "            out[name] = 'timeout'\n"
                "        except OSError as e:\n"
                "            out[name] = errno.errorcode.get(e.errno, str(e.errno))\n"
                "        finally:\n"
                "            s.close()\n"
                "    out['interfaces'] = sorted(n for _, n in socket.if_nameindex())\n"
                "    return json.dumps(out)\n")


class EgressTest(unittest.TestCase):
    """egress_cidrs opens operator-chosen networks to sandboxes, through
    pasta, with an nftables table in each sandbox's own namespace: a UDF
    reaches a server on an allowed network (a namespace this test makes) and
    not one outside it, and never the host (its address inside the allowed
    network, its other addresses even when listed, its loopback), the
    metadata address (listed too) or pasta's gateway; an address the host
    gains while the sandbox runs is closed too.  SIGTERM leaves no pasta,
    namespace or mount behind."""

    @classmethod
    def setUpClass(cls):
        missing = [t for t in ("pasta", "nft") if not shutil.which(t)]
        if missing:
            raise unittest.SkipTest("%s not installed (packages passt, nftables)" % " and ".join(missing))
        cls.inside, cls.outside = TestNet("in"), TestNet("out")
        # If the metadata address ever got past the sandbox's table, pasta's
        # socket would go to the default route: a blackhole keeps it on this host.
        cls.blackhole = "169.254.169.254" not in sh("ip", "-4", "route", "show")
        if cls.blackhole:
            sh("ip", "route", "add", "blackhole", "169.254.169.254/32")

    @classmethod
    def tearDownClass(cls):
        if cls.blackhole:
            subprocess.run(["ip", "route", "del", "blackhole", "169.254.169.254/32"], check=False)
        cls.inside.close()
        cls.outside.close()

    def test_egress_to_allowed_networks_only(self):
        hosts = host_addresses()
        allowed = [self.inside.cidr, "169.254.169.254"] + ["%s/32" % a for a in hosts]
        srv = Server("egress", opts={"egress_cidrs": ",".join(allowed), "port_min": "28000", "port_max": "28999",
                                     "reap_interval_ms": "100"})
        try:
            log = Path(srv.stderr_path).read_text()
            self.assertRegex(log, r"sandboxes reach %s\S* through pasta" % re.escape(self.inside.cidr))
            anyl = socket.create_server(("0.0.0.0", 0))  # a host service on every address
            self.addCleanup(anyl.close)
            hostl = socket.create_server((self.inside.host, 0))  # the host's address in the allowed network
            self.addCleanup(hostl.close)
            targets = {"allowed": [self.inside.addr, self.inside.port],
                       "not_allowed": [self.outside.addr, self.outside.port],
                       "not_allowed_bound_to_eth0": [self.outside.addr, self.outside.port],
                       "host_in_allowed": [self.inside.host, hostl.getsockname()[1]],
                       "grpc": ["127.0.0.1", srv.grpc_port], "metadata": ["169.254.169.254", 80],
                       "gateway": ["10.0.2.2", 80]}
            for k, a in enumerate(hosts):
                targets["host_%d_%s" % (k, a)] = [a, anyl.getsockname()[1]]
            for net in (self.inside, self.outside):  # both answer the host: refusals below are the sandbox's
                with socket.create_connection((net.addr, net.port), timeout=2) as c:
                    self.assertEqual(c.recv(100), b"hello from " + net.ns.rsplit("-", 1)[1].encode())
            r = srv.call(code_request(EGRESS_PROBE, "probe", "STRING", "3.11", ["STRING"]))
            self.assertEqual(r.code, "OK", "%r%s" % (r, srv.stderr_tail()))
            t0 = time.monotonic()
            status, out = udf_call(r.endpoint, "probe", [json.dumps(targets)], r.token)
            self.assertEqual(status, 200, out)
            seen = json.loads(out["result"])
            print("# egress from inside a sandbox (%.2f s): %s" % (time.monotonic() - t0, json.dumps(seen, sort_keys=True)),
                  flush=True)
            self.assertEqual(seen.pop("interfaces"), ["eth0", "lo"])
            self.assertEqual(seen.pop("allowed"), "CONNECTED hello from in")
            for name, how in seen.items():
                self.assertIn(how, ("ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "EACCES", "EPERM", "ENOPROTOOPT"),
                              name)
            # An address the host gains later, inside the allowed network, is
            # closed too once the reaper sees it (reap_interval_ms 100).
            late = self.inside.prefix + ".9"
            sh("ip", "addr", "add", late + "/32", "dev", self.inside.veth)
            latel = socket.create_server((late, 0))
            self.addCleanup(latel.close)
            socket.create_connection((late, latel.getsockname()[1]), timeout=2).close()  # the host's own
            poll(lambda: "egress to" in Path(srv.stderr_path).read_text(), 10, "the reaper closing " + late)
            status, out = udf_call(r.endpoint, "probe", [json.dumps({"late": [late, latel.getsockname()[1]]})],
                                   r.token)
            self.assertEqual(json.loads(out["result"])["late"], "ECONNREFUSED", out)
            # The endpoint still serves, and the sandbox has its ruleset and its pasta.
            self.assertEqual(udf_call(r.endpoint, "probe", ["{}"], r.token)[0], 200)
            pastas = [int(p.read_text()) for p in Path(srv.state_dir, "sandboxes").glob("*/pasta.pid")]
            self.assertEqual(len(pastas), 1)
            pids = [int(p.read_text()) for p in Path(srv.state_dir, "sandboxes").glob("*/pid")]
            nets = {os.readlink("/proc/%d/ns/net" % pid) for pid in pids}
            self.assertEqual(os.readlink("/proc/%d/ns/net" % pastas[0]), os.readlink("/proc/self/ns/net"),
                             "pasta's sockets are the service's own namespace's")
        finally:
            self.assertEqual(srv.stop(), 0, srv.stderr_tail())
        self.assertEqual([p for p in pastas + pids if os.path.exists("/proc/%d" % p)], [], "no pasta or sandbox left")
        self.assertEqual(set(namespaces_in_use()) & nets, set(), "no sandbox's network namespace is left")
        self.assertEqual(our_mounts(srv.state_dir), [])

    def test_egress_settings_checked(self):
        if RUNTIME != "runc":
            self.skipTest("settings are the same under every runtime: checked under runc")
        for value, msg in (("10.0.0.1/8", "bits set past the /8 prefix"), ("2001:db8::/32", "IPv6 is not offered"),
                           ("10.0.0.0/33", "expected an IPv4 network")):
            cmd = [BIN, "serve", "--listen", "127.0.0.1:0", "--store", os.path.join(TMP, RUNTIME, "egress-bad"),
                   "--scheduler", "local", "--scheduler-opt", "egress_cidrs=" + value]
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn(msg, p.stderr)


def double_wheels(outdir):
    """The runtime TEST DOUBLE (tests/runtime-double) as wheels in a directory
    index: databend-udf (needs pyarrow) and pyarrow, as the operator's index
    would hold the real ones."""
    import wheels
    os.makedirs(outdir, exist_ok=True)
    double = REPO / "tests" / "runtime-double"
    pa = {"pyarrow/" + f.name: f.read_bytes() for f in sorted((double / "pyarrow").glob("*.py"))}
    wheels.write_wheel(outdir, "pyarrow", "1.0", pa)
    wheels.write_wheel(outdir, "databend-udf", "1.0", {"databend_udf.py": (double / "databend_udf.py").read_bytes()},
                       requires=("pyarrow",))


class RuntimePackagesTest(unittest.TestCase):
    """serve --runtime-packages databend-udf: a base without databend_udf
    (the whited-out copy), composed once with the double's wheels from a
    local directory index, serves UDFs and the shared vectors."""

    def test_plain_base_serves_with_runtime_packages(self):
        wheel_dir = os.path.join(TMP, RUNTIME, "double-wheels")
        double_wheels(wheel_dir)
        imports = ImportServer(harness.vector_files())
        self.addCleanup(imports.close)
        env = {}
        for path in sorted(REQUESTS.glob("*.expect.json")):
            call = json.loads(path.read_text()).get("call")
            if call and call.get("env"):
                env["%s.%s" % (TENANT, path.name[: -len(".expect.json")])] = call["env"]
        srv = Server("rtpkg", opts={"port_min": "25000", "port_max": "25999"}, config={"env": env},
                     bases=[("3", "oci:%s:python" % NODB)],
                     args=["--runtime-packages", "databend-udf", "--index-url", wheel_dir])
        self.addCleanup(srv.stop)
        log = Path(srv.stderr_path).read_text()
        self.assertRegex(log, r"runtime 3: base composed with databend-udf in \d+ ms \(built, 2 wheels installed\)")
        self.assertNotIn("has no databend_udf module", log)
        r = srv.call(fresh_request())
        self.assertEqual(r.code, "OK", "%r%s" % (r, srv.stderr_tail()))
        self.assertEqual(udf_call(r.endpoint, "f", [41], r.token), (200, {"result": 42}))
        ran = 0
        for path in sorted(REQUESTS.glob("*.expect.json")):
            name = path.name[: -len(".expect.json")]
            call = json.loads(path.read_text()).get("call")
            if not call:
                continue
            with self.subTest(vector=name):
                req = vector_request(name, imports.port)
                r = srv.call(req)
                self.assertEqual(r.code, "OK", "%r%s" % (r, srv.stderr_tail()))
                status, out = udf_call(r.endpoint, json.loads(req.spec)["handler"], call["args"], r.token)
                self.assertEqual((status, out.get("result")), (200, call["expect"]), name)
                ran += 1
        self.assertGreaterEqual(ran, 3)
        print("# a base without databend_udf, plus --runtime-packages databend-udf: %d vectors served" % ran, flush=True)


CLASSES = (LocalSandboxTest, IdleAndLimitsTest, KeepOnExitTest, CrashTest, RuntimePackagesTest, QueryCidrsTest,
           DefaultRuntimeTest, EgressTest)


def runtimes():
    """runc, and runsc (gVisor) where installed; UDFB_TEST_RUNTIMES=runsc picks."""
    wanted = os.environ.get("UDFB_TEST_RUNTIMES", "runc,runsc").split(",")
    have = [r for r in wanted if shutil.which(r)]
    for r in wanted:
        if r not in have:
            print("# %s is not installed: its pass is skipped" % r, flush=True)
    return have


def main():
    global TMP, LAYERS, INDEX
    os.chdir(REPO)
    harness.skip_unless(**harness.SANDBOX_NEEDS)
    t_start = time.monotonic()
    TMP = tempfile.mkdtemp(prefix="udfb-local-test.")
    os.chmod(TMP, 0o755)
    LAYERS = os.path.join(TMP, "layers")
    try:
        try:
            harness.load_protos(TMP, "udf")
            load_bases(TMP)
            INDEX, _ = harness.start_index(TMP)
        except Exception:
            tap.check("setup (protoc, grpc, python base image, package index)", False, traceback.format_exc())
            return tap.done()
        print("# binary %s, base oci:%s:python (runtime inside: the TEST DOUBLE of databend_udf)" % (BIN, BASE),
              flush=True)
        global RUNTIME
        result = tap.TapResult()
        for RUNTIME in runtimes():
            print("# ---- every test under %s ----" % RUNTIME, flush=True)
            result.prefix = RUNTIME + ": "
            tap.run_cases(CLASSES, sys.argv[1:], result)
        print("# %.1f s in all" % (time.monotonic() - t_start), flush=True)
        return tap.done()
    finally:
        harness.remove_sandbox_leftovers()
        shutil.rmtree(TMP, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
