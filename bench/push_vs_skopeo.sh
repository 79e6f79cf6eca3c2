#!/usr/bin/env bash
# Issue 4: pushing an image (a 150 MiB base layer plus our small layers) to
# an empty loopback registry, ours (`udf-builder build` on a warm store: the
# push is all it does) beside `skopeo copy oci:… docker://…` of the very
# same image, in the same run; then the repeat push to a new tag of the same
# repository (every blob present) beside skopeo's.  A fresh registry for
# each first push, so both start empty.  Aim: faster than skopeo, and the
# repeat push at least 2x (issue 17).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
. tests/lib/imports.sh
. tests/lib/registry.sh
bin=${UDFB_BIN:-bin/udf-builder}
runs=${BENCH_RUNS:-3}
mib=${BENCH_BASE_MIB:-150}
work=$(mktemp -d /tmp/udfb-bench-push.XXXXXX)
trap 'udfb_imports_stop; udfb_registry_stop; rm -rf "$work"' EXIT

# A base of one layer of incompressible bytes, written as an OCI layout.
/usr/bin/python3 - "$work/big" "$mib" <<'PY'
import gzip, hashlib, io, json, os, sys, tarfile
out, mib = sys.argv[1], int(sys.argv[2])
os.makedirs(out + "/blobs/sha256")
def blob(data):
    d = hashlib.sha256(data).hexdigest()
    open("%s/blobs/sha256/%s" % (out, d), "wb").write(data)
    return "sha256:" + d, len(data)
raw = io.BytesIO()
with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
    info = tarfile.TarInfo("big.bin"); info.size = mib << 20
    t.addfile(info, io.BytesIO(os.urandom(info.size)))
diff_id = "sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()
layer = blob(gzip.compress(raw.getvalue(), compresslevel=1, mtime=0))
cfg = blob(json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                       "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode())
man = blob(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg[0], "size": cfg[1]},
                       "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer[0], "size": layer[1]}]}).encode())
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": man[0],
           "size": man[1], "annotations": {"org.opencontainers.image.ref.name": "big"}}]}, open(out + "/index.json", "w"))
open(out + "/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
PY
udfb_imports_start "$work"
udfb_request read_stage_dup_basename "$work/req.json"
# Build once: the store is warm, and skopeo gets the same image as a layout.
"$bin" build "$work/req.json" --base "oci:$work/big:big" --dest "oci:$work/image:x" --store "$work/store" >/dev/null

push_ours() { "$bin" build "$work/req.json" --base "oci:$work/big:big" --dest "docker://$REGISTRY/$1" --store "$work/store"; }
push_skopeo() { skopeo copy -q --dest-tls-verify=false "oci:$work/image:x" "docker://$REGISTRY/$1"; }

for i in $(seq "$runs"); do
	for who in ours skopeo; do
		udfb_registry_start >/dev/null
		timed "push_$who" "bench/$who:first" >>"$work/$who.first"
		timed "push_$who" "bench/$who:again" >>"$work/$who.again"
		udfb_registry_stop
	done
done

read -r of _ < <(stats <"$work/ours.first")
read -r sf _ < <(stats <"$work/skopeo.first")
read -r oa _ < <(stats <"$work/ours.again")
read -r sa _ < <(stats <"$work/skopeo.again")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1fx faster", a / b}'; }
row "push ${mib} MiB base + small layers to an empty registry (median ms)" "$of" "skopeo copy" "$sf" "$(ratio "$sf" "$of")" "faster than skopeo"
row "repeat push to a new tag, every blob present (median ms)" "$oa" "skopeo copy" "$sa" "$(ratio "$sa" "$oa")" ">= 2x (issue 17)"
