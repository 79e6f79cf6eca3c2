#!/usr/bin/env bash
# Issue 17: cost that stays flat as the work grows.  On the Debian Python
# base, UDFs without imports:
#  - prebuild -j 2 into an OCI layout: ms per UDF at 100, 1,000, 10,000
#    (a fresh store each), beside the 100 figure;
#  - one new UDF (`build`, a batch of one) into 30,000 tags, beside 300
#    (the first one parses the index.json this script wrote in Python);
#  - 300 cache hits into a layout holding 30,000 tags, beside 300 tags;
#  - the service: N distinct UDFs over gRPC (4 clients, template scheduler,
#    each a real build into oci:<store>/images), ms per UDF at each N;
#  - a store of 100,000 keys: service start time and resident memory,
#    `cache gc` (a full sweep) time.
# BENCH_SCALE_SIZES (default "100 1000 10000") bounds the run.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
. tests/lib/base-image.sh
bin=${UDFB_BIN:-bin/udf-builder}
fill=${UDFB_FILL_STORE:-build/release/bench/fill_store}
sizes=${BENCH_SCALE_SIZES:-100 1000 10000}
keys=${BENCH_SCALE_KEYS:-100000}
work=$(mktemp -d /tmp/udfb-bench-scale.XXXXXX)
trap 'rm -rf "$work"' EXIT
base="oci:$(udfb_base_image):python"

gen() { # gen N OFFSET
	/usr/bin/python3 - "$1" "$2" <<'PY'
import json, sys
n, off = int(sys.argv[1]), int(sys.argv[2])
for i in range(off, off + n):
    spec = {"version": 1, "kind": "udf", "language": "python", "handler": "f", "input_types": ["INT64"],
            "result_type": "INT64", "imports": [], "packages": [], "runtime_version": "3.12",
            "code": "def f(x):\n    return x + %d\n" % i}
    print(json.dumps({"spec": json.dumps(spec), "imports": []}))
PY
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2fx", a / b}'; }

# ---- prebuild at growing sizes ----
first=
for n in $sizes; do
	gen "$n" 0 >"$work/r.jsonl"
	ms=$(timed "$bin" prebuild "$work/r.jsonl" --base "$base" --dest "oci:$work/out-$n" --store "$work/store-$n" -j 2)
	per=$(awk -v t="$ms" -v n="$n" 'BEGIN {printf "%.2f", t / n}')
	first=${first:-$per}
	row "prebuild -j 2 of $n UDFs into an OCI layout (ms per UDF)" "$per" "the same at ${sizes%% *}" "$first" \
		"$(ratio "$per" "$first")" "flat (<= 1.5x)"
	[ "$n" = "${sizes%% *}" ] || rm -rf "$work/out-$n" "$work/store-$n"
done

# ---- hits and a new UDF into 300 vs 30,000 tags ----
gen 300 100000 >"$work/h.jsonl"
"$bin" prebuild "$work/h.jsonl" --base "$base" --dest "oci:$work/d300" --store "$work/hs" -j 2 >/dev/null 2>&1
cp -al "$work/d300" "$work/d30k"
rm "$work/d30k/index.json"
/usr/bin/python3 - "$work/d300/index.json" "$work/d30k/index.json" <<'PY'
import json, sys
ix = json.load(open(sys.argv[1]))
m = ix["manifests"][0]
for i in range(30000 - len(ix["manifests"])):
    d = dict(m); d["annotations"] = {"org.opencontainers.image.ref.name": "other-%05d" % i}
    ix["manifests"].append(d)
json.dump(ix, open(sys.argv[2], "w"), separators=(",", ":"))
PY
gen 5 200000 >"$work/new.jsonl"
for d in d300 d30k; do
	: >"$work/t-$d"
	for i in 1 2 3 4 5; do
		sed -n "${i}p" "$work/new.jsonl" >"$work/one.json"
		timed "$bin" build "$work/one.json" --base "$base" --dest "oci:$work/$d" --store "$work/hs" >>"$work/t-$d"
	done
	read -r med _ < <(stats <"$work/t-$d")
	eval "new_$d=\$med"
done
row "build of a new UDF into 30,000 tags (median ms of 5; index.json derived at its end)" "$new_d30k" \
	"the same into 300 tags" "$new_d300" "$(ratio "$new_d30k" "$new_d300")" "flat (<= 1.5x)"
row "the first of those into 30,000 tags (ms; index.json written by another tool: parsed once)" \
	"$(head -n 1 "$work/t-d30k")" "the same into 300 tags" "$(head -n 1 "$work/t-d300")" \
	"$(ratio "$(head -n 1 "$work/t-d30k")" "$(head -n 1 "$work/t-d300")")" ""
for d in d300 d30k; do
	ms=$(timed "$bin" prebuild "$work/h.jsonl" --base "$base" --dest "oci:$work/$d" --store "$work/hs" -j 2)
	eval "hit_$d=\$(awk -v t=\"\$ms\" 'BEGIN {printf \"%.2f\", t / 300}')"
done
row "300 cache hits into a layout of 30,000 tags (ms per hit)" "$hit_d30k" "the same into 300 tags" "$hit_d300" \
	"$(ratio "$hit_d30k" "$hit_d300")" "flat (<= 1.5x)"
rm -rf "$work/d300" "$work/d30k"

# ---- the service at growing sizes ----
first=
while read -r n secs per; do
	first=${first:-$per}
	row "service: $n distinct UDFs over gRPC, 4 clients (ms per UDF)" "$per" "the same at ${sizes%% *}" "$first" \
		"$(ratio "$per" "$first")" "flat (<= 1.5x)"
done < <(/usr/bin/python3 bench/scale_service.py apply "$bin" "$base" "$work" $sizes)

# ---- a store of 100,000 keys ----
if [ -x "$fill" ]; then
	manifest=$("$bin" build "$work/one.json" --base "$base" --dest "oci:$work/kout" --store "$work/big" |
		/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["manifest_digest"])')
	fill_ms=$(timed "$fill" "$work/big" "$keys" "$manifest")
	read -r start_ms rss < <(/usr/bin/python3 bench/scale_service.py start "$bin" "$base" "$work/big")
	read -r start0 rss0 < <(/usr/bin/python3 bench/scale_service.py start "$bin" "$base" "$work/store-${sizes%% *}")
	row "service start with $keys keys in the store (ms; RSS MiB)" "$start_ms; $((rss / 1024))" \
		"with ${sizes%% *} keys" "$start0; $((rss0 / 1024))" "$(ratio "$start_ms" "$start0")" "< 1000 ms; < 256 MiB"
	gc_ms=$(timed "$bin" cache gc --store "$work/big")
	row "cache gc (full sweep) at $keys keys (ms; store filled in $fill_ms ms)" "$gc_ms" "" "" "" "< 60000"
fi
