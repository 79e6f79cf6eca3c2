#!/usr/bin/python3
"""Scale benchmark, service side (run by bench/scale_vs_size.sh).

  scale_service.py apply BIN BASE_REF WORK N...
      for each N: a fresh store, `serve --scheduler template`, N distinct
      UDFs applied over gRPC by 4 client threads (every call a real build
      into the default destination oci:<store>/images); prints
      "N total_s ms_per_udf" per N.
  scale_service.py start BIN BASE_REF STORE
      starts `serve` on an existing store, prints "start_ms rss_kib" (from
      exec to the "serving" line; VmRSS then).
"""

import concurrent.futures
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APPLY = "/udfproto.UdfService/ApplyUdfResource"


def load_proto(tmp):
    out = os.path.join(tmp, "pb")
    os.makedirs(out, exist_ok=True)
    subprocess.run(["protoc", "--python_out=" + out, "--proto_path=proto", "proto/udf.proto"], cwd=REPO, check=True)
    sys.path.insert(0, out)
    import udf_pb2
    return udf_pb2


def serve(binary, base, store, workdir):
    env = {k: v for k, v in os.environ.items() if not k.startswith("UDFB_")}
    cmd = [binary, "serve", "--listen", "127.0.0.1:0", "--admin-listen", "", "--store", store,
           "--base-image", "3=" + base, "--scheduler", "template", "--log-level", "warn", "--build-workers", "2"]
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(os.path.join(workdir, "serve.log"), "wb"), env=env)
    line = p.stdout.readline().decode()
    start_ms = (time.monotonic() - t0) * 1e3
    m = re.match(r"serving grpc_port=(\d+)", line)
    if not m:
        p.kill()
        raise SystemExit("serve did not start: %r" % line)
    return p, int(m.group(1)), start_ms


def rss_kib(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def stop(p):
    p.terminate()
    try:
        p.wait(60)
    except subprocess.TimeoutExpired:
        p.kill()


def request(pb, i):
    spec = {"version": 1, "kind": "udf", "language": "python", "handler": "f", "input_types": ["INT64"],
            "result_type": "INT64", "imports": [], "packages": [], "runtime_version": "3",
            "code": "def f(x):\n    return x + %d\n" % i}
    return pb.ApplyUdfResourceRequest(spec=json.dumps(spec, separators=(",", ":")))


def apply_many(binary, base, work, n, pb):
    import grpc
    store = tempfile.mkdtemp(prefix="store.", dir=work)
    p, port, _ = serve(binary, base, store, work)
    try:
        ch = grpc.insecure_channel("127.0.0.1:%d" % port)
        grpc.channel_ready_future(ch).result(timeout=30)
        call = ch.unary_unary(APPLY, request_serializer=lambda m: m.SerializeToString(),
                              response_deserializer=pb.ApplyUdfResourceResponse.FromString)
        reqs = [request(pb, i) for i in range(n)]
        errors = []
        lock = threading.Lock()

        def one(r):
            md = [("x-databend-tenant", "bench"), ("x-databend-user", "'root'@'%'"),
                  ("x-databend-query-id", str(uuid.uuid4())), ("udf_client_version", "v1")]
            try:
                call(r, timeout=300, metadata=md)
            except grpc.RpcError as e:
                with lock:
                    errors.append(e.details())

        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(4) as ex:
            list(ex.map(one, reqs))
        secs = time.monotonic() - t0
        ch.close()
        if errors:
            raise SystemExit("%d calls failed, first: %s" % (len(errors), errors[0]))
        return secs
    finally:
        stop(p)
        subprocess.run(["rm", "-rf", store])


def main():
    mode, binary, base = sys.argv[1], sys.argv[2], sys.argv[3]
    if mode == "start":
        p, _, start_ms = serve(binary, base, sys.argv[4], os.path.dirname(sys.argv[4]))
        time.sleep(0.2)
        print("%.1f %d" % (start_ms, rss_kib(p.pid)))
        stop(p)
        return
    work = sys.argv[4]
    pb = load_proto(work)
    for n in map(int, sys.argv[5:]):
        secs = apply_many(binary, base, work, n, pb)
        print("%d %.2f %.2f" % (n, secs, secs * 1e3 / n), flush=True)


if __name__ == "__main__":
    main()
