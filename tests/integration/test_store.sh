#!/usr/bin/env bash
# The store under pressure: cache ls/stat read it; gc keeps it under a byte
# limit by evicting the least recently used entries and sweeping what they
# alone reached, never what a build in flight holds; kill -9 at random
# moments of builds leaves it consistent (cache verify) and usable.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/tap.sh
. tests/lib/base-image.sh
. tests/lib/imports.sh

bin=${UDFB_BIN:?}
work=$(mktemp -d /tmp/udfb-store-test.XXXXXX)
trap 'udfb_imports_stop; rm -rf "$work"' EXIT
base="oci:$(udfb_tiny_image):tiny"
udfb_imports_start "$work"
for i in $(seq 0 9); do head -c 100000 /dev/urandom >"$work/srv/blob$i.bin"; done
head -c $((8 << 20)) /dev/urandom >"$work/srv/big.bin"

request() { # request OUT CODE-NUMBER IMPORT-PATH [TAG]
	/usr/bin/python3 - "$@" "$IMPORTS_PORT" <<'PY'
import json, sys
out, n, path, port = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[-1]
tag = sys.argv[4] if len(sys.argv) > 5 else "t" + n
spec = {"version": 1, "kind": "udf", "language": "python", "handler": "f", "input_types": [], "result_type": "INT",
        "imports": ["@s/" + path.split("/")[-1]], "packages": [], "runtime_version": "3.12",
        "code": "def f():\n    return %s\n" % n}
json.dump({"spec": json.dumps(spec), "imports": [{"location": spec["imports"][0],
           "url": "http://127.0.0.1:%s/%s?sig=x" % (port, path), "tag": tag}]}, open(out, "w"))
PY
}
build() { "$bin" build "$1" --base "$base" --dest "oci:$work/out" --store "$2" >/dev/null 2>"$work/err"; }
key_of() { "$bin" key "$1" --base "$base"; }

# --- ls, stat, eviction order ---
S=$work/store
for i in $(seq 0 9); do
	request "$work/r$i.json" "$i" "blob$i.bin"
	build "$work/r$i.json" "$S" || { not_ok "build $i"; cat "$work/err"; }
	sleep 1.1 # distinct last-use seconds
done
"$bin" cache ls --store "$S" >"$work/ls"
check "cache ls lists 10 keys and 10 imports" bash -c '[ "$(grep -c "^key " "$1")" -eq 10 ] && [ "$(grep -c "^import " "$1")" -eq 10 ]' _ "$work/ls"
check "cache ls shows sizes, ages and hits" grep -qE "^key +sha256:[0-9a-f]{16} +[0-9.]+ KiB +[0-9]+s ago +[0-9]+s ago +0 " "$work/ls"
"$bin" cache stat --store "$S" >"$work/stat"
check "cache stat counts keys and imports" bash -c 'grep -q "^keys  *10$" "$1" && grep -q "^imports  *10$" "$1"' _ "$work/stat"
build "$work/r0.json" "$S" # r0 is now the most recently used
total=$(du -sb "$S/blobs" | cut -f1)
limit=$((total / 2))
"$bin" cache gc --max-bytes "$limit" --store "$S" >"$work/gc"
after=$(find "$S/blobs/sha256" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')
check "gc brings the store under the limit ($after <= $limit)" [ "$after" -le "$limit" ]
check "gc says what it did" grep -qE "^evicted [1-9][0-9]* keys and [0-9]+ imports, swept [1-9][0-9]* blobs" "$work/gc"
"$bin" cache ls --store "$S" >"$work/ls2"
check "the most recently used key survives" grep -q "$(key_of "$work/r0.json" | cut -c1-23)" "$work/ls2"
check "the least recently used key is gone" bash -c '! grep -q "$1" "$2"' _ "$(key_of "$work/r1.json" | cut -c1-23)" "$work/ls2"
check "the store still verifies" quiet "$bin" cache verify --store "$S"
"$bin" build "$work/r1.json" --base "$base" --dest "oci:$work/out" --store "$S" >"$work/rebuilt" 2>"$work/err"
check "an evicted key builds again" grep -q '"cached":false' "$work/rebuilt"

# --- a build in flight keeps its blobs through a gc ---
request "$work/slow.json" 100 "slow/blob9.bin" "slowtag"
"$bin" build "$work/slow.json" --base "$base" --dest "oci:$work/out" --store "$S" >"$work/slow.out" 2>&1 &
pid=$!
sleep 0.5
start=$SECONDS
"$bin" cache gc --max-bytes 250000 --store "$S" >/dev/null # fits the newest entry only
wait $pid
check "the build in flight finished" grep -q '"cached":false' "$work/slow.out"
check "gc waited for it" [ $((SECONDS - start)) -ge 1 ]
"$bin" build "$work/slow.json" --base "$base" --dest "oci:$work/out2" --store "$S" >"$work/slow2.out" 2>&1
check "its entry, the newest, outlived the gc that waited for it (a hit)" grep -q '"cached":true' "$work/slow2.out"
check "and verifies" quiet "$bin" cache verify --store "$S"

# --- kill -9 at 20 random moments ---
K=$work/killed
bad=0 unusable=0
for i in $(seq 1 20); do
	request "$work/k$i.json" "$((1000 + i))" "big.bin" "big$i"
	"$bin" build "$work/k$i.json" --base "$base" --dest "oci:$work/kout" --store "$K" >/dev/null 2>&1 &
	pid=$!
	sleep "0.$(printf '%03d' $((RANDOM % 400)))"
	kill -9 $pid 2>/dev/null
	wait $pid 2>/dev/null
	"$bin" cache verify --store "$K" >"$work/v" 2>&1 || { bad=$((bad + 1)); sed 's/^/# /' "$work/v" | head -5; }
	build "$work/k$i.json" "$K" || { unusable=$((unusable + 1)); sed 's/^/# /' "$work/err"; }
done
check_eq "after 20 kill -9s, cache verify found nothing wrong" "$bad" 0
check_eq "and every request then built" "$unusable" 0
check "no temporary file is left once the store is reopened" bash -c '"$1" cache stat --store "$2" >/dev/null && [ -z "$(ls -A "$2/tmp")" ]' _ "$bin" "$K"

tap_done
