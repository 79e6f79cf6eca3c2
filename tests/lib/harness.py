"""What the Python integration tests share, so that each test file holds
only its checks: where things are (the binary under test, the repository,
the request vectors), why a test cannot run here (skip: "1..0 # SKIP",
exit 77), the test images (tests/lib/base-image.sh), the message classes
(generated with protoc at test time: Debian 12 packages no grpc_tools), the
test wheels served as a package index, and `udf-builder serve` itself:
Service (its flags, ports from :0 read from its first line, readiness of
its gRPC port, its stderr kept in a file, calls as a Databend query node
makes them, SIGTERM and the exit status) and SandboxService (the same with
the local scheduler: its runtime's state, the sandboxes' records, what a
failed run leaves behind).

TAP is tests/lib/tap.py; the import server is tests/lib/http_server.py."""

import importlib
import importlib.util
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LIB = REPO / "tests" / "lib"
if str(LIB) not in sys.path:
    sys.path.insert(0, str(LIB))
import tap  # noqa: E402

BIN = os.environ.get("UDFB_BIN") or str(REPO / "bin" / "udf-builder")
REQUESTS = REPO / "tests" / "data" / "requests"  # the UdfService vectors
APPLY = "/udfproto.UdfService/ApplyUdfResource"
APPLY_RESOURCE = "/resourceproto.ResourceService/ApplyResource"
CREATE_WORKER = "/resourceproto.WorkerService/CreateWorker"
DATABEND = REPO / "tests" / "data" / "databend"  # what released Databend nodes send
grpc = None  # Debian's grpcio, once load_protos() ran
SERVICES = []  # every Service started, for kill_all()
OWN = object()  # a call's tenant when it names none: the service's (None: no x-databend-tenant)


# ---- what a test needs ----


def missing(root=False, tools=(), overlay=False, grpc_module=False, binary=True):
    """Why a test needing these cannot run here, or None."""
    if root and os.geteuid() != 0:
        return "needs root (runc, overlay mounts)"
    for tool in tools:
        if not shutil.which(tool):
            return "%s is not installed" % tool
    if overlay and "overlay" not in Path("/proc/filesystems").read_text():
        return "no overlayfs in this kernel"
    if binary and not os.access(BIN, os.X_OK):
        return "%s is not built (run make)" % BIN
    if grpc_module and importlib.util.find_spec("grpc") is None:
        return "python3-grpcio is not installed"
    return None


def skip_unless(**needs):
    """Ends the test as skipped (exit 77) when missing(**needs) says why."""
    reason = missing(**needs)
    if reason:
        tap.skip_all(reason)


SANDBOX_NEEDS = dict(root=True, tools=("runc",), overlay=True, grpc_module=True)


# ---- small tools ----


def sh(*cmd, check=True, timeout=120, cwd=REPO):
    """A command's stdout and stderr together; raises on failure with check."""
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=check,
                          timeout=timeout, cwd=cwd).stdout


def poll(fn, timeout, what, interval=0.05):
    """Calls fn until it returns a true value, which is returned; raises
    AssertionError after timeout seconds."""
    until = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() >= until:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(interval)


def free_port():
    """A loopback TCP port free now (for a program that takes no :0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrubbed_env(extra=None, unset=(), keep=("UDFB_TEST_CACHE",)):
    """This environment without the UDFB_* settings (only what a test sets
    reaches the binary) and the variables in unset, plus extra."""
    env = {k: v for k, v in os.environ.items() if (not k.startswith("UDFB_") or k in keep) and k not in unset}
    env.update(extra or {})
    return env


# ---- images, protos, packages ----


def _image(function, timeout):
    # Its progress goes to our stderr; the path is the last line of stdout.
    out = subprocess.run(["bash", "-c", ". tests/lib/base-image.sh && " + function], stdout=subprocess.PIPE,
                         text=True, check=True, timeout=timeout, cwd=REPO).stdout
    return out.strip().splitlines()[-1]


def tiny_image():
    """The OCI layout of the tiny base (no Python; tag "tiny"), built once."""
    return _image("udfb_tiny_image", 600)


def python_base():
    """The OCI layout of the Debian Python base (tag "python") with the
    runtime TEST DOUBLE inside, built once (minutes the first time)."""
    return _image("udfb_base_image", 1200)


def load_protos(tmp, *names):
    """The message modules of proto/NAME.proto for each name (udf, health,
    resource), generated into tmp/pb; also sets harness.grpc."""
    global grpc
    import grpc as grpc_mod

    grpc = grpc_mod
    out = os.path.join(tmp, "pb")
    os.makedirs(out, exist_ok=True)
    subprocess.run(["protoc", "--python_out=" + out, "--proto_path=proto"] + ["proto/%s.proto" % n for n in names],
                   cwd=REPO, check=True)
    if out not in sys.path:
        sys.path.insert(0, out)
    return tuple(importlib.import_module("%s_pb2" % n) for n in names)


def start_index(tmp, **kw):
    """The test wheels (tests/lib/wheels.py) built into tmp/wheels and served
    as a PEP 691/503 index on loopback: (its /simple URL, the server)."""
    import pkgindex_server
    import wheels

    wheels.build(os.path.join(tmp, "wheels"))
    srv = pkgindex_server.start(os.path.join(tmp, "wheels"), **kw)
    return "http://127.0.0.1:%d/simple" % srv.port, srv


def vector_files(vectors=REQUESTS):
    """The import files the vectors' *.expect.json list: {path: bytes}; a
    "zip:" name is a zip of its members, made deterministically."""
    files = {}
    for path in sorted(Path(vectors).glob("*.expect.json")):
        for name, content in json.loads(path.read_text())["files"].items():
            files.update([file_bytes(name, content)])
    return files


def vector(name, port, vectors=REQUESTS, suffix=".request"):
    """A request vector (NAME.request.json, or for Databend's
    NAME.create_worker.json and NAME.apply_resource.json: suffix
    ".create_worker") as a dict, its imports pointing at the import server
    on port."""
    text = (Path(vectors) / (name + suffix + ".json")).read_text()
    return json.loads(text.replace("IMPORTS_BASE", "127.0.0.1:%d" % port))


def expect(name, vectors=REQUESTS):
    """A vector's NAME.expect.json."""
    return json.loads((Path(vectors) / (name + ".expect.json")).read_text())


def udf_request(code, handler, result_type="STRING", runtime="3.11", input_types=(), imports=()):
    """An ApplyUdfResourceRequest of a spec around code (load_protos(...,
    "udf") first); imports: UdfImport messages, named in the spec too."""
    import udf_pb2

    spec = {"version": 1, "kind": "udf", "language": "python", "handler": handler, "input_types": list(input_types),
            "result_type": result_type, "imports": [i.location for i in imports], "packages": [],
            "runtime_version": runtime, "code": code}
    return udf_pb2.ApplyUdfResourceRequest(spec=json.dumps(spec, separators=(",", ":")), imports=list(imports))


def fresh_request(handler="f"):
    """A UDF no other test has (x + 1 on an INT): its key is cold."""
    nonce = uuid.uuid4().hex
    return udf_request("# %s\ndef %s(x):\n    return x + 1\n" % (nonce, handler), handler, "INT", "3.11", ["INT"])


def vector_request(name, port):
    """The ApplyUdfResourceRequest of the vector tests/data/requests/NAME."""
    import udf_pb2

    d = vector(name, port)
    return udf_pb2.ApplyUdfResourceRequest(spec=d["spec"], imports=[udf_pb2.UdfImport(**im) for im in d["imports"]])


def file_bytes(name, content):
    """(name, bytes) of one vector file; "zip:NAME" zips {member: text}."""
    if not name.startswith("zip:"):
        return name, content.encode() if isinstance(content, str) else content
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for member, text in sorted(content.items()):
            z.writestr(zipfile.ZipInfo(member, (2020, 1, 1, 0, 0, 0)), text)
    return name[4:], buf.getvalue()


# ---- the service under test ----


def metadata(tenant="tenant-a", marker="udf_client_version", extra=()):
    """Databend's metadata on every call (no x-databend-tenant when tenant
    is None), plus extra pairs."""
    md = [("x-databend-user", "'root'@'%'"), ("x-databend-query-id", str(uuid.uuid4())), (marker, "v1")]
    if tenant is not None:
        md.insert(0, ("x-databend-tenant", tenant))
    return md + list(extra)


class Reply:
    """A call's outcome: the gRPC code's name ("OK"), details, and what an
    OK reply carried."""

    def __init__(self, code, details="", endpoint="", headers=None, worker=None, elapsed=0.0):
        self.code, self.details, self.endpoint, self.headers = code, details, endpoint, headers or {}
        self.worker, self.elapsed = worker, elapsed

    @property
    def token(self):
        return self.headers.get("x-authorization")

    def __repr__(self):
        return "Reply(%s, %r, endpoint=%r, headers=%r, %.3f s)" % (self.code, self.details, self.endpoint,
                                                                   self.headers, self.elapsed)


class Service:
    """One `udf-builder serve` on loopback ports chosen by the kernel (read
    from its first line, "serving grpc_port=N admin_port=N"), its gRPC
    channel ready; stderr in DIR/stderr, the process's cwd is DIR.  `config`
    (a dict) is written to DIR/config.json and given with --config (with
    listen=False, its listen addresses are the ones); `env` is added to the
    scrubbed environment.  The start fails (AssertionError
    with the stderr tail) when no serving line comes within start_timeout."""

    def __init__(self, dir, args=(), config=None, env=None, unset=(), creds=None, start_timeout=30.0,
                 tenant="tenant-a", call_timeout=5.0, listen=True):
        os.makedirs(dir, exist_ok=True)
        self.dir = dir
        self.tenant = tenant  # the x-databend-tenant of calls that name none
        self.call_timeout = call_timeout  # call()'s deadline when it names none
        self.tokens = set()  # every token handed out (none may reach the log)
        self.stderr_path = os.path.join(dir, "stderr")
        self.rc = None
        self.channel = None
        cmd = [BIN, "serve"]
        if listen:  # else the config (or args) says where
            cmd += ["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"]
        if config is not None:
            cfg = os.path.join(dir, "config.json")
            Path(cfg).write_text(json.dumps(config))
            cmd += ["--config", cfg]
        self.cmd = cmd + list(args)
        self.stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=self.stderr, env=scrubbed_env(env, unset),
                                     cwd=dir)
        SERVICES.append(self)
        try:
            line = self._first_line(start_timeout)
            m = re.fullmatch(r"serving grpc_port=(\d+) admin_port=(\d+)\n", line)
            if not m:
                raise AssertionError("unexpected first line %r%s" % (line, self.stderr_tail()))
            self.grpc_port, self.admin_port = int(m.group(1)), int(m.group(2))
            self.admin = "http://127.0.0.1:%d" % self.admin_port
            self.channel = self.open_channel(creds)
            grpc.channel_ready_future(self.channel).result(timeout=start_timeout)
        except BaseException:
            self.kill()
            raise

    def _first_line(self, timeout):
        box = []
        t = threading.Thread(target=lambda: box.append(self.proc.stdout.readline().decode()), daemon=True)
        t.start()
        t.join(timeout)
        if not box:
            raise AssertionError("no 'serving' line within %.0f s%s" % (timeout, self.stderr_tail()))
        if not box[0]:
            self.proc.wait(5)
            raise AssertionError("exited with %s before serving%s" % (self.proc.returncode, self.stderr_tail()))
        return box[0]

    def open_channel(self, creds=None):
        """Plain HTTP/2, or TLS with creds (grpc.ssl_channel_credentials);
        the test certificates name localhost."""
        target = "127.0.0.1:%d" % self.grpc_port
        if creds is None:
            return grpc.insecure_channel(target)
        return grpc.secure_channel(target, creds, options=(("grpc.ssl_target_name_override", "localhost"),))

    def unary(self, path, resp_cls=None):
        """A unary method of the channel: messages in and out, or bytes
        without resp_cls."""
        if resp_cls is None:
            return self.channel.unary_unary(path, request_serializer=lambda b: b, response_deserializer=lambda b: b)
        return self.channel.unary_unary(path, request_serializer=lambda m: m.SerializeToString(),
                                        response_deserializer=resp_cls.FromString)

    def rpc(self, path, req, resp_cls, marker="udf_client_version", tenant=OWN, timeout=5.0):
        """One call as a Databend query node makes it (its metadata, the
        5 s deadline): a Reply."""
        t0 = time.monotonic()
        md = metadata(self.tenant if tenant is OWN else tenant, marker)
        try:
            resp = self.unary(path, resp_cls)(req, timeout=timeout, metadata=md)
        except grpc.RpcError as e:
            return Reply(e.code().name, e.details() or "", elapsed=time.monotonic() - t0)
        r = Reply("OK", "", getattr(resp, "endpoint", ""), dict(getattr(resp, "headers", {})),
                  getattr(resp, "worker", None), time.monotonic() - t0)
        if r.token:
            self.tokens.add(r.token)
        return r

    def call(self, req, tenant=OWN, timeout=None):
        """ApplyUdfResource (load_protos(..., "udf") first)."""
        import udf_pb2

        return self.rpc(APPLY, req, udf_pb2.ApplyUdfResourceResponse, tenant=tenant,
                        timeout=self.call_timeout if timeout is None else timeout)

    def apply_resource(self, d, tenant=OWN, timeout=5.0):
        """ApplyResource from a vector's dict (load_protos(..., "resource"))."""
        import resource_pb2 as pb

        req = pb.ApplyResourceRequest(type=d.get("type", ""), script=d.get("script", ""))
        return self.rpc(APPLY_RESOURCE, req, pb.ApplyResourceResponse, "resource_client_version", tenant, timeout)

    def create_worker(self, d, tenant=OWN, timeout=5.0):
        """CreateWorker from a vector's dict (camelCase keys, as Databend's JSON)."""
        import resource_pb2 as pb

        req = pb.CreateWorkerRequest(tenant_id=d.get("tenantId", ""), name=d.get("name", ""),
                                     if_not_exists=d.get("ifNotExists", False), type=d.get("type", ""),
                                     script=d.get("script", ""), tags=d.get("tags", {}), options=d.get("options", {}))
        return self.rpc(CREATE_WORKER, req, pb.CreateWorkerResponse, "worker_client_version", tenant, timeout)

    def query(self, rpc, d, timeout=180.0):
        """As Databend's queries do: each call ("create_worker" or
        "apply_resource") has the 5 s deadline; a DEADLINE_EXCEEDED fails
        that query and the next one asks again, until timeout."""
        until = time.monotonic() + timeout
        while True:
            r = self.create_worker(d) if rpc == "create_worker" else self.apply_resource(d)
            if r.code != "DEADLINE_EXCEEDED" or time.monotonic() > until:
                return r
            time.sleep(0.2)

    def http_get(self, path):
        """(status, content type, body) of GET path on the admin port."""
        try:
            with urllib.request.urlopen(self.admin + path, timeout=10) as r:
                return r.status, r.headers.get("Content-Type", ""), r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("Content-Type", ""), e.read().decode()

    def metrics(self):
        """/metrics as {"name{labels}": value}."""
        status, _, body = self.http_get("/metrics")
        assert status == 200, "GET /metrics: %d" % status
        out = {}
        for line in body.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    def log(self):
        return Path(self.stderr_path).read_text(errors="replace")

    def stderr_tail(self, n=30):
        try:
            lines = self.log().splitlines()
        except OSError:
            return ""
        return "\nserver stderr (last %d lines):\n  " % n + "\n  ".join(lines[-n:])

    def signal(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self, timeout=30.0):
        """SIGTERM, wait, and the exit status (a string when it had to be
        killed after timeout)."""
        if self.channel:
            self.channel.close()  # a client still connected holds the gRPC shutdown up
            self.channel = None
        if self.rc is None:
            self.signal(signal.SIGTERM)
            try:
                self.rc = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                self.rc = "timeout: did not exit within %.0f s of SIGTERM" % timeout
        self.stderr.close()
        return self.rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        if self.proc.stdout:
            self.proc.stdout.close()
        self.stderr.close()


def check_clean_stop(srv, what="the service stopped cleanly on SIGTERM (exit 0, no sanitizer report)"):
    """A TAP check: SIGTERM stops srv with exit 0 and its log holds no
    sanitizer report."""
    rc = srv.stop()
    return tap.check(what, rc == 0 and "Sanitizer" not in srv.log(), "exit %r%s" % (rc, srv.stderr_tail(60)))


def kill_all():
    """Whatever a failed run left running."""
    for s in SERVICES:
        try:
            s.kill()
        except Exception:  # noqa: BLE001 - every one gets its chance
            pass


def sanitizer_reports():
    """The stderr files of the services whose log holds a sanitizer report."""
    return [s.stderr_path for s in SERVICES if "Sanitizer" in s.log()]


# ---- sandboxes (the runtime double inside the python base) ----


def http(method, url, body=None, headers=None, timeout=10):
    """(status, body text); an HTTP error status is returned, not raised."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def udf_call(endpoint, function, args, token):
    """A call to a sandbox's runtime TEST DOUBLE (JSON over HTTP, POST
    /call): (status, decoded body or None)."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["x-authorization"] = token
    status, body = http("POST", endpoint + "/call", json.dumps({"function": function, "args": args}).encode(), headers)
    return status, json.loads(body) if body else None


def called(r, handler, args, want):
    """(ok, why): the reply r is OK with an endpoint and a token, and its
    sandbox answers handler(*args) with want."""
    if r.code != "OK" or not r.endpoint or not r.token:
        return False, "reply %r" % r
    status, out = udf_call(r.endpoint, handler, args, r.token)
    return status == 200 and (out or {}).get("result") == want, "HTTP %s %r (want %r)" % (status, out, want)


class SandboxService(Service):
    """`serve --scheduler local`: sandboxes under `runtime` (runc or runsc)
    with the scheduler's state in DIR/state (or opts["state_dir"]), the
    layer cache `layers` (shared by a test's services: a base is unpacked
    once), endpoints on ports[0]..ports[1], `bases` [(runtime, ref)], the
    test wheels' index, imports from loopback, and `secret` as its token
    secret unless config says otherwise."""

    def __init__(self, dir, index, bases, layers, ports, runtime="runc", opts=None, args=(), config=None,
                 secret="sandbox-test-secret-0123456789", **kw):
        opts = dict(opts or {})
        self.state_dir = opts.get("state_dir") or os.path.join(dir, "state")
        self.runtime_root = os.path.join(self.state_dir, "runtime")
        self.runtime = opts.get("runtime") or runtime  # "": the service chooses
        cfg = dict(config or {})
        cfg.setdefault("token_secrets", [secret])
        a = ["--store", os.path.join(dir, "store"), "--scheduler", "local", "--imports-allow", "127.0.0.1",
             "--index-url", index]
        for rt, ref in bases:
            a += ["--base-image", "%s=%s" % (rt, ref)]
        a += list(args)
        all_opts = {"state_dir": self.state_dir, "layers_dir": layers, "port_min": str(ports[0]),
                    "port_max": str(ports[1]), "runtime": runtime}
        all_opts.update(opts)
        for k, v in all_opts.items():
            a += ["--scheduler-opt", "%s=%s" % (k, v)]
        super().__init__(dir, a, config=cfg, **kw)

    def runc(self, *args, check=True):
        """The OCI runtime on this service's root."""
        return sh(self.runtime, "--root", self.runtime_root, *args, check=check)

    def on(self, verb, cid, *rest, flags=(), check=True):
        """A runtime verb on one sandbox, from inside its network namespace:
        runsc reaches its sandbox by an abstract unix socket, which lives
        there.  Flags go before the id (runsc's Go flags stop at the first
        argument)."""
        pid_file = Path(self.state_dir, "sandboxes", cid, "pid")
        pre = []
        if pid_file.exists() and os.path.exists("/proc/%s/ns/net" % pid_file.read_text().strip()):
            pre = ["nsenter", "--net=/proc/%s/ns/net" % pid_file.read_text().strip()]
        return sh(*pre, self.runtime, "--root", self.runtime_root, verb, *flags, cid, *rest, check=check)

    def containers(self):
        """The ids the runtime lists under this service's root.  `list` fails
        when a container is deleted while it reads the root (the service's
        housekeeping may stop one meanwhile): asked again, and its error text
        is never taken for ids."""
        until = time.monotonic() + 10
        while True:
            p = subprocess.run([self.runtime, "--root", self.runtime_root, "list", "--quiet"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, timeout=60)
            if p.returncode == 0 or time.monotonic() >= until:
                break
            time.sleep(0.1)
        if p.returncode != 0:
            raise AssertionError("%s list: %s" % (self.runtime, p.stderr.strip()))
        return [line for line in p.stdout.splitlines() if line]

    def record(self, endpoint):
        """The sandbox.json of the running sandbox serving endpoint."""
        port = int(endpoint.rsplit(":", 1)[1])
        for rec in Path(self.state_dir, "sandboxes").glob("*/sandbox.json"):
            d = json.loads(rec.read_text())
            if d["udf_port"] == port:
                return d
        raise AssertionError("no sandbox record for %s%s" % (endpoint, self.stderr_tail()))

    def sandbox_pid(self, sandbox_id):
        """The host pid the runtime recorded for a sandbox (0: none)."""
        for rec in Path(self.state_dir, "sandboxes").glob("*/sandbox.json"):
            if json.loads(rec.read_text()).get("id") == sandbox_id:
                try:
                    return int((rec.parent / "pid").read_text().strip() or 0)
                except (OSError, ValueError):
                    return 0
        return 0

    def status_url(self, endpoint, path):
        return "http://127.0.0.1:%d%s" % (self.record(endpoint)["status_port"], path)

    def remove_leftovers(self):
        """Whatever a failed run left: the process, containers, mounts."""
        self.kill()
        if os.path.isdir(self.runtime_root):
            for cid in self.containers():
                self.on("delete", cid, flags=("--force",), check=False)
        unmount_under(self.state_dir)


def remove_sandbox_leftovers():
    for s in SERVICES:
        if isinstance(s, SandboxService):
            s.remove_leftovers()


def unmount_under(prefix):
    """Lazily unmounts every mount below prefix, deepest first."""
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for m in sorted((m for m in mounts if m.startswith(prefix)), reverse=True):
        subprocess.run(["umount", "-l", m], check=False)


def write_files(root, files):
    """files ({path: bytes}) written below root."""
    for name, data in files.items():
        dst = os.path.join(root, name)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        Path(dst).write_bytes(data)


if __name__ == "__main__":
    # For the shell tests (tests/lib/imports.sh): `harness.py vector-files
    # DIR` writes the vectors' import files below DIR.
    if sys.argv[1:2] != ["vector-files"] or len(sys.argv) != 3:
        sys.exit("usage: harness.py vector-files DIR")
    write_files(sys.argv[2], vector_files())
