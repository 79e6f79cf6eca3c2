#!/usr/bin/python3
"""Integration test of templates/server.py, the stub baked into UDF images.

Runs the stub exactly as an image does (`python3 -X databend_import_directory=...
server.py` in an app directory holding udf.py, udf.json and imports/), but with
the TEST DOUBLE runtime from tests/runtime-double on PYTHONPATH instead of the
real databend-udf/pyarrow, which cannot be installed here.  The double serves
UDFs as JSON over HTTP: POST /call {"function", "args"} -> {"result"}.
"""

import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request
import zipfile
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import tap  # noqa: E402
from harness import REPO, free_port  # noqa: E402

STUB = REPO / "templates" / "server.py"
DOUBLE = REPO / "tests" / "runtime-double"
TOKEN = "s3cr3t-token-value"
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
START_TIMEOUT = 10.0

PROBE_UDF = '''\
import sys
import helper, zipmod, whlmod, eggmod

def probe(x):
    return {
        "helper": helper.add_one(x),
        "zip": zipmod.NAME,
        "whl": whlmod.NAME,
        "egg": eggmod.NAME,
        "xopt": sys._xoptions.get("databend_import_directory"),
        "path_head": sys.path[:4],
    }
'''

DECORATED_UDF = '''\
import sys
from databend_udf import udf

@udf(input_types=["INT"], result_type="VARIANT", name="deco")
def deco(x):
    return [x * 2, sys._xoptions.get("databend_import_directory")]
'''


def http(method, url, body=None, headers=None, timeout=5.0):
    """Returns (status, content-type, body bytes); never raises on 4xx/5xx."""
    data = None if body is None else json.dumps(body).encode("utf-8")
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers.get("Content-Type"), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read()


def write_zip(path, members):
    with zipfile.ZipFile(path, "w") as z:
        for name, text in members.items():
            z.writestr(name, text)


def parse_iso(text):
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


class StubTest(unittest.TestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="udf-stub-test-"))
        self.procs = []

    def tearDown(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=5)
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- fixtures ---------------------------------------------------------

    def make_app(self, code, config, with_imports=True):
        app = self.tmp / "app"
        (app / "imports").mkdir(parents=True)
        shutil.copyfile(STUB, app / "server.py")
        (app / "udf.py").write_text(code)
        if config is not None:
            (app / "udf.json").write_text(config if isinstance(config, str) else json.dumps(config))
        if with_imports:
            imp = app / "imports"
            (imp / "helper.py").write_text("def add_one(x):\n    return x + 1\n")
            # A staged file named like the user module must not shadow udf.py.
            (imp / "udf.py").write_text("raise RuntimeError('imports/udf.py was loaded')\n")
            write_zip(imp / "lib.zip", {"zipmod.py": "NAME = 'from-zip'\n"})
            write_zip(imp / "pkg-1.0-py3-none-any.whl", {"whlmod/__init__.py": "NAME = 'from-whl'\n"})
            write_zip(imp / "old-1.0-py3.9.egg", {"eggmod.py": "NAME = 'from-egg'\n"})
        return app

    def start(self, app, token=None, xopt=True, keys=None):
        env = {k: v for k, v in os.environ.items()
               if k not in ("UDF_AUTH_TOKEN", "UDF_AUTH_KEYS", "UDF_SERVER_ADDR", "RESOURCE_STATUS_ADDR")}
        env["PYTHONPATH"] = str(DOUBLE)
        env["PYTHONDONTWRITEBYTECODE"] = "1"  # keep __pycache__ out of the repo
        self.udf_port, self.status_port = free_port(), free_port()
        env["UDF_SERVER_ADDR"] = "127.0.0.1:%d" % self.udf_port
        env["RESOURCE_STATUS_ADDR"] = "127.0.0.1:%d" % self.status_port
        if token:
            env["UDF_AUTH_TOKEN"] = token
        if keys:
            env["UDF_AUTH_KEYS"] = keys
        argv = [sys.executable]
        if xopt:
            argv += ["-X", "databend_import_directory=%s" % (app / "imports")]
        argv.append("server.py")
        self.stderr_path = self.tmp / "stderr.txt"
        with open(self.tmp / "stdout.txt", "wb") as out, open(self.stderr_path, "wb") as err:
            proc = subprocess.Popen(argv, cwd=app, env=env, stdout=out, stderr=err,
                                    stdin=subprocess.DEVNULL)
        self.procs.append(proc)
        return proc

    def stderr(self):
        return self.stderr_path.read_text(errors="replace")

    def wait_healthy(self, proc):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.fail("stub exited with %s:\n%s" % (proc.returncode, self.stderr()))
            try:
                status, _, body = self.status("/health", timeout=0.5)
                if status == 200 and body == b"1":
                    return
            except OSError:
                pass
            time.sleep(0.02)
        self.fail("stub not healthy after %ss:\n%s" % (START_TIMEOUT, self.stderr()))

    def status(self, path, timeout=5.0):
        return http("GET", "http://127.0.0.1:%d%s" % (self.status_port, path), timeout=timeout)

    def stats(self):
        status, ctype, body = self.status("/stats")
        self.assertEqual(status, 200)
        self.assertEqual(ctype, "application/json")
        return json.loads(body)

    def call(self, name, args, token=None):
        headers = {} if token is None else {"X-Authorization": token}
        status, _, body = http("POST", "http://127.0.0.1:%d/call" % self.udf_port,
                               {"function": name, "args": args}, headers)
        return status, json.loads(body)

    def assert_exits(self, proc, code):
        try:
            proc.wait(timeout=START_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.fail("stub still running, expected exit %d" % code)
        self.assertEqual(proc.returncode, code, self.stderr())

    # -- tests ------------------------------------------------------------

    def test_wrapped_handler_imports_stats_and_auth(self):
        config = {"handler": "probe", "input_types": ["INT NULL"], "result_type": "VARIANT"}
        app = self.make_app(PROBE_UDF, config)
        proc = self.start(app, token=TOKEN)
        self.wait_healthy(proc)

        status, ctype, body = self.status("/health")
        self.assertEqual((status, ctype, body), (200, "text/plain", b"1"))
        for path in ("/", "/metrics", "/stats/extra", "/healthz"):
            self.assertEqual(self.status(path)[0], 404, path)
        self.assertEqual(self.stats(), {"request_count": 0, "first_request_time": None,
                                        "last_request_time": None})

        # Wrapped with udf.json's name and types.
        status, _, body = http("GET", "http://127.0.0.1:%d/functions" % self.udf_port)
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body), [{"name": "probe", "input_types": ["INT NULL"],
                                             "result_type": "VARIANT"}])

        before = datetime.now(timezone.utc)
        status, body = self.call("probe", [41], token=TOKEN)
        self.assertEqual(status, 200, body)
        result = body["result"]
        imports = str(app / "imports")
        self.assertEqual(result["helper"], 42)
        self.assertEqual((result["zip"], result["whl"], result["egg"]),
                         ("from-zip", "from-whl", "from-egg"))
        self.assertEqual(result["xopt"], imports)
        self.assertEqual(result["path_head"], [
            imports,
            os.path.join(imports, "lib.zip"),
            os.path.join(imports, "old-1.0-py3.9.egg"),
            os.path.join(imports, "pkg-1.0-py3-none-any.whl"),
        ])

        stats1 = self.stats()
        self.assertEqual(stats1["request_count"], 1)
        for key in ("first_request_time", "last_request_time"):
            self.assertRegex(stats1[key], ISO_UTC)
            when = parse_iso(stats1[key])
            self.assertLessEqual(abs((when - before).total_seconds()), 30)
        self.assertEqual(stats1["first_request_time"], stats1["last_request_time"])

        # Wrong or missing token: rejected before evaluation, not counted.
        for bad in ("wrong", TOKEN + "x", "", None):
            status, body = self.call("probe", [1], token=bad)
            self.assertEqual(status, 401, (bad, body))
            self.assertNotIn(TOKEN, json.dumps(body))
        self.assertEqual(self.stats()["request_count"], 1)

        time.sleep(0.002)  # make the second timestamp distinguishable
        status, body = self.call("probe", [1], token=TOKEN)
        self.assertEqual((status, body["result"]["helper"]), (200, 2))
        stats2 = self.stats()
        self.assertEqual(stats2["request_count"], 2)
        self.assertEqual(stats2["first_request_time"], stats1["first_request_time"])
        self.assertGreater(parse_iso(stats2["last_request_time"]),
                           parse_iso(stats1["last_request_time"]))

        err = self.stderr()
        self.assertNotIn(TOKEN, err)
        self.assertNotIn("GET /", err)  # status server is quiet

    def test_already_decorated_handler_is_not_wrapped_again(self):
        # udf.json's types differ from the decorator's: the decorator must win.
        config = {"handler": "deco", "input_types": ["BIGINT"], "result_type": "BIGINT"}
        app = self.make_app(DECORATED_UDF, config, with_imports=False)
        proc = self.start(app, token=None, xopt=False)
        self.wait_healthy(proc)

        status, _, body = http("GET", "http://127.0.0.1:%d/functions" % self.udf_port)
        self.assertEqual(json.loads(body), [{"name": "deco", "input_types": ["INT"],
                                             "result_type": "VARIANT"}])
        # No UDF_AUTH_TOKEN: calls need no header.  Without -X the stub sets
        # the import directory option itself.
        status, body = self.call("deco", [21])
        self.assertEqual(status, 200, body)
        self.assertEqual(body["result"], [42, str(app / "imports")])
        self.assertEqual(self.stats()["request_count"], 1)

    def test_any_listed_token_is_accepted_during_a_rotation(self):
        config = {"handler": "deco", "input_types": ["BIGINT"], "result_type": "BIGINT"}
        app = self.make_app(DECORATED_UDF, config, with_imports=False)
        proc = self.start(app, token="new-token-aaaa,old-token-bbbb", xopt=False)
        self.wait_healthy(proc)
        for good in ("new-token-aaaa", "old-token-bbbb"):
            status, body = self.call("deco", [1], token=good)
            self.assertEqual(status, 200, body)
        for bad in ("new-token-aaaa,old-token-bbbb", "new-token", "", "other"):
            status, body = self.call("deco", [1], token=bad)
            self.assertEqual(status, 401, (bad, body))

    def test_expiring_tokens_of_any_listed_key(self):
        # Issue 18: what the service sets (UDF_AUTH_KEYS): tokens
        # "v2.<expires>.<mac>" under this sandbox's keys, refused once
        # expired (past a minute of clock leeway) or changed.
        def mint(key, expires):
            mac = hmac.new(key.encode(), b"udfb-token-v2\n%d" % expires, hashlib.sha256).hexdigest()
            return "v2.%d.%s" % (expires, mac)

        k_new, k_old, k_other = "a" * 64, "b" * 64, "c" * 64
        config = {"handler": "deco", "input_types": ["BIGINT"], "result_type": "BIGINT"}
        app = self.make_app(DECORATED_UDF, config, with_imports=False)
        proc = self.start(app, keys=k_new + "," + k_old, xopt=False)
        self.wait_healthy(proc)
        now = int(time.time())
        for good in (mint(k_new, now + 600), mint(k_old, now + 600), mint(k_new, now - 30)):
            status, body = self.call("deco", [1], token=good)
            self.assertEqual(status, 200, (good, body))
        later = mint(k_new, now + 600)
        for bad in (mint(k_new, now - 120), mint(k_other, now + 600), later.replace("v2.%d." % (now + 600), "v2.%d." % (now + 9999)),
                    "v2.%d." % (now + 600), k_new, "", None):
            status, body = self.call("deco", [1], token=bad)
            self.assertEqual(status, 401, (bad, body))
            self.assertIn("expired", json.dumps(body))

    def test_missing_handler_exits_2(self):
        config = {"handler": "no_such_handler", "input_types": [], "result_type": "INT"}
        app = self.make_app("def other():\n    return 1\n", config, with_imports=False)
        proc = self.start(app)
        self.assert_exits(proc, 2)
        self.assertIn("no_such_handler", self.stderr())

    def test_bad_or_missing_udf_json_exits_2(self):
        for config in (None, "{not json", json.dumps({"handler": "f"}),
                       json.dumps({"handler": "f", "input_types": "INT", "result_type": "INT"})):
            with self.subTest(config=config):
                app = self.make_app("def f(x):\n    return x\n", config, with_imports=False)
                proc = self.start(app)
                self.assert_exits(proc, 2)
                self.assertIn("udf.json", self.stderr())
                shutil.rmtree(app)


def main():
    tap.run_cases([StubTest], sys.argv[1:])
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
