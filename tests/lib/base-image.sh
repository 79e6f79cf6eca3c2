#!/usr/bin/env bash
# tests/lib/base-image.sh: build once, and cache, the OCI image layouts the tests
# use as base images. Nothing here is committed: the layouts live in a cache dir.
#
#   $CACHE = ${UDFB_TEST_CACHE:-/var/tmp/udfb-test}
#
#   python  $CACHE/base-oci, tag "python"  (reference oci:$CACHE/base-oci:python)
#           Debian bookworm, mmdebstrap --variant=essential with python3-minimal and
#           libpython3.11-stdlib, plus the TEST DOUBLE of the runtime modules
#           (tests/runtime-double/: stand-ins for databend_udf and pyarrow, which
#           cannot be had here) copied into /usr/local/lib/python3.11/dist-packages/.
#           About 20-30 s to build, ~180 MB unpacked, ~64 MB gzip layer.
#   tiny    $CACHE/tiny-oci, tag "tiny"    (reference oci:$CACHE/tiny-oci:tiny)
#           one small deterministic layer (two files), no shell, no Python.
#
# Use it sourced:
#   . tests/lib/base-image.sh
#   base=$(udfb_base_image)            # prints $CACHE/base-oci (builds if needed)
#   tiny=$(udfb_tiny_image)            # prints $CACHE/tiny-oci
#   digest=$(udfb_oci_digest "$base" python)   # sha256:... of the manifest
# or executed:
#   tests/lib/base-image.sh [python|tiny|all]  # prints the layout path(s), one a line
#
# Settings (environment):
#   UDFB_TEST_CACHE       cache dir (default /var/tmp/udfb-test)
#   UDFB_RUNTIME_DOUBLE   dir copied into dist-packages (default tests/runtime-double)
#   UDFB_APT_MIRROR       mirror argument(s) for mmdebstrap, space separated (default:
#                         the host's configured bookworm sources, from apt-get indextargets)
#   UDFB_BASE_REBUILD=1   rebuild even if the cache is current
#   UDFB_LOCK_TIMEOUT     seconds to wait for a concurrent build (default 1200)
#
# The cache is keyed by the recipe below, the mirror lines and a hash of the
# runtime-double files (their names, modes and contents; __pycache__ and *.pyc are
# ignored). The key is stored next to the layout ($CACHE/base-oci.key); a
# different key triggers a rebuild. Builds run under flock($CACHE/.lock) in a
# temp dir inside $CACHE and are renamed into place at the end, so a killed build
# never leaves a half-written layout behind. All logs go to stderr; stdout carries
# only the printed path(s).
#
# Needs: root (mmdebstrap --mode=root), mmdebstrap, umoci, skopeo (for
# udfb_oci_digest), GNU tar, flock, sha256sum.

UDFB_BASE_IMAGE_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Bump when the recipe changes in a way the key below does not capture.
UDFB_BASE_RECIPE_VERSION=2
UDFB_TINY_RECIPE_VERSION=1

udfb__cache_dir() {
	printf '%s\n' "${UDFB_TEST_CACHE:-/var/tmp/udfb-test}"
}

udfb__log() {
	printf 'base-image: %s\n' "$*" >&2
}

# The host's apt sources for the given suite (and its -updates/-security), as
# one-line "deb URI SUITE COMPONENT..." entries, one a line.
udfb__host_sources() {
	local suite=$1
	# shellcheck disable=SC2016 # apt's own $(FIELD) syntax
	apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(COMPONENT)' \
		'Created-By: Packages' 2>/dev/null |
		awk -v s="$suite" '
			$2 == s || $2 == s "-updates" || $2 == s "-security" {
				k = $1 " " $2
				if (!(k in comp)) { order[n++] = k; comp[k] = $3 }
				else if (index(" " comp[k] " ", " " $3 " ") == 0) comp[k] = comp[k] " " $3
			}
			END { for (i = 0; i < n; i++) print "deb " order[i] " " comp[order[i]] }'
}

# Installed versions of Debian packages (cheap; part of the cache keys).
udfb__tool_versions() {
	dpkg-query -W -f='${Package}=${Version} ' "$@" 2>/dev/null || true
}

# Deterministic tar of a directory: sorted, mtime 0, root-owned, normalized modes,
# no atime/ctime, without __pycache__ / *.pyc.
udfb__det_tar() {
	local dir=$1 out=$2
	tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
		--mode='u+rwX,go+rX,go-w' --format=posix \
		--pax-option='exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime' \
		--exclude='__pycache__' --exclude='*.pyc' \
		-C "$dir" -cf "$out" .
}

# Print the manifest digest (sha256:...) of DIR:TAG, computed over the raw
# manifest bytes as skopeo reads them.
udfb_oci_digest() (
	set -euo pipefail
	local dir=$1 tag=$2 hex
	hex=$(skopeo inspect --raw "oci:$dir:$tag" | sha256sum | cut -d' ' -f1)
	printf 'sha256:%s\n' "$hex"
)

# Swap a freshly built layout into place. Args: TMP NAME KEY.
udfb__install() {
	local tmp=$1 name=$2 key=$3 cache
	cache=$(udfb__cache_dir)
	chmod -R a+rX "$tmp/$name"
	rm -f "$cache/$name.key"
	if [ -e "$cache/$name" ]; then
		mv "$cache/$name" "$tmp/$name.old"
	fi
	mv "$tmp/$name" "$cache/$name"
	printf '%s\n' "$key" >"$tmp/$name.key"
	chmod a+r "$tmp/$name.key"
	mv "$tmp/$name.key" "$cache/$name.key"
}

# Is $CACHE/NAME current for KEY?
udfb__is_current() {
	local name=$1 key=$2 cache
	cache=$(udfb__cache_dir)
	[ "${UDFB_BASE_REBUILD:-0}" != 1 ] &&
		[ -f "$cache/$name/index.json" ] &&
		[ -f "$cache/$name.key" ] &&
		[ "$(cat "$cache/$name.key")" = "$key" ]
}

# Take the cache lock on fd 9 and remove leftovers of killed builds. Only call
# inside a subshell: the lock is released when the subshell exits.
udfb__lock() {
	local cache
	cache=$(udfb__cache_dir)
	mkdir -p "$cache"
	exec 9>>"$cache/.lock"
	if ! flock -w "${UDFB_LOCK_TIMEOUT:-1200}" 9; then
		udfb__log "timed out waiting for $cache/.lock"
		return 1
	fi
	# We hold the lock: no build is running, so any temp dir is stale.
	rm -rf "$cache"/.build.*
}

# Build (if needed) and print the Python base layout dir.
udfb_base_image() (
	set -euo pipefail
	local cache double tmp key mirror_desc start end
	local suite=bookworm variant=essential include=python3-minimal,libpython3.11-stdlib
	local sde=0
	local -a mirrors=()
	cache=$(udfb__cache_dir)
	double=${UDFB_RUNTIME_DOUBLE:-$UDFB_BASE_IMAGE_LIB_DIR/../runtime-double}
	if [ ! -d "$double" ]; then
		udfb__log "runtime test double not found: $double (set UDFB_RUNTIME_DOUBLE)"
		exit 1
	fi
	udfb__lock

	tmp=$(mktemp -d "$cache/.build.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT

	# Inputs of the key.
	udfb__det_tar "$double" "$tmp/double.tar"
	if [ -n "${UDFB_APT_MIRROR:-}" ]; then
		mirror_desc="explicit: $UDFB_APT_MIRROR"
	else
		# Hash the host's apt source files (reading them through apt-get
		# indextargets costs ~1 s; only done when building).
		mirror_desc="host: $({ cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
			/etc/apt/sources.list.d/*.sources 2>/dev/null || true; } |
			sha256sum | cut -d' ' -f1)"
	fi
	key=$(printf '%s\n' \
		"recipe=$UDFB_BASE_RECIPE_VERSION" \
		"tools=$(udfb__tool_versions mmdebstrap umoci tar)" \
		"suite=$suite variant=$variant include=$include sde=$sde" \
		"mirrors=$mirror_desc" \
		"double=$(sha256sum <"$tmp/double.tar" | cut -d' ' -f1)" |
		sha256sum | cut -d' ' -f1)

	if udfb__is_current base-oci "$key"; then
		printf '%s\n' "$cache/base-oci"
		exit 0
	fi

	udfb__log "building $cache/base-oci:python (key $key)"
	start=$(date +%s.%N)

	if [ -n "${UDFB_APT_MIRROR:-}" ]; then
		read -r -a mirrors <<<"$UDFB_APT_MIRROR"
	else
		udfb__host_sources "$suite" >"$tmp/sources.list"
		if [ -s "$tmp/sources.list" ]; then
			mirrors=("$tmp/sources.list")
			udfb__log "apt sources: $(tr '\n' ';' <"$tmp/sources.list")"
		else
			udfb__log "no host apt sources for $suite found: using mmdebstrap's default mirror"
		fi
	fi

	# The customize hook runs on the host with the rootfs as $1 (root mode).
	export UDFB__DOUBLE_TAR="$tmp/double.tar" UDFB__PYVER="$tmp/python-version"
	# shellcheck disable=SC2016 # the hook is expanded by mmdebstrap's sh
	SOURCE_DATE_EPOCH=$sde mmdebstrap \
		--variant="$variant" --include="$include" --mode=root \
		--aptopt='Acquire::Check-Valid-Until "false"' \
		--customize-hook='set -e
			d="$1/usr/local/lib/python3.11/dist-packages"
			mkdir -p "$d"
			tar -xf "$UDFB__DOUBLE_TAR" -C "$d" --no-overwrite-dir
			chroot "$1" /usr/bin/python3 -c "import sys; assert \"/usr/local/lib/python3.11/dist-packages\" in sys.path, sys.path"
			chroot "$1" /usr/bin/python3 -c "import platform; print(platform.python_version())" >"$UDFB__PYVER"' \
		"$suite" "$tmp/rootfs.tar" ${mirrors[@]+"${mirrors[@]}"} >&2

	local img="$tmp/base-oci" created=1970-01-01T00:00:00Z
	umoci init --layout "$img" >&2
	umoci new --image "$img:python" >&2
	umoci raw add-layer --image "$img:python" \
		--history.created "$created" \
		--history.created_by "mmdebstrap --variant=$variant --include=$include $suite (+ tests/runtime-double in /usr/local/lib/python3.11/dist-packages)" \
		"$tmp/rootfs.tar" >&2
	rm -f "$tmp/rootfs.tar"
	umoci config --image "$img:python" \
		--created "$created" --history.created "$created" \
		--architecture amd64 --os linux \
		--config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		--config.env "PYTHON_VERSION=$(cat "$UDFB__PYVER")" \
		--config.cmd python3 >&2
	umoci gc --layout "$img" >&2

	udfb__install "$tmp" base-oci "$key"
	end=$(date +%s.%N)
	udfb__log "built $cache/base-oci:python in $(awk -v a="$start" -v b="$end" 'BEGIN{printf "%.1f", b-a}') s"
	printf '%s\n' "$cache/base-oci"
)

# Build (if needed) and print the tiny layout dir.
udfb_tiny_image() (
	set -euo pipefail
	local cache tmp key img created=1970-01-01T00:00:00Z
	cache=$(udfb__cache_dir)
	key="tiny-recipe=$UDFB_TINY_RECIPE_VERSION tools=$(udfb__tool_versions umoci tar)"
	udfb__lock
	if udfb__is_current tiny-oci "$key"; then
		printf '%s\n' "$cache/tiny-oci"
		exit 0
	fi
	tmp=$(mktemp -d "$cache/.build.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT

	mkdir -p "$tmp/root/etc"
	printf 'udfb tiny test base image, recipe %s\n' "$UDFB_TINY_RECIPE_VERSION" \
		>"$tmp/root/etc/udfb-tiny-release"
	printf 'hello from the udfb tiny base\n' >"$tmp/root/hello.txt"
	chmod 0755 "$tmp/root" "$tmp/root/etc"
	chmod 0644 "$tmp/root/etc/udfb-tiny-release" "$tmp/root/hello.txt"
	udfb__det_tar "$tmp/root" "$tmp/layer.tar"

	img="$tmp/tiny-oci"
	umoci init --layout "$img" >&2
	umoci new --image "$img:tiny" >&2
	umoci raw add-layer --image "$img:tiny" \
		--history.created "$created" --history.created_by "udfb tiny layer" \
		"$tmp/layer.tar" >&2
	umoci config --image "$img:tiny" \
		--created "$created" --history.created "$created" \
		--architecture amd64 --os linux \
		--config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin >&2
	umoci gc --layout "$img" >&2

	udfb__install "$tmp" tiny-oci "$key"
	printf '%s\n' "$cache/tiny-oci"
)

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -euo pipefail
	case "${1:-python}" in
	python) udfb_base_image ;;
	tiny) udfb_tiny_image ;;
	all)
		udfb_base_image
		udfb_tiny_image
		;;
	*)
		echo "usage: $0 [python|tiny|all]" >&2
		exit 2
		;;
	esac
fi
