#!/usr/bin/env bash
# Runs every test and ends with "N passed, N failed".  A test is a program
# or script; TAP lines it prints ("ok N", "not ok N") count one each, and a
# test printing none counts once by its exit status (77 = skipped).
# Environment: UDFB_BIN (the binary under test), UDFB_TEST_BUILD (where the
# unit tests and fuzz replayers were built), SANITIZE (1 in the ASan pass).
set -u
cd "$(dirname "$0")/.."
: "${UDFB_BIN:?set UDFB_BIN}" "${UDFB_TEST_BUILD:?set UDFB_TEST_BUILD}"
export UDFB_BIN UDFB_TEST_BUILD
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export PYTHONDONTWRITEBYTECODE=1
# Unit tests that need a base image get the tiny one (built once, cached).
UDFB_TEST_TINY_BASE="3=oci:$(bash -c ". tests/lib/base-image.sh && udfb_tiny_image"):tiny"
export UDFB_TEST_TINY_BASE

passed=0 failed=0 skipped=0
failures=()
log_dir=$(mktemp -d /tmp/udfb-test-logs.XXXXXX)

run_one() {
	local name=$1
	shift
	local log="$log_dir/$(echo "$name" | tr '/ ' '__').log"
	local start=$SECONDS
	"$@" >"$log" 2>&1
	local rc=$?
	local ok notok
	ok=$(grep -cE '^ok [0-9]+' "$log")
	notok=$(grep -cE '^not ok [0-9]+' "$log")
	if [ "$ok" -eq 0 ] && [ "$notok" -eq 0 ]; then
		if [ $rc -eq 77 ]; then
			skipped=$((skipped + 1))
			echo "SKIP $name ($(tail -n 1 "$log"))"
			return
		fi
		[ $rc -eq 0 ] && ok=1 || notok=1
	elif [ $rc -ne 0 ] && [ "$notok" -eq 0 ]; then
		notok=1 # it died after its last TAP line
	fi
	passed=$((passed + ok))
	failed=$((failed + notok))
	if [ "$notok" -gt 0 ]; then
		failures+=("$name")
		echo "FAIL $name ($((SECONDS - start)) s, exit $rc):"
		grep -E '^(not ok|#)' "$log" | head -n 40 | sed 's/^/    /'
		[ "$(grep -cE '^(not ok|#)' "$log")" -eq 0 ] && tail -n 30 "$log" | sed 's/^/    /'
	else
		echo "PASS $name ($ok checks, $((SECONDS - start)) s)"
	fi
}

# The lints read the sources, not the build: once, in the release pass.
for t in tests/lint/*; do
	[ -x "$t" ] && [ "${SANITIZE:-0}" = 0 ] || continue
	run_one "lint/$(basename "$t")" "$t"
done
for t in "$UDFB_TEST_BUILD"/tests/test_*; do
	run_one "unit/$(basename "$t")" "$t"
done
for t in "$UDFB_TEST_BUILD"/tests/fuzz_*-replay; do
	target=$(basename "$t" -replay)
	run_one "fuzz/$target" "$t" "tests/fuzz/corpus/${target#fuzz_}"
done
for t in tests/integration/test_*; do
	[ -x "$t" ] || continue
	run_one "integration/$(basename "$t")" "$t"
done

echo
[ ${#failures[@]} -gt 0 ] && echo "failed: ${failures[*]} (logs in $log_dir)"
[ ${#failures[@]} -eq 0 ] && rm -rf "$log_dir"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
