#!/usr/bin/env bash
# The image store's registry backend (registry-client/imagestore.c) against
# Debian's docker-registry on loopback: tests/unit/test_imagestore run with
# UDFB_TEST_REGISTRY, so its registry checks run too (blobs put, tagged,
# looked up, read back, mounted across repositories, fetched into a layout).
set -u
cd "$(dirname "$0")/../.."
. tests/lib/registry.sh

unit=${UDFB_TEST_BUILD:?}/tests/test_imagestore
[ -x "$unit" ] || { echo "not ok 1 - $unit is built (make)"; exit 1; }
udfb_registry_start || { echo "not ok 1 - a registry on loopback"; exit 1; }
trap udfb_registry_stop EXIT
UDFB_TEST_REGISTRY=$REGISTRY "$unit"
