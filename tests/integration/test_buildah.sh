#!/usr/bin/env bash
# The generated Dockerfile is real: Debian's buildah (a peer builder) builds
# it, and /app in its image is the same, file by file and mode by mode, as
# /app in our native image; so is the runtime configuration.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/tap.sh
. tests/lib/base-image.sh
. tests/lib/imports.sh

bin=${UDFB_BIN:?}
work=$(mktemp -d /tmp/udfb-buildah-test.XXXXXX)
trap 'udfb_imports_stop; rm -rf "$work"' EXIT
tiny=$(udfb_tiny_image) || { echo "not ok 1 - tiny base image"; exit 1; }
base="oci:$tiny:tiny"
udfb_imports_start "$work"
# A private buildah store: the base goes in under the name the Dockerfile uses.
BA=(buildah --root "$work/root" --runroot "$work/runroot" --storage-driver vfs)
skopeo copy -q "$base" "containers-storage:[vfs@$work/root+$work/runroot]localhost/tiny:tiny" >/dev/null 2>&1
check "the base is in buildah's store" quiet "${BA[@]}" inspect localhost/tiny:tiny


listing() { # the files under app/ with type, mode and content hash
	(cd "$1" && find app -printf '%y %m %p\n' | sort && find app -type f -exec sha256sum {} + | sort -k2)
}

for name in read_stage_dup_basename read_pkg_zip_whl_egg decimal_types; do
	udfb_request "$name" "$work/$name.json"
	"$bin" dockerfile "$work/$name.json" --base "$base" --out "$work/ctx-$name" 2>"$work/err"
	check "$name: dockerfile writes the context" [ -f "$work/ctx-$name/Dockerfile" ]
	"${BA[@]}" bud --isolation chroot --pull=never -q -t "localhost/udfb/$name:1" "$work/ctx-$name" >"$work/bud.log" 2>&1
	rc=$?
	check "$name: buildah bud builds it (exit $rc)" [ $rc -eq 0 ]
	[ $rc -eq 0 ] || sed 's/^/# /' "$work/bud.log" | tail -n 15
	"${BA[@]}" push -q "localhost/udfb/$name:1" "oci:$work/theirs:$name" >/dev/null 2>&1
	"$bin" build "$work/$name.json" --base "$base" --dest "oci:$work/ours:$name" --store "$work/store" >/dev/null
	umoci unpack --rootless --image "$work/theirs:$name" "$work/b-theirs-$name" >/dev/null 2>&1
	umoci unpack --rootless --image "$work/ours:$name" "$work/b-ours-$name" >/dev/null 2>&1
	listing "$work/b-theirs-$name/rootfs" >"$work/theirs.txt"
	listing "$work/b-ours-$name/rootfs" >"$work/ours.txt"
	check "$name: /app has files" [ "$(wc -l <"$work/ours.txt")" -gt 4 ]
	if diff "$work/theirs.txt" "$work/ours.txt" >"$work/diff"; then
		ok "$name: /app is the same in buildah's image and ours"
	else
		not_ok "$name: /app is the same in buildah's image and ours"
		sed 's/^/# /' "$work/diff"
	fi
	conf='import json,sys; c=json.load(sys.stdin)["config"]; print(c.get("User"), c.get("WorkingDir"), c.get("Cmd"), c.get("Entrypoint"), sorted(c.get("ExposedPorts", {})))'
	check_eq "$name: the runtime configuration is the same" \
		"$(skopeo inspect --config "oci:$work/ours:$name" | /usr/bin/python3 -c "$conf")" \
		"$(skopeo inspect --config "oci:$work/theirs:$name" | /usr/bin/python3 -c "$conf")"
done

tap_done
