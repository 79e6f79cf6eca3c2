#!/usr/bin/env bash
# Issue 7: the local scheduler's sandbox start.  Cold: ApplyUdfResource for a
# request never seen (base cached and its layers unpacked, no packages, no
# imports: build, publish, bundle, runc run, Python start) until the sandbox's
# /health answers 1.  Warm: ApplyUdfResource for a request whose sandbox runs
# (the service answers from memory after asking the scheduler if it lives).
# Both from a gRPC client on loopback (Debian's grpcio), median and p95.
# Aim: cold < 1 s, warm < 5 ms.  Peer: the container starts a VLDB 2022 study
# of containerised UDFs measured.  Needs root and runc; the runtime inside the
# base is the TEST DOUBLE of databend_udf (tests/runtime-double).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
. tests/lib/base-image.sh
bin=${UDFB_BIN:-bin/udf-builder}
cold_n=${BENCH_COLD:-15}
warm_n=${BENCH_WARM:-300}
work=$(mktemp -d /tmp/udfb-bench-sandbox.XXXXXX)
chmod 755 "$work"
pid=
cleanup() {
	set +e
	[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	for c in $(runc --root "$work/state/runtime" list -q 2>/dev/null); do runc --root "$work/state/runtime" delete --force "$c"; done
	grep -o " $work/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l
	rm -rf "$work"
}
trap cleanup EXIT
base=$(udfb_base_image)

"$bin" serve --listen 127.0.0.1:0 --admin-listen "" --store "$work/store" --log-level warn --scheduler local \
	--scheduler-opt "state_dir=$work/state" --scheduler-opt max_per_tenant=100 --scheduler-opt max_total=100 \
	--scheduler-opt port_min=23000 --scheduler-opt port_max=23999 \
	--base-image "3=oci:$base:python" >"$work/serve.out" 2>"$work/serve.err" &
pid=$!
for _ in $(seq 200); do [ -s "$work/serve.out" ] && break; sleep 0.05; done
port=$(sed -n 's/.*grpc_port=\([0-9]*\).*/\1/p' "$work/serve.out")
[ -n "$port" ] || { cat "$work/serve.err" >&2; exit 1; }

protoc --proto_path=proto --python_out="$work" proto/udf.proto
/usr/bin/python3 - "$work" "$port" "$cold_n" "$warm_n" >"$work/times" <<'PY'
import glob, json, sys, time, urllib.request, uuid
work, port, cold_n, warm_n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
sys.path.insert(0, work)
import grpc, udf_pb2

ch = grpc.insecure_channel("127.0.0.1:" + port)
grpc.channel_ready_future(ch).result(timeout=30)
apply = ch.unary_unary("/udfproto.UdfService/ApplyUdfResource", request_serializer=lambda m: m.SerializeToString(),
                       response_deserializer=udf_pb2.ApplyUdfResourceResponse.FromString)
md = [("x-databend-tenant", "bench"), ("udf_client_version", "v1")]

def request():
    code = "# %s\ndef f(x):\n    return x + 1\n" % uuid.uuid4().hex
    spec = {"version": 1, "kind": "udf", "language": "python", "handler": "f", "input_types": ["INT"],
            "result_type": "INT", "imports": [], "packages": [], "runtime_version": "3.11", "code": code}
    return udf_pb2.ApplyUdfResourceRequest(spec=json.dumps(spec))

def status_port(endpoint):
    p = int(endpoint.rsplit(":", 1)[1])
    for rec in glob.glob(work + "/state/sandboxes/*/sandbox.json"):
        d = json.load(open(rec))
        if d["udf_port"] == p:
            return d["status_port"]

def health(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/health" % port, timeout=5) as r:
        return r.read() == b"1"

apply(request(), timeout=300, metadata=md)  # unpacks the base's layers once: not measured
for _ in range(cold_n):
    req = request()
    t0 = time.perf_counter()
    r = apply(req, timeout=30, metadata=md)
    sp = status_port(r.endpoint)  # a file read: the port is not in the reply
    t1 = time.perf_counter()
    assert health(sp)
    t2 = time.perf_counter()
    print("cold %.3f" % ((t1 - t0 + t2 - t1) * 1000))
    warm_req = req
for _ in range(20):
    apply(warm_req, timeout=5, metadata=md)
for _ in range(warm_n):
    t0 = time.perf_counter()
    apply(warm_req, timeout=5, metadata=md)
    print("warm %.3f" % ((time.perf_counter() - t0) * 1000))
PY
read -r c50 c95 < <(awk '$1 == "cold" {print $2}' "$work/times" | stats)
read -r w50 w95 < <(awk '$1 == "warm" {print $2}' "$work/times" | stats)
row "local sandbox: cold ApplyUdfResource to /health=1; warm ApplyUdfResource (median/p95 ms, runc $(runc --version | awk 'NR==1 {print $3}'))" \
	"cold $c50/$c95; warm $w50/$w95" "container start, VLDB 2022 UDF study" "70-7000" \
	"$(awk -v a="$c50" 'BEGIN {printf "cold %.2fx its fastest", a / 70}')" "cold < 1000, warm < 5"
