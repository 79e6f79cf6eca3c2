#!/usr/bin/env bash
# Static analysis of the C sources with cppcheck (Debian's; installed by
# deploy/install-deps.sh test): the bug classes -Wall -Wextra let through
# (leaks and unclosed descriptors on error paths, null dereferences,
# uninitialised reads, realloc mistakes, overruns it can prove).  A finding
# fails the test; a false positive, or a deliberate choice, is suppressed in
# tests/lint/analyse-suppressions.xml with its reason.  Macros of libraries
# that shape control flow are in tests/lint/analyse.cfg (cppcheck reads no
# system header).  About 10 s on 2 cores; build/cppcheck caches results.
set -u
cd "$(dirname "$0")/../.."
if ! command -v cppcheck >/dev/null; then
	echo "1..0 # SKIP cppcheck is not installed (deploy/install-deps.sh test)"
	exit 77
fi
modules="$(sed -n 's/^MODULES := //p' Makefile) cmd"
cache=build/cppcheck
mkdir -p "$cache"
supp=$(mktemp) out=$(mktemp)
trap 'rm -f "$supp" "$out"' EXIT
# A variable declared cleanup_free/_close/_fclose is released at scope exit
# by the attribute, which cppcheck does not model: its "leaks" are not.
# shellcheck disable=SC2086
/usr/bin/python3 - tests/lint/analyse-suppressions.xml $modules >"$supp" <<'PY'
import os, re, sys
from xml.sax.saxutils import escape
static = open(sys.argv[1]).read()
mine = []
for root in sys.argv[2:]:
    for d, _, files in sorted(os.walk(root)):
        for f in sorted(x for x in files if x.endswith((".c", ".h"))):
            path = os.path.join(d, f)
            names = set()
            for m in re.finditer(r"\bcleanup_(?:free|close|fclose)\s+([^;]*);", open(path, errors="replace").read()):
                decl, prev = m.group(1), None
                while decl != prev:  # drop (arguments, of calls)
                    prev, decl = decl, re.sub(r"\([^()]*\)", "", decl)
                for piece in decl.split(","):
                    ids = re.findall(r"[A-Za-z_]\w*", piece.split("=")[0])
                    names.update(ids[-1:])
            for n in sorted(names):
                for kind in ("memleak", "resourceLeak"):
                    mine.append("<suppress><id>%s</id><fileName>%s</fileName><symbolName>%s</symbolName></suppress>"
                                % (kind, escape(path), n))
print(static.replace("</suppressions>", "\n".join(mine) + "\n</suppressions>"))
PY
# -D_GNU_SOURCE: the one configuration the Makefile builds (cppcheck then
# checks it alone, not every #ifdef combination).  The generated protobuf-c
# headers are where the build put them.
# shellcheck disable=SC2086
cppcheck --std=c11 -D_GNU_SOURCE -I. -I"${UDFB_TEST_BUILD:-build/release}" \
	--library=posix --library=tests/lint/analyse.cfg --enable=warning,portability,performance --inline-suppr \
	--suppress-xml="$supp" --cppcheck-build-dir="$cache" -j "$(nproc)" --quiet \
	--template='{file}:{line}: {severity} ({id}): {message}' $modules >"$out" 2>&1
rc=$?
n=$(grep -c '^[^ ]*:[0-9]*: ' "$out")
if [ $rc -ne 0 ] || [ "$n" -ne 0 ]; then
	echo "not ok 1 - cppcheck: $n findings (fix each, or suppress it with a reason in tests/lint/analyse-suppressions.xml)"
	sed 's/^/#   /' "$out"
	echo "1..1"
	exit 1
fi
echo "ok 1 - cppcheck: no findings in $(echo $modules | wc -w) modules"
echo "1..1"
