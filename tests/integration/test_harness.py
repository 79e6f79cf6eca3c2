#!/usr/bin/python3
"""The Python tests' harness tests itself, as the package fixtures do
(test_pkgfixtures.py): the import server answers as an object store does
(ETag, Range bytes=0-0, 404, a test's own paths first, the request log),
the vectors' import files are the bytes the shell tests write, TAP numbers
checks and unittest results in one sequence and a skip exits 77, and a
Service that cannot start fails with its stderr instead of hanging.  No
binary is needed but for the last check."""

import hashlib
import os
import subprocess
import sys
import tempfile
import textwrap
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import harness  # noqa: E402
from http_server import ImportServer  # noqa: E402
from tap import check, done  # noqa: E402


def get(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def import_server():
    srv = ImportServer({"a/b.py": "VALUE = 1\n"}, dynamic=lambda p: (503, b"busy") if p.startswith("busy/") else None)
    try:
        status, h, body = get(srv.url("/a/b.py?X-Amz-Signature=x"))
        check("a file: 200, its bytes, an ETag of them (the query string ignored)",
              status == 200 and body == b"VALUE = 1\n" and h.get("ETag") == '"%s"' % hashlib.md5(body).hexdigest(),
              (status, h, body))
        status, h, body = get(srv.url("a/b.py"), {"Range": "bytes=0-0"})
        check("Range bytes=0-0: 206, the first byte, Content-Range with the length, the same ETag",
              status == 206 and body == b"V" and h.get("Content-Range") == "bytes 0-0/10" and "ETag" in h,
              (status, h, body))
        srv.honor_range = False
        status, _, body = get(srv.url("a/b.py"), {"Range": "bytes=0-0"})
        check("honor_range off: the whole object", status == 200 and body == b"VALUE = 1\n", (status, body))
        status, _, _ = get(srv.url("nope.py"))
        check("a missing file: 404", status == 404, status)
        status, _, body = get(srv.url("busy/x.py"))
        check("a path of the test's own: its answer", (status, body) == (503, b"busy"), (status, body))
        srv.put("/late.py", "LATE = 1\n")
        status, _, body = get(srv.url("late.py"))
        check("a file put later is served", (status, body) == (200, b"LATE = 1\n"), (status, body))
        check("the request log: paths without the slash, counted per path, with Host",
              srv.count("/a/b.py") == 3 and srv.count("a/b.py") == 3 and srv.count() == 6 and
              {r[2] for r in srv.requests} == {"127.0.0.1:%d" % srv.port}, srv.requests)
        try:
            srv.wait_for_request("never.py", 0.2)
            waited = "returned"
        except AssertionError as e:
            waited = str(e)
        check("wait_for_request fails naming a path never asked for", "never.py" in waited, waited)
    finally:
        srv.close()


def vector_files(tmp):
    """The shell tests' copy (tests/lib/imports.sh, through harness.py
    vector-files) and the Python tests' are the same bytes."""
    out = os.path.join(tmp, "files")
    p = subprocess.run([sys.executable, str(harness.LIB / "harness.py"), "vector-files", out], capture_output=True,
                       text=True)
    on_disk = {str(f.relative_to(out)): f.read_bytes() for f in Path(out).rglob("*") if f.is_file()}
    files = harness.vector_files()
    check("harness.py vector-files writes the vectors' import files, byte for byte",
          p.returncode == 0 and on_disk == files and len(files) >= 5, (p.stderr, sorted(on_disk), sorted(files)))
    check("a zip: file is deterministic", harness.vector_files() == files)


def tap_numbering(tmp):
    prog = os.path.join(tmp, "t.py")
    Path(prog).write_text(textwrap.dedent('''
        import sys, unittest
        sys.path.insert(0, %r)
        import tap
        tap.check("first", True)
        class T(unittest.TestCase):
            def test_a(self):
                pass
            def test_b(self):
                self.assertEqual(1, 2)
        tap.run_cases([T], sys.argv[1:], tap.TapResult(prefix="p: "))
        tap.ok(True, "last")
        sys.exit(tap.done())
        ''' % str(harness.LIB)))
    p = subprocess.run([sys.executable, prog], capture_output=True, text=True)
    lines = [x for x in p.stdout.splitlines() if not x.startswith("#")]
    want = ["ok 1 - first", "ok 2 - p: T.test_a", "not ok 3 - p: T.test_b", "ok 4 - last", "1..4"]
    check("check, unittest results and ok share one numbering; a failure makes done() exit 1",
          p.returncode == 1 and [x.split(" (")[0] for x in lines] == want and "AssertionError: 1 != 2" in p.stdout,
          p.stdout + p.stderr)
    p = subprocess.run([sys.executable, prog, "test_a"], capture_output=True, text=True)
    check("run_cases picks tests by a part of their id", p.returncode == 0 and "test_b" not in p.stdout, p.stdout)
    Path(prog).write_text("import sys\nsys.path.insert(0, %r)\nimport tap\ntap.skip_all('no reason')\n"
                          % str(harness.LIB))
    p = subprocess.run([sys.executable, prog], capture_output=True, text=True)
    check("skip_all: '1..0 # SKIP why' and exit 77", (p.returncode, p.stdout) == (77, "1..0 # SKIP no reason\n"),
          (p.returncode, p.stdout))


def service_start_fails(tmp):
    if harness.missing(grpc_module=True):
        check("a Service that cannot start # SKIP %s" % harness.missing(grpc_module=True), True)
        return
    harness.load_protos(tmp, "udf")
    try:
        harness.Service(os.path.join(tmp, "bad"), ["--no-such-flag"], start_timeout=60)
        why = "it started"
    except AssertionError as e:
        why = str(e)
    check("a Service that cannot start fails at once, with the binary's stderr",
          "before serving" in why and "no-such-flag" in why and harness.SERVICES[-1].proc.poll() is not None, why)


def main():
    tmp = tempfile.mkdtemp(prefix="udfb-harness-test.")
    try:
        import_server()
        vector_files(tmp)
        tap_numbering(tmp)
        if harness.missing():
            check("a Service that cannot start # SKIP %s" % harness.missing(), True)
        else:
            service_start_fails(tmp)
    finally:
        harness.kill_all()
        subprocess.run(["rm", "-rf", tmp])
    return done()


if __name__ == "__main__":
    sys.exit(main())
