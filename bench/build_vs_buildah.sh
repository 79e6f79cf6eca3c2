#!/usr/bin/env bash
# Issue: a native build of a request without packages on a base already
# present, beside `buildah bud` of the Dockerfile we generate for the same
# request, in the same run.  The first row's builds each use a fresh store
# (a real build, not a cache hit; the imports fetched over HTTP); the next
# two build a new UDF into a store that holds the base, as buildah's
# storage does.  Aim: at least 200 times faster (median; issue 17).
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

# BENCH_BASELINE_BIN=OTHER_BINARY times another build of ours (main's, say)
# in the same loop, alternating which goes first: on a shared machine the
# load moves between two loops run one after the other, not within one.
baseline=${BENCH_BASELINE_BIN:-}
one() { # one BIN STORE OUTFILE
	timed "$1" build "$work/req.json" --base "$base" --dest "oci:$work/out-$(basename "$1"):x" --store "$2" >>"$3"
	rm -rf "$2"
}
: >"$work/ours"
: >"$work/baseline"
for i in $(seq "$runs"); do
	if [ -n "$baseline" ] && [ $((i % 2)) -eq 0 ]; then one "$baseline" "$work/bstore-$i" "$work/baseline"; fi
	one "$bin" "$work/store-$i" "$work/ours"
	if [ -n "$baseline" ] && [ $((i % 2)) -eq 1 ]; then one "$baseline" "$work/bstore-$i" "$work/baseline"; fi
done

BA=(buildah --root "$work/root" --runroot "$work/runroot" --storage-driver vfs)
skopeo copy -q "$base" "containers-storage:[vfs@$work/root+$work/runroot]localhost/python:python" >/dev/null
"$bin" dockerfile "$work/req.json" --base "$base" --out "$work/ctx"
for i in $(seq "$peer_runs"); do
	timed "${BA[@]}" bud --isolation chroot --pull=never -q -t "localhost/bench:$i" "$work/ctx"
	"${BA[@]}" rmi -f "localhost/bench:$i" >/dev/null 2>&1 || true
done >"$work/peer"

# A store that already holds the base (and, second row, the request's
# imports), as buildah's storage holds the base: each sample is a new UDF
# (its code differs), a real build, one process each.  The second UDF has
# no imports: its peer is buildah bud of its own Dockerfile.
variant() { # variant N KEEP_IMPORTS(0|1) OUT
	/usr/bin/python3 - "$work/req.json" "$@" <<'PY2'
import json, sys
req = json.load(open(sys.argv[1]))
spec = json.loads(req["spec"])
spec["code"] += "\n# variant %s\n" % sys.argv[2]
if sys.argv[3] == "0":
    spec["imports"], req["imports"] = [], []
req["spec"] = json.dumps(spec)
json.dump(req, open(sys.argv[4], "w"))
PY2
}
warm="$work/store-warm"
"$bin" build "$work/req.json" --base "$base" --dest "oci:$work/out-warm:x" --store "$warm" >/dev/null
: >"$work/warm-imports"
: >"$work/warm-plain"
for i in $(seq "$runs"); do
	variant "$i" 1 "$work/wi-$i.json"
	variant "$i" 0 "$work/wp-$i.json"
	timed "$bin" build "$work/wi-$i.json" --base "$base" --dest "oci:$work/out-warm:x" --store "$warm" >>"$work/warm-imports"
	timed "$bin" build "$work/wp-$i.json" --base "$base" --dest "oci:$work/out-warm:x" --store "$warm" >>"$work/warm-plain"
done
"$bin" dockerfile "$work/wp-1.json" --base "$base" --out "$work/ctx-plain"
for i in $(seq "$peer_runs"); do
	timed "${BA[@]}" bud --isolation chroot --pull=never -q -t "localhost/bench-plain:$i" "$work/ctx-plain"
	"${BA[@]}" rmi -f "localhost/bench-plain:$i" >/dev/null 2>&1 || true
done >"$work/peer-plain"

read -r ours_med ours_p95 < <(stats <"$work/ours")
read -r peer_med peer_p95 < <(stats <"$work/peer")
read -r wi_med wi_p95 < <(stats <"$work/warm-imports")
read -r wp_med wp_p95 < <(stats <"$work/warm-plain")
read -r pp_med pp_p95 < <(stats <"$work/peer-plain")
ratio=$(awk -v a="$peer_med" -v b="$ours_med" 'BEGIN {printf "%.0fx", a / b}')
row "build, no packages, python base present, fresh store: imports over HTTP (median ms; p95)" "$ours_med; $ours_p95" "buildah bud" "$peer_med; $peer_p95" "$ratio faster" ">= 200x faster (issue 17)"
row "a new UDF, store holding the base and the 5 imports (median ms; p95)" "$wi_med; $wi_p95" "buildah bud" "$peer_med; $peer_p95" \
	"$(awk -v a="$peer_med" -v b="$wi_med" 'BEGIN {printf "%.0fx faster", a / b}')" ">= 200x faster (issue 17)"
row "a new UDF without imports, store holding the base (median ms; p95)" "$wp_med; $wp_p95" "buildah bud (its Dockerfile)" "$pp_med; $pp_p95" \
	"$(awk -v a="$pp_med" -v b="$wp_med" 'BEGIN {printf "%.0fx faster", a / b}')" ">= 200x faster (issue 17)"
if [ -n "$baseline" ]; then
	read -r base_med base_p95 < <(stats <"$work/baseline")
	row "the same build by $baseline, interleaved (median ms; p95)" "$base_med; $base_p95" "ours" "$ours_med; $ours_p95" \
		"$(awk -v a="$base_med" -v b="$ours_med" 'BEGIN {printf "%.2fx", a / b}')" "(before/after)"
fi

# Where a CLI build's time goes: a process that only loads our libraries
# (`version`), and the same kind of build inside a process already running,
# as the service and `prebuild` do it: N such UDFs (the code differs, the
# imports are the same), one at a time, into a fresh store.
for i in $(seq "$runs"); do timed "$bin" version; done >"$work/start"
read -r start_med _ < <(stats <"$work/start")
n=${BENCH_INPROC_UDFS:-40}
/usr/bin/python3 - "$work/req.json" "$n" >"$work/many.jsonl" <<'PY'
import json, sys
req = json.load(open(sys.argv[1]))
for i in range(int(sys.argv[2])):
    spec = json.loads(req["spec"])
    spec["code"] += "\n# variant %d\n" % i
    print(json.dumps(dict(req, spec=json.dumps(spec))))
PY
ms=$(timed "$bin" prebuild "$work/many.jsonl" --base "$base" --dest "oci:$work/many:x" --store "$work/store-many" -j 1)
per=$(awk -v t="$ms" -v n="$n" 'BEGIN {printf "%.2f", t / n}')
row "process start alone: udf-builder version (median ms)" "$start_med" "the CLI build above" "$ours_med" \
	"$(awk -v a="$start_med" -v b="$ours_med" 'BEGIN {printf "%.0f%% of it", 100 * a / b}')" "(bounds the CLI build)"
row "the same build in a running process: prebuild -j 1 of $n UDFs (ms per UDF)" "$per" "buildah bud" "$peer_med" \
	"$(awk -v a="$peer_med" -v b="$per" 'BEGIN {printf "%.0fx faster", a / b}')" ">= 200x faster (issue 17)"
