#!/usr/bin/env bash
# The store's record of what it pushed (builder/publish.c): a repeat push
# to a new tag asks the registry for no blob (its log shows no blob HEAD)
# and sends the manifest PUT alone (no HEAD of the tag first),
# and a record that is wrong (blobs the repository never had) costs one
# failed manifest and a second push that asks for each: the image is whole.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/tap.sh
. tests/lib/base-image.sh
. tests/lib/registry.sh

bin=${UDFB_BIN:?}
work=$(mktemp -d /tmp/udfb-pushrec-test.XXXXXX)
trap 'udfb_registry_stop; rm -rf "$work"' EXIT
base="oci:$(udfb_tiny_image):tiny"
udfb_registry_start >/dev/null
/usr/bin/python3 -c '
import json
spec = {"version": 1, "kind": "udf", "language": "python", "handler": "f", "input_types": ["INT64"],
        "result_type": "INT64", "imports": [], "packages": [], "runtime_version": "3.12",
        "code": "def f(x):\n    return x\n"}
print(json.dumps({"spec": json.dumps(spec), "imports": []}))' >"$work/req.json"
push() { "$bin" build "$work/req.json" --base "$base" --dest "docker://$REGISTRY/$1" --store "$work/store"; }
heads() { grep -c '"HEAD /v2/udfb/rec/blobs/' "$UDFB_REGISTRY_LOG"; }
requests() { grep -cE '"(GET|HEAD|PUT|POST|PATCH) /v2/udfb/rec/' "$UDFB_REGISTRY_LOG"; }

check "a first push to udfb/rec succeeds" quiet push udfb/rec:first
check "it left a record of the repository's blobs" bash -c 'ls "$1"/pushed/* >/dev/null 2>&1' _ "$work/store"
before=$(heads)
before_all=$(requests)
check "a repeat push to a new tag succeeds" quiet push udfb/rec:again
check "the first push asked for its blobs ($before HEADs in the registry's log)" [ "$before" -gt 0 ]
check_eq "the repeat push asked for none" "$(heads)" "$before"
check_eq "the repeat push was one request to the repository (the manifest PUT)" "$(($(requests) - before_all))" 1
check "... a PUT of udfb/rec:again" grep -q '"PUT /v2/udfb/rec/manifests/again ' "$UDFB_REGISTRY_LOG"
check "skopeo copy of the new tag verifies every blob" quiet skopeo copy --src-tls-verify=false \
	"docker://$REGISTRY/udfb/rec:again" "oci:$work/copy:t"

# A wrong record: every blob of the image claimed for a repository that has none.
wrong=$(/usr/bin/python3 -c 'import hashlib,sys; print(hashlib.sha256(sys.argv[1].encode()).hexdigest())' "$REGISTRY/udfb/empty")
cp "$(ls "$work"/pushed/* "$work"/store/pushed/* 2>/dev/null | head -n 1)" "$work/store/pushed/$wrong"
UDFB_LOG_LEVEL=debug push udfb/empty:x >/dev/null 2>"$work/log"
check_eq "a push with a wrong record still succeeds" "$?" 0
check "after saying so in the log" grep -q "pushing again, asking for each" "$work/log"
check "the registry's plain HTTP was found by a bare ClientHello, without curl's TLS probe" \
	grep -q "answered a ClientHello in plain HTTP" "$work/log"
check "and the image is whole (skopeo copy verifies every blob)" quiet skopeo copy --src-tls-verify=false \
	"docker://$REGISTRY/udfb/empty:x" "oci:$work/copy2:t"

tap_done
