#!/usr/bin/env bash
# udf-builder prebuild at batch size against a real registry (Debian's
# docker-registry on loopback): the shared vectors (add_one_helper's package
# from the test wheels) plus 200 generated requests are all built and
# pushed; a run killed midway resumes (what it finished is a hit); a third
# run is all hits; --shard 0/2 and 1/2 cover the list exactly once; the
# report lists every request.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/tap.sh
. tests/lib/base-image.sh
. tests/lib/imports.sh
. tests/lib/registry.sh

bin=${UDFB_BIN:?}
work=$(mktemp -d /tmp/udfb-prebuild-reg.XXXXXX)
trap 'udfb_imports_stop; udfb_registry_stop; rm -rf "$work"' EXIT
base="oci:$(udfb_tiny_image):tiny"
udfb_imports_start "$work"
udfb_registry_start || { not_ok "a loopback registry starts"; tap_done; exit 1; }
/usr/bin/python3 tests/lib/wheels.py build "$work/wheels" >/dev/null
export UDFB_INDEX_URL="$work/wheels"

mkdir -p "$work/in"
vectors="decimal_types read_env read_stage_dup_basename read_pkg_zip_whl_egg add_one_helper"
for name in $vectors; do
	udfb_request "$name" "$work/in/$name.request.json"
done
/usr/bin/python3 - >"$work/generated.jsonl" <<'PY'
import json
for i in range(200):
    spec = {"version": 1, "kind": "udf", "language": "python", "handler": "f%d" % i, "input_types": ["INT"],
            "result_type": "INT", "imports": [], "packages": ["alpha"] if i % 50 == 0 else [],
            "runtime_version": "3.12", "code": "def f%d(x):\n    return x + %d\n" % (i, i)}
    print(json.dumps({"spec": json.dumps(spec), "imports": []}))
PY
total=205
dest="docker://$REGISTRY/udfb/prebuilt"
pre() { "$bin" prebuild "$work/in" "$work/generated.jsonl" --base "$base" --dest "$dest" --store "$work/store" -j 2 "$@"; }

# A run killed midway (kill -9 once a fifth is built), then resumed.
pre --report "$work/r1.json" 2>"$work/log1" &
pid=$!
for _ in $(seq 600); do
	[ "$(grep -c '^built ' "$work/log1")" -ge 40 ] && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
done1=$(grep -c '^built ' "$work/log1")
check "the first run is killed midway ($done1 of $total built)" [ "$done1" -ge 1 ] && [ "$done1" -lt "$total" ]

pre --report "$work/r2.json" 2>"$work/log2"
check_eq "the resumed run exits 0" "$?" 0
check "it builds the rest and finds what the killed run finished" grep -qE "^$total requests: [1-9][0-9]* cached, [0-9]+ built, 0 failed" "$work/log2"
check "its report lists every request once, without errors" /usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
names = [x["name"] for x in r["requests"]]
assert len(names) == int(sys.argv[2]) == len(set(names)), len(names)
assert all(not x["error"] and x["manifest_digest"] for x in r["requests"]), [x for x in r["requests"] if x["error"]][:3]
assert r["summary"]["failed"] == 0' "$work/r2.json" "$total"

tags=$(curl -sf "http://$REGISTRY/v2/udfb/prebuilt/tags/list" | /usr/bin/python3 -c 'import json, sys; print(len(json.load(sys.stdin)["tags"]))')
check_eq "the registry holds an image per request" "$tags" "$total"

pre 2>"$work/log3"
check "a third run is all hits" grep -qE "^$total requests: $total cached, 0 built, 0 failed" "$work/log3"

pre --dry-run >"$work/all" 2>/dev/null
pre --dry-run --shard 0/2 >"$work/s0" 2>/dev/null
pre --dry-run --shard 1/2 >"$work/s1" 2>/dev/null
check "--shard 0/2 and 1/2 cover the list exactly once" bash -c '
	[ "$(wc -l <"$1")" -eq "$4" ] && [ "$(sort "$2" "$3" | uniq -d | wc -l)" -eq 0 ] &&
	diff <(sort "$1") <(sort "$2" "$3") >/dev/null' _ "$work/all" "$work/s0" "$work/s1" "$total"

tap_done
