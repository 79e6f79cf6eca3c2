#!/usr/bin/env bash
# Issue: a native build of a request without packages on a base already
# present, beside `buildah bud` of the Dockerfile we generate for the same
# request, in the same run.  Each of our builds uses a fresh store (a real
# build, not a cache hit).  Aim: at least 200 times faster (median; issue 17).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
. tests/lib/base-image.sh
. tests/lib/imports.sh
bin=${UDFB_BIN:-bin/udf-builder}
runs=${BENCH_RUNS:-15}
peer_runs=${BENCH_PEER_RUNS:-5}
work=$(mktemp -d /tmp/udfb-bench.XXXXXX)
trap 'udfb_imports_stop; rm -rf "$work"' EXIT
base_dir=$(udfb_base_image)
base="oci:$base_dir:python"
udfb_imports_start "$work"
udfb_request read_stage_dup_basename "$work/req.json"

for i in $(seq "$runs"); do
	timed "$bin" build "$work/req.json" --base "$base" --dest "oci:$work/out:x" --store "$work/store-$i"
	rm -rf "$work/store-$i"
done >"$work/ours"

BA=(buildah --root "$work/root" --runroot "$work/runroot" --storage-driver vfs)
skopeo copy -q "$base" "containers-storage:[vfs@$work/root+$work/runroot]localhost/python:python" >/dev/null
"$bin" dockerfile "$work/req.json" --base "$base" --out "$work/ctx"
for i in $(seq "$peer_runs"); do
	timed "${BA[@]}" bud --isolation chroot --pull=never -q -t "localhost/bench:$i" "$work/ctx"
	"${BA[@]}" rmi -f "localhost/bench:$i" >/dev/null 2>&1 || true
done >"$work/peer"

read -r ours_med ours_p95 < <(stats <"$work/ours")
read -r peer_med peer_p95 < <(stats <"$work/peer")
ratio=$(awk -v a="$peer_med" -v b="$ours_med" 'BEGIN {printf "%.0fx", a / b}')
row "build, no packages, python base present (median ms; p95)" "$ours_med; $ours_p95" "buildah bud" "$peer_med; $peer_p95" "$ratio faster" ">= 200x faster (issue 17)"
