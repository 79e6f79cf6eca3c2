#!/usr/bin/env bash
# Issue: cache-hit ApplyUdfResource calls, driven by h2load at 1, 16 and 256
# concurrent streams, beside an empty unary gRPC C-core handler (the limit)
# in the same run.  Aim: >= 0.8x the empty handler's throughput; p99 < 2 ms
# at 16 streams.  Latencies come from h2load's per-request log.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
. tests/lib/base-image.sh
bin=${UDFB_BIN:-bin/udf-builder}
empty=${UDFB_EMPTY_SERVER:-build/release/bench/empty_server}
requests=${BENCH_REQUESTS:-20000}
work=$(mktemp -d /tmp/udfb-bench-grpc.XXXXXX)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$work"' EXIT
tiny=$(udfb_tiny_image)

# The request body as gRPC frames it: flag byte, 4-byte length, message.
protoc --proto_path=proto --python_out="$work" proto/udf.proto
/usr/bin/python3 - "$work" tests/data/requests/decimal_types.request.json <<'PY'
import json, struct, sys
sys.path.insert(0, sys.argv[1])
import udf_pb2
r = json.load(open(sys.argv[2]))
m = udf_pb2.ApplyUdfResourceRequest(spec=r["spec"]).SerializeToString()
open(sys.argv[1] + "/body", "wb").write(struct.pack(">BI", 0, len(m)) + m)
PY

"$bin" serve --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --store "$work/store" --log-level warn --scheduler template \
	--base-image "3=oci:$tiny:tiny" >"$work/serve.out" 2>"$work/serve.err" &
pids+=($!)
"$empty" "$work/empty.port" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/serve.out" ] && [ -s "$work/empty.port" ] && break; sleep 0.05; done
ours=$(sed -n 's/.*grpc_port=\([0-9]*\).*/\1/p' "$work/serve.out")
admin=$(sed -n 's/.*admin_port=\([0-9]*\).*/\1/p' "$work/serve.out")
limit=$(cat "$work/empty.port")

h2() { # h2() PORT STREAMS LOG: runs h2load, prints req/s
	local c=$(( $2 >= 16 ? 16 : 1 )) m=$(( $2 >= 16 ? $2 / 16 : $2 ))
	[ "$2" -eq 16 ] && c=1 && m=16
	h2load -n "$requests" -c "$c" -m "$m" -d "$work/body" --log-file="$3" \
		-H 'content-type: application/grpc' -H 'te: trailers' -H 'x-databend-tenant: bench' \
		"http://127.0.0.1:$1/udfproto.UdfService/ApplyUdfResource" 2>&1 |
		awk '/^finished in/ {gsub(",", ""); print $4}'
}
pct() { awk '{print $3 / 1000}' "$1" | sort -n | awk '{a[NR]=$1} END {printf "%.3f %.3f\n", a[int(NR*0.5+0.5)], a[int(NR*0.99+0.5)]}'; }
calls_ok() { curl -s "http://127.0.0.1:$admin/metrics" | awk '/^udfb_calls_total\{code="OK"\}/ {print $2}'; }

h2 "$ours" 1 "$work/warm.log" >/dev/null # builds once, then every call is a hit
for streams in 1 16 256; do
	before=$(calls_ok)
	ours_rps=$(h2 "$ours" "$streams" "$work/ours.log")
	after=$(calls_ok)
	# h2load sees HTTP 200 even for a gRPC error: count the OK replies.
	[ $((after - before)) -ge "$requests" ] || { echo "only $((after - before)) of $requests calls were OK" >&2; exit 1; }
	limit_rps=$(h2 "$limit" "$streams" "$work/limit.log")
	read -r o50 o99 < <(pct "$work/ours.log")
	read -r l50 l99 < <(pct "$work/limit.log")
	ratio=$(awk -v a="$ours_rps" -v b="$limit_rps" 'BEGIN {printf "%.2fx", a / b}')
	aim=">= 0.8x"
	[ "$streams" -eq 16 ] && aim=">= 0.8x, p99 < 2 ms"
	row "cache-hit calls, $streams streams (req/s; p50/p99 ms)" "$ours_rps; $o50/$o99" "empty gRPC handler" \
		"$limit_rps; $l50/$l99" "$ratio" "$aim"
done
