#!/usr/bin/env bash
# Issues 7 and 15: the local scheduler's sandbox start, under each runtime.
# Cold: ApplyUdfResource for a request never seen (base cached and its
# layers unpacked, no packages, no imports: build, publish, bundle, runtime
# start, Python start) until the sandbox's /health answers 1.  Warm:
# ApplyUdfResource for a request whose sandbox runs.  Both from a gRPC client
# on loopback (Debian's grpcio), median and p95, for: runc on the host's
# network (network=host, the peer: the scheduler before issue 15), runc and
# runsc each in a network namespace of its own behind the service's
# forwarder.  Then bytes per second of a large payload echoed by the UDF,
# through the endpoint (forwarder, splice) beside a direct loopback
# connection to the same sandbox from inside its namespace.
# Aims: runsc cold < 500 ms median; runc in a namespace within 1.2x of runc
# on the host; endpoint throughput >= 0.8x direct.  Needs root, runc, runsc;
# the runtime inside the base is the TEST DOUBLE of databend_udf.
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
	for d in "$work"/*/state; do
		for c in $(runc --root "$d/runtime" list -q 2>/dev/null); do runc --root "$d/runtime" delete --force "$c"; done
	done
	grep -o " $work/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l
	rm -rf "$work"
}
trap cleanup EXIT
base=$(udfb_base_image)
protoc --proto_path=proto --python_out="$work" proto/udf.proto

# measure NAME RUNTIME NETWORK [throughput]: prints "cold MS" and "warm MS" lines (and "tput ..." lines)
measure() {
	local name=$1 runtime=$2 network=$3 tput=${4:-}
	mkdir -p "$work/$name"
	"$bin" serve --listen 127.0.0.1:0 --admin-listen "" --store "$work/$name/store" --log-level info --scheduler local \
		--scheduler-opt "state_dir=$work/$name/state" --scheduler-opt "layers_dir=$work/layers" \
		--scheduler-opt max_per_tenant=100 --scheduler-opt max_total=100 \
		--scheduler-opt runtime="$runtime" --scheduler-opt network="$network" \
		--scheduler-opt port_min=23000 --scheduler-opt port_max=23999 \
		--base-image "3=oci:$base:python" >"$work/$name/serve.out" 2>"$work/$name/serve.err" &
	pid=$!
	for _ in $(seq 400); do [ -s "$work/$name/serve.out" ] && break; sleep 0.05; done
	local port
	port=$(sed -n 's/.*grpc_port=\([0-9]*\).*/\1/p' "$work/$name/serve.out")
	[ -n "$port" ] || { cat "$work/$name/serve.err" >&2; exit 1; }
	/usr/bin/python3 - "$work" "$name" "$port" "$cold_n" "$warm_n" "$tput" <<'PY'
import glob, json, os, subprocess, sys, time, urllib.request, uuid
work, name, port, cold_n, warm_n, tput = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
sys.path.insert(0, work)
import grpc, udf_pb2

ch = grpc.insecure_channel("127.0.0.1:" + port)
grpc.channel_ready_future(ch).result(timeout=30)
apply = ch.unary_unary("/udfproto.UdfService/ApplyUdfResource", request_serializer=lambda m: m.SerializeToString(),
                       response_deserializer=udf_pb2.ApplyUdfResourceResponse.FromString)
md = [("x-databend-tenant", "bench"), ("udf_client_version", "v1")]

def request(code=None, handler="f", types=("INT",), result="INT"):
    code = code or "# %s\ndef f(x):\n    return x + 1\n" % uuid.uuid4().hex
    spec = {"version": 1, "kind": "udf", "language": "python", "handler": handler, "input_types": list(types),
            "result_type": result, "imports": [], "packages": [], "runtime_version": "3.11", "code": code}
    return udf_pb2.ApplyUdfResourceRequest(spec=json.dumps(spec))

def record(endpoint):
    p = int(endpoint.rsplit(":", 1)[1])
    for rec in glob.glob(work + "/" + name + "/state/sandboxes/*/sandbox.json"):
        d = json.load(open(rec))
        if d["udf_port"] == p:
            d["dir"] = os.path.dirname(rec)
            return d

def health(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/health" % port, timeout=5) as r:
        return r.read() == b"1"

apply(request(), timeout=300, metadata=md)  # unpacks the base's layers once: not measured
for _ in range(cold_n):
    req = request()
    t0 = time.perf_counter()
    r = apply(req, timeout=60, metadata=md)
    sp = record(r.endpoint)["status_port"]  # a file read: the port is not in the reply
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
if tput:
    # One client program, two paths to the same sandbox: the endpoint (host
    # port, the forwarder) and the sandbox's own port from inside its namespace.
    r = apply(request("def echo(s):\n    return s\n", "echo", ("STRING",), "STRING"), timeout=60, metadata=md)
    rec = record(r.endpoint)
    pid = open(rec["dir"] + "/pid").read().strip()
    client = r'''
import http.client, json, sys, time
host, port, token, mb, rounds = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
body = json.dumps({"function": "echo", "args": ["x" * (mb << 20)]}).encode()
best = 0
for _ in range(rounds):
    c = http.client.HTTPConnection(host, port, timeout=60)
    t0 = time.perf_counter()
    c.request("POST", "/call", body, {"Content-Type": "application/json", "x-authorization": token})
    out = c.getresponse().read()
    dt = time.perf_counter() - t0
    assert len(out) >= len(body) - 64, len(out)
    best = max(best, (len(body) + len(out)) / dt)
    c.close()
print("%.1f" % (best / 1e6))
'''
    token = r.headers["x-authorization"]
    for path, cmd in (("endpoint", []), ("direct", ["nsenter", "--net=/proc/%s/ns/net" % pid])):
        port = int(r.endpoint.rsplit(":", 1)[1]) if path == "endpoint" else 8815
        out = subprocess.run(cmd + ["/usr/bin/python3", "-c", client, "127.0.0.1", str(port), token, "32", "5"],
                             check=True, capture_output=True, text=True).stdout.strip()
        print("tput_%s %s" % (path, out))
PY
	kill -TERM "$pid"
	wait "$pid" || true
	pid=
}

for v in runc:host runc:namespace runsc:namespace; do
	measure "${v/:/-}" "${v%%:*}" "${v##*:}" "$([ "$v" = runc:namespace ] && echo 1)" >"$work/${v/:/-}.times"
done
ms() { awk -v k="$2" '$1 == k {print $2}' "$work/$1.times" | stats; }
read -r h50 h95 < <(ms runc-host cold)
read -r n50 n95 < <(ms runc-namespace cold)
read -r g50 g95 < <(ms runsc-namespace cold)
read -r hw50 hw95 < <(ms runc-host warm)
read -r nw50 nw95 < <(ms runc-namespace warm)
read -r gw50 gw95 < <(ms runsc-namespace warm)
te=$(awk '$1 == "tput_endpoint" {print $2}' "$work/runc-namespace.times")
td=$(awk '$1 == "tput_direct" {print $2}' "$work/runc-namespace.times")
runc_v=$(runc --version | awk 'NR==1 {print $3}')
runsc_v=$(runsc --version | awk 'NR==1 {print $3}')
platform=$(grep -o -- '--platform=[a-z]*' "$work/runsc-namespace/serve.err" | head -1 || true)
row "local sandbox, runc $runc_v, a network namespace each: cold ApplyUdfResource to /health=1; warm (median/p95 ms)" \
	"cold $n50/$n95; warm $nw50/$nw95" "runc on the host's network (same run)" "cold $h50/$h95; warm $hw50/$hw95" \
	"$(awk -v a="$n50" -v b="$h50" 'BEGIN {printf "cold %.2fx", a / b}')" "cold within 1.2x, warm < 5"
row "local sandbox, runsc $runsc_v $platform, a network namespace each: cold; warm (median/p95 ms)" \
	"cold $g50/$g95; warm $gw50/$gw95" "runc on the host's network (same run)" "cold $h50/$h95" \
	"$(awk -v a="$g50" -v b="$h50" 'BEGIN {printf "cold %.2fx", a / b}')" "cold < 500"
# Where a cold start goes, from the service's own log line per start (the
# first start of each run, which unpacks the base's layers, left out):
# image and bundle (read the image, namespace, overlay mount, config.json),
# the runtime's `run` until the sandbox's process started, then until
# /health answered (Python's start and imports, the server binding).
phases() {
	sed -n 's/.*started in [0-9]* ms: image and bundle \([0-9]*\), runtime [^ ]* run \([0-9]*\), then \/health \([0-9]*\).*/\1 \2 \3/p' \
		"$work/$1/serve.err" | tail -n +2 >"$work/$1.phases"
	local k out=
	for k in 1 2 3; do out="$out $(awk -v k="$k" '{print $k}' "$work/$1.phases" | stats | cut -d' ' -f1)"; done
	echo "$out"
}
for v in runc-host runc-namespace runsc-namespace; do
	read -r b r p < <(phases "$v")
	row "local sandbox $v: where a cold start goes (median ms)" "image and bundle $b; runtime run $r; then /health $p" \
		"" "" "" ""
done
row "local sandbox endpoint: 32 MiB echoed by the UDF (MB/s, best of 5, request + reply bytes)" \
	"$te" "the same client on the sandbox's own loopback port, in its namespace" "$td" \
	"$(awk -v a="$te" -v b="$td" 'BEGIN {printf "%.2fx", a / b}')" ">= 0.8x"
