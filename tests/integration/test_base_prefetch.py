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

Reuses the helpers of test_local_sandbox.py (same needs: root, runc,
overlayfs, python3-grpcio; "1..0 # SKIP" and exit 77 without them).
"""

import os
import shutil
import sys
import tempfile
import time
import traceback
import unittest
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import test_local_sandbox as L  # noqa: E402


def readyz(srv):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % srv.admin_port, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def log_text(srv):
    return Path(srv.stderr_path).read_text(errors="replace")


class PrefetchTest(unittest.TestCase):
    def test_1_udf_during_unpack(self):
        layers = os.path.join(L.TMP, "layers-fresh")
        srv = L.Server("fresh", opts={"layers_dir": layers})
        try:
            first = readyz(srv)
            req = L.fresh_request()
            r = srv.call(req)
            self.assertEqual(r.code, "OK", "%r%s" % (r, srv.stderr_tail()))
            status, body = L.udf_call(r.endpoint, "f", [41], r.token)
            self.assertEqual((status, body and body.get("result")), (200, 42), srv.stderr_tail())
            print("# readyz right after start: %d; first UDF, during the unpack: %.2f s" % (first, r.elapsed))
            self.assertEqual(first, 503, "/readyz said ready before the base was unpacked%s" % srv.stderr_tail())
            L.poll(lambda: readyz(srv) == 200, 120, "readyz after the unpack")
            text = log_text(srv)
            self.assertIn("unpacking 1 configured bases", text)
            self.assertRegex(text, r"runtime 3: base layer 1/\d+ sha256:[0-9a-f]{64} ready in the layer cache")
            self.assertRegex(text, r"configured bases unpacked: \d+ layers in \d+ ms")
            # Ready: a cold UDF no longer waits for the base.
            times = []
            for _ in range(3):
                r = srv.call(L.fresh_request())
                self.assertEqual(r.code, "OK", "%r%s" % (r, srv.stderr_tail()))
                times.append(r.elapsed)
            times.sort()
            print("# cold apply-to-answer once the base is unpacked: median %.3f s" % times[1])
            self.assertLess(times[1], 5.0)
        finally:
            srv.stop()

    def test_2_damaged_base_fails_clearly(self):
        bad = os.path.join(L.TMP, "bad-oci")
        shutil.copytree(L.BASE, bad)  # real copies: the blob below is changed in place
        import json
        idx = json.loads(Path(bad, "index.json").read_text())
        mdig = [m for m in idx["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == "python"][0]["digest"]
        manifest = json.loads(Path(bad, "blobs/sha256", mdig.split(":")[1]).read_text())
        layer = manifest["layers"][0]["digest"]
        blob = Path(bad, "blobs/sha256", layer.split(":")[1])
        data = bytearray(blob.read_bytes())
        data[len(data) // 2] ^= 0xFF
        blob.write_bytes(bytes(data))
        srv = L.Server("damaged", opts={"layers_dir": os.path.join(L.TMP, "layers-damaged")},
                       bases=[("3", "oci:%s:python" % bad)])
        try:
            L.poll(lambda: readyz(srv) == 200, 120, "readyz after the unpack (one base failing)")
            text = log_text(srv)
            self.assertRegex(text, r"runtime 3: base oci:%s:python: layer %s could not be unpacked: .*(corrupt|hash)"
                             % (bad, layer))
            self.assertIn("UDFs on those bases will fail", text)
            r = srv.call(L.fresh_request())
            print("# a UDF on the damaged base: %s: %s" % (r.code, r.details[:300]))
            self.assertNotEqual(r.code, "OK")
            self.assertIn(layer, r.details)
        finally:
            srv.stop()


def main():
    os.chdir(L.REPO)
    reason = L.skip_reason()
    if reason:
        print("1..0 # SKIP %s" % reason)
        return 77
    L.TMP = tempfile.mkdtemp(prefix="udfb-prefetch-test.")
    os.chmod(L.TMP, 0o755)
    L.LAYERS = os.path.join(L.TMP, "layers")
    try:
        try:
            L.load_protos(L.TMP)
            L.load_bases(L.TMP)
            L.start_index(L.TMP)
        except Exception:
            print("not ok 1 - setup (protoc, grpc, python base image, package index)")
            for line in traceback.format_exc().splitlines():
                print("# " + line)
            print("1..1")
            return 1
        result = L.TapResult()
        unittest.TestLoader().loadTestsFromTestCase(PrefetchTest).run(result)
        print("1..%d" % result.n)
        return 0 if result.wasSuccessful() else 1
    finally:
        L.cleanup_leftovers()
        shutil.rmtree(L.TMP, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
