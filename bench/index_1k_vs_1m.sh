#!/usr/bin/env bash
# Issue: store hit lookups with 1,000 and with 1,000,000 keys in the index,
# both in one run: median and p99 latency, resident memory per key.  Aim:
# p99 at a million within 2x p99 at a thousand; under 200 bytes per key.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
prog=${UDFB_INDEX_BENCH:-build/release/bench/index_bench}
work=$(mktemp -d /tmp/udfb-bench-index.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/small" "$work/large"
read -r _ s50 s99 sbytes _ < <("$prog" 1000 "$work/small")
read -r _ l50 l99 lbytes lins < <("$prog" 1000000 "$work/large")
ratio=$(awk -v a="$l99" -v b="$s99" 'BEGIN {printf "%.2fx", a / b}')
row "index hit at 1M keys (median/p99 us; bytes/key; insert s)" "$l50/$l99; $lbytes B; ${lins}s" "same at 1K keys" \
	"$s50/$s99; $sbytes B" "p99 $ratio" "p99 <= 2x; < 200 B/key"
