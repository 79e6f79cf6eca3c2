#!/usr/bin/python3
"""The import fetcher against a loopback server with fault modes, through the
real binary (`udf-builder build`): errors name the import and never its URL's
signature, retries happen where they should, the SSRF guard refuses what it
must, and the (location, tag) cache keeps the network out of repeat builds."""
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import harness  # noqa: E402
import http_server  # noqa: E402
from harness import BIN  # noqa: E402
from tap import check, done  # noqa: E402

SECRET = "X-Amz-Signature=S3CR3T"

hits = {}
hits_lock = threading.Lock()


class Faults(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):
        pass

    def send(self, code, body=b"", headers=(), length=None):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path = self.path.split("?")[0]
        with hits_lock:
            hits[path] = hits.get(path, 0) + 1
            count = hits[path]
        if path.startswith("/ok/"):
            return self.send(200, ("content of %s\n" % path).encode())
        if path == "/404":
            return self.send(404, b"no")
        if path == "/flaky":
            return self.send(500, b"busy") if count == 1 else self.send(200, b"flaky ok\n")
        if path == "/busy":
            return self.send(429, b"", [("Retry-After", "1")]) if count == 1 else self.send(200, b"busy ok\n")
        if path == "/short":
            return self.send(200, b"12345", length=10)
        if path == "/long":
            return self.send(200, b"0123456789", length=5)
        if path == "/loop":
            return self.send(302, b"", [("Location", "/loop")])
        if path == "/meta":
            return self.send(302, b"", [("Location", "http://169.254.169.254/latest/meta-data/")])
        if path in ("/stall", "/drip"):
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            for _ in range(100 if path == "/drip" else 1):
                try:
                    self.wfile.write(b"x")
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.1 if path == "/drip" else 30)
            return
        self.send(404, b"")


def request(path, imports, code="def f():\n    return 1\n"):
    spec = {"version": 1, "kind": "udf", "language": "python", "handler": "f", "input_types": [],
            "result_type": "INT", "imports": [i[0] for i in imports], "packages": [],
            "runtime_version": "3.12", "code": code}
    body = {"spec": json.dumps(spec), "imports": [{"location": l, "url": u, "tag": t} for l, u, t in imports]}
    with open(path, "w") as f:
        json.dump(body, f)
    return path


def main():
    server = http_server.serve(Faults)
    port = server.server_address[1]
    base = "oci:%s:tiny" % harness.tiny_image()
    work = tempfile.mkdtemp(prefix="udfb-imports-test.")
    store = os.path.join(work, "store")

    def url(path, host="127.0.0.1"):
        return "http://%s:%d%s?%s" % (host, port, path, SECRET)

    def build(name, imports, env=None, code=None, allow=("127.0.0.1",)):
        req = request(os.path.join(work, name + ".json"), imports, *(() if code is None else (code,)))
        e = dict(os.environ)
        e.pop("UDFB_IMPORTS_ALLOW", None)
        e.update({"UDFB_IMPORTS_ATTEMPTS": "3", "UDFB_IMPORTS_LOW_SPEED_TIME_S": "1"})
        e.update(env or {})
        argv = [BIN, "build", req, "--base", base, "--dest", "oci:%s/out:%s" % (work, name), "--store", store]
        for a in allow:
            argv += ["--imports-allow", a]
        start = time.monotonic()
        p = subprocess.run(argv, capture_output=True, text=True, env=e, timeout=120)
        return p.returncode, p.stdout, p.stderr.strip(), time.monotonic() - start

    def fails(what, name, imports, code, needle, **kw):
        rc, _, err, _ = build(name, imports, **kw)
        check("%s: exit %d" % (what, code), rc == code, "exit %d: %s" % (rc, err))
        check("%s: one line naming the import and the cause" % what,
              err.count("\n") == 0 and needle in err, err)
        check("%s: no URL signature in the error" % what, "S3CR3T" not in err and "X-Amz" not in err, err)

    fails("404", "e404", [("@s/imports/missing.py", url("/404"), "t1")], 2,
          "import '@s/imports/missing.py': HTTP 404")
    rc, out, err, _ = build("flaky", [("@s/flaky.py", url("/flaky"), "t1")])
    check("500 then 200: retried and built", rc == 0 and hits.get("/flaky") == 2, (rc, err, hits.get("/flaky")))
    rc, out, err, secs = build("busy", [("@s/busy.py", url("/busy"), "t1")])
    check("429 with Retry-After: 1 is honoured", rc == 0 and secs >= 1.0 and hits.get("/busy") == 2, (rc, err, secs))
    fails("body shorter than Content-Length", "short", [("@s/short.py", url("/short"), "t1")], 1,
          "import '@s/short.py': ")
    check("a short body is retried, then given up", hits.get("/short") == 3, hits.get("/short"))
    rc, out, err, _ = build("long", [("@s/long.py", url("/long"), "t1")])
    check("a body longer than Content-Length yields exactly the declared bytes", rc == 0, err)
    fails("redirect loop", "loop", [("@s/loop.py", url("/loop"), "t1")], 2, "more than 5 redirects")
    fails("redirect to the metadata address", "meta", [("@s/meta.py", url("/meta"), "t1")], 2,
          "refused to connect to 169.254.169.254 (link-local")
    fails("loopback not allowed", "lo", [("@s/lo.py", url("/ok/lo.py", host="localhost"), "t1")], 2,
          "loopback", allow=())
    rc, _, err, _ = build("byname", [("@s/n.py", url("/ok/n.py", host="localhost"), "t1")], allow=("localhost",))
    check("a host allowed by name may connect", rc == 0, err)
    fails("a stall", "stall", [("@s/stall.py", url("/stall"), "t1")], 1, "import '@s/stall.py': stalled",
          env={"UDFB_IMPORTS_ATTEMPTS": "1"})
    fails("a slow drip past the deadline", "drip", [("@s/drip.py", url("/drip"), "t1")], 1,
          "import '@s/drip.py': not fetched before the deadline", env={"UDFB_IMPORTS_TIMEOUT_MS": "1500"})
    fails("a size over the limit", "big", [("@s/big.py", url("/ok/big.py"), "t1")], 2,
          "import '@s/big.py': larger than 4 bytes", env={"UDFB_IMPORTS_MAX_BYTES": "4"})
    fails("a numeric tag is the object's length", "len", [("@s/len.py", url("/ok/len.py"), "3")], 2,
          "its tag says 3")

    # Issue 18: refused as invalid input (exit 2) before any fetch, where
    # they failed as INTERNAL (a file name over 255 bytes) or UNAVAILABLE (a
    # URL with a space), or became an OCI whiteout in the image (.wh.).
    before = dict(hits)
    fails("a file name over 255 bytes", "longname", [("@s/" + "a" * 256, url("/ok/long-name.py"), "t1")], 2,
          "imports[0].location: file name 'aaaa")
    fails("a URL with a space", "space", [("@s/sp.py", url("/ok/s p.py"), "t1")], 2,
          "imports[0].url (import '@s/sp.py'): not a valid URL")
    fails("a .wh. file name", "whiteout", [("@s/.wh.server.py", url("/ok/wh.py"), "t1")], 2,
          "starts with '.wh.' (an OCI whiteout)")
    check("none of them reached the server", hits == before, (before, hits))

    # The content cache: (location, tag) with a new URL reaches no server.
    imports = [("@s/a.py", url("/ok/a.py"), "ta"), ("@s/b.py", url("/ok/b.py"), "tb")]
    rc, out1, err, _ = build("c1", imports)
    before = dict(hits)
    fresh = [(l, u.replace("S3CR3T", "FRESH"), t) for l, u, t in imports]
    rc2, out2, err2, _ = build("c2", fresh, code="def f():\n    return 2\n")
    check("a new build with the same (location, tag) and new URLs sends no request",
          rc == 0 and rc2 == 0 and hits == before, (err, err2, before, hits))
    k1, k2 = json.loads(out1)["key"], json.loads(out2)["key"]
    retag = [imports[0], ("@s/b.py", url("/ok/b.py"), "tb2")]
    rc3, out3, err3, _ = build("c3", retag, code="def f():\n    return 2\n")
    check("a new tag is fetched again and gives a new key",
          rc3 == 0 and hits.get("/ok/b.py") == before.get("/ok/b.py", 0) + 1 and json.loads(out3)["key"] != k2,
          (err3, hits))
    check("the keys of different code differ", k1 != k2)
    server.shutdown()
    return done()


if __name__ == "__main__":
    sys.exit(main())
