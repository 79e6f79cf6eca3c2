#!/usr/bin/python3
"""`udf-builder key|prebuild --config FILE` key a request as the service does.

One settings file maps two runtimes to two different base images (the tiny
test base, and a copy of it with another config, so another digest) and sets
a salt and a default tenant.  The service is started on loopback with that
file (template scheduler, endpoints carrying the full key); requests for
each runtime are sent over gRPC, and the keys in the endpoints must equal
what `key --config` and `prebuild [--dry-run] --config` print and build for
the same requests written as files.  A base given with --base still wins, and a
runtime the file has no base for is refused as the service refuses it.
Prints TAP."""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "lib"))
import tap  # noqa: E402
import test_service as ts  # noqa: E402

TEMPLATE = "http://udf-{key}.{tenant}.svc:8815"
TENANT = "acme"


def second_base(tmp):
    """The tiny base with one label more: the same files, another digest."""
    d = os.path.join(tmp, "second-oci")
    shutil.copytree(ts.TINY_IMAGE, d)
    subprocess.run(["umoci", "config", "--image", d + ":tiny", "--tag", "tiny2", "--config.label",
                    "org.udfb.test=second"], check=True, stdout=subprocess.DEVNULL)
    return "oci:%s:tiny2" % d


def spec(runtime, nonce):
    return json.dumps({"version": 1, "kind": "udf", "language": "python", "handler": "f",
                       "input_types": ["INT NULL"], "result_type": "INT NULL", "imports": [], "packages": [],
                       "runtime_version": runtime, "code": "# %s\ndef f(x):\n    return x\n" % nonce},
                      separators=(",", ":"))


def cli(*args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("UDFB_") or k == "UDFB_BIN"}
    r = subprocess.run([ts.BIN, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                       timeout=300)
    return r.returncode, r.stdout.strip(), r.stderr.strip()


class Service:
    """`serve --config FILE` alone (no flag adds a base) on loopback ports."""

    def __init__(self, tmp, cfg):
        self.err = open(os.path.join(tmp, "serve.stderr"), "w+")
        env = {k: v for k, v in os.environ.items() if not k.startswith("UDFB_") or k == "UDFB_BIN"}
        self.proc = subprocess.Popen([ts.BIN, "serve", "--config", cfg], stdout=subprocess.PIPE, stderr=self.err,
                                     env=env, cwd=tmp)
        line = self.proc.stdout.readline().decode()
        m = re.fullmatch(r"serving grpc_port=(\d+) admin_port=(\d+)\n", line)
        if not m:
            raise AssertionError("unexpected first line %r\n%s" % (line, self.stderr_tail()))
        self.channel = ts.grpc.insecure_channel("127.0.0.1:" + m.group(1))
        self.apply = self.channel.unary_unary(ts.APPLY, request_serializer=lambda m: m.SerializeToString(),
                                              response_deserializer=ts.udf_pb2.ApplyUdfResourceResponse.FromString)

    def call(self, text):
        """(status name, details, endpoint) of one ApplyUdfResource call."""
        req = ts.udf_pb2.ApplyUdfResourceRequest(spec=text)
        try:
            r = self.apply(req, timeout=60, metadata=ts.Server.metadata(TENANT))
            return "OK", "", r.endpoint
        except ts.grpc.RpcError as e:
            return e.code().name, e.details() or "", None

    def stderr_tail(self):
        self.err.seek(0)
        return "\n".join(self.err.read().splitlines()[-20:])

    def stop(self):
        self.channel.close()
        self.proc.terminate()
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return "timeout"


def key_of(endpoint):
    m = re.fullmatch(r"http://udf-([0-9a-f]{64})\.[a-z0-9-]+\.svc:8815", endpoint or "")
    return "sha256:" + m.group(1) if m else None


def main():
    tmp = tempfile.mkdtemp(prefix="udfb-cli-config.")
    srv = None
    try:
        ts.load_protos(tmp)
        ts.load_tiny_image()
        base_a, base_b = "oci:%s:tiny" % ts.TINY_IMAGE, second_base(tmp)
        cfg = os.path.join(tmp, "config.json")
        with open(cfg, "w") as f:
            json.dump({"base_images": {"3.11": base_a, "3.12": base_b}, "salt": "cli-config-test",
                       "default_tenant": TENANT, "scheduler": "template", "endpoint_template": TEMPLATE,
                       "listen": "127.0.0.1:0", "admin_listen": "", "store": os.path.join(tmp, "store")}, f)
        srv = Service(tmp, cfg)
        reqs = {}
        for rt in ("3.11.4", "3.12.1"):
            text = spec(rt, os.urandom(8).hex())
            reqs[rt] = text
            for tenant in (TENANT, None):  # the request's own tenant, then the default one
                path = os.path.join(tmp, "%s%s.request.json" % (rt, "-t" if tenant else ""))
                body = {"spec": text, "imports": []}
                if tenant:
                    body["tenant"] = tenant
                Path(path).write_text(json.dumps(body))
        service = {}
        for rt, text in reqs.items():
            code, details, endpoint = srv.call(text)
            service[rt] = key_of(endpoint)
            tap.check("the service keys a %s request (%s)" % (rt, code), code == "OK" and service[rt],
                      "%s %s %s\n%s" % (code, details, endpoint, srv.stderr_tail()))
        tap.check("two runtimes, two bases: two keys", service["3.11.4"] != service["3.12.1"], service)
        for rt in reqs:
            for suffix, what in (("-t", "the request's tenant"), ("", "the file's default tenant")):
                path = os.path.join(tmp, "%s%s.request.json" % (rt, suffix))
                rc, out, err = cli("key", path, "--config", cfg)
                tap.check("key --config, %s, %s: the service's key" % (rt, what), rc == 0 and out == service[rt],
                          "service %s\nkey     %s (exit %d) %s" % (service[rt], out, rc, err))
        paths = sorted(os.path.join(tmp, p) for p in os.listdir(tmp) if p.endswith(".request.json"))
        rc, out, err = cli("prebuild", "--dry-run", "--config", cfg, *paths)
        got = dict(reversed(line.split(" ", 1)) for line in out.splitlines() if line.startswith("sha256:"))
        want = {p: service["3.11.4" if "/3.11" in p else "3.12.1"] for p in paths}
        tap.check("prebuild --dry-run --config: the service's key for each of 4 requests, 2 runtimes",
                  rc == 0 and got == want, "exit %d\n%s\n%s\nwant %s" % (rc, out, err, want))
        rc, out, err = cli("key", os.path.join(tmp, "3.11.4-t.request.json"), "--config", cfg, "--base", base_b)
        tap.check("--base wins over the file's base for the runtime",
                  rc == 0 and out.startswith("sha256:") and out not in service.values(), "%d %s %s" % (rc, out, err))
        other = os.path.join(tmp, "other.json")
        Path(other).write_text(json.dumps({"spec": spec("3.10", "x"), "imports": [], "tenant": TENANT}))
        rc, out, err = cli("key", other, "--config", cfg)
        code, details, _ = srv.call(spec("3.10", "x"))
        tap.check("a runtime without a base: exit 2 with the service's message",
                  rc == 2 and "spec.runtime_version: '3.10' is not supported here" in err and code ==
                  "INVALID_ARGUMENT" and err.split(": ", 1)[1] in details, "%d %s / %s %s" % (rc, err, code, details))
        report = os.path.join(tmp, "report.json")
        rc, out, err = cli("prebuild", "--config", cfg, "--report", report, *paths, other)
        items = {r["name"]: r for r in json.loads(Path(report).read_text())["requests"]} if os.path.exists(report) else {}
        built = {p: items.get(p, {}).get("key") for p in paths}
        tap.check("prebuild --config builds each request on its runtime's base, with the service's key",
                  built == want and all(items[p]["image"] for p in paths), "exit %d %s\n%s" % (rc, err, items))
        tap.check("and a request whose runtime has no base fails alone (exit 1), saying so",
                  rc == 1 and "is not supported here" in (items.get(other, {}).get("error") or ""), items.get(other))
        rc, out, err = cli("key", "--help")
        tap.check("key --help lists --config from the settings table", rc == 0 and "--config FILE" in out, out)
    except Exception:  # noqa: BLE001 - reported as a failure
        tap.check("no exception", False, traceback.format_exc())
    finally:
        if srv:
            rc = srv.stop()
            tap.check("the service exits 0 on SIGTERM", rc == 0, "%s\n%s" % (rc, srv.stderr_tail()))
        shutil.rmtree(tmp, ignore_errors=True)
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
