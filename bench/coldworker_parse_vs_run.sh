#!/usr/bin/env bash
# Issue 13: a cold CreateWorker for a UDF with two packages (humanize 4.9.0
# and alpha 1.0 from the test wheels' index on loopback, one import from an
# import server on loopback), from the call until it answers with the
# endpoint of a sandbox whose /health says 1.  Ours: the script parsed
# (script_mode = parse), its packages already layered by an earlier UDF (a
# new UDF needs only its own small layers), the sandbox started under runc.
# Peer, in the same run: Databend's own way, the same script run as-is
# (script_mode = run: bash, pip installing both packages from the same index
# at every start, the downloader, then the stub), same runtime, same base.
# Each call carries a new UDF (its code differs by a comment), so every
# call builds and starts a sandbox.  Medians and p95 of BENCH_COLD (5) calls
# each; aim: parse mode under 1 s.  Needs root, runc, overlayfs, Debian's
# python3-grpcio; the runtime inside the base is the TEST DOUBLE of
# databend_udf.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
export UDFB_BIN=${UDFB_BIN:-$PWD/bin/udf-builder}
n=${BENCH_COLD:-5}
out=$(/usr/bin/python3 - "$n" <<'PY'
import json, os, shutil, sys, tempfile, time
sys.path.insert(0, "tests/lib")
import harness
from http_server import ImportServer

n = int(sys.argv[1])
work = tempfile.mkdtemp(prefix="udfb-bench-coldrun.")
os.chmod(work, 0o755)
imports = None
try:
    (pb,) = harness.load_protos(work, "resource")
    base = harness.python_base()
    index, _ = harness.start_index(work)
    vectors = harness.DATABEND
    imports = ImportServer(harness.vector_files(vectors))
    d = harness.vector("add_one_helper", imports.port, vectors, ".create_worker")
    script = d["script"].replace("install --no-cache-dir humanize==4.9.0\n",
                                 "install --no-cache-dir humanize==4.9.0 alpha==1.0\n", 1)
    script = script.replace('# dependencies = ["humanize==4.9.0"]', '# dependencies = ["humanize==4.9.0", "alpha==1.0"]', 1)
    script = script.replace("import humanize\n", "import humanize\nimport alpha\n", 1)

    def variant(mode, i):
        """A new UDF: the same script, its code one comment longer."""
        s = script.replace("    return helper.add_one(x)\n", "    return helper.add_one(x)\n# %s %d\n" % (mode, i), 1)
        if mode == "run":  # a shape the parser does not know: run as-is
            s = s.replace("set -euo pipefail\n", "set -eu\n", 1)
        return dict(d, script=s, name="cold_%s_%d" % (mode, i))

    def serve(mode, ports):
        return harness.SandboxService(os.path.join(work, mode), index, [("3", "oci:%s:python" % base)],
                                      os.path.join(work, "layers"), ports, tenant="test_tenant",
                                      args=("--script-mode", mode),
                                      opts={"start_timeout_ms": "120000", "max_per_tenant": "100", "max_total": "100"})

    res = {}
    for mode, ports in (("parse", (23000, 23499)), ("run", (23500, 23999))):
        srv = serve(mode, ports)
        try:
            # Warm-up, not counted: the base unpacked, and (parse) the two
            # packages resolved and layered.
            r = srv.create_worker(variant(mode, 0), timeout=300)
            assert r.code == "OK", r
            times = []
            for i in range(1, n + 1):
                t0 = time.monotonic()
                r = srv.create_worker(variant(mode, i), timeout=300)
                ms = (time.monotonic() - t0) * 1e3
                ok, why = harness.called(r, "add_one", [1], 2)
                assert ok, why
                times.append(ms)
            res[mode] = times
        finally:
            srv.stop()
    print(json.dumps(res))
finally:
    if imports:
        imports.close()
    harness.remove_sandbox_leftovers()
    shutil.rmtree(work, ignore_errors=True)
PY
)
parse=$(echo "$out" | /usr/bin/python3 -c 'import json,sys; print("\n".join("%.1f" % x for x in json.load(sys.stdin)["parse"]))' | stats)
run=$(echo "$out" | /usr/bin/python3 -c 'import json,sys; print("\n".join("%.1f" % x for x in json.load(sys.stdin)["run"]))' | stats)
pm=${parse% *} pp=${parse#* } rm_=${run% *} rp=${run#* }
row "cold CreateWorker, 2 packages, to /health (median; p95)" "${pm} ms; ${pp} ms" "script_mode=run (pip at start)" \
	"${rm_} ms; ${rp} ms" "$(awk -v a="$rm_" -v b="$pm" 'BEGIN {printf "%.1fx faster", a / b}')" "parse < 1000 ms"
