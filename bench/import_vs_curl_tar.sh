#!/usr/bin/env bash
# Issue: fetch plus layer of a 256 MiB import from a loopback server, beside
# `curl -o` then `tar --sort=name --mtime=@0 --owner=0 --group=0 -c | gzip -n`
# of the same file, in the same run.  Aim: no slower than that pipeline;
# peak memory under 64 MiB whatever the import size.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
. tests/lib/base-image.sh
bin=${UDFB_BIN:-bin/udf-builder}
mib=${BENCH_IMPORT_MIB:-256}
runs=${BENCH_RUNS:-3}
work=$(mktemp -d /tmp/udfb-bench-import.XXXXXX)
trap 'kill $srv 2>/dev/null; rm -rf "$work"' EXIT
tiny=$(udfb_tiny_image)
mkdir -p "$work/srv"
# Incompressible-ish but reproducible content: gzip must really work.
head -c $((mib << 20)) /dev/urandom >"$work/srv/big.bin"
coproc SRV { exec /usr/bin/python3 tests/lib/http_server.py "$work/srv"; }
srv=$SRV_PID
read -r port <&"${SRV[0]}"
url="http://127.0.0.1:$port/big.bin?X-Amz-Signature=bench"
size=$(stat -c %s "$work/srv/big.bin")

for i in $(seq "$runs"); do
	/usr/bin/python3 - "$work/req$i.json" "$url" "$size" "$i" <<'PY'
import json, sys
spec = {"version": 1, "kind": "udf", "language": "python", "handler": "f", "input_types": [], "result_type": "INT",
        "imports": ["@s/big.bin"], "packages": [], "runtime_version": "3.12", "code": "def f():\n    return %s\n" % sys.argv[4]}
json.dump({"spec": json.dumps(spec), "imports": [{"location": "@s/big.bin", "url": sys.argv[2], "tag": "run%s" % sys.argv[4]}]}, open(sys.argv[1], "w"))
PY
	/usr/bin/time -f "%e %M" -o "$work/ours.time" "$bin" build "$work/req$i.json" --base "oci:$tiny:tiny" \
		--dest "oci:$work/out" --store "$work/store-$i" --imports-allow 127.0.0.1 >/dev/null
	cat "$work/ours.time" >>"$work/ours"
	rm -rf "$work/store-$i" "$work/out"
	/usr/bin/time -f "%e %M" -o "$work/peer.time" bash -c "
		curl -sf -o '$work/dl/big.bin' --create-dirs '$url' &&
		tar --sort=name --mtime=@0 --owner=0 --group=0 -C '$work/dl' -c big.bin | gzip -n >'$work/layer.tar.gz'"
	cat "$work/peer.time" >>"$work/peer"
	rm -rf "$work/dl" "$work/layer.tar.gz"
done
read -r ours_med _ < <(awk '{print $1 * 1000}' "$work/ours" | stats)
read -r peer_med _ < <(awk '{print $1 * 1000}' "$work/peer" | stats)
ours_rss=$(awk '$2 > m {m = $2} END {printf "%.1f", m / 1024}' "$work/ours")
ratio=$(awk -v a="$peer_med" -v b="$ours_med" 'BEGIN {printf "%.2fx", a / b}')
row "fetch + layer of a ${mib} MiB import (median ms; peak RSS MiB)" "$ours_med; $ours_rss MiB" \
	"curl -o + tar | gzip -n" "$peer_med" "$ratio faster" ">= 1x; RSS < 64 MiB"
