#!/usr/bin/env bash
# Builds, once, the runtime base image `make run` serves with on a machine
# that has no registry: Debian 12's Python 3.11 (mmdebstrap + umoci, the same
# recipe as the tests' base, tests/lib/base-image.sh) WITHOUT databend-udf,
# which Debian does not package.  Images build on it, and the service says at
# start that their sandboxes cannot serve UDFs; production bases are the
# operator's image (Python plus databend-udf).  Prints the layout directory.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?usage: deploy/local-base.sh DIR}
mkdir -p "$out/no-runtime"
export UDFB_TEST_CACHE="$out" UDFB_RUNTIME_DOUBLE="$out/no-runtime"
. "$here/tests/lib/base-image.sh"
udfb_base_image
