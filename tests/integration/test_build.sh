#!/usr/bin/env bash
# The native build end to end with the real binary: every request without
# packages builds; umoci and skopeo (independent readers) accept the image;
# /app holds what the runtime contract says; the digest is the same bit for
# bit whatever the cwd, umask, TZ, locale or store; errors are one line,
# name what failed, never show a URL signature, and exit 2 for bad input.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/tap.sh
. tests/lib/base-image.sh
. tests/lib/imports.sh

bin=${UDFB_BIN:?}
work=$(mktemp -d /tmp/udfb-build-test.XXXXXX)
trap 'udfb_imports_stop; rm -rf "$work"' EXIT
tiny=$(udfb_tiny_image) || { echo "not ok 1 - tiny base image"; exit 1; }
base="oci:$tiny:tiny"
udfb_imports_start "$work"

build() { # build NAME STORE DEST [extra env...]
	local name=$1 store=$2 dest=$3
	"$bin" build "$work/$name.json" --base "$base" --dest "$dest" --store "$store"
}

json_get() { /usr/bin/python3 -c 'import json,sys; v=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

unpacked_file() { # unpacked_file LAYOUT:TAG PATH
	local b="$work/unpack-$RANDOM"
	umoci unpack --rootless --image "$1" "$b" >/dev/null 2>&1 && cat "$b/rootfs/$2"
	rm -rf "$b"
}

for name in decimal_types read_env add_one_helper read_pkg_zip_whl_egg read_stage_dup_basename missing_import numpy_plus_one; do
	udfb_request "$name" "$work/$name.json"
done

# --- every request without packages builds and reads back ---
for name in decimal_types read_env read_pkg_zip_whl_egg read_stage_dup_basename; do
	out=$(build "$name" "$work/store" "oci:$work/out:$name" 2>"$work/err") ; rc=$?
	check "$name: builds (exit $rc: $(head -c 300 "$work/err"))" [ $rc -eq 0 ]
	digest=$(echo "$out" | json_get 'v["manifest_digest"]')
	key=$(echo "$out" | json_get 'v["key"]')
	check_eq "$name: key equals 'udf-builder key --base'" "$key" "$("$bin" key "$work/$name.json" --base "$base")"
	check_eq "$name: image names the destination and digest" "$(echo "$out" | json_get 'v["image"]')" "oci:$work/out:$name@$digest"
	check_eq "$name: skopeo reads the manifest digest" \
		"$(skopeo inspect "oci:$work/out:$name" 2>/dev/null | json_get 'v["Digest"]')" "$digest"
	b="$work/bundle-$name"
	check "$name: umoci unpacks it (checks every diff_id)" quiet umoci unpack --rootless --image "$work/out:$name" "$b"
	spec_code=$(/usr/bin/python3 -c 'import json,sys; print(json.loads(json.load(open(sys.argv[1]))["spec"])["code"], end="")' "$work/$name.json")
	check_eq "$name: /app/udf.py is the spec's code" "$(cat "$b/rootfs/app/udf.py")" "$spec_code"
	check "$name: /app/server.py is the stub" cmp -s "$b/rootfs/app/server.py" templates/server.py
	check_eq "$name: /app/udf.json names the handler" "$(json_get 'v["handler"]' <"$b/rootfs/app/udf.json")" \
		"$(/usr/bin/python3 -c 'import json,sys; print(json.loads(json.load(open(sys.argv[1]))["spec"])["handler"])' "$work/$name.json")"
	check "$name: /app/imports exists" [ -d "$b/rootfs/app/imports" ]
done

b="$work/bundle-read_stage_dup_basename/rootfs/app/imports"
check_eq "imports are flattened by basename" "$(cd "$b" && ls | tr '\n' ' ')" "data.txt dup.txt extra.txt helper.py "
check_eq "the last import with a basename wins" "$(cat "$b/dup.txt")" "dup_b"
check "zip/whl/egg imports are kept as files" cmp -s "$work/bundle-read_pkg_zip_whl_egg/rootfs/app/imports/lib.whl" "$work/srv/imports/lib.whl"
cfg=$(skopeo inspect --config "oci:$work/out:read_env" 2>/dev/null)
check_eq "the image runs the stub as a non-root user in /app" \
	"$(echo "$cfg" | json_get '(v["config"]["User"], v["config"]["WorkingDir"], v["config"]["Cmd"][-1])')" \
	"('65534:65534', '/app', '/app/server.py')"

# --- determinism: same inputs, same digest, whatever the environment ---
ref=$(build read_stage_dup_basename "$work/store" "oci:$work/out:x" | json_get 'v["manifest_digest"]')
mkdir -p "$work/elsewhere"
sed "s#X-Amz-Signature=0f3a9c#X-Amz-Signature=ffff01#g" "$work/read_stage_dup_basename.json" >"$work/resigned.json"
other=$(cd "$work/elsewhere" && umask 077 && TZ=Asia/Kolkata LC_ALL=C LANG=C "$bin" build "$work/resigned.json" \
	--base "$base" --dest "oci:$work/det-a" --store "$work/store-a" | json_get 'v["manifest_digest"]')
check_eq "a fresh store, another cwd, umask, TZ, locale and presigned URL give the same digest" "$other" "$ref"
other=$(cd / && umask 022 && TZ=UTC LC_ALL=C.UTF-8 "$bin" build "$work/read_stage_dup_basename.json" \
	--base "$base" --dest "oci:$work/det-b" --store "$work/store-b" | json_get 'v["manifest_digest"]')
check_eq "a second fresh store gives the same digest" "$other" "$ref"
check "the two stores hold the same blobs" diff -r "$work/store-a/blobs" "$work/store-b/blobs"
again=$(build read_stage_dup_basename "$work/store" "oci:$work/out:again")
check_eq "a second build of a key is a cache hit" "$(echo "$again" | json_get '(v["cached"], v["manifest_digest"])')" "(True, '$ref')"
untagged=$(build decimal_types "$work/store" "oci:$work/untagged" | json_get 'v["image"]')
key=$("$bin" key "$work/decimal_types.json" --base "$base")
check "an untagged destination is tagged by the key" [ "${untagged%@*}" = "oci:$work/untagged:udf-${key#sha256:}" ]

# --- a layer whose tar the store has seen is not compressed again ---
/usr/bin/python3 - "$work/read_stage_dup_basename.json" "$work/recode.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); s = json.loads(r["spec"]); s["code"] += "\n# edited\n"
r["spec"] = json.dumps(s); json.dump(r, open(sys.argv[2], "w"))
PY
UDFB_LOG_LEVEL=debug "$bin" build "$work/recode.json" --base "$base" --dest "oci:$work/out:recode" --store "$work/store" \
	>"$work/recode.out" 2>"$work/recode.err"
imports_layer=$(json_get 'v["layers"][-2]["digest"]' <"$work/recode.out")
check_eq "new code with the same imports reuses the compressed imports layer" \
	"$(grep -c "reused blob $imports_layer" "$work/recode.err")" 1
check "and the stub layer" grep -q "reused blob $(json_get 'v["layers"][-3]["digest"]' <"$work/recode.out")" "$work/recode.err"

# --- errors ---
err_of() { "$@" 2>&1 >/dev/null; }
msg=$(err_of build missing_import "$work/store" "oci:$work/out:missing"); rc=$?
build missing_import "$work/store" "oci:$work/out:missing" >/dev/null 2>&1; rc=$?
check_eq "a 404 import exits 2" "$rc" 2
check_eq "its error is one line naming the import and the status" "$msg" \
	"udf-builder: import '@udf_import_stage/imports/missing.py': HTTP 404"
check "no URL signature in the error" bash -c '! grep -q "0f3a9c\|X-Amz" <<<"$1"' _ "$msg"
mkdir -p "$work/no-wheels"
UDFB_INDEX_URL="$work/no-wheels" build numpy_plus_one "$work/store" "oci:$work/out:numpy" >/dev/null 2>"$work/err"; rc=$?
check "a package no index has fails in one line naming spec.packages and it" \
	bash -c '[ "$1" -ne 0 ] && [ $(wc -l <"$2") -eq 1 ] && grep -q "^udf-builder: spec.packages: .*numpy" "$2"' _ "$rc" "$work/err"
/usr/bin/python3 - "$work/decimal_types.json" "$work/bad.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); s = json.loads(r["spec"]); s["handler"] = "os.system"
r["spec"] = json.dumps(s); json.dump(r, open(sys.argv[2], "w"))
PY
msg=$(err_of "$bin" build "$work/bad.json" --base "$base" --dest "oci:$work/out:bad" --store "$work/store"); rc=$?
"$bin" build "$work/bad.json" --base "$base" --dest "oci:$work/out:bad" --store "$work/store" >/dev/null 2>&1; rc=$?
check_eq "a bad handler exits 2" "$rc" 2
check_eq "and its error names the file and the field" "$msg" "udf-builder: $work/bad.json: spec.handler: 'os.system' is not a Python identifier"
"$bin" build "$work/nope.json" --base "$base" --dest "oci:$work/x" --store "$work/store" >/dev/null 2>&1
check_eq "a missing request file exits 2" "$?" 2
"$bin" build "$work/decimal_types.json" --base "oci:$work/no-such-layout:tiny" --dest "oci:$work/x" --store "$work/store" 2>"$work/err" >/dev/null
check "a missing base names it" grep -q "^udf-builder: base image oci:$work/no-such-layout:tiny: " "$work/err"

# --- an import named "..", "." or "" cannot escape /app/imports ---
/usr/bin/python3 - "$work/decimal_types.json" "$work/escape.json" "$IMPORTS_PORT" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); s = json.loads(r["spec"])
locs = ["@s/imports/..", "@s/imports/.", "@s/imports/", "@s/imports/helper.py"]
s["imports"] = locs; r["spec"] = json.dumps(s)
r["imports"] = [{"location": l, "url": "http://127.0.0.1:%s/imports/helper.py?sig=x" % sys.argv[3], "tag": "t%d" % i} for i, l in enumerate(locs)]
json.dump(r, open(sys.argv[2], "w"))
PY
build escape "$work/store" "oci:$work/out:escape" >/dev/null 2>"$work/err"
b="$work/bundle-escape"
umoci unpack --rootless --image "$work/out:escape" "$b" >/dev/null 2>&1
check_eq "'..', '.' and '' become import_<i> inside /app/imports" "$(cd "$b/rootfs/app/imports" 2>/dev/null && ls | tr '\n' ' ')" \
	"helper.py import_0 import_1 import_2 "

# --- the store ---
check "cache verify passes on the store" quiet "$bin" cache verify --store "$work/store"
victim=$(ls "$work/store/blobs/sha256" | head -n 1)
chmod u+w "$work/store/blobs/sha256/$victim"
echo corrupt >>"$work/store/blobs/sha256/$victim"
"$bin" cache verify --store "$work/store" >"$work/verify" 2>&1; rc=$?
check "cache verify finds a corrupt blob and exits 1" bash -c '[ "$1" -eq 1 ] && grep -q "blob sha256:$2: corrupt" "$3"' _ "$rc" "$victim" "$work/verify"

# --- the Dockerfile ---
"$bin" dockerfile "$work/read_stage_dup_basename.json" --base "$base" --out "$work/ctx" 2>"$work/err"
check "dockerfile writes a context" [ -f "$work/ctx/Dockerfile" ] && [ -f "$work/ctx/imports/dup.txt" ] && [ -f "$work/ctx/udf.py" ]
digest=$(udfb_oci_digest "$tiny" tiny)
check "FROM pins the base by digest" grep -qx "FROM localhost/tiny@$digest" "$work/ctx/Dockerfile"
check "no user text in any instruction" bash -c '! grep -q "read_stage\|helper\|dup" "$1"' _ "$work/ctx/Dockerfile"
"$bin" dockerfile "$work/add_one_helper.json" --base "$base" --out "$work/ctx2" 2>"$work/err"
check_eq "requirements are written to a file, not to an instruction" "$(cat "$work/ctx2/requirements.txt" 2>/dev/null)" "humanize==4.9.0"
check "and installed from that file" grep -q '"--requirement", "/app/requirements.txt"' "$work/ctx2/Dockerfile"

tap_done
