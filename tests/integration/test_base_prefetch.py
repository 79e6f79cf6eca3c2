#!/usr/bin/python3
"""Integration test of unpacking the configured bases in the background
(scheduler/prefetch.c), with the local scheduler under runc.

A service started on an empty layer cache answers /readyz 503 while its base
is being unpacked and logs the progress; a UDF that arrives during the
unpack is answered correctly (it waits only for what is left); once /readyz
says ready, a cold UDF's apply-to-answer does no unpacking of the base.  A
base whose layer blob is damaged: the log names the runtime, the base and
the layer, /readyz still turns ready (other runtimes would serve), and a
UDF on that base fails with the unpack's own error.

Uses the harness (tests/lib/harness.py: the local-sandbox service, the
python base, the package index), with test_local_sandbox.py's needs: root,
runc, overlayfs, python3-grpcio ("1..0 # SKIP" and exit 77 without them).
"""

import json
import os
import shutil
import sys
import tempfile
import traceback
import unittest
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import harness  # noqa: E402
import tap  # noqa: E402
from harness import fresh_request, poll, udf_call  # noqa: E402

SECRET = "local-sandbox-secret-0123456789"
TMP = BASE = INDEX = None


def serve(name, opts, bases=None):
    """The local scheduler under runc with the python base (or bases)."""
    return harness.SandboxService(os.path.join(TMP, "runc", name), INDEX, bases or [("3", "oci:%s:python" % BASE)],
                                  os.path.join(TMP, "layers"), (21000, 21999), opts=opts, secret=SECRET,
                                  args=("--default-runtime", "3"), call_timeout=120.0)


def readyz(srv):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % srv.admin_port, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def log_text(srv):
    return srv.log()


class PrefetchTest(unittest.TestCase):
    def test_1_udf_during_unpack(self):
        layers = os.path.join(TMP, "layers-fresh")
        srv = serve("fresh", opts={"layers_dir": layers})
        try:
            first = readyz(srv)
            req = fresh_request()
            r = srv.call(req)
            self.assertEqual(r.code, "OK", "%r%s" % (r, srv.stderr_tail()))
            status, body = udf_call(r.endpoint, "f", [41], r.token)
            self.assertEqual((status, body and body.get("result")), (200, 42), srv.stderr_tail())
            print("# readyz right after start: %d; first UDF, during the unpack: %.2f s" % (first, r.elapsed))
            self.assertEqual(first, 503, "/readyz said ready before the base was unpacked%s" % srv.stderr_tail())
            poll(lambda: readyz(srv) == 200, 120, "readyz after the unpack")
            text = log_text(srv)
            self.assertIn("unpacking 1 configured bases", text)
            self.assertRegex(text, r"runtime 3: base layer 1/\d+ sha256:[0-9a-f]{64} ready in the layer cache")
            self.assertRegex(text, r"configured bases unpacked: \d+ layers in \d+ ms")
            # Ready: a cold UDF no longer waits for the base.
            times = []
            for _ in range(3):
                r = srv.call(fresh_request())
                self.assertEqual(r.code, "OK", "%r%s" % (r, srv.stderr_tail()))
                times.append(r.elapsed)
            times.sort()
            print("# cold apply-to-answer once the base is unpacked: median %.3f s" % times[1])
            self.assertLess(times[1], 5.0)
        finally:
            srv.stop()

    def test_2_damaged_base_fails_clearly(self):
        bad = os.path.join(TMP, "bad-oci")
        shutil.copytree(BASE, bad)  # real copies: the blob below is changed in place
        idx = json.loads(Path(bad, "index.json").read_text())
        mdig = [m for m in idx["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == "python"][0]["digest"]
        manifest = json.loads(Path(bad, "blobs/sha256", mdig.split(":")[1]).read_text())
        layer = manifest["layers"][0]["digest"]
        blob = Path(bad, "blobs/sha256", layer.split(":")[1])
        data = bytearray(blob.read_bytes())
        data[len(data) // 2] ^= 0xFF
        blob.write_bytes(bytes(data))
        srv = serve("damaged", opts={"layers_dir": os.path.join(TMP, "layers-damaged")},
                    bases=[("3", "oci:%s:python" % bad)])
        try:
            poll(lambda: readyz(srv) == 200, 120, "readyz after the unpack (one base failing)")
            text = log_text(srv)
            self.assertRegex(text, r"runtime 3: base oci:%s:python: layer %s could not be unpacked: .*(corrupt|hash)"
                             % (bad, layer))
            self.assertIn("UDFs on those bases will fail", text)
            r = srv.call(fresh_request())
            print("# a UDF on the damaged base: %s: %s" % (r.code, r.details[:300]))
            self.assertNotEqual(r.code, "OK")
            self.assertIn(layer, r.details)
        finally:
            srv.stop()


def main():
    global TMP, BASE, INDEX
    os.chdir(harness.REPO)
    harness.skip_unless(**harness.SANDBOX_NEEDS)
    TMP = tempfile.mkdtemp(prefix="udfb-prefetch-test.")
    os.chmod(TMP, 0o755)
    try:
        try:
            harness.load_protos(TMP, "udf")
            BASE = harness.python_base()
            INDEX, _ = harness.start_index(TMP)
        except Exception:
            tap.check("setup (protoc, grpc, python base image, package index)", False, traceback.format_exc())
            return tap.done()
        tap.run_cases([PrefetchTest], result=tap.TapResult(prefix="runc: "))
        return tap.done()
    finally:
        harness.remove_sandbox_leftovers()
        shutil.rmtree(TMP, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
