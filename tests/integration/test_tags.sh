#!/usr/bin/env bash
# Tags of an OCI-layout destination (docs/store.md): a tag is a journal
# append and index.json is derived once per batch.  skopeo and umoci (the
# independent readers) see a valid layout after a batch, during one and
# after a kill -9 in the middle of one; the killed batch resumes; a torn
# journal line is skipped; our own reader sees journal tags before the sync;
# `cache sync-tags` derives index.json on demand.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/tap.sh
. tests/lib/base-image.sh

bin=${UDFB_BIN:?}
work=$(mktemp -d /tmp/udfb-tags-test.XXXXXX)
reader=
trap '[ -n "$reader" ] && kill "$reader" 2>/dev/null; rm -rf "$work"' EXIT
tiny=$(udfb_tiny_image)
base="oci:$tiny:tiny"

# N requests without imports, distinct code: gen N OFFSET
gen() {
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
tags_in() { /usr/bin/python3 -c 'import json,sys; print(len([m for m in json.load(open(sys.argv[1]))["manifests"] if "org.opencontainers.image.ref.name" in m.get("annotations", {})]))' "$1/index.json"; }
last_tag() { /usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][-1]["annotations"]["org.opencontainers.image.ref.name"])' "$1/index.json"; }
pre() { "$bin" prebuild "$@" --base "$base" --store "$work/store" -j 2; }

gen 40 0 >"$work/a.jsonl"
pre "$work/a.jsonl" --dest "oci:$work/out" --report "$work/a.json" 2>/dev/null
check_eq "a batch of 40 exits 0" "$?" 0
check_eq "index.json lists its 40 tags" "$(tags_in "$work/out")" 40
check_eq "and the journal is empty after the batch" "$(stat -c %s "$work/out/.udfb-tags")" 0
want=$(/usr/bin/python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["requests"][7]; print(r["image"].split(":")[-2].split("@")[0], r["manifest_digest"])' "$work/a.json")
set -- $want
check_eq "skopeo inspect finds a tag of the batch with its digest" \
	"$(skopeo inspect "oci:$work/out:$1" 2>/dev/null | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["Digest"])')" "$2"
check_eq "umoci ls lists every tag" "$(umoci ls --layout "$work/out" 2>/dev/null | wc -l)" 40

# A batch of cache hits into the same layout rewrites nothing.
before=$(stat -c %i "$work/out/index.json")
pre "$work/a.jsonl" --dest "oci:$work/out" 2>/dev/null
check_eq "a batch of hits leaves index.json as it was (same inode)" "$(stat -c %i "$work/out/index.json")" "$before"

# Readers during a batch: every read of index.json is whole.
gen 400 1000 >"$work/b.jsonl"
/usr/bin/python3 - "$work/out" >"$work/reads" 2>&1 <<'PY' &
import json, sys, time
bad = reads = 0
end = time.time() + 60
while time.time() < end:
    try:
        json.load(open(sys.argv[1] + "/index.json"))
    except Exception as e:
        bad += 1
    reads += 1
    print(reads, bad, flush=True)
    time.sleep(0.002)
PY
reader=$!
# kill -9 at three moments of the batch, then let it finish.
for delay in 0.3 0.6 0.9; do
	# The binary itself, not pre(): killing pre's subshell would leave
	# the batch running on.
	"$bin" prebuild "$work/b.jsonl" --dest "oci:$work/out" --base "$base" --store "$work/store" -j 2 2>/dev/null &
	pid=$!
	sleep "$delay"
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	check "after kill -9 at ${delay}s: index.json is valid JSON" /usr/bin/python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$work/out/index.json"
	check "after kill -9 at ${delay}s: skopeo inspects its newest tag" quiet skopeo inspect "oci:$work/out:$(last_tag "$work/out")"
	check "after kill -9 at ${delay}s: umoci ls reads the layout" quiet umoci ls --layout "$work/out"
done
pre "$work/b.jsonl" --dest "oci:$work/out" 2>"$work/resume.log"
rc=$?
[ "$rc" -eq 0 ] || sed 's/^/# resume: /' "$work/resume.log" | tail -n 20
check_eq "the killed batch resumes and exits 0" "$rc" 0
check_eq "index.json then lists all 440 tags" "$(tags_in "$work/out")" 440
# Two batches at once on one store and destination: writers of the same
# blob replace its name while the other links from it.
gen 200 2000 >"$work/c.jsonl"
pre "$work/c.jsonl" --dest "oci:$work/out" 2>"$work/c1.log" &
pid=$!
pre "$work/c.jsonl" --dest "oci:$work/out" 2>"$work/c2.log"
rc2=$?
wait "$pid"
rc1=$?
[ "$rc1$rc2" = 00 ] || grep -h failed "$work/c1.log" "$work/c2.log" | sed 's/^/# /' | head -n 5
check_eq "two batches at once on one store and destination both exit 0" "$rc1$rc2" 00
check_eq "index.json then lists all 640 tags" "$(tags_in "$work/out")" 640
kill "$reader" 2>/dev/null
wait "$reader" 2>/dev/null
reader=
read -r reads bad < <(tail -n 1 "$work/reads")
check "a reader during the batches read index.json ${reads:-0} times, never broken" [ "${reads:-0}" -gt 10 -a "${bad:-1}" -eq 0 ]
check "skopeo inspects the last tag" quiet skopeo inspect "oci:$work/out:$(last_tag "$work/out")"
check "umoci unpacks an image of the resumed batch" quiet umoci unpack --rootless --image "$work/out:$(last_tag "$work/out")" "$work/bundle"
check "cache verify finds the store sound" quiet "$bin" cache verify --store "$work/store"

# The journal, by hand: a torn line and a record index.json does not list.
gen 1 5 >"$work/one.json"
mkdir -p "$work/copy"
cp -r "$tiny/." "$work/copy/"
digest=$(udfb_oci_digest "$tiny" tiny)
size=$(stat -c %s "$work/copy/blobs/sha256/${digest#sha256:}")
/usr/bin/python3 - "$work/copy/.udfb-tags" "$digest" "$size" <<'PY'
import sys, zlib
body = "%s %s application/vnd.oci.image.manifest.v1+json viajournal" % (sys.argv[2], sys.argv[3])
with open(sys.argv[1], "w") as f:
    f.write("t1 00000000 garbage that fails its crc\n")
    f.write("t1 %08x %s\n" % (zlib.crc32(body.encode()), body))
    f.write("t1 1234abcd torn by a cra")
PY
check "before a sync skopeo does not see the journal's tag" bash -c '! skopeo inspect "oci:$1:viajournal" >/dev/null 2>&1' _ "$work/copy"
check "our reader does (a base named by it resolves)" quiet "$bin" key "$work/one.json" --base "oci:$work/copy:viajournal"
check "cache sync-tags --dest writes index.json" quiet "$bin" cache sync-tags --dest "oci:$work/copy" --store "$work/store"
check_eq "then skopeo sees it, with its digest" \
	"$(skopeo inspect --raw "oci:$work/copy:viajournal" 2>/dev/null | sha256sum | cut -d' ' -f1)" "${digest#sha256:}"
check_eq "the damaged lines were skipped, the good one kept: two tags" "$(tags_in "$work/copy")" 2
check_eq "and the journal is empty" "$(stat -c %s "$work/copy/.udfb-tags")" 0
check "cache sync-tags refuses a registry" bash -c '"$1" cache sync-tags --dest docker://127.0.0.1:1/x --store "$2" 2>&1 | grep -q "needs an oci:DIR"' _ "$bin" "$work/store"

tap_done
