#!/usr/bin/env bash
# The allocation policy of docs/errors.md (rule 4), checked: in a swept module
# no C file calls malloc, calloc, realloc, reallocarray, strdup, strndup,
# asprintf, vasprintf or open_memstream itself; memory comes from the
# abort-on-OOM wrappers of common/alloc.h (udfb_malloc, ...), which never
# return NULL, so no caller carries an untested NULL path.  common/alloc.c,
# where the wrappers call the C library, is the one exception.
# Matched as whole words followed by "(", after comments and string literals
# are blanked (roughly: enough for this code base), so udfb_malloc( and
# json_object( do not count.  One TAP line per module: every module of the
# Makefile's MODULES line, the front ends (cmd/) and the benchmarks (bench/).
cd "$(dirname "$0")/../.."

MODS="$(sed -n 's/^MODULES := //p' Makefile) cmd bench"

# FILE... -> "path:line: text" for each raw allocation call.
raw_calls() {
	[ $# -gt 0 ] || return 0
	perl -e '
		my $re = qr/(?<![\w.>])(?:malloc|calloc|realloc|reallocarray|strdup|strndup|asprintf|vasprintf|open_memstream)\s*\(/;
		for my $path (@ARGV) {
			next if $path eq "common/alloc.c";
			open(my $fh, "<", $path) or die "$path: $!\n";
			local $/;
			my $src = <$fh>;
			my @orig = split /\n/, $src, -1;
			# Blank comments and literals, keeping newlines so lines still count.
			$src =~ s{(/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"|\x27(?:\\.|[^\x27\\\n])*\x27)}
				{ (my $m = $1) =~ s/[^\n]/ /g; $m }gse;
			my @lines = split /\n/, $src, -1;
			for my $i (0 .. $#lines) {
				next unless $lines[$i] =~ $re;
				(my $text = $orig[$i]) =~ s/^\s+//;
				print "$path:", $i + 1, ": $text\n";
			}
		}' "$@"
}

files_of() {
	find "$1" -name '*.[ch]' -not -path 'tests/data/*' | sort
}

n=0
for mod in $MODS; do
	n=$((n + 1))
	mapfile -t files < <(files_of "$mod")
	found=$(raw_calls "${files[@]}")
	if [ -z "$found" ]; then
		echo "ok $n - $mod/ allocates only through common/alloc.h (${#files[@]} files)"
	else
		echo "not ok $n - $mod/ calls the C allocator directly: use common/alloc.h"
		echo "$found" | sed 's/^/#   /'
	fi
done
echo "1..$n"
