#!/usr/bin/env bash
# The library and its front ends compile under clang with the project's
# warnings as errors, as `make fuzz` builds them (gcc builds everything
# else, and the two warn about different things: clang calls a cleanup
# variable that is never read unused, gcc does not).  Syntax only, so it
# is quick.  One TAP line.
cd "$(dirname "$0")/../.."
command -v clang >/dev/null || { echo "clang is not installed (deploy/install-deps.sh test)"; exit 1; }
build=${UDFB_TEST_BUILD:-build/release}
pkgs="jansson libarchive libcurl openssl zlib libprotobuf-c grpc libmicrohttpd libdeflate libxml-2.0 yaml-0.1"
flags="-std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-missing-field-initializers -fsyntax-only -I. -I$build
$(pkg-config --cflags $pkgs)"
mapfile -t files < <(sed -n 's/^MODULES := //p' Makefile | tr ' ' '\n' | while read -r m; do
	ls "$m"/*.c 2>/dev/null; done; ls cmd/*.c)
out=$(printf '%s\n' "${files[@]}" | xargs -P 2 -n 8 clang $flags 2>&1 | grep -E 'error:' | sort -u)
if [ -z "$out" ]; then
	echo "ok 1 - ${#files[@]} C files compile under clang -Wall -Wextra -Werror"
else
	echo "not ok 1 - clang finds errors (make fuzz would stop):"
	echo "$out" | sed 's/^/#   /'
fi
echo "1..1"
