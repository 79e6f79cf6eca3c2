#!/usr/bin/env bash
# Grouped syncs on the build path (docs/store.md, "Crash safety"), read
# from the build's own system calls (strace):
# - no blob is renamed into blobs/sha256 before its bytes were fsync'd,
#   and blobs/sha256 is fsync'd after the last blob's rename and before the
#   key entry (the index lock taken for it);
# - a new store's files, a build's layers, config and manifest, and the
#   fetched imports are each synced as one group (writeback started for all
#   before the first fsync);
# - a new destination's index.json is written once (the derived one), with
#   oci-layout, and skopeo and umoci read it;
# - kill -9 at every fsync of a fresh build in turn (strace's fault
#   injection) leaves a store that cache verify finds sound (every key
#   entry's blobs present) and that then builds the request.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/tap.sh
. tests/lib/base-image.sh
. tests/lib/imports.sh

bin=${UDFB_BIN:?}
work=$(mktemp -d /tmp/udfb-sync-test.XXXXXX)
trap 'udfb_imports_stop; rm -rf "$work"' EXIT
if ! command -v strace >/dev/null; then
	echo "1..0 # SKIP strace is not installed (deploy/install-deps.sh test installs it)"
	exit 0
fi
base="oci:$(udfb_tiny_image):tiny"
udfb_imports_start "$work"
for i in 0 1 2; do head -c 20000 /dev/urandom >"$work/srv/imp$i.bin"; done

request() { # request OUT CODE-NUMBER: three imports, distinct code
	/usr/bin/python3 - "$@" "$IMPORTS_PORT" <<'PY'
import json, sys
out, n, port = sys.argv[1], sys.argv[2], sys.argv[3]
locs = ["@s/imp%d.bin" % i for i in range(3)]
spec = {"version": 1, "kind": "udf", "language": "python", "handler": "f", "input_types": [], "result_type": "INT",
        "imports": locs, "packages": [], "runtime_version": "3.12", "code": "def f():\n    return %s\n" % n}
json.dump({"spec": json.dumps(spec), "imports": [{"location": l, "url": "http://127.0.0.1:%s/imp%d.bin?sig=x" % (port, i),
           "tag": "t%s-%d" % (n, i)} for i, l in enumerate(locs)]}, open(out, "w"))
PY
}

# LeakSanitizer cannot run under ptrace: the traced runs go without it.
traced() { ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" strace "$@"; }

request "$work/r1.json" 1
traced -f -y -o "$work/trace" -e trace=fsync,fdatasync,sync_file_range,rename,renameat2,flock,openat,link,linkat \
	"$bin" build "$work/r1.json" --base "$base" --dest "oci:$work/out" --store "$work/store" >"$work/out1" 2>"$work/err1"
check_eq "a fresh build under strace exits 0" "$?" 0

# One Python pass over the trace prints "name value" lines the checks read.
/usr/bin/python3 - "$work/trace" "$work/store" "$work/out" >"$work/facts" <<'PY'
import re, sys
trace, store, out = sys.argv[1], sys.argv[2], sys.argv[3]
blobs = store + "/blobs/sha256"
synced, started = set(), set()
unsynced_renames, blob_renames, last_blob_rename = 0, 0, None
dir_sync_after_last, key_lock_after_dir_sync = False, False
index_renames, layout_renames, index_first = 0, 0, None
groups, group_open, fsyncs = 0, False, 0
out_blobs = out + "/blobs/sha256"
out_links, out_links_unsynced, index_named_unsynced = 0, False, False
events = []
for line in open(trace):
    line = re.sub(r"^\d+\s+", "", line.strip())
    m = re.match(r"(\w+)\((.*)\) += (-?\d+)", line)
    if not m or m.group(3).startswith("-"):
        continue
    call, args = m.group(1), m.group(2)
    fdpath = re.match(r"\d+<([^>]*)>", args)
    paths = re.findall(r'"([^"]*)"', args)
    if call == "sync_file_range" and fdpath:
        started.add(fdpath.group(1))
        if not group_open:
            groups, group_open = groups + 1, True
    elif call in ("fsync", "fdatasync") and fdpath:
        fsyncs += 1
        p = fdpath.group(1)
        synced.add(p)
        if p == blobs and last_blob_rename is not None:
            dir_sync_after_last = True
        if p == out_blobs:
            out_links_unsynced = False
        group_open = False
    elif call in ("rename", "renameat2") and len(paths) == 2:
        src, dst = paths
        if dst.startswith(blobs + "/"):
            blob_renames += 1
            unsynced_renames += src not in synced
            last_blob_rename, dir_sync_after_last = dst, False
        if dst == out + "/index.json":
            index_renames += 1
            index_named_unsynced |= out_links_unsynced
            index_first = index_first if index_first is not None else layout_renames == 0
        if dst == out + "/oci-layout":
            layout_renames += 1
    elif call in ("link", "linkat") and any(p.startswith(out_blobs + "/") for p in paths):
        out_links += 1
        out_links_unsynced = True
    elif call == "flock" and fdpath and fdpath.group(1) == store + "/index.lock" and "LOCK_EX" in args:
        if dir_sync_after_last:
            key_lock_after_dir_sync = True
print("blob_renames", blob_renames)
print("unsynced_blob_renames", unsynced_renames)
print("dir_synced_before_key", int(key_lock_after_dir_sync))
print("index_json_renames", index_renames)
print("oci_layout_renames", layout_renames)
print("index_json_first", int(bool(index_first)))
print("sync_groups", groups)
print("dest_links", out_links)
print("index_json_before_dest_blobs_synced", int(index_named_unsynced))
print("fsyncs", fsyncs)
PY
fact() { awk -v k="$1" '$1 == k {print $2}' "$work/facts"; }
sed 's/^/# /' "$work/facts"
check "the build renamed blobs into the store" [ "$(fact blob_renames)" -ge 6 ]
check_eq "none before its bytes were fsync'd" "$(fact unsynced_blob_renames)" 0
check_eq "blobs/sha256 fsync'd after the last blob's rename, before the key entry's lock" "$(fact dir_synced_before_key)" 1
check_eq "a new destination's index.json is written once" "$(fact index_json_renames)" 1
check_eq "its oci-layout once" "$(fact oci_layout_renames)" 1
check_eq "index.json before oci-layout" "$(fact index_json_first)" 1
check "the build's blobs were linked into the destination ($(fact dest_links))" [ "$(fact dest_links)" -ge 4 ]
check_eq "its blobs/sha256 fsync'd after the links, before index.json names them" \
	"$(fact index_json_before_dest_blobs_synced)" 0
# store files, imports, layers + config + manifest, destination files
check "the syncs come in groups (writeback started for a group, then its fsyncs): $(fact sync_groups) groups" \
	[ "$(fact sync_groups)" -ge 3 -a "$(fact sync_groups)" -le 6 ]
check "skopeo reads the new destination" quiet skopeo inspect "oci:$work/out:udf-$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["key"][7:])' "$work/out1")"
check "umoci reads it" quiet umoci ls --layout "$work/out"
check "cache verify finds the store sound" quiet "$bin" cache verify --store "$work/store"

# kill -9 at the Nth fsync of a fresh build, for every N the build has.
n=$(fact fsyncs)
bad=0 unusable=0
for k in $(seq 1 "$n"); do
	request "$work/k$k.json" "$((100 + k))"
	# In a subshell: bash would report the killed job on stderr.
	(traced -f -o /dev/null -e trace=fsync -e inject=fsync:signal=SIGKILL:when=$k \
		"$bin" build "$work/k$k.json" --base "$base" --dest "oci:$work/kout$k" --store "$work/k$k"; true) >/dev/null 2>&1
	"$bin" cache verify --store "$work/k$k" >"$work/v" 2>&1 || { bad=$((bad + 1)); sed 's/^/# /' "$work/v" | head -5; }
	"$bin" build "$work/k$k.json" --base "$base" --dest "oci:$work/kout$k" --store "$work/k$k" >"$work/kb" 2>&1 ||
		{ unusable=$((unusable + 1)); sed 's/^/# /' "$work/kb" | tail -3; }
	quiet umoci ls --layout "$work/kout$k" || { unusable=$((unusable + 1)); echo "# kout$k: umoci cannot read it"; }
done
check "the fresh build has fsyncs to kill at ($n)" [ "$n" -ge 5 ]
check_eq "after kill -9 at each of the $n fsyncs, cache verify found nothing wrong" "$bad" 0
check_eq "and every request then built into a layout umoci reads" "$unusable" 0

tap_done
