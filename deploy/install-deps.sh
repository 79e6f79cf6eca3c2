#!/bin/sh
# Installs the Debian 12 packages udf-builder needs, only those missing.
#   deploy/install-deps.sh build   what `make` needs
#   deploy/install-deps.sh run     that, plus what `make run` builds its base image with
#   deploy/install-deps.sh test    that, plus the real components the tests use
#   deploy/install-deps.sh bench   that, plus what `make bench` runs beside it
set -eu

# The CLI links libarchive statically (Makefile, CLI_LDLIBS): its own
# libraries' -dev packages (nettle, acl, lzma, zstd, lz4, bz2) give the
# link what `pkg-config --static` names; libarchive-dev depends on none.
build="build-essential pkg-config libmicrohttpd-dev libjansson-dev libarchive-dev libcurl4-openssl-dev libssl-dev zlib1g-dev
libgrpc-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler ca-certificates libxml2-dev libdeflate-dev libyaml-dev libzip-dev
nettle-dev libacl1-dev liblzma-dev libzstd-dev liblz4-dev libbz2-dev"
# Independent checkers and peers: umoci, skopeo, buildah, docker-registry
# (apache2-utils' htpasswd and openssl make its test credentials and keys);
# mmdebstrap builds the Python base image; runsc (gVisor) and runc run
# sandboxes (the local-sandbox test runs under both; iproute2's `ip` lists the
# host's addresses it checks a sandbox cannot reach, and makes the networks
# of the egress test); passt's pasta and nftables' nft give sandboxes the
# egress an operator opens (egress_cidrs); Debian's
# python3-grpcio is an independent gRPC client; clang brings libFuzzer and
# the sanitizers' runtimes; pip is the reference installer for packages, and
# the -whl packages put real wheels in /usr/share/python-wheels (fixtures);
# clang-format and cppcheck are the lint tests' (tests/lint/); strace is
# test_sync.sh's (the order of fsyncs and renames, and kill -9 at the Nth fsync).
test="$build clang clang-format libclang-rt-14-dev umoci skopeo buildah docker-registry apache2-utils openssl mmdebstrap runc runsc iproute2 passt nftables
python3 python3-grpcio python3-protobuf curl
python3-pip python3-pip-whl python3-setuptools-whl python3-wheel-whl cppcheck strace"

# The benchmarks' drivers and peers (bench/): h2load (nghttp2-client) drives
# the gRPC rows, GNU time measures RSS, column prints the table
# (bsdextrautils); buildah, skopeo, pip and curl are already in test.
bench="$test nghttp2-client time bsdextrautils"

# python3-pip-whl: the pip a script run as-is gets when its base has none
# (script_mode = run, docs/service.md).
run="$build libxml2 libdeflate0 libyaml-0-2 libzip4 mmdebstrap umoci skopeo runc runsc passt nftables python3-pip-whl"

case "${1:-build}" in
build) want=$build ;;
run) want=$run ;;
test) want=$test ;;
bench) want=$bench ;;
*) echo "usage: $0 build|run|test|bench" >&2; exit 2 ;;
esac

missing=
for p in $want; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "udf-builder: missing Debian packages:$missing (run as root, or install them)" >&2
	exit 1
fi
echo "installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >&2
# shellcheck disable=SC2086
apt-get install -y -q $missing >&2
