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
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import traceback
import unittest
import urllib.error
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = os.environ.get("UDFB_BIN") or str(REPO / "bin" / "udf-builder")
REQUESTS = REPO / "tests" / "data" / "requests"
APPLY = "/udfproto.UdfService/ApplyUdfResource"
START_TIMEOUT = 30.0
CALL_TIMEOUT = 120.0  # the first start unpacks the 170 MB base once: seconds on a slow disk
STOP_TIMEOUT = 30.0
TENANT = "tenant-a"
SECRET = "local-sandbox-secret-0123456789"
# Vectors whose call cannot run here (none: add_one_helper's humanize comes
# from the test wheels, tests/lib/wheels.py, served as a package index).
SKIP_VECTORS = {}
INDEX = None  # the loopback package index of the test wheels

udf_pb2 = None
grpc = None
BASE = None  # the python base layout
NODB = None  # the same base with databend_udf whited out
ALL_SERVERS = []
TMP = None
LAYERS = None  # one layer cache for every server of this test


def sh(*cmd, check=True, timeout=120):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=check,
                          timeout=timeout).stdout


def poll(fn, timeout, what, interval=0.05):
    until = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() >= until:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(interval)


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


def load_protos(tmp):
    global udf_pb2, grpc
    import grpc as grpc_mod
    import importlib

    grpc = grpc_mod
    out = os.path.join(tmp, "pb")
    os.makedirs(out)
    subprocess.run(["protoc", "--python_out=" + out, "--proto_path=proto", "proto/udf.proto"], cwd=REPO, check=True)
    sys.path.insert(0, out)
    udf_pb2 = importlib.import_module("udf_pb2")


def load_bases(tmp):
    """The python base, and a copy with one more layer whose whiteout hides
    databend_udf (a base the operator got wrong; also a whiteout test)."""
    global BASE, NODB
    BASE = sh("bash", "-c", ". tests/lib/base-image.sh && udfb_base_image", timeout=1200).strip().splitlines()[-1]
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


# ---- imports over HTTP (as test_service.py) ----


class ImportServer:
    def __init__(self, root):
        import http.server

        self.root = root
        for path in sorted(REQUESTS.glob("*.expect.json")):
            for name, content in json.loads(path.read_text())["files"].items():
                zipped = name.startswith("zip:")
                name = name[4:] if zipped else name
                dst = os.path.join(root, name)
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                if zipped:
                    import zipfile

                    buf = io.BytesIO()
                    with zipfile.ZipFile(buf, "w") as z:
                        for member, text in sorted(content.items()):
                            z.writestr(zipfile.ZipInfo(member, (2020, 1, 1, 0, 0, 0)), text)
                    Path(dst).write_bytes(buf.getvalue())
                else:
                    Path(dst).write_text(content)
        outer = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a, **kw):
                super().__init__(*a, directory=outer.root, **kw)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def vector_request(name, imports_port):
    text = (REQUESTS / (name + ".request.json")).read_text().replace("IMPORTS_BASE", "127.0.0.1:%d" % imports_port)
    d = json.loads(text)
    return udf_pb2.ApplyUdfResourceRequest(spec=d["spec"], imports=[udf_pb2.UdfImport(**im) for im in d["imports"]])


def code_request(code, handler, result_type="STRING", runtime="3.11", input_types=()):
    spec = {"version": 1, "kind": "udf", "language": "python", "handler": handler, "input_types": list(input_types),
            "result_type": result_type, "imports": [], "packages": [], "runtime_version": runtime, "code": code}
    return udf_pb2.ApplyUdfResourceRequest(spec=json.dumps(spec, separators=(",", ":")))


def fresh_request(handler="f"):
    """A UDF no other test has: its key is cold."""
    nonce = uuid.uuid4().hex
    return code_request("# %s\ndef %s(x):\n    return x + 1\n" % (nonce, handler), handler, "INT", "3.11", ["INT"])


# ---- HTTP to sandboxes ----


def http(method, url, body=None, headers=None, timeout=10):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def udf_call(endpoint, function, args, token):
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["x-authorization"] = token
    status, body = http("POST", endpoint + "/call", json.dumps({"function": function, "args": args}).encode(), headers)
    return status, json.loads(body) if body else None


# ---- the server under test ----


class Reply:
    def __init__(self, code, details, endpoint=None, headers=None, elapsed=0.0):
        self.code, self.details, self.endpoint, self.headers, self.elapsed = code, details, endpoint, headers, elapsed

    @property
    def token(self):
        return (self.headers or {}).get("x-authorization")

    def __repr__(self):
        return "Reply(%s, %r, endpoint=%r, %.3f s)" % (self.code, self.details, self.endpoint, self.elapsed)


class Server:
    def __init__(self, name, opts=(), config=None, bases=None):
        self.dir = os.path.join(TMP, name)
        os.makedirs(self.dir)
        self.state_dir = dict(opts).get("state_dir") or os.path.join(self.dir, "state")
        self.runtime_root = os.path.join(self.state_dir, "runtime")
        self.stderr_path = os.path.join(self.dir, "stderr")
        cfg = dict(config or {})
        cfg.setdefault("token_secrets", [SECRET])
        cfg_path = os.path.join(self.dir, "config.json")
        Path(cfg_path).write_text(json.dumps(cfg))
        env = {k: v for k, v in os.environ.items() if not k.startswith("UDFB_") or k == "UDFB_TEST_CACHE"}
        cmd = [BIN, "serve", "--config", cfg_path, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
               "--store", os.path.join(self.dir, "store"), "--scheduler", "local", "--imports-allow", "127.0.0.1",
               "--default-runtime", "3", "--index-url", INDEX]
        for rt, ref in (bases or [("3", "oci:%s:python" % BASE)]):
            cmd += ["--base-image", "%s=%s" % (rt, ref)]
        all_opts = {"state_dir": self.state_dir, "layers_dir": LAYERS, "port_min": "21000", "port_max": "21999"}
        all_opts.update(dict(opts))
        for k, v in all_opts.items():
            cmd += ["--scheduler-opt", "%s=%s" % (k, v)]
        self.stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.stderr, env=env, cwd=self.dir)
        ALL_SERVERS.append(self)
        self.rc = None
        box = []
        t = threading.Thread(target=lambda: box.append(self.proc.stdout.readline().decode()), daemon=True)
        t.start()
        t.join(START_TIMEOUT)
        m = re.fullmatch(r"serving grpc_port=(\d+) admin_port=(\d+)\n", box[0] if box else "")
        if not m:
            self.kill()
            raise AssertionError("server did not start: %r%s" % (box, self.stderr_tail()))
        self.admin_port = int(m.group(2))
        self.channel = grpc.insecure_channel("127.0.0.1:%s" % m.group(1))
        grpc.channel_ready_future(self.channel).result(timeout=START_TIMEOUT)
        self.apply = self.channel.unary_unary(APPLY, request_serializer=lambda m: m.SerializeToString(),
                                              response_deserializer=udf_pb2.ApplyUdfResourceResponse.FromString)

    def call(self, req, tenant=TENANT, timeout=CALL_TIMEOUT):
        md = [("x-databend-tenant", tenant), ("x-databend-user", "'root'@'%'"),
              ("x-databend-query-id", str(uuid.uuid4())), ("udf_client_version", "v1")]
        t0 = time.monotonic()
        try:
            resp = self.apply(req, timeout=timeout, metadata=md)
        except grpc.RpcError as e:
            return Reply(e.code().name, e.details() or "", elapsed=time.monotonic() - t0)
        return Reply("OK", "", resp.endpoint, dict(resp.headers), time.monotonic() - t0)

    def stderr_tail(self, n=30):
        try:
            lines = Path(self.stderr_path).read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\nserver stderr (last %d lines):\n  " % n + "\n  ".join(lines[-n:])

    def runc(self, *args, check=True):
        return sh("runc", "--root", self.runtime_root, *args, check=check)

    def containers(self):
        return [line for line in self.runc("list", "-q").splitlines() if line]

    def record(self, endpoint):
        """The sandbox.json of the running sandbox serving endpoint."""
        port = int(endpoint.rsplit(":", 1)[1])
        for rec in Path(self.state_dir, "sandboxes").glob("*/sandbox.json"):
            d = json.loads(rec.read_text())
            if d["udf_port"] == port:
                return d
        raise AssertionError("no sandbox record for %s%s" % (endpoint, self.stderr_tail()))

    def status_url(self, endpoint, path):
        return "http://127.0.0.1:%d%s" % (self.record(endpoint)["status_port"], path)

    def stop(self):
        if self.rc is None:
            self.channel.close()  # a client still connected holds the gRPC shutdown up
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.rc = self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill()
                self.rc = "timeout"
            self.stderr.close()
        return self.rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.stderr.close()


def our_mounts(prefix):
    return [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines() if line.split()[1].startswith(prefix)]


def cleanup_leftovers():
    """Whatever a failed run left: containers, mounts."""
    for s in ALL_SERVERS:
        s.kill()
        if os.path.isdir(s.runtime_root):
            for cid in s.runc("list", "-q", check=False).splitlines():
                if cid:
                    s.runc("delete", "--force", cid, check=False)
        for m in sorted(our_mounts(s.state_dir), reverse=True):
            subprocess.run(["umount", "-l", m], check=False)


# ---- tests ----


class LocalSandboxTest(unittest.TestCase):
    """One server for most tests: sandboxes live across tests."""

    @classmethod
    def setUpClass(cls):
        cls.imports = ImportServer(os.path.join(TMP, "imports"))
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
        self.srv.runc("kill", old["id"], "KILL")
        poll(lambda: http_down(self.srv.status_url(r.endpoint, "/health")), 10, "the killed sandbox to stop answering")
        # Its sockets close a moment before the process is gone; the service
        # learns of a death from the process (pidfd), so wait for runc too.
        poll(lambda: '"status": "running"' not in self.srv.runc("state", old["id"], check=False).replace('":"', '": "'),
             10, "runc to see the killed sandbox stopped")
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
            "    out = {k: st[k].strip() for k in ('Uid', 'Gid', 'CapEff', 'CapBnd', 'NoNewPrivs', 'Seccomp')}\n"
            "    for path in ('/app/x', '/usr/x', '/tmp/x'):\n"
            "        try:\n"
            "            open(path, 'w').write('1'); out[path] = 'ok'\n"
            "        except OSError as e:\n"
            "            out[path] = e.errno\n"
            "    libc = ctypes.CDLL(None, use_errno=True)\n"
            "    out['unshare_user'] = libc.unshare(0x10000000) == -1 and ctypes.get_errno()\n"
            "    out['pid'] = os.getpid()\n"
            "    out['hostname'] = socket.gethostname()\n"
            "    out['nofile'] = open('/proc/self/limits').read().count('Max open files            1024')\n"
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
        self.assertEqual(p["NoNewPrivs"], "1")
        self.assertEqual(p["Seccomp"], "2")
        self.assertEqual(p["/app/x"], 30)  # EROFS
        self.assertEqual(p["/usr/x"], 30)
        self.assertEqual(p["/tmp/x"], "ok")
        self.assertEqual(p["unshare_user"], 1)  # EPERM from the seccomp filter
        self.assertEqual(p["pid"], 1, "a pid namespace of its own")
        self.assertTrue(p["hostname"].startswith("udf-"), p["hostname"])
        self.assertEqual(p["nofile"], 1)
        self.assertEqual(p["suid"], [], "setuid bits are dropped on unpack")
        self.check_cgroup_limits(r.endpoint)

    def check_cgroup_limits(self, endpoint):
        rec = self.srv.record(endpoint)
        pid = json.loads(self.srv.runc("state", rec["id"]))["pid"]
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

    def test_9_sigterm_stops_every_sandbox(self):
        self.assertTrue(self.srv.containers())
        t0 = time.monotonic()
        self.assertEqual(self.srv.stop(), 0, self.srv.stderr_tail())
        print("# SIGTERM to exit with sandboxes: %.2f s" % (time.monotonic() - t0), flush=True)
        self.assertEqual(self.srv.containers(), [], "runc list shows none")
        self.assertEqual(our_mounts(self.srv.state_dir), [])
        self.assertEqual(list(Path(self.srv.state_dir, "sandboxes").iterdir()), [])
        log = Path(self.srv.stderr_path).read_text(errors="replace")
        self.assertNotIn(SECRET, log)


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
        state = os.path.join(TMP, "keep-state")
        opts = {"keep_on_exit": "1", "state_dir": state, "port_min": "24000", "port_max": "24999"}
        first = Server("keep1", opts=opts)
        req = fresh_request()
        r = first.call(req)
        self.assertEqual(r.code, "OK", "%r%s" % (r, first.stderr_tail()))
        cid = first.record(r.endpoint)["id"]
        self.assertEqual(first.stop(), 0, first.stderr_tail())
        self.assertEqual(first.containers(), [cid], "left running")
        self.assertEqual(udf_call(r.endpoint, "f", [1], r.token), (200, {"result": 2}))
        second = Server("keep2", opts=opts)
        r2 = second.call(req)
        self.assertEqual((r2.code, r2.endpoint), ("OK", r.endpoint), r2)
        self.assertEqual(second.record(r2.endpoint)["id"], cid, "adopted, not restarted")
        self.assertIn("adopted", Path(second.stderr_path).read_text())
        self.assertEqual(second.stop(), 0, second.stderr_tail())
        third = Server("keep3", opts={"state_dir": state, "port_min": "24000", "port_max": "24999"})
        self.assertEqual(third.containers(), [], "a start without keep_on_exit removes leftovers")
        self.assertEqual(our_mounts(state), [])
        self.assertEqual(third.stop(), 0, third.stderr_tail())


# ---- TAP ----


class TapResult(unittest.TestResult):
    def __init__(self):
        super().__init__()
        self.n = 0
        self.t0 = {}

    @staticmethod
    def name(test):
        return test.id().split(".", 1)[-1] if isinstance(test, unittest.TestCase) else str(test)

    def startTest(self, test):
        super().startTest(test)
        self.t0[test] = time.monotonic()

    def _line(self, ok, test, directive="", text=None):
        self.n += 1
        took = time.monotonic() - self.t0.get(test, time.monotonic())
        print("%s %d - %s (%.2f s)%s" % ("ok" if ok else "not ok", self.n, self.name(test), took, directive), flush=True)
        for line in (text or "").rstrip().splitlines():
            print("# " + line, flush=True)

    def addSuccess(self, test):
        super().addSuccess(test)
        self._line(True, test)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._line(False, test, text=self._exc_info_to_string(err, test))

    def addError(self, test, err):
        super().addError(test, err)
        self._line(False, test, text=self._exc_info_to_string(err, test))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._line(True, test, " # SKIP " + reason)

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._line(False, subtest, text=self._exc_info_to_string(err, test))


def start_index(tmp):
    """The test wheels served as a PEP 691/503 index on loopback."""
    global INDEX
    sys.path.insert(0, str(REPO / "tests" / "lib"))
    import pkgindex_server
    import wheels
    wheels.build(os.path.join(tmp, "wheels"))
    srv = pkgindex_server.start(os.path.join(tmp, "wheels"))
    INDEX = "http://127.0.0.1:%d/simple" % srv.port


def main():
    global TMP, LAYERS
    os.chdir(REPO)
    reason = skip_reason()
    if reason:
        print("1..0 # SKIP %s" % reason)
        return 77
    t_start = time.monotonic()
    TMP = tempfile.mkdtemp(prefix="udfb-local-test.")
    os.chmod(TMP, 0o755)
    LAYERS = os.path.join(TMP, "layers")
    try:
        try:
            load_protos(TMP)
            load_bases(TMP)
            start_index(TMP)
        except Exception:
            print("not ok 1 - setup (protoc, grpc, python base image, package index)")
            for line in traceback.format_exc().splitlines():
                print("# " + line)
            print("1..1")
            return 1
        print("# binary %s, base oci:%s:python (runtime inside: the TEST DOUBLE of databend_udf)" % (BIN, BASE),
              flush=True)
        suite = unittest.TestSuite()
        loader = unittest.TestLoader()
        only = sys.argv[1:]
        for cls in (LocalSandboxTest, IdleAndLimitsTest, KeepOnExitTest):
            for t in loader.loadTestsFromTestCase(cls):
                if not only or any(o in t.id() for o in only):
                    suite.addTest(t)
        result = TapResult()
        suite.run(result)
        print("1..%d" % result.n)
        print("# %.1f s in all" % (time.monotonic() - t_start), flush=True)
        return 0 if result.wasSuccessful() else 1
    finally:
        cleanup_leftovers()
        shutil.rmtree(TMP, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
