"""Server stub baked into every UDF image as /app/server.py.

Its bytes are identical for every UDF: everything that varies (handler name,
SQL types) is read from udf.json next to this file, so the stub layer of an
image is shared and cacheable.  It loads the user's code from udf.py, wraps the
handler with databend-udf's @udf unless it is already decorated, serves it with
databend_udf.UDFServer (Arrow Flight), checks `x-authorization` when
UDF_AUTH_KEYS (or UDF_AUTH_TOKEN) is set, and answers /health and /stats on
RESOURCE_STATUS_ADDR.

From the runtime it uses only databend_udf.udf, databend_udf.UDFServer
(location=, middleware=, add_function, serve) and pyarrow.flight's
ServerMiddlewareFactory and FlightUnauthenticatedError, so a newer
databend-udf keeps working as long as those stay put.
"""

import hashlib
import hmac
import importlib.util
import json
import os
import socket
import sys
import threading
import time
import traceback
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Exit code for "this image was built wrong" (bad udf.json, missing handler):
# distinct from 1 (an ordinary crash) so the control plane can tell them apart.
EXIT_CONFIG = 2

APP_DIR = os.path.dirname(os.path.abspath(__file__))
IMPORTS_DIR = os.path.join(APP_DIR, "imports")
PACKAGES_DIR = os.path.join(APP_DIR, "packages")
ARCHIVE_SUFFIXES = (".zip", ".whl", ".egg")
AUTH_HEADER = "x-authorization"
# Leeway for a control plane whose clock runs ahead of this machine's.
TOKEN_SKEW_S = 60


def fail(message, code=EXIT_CONFIG):
    sys.stderr.write("udf server: %s\n" % message)
    sys.stderr.flush()
    sys.exit(code)


def load_config():
    path = os.path.join(APP_DIR, "udf.json")
    try:
        with open(path, "r", encoding="utf-8") as f:
            config = json.load(f)
    except FileNotFoundError:
        fail("%s is missing" % path)
    except (OSError, ValueError) as e:
        fail("cannot read %s: %s" % (path, e))
    if not isinstance(config, dict):
        fail("%s: expected a JSON object" % path)
    handler = config.get("handler")
    input_types = config.get("input_types")
    result_type = config.get("result_type")
    if not isinstance(handler, str) or not handler.isidentifier():
        fail("%s: \"handler\" must be a Python identifier, got %r" % (path, handler))
    if not isinstance(input_types, list) or not all(
        isinstance(t, str) for t in input_types
    ):
        fail("%s: \"input_types\" must be a list of strings" % path)
    if not isinstance(result_type, str) or not result_type:
        fail("%s: \"result_type\" must be a non-empty string" % path)
    return handler, input_types, result_type


def setup_import_path():
    # Same layout Databend's embedded Python UDFs see: the imports directory
    # and every archive in it are importable, and user code can find its
    # staged files through sys._xoptions.  Sorted so the order is stable.
    entries = [IMPORTS_DIR]
    if os.path.isdir(IMPORTS_DIR):
        for name in sorted(os.listdir(IMPORTS_DIR)):
            full = os.path.join(IMPORTS_DIR, name)
            if name.lower().endswith(ARCHIVE_SUFFIXES) and os.path.isfile(full):
                entries.append(full)
    # Packages installed by udf-builder (one layer per wheel) come after the
    # imports, as site-packages comes after a script's own directory.
    if os.path.isdir(PACKAGES_DIR):
        entries.append(PACKAGES_DIR)
    sys.path[:0] = [p for p in entries if p not in sys.path]
    # The script's directory is normally sys.path[0], but not under -P,
    # PYTHONSAFEPATH or some launchers; keep `import udf` working regardless.
    if APP_DIR not in sys.path:
        sys.path.append(APP_DIR)
    sys._xoptions.setdefault("databend_import_directory", IMPORTS_DIR)


def load_user_module():
    # Load udf.py by path rather than by name: the imports directory comes
    # first on sys.path, and a staged file that happens to be called udf.py
    # must not replace the user's code.
    path = os.path.join(APP_DIR, "udf.py")
    if not os.path.isfile(path):
        fail("%s is missing" % path)
    spec = importlib.util.spec_from_file_location("udf", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["udf"] = module
    try:
        spec.loader.exec_module(module)
    except Exception:
        traceback.print_exc()
        fail("importing %s failed (traceback above)" % path)
    return module


def is_decorated(obj):
    # databend-udf's @udf returns a ScalarFunction/TableFunction instance,
    # which UDFServer.add_function uses through `_name` and `eval_batch`.
    # Duck typing, so nothing but `udf` and `UDFServer` is imported from the
    # runtime and a user subclass of UserDefinedFunction is accepted too.
    return isinstance(getattr(obj, "_name", None), str) and callable(
        getattr(obj, "eval_batch", None)
    )


class RequestStats:
    """Counters behind /stats; an idle-suspend policy reads last_request_time."""

    def __init__(self):
        self._lock = threading.Lock()
        self.count = 0
        self.first = None
        self.last = None

    def record(self):
        now = datetime.now(timezone.utc)
        with self._lock:
            self.count += 1
            if self.first is None:
                self.first = now
            self.last = now

    def snapshot(self):
        with self._lock:
            return {
                "request_count": self.count,
                "first_request_time": iso_utc(self.first),
                "last_request_time": iso_utc(self.last),
            }


def iso_utc(when):
    return None if when is None else when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def count_batches(fn, stats):
    # Requests are counted per evaluated batch by wrapping the function
    # object's eval_batch, which UDFServer.do_exchange calls once per input
    # record batch.  A Flight middleware would count calls instead, including
    # schema lookups (GetFlightInfo) that evaluate nothing, and one DoExchange
    # may carry many batches.  Rejected (unauthenticated) calls never get here.
    original = fn.eval_batch

    def eval_batch(*args, **kwargs):
        stats.record()
        return original(*args, **kwargs)

    try:
        fn.eval_batch = eval_batch
    except (AttributeError, TypeError):
        sys.stderr.write("udf server: cannot count requests for this function\n")


def token_checker(keys, tokens):
    """A function telling whether an x-authorization value is good.

    keys (UDF_AUTH_KEYS, what the service sets): this sandbox's keys, one per
    secret of the control plane, comma-separated; a token is
    "v2.<expires>.<hex HMAC-SHA256(key, 'udfb-token-v2\\n<expires>')>" and is
    refused once <expires> (Unix seconds) has passed (service/token.h).
    tokens (UDF_AUTH_TOKEN, for a stub run by hand): fixed tokens, compared
    as they are.  Both lists allow a rotation: old and new are accepted."""
    keys = [k.strip().encode("ascii") for k in (keys or "").split(",") if k.strip()]
    fixed = [t.strip().encode("utf-8") for t in (tokens or "").split(",") if t.strip()]

    def expiring(value):
        parts = value.split(b".")
        if len(parts) != 3 or parts[0] != b"v2" or not parts[1].isdigit() or len(parts[1]) > 18:
            return False
        msg = b"udfb-token-v2\n" + parts[1]
        # Every key is tried, in constant time for each.
        good = [hmac.compare_digest(hmac.new(k, msg, hashlib.sha256).hexdigest().encode(), parts[2]) for k in keys]
        return any(good) and int(parts[1]) + TOKEN_SKEW_S >= time.time()

    def check(value):
        if isinstance(value, str):
            value = value.encode("utf-8", "surrogateescape")
        if not isinstance(value, bytes):
            return False
        # Constant time so the token cannot be guessed byte by byte.
        return expiring(value) or any(hmac.compare_digest(value, t) for t in fixed)

    return check


def make_auth_factory(check):
    from pyarrow.flight import FlightUnauthenticatedError, ServerMiddlewareFactory

    class TokenAuthFactory(ServerMiddlewareFactory):
        """Rejects every Flight call without a good x-authorization."""

        def start_call(self, info, headers):
            values = []
            for key, vals in (headers or {}).items():
                if key.lower() == AUTH_HEADER:
                    values.extend(vals if isinstance(vals, (list, tuple)) else [vals])
            if any(check(v) for v in values):
                return None  # no per-call state needed
            # Never echo the header or the token back.
            raise FlightUnauthenticatedError("missing, invalid or expired x-authorization")

    return TokenAuthFactory()


def split_addr(addr, default_port):
    host, sep, port = addr.rpartition(":")
    if not sep:
        host, port = addr, str(default_port)
    host = host.strip("[]") or "0.0.0.0"
    try:
        return host, int(port)
    except ValueError:
        fail("bad address %r: expected host:port" % addr)


def start_status_server(addr, stats):
    class StatusHandler(BaseHTTPRequestHandler):
        def do_GET(self):
            path = self.path.split("?", 1)[0]
            if path == "/health":
                self.reply(200, "text/plain", b"1")
            elif path == "/stats":
                body = json.dumps(stats.snapshot()).encode("utf-8")
                self.reply(200, "application/json", body)
            else:
                self.reply(404, "text/plain", b"not found\n")

        def reply(self, status, content_type, body):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):
            # Health probes arrive every few seconds; keep stderr for errors.
            pass

    class StatusServer(ThreadingHTTPServer):
        daemon_threads = True

    host, port = split_addr(addr, 8080)
    if ":" in host:
        StatusServer.address_family = socket.AF_INET6
    try:
        server = StatusServer((host, port), StatusHandler)
    except OSError as e:
        fail("status server cannot listen on %s: %s" % (addr, e), code=1)
    thread = threading.Thread(target=server.serve_forever, name="status", daemon=True)
    thread.start()
    return server


def main():
    handler, input_types, result_type = load_config()
    setup_import_path()
    module = load_user_module()

    udf_path = os.path.join(APP_DIR, "udf.py")
    fn = getattr(module, handler, None)
    if fn is None:
        fail("handler %r not found in %s" % (handler, udf_path))
    if not callable(fn):
        fail("handler %r in %s is not callable" % (handler, udf_path))

    from databend_udf import UDFServer, udf

    if not is_decorated(fn):
        try:
            fn = udf(name=handler, input_types=input_types, result_type=result_type)(fn)
        except Exception as e:
            fail("cannot declare handler %r as a UDF: %s" % (handler, e))

    stats = RequestStats()
    count_batches(fn, stats)

    middleware = {}
    keys, tokens = os.environ.get("UDF_AUTH_KEYS"), os.environ.get("UDF_AUTH_TOKEN")
    if keys or tokens:
        middleware["udf_auth"] = make_auth_factory(token_checker(keys, tokens))

    location = os.environ.get("UDF_SERVER_ADDR") or "0.0.0.0:8815"
    server = UDFServer(location=location, middleware=middleware)
    server.add_function(fn)

    # Flight binds its port in the constructor, so starting the status server
    # only now means /health == 1 implies the UDF endpoint is accepting calls.
    start_status_server(os.environ.get("RESOURCE_STATUS_ADDR") or "0.0.0.0:8080", stats)
    server.serve()


if __name__ == "__main__":
    main()
