#!/usr/bin/env bash
# Issue 8: install a large wheel (tests/lib/wheels.py big: > 20 MiB, > 1,000
# files) into a layer with `udf-builder build` (resolve from a directory
# index, unpack, checked against RECORD, tar + gzip into the store), beside
# `pip install --no-deps --target` of the same wheel, in the same run.
# Aim: at least 8x faster (issue 17).  Then a second UDF needing only already-layered
# packages: its build beside a UDF with no packages, and the package work it
# did (wheels unpacked, index requests): the aim is none at all.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
. tests/lib/base-image.sh
bin=${UDFB_BIN:-bin/udf-builder}
runs=${BENCH_RUNS:-5}
work=$(mktemp -d /tmp/udfb-bench-wheel.XXXXXX)
trap 'rm -rf "$work"' EXIT
tiny=$(udfb_tiny_image)
/usr/bin/python3 tests/lib/wheels.py big "$work/wheels" --mb 24 --files 1200 >/dev/null
whl=$(ls "$work"/wheels/*.whl)

request() { # FILE PACKAGES_JSON NONCE
	/usr/bin/python3 - "$@" <<'PY'
import json, sys
spec = {"version": 1, "kind": "udf", "language": "python", "handler": "f", "input_types": [], "result_type": "INT",
        "imports": [], "packages": json.loads(sys.argv[2]), "runtime_version": "3.11",
        "code": "def f():\n    return %s\n" % sys.argv[3]}
json.dump({"spec": json.dumps(spec), "imports": []}, open(sys.argv[1], "w"))
PY
}
build() { # REQUEST STORE -> prints the JSON result
	"$bin" build "$1" --base "oci:$tiny:tiny" --dest "oci:$work/out:udf" --store "$2" --index-url "$work/wheels"
}

request "$work/big.json" '["bigpkg"]' 1
for i in $(seq "$runs"); do
	timed build "$work/big.json" "$work/store-$i" >>"$work/ours"
	rm -rf "$work/store-$i" "$work/out"
	timed /usr/bin/python3 -m pip install --isolated --no-index --find-links "$work/wheels" --disable-pip-version-check \
		--no-deps --target "$work/pip-$i" bigpkg >>"$work/peer"
	rm -rf "$work/pip-$i"
done
read -r ours_med _ < <(stats <"$work/ours")
read -r peer_med _ < <(stats <"$work/peer")
files=$(/usr/bin/python3 -c 'import sys, zipfile; print(len(zipfile.ZipFile(sys.argv[1]).namelist()))' "$whl")
mib=$(stat -c %s "$whl" | awk '{printf "%.1f", $1 / 1048576}')
row "install a ${mib} MiB, ${files}-file wheel into a layer (median ms)" "$ours_med" \
	"pip install --no-deps --target" "$peer_med" "$(awk -v a="$peer_med" -v b="$ours_med" 'BEGIN {printf "%.1fx faster", a / b}')" \
	">= 8x (issue 17)"

# The second UDF: the wheel's layer and the requirement set's lock are kept.
store="$work/shared"
build "$work/big.json" "$store" >/dev/null
for i in $(seq "$runs"); do
	request "$work/second-$i.json" '["bigpkg"]' "$((i + 100))"
	request "$work/none-$i.json" '[]' "$((i + 200))"
	timed_out "$work/second-$i.out" build "$work/second-$i.json" "$store" >>"$work/second"
	timed build "$work/none-$i.json" "$store" >>"$work/none"
done
read -r second_med _ < <(stats <"$work/second")
read -r none_med _ < <(stats <"$work/none")
unpacked=$(cat "$work"/second-*.out | /usr/bin/python3 -c 'import json, sys; print(sum(json.loads(l)["packages_installed"] for l in sys.stdin))')
row "second UDF on layered packages (median ms; wheels unpacked)" "$second_med; $unpacked unpacked" \
	"a UDF without packages" "$none_med" "$(awk -v a="$none_med" -v b="$second_med" 'BEGIN {printf "%.2fx", a / b}')" \
	"no package work (0 unpacked)"
