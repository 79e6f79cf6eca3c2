#!/usr/bin/python3
"""Integration test of `udf-builder serve`, the ApplyUdfResource gRPC service.

Starts the binary under test ($UDFB_BIN, default bin/udf-builder) on loopback
with temporary stores and the tiny test base image, talks to it the way a
Databend query node does (gRPC with Databend's metadata on every call), and
reads its admin port (/metrics, /healthz, /readyz).  Imports are served by an
HTTP server in this process; a path under /slow/ answers only after
SLOW_SECONDS, which makes a build slow on purpose (single flight, deadlines,
shutdown while building).

Message classes are generated at test time with protoc from proto/.  Results
are printed as TAP (one line per test), and the exit status is non-zero when
any test failed.  Every server is stopped with SIGTERM and must exit 0 (the
ASan build exits non-zero on a leak); its stderr tail is shown when not.
Servers get --imports-allow 127.0.0.1 when the binary has that flag (the
import fetcher's SSRF guard refuses loopback by default).

Usage: tests/integration/test_service.py [SUBSTRING...]  (runs the tests whose
id contains one of the substrings; all without arguments).
"""

import hashlib
import hmac
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
import unittest
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import harness  # noqa: E402
import tap  # noqa: E402
from harness import APPLY, BIN, REPO, vector_request  # noqa: E402
from http_server import ImportServer  # noqa: E402

HEALTH = "/grpc.health.v1.Health/Check"

SLOW_SECONDS = 1.5  # how long a /slow/ import takes to answer
STALL_SECONDS = 12.0  # how long a /stall/ import takes (longer than a test waits)
START_TIMEOUT = 30.0  # server start, ASan build on a loaded machine
STOP_TIMEOUT = 20.0  # SIGTERM to exit when nothing is in flight
CALL_TIMEOUT = 5.0  # Databend's default grpc-timeout
SECRET_1 = "first-secret-0123456789"
SECRET_2 = "second-secret-0123456789"
SECRET_3 = "third-secret-0123456789ab"

# Filled by load_protos() before the tests run.
udf_pb2 = None
health_pb2 = None
resource_pb2 = None
grpc = None
TINY_IMAGE = None
EXTRA_ARGS = []  # flags every server gets (see probe_flags)

# The replies and statuses the shared vectors must get from a server with
# the tiny base image and the test wheels (tests/lib/wheels.py: humanize,
# no numpy) as its package index.
VECTOR_EXPECT = {
    "decimal_types": ("OK", []),
    "read_env": ("OK", []),
    "read_pkg_zip_whl_egg": ("OK", []),
    "read_stage_dup_basename": ("OK", []),
    "missing_import": ("INVALID_ARGUMENT", ["import '@udf_import_stage/imports/missing.py': HTTP 404"]),
    "numpy_plus_one": ("NOT_FOUND", ["spec.packages", "numpy"]),
    "add_one_helper": ("OK", []),
}


def load_tiny_image():
    global TINY_IMAGE
    TINY_IMAGE = harness.tiny_image()


def probe_flags():
    """Imports come from 127.0.0.1 here: open the import fetcher's SSRF guard
    for loopback where the binary has one."""
    r = subprocess.run([BIN, "serve", "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=60)
    if "--imports-allow" in r.stdout:
        EXTRA_ARGS.extend(["--imports-allow", "127.0.0.1"])


def poll(fn, timeout, what, interval=0.02):
    """Calls fn until it returns a true value, which is returned; fails after timeout."""
    return harness.poll(fn, timeout, what, interval)


# ---- imports over HTTP ----


def slow_paths(path):
    """The import server's own paths: /slow/ answers after SLOW_SECONDS,
    /stall/ after STALL_SECONDS, /fast/ at once, each with a body of its
    own; /unavailable/ answers 503."""
    if path.startswith(("slow/", "fast/", "stall/")):
        if path.startswith("slow/"):
            time.sleep(SLOW_SECONDS)
        if path.startswith("stall/"):
            time.sleep(STALL_SECONDS)
        return 200, ("# slow import /%s\nVALUE = 1\n" % path).encode()
    if path.startswith("unavailable/"):
        return 503, b""
    return None


def make_request(nonce=None, handler="f", runtime="3.12.2", packages=(), slow_port=None, code=None,
                 import_dir="slow"):
    """A fresh spec (the nonce makes its key cold); with slow_port (the
    ImportServer's port), one import /IMPORT_DIR/NONCE.py, by default one that
    takes SLOW_SECONDS to download.  Returns (request, import path or None)."""
    nonce = nonce or uuid.uuid4().hex
    code = code if code is not None else "# %s\ndef %s(x):\n    return x\n" % (nonce, handler)
    imports, spec_imports, slow_path = [], [], None
    if slow_port:
        slow_path = "/%s/%s.py" % (import_dir, nonce)
        loc = "@udf_import_stage%s" % slow_path
        spec_imports.append(loc)
        imports.append(
            udf_pb2.UdfImport(
                location=loc,
                url="http://127.0.0.1:%d%s?X-Amz-Signature=%s" % (slow_port, slow_path, uuid.uuid4().hex),
                tag='"%s"' % nonce,
            )
        )
    spec = {
        "version": 1,
        "kind": "udf",
        "language": "python",
        "handler": handler,
        "input_types": ["INT NULL"],
        "result_type": "INT NULL",
        "imports": spec_imports,
        "packages": list(packages),
        "runtime_version": runtime,
        "code": code,
    }
    req = udf_pb2.ApplyUdfResourceRequest(spec=json.dumps(spec, separators=(",", ":")), imports=imports)
    return req, slow_path


# ---- the server under test ----


class Server(harness.Service):
    """`udf-builder serve` on loopback with the tiny base (no Python: this
    test is about the service, so its sandboxes come from the template
    scheduler), in a new directory of tmp."""

    def __init__(self, tmp, *args, env=None, creds=None):
        dir = tempfile.mkdtemp(prefix="server.", dir=tmp)
        super().__init__(dir, ["--store", os.path.join(dir, "store"), "--base-image", "3=oci:%s:tiny" % TINY_IMAGE,
                               "--scheduler", "template", *EXTRA_ARGS, *args], env=env, creds=creds,
                         start_timeout=START_TIMEOUT, call_timeout=CALL_TIMEOUT)
        self.apply = self.unary(APPLY, udf_pb2.ApplyUdfResourceResponse)
        self.apply_raw = self.unary(APPLY)
        self.health = self.unary(HEALTH, health_pb2.HealthCheckResponse)

    metadata = staticmethod(harness.metadata)

    def call_raw(self, payload, tenant="tenant-a", timeout=CALL_TIMEOUT):
        try:
            self.apply_raw(payload, timeout=timeout, metadata=self.metadata(tenant))
        except grpc.RpcError as e:
            return e.code().name, e.details() or ""
        return "OK", ""

    def metric(self, name):
        return self.metrics().get(name, 0.0)

    def builds_done(self):
        m = self.metrics()
        return m['udfb_builds_total{result="ok"}'] + m['udfb_builds_total{result="error"}']

    def wait_builds_idle(self, at_least, timeout=15.0):
        """Waits until at least `at_least` builds finished and none runs; returns the metrics."""

        def idle():
            m = self.metrics()
            done = m['udfb_builds_total{result="ok"}'] + m['udfb_builds_total{result="error"}']
            return m if done >= at_least and m["udfb_builds_in_flight"] == 0 else None

        return poll(idle, timeout, "%d finished builds and none in flight" % at_least)

    def stop(self, timeout=STOP_TIMEOUT):
        return super().stop(timeout)

    def check_stopped(self, timeout=STOP_TIMEOUT):
        rc = self.stop(timeout)
        if rc != 0:
            raise AssertionError("server exit status %s after SIGTERM%s" % (rc, self.stderr_tail(40)))


class ServerCase(unittest.TestCase):
    """Creates a temp dir and an import server per class; servers started
    with start_server() are stopped (and their exit checked) at class end."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="udfb-service-test.")
        cls.servers = []
        cls.imports = ImportServer(harness.vector_files(), dynamic=slow_paths)

    @classmethod
    def tearDownClass(cls):
        problems = []
        for s in cls.servers:
            try:
                s.check_stopped()
                # Presigned URLs, tokens and secrets are credentials: never in the logs.
                log = Path(s.stderr_path).read_text(errors="replace")
                for secret in ("X-Amz-Signature", "0f3a9c", SECRET_1, SECRET_2, SECRET_3, *s.tokens):
                    if secret in log:
                        problems.append("server log holds %r%s" % (secret, s.stderr_tail(40)))
            except Exception as e:  # noqa: BLE001 - every server must be stopped
                problems.append("%s: %s" % (type(e).__name__, e))
            finally:
                s.kill()
        cls.imports.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        if problems:
            raise AssertionError("\n".join(problems))

    @classmethod
    def start_server(cls, *args, env=None, creds=None):
        s = Server(cls.tmp, *args, env=env, creds=creds)
        cls.servers.append(s)
        return s

    def assertReply(self, r, code, *needles):
        self.assertEqual(r.code, code, r)
        for n in needles:
            self.assertIn(n, r.details, r)

    def assertGoodEndpoint(self, r, tenant_label="tenant-a"):
        """OK, the default template's endpoint for the tenant (its name as a
        DNS label, which may carry a hash of the exact name), one token."""
        self.assertReply(r, "OK")
        self.assertRegex(
            r.endpoint, r"^http://udf-[0-9a-f]{12}\.%s(-[0-9a-f]{6,})?\.svc:8815$" % re.escape(tenant_label)
        )
        self.assertEqual(list(r.headers), ["x-authorization"], r)
        self.assertRegex(r.token, r"^v2\.[0-9]+\.[0-9a-f]{64}$")


# ---- the main server: fail mode, no default tenant ----


class ServiceTest(ServerCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.srv = cls.start_server(env={"UDFB_TOKEN_SECRETS": SECRET_1 + "," + SECRET_2})
        except BaseException:
            cls.tearDownClass()
            raise

    def cold_slow(self):
        return make_request(slow_port=self.imports.port)

    def test_bad_spec_names_the_field(self):
        req, _ = make_request(handler="not an identifier")
        r = self.srv.call(req)
        self.assertReply(r, "INVALID_ARGUMENT", "spec.handler")
        req = udf_pb2.ApplyUdfResourceRequest(spec='{"version":1,"kind":"udf"')
        self.assertReply(self.srv.call(req), "INVALID_ARGUMENT", "spec")

    def test_unsupported_runtime_lists_supported(self):
        req, _ = make_request(runtime="2.7")
        r = self.srv.call(req)
        self.assertReply(r, "INVALID_ARGUMENT", "spec.runtime_version", "2.7", "supported: 3")

    def test_missing_import_hides_the_url_signature(self):
        r = self.srv.call(vector_request("missing_import", self.imports.port))
        self.assertReply(r, "INVALID_ARGUMENT", "import '@udf_import_stage/imports/missing.py': HTTP 404")
        for secret in ("X-Amz-Signature", "0f3a9c", "127.0.0.1:%d" % self.imports.port):
            self.assertNotIn(secret, r.details)
        # A deterministic failure is remembered: the same answer, no new download.
        before = self.imports.count("/imports/missing.py")
        r2 = self.srv.call(vector_request("missing_import", self.imports.port))
        self.assertReply(r2, "INVALID_ARGUMENT", "HTTP 404")
        self.assertEqual(self.imports.count("/imports/missing.py"), before)

    def test_cache_hit_is_fast_and_builds_nothing(self):
        req, _ = make_request()
        b0 = self.srv.builds_done()
        first = self.srv.call(req)
        self.assertGoodEndpoint(first)
        m0 = self.srv.wait_builds_idle(b0 + 1)
        second = self.srv.call(req)
        m1 = self.srv.metrics()
        self.assertGoodEndpoint(second)
        self.assertEqual((second.endpoint, second.headers), (first.endpoint, first.headers))
        self.assertEqual(
            m1['udfb_cache_lookups_total{result="hit"}'], m0['udfb_cache_lookups_total{result="hit"}'] + 1
        )
        self.assertEqual(m1['udfb_builds_total{result="ok"}'], m0['udfb_builds_total{result="ok"}'])
        self.assertEqual(m1["udfb_builds_in_flight"], 0)
        self.assertEqual(m1['udfb_calls_total{code="OK"}'], m0['udfb_calls_total{code="OK"}'] + 1)
        # Milliseconds in fact; generous for an ASan build on a loaded machine.
        self.assertLess(second.elapsed, 1.0, second)

    def test_tags_reach_index_json_after_a_quiet_interval(self):
        """A build tags its image into the default destination's journal;
        index.json lists it about 200 ms later (docs/store.md)."""
        images = os.path.join(self.srv.dir, "store", "images")

        def tags():
            try:
                with open(os.path.join(images, "index.json")) as f:
                    return {m["annotations"]["org.opencontainers.image.ref.name"]: m["digest"]
                            for m in json.load(f)["manifests"] if "annotations" in m}
            except (OSError, ValueError):
                return {}

        before = tags()
        req, _ = make_request()
        b0 = self.srv.builds_done()
        self.assertGoodEndpoint(self.srv.call(req))
        self.srv.wait_builds_idle(b0 + 1)
        until = time.monotonic() + 10
        while len(tags()) <= len(before) and time.monotonic() < until:
            time.sleep(0.05)
        # Builds of other tests may land in the same derivation.
        new = {t: d for t, d in tags().items() if t not in before}
        self.assertGreaterEqual(len(new), 1, "index.json did not list the new image within 10 s")
        for tag, digest in new.items():
            self.assertRegex(tag, r"-[0-9a-f]{64}$")
            out = subprocess.run(["skopeo", "inspect", "oci:%s:%s" % (images, tag)], capture_output=True, text=True)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertEqual(json.loads(out.stdout)["Digest"], digest)

    def test_presigned_url_change_is_a_cache_hit(self):
        req, path = self.cold_slow()
        b0 = self.srv.builds_done()
        first = self.srv.call(req, timeout=15)
        self.assertGoodEndpoint(first)
        self.srv.wait_builds_idle(b0 + 1)
        hits = self.srv.metric('udfb_cache_lookups_total{result="hit"}')
        req.imports[0].url = req.imports[0].url.split("?")[0] + "?X-Amz-Signature=changed"
        again = self.srv.call(req)
        self.assertEqual(again.endpoint, first.endpoint)  # and a fresh token (TokenTest)
        self.assertLess(again.elapsed, 1.0, again)
        self.assertEqual(self.srv.metric('udfb_cache_lookups_total{result="hit"}'), hits + 1)
        self.assertEqual(self.imports.count(path), 1)

    def test_single_flight_16_concurrent_calls(self):
        req, path = self.cold_slow()
        m0 = self.srv.wait_builds_idle(0)
        n = 16
        barrier = threading.Barrier(n)
        replies = [None] * n

        def one(k):
            barrier.wait(10)
            replies[k] = self.srv.call(req, timeout=20)

        threads = [threading.Thread(target=one, args=(k,)) for k in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertTrue(all(r is not None for r in replies), replies)
        for r in replies:
            self.assertGoodEndpoint(r)
        self.assertEqual(len({r.endpoint for r in replies}), 1, replies)
        b0 = m0['udfb_builds_total{result="ok"}'] + m0['udfb_builds_total{result="error"}']
        m1 = self.srv.wait_builds_idle(b0 + 1)
        self.assertEqual(m1['udfb_builds_total{result="ok"}'], m0['udfb_builds_total{result="ok"}'] + 1)
        self.assertEqual(m1['udfb_builds_total{result="error"}'], m0['udfb_builds_total{result="error"}'])
        lookups = lambda m: m['udfb_cache_lookups_total{result="hit"}'] + m['udfb_cache_lookups_total{result="miss"}']
        self.assertEqual(lookups(m1), lookups(m0) + n)
        self.assertEqual(m1['udfb_calls_total{code="OK"}'], m0['udfb_calls_total{code="OK"}'] + n)
        self.assertEqual(self.imports.count(path), 1, "the slow import was downloaded more than once")
        # They overlapped: the last answer came after the download's delay.
        self.assertGreaterEqual(max(r.elapsed for r in replies), SLOW_SECONDS * 0.9)

    def test_short_deadline_fails_then_next_call_succeeds(self):
        b0 = self.srv.builds_done()
        r, req, attempts = short_deadline_call(self, self.srv, "DEADLINE_EXCEEDED")
        self.assertIn("still building", r.details)
        self.srv.wait_builds_idle(b0 + 1)
        r2 = self.srv.call(req)
        self.assertGoodEndpoint(r2)

    def test_build_outlives_a_short_deadline_call(self):
        """docs/service.md: "still building: DEADLINE_EXCEEDED ... the build goes
        on and the next call sees its outcome".  (80a9f5a bounded a fail-mode
        build's downloads by its starting call's deadline: the build failed
        "not fetched before the deadline" and every later call started it
        again, so an import slower than the deadline could never be built.)"""
        m0 = self.srv.wait_builds_idle(0)
        r, req, attempts = short_deadline_call(self, self.srv, "DEADLINE_EXCEEDED")
        b0 = m0['udfb_builds_total{result="ok"}'] + m0['udfb_builds_total{result="error"}']
        m1 = self.srv.wait_builds_idle(b0 + 1)
        self.assertEqual(
            m1['udfb_builds_total{result="error"}'],
            m0['udfb_builds_total{result="error"}'],
            "the build failed once its starting call's deadline passed%s" % self.srv.stderr_tail(3),
        )
        built = m1['udfb_builds_total{result="ok"}'] - m0['udfb_builds_total{result="ok"}']
        self.assertTrue(1 <= built <= attempts, "%d builds for %d attempts" % (built, attempts))
        # The next call answers from memory.
        hits = self.srv.metric('udfb_cache_lookups_total{result="hit"}')
        r2 = self.srv.call(req)
        self.assertGoodEndpoint(r2)
        self.assertLess(r2.elapsed, 1.0, r2)
        self.assertEqual(self.srv.metric('udfb_cache_lookups_total{result="hit"}'), hits + 1)

    def test_health_and_probes(self):
        for service in ("", "udfproto.UdfService"):
            resp = self.srv.health(
                health_pb2.HealthCheckRequest(service=service), timeout=CALL_TIMEOUT
            )
            self.assertEqual(resp.status, health_pb2.HealthCheckResponse.SERVING, service)
        with self.assertRaises(grpc.RpcError) as cm:
            self.srv.health(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=CALL_TIMEOUT)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)
        for path, body in (("/healthz", "ok\n"), ("/readyz", "ready\n")):
            status, _, text = self.srv.http_get(path)
            self.assertEqual((status, text), (200, body), path)
        status, ctype, text = self.srv.http_get("/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(ctype.startswith("text/plain"), ctype)
        for series in ('udfb_builds_total{result="ok"}', 'udfb_cache_lookups_total{result="hit"}',
                       'udfb_calls_total{code="OK"}'):
            self.assertRegex(text, r"(?m)^%s \d+$" % re.escape(series))
        self.assertEqual(self.srv.http_get("/nope")[0], 404)

    def test_missing_tenant_is_invalid(self):
        req, _ = make_request()
        r = self.srv.call(req, tenant=None)
        self.assertReply(r, "INVALID_ARGUMENT", "x-databend-tenant")
        r = self.srv.call(req, tenant="bad tenant")
        self.assertReply(r, "INVALID_ARGUMENT", "x-databend-tenant")

    def test_tenants_scope_endpoints_and_tokens(self):
        req, _ = make_request()
        a = self.srv.call(req, tenant="tenant-a")
        b = self.srv.call(req, tenant="Tenant_B")
        self.assertGoodEndpoint(a, "tenant-a")
        self.assertGoodEndpoint(b, "tenant-b")
        host = lambda r: r.endpoint.split("//", 1)[1].split(":", 1)[0]
        self.assertNotEqual(host(a), host(b))
        self.assertNotEqual(a.token, b.token)
        # Same (tenant, key): the same sandbox (each answer has a fresh token).
        self.assertEqual(self.srv.call(req, tenant="tenant-a").endpoint, a.endpoint)

    def test_transient_import_failure_is_retried(self):
        req, path = make_request(slow_port=self.imports.port, import_dir="unavailable")
        seen = 0
        for _ in (1, 2):
            r = self.srv.call(req, timeout=20)  # the fetcher may retry a 503 with backoff
            self.assertReply(r, "UNAVAILABLE", "import '@udf_import_stage%s': HTTP 503" % path)
            self.assertNotIn("X-Amz-Signature", r.details)
            # Not remembered like a deterministic failure: each call tries again.
            self.assertGreater(self.imports.count(path), seen)
            seen = self.imports.count(path)

    def test_distinct_tenants_get_distinct_endpoints(self):
        """docs/service.md: "each tenant's entries, tags and sandboxes are its
        own".  ({tenant} was once only lower-cased, '-' for other characters
        and cut at 40 bytes, so these pairs shared one endpoint.)"""
        req, _ = make_request()
        pairs = (("tenant-b", "Tenant_B"), ("tenant-b", "tenant.b"), ("a" * 40 + "x", "a" * 40 + "y"))
        for t1, t2 in pairs:
            r1, r2 = self.srv.call(req, tenant=t1), self.srv.call(req, tenant=t2)
            self.assertReply(r1, "OK")
            self.assertReply(r2, "OK")
            self.assertNotEqual(r1.token, r2.token)
            self.assertNotEqual(r1.endpoint, r2.endpoint, "tenants %r and %r share a sandbox endpoint" % (t1, t2))

    def test_hostile_strings_are_invalid_and_never_crash(self):
        # Issue 18: a tag that is not UTF-8 crashed the service once its
        # import was fetched (the import cache could not encode it), and a
        # NUL byte silently cut a field.  protobuf-c checks neither, so the
        # bytes are swapped in after serialising (same length).
        nonce = uuid.uuid4().hex
        req, _ = make_request(nonce=nonce, slow_port=self.imports.port, import_dir="fast")
        req.imports[0].tag = "TAGTAGTAG"
        good = req.SerializeToString()
        cases = [
            (b"TAGTAGTAG", b"TAG\xff\xfeTAGT", "imports[0].tag"),
            (b"TAGTAGTAG", b"TAG\x00TAGTA", "imports[0].tag"),
            (b"@udf_import_stage", b"@udf_import_st\xc0\xafe", "imports[0].location"),
            (nonce.encode(), b"\x00" + nonce.encode()[1:], "spec"),
        ]
        for old, new, field in cases:
            # the spec comes first on the wire, the import's location last
            at = good.find(old) if field == "spec" else good.rfind(old)
            payload = good[:at] + new + good[at + len(old):]
            self.assertNotEqual(payload, good)
            code, details = self.srv.call_raw(payload)
            self.assertEqual(code, "INVALID_ARGUMENT", (new, details))
            self.assertIn(field, details)
        self.assertEqual(self.srv.http_get("/healthz")[0], 200)
        self.assertReply(self.srv.call(req), "OK")

    def test_metadata_is_checked_at_the_edge(self):
        # Issue 18: a repeated x-databend-tenant took the first value; every
        # request form now refuses a repeated key, or a value that is not
        # visible ASCII within 256 bytes, naming the key.
        paths = [APPLY, "/resourceproto.ResourceService/ApplyResource",
                 "/resourceproto.WorkerService/CreateWorker", "/resourceproto.WorkerService/AlterWorker",
                 "/resourceproto.WorkerService/DropWorker", "/resourceproto.WorkerService/ListWorkers"]
        base = [("x-databend-user", "u"), ("x-databend-query-id", "q1")]
        cases = [
            ([("x-databend-tenant", "tenant-a"), ("x-databend-tenant", "tenant-b")], "x-databend-tenant"),
            ([("x-databend-tenant", "tenant-a"), ("x-databend-query-id", "q2")], "x-databend-query-id"),
            ([("x-databend-tenant", "tenant-a"), ("x-databend-user", "v")], "x-databend-user"),
            ([("x-databend-tenant", "tenant-a"), ("udf_client_version", "v1"), ("udf_client_version", "v2")],
             "udf_client_version"),
            ([("x-databend-tenant", "tenant-a"), ("worker_client_version", "v1"), ("worker_client_version", "v1")],
             "worker_client_version"),
            ([("x-databend-tenant", "tenant-a"), ("x-databend-query-id", "q" * 300)], "x-databend-query-id"),
        ]
        for path in paths:
            raw = self.srv.channel.unary_unary(path, request_serializer=lambda b: b, response_deserializer=lambda b: b)
            for extra, key in cases:
                md = (base[:1] if "q" * 300 in dict(extra).values() else base) + extra
                try:
                    raw(b"", timeout=CALL_TIMEOUT, metadata=md)
                    self.fail("%s with %r: OK" % (path, extra))
                except grpc.RpcError as e:
                    self.assertEqual(e.code().name, "INVALID_ARGUMENT", (path, extra, e.details()))
                    self.assertIn(key, e.details() or "", (path, extra))
        self.assertEqual(self.srv.http_get("/healthz")[0], 200)

    def test_garbage_payload_is_invalid(self):
        for payload in (b"\xff\xff\xff\xff", b"\x0a\x05ab", b"\x12\x03\xff\xff\xff"):
            code, details = self.srv.call_raw(payload)
            self.assertEqual(code, "INVALID_ARGUMENT", (payload, details))
        # An empty message parses (every field at its default) but has no spec.
        code, details = self.srv.call_raw(b"")
        self.assertEqual(code, "INVALID_ARGUMENT", details)
        self.assertIn("spec", details)
        # The server is still fine.
        self.assertEqual(self.srv.http_get("/healthz")[0], 200)

    def test_every_method_checks_its_message_alike(self):
        # One decoder for every method (service/rpc.c unpack()): garbage is
        # "not a ... message", and a NUL inside a string (which protobuf-c
        # would silently cut: tenant "tenant-a\0x" read as "tenant-a") is
        # refused by the WORKER statements and the health check too.
        ws = "/resourceproto.WorkerService/"
        nul = b"\x0a\x0atenant-a\x00x"  # field 1 (tenant_id): "tenant-a\0x"
        cases = [(ws + "CreateWorker", "CreateWorkerRequest", nul),
                 (ws + "AlterWorker", "AlterWorkerRequest", nul + b"\x12\x01w"),
                 (ws + "DropWorker", "DropWorkerRequest", nul + b"\x12\x01w"),
                 (ws + "ListWorkers", "ListWorkersRequest", nul),
                 ("/resourceproto.ResourceService/ApplyResource", "ApplyResourceRequest",
                  b"\x1a\x03udf\x22\x03a\x00b"),
                 ("/grpc.health.v1.Health/Check", "HealthCheckRequest", b"\x0a\x03a\x00b")]
        md = [("x-databend-tenant", "tenant-a"), ("worker_client_version", "v1")]
        for path, name, with_nul in cases:
            raw = self.srv.channel.unary_unary(path, request_serializer=lambda b: b,
                                               response_deserializer=lambda b: b)
            for payload, needle in ((b"\xff\xff\xff\xff", "not a"), (with_nul, "NUL byte")):
                try:
                    raw(payload, timeout=CALL_TIMEOUT, metadata=md)
                    self.fail("%s with %r: OK" % (path, payload))
                except grpc.RpcError as e:
                    self.assertEqual(e.code().name, "INVALID_ARGUMENT", (path, payload, e.details()))
                    self.assertIn(needle, e.details() or "", (path, payload))
                    self.assertIn(name, e.details() or "", (path, payload))
        self.assertEqual(self.srv.http_get("/healthz")[0], 200)


def _vector_test(name):
    def test(self):
        code, needles = VECTOR_EXPECT[name]
        r = self.srv.call(vector_request(name, self.imports.port), timeout=CALL_TIMEOUT)
        if code == "OK":
            self.assertGoodEndpoint(r)
            if name == "add_one_helper":  # humanize 4.9.0, unpacked into its own layer
                self.assertGreaterEqual(self.srv.metric("udfb_wheels_installed_total"), 1)
        else:
            self.assertReply(r, code, *needles)
            for secret in ("X-Amz-Signature", "0f3a9c"):
                self.assertNotIn(secret, r.details)

    test.__name__ = "test_vector_" + name
    return test


for _name in sorted(VECTOR_EXPECT):
    setattr(ServiceTest, "test_vector_" + _name, _vector_test(_name))


def short_deadline_call(case, srv, want, tries=3):
    """A 50 ms deadline on a cold slow key.  Returns (reply, request, attempts).  When the
    client's own deadline fired first (a loaded machine), retries on a fresh key.  Of
    those retried attempts, a call cancelled before a worker took it starts no build
    (issue 18: a cancelled call is dropped at once): they start 0 or 1 build each."""
    for attempt in range(tries):
        req, path = make_request(slow_port=case.imports.port)
        r = srv.call(req, timeout=0.05)
        server_answered = r.code == "OK" or "still building" in r.details
        if server_answered or attempt == tries - 1:
            case.assertReply(r, want)
            case.assertTrue(server_answered, "only the client's deadline fired: %r" % r)
            # The download started anyway: the build goes on after the answer
            # (and counts as in flight until it is done).
            case.imports.wait_for_request(path, 15)
            return r, req, attempt + 1
        print("# attempt %d: the client's deadline fired first (%r); retrying" % (attempt + 1, r), flush=True)


# ---- accepted mode and a default tenant ----


class CancelTest(ServerCase):
    """Issue 18: cancelled calls whose imports stall once held every call
    worker until their own deadline; another tenant's call then timed out."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.srv = cls.start_server("--call-workers", "4", "--build-workers", "16")  # the stalled builds go on
        except BaseException:
            cls.tearDownClass()
            raise

    def test_cancelled_calls_release_their_workers(self):
        futs = []
        for _ in range(6):  # more than the call workers
            req, _ = make_request(slow_port=self.imports.port, import_dir="stall")
            futs.append(self.srv.apply.future(req, timeout=60, metadata=self.srv.metadata("tenant-a")))
        time.sleep(1.0)  # the calls are on the workers, their imports stalled
        for f in futs:
            f.cancel()
        # Another tenant's call that needs a worker: answered at once (a
        # missing import, so no build is waited for).
        req, _ = make_request(slow_port=self.imports.port, import_dir="absent")
        r = self.srv.call(req, tenant="tenant-b", timeout=5)
        self.assertReply(r, "INVALID_ARGUMENT", "HTTP 404")
        self.assertLess(r.elapsed, 3.0)
        # A deadline that passes releases the worker the same way.
        futs = []
        for _ in range(6):
            req, _ = make_request(slow_port=self.imports.port, import_dir="stall")
            futs.append(self.srv.apply.future(req, timeout=1.5, metadata=self.srv.metadata("tenant-a")))
        time.sleep(2.0)
        req, _ = make_request(slow_port=self.imports.port, import_dir="absent")
        r = self.srv.call(req, tenant="tenant-b", timeout=5)
        self.assertReply(r, "INVALID_ARGUMENT", "HTTP 404")
        self.assertLess(r.elapsed, 3.0)
        self.assertEqual(self.srv.http_get("/healthz")[0], 200)


    def test_cancelled_script_calls_release_their_workers(self):
        """ApplyResource (Databend's script) identifies its imports on the
        call worker: a cancelled call once kept downloading a stalled import
        there until imports-timeout-ms."""
        apply_resource = self.srv.channel.unary_unary(
            "/resourceproto.ResourceService/ApplyResource", request_serializer=lambda b: b,
            response_deserializer=lambda b: b)
        futs = []
        for _ in range(6):  # more than the call workers
            futs.append(apply_resource.future(stalled_script(self.imports.port), timeout=60,
                                              metadata=self.srv.metadata("tenant-a")))
        time.sleep(1.0)  # the calls are on the workers, their imports stalled
        for f in futs:
            f.cancel()
        req, _ = make_request(slow_port=self.imports.port, import_dir="absent")
        r = self.srv.call(req, tenant="tenant-b", timeout=5)
        self.assertReply(r, "INVALID_ARGUMENT", "HTTP 404")
        self.assertLess(r.elapsed, 3.0)


def stalled_script(port):
    """An ApplyResourceRequest{type "udf", script} (protobuf by hand: fields
    3 and 4, strings) whose one import is a fresh /stall/ path."""
    text = (REPO / "tests/fuzz/corpus/script/add_one_helper.apply_resource.sh").read_text()
    nonce = uuid.uuid4().hex
    text = text.replace("http://IMPORTS_BASE/imports/helper.py", "http://127.0.0.1:%d/stall/%s.py" % (port, nonce))
    text = text.replace("@udf_import_stage/imports/helper.py", "@udf_import_stage/stall/%s.py" % nonce)
    text = text.replace("IMPORTS_BASE", "127.0.0.1:%d" % port)

    def field(num, data):
        n, out = len(data), bytes([num << 3 | 2])
        while True:
            out += bytes([(n & 0x7F) | (0x80 if n > 0x7F else 0)])
            n >>= 7
            if not n:
                return out + data

    return field(3, b"udf") + field(4, text.encode())


class FairnessTest(ServerCase):
    """Issue 18: calls waiting for call workers were one FIFO; one tenant
    sending many slow calls pushed another tenant's call behind all of them
    (here ~6 rounds of slow imports: past its 6 s deadline)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.srv = cls.start_server("--call-workers", "2", "--build-workers", "16", "--max-queued-calls", "10")
        except BaseException:
            cls.tearDownClass()
            raise

    def test_a_flooding_tenant_does_not_starve_another(self):
        futs = []
        for _ in range(14):  # 2 on the workers, 10 waiting, the rest refused
            req, _ = make_request(slow_port=self.imports.port, import_dir="slow")
            futs.append(self.srv.apply.future(req, timeout=90, metadata=self.srv.metadata("tenant-a")))
        time.sleep(0.5)  # tenant-a's calls are on the workers or waiting
        # Another tenant's call that needs a worker (a missing import): it
        # waits for one worker, not for tenant-a's whole queue.
        req, _ = make_request(slow_port=self.imports.port, import_dir="absent")
        r = self.srv.call(req, tenant="tenant-b", timeout=6)
        self.assertReply(r, "INVALID_ARGUMENT", "HTTP 404")
        self.assertLess(r.elapsed, 4.5)
        codes = []
        for f in futs:
            try:
                f.result()
                codes.append("OK")
            except grpc.RpcError as e:
                codes.append(e.code().name)
                if e.code().name == "RESOURCE_EXHAUSTED":
                    self.assertIn("tenant tenant-a", e.details())
                    self.assertIn("max_queued_calls", e.details())
        # At most 10 wait: 2 or more of the 14 refused (more when the burst
        # came before a worker took the first ones), the rest served.
        refused = codes.count("RESOURCE_EXHAUSTED")
        self.assertTrue(2 <= refused <= 4, codes)
        self.assertEqual(codes.count("OK"), 14 - refused, codes)
        m = self.srv.metrics()
        self.assertEqual(m["udfb_calls_waiting"], 0)
        self.assertEqual(m["udfb_calls_refused_total"], refused)
        self.assertEqual(m['udfb_rpc_calls_total{rpc="ApplyUdfResource",code="RESOURCE_EXHAUSTED"}'], refused)


class QuotaTest(ServerCase):
    """Issue 18: a build goes on when its calls are cancelled, and nothing
    capped how many such builds one tenant could queue (distinct requests,
    each hung up at once); WORKER records had no cap per tenant either."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.srv = cls.start_server("--call-workers", "8", "--build-workers", "3", "--max-queued-builds", "3",
                                       "--max-queued-builds-total", "5", "--max-tenant-workers", "3")
        except BaseException:
            cls.tearDownClass()
            raise

    def hang_up(self, tenant, n):
        """n distinct calls whose one import stalls, each cancelled once its
        build is queued: the builds go on (or wait for a build worker)."""
        for _ in range(n):
            req, _ = make_request(slow_port=self.imports.port, import_dir="stall")
            f = self.srv.apply.future(req, timeout=60, metadata=self.srv.metadata(tenant))
            time.sleep(0.3)
            f.cancel()

    def test_cancelled_calls_cannot_queue_builds_without_end(self):
        self.hang_up("tenant-a", 3)  # the 3 build workers stalled: tenant-a's cap
        poll(lambda: self.srv.metric("udfb_builds_pending") == 3, 10, "3 builds pending")
        req, _ = make_request(slow_port=self.imports.port, import_dir="stall")
        r = self.srv.call(req, tenant="tenant-a", timeout=5)
        self.assertReply(r, "RESOURCE_EXHAUSTED", "tenant tenant-a", "3 builds already queued or running",
                         "max_queued_builds")
        self.assertLess(r.elapsed, 2.0)
        # Another tenant still gets builds (queued: no build worker is
        # free), up to the cap over all tenants.
        self.hang_up("tenant-b", 2)
        poll(lambda: self.srv.metric("udfb_builds_pending") == 5, 10, "5 builds pending")
        req, _ = make_request(slow_port=self.imports.port, import_dir="stall")
        r = self.srv.call(req, tenant="tenant-c", timeout=5)
        self.assertReply(r, "RESOURCE_EXHAUSTED", "5 builds of all tenants", "max_queued_builds_total")
        m = self.srv.metrics()
        self.assertEqual(m['udfb_builds_refused_total{limit="max_queued_builds"}'], 1)
        self.assertEqual(m['udfb_builds_refused_total{limit="max_queued_builds_total"}'], 1)
        # Once the stalled imports answer, the builds end and the room is back.
        poll(lambda: self.srv.metric("udfb_builds_pending") == 0, STALL_SECONDS * 2 + 30, "no build pending")
        req, _ = make_request(slow_port=self.imports.port, import_dir="fast")
        self.assertGoodEndpoint(self.srv.call(req, tenant="tenant-a", timeout=30))
        self.assertEqual(self.srv.metric('udfb_builds_refused_total{limit="max_queued_builds"}'), 1)

    def create(self, name, tenant="tenant-a"):
        return self.srv.create_worker({"name": name}, tenant=tenant)

    def drop(self, name, tenant="tenant-a"):
        req = resource_pb2.DropWorkerRequest(name=name)
        return self.srv.rpc("/resourceproto.WorkerService/DropWorker", req, resource_pb2.DropWorkerResponse,
                            "worker_client_version", tenant)

    def test_worker_records_are_capped_per_tenant(self):
        self.assertEqual([self.create("w%d" % i).code for i in range(3)], ["OK"] * 3)
        r = self.create("w3")
        self.assertReply(r, "RESOURCE_EXHAUSTED", "worker w3", "tenant tenant-a has 3 workers",
                         "max_tenant_workers")
        # Naming a worker that exists is not a new record.
        self.assertEqual(self.srv.create_worker({"name": "w0", "ifNotExists": True}).code, "OK")
        # A UDF's CreateWorker (a script) under a new name is refused before any work.
        d = harness.vector("add_one_helper", self.imports.port, harness.DATABEND, ".create_worker")
        d.update(tenantId="", name="udf_new")
        r = self.srv.create_worker(d)
        self.assertReply(r, "RESOURCE_EXHAUSTED", "worker udf_new", "max_tenant_workers")
        # Another tenant has its own room.
        self.assertEqual(self.create("w0", tenant="tenant-b").code, "OK")
        m = self.srv.metrics()
        self.assertEqual(m["udfb_workers_refused_total"], 2)
        self.assertEqual(m["udfb_worker_records_max"], 3)
        # DROP makes room again.
        self.assertEqual(self.drop("w1").code, "OK")
        self.assertEqual(self.create("w3").code, "OK")
        self.assertEqual(self.create("w4").code, "RESOURCE_EXHAUSTED")


class WorkerStoreTest(ServerCase):
    """A worker registry file is read back at start (and on Kubernetes,
    another replica's records): a stamp cut inside a UTF-8 character made
    the record unencodable (json_pack NULL), so SHOW WORKERS dropped it."""

    def test_records_read_back_are_checked(self):
        store = tempfile.mkdtemp(prefix="store.", dir=self.tmp)
        os.makedirs(os.path.join(store, "workers"))
        doc = {"version": 1, "tenant": "tenant-a", "workers": [
            {"name": "w_ok", "tags": {"t": "\u00e4"}, "options": {}, "created_at": "\u00e4" * 20,
             "updated_at": "2026-01-02T03:04:05Z", "state": "active", "declared": True},
            {"name": "bad name", "tags": {}, "options": {}, "created_at": "", "updated_at": "", "state": "active"}]}
        Path(store, "workers", hashlib.sha256(b"tenant-a").hexdigest() + ".json").write_text(json.dumps(doc))
        srv = self.start_server("--store", store)
        list_workers = srv.unary("/resourceproto.WorkerService/ListWorkers", resource_pb2.ListWorkersResponse)
        r = list_workers(resource_pb2.ListWorkersRequest(), timeout=5, metadata=srv.metadata("tenant-a"))
        self.assertEqual([(w.name, dict(w.tags), w.created_at, w.updated_at) for w in r.workers],
                         [("w_ok", {"t": "\u00e4"}, "", "2026-01-02T03:04:05Z")])
        self.assertEqual(srv.create_worker({"name": "w_ok", "ifNotExists": True}).code, "OK")


class TemplateBoundTest(ServerCase):
    """The template scheduler listed every endpoint it ever handed out (for
    the sandbox gauges): one entry per distinct build, never freed."""

    def test_the_template_scheduler_lists_at_most_max_cached_calls(self):
        srv = self.start_server("--max-cached-calls", "16", "--build-workers", "2")
        for _ in range(18):
            self.assertGoodEndpoint(srv.call(make_request()[0], tenant="tenant-a", timeout=60))
        poll(lambda: srv.metric('udfb_sandboxes{state="ready"}') == 16, 10, "16 sandboxes listed")
        time.sleep(1.5)  # the gauges' next refresh
        self.assertEqual(srv.metric('udfb_sandboxes{state="ready"}'), 16)


class BuildFairnessTest(ServerCase):
    """Builds waiting for a build worker were one FIFO: a tenant with many
    builds queued pushed another tenant's build behind all of them."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.srv = cls.start_server("--build-workers", "1")
        except BaseException:
            cls.tearDownClass()
            raise

    def test_one_tenant_s_builds_do_not_delay_another_s_by_all_of_them(self):
        futs = []
        for _ in range(5):
            req, _ = make_request(slow_port=self.imports.port, import_dir="slow")
            futs.append(self.srv.apply.future(req, timeout=90, metadata=self.srv.metadata("tenant-a")))
        poll(lambda: self.srv.metric("udfb_builds_pending") == 5, 10, "tenant-a's 5 builds pending")
        req, _ = make_request(slow_port=self.imports.port, import_dir="fast")
        r = self.srv.call(req, tenant="tenant-b", timeout=60)
        done = sum(f.done() for f in futs)
        self.assertGoodEndpoint(r, "tenant-b")
        # Round-robin: the build running and at most one more of tenant-a's
        # before tenant-b's (a FIFO: all 5, about 5 x SLOW_SECONDS).
        self.assertLessEqual(done, 2, "%d of tenant-a's 5 builds ended before tenant-b's (%.1f s)" % (done, r.elapsed))
        for f in futs:
            self.assertGoodEndpoint(harness.Reply("OK", "", f.result().endpoint, dict(f.result().headers)))
        self.assertEqual(self.srv.metric("udfb_builds_pending"), 0)


class AcceptedModeTest(ServerCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.srv = cls.start_server(
                "--deadline-mode", "accepted", "--default-tenant", "Default_Tenant", "--failure-ttl-ms", "0"
            )
        except BaseException:
            cls.tearDownClass()
            raise

    def test_short_deadline_answers_the_coming_endpoint(self):
        b0 = self.srv.builds_done()
        r, req, attempts = short_deadline_call(self, self.srv, "OK")
        self.assertGoodEndpoint(r)
        # Once the build is done, a call gets the same endpoint, from memory,
        # with a token for the same sandbox (fresh: it expires later).
        self.srv.wait_builds_idle(b0 + 1)
        later = self.srv.call(req)
        self.assertGoodEndpoint(later)
        self.assertEqual((later.endpoint, list(later.headers)), (r.endpoint, list(r.headers)))
        exp = lambda t: int(t.split(".")[1])
        self.assertGreaterEqual(exp(later.token), exp(r.token))
        self.assertLess(later.elapsed, 1.0, later)

    def test_failure_ttl_zero_retries_a_404(self):
        req, path = make_request(slow_port=self.imports.port, import_dir="late")
        r = self.srv.call(req)
        self.assertReply(r, "INVALID_ARGUMENT", "import '@udf_import_stage%s': HTTP 404" % path)
        # The object appears (same location and tag): with failure_ttl_ms 0 the
        # next call builds again instead of repeating the failure.
        self.imports.put(path, "VALUE = 1\n")
        r = self.srv.call(req)
        self.assertGoodEndpoint(r)
        self.assertEqual(self.imports.count(path), 2)

    def test_default_tenant(self):
        req, _ = make_request()
        r = self.srv.call(req, tenant=None)
        self.assertGoodEndpoint(r, "default-tenant")
        # An explicit tenant still wins.
        r2 = self.srv.call(req, tenant="other")
        self.assertGoodEndpoint(r2, "other")
        self.assertNotEqual(r.token, r2.token)


# ---- tokens across replicas and secrets ----


class TokenTest(ServerCase):
    TEMPLATE = "http://udf-{key}.{tenant}.svc:8815"

    def start(self, secrets):
        return self.start_server("--endpoint-template", self.TEMPLATE, env={"UDFB_TOKEN_SECRETS": ",".join(secrets)})

    def key_of(self, r):
        m = re.fullmatch(r"http://udf-([0-9a-f]{64})\.([a-z0-9-]+)\.svc:8815", r.endpoint)
        self.assertTrue(m, r)
        return "sha256:" + m.group(1)

    @staticmethod
    def sandbox_key(secret, tenant, key):
        # service/token.h, computed here independently.
        msg = "udfb-sandbox-key-v2\n%d:%s\n%d:%s" % (len(tenant), tenant, len(key), key)
        return hmac.new(secret.encode(), msg.encode(), hashlib.sha256).hexdigest()

    @staticmethod
    def expiry(token, sandbox_key):
        """The token's expiry when sandbox_key signed it, else None."""
        m = re.fullmatch(r"v2\.([0-9]+)\.([0-9a-f]{64})", token or "")
        if not m:
            return None
        mac = hmac.new(sandbox_key.encode(), b"udfb-token-v2\n" + m.group(1).encode(), hashlib.sha256).hexdigest()
        return int(m.group(1)) if hmac.compare_digest(mac, m.group(2)) else None

    def test_tokens_per_secret(self):
        a = self.start([SECRET_1, SECRET_2])
        b = self.start([SECRET_1])  # another replica, its own store
        c = self.start([SECRET_3])
        d = self.start([SECRET_2, SECRET_1])  # rotated: the first secret signs
        req = vector_request("decimal_types", self.imports.port)
        ra = {t: a.call(req, tenant=t) for t in ("tenant-a", "tenant-b")}
        for r in ra.values():
            self.assertReply(r, "OK")
            self.assertRegex(r.token, r"^v2\.[0-9]+\.[0-9a-f]{64}$")
        self.assertNotEqual(ra["tenant-a"].token, ra["tenant-b"].token)
        key = self.key_of(ra["tenant-a"])
        self.assertNotEqual(key, self.key_of(ra["tenant-b"]))  # the tenant is in the key
        rb, rc, rd = (s.call(req, tenant="tenant-a") for s in (b, c, d))
        for r in (rb, rc, rd):
            self.assertReply(r, "OK")
            self.assertEqual(r.endpoint, ra["tenant-a"].endpoint)
        k1, k2, k3 = (self.sandbox_key(x, "tenant-a", key) for x in (SECRET_1, SECRET_2, SECRET_3))
        # Signed with the first secret's sandbox key: a replica with the same
        # first secret hands out tokens the same sandbox accepts.
        for r in (ra["tenant-a"], rb):
            self.assertIsNotNone(self.expiry(r.token, k1), r.token)
        self.assertIsNotNone(self.expiry(rc.token, k3))
        self.assertIsNotNone(self.expiry(rd.token, k2))
        self.assertIsNone(self.expiry(rc.token, k1))
        self.assertIsNone(self.expiry(ra["tenant-b"].token, k1), "one tenant's token opens another's sandbox")

    def test_tokens_expire_and_come_fresh(self):
        # Issue 18: a token is good for token_ttl_s (default 3600 s), and
        # every answer, from memory too, carries a fresh one.
        srv = self.start_server("--endpoint-template", self.TEMPLATE, "--token-ttl-s", "120",
                                env={"UDFB_TOKEN_SECRETS": SECRET_1})
        req = vector_request("decimal_types", self.imports.port)
        r1 = srv.call(req)
        self.assertReply(r1, "OK")
        sk = self.sandbox_key(SECRET_1, "tenant-a", self.key_of(r1))
        e1 = self.expiry(r1.token, sk)
        self.assertIsNotNone(e1, r1.token)
        self.assertLessEqual(abs(e1 - (time.time() + 120)), 5, "the token expires token_ttl_s from now")
        time.sleep(1.1)
        r2 = srv.call(req)
        self.assertReply(r2, "OK")
        self.assertGreater(self.expiry(r2.token, sk) or 0, e1, "a repeated call gets a fresh token")
        plain = self.start([SECRET_1])
        r3 = plain.call(req)
        e3 = self.expiry(r3.token, sk)
        self.assertLessEqual(abs((e3 or 0) - (time.time() + 3600)), 5, "the default TTL is an hour")


# ---- TLS and mutual TLS on the gRPC port ----


class TlsTest(ServerCase):
    """Issue 18: callers authenticated.  A CA, server and client
    certificates made here with openssl; Python's gRPC as the client."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pki = os.path.join(cls.tmp, "pki")
        os.makedirs(cls.pki)
        for ca in ("ca", "other-ca"):
            cls.openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", ca + ".key", "-out", ca + ".pem", "-subj", "/CN=" + ca, "-days", "2")
        for name, ca, cn, usage in (("server", "ca", "localhost", "serverAuth"),
                                    ("server2", "ca", "localhost", "serverAuth"),
                                    ("query-a", "ca", "query-a", "clientAuth"),
                                    ("query-b", "ca", "query-b", "clientAuth"),
                                    ("stranger", "other-ca", "query-a", "clientAuth")):
            ext = os.path.join(cls.pki, name + ".ext")
            Path(ext).write_text("extendedKeyUsage=%s\nsubjectAltName=DNS:%s\n" % (usage, cn))
            cls.openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                        name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn)
            cls.openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
                        "-CAcreateserial", "-out", name + ".pem", "-days", "2", "-extfile", ext)

    @classmethod
    def openssl(cls, *args):
        subprocess.run(["openssl", *args], cwd=cls.pki, check=True, capture_output=True)

    def pem(self, name):
        return Path(self.pki, name).read_bytes()

    def creds(self, client=None, ca="ca.pem"):
        if client is None:
            return grpc.ssl_channel_credentials(root_certificates=self.pem(ca))
        return grpc.ssl_channel_credentials(root_certificates=self.pem(ca), private_key=self.pem(client + ".key"),
                                            certificate_chain=self.pem(client + ".pem"))

    def tls_args(self, cert="server"):
        return ("--tls-cert", os.path.join(self.pki, cert + ".pem"), "--tls-key", os.path.join(self.pki, cert + ".key"))

    @staticmethod
    def apply(channel, tenant):
        """A call with a bad spec: INVALID_ARGUMENT once it is let in."""
        call = channel.unary_unary(APPLY, request_serializer=lambda m: m.SerializeToString(),
                                   response_deserializer=udf_pb2.ApplyUdfResourceResponse.FromString)
        req = udf_pb2.ApplyUdfResourceRequest(spec='{"version": 1')
        try:
            call(req, timeout=CALL_TIMEOUT, metadata=Server.metadata(tenant))
        except grpc.RpcError as e:
            return e.code().name, e.details() or ""
        return "OK", ""

    def serial(self, port):
        """The serial number of the certificate the port presents now."""
        hello = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-alpn", "h2",
                                "-servername", "localhost"], input=b"", capture_output=True, timeout=20)
        x = subprocess.run(["openssl", "x509", "-noout", "-serial"], input=hello.stdout, capture_output=True)
        return x.stdout.decode().strip()

    def test_tls_port(self):
        srv = self.start_server(*self.tls_args(), creds=self.creds())
        self.assertEqual(self.apply(srv.channel, "tenant-a")[0], "INVALID_ARGUMENT")
        self.assertEqual(srv.health(health_pb2.HealthCheckRequest(), timeout=CALL_TIMEOUT).status, 1)
        plain = srv.open_channel()
        self.assertEqual(self.apply(plain, "tenant-a")[0], "UNAVAILABLE", "plain HTTP/2 reached a TLS port")
        wrong = srv.open_channel(self.creds(ca="other-ca.pem"))
        self.assertEqual(self.apply(wrong, "tenant-a")[0], "UNAVAILABLE", "a client trusting another CA got in")

    def test_mutual_tls_and_the_tenants_of_each_certificate(self):
        cfg = os.path.join(self.tmp, "tls-config.json")
        Path(cfg).write_text(json.dumps({"tls_client_tenants": {"query-a": ["tenant-a"], "query-b": ["*"]}}))
        srv = self.start_server(*self.tls_args(), "--tls-client-ca", os.path.join(self.pki, "ca.pem"), "--config", cfg,
                                creds=self.creds("query-a"))
        for who, why in ((None, "no client certificate"), ("stranger", "a certificate of another CA")):
            code, _ = self.apply(srv.open_channel(self.creds(who)), "tenant-a")
            self.assertEqual(code, "UNAVAILABLE", why)
        a, b = srv.open_channel(self.creds("query-a")), srv.open_channel(self.creds("query-b"))
        self.assertEqual(self.apply(a, "tenant-a")[0], "INVALID_ARGUMENT")
        code, details = self.apply(a, "tenant-b")
        self.assertEqual(code, "PERMISSION_DENIED", details)
        self.assertIn("client certificate 'query-a' may not act for tenant 'tenant-b'", details)
        self.assertEqual(self.apply(b, "tenant-b")[0], "INVALID_ARGUMENT", "'*' is any tenant")

    def test_sighup_reloads_the_certificate_and_keeps_connections(self):
        live = os.path.join(self.tmp, "live")
        os.makedirs(live, exist_ok=True)
        for ext in ("pem", "key"):
            shutil.copyfile(os.path.join(self.pki, "server." + ext), os.path.join(live, "server." + ext))
        srv = self.start_server("--tls-cert", os.path.join(live, "server.pem"), "--tls-key",
                                os.path.join(live, "server.key"), creds=self.creds())
        first = self.serial(srv.grpc_port)
        self.assertTrue(first.startswith("serial="), first)
        for ext in ("pem", "key"):
            shutil.copyfile(os.path.join(self.pki, "server2." + ext), os.path.join(live, "server." + ext + ".new"))
            os.replace(os.path.join(live, "server." + ext + ".new"), os.path.join(live, "server." + ext))
        self.assertEqual(self.serial(srv.grpc_port), first, "changed before SIGHUP")
        srv.signal(signal.SIGHUP)
        poll(lambda: self.serial(srv.grpc_port) != first, 10, "the new certificate after SIGHUP")
        self.assertEqual(self.apply(srv.channel, "tenant-a")[0], "INVALID_ARGUMENT", "the old connection was dropped")
        # A broken file on the next SIGHUP: the last good certificate stays.
        Path(live, "server.pem").write_text("not a certificate\n")
        srv.signal(signal.SIGHUP)
        now = self.serial(srv.grpc_port)
        self.assertNotEqual(now, first)
        self.assertTrue(now.startswith("serial="), now)
        self.assertEqual(self.apply(srv.open_channel(self.creds()), "tenant-a")[0], "INVALID_ARGUMENT")


# ---- settings refused at start ----


class ConfigTest(ServerCase):
    def test_short_secret_is_refused(self):
        with self.assertRaises(AssertionError) as cm:
            self.start_server(env={"UDFB_TOKEN_SECRETS": SECRET_1 + ",too-short"})
        self.assertIn("exited with 2 before serving", str(cm.exception))
        self.assertIn("shorter than 16 bytes", str(cm.exception))

    def test_invalid_default_tenant_is_not_a_silent_trap(self):
        """--default-tenant must be a valid tenant (1 to 128 visible ASCII
        characters, no space): either the server refuses to start naming
        default-tenant, or it serves calls without tenant metadata.  (It once
        started, then refused every such call with a message about metadata.)"""
        try:
            srv = self.start_server("--default-tenant", "Default Tenant")
        except AssertionError as e:
            self.assertIn("default-tenant", str(e))
            return
        req, _ = make_request()
        r = srv.call(req, tenant=None)
        self.assertReply(r, "OK")


# ---- graceful shutdown ----


class ShutdownTest(ServerCase):
    def test_sigterm_while_a_call_waits_for_a_build(self):
        srv = self.start_server("--grace-ms", "30000")
        req, path = make_request(slow_port=self.imports.port)
        box = []
        t = threading.Thread(target=lambda: box.append(srv.call(req, timeout=30)))
        t.start()
        self.imports.wait_for_request(path, 15)
        t_sig = time.monotonic()
        srv.signal(signal.SIGTERM)
        t.join(40)
        self.assertTrue(box, "the waiting call got no answer")
        r = box[0]
        self.assertIn(r.code, ("OK", "UNAVAILABLE"), r)
        self.assertGoodEndpoint(r)  # the grace period is long enough
        try:
            rc = srv.proc.wait(15)
        except subprocess.TimeoutExpired:
            rc = "still running 15 s after SIGTERM"
        took = time.monotonic() - t_sig
        self.assertEqual(rc, 0, "exit status %s%s" % (rc, srv.stderr_tail(40)))
        srv.rc = rc
        self.assertLess(took, 15)
        print("# SIGTERM to exit: %.2f s (the build needed %.1f s)" % (took, SLOW_SECONDS), flush=True)

    def test_grace_period_runs_out(self):
        srv = self.start_server("--grace-ms", "200")
        req, path = make_request(slow_port=self.imports.port)
        box = []
        t = threading.Thread(target=lambda: box.append(srv.call(req, timeout=30)))
        t.start()
        self.imports.wait_for_request(path, 15)
        t_sig = time.monotonic()
        srv.signal(signal.SIGTERM)
        t.join(40)
        self.assertTrue(box, "the waiting call got no answer")
        # The waiter's own answer, or gRPC's cancellation: both UNAVAILABLE.
        self.assertReply(box[0], "UNAVAILABLE")
        self.assertLess(time.monotonic() - t_sig, SLOW_SECONDS + 5)
        srv.check_stopped()

    def test_sigterm_with_a_build_and_no_waiting_call(self):
        srv = self.start_server("--deadline-mode", "fail")
        req, path = make_request(slow_port=self.imports.port)
        r = srv.call(req, timeout=0.3)
        self.assertEqual(r.code, "DEADLINE_EXCEEDED", r)
        self.imports.wait_for_request(path, 15)
        t_sig = time.monotonic()
        srv.check_stopped()
        print("# SIGTERM to exit with a build running: %.2f s" % (time.monotonic() - t_sig), flush=True)

    def test_sigterm_with_many_builds_left_behind(self):
        """Builds still running at exit once met the libraries' atexit
        cleanups (OpenSSL, libcurl): the soak's server died of SIGSEGV."""
        srv = self.start_server("--build-workers", "4", "--grace-ms", "200")
        futs = []
        for _ in range(30):  # builds that end one after another while the service exits
            req, _ = make_request(slow_port=self.imports.port, import_dir="fast")
            futs.append(srv.apply.future(req, timeout=30, metadata=srv.metadata("tenant-a")))
        poll(lambda: srv.metric("udfb_builds_in_flight") == 4, 10, "4 builds running")
        for f in futs:
            f.cancel()
        srv.check_stopped()


# ---- TAP output ----


def main():
    global udf_pb2, health_pb2, resource_pb2, grpc
    os.chdir(REPO)
    harness.skip_unless()
    t_start = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="udfb-service-pb.")
    try:
        try:
            udf_pb2, health_pb2, resource_pb2 = harness.load_protos(tmp, "udf", "health", "resource")
            grpc = harness.grpc
            load_tiny_image()
            probe_flags()
            import wheels

            wheels.build(os.path.join(tmp, "wheels"))
            EXTRA_ARGS.extend(["--index-url", os.path.join(tmp, "wheels")])
        except Exception:
            tap.check("setup (protoc, grpc, tiny base image)", False, traceback.format_exc())
            return tap.done()
        print("# binary %s, base oci:%s:tiny, flags %s" % (BIN, TINY_IMAGE, " ".join(EXTRA_ARGS) or "none"),
              flush=True)
        tap.run_cases((ServiceTest, CancelTest, FairnessTest, QuotaTest, WorkerStoreTest, TemplateBoundTest, BuildFairnessTest, AcceptedModeTest, TokenTest, TlsTest, ConfigTest,
                       ShutdownTest),
                      sys.argv[1:])
        print("# %.1f s in all" % (time.monotonic() - t_start), flush=True)
        return tap.done()
    finally:
        harness.kill_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
