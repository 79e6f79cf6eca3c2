#!/usr/bin/python3
"""Writes a realistic Databend CreateWorker script for the benchmarks: the
add_one_helper vector's script (Databend's templates) with 2 packages, 3
imports behind presigned URLs on IMPORTS_BASE, and code padded to about 8 KB.

bench/databend_script.py OUT_DIR HOST:PORT [--signature HEX]: writes
OUT_DIR/script.sh, OUT_DIR/create_worker.json (proto3 JSON) and the three
import files under OUT_DIR/files/imports/."""
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def script(host, signature="0" * 64):
    base = json.loads((REPO / "tests/data/databend/add_one_helper.create_worker.json").read_text())["script"]
    names = ["helper.py", "data_a.txt", "data_b.txt"]
    imports = []
    for n in names:
        url = ("http://%s/imports/%s?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=minioadmin%%2F20260822%%2F"
               "us-east-1%%2Fs3%%2Faws4_request&X-Amz-Date=20260822T093015Z&X-Amz-Expires=259200&"
               "X-Amz-SignedHeaders=host&X-Amz-Signature=%s" % (host, n, signature))
        imports.append({"location": "@udf_import_stage/imports/" + n, "url": url, "headers": {"host": host}})
    line = json.dumps(imports, separators=(",", ":"))
    start = base.index("cat <<'UDF_IMPORTS' > /app/imports.json\n") + len("cat <<'UDF_IMPORTS' > /app/imports.json\n")
    end = base.index("\nUDF_IMPORTS\n", start)
    s = base[:start] + line + base[end:]
    s = s.replace("python -m pip install --no-cache-dir humanize==4.9.0\n",
                  "python -m pip install --no-cache-dir humanize==4.9.0 beta\n")
    pad = "".join("# padding line %04d: a realistic UDF carries comments and helpers\n" % k for k in range(28))
    s = s.replace("import helper\n", pad + "import helper\n", 1)
    return s


def main():
    out, host = Path(sys.argv[1]), sys.argv[2]
    sig = sys.argv[4] if len(sys.argv) > 4 and sys.argv[3] == "--signature" else "0" * 64
    s = script(host, sig)
    (out / "files" / "imports").mkdir(parents=True, exist_ok=True)
    (out / "files/imports/helper.py").write_text("def add_one(x: int) -> int:\n    return x + 1\n")
    (out / "files/imports/data_a.txt").write_text("a" * 1000)
    (out / "files/imports/data_b.txt").write_text("b" * 1000)
    (out / "script.sh").write_text(s)
    d = {"tenantId": "bench", "name": "add_one", "ifNotExists": True, "type": "udf", "script": s}
    (out / "create_worker.json").write_text(json.dumps(d))
    print(len(s.encode()))


if __name__ == "__main__":
    main()
