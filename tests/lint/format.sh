#!/usr/bin/env bash
# Every C file of the project is as clang-format (.clang-format) writes it:
# run `clang-format -i FILE` on what this names.  One TAP line.
cd "$(dirname "$0")/../.."
command -v clang-format >/dev/null || { echo "clang-format is not installed (deploy/install-deps.sh test)"; exit 1; }
mapfile -t files < <(git ls-files '*.c' '*.h' 2>/dev/null | grep -v '^tests/data/' ||
	find common image python fetch pkgindex registry-client cache builder config scheduler service cmd tests bench -name '*.[ch]' -not -path 'tests/data/*')
bad=$(clang-format --dry-run "${files[@]}" 2>&1 | grep -oE '^[^:]+\.[ch]:' | sort -u | tr -d ':')
if [ -z "$bad" ]; then
	echo "ok 1 - ${#files[@]} C files are formatted as .clang-format says"
else
	echo "not ok 1 - C files not formatted as .clang-format says (clang-format -i them):"
	echo "$bad" | sed 's/^/#   /'
fi
echo "1..1"
