#!/usr/bin/env bash
# udf-builder prebuild: inputs from a directory and a JSON-lines file, j
# builds at once, keys already cached skipped, a JSON report, exit 1 when
# any request fails, --dry-run keys equal to `key`, and --shard I/N
# splitting one list between workers without overlap or gap.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/tap.sh
. tests/lib/base-image.sh
. tests/lib/imports.sh

bin=${UDFB_BIN:?}
work=$(mktemp -d /tmp/udfb-prebuild-test.XXXXXX)
trap 'udfb_imports_stop; rm -rf "$work"' EXIT
base="oci:$(udfb_tiny_image):tiny"
udfb_imports_start "$work"
mkdir -p "$work/in"
for name in decimal_types read_env read_stage_dup_basename read_pkg_zip_whl_egg; do
	udfb_request "$name" "$work/in/$name.request.json"
done
udfb_request missing_import "$work/missing.json"
/usr/bin/python3 - "$work/in/read_env.request.json" "$work/missing.json" >"$work/more.jsonl" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); r["tenant"] = "Acme"
print(json.dumps(r)); print("")
print(json.dumps(json.load(open(sys.argv[2]))))
PY
pre() { "$bin" prebuild "$@" --base "$base" --store "$work/store"; }

pre "$work/in" "$work/more.jsonl" --dest "oci:$work/out" -j 3 --report "$work/report.json" 2>"$work/log"
check_eq "a failed request makes the run exit 1" "$?" 1
check "one line per request off a terminal" bash -c '[ "$(grep -cE "^(built|cached|failed) " "$1")" -eq 6 ]' _ "$work/log"
check "a summary closes the log" grep -qE "^6 requests: [0-9]+ cached, [0-9]+ built, 1 failed in " "$work/log"
check "the failure names the request and the import" grep -q "more.jsonl:3: import '@udf_import_stage/imports/missing.py': HTTP 404" "$work/log"
summary=$(/usr/bin/python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); s=r["summary"]; print(s["total"], s["failed"], len(r["requests"]), all(set(x) >= {"name","key","manifest_digest","cached","duration_s","error"} for x in r["requests"]))' "$work/report.json")
check_eq "the report has every request and the summary" "$summary" "6 1 6 True"
check "a tenant's image gets the service's tag" bash -c 'grep -q "\"acme-[0-9a-f]\{10\}-" "$1"' _ "$work/out/index.json"

pre "$work/in" --dest "oci:$work/out" 2>"$work/log2"
check_eq "a second run exits 0" "$?" 0
check "and finds every key cached" grep -qE "^4 requests: 4 cached, 0 built, 0 failed" "$work/log2"

pre "$work/in" --dry-run >"$work/keys"
check_eq "--dry-run prints a key per request" "$(wc -l <"$work/keys")" 4
check_eq "its keys are those of 'udf-builder key'" "$(grep read_env "$work/keys" | cut -d' ' -f1)" \
	"$("$bin" key "$work/in/read_env.request.json" --base "$base")"
pre "$work/in" "$work/more.jsonl" --dry-run --shard 0/2 >"$work/s0"
pre "$work/in" "$work/more.jsonl" --dry-run --shard 1/2 >"$work/s1"
pre "$work/in" "$work/more.jsonl" --dry-run >"$work/all"
check "two shards split the list without overlap or gap" \
	bash -c 'diff <(sort "$1" "$2") <(sort "$3") >/dev/null && [ -z "$(comm -12 <(sort "$1") <(sort "$2"))" ]' _ "$work/s0" "$work/s1" "$work/all"
pre "$work/in" --dry-run --shard 2/2 2>"$work/err" >/dev/null
check_eq "a bad shard exits 2" "$?" 2
check "and says what it expects" grep -q "^udf-builder: --shard '2/2': expected I/N" "$work/err"
# Two tenants, one location and tag (a tag can be a mere length), different bytes.
printf 'alice' >"$work/srv/alice.txt"
printf 'steal' >"$work/srv/mallory.txt"
/usr/bin/python3 - "$IMPORTS_PORT" >"$work/tenants.jsonl" <<'PY'
import json, sys
for tenant, path in (("alice", "alice.txt"), ("mallory", "mallory.txt")):
    spec = {"version": 1, "kind": "udf", "language": "python", "handler": "f", "input_types": [], "result_type": "INT",
            "imports": ["@udf_import_stage/secret.txt"], "packages": [], "runtime_version": "3.12", "code": "def f():\n    return 1\n"}
    print(json.dumps({"tenant": tenant, "spec": json.dumps(spec), "imports": [{"location": "@udf_import_stage/secret.txt",
          "url": "http://127.0.0.1:%s/%s?sig=x" % (sys.argv[1], path), "tag": "5"}]}))
PY
pre "$work/tenants.jsonl" --dest "oci:$work/tout" -j 1 --report "$work/treport.json" 2>/dev/null
check "two tenants with one location and tag never share a cache entry" /usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))["requests"]
assert len(r) == 2 and not r[0]["error"] and not r[1]["error"], r
assert r[0]["key"] != r[1]["key"] and r[0]["manifest_digest"] != r[1]["manifest_digest"], r
assert not r[1]["cached"], r' "$work/treport.json"

pre "$work/nope" --dest "oci:$work/out" 2>"$work/err" >/dev/null
check "a missing input is named" grep -q "^udf-builder: prebuild input $work/nope: no such file" "$work/err"

tap_done
