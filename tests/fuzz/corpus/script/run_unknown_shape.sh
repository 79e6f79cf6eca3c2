#!/usr/bin/env bash
set -eu
WORKDIR=/app
mkdir -p "$WORKDIR"
cd "$WORKDIR"

python -m pip install --no-cache-dir humanize==4.9.0
mkdir -p /app/imports
cat <<'UDF_IMPORTS' > /app/imports.json
[{"location":"@udf_import_stage/imports/helper.py","url":"http://IMPORTS_BASE/imports/helper.py?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=minioadmin%2F20260822%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20260822T093015Z&X-Amz-Expires=259200&X-Amz-SignedHeaders=host&X-Amz-Signature=52fea4ff9e00c3b3ae6c1302d0adcf41827ba4757348a24a3f3bcf6f1c7c8240","headers":{"host":"IMPORTS_BASE"}}]
UDF_IMPORTS
python - <<'PY'
import json
import os
import urllib.parse
import urllib.request

def _rewrite_url(url):
    override = os.getenv("RESOURCE_IMPORTS_HOST")
    if not override:
        return url
    parsed = urllib.parse.urlsplit(url)
    if parsed.hostname not in ("127.0.0.1", "localhost"):
        return url
    netloc = override
    if parsed.port:
        netloc = f"{override}:{parsed.port}"
    return urllib.parse.urlunsplit((parsed.scheme, netloc, parsed.path, parsed.query, parsed.fragment))

def _import_basename(location, index):
    name = location.strip().rstrip("/").split("/")[-1]
    if not name:
        return f"import_{index}"
    return name

with open("/app/imports.json", "r") as f:
    imports = json.load(f)

for index, item in enumerate(imports):
    location = item.get("location", "")
    url = item.get("url", "")
    headers = item.get("headers") or {}
    if not url:
        continue
    url = _rewrite_url(url)
    dest = os.path.join("/app/imports", _import_basename(location, index))
    req = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(req, timeout=30) as resp, open(dest, "wb") as out:
        out.write(resp.read())
PY



cat <<'UDF_CODE' > /app/udf.py
# /// script
# dependencies = ["humanize==4.9.0"]
# ///
import helper
import humanize

def add_one(x: int) -> int:
    humanize.intcomma(x)
    return helper.add_one(x)
UDF_CODE
cat <<'UDF_SERVER_1' > /app/server.py
import importlib
import json
import os
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer
from databend_udf import UDFServer, udf as udf_decorator

IMPORTS_DIR = "/app/imports"
sys._xoptions["databend_import_directory"] = IMPORTS_DIR
STATUS_ADDR = os.getenv("RESOURCE_STATUS_ADDR", "0.0.0.0:8080")
_request_lock = threading.Lock()
_request_count = 0
_first_request_time = None
_last_request_time = None

def _record_request():
    global _request_count, _first_request_time, _last_request_time
    now = time.time()
    with _request_lock:
        if _first_request_time is None:
            _first_request_time = now
        _last_request_time = now
        _request_count += 1

def _format_time(value):
    if value is None:
        return None
    return datetime.fromtimestamp(value, timezone.utc).isoformat()

class StatusHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health":
            data = b"1"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(data)
            return
        if self.path != "/stats":
            self.send_response(404)
            self.end_headers()
            return
        payload = {
            "request_count": _request_count,
            "first_request_time": _format_time(_first_request_time),
            "last_request_time": _format_time(_last_request_time),
        }
        data = json.dumps(payload).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, format, *args):
        return

def _serve_status():
    host, port = STATUS_ADDR.rsplit(":", 1)
    server = HTTPServer((host, int(port)), StatusHandler)
    server.serve_forever()

def _add_imports():
    if not os.path.isdir(IMPORTS_DIR):
        return
    sys.path.insert(0, IMPORTS_DIR)
    for name in os.listdir(IMPORTS_DIR):
        path = os.path.join(IMPORTS_DIR, name)
        if os.path.isfile(path):
            ext = os.path.splitext(name)[1].lower()
            if ext in (".zip", ".whl", ".egg"):
                sys.path.insert(0, path)

def _load_udf():
    return importlib.import_module("udf")

def _wrap_udf(func):
    return udf_decorator(name="add_one", input_types=["INT NULL"], result_type="INT NULL")(func)

def _track_udf(udf):
    if hasattr(udf, "eval_batch"):
        original = udf.eval_batch
        def wrapped(*args, **kwargs):
            _record_request()
            return original(*args, **kwargs)
        udf.eval_batch = wrapped
        return udf
    def wrapper(*args, **kwargs):
        _record_request()
        return udf(*args, **kwargs)
    return wrapper

def main():
    status_thread = threading.Thread(target=_serve_status, daemon=True)
    status_thread.start()
    _add_imports()
    udf = _load_udf()
    address = os.getenv("UDF_SERVER_ADDR", "0.0.0.0:8815")
    server = UDFServer(location=address)
    func = getattr(udf, "add_one")
    if not hasattr(func, "_name"):
        func = _wrap_udf(func)
    func = _track_udf(func)
    server.add_function(func)
    server.serve()

if __name__ == "__main__":
    main()

UDF_SERVER_1
exec python /app/server.py
