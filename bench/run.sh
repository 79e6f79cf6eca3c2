#!/usr/bin/env bash
# Runs every benchmark under bench/ and prints one table: what was measured,
# our figure, the peer's figure in the same run, the ratio, and the aim.
set -uo pipefail
cd "$(dirname "$0")/.."
# What the rows run (h2load, buildah, skopeo, GNU time...): missing ones are
# installed, so a fresh machine measures every row.
deploy/install-deps.sh bench >/dev/null || exit 1
rows=$(mktemp)
for b in bench/*_vs_*.sh bench/sandbox_cold_warm.sh; do
	echo "running $b ..." >&2
	bash "$b" >>"$rows" || echo -e "$(basename "$b")\tFAILED\t\t\t\t" >>"$rows"
done
{
	printf 'what\tours\tpeer\tpeer figure\tratio\taim\n'
	cat "$rows"
} | column -t -s $'\t'
echo
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(. /etc/os-release; echo "$PRETTY_NAME"), $(uname -r), $(date -u +%Y-%m-%d)"
rm -f "$rows"
