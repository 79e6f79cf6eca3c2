#!/usr/bin/env bash
# The CLI loads libcurl, libxml2 and libzip on first use (cmd/lazylib.h)
# and has libarchive and libcrypto linked in: a command that talks no HTTP,
# reads no HTML index and unpacks no wheel maps none of them (nor
# libarchive's libxml2 and ICU, nor the shared libcrypto), read from the
# process's own system calls (strace); one that does loads them and works;
# and with libcurl unloadable (an empty file bound over it in a
# mount namespace of the test's own) a build without imports still works
# while one with an import fails with a one-line message.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/tap.sh
. tests/lib/base-image.sh
. tests/lib/imports.sh

bin=${UDFB_BIN:?}
work=$(mktemp -d /tmp/udfb-start-test.XXXXXX)
idx_pid=
trap 'udfb_imports_stop; [ -n "$idx_pid" ] && kill "$idx_pid"; rm -rf "$work"' EXIT
if ! command -v strace >/dev/null; then
	echo "1..0 # SKIP strace is not installed (deploy/install-deps.sh test installs it)"
	exit 0
fi
base="oci:$(udfb_tiny_image):tiny"
udfb_imports_start "$work"
echo 'X = 1' >"$work/srv/helper.py"

request() { # request OUT N IMPORT(0|1) PACKAGE(0|1)
	/usr/bin/python3 - "$@" "$IMPORTS_PORT" <<'PY'
import json, sys
out, n, imp, pkg, port = sys.argv[1:6]
locs = ["@s/helper.py"] if imp == "1" else []
spec = {"version": 1, "kind": "udf", "language": "python", "handler": "f", "input_types": [], "result_type": "INT",
        "imports": locs, "packages": ["bigpkg"] if pkg == "1" else [], "runtime_version": "3.12",
        "code": "def f():\n    return %s\n" % n}
json.dump({"spec": json.dumps(spec), "imports": [{"location": l, "url": "http://127.0.0.1:%s/helper.py?sig=x" % port,
           "tag": "t%s" % n} for l in locs]}, open(out, "w"))
PY
}

# traced NAME CMD...: runs CMD under strace, its files opened in $work/NAME.trace
# (LeakSanitizer cannot run under ptrace)
traced() {
	local name=$1
	shift
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" strace -f -qq -e trace=openat -o "$work/$name.trace" "$@" >"$work/$name.out" 2>"$work/$name.err"
}
opened() { grep -q "\"[^\"]*/$2[^\"]*\", O_RDONLY" "$work/$1.trace"; }

needed=$(readelf -d "$bin" | awk '/NEEDED/ {print $NF}' | tr -d '[]' | tr '\n' ' ')
case "$needed" in
*libcurl* | *libxml2* | *libzip* | *libarchive* | *libcrypto* | *libgrpc* | *libicu*)
	not_ok "the CLI links none of libcurl, libxml2, libzip, libarchive, libcrypto, gRPC: $needed" ;;
*) ok "the CLI links none of libcurl, libxml2, libzip, libarchive, libcrypto, gRPC (${needed% })" ;;
esac

traced version "$bin" version
check "version runs" grep -q "^udf-builder " "$work/version.out"
lazy='libcurl\|libxml2\|libicu\|libzip\|libcrypto'
check "version loads none of libcurl, libxml2, libzip, libcrypto" bash -c "! grep -q '$lazy' '$work/version.trace'"

request "$work/plain.json" 1 0 0
store="$work/store"
traced plain "$bin" build "$work/plain.json" --base "$base" --dest "oci:$work/out:a" --store "$store"
check "a build without imports or packages succeeds" grep -q '"manifest_digest"' "$work/plain.out"
check "... and loads none of them" bash -c "! grep -q '$lazy' '$work/plain.trace'"

request "$work/imp.json" 2 1 0
traced imp "$bin" build "$work/imp.json" --base "$base" --dest "oci:$work/out:b" --store "$store"
check "a build with an HTTP import succeeds" grep -q '"manifest_digest"' "$work/imp.out"
check "... and loads libcurl on the way" opened imp libcurl.so.4
check "... but not libxml2 nor libzip" bash -c "! grep -q 'libxml2\|libzip' '$work/imp.trace'"

mkdir -p "$work/wheels"
/usr/bin/python3 tests/lib/wheels.py big "$work/wheels" --mb 1 --files 4 >/dev/null
/usr/bin/python3 tests/lib/pkgindex_server.py --dir "$work/wheels" --html-only >"$work/idx.port" &
idx_pid=$!
for _ in $(seq 100); do [ -s "$work/idx.port" ] && break; sleep 0.05; done
read -r idx_port <"$work/idx.port"
request "$work/pkg.json" 3 0 1
traced pkg "$bin" build "$work/pkg.json" --base "$base" --dest "oci:$work/out:c" --store "$store" \
	--index-url "http://127.0.0.1:$idx_port/simple"
check "a build with a package from an HTML index succeeds" grep -q '"manifest_digest"' "$work/pkg.out"
check "... and loads libxml2 for the page" opened pkg libxml2.so.2
check "... and libzip for the wheel" opened pkg libzip.so.4

curl_so=$(/usr/bin/python3 -c 'import ctypes.util, os, sys
for d in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib", "/usr/lib"):
    p = os.path.join(d, "libcurl.so.4")
    if os.path.exists(p):
        print(os.path.realpath(p)); break')
if [ -z "$curl_so" ] || ! unshare -m true 2>/dev/null; then
	ok "# SKIP libcurl's file not found or no mount namespace here"
else
	request "$work/imp2.json" 4 1 0
	request "$work/plain2.json" 5 0 0
	in_ns() { unshare -m sh -c 'mount --bind /dev/null "$0" && exec "$@"' "$curl_so" "$@"; }
	in_ns "$bin" build "$work/plain2.json" --base "$base" --dest "oci:$work/out:d" --store "$store" \
		>"$work/ns-plain.out" 2>"$work/ns-plain.err"
	check "libcurl unloadable: a build without imports still succeeds" grep -q '"manifest_digest"' "$work/ns-plain.out"
	in_ns "$bin" build "$work/imp2.json" --base "$base" --dest "oci:$work/out:e" --store "$store" \
		>"$work/ns-imp.out" 2>"$work/ns-imp.err"
	check_eq "... one with an import exits 1" "$?" 1
	check "... saying which library could not be loaded, in one line" \
		bash -c "[ \$(wc -l <'$work/ns-imp.err') = 1 ] && grep -q '^udf-builder: cannot load libcurl.so.4: ' '$work/ns-imp.err'"
	check "... and the store is still sound" quiet "$bin" cache verify --store "$store"
fi
tap_done
