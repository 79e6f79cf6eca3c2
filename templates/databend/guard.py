"""Runs Databend's own server stub (/app/server.py, byte for byte as the
Databend script carries it) behind udf-builder's x-authorization check.

The stub checks no auth header and does not know /app/packages (udf-builder
installs packages there, one layer per wheel, instead of running pip).  This
wrapper, the image's command, adds both without touching the stub's text:
/app/packages goes on sys.path (the stub later puts the imports in front of
it), and databend_udf.UDFServer is replaced by a subclass that adds a Flight
middleware rejecting calls without a good x-authorization: a v2 token under
one of the sandbox's keys in UDF_AUTH_KEYS, not expired (or, for a sandbox
run by hand, one of the fixed tokens in UDF_AUTH_TOKEN).  Then the stub
runs as __main__.
"""

import hashlib
import hmac
import http.server
import os
import runpy
import sys
import threading
import time

APP_DIR = os.path.dirname(os.path.abspath(__file__))
STUB = os.path.join(APP_DIR, "server.py")
PACKAGES_DIR = os.path.join(APP_DIR, "packages")
AUTH_HEADER = "x-authorization"
TOKEN_SKEW_S = 60  # leeway for a control plane whose clock runs ahead of this machine's
FLIGHT_BOUND = threading.Event()
BIND_WAIT_S = 600  # a UDF whose import takes longer still gets its /health


def token_checker(keys, tokens):
    """Whether an x-authorization value is good (as templates/server.py).

    keys (UDF_AUTH_KEYS, what the service sets): this sandbox's keys, one per
    secret of the control plane, comma-separated; a token is
    "v2.<expires>.<hex HMAC-SHA256(key, 'udfb-token-v2\\n<expires>')>" and is
    refused once <expires> (Unix seconds) has passed (service/token.h).
    tokens (UDF_AUTH_TOKEN, for a sandbox run by hand): fixed tokens."""
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
        return expiring(value) or any(hmac.compare_digest(value, t) for t in fixed)

    return check


def auth_factory(check):
    from pyarrow.flight import FlightUnauthenticatedError, ServerMiddlewareFactory

    class TokenAuthFactory(ServerMiddlewareFactory):
        def start_call(self, info, headers):
            values = []
            for key, vals in (headers or {}).items():
                if key.lower() == AUTH_HEADER:
                    values.extend(vals if isinstance(vals, (list, tuple)) else [vals])
            if any(check(v) for v in values):
                return None
            # Never echo the header or the token back.
            raise FlightUnauthenticatedError("missing, invalid or expired x-authorization")

    return TokenAuthFactory()


def guard_server(check):
    import databend_udf

    base = databend_udf.UDFServer

    class GuardedUDFServer(base):
        def __init__(self, *args, **kwargs):
            if check:
                middleware = dict(kwargs.pop("middleware", None) or {})
                middleware["udf_auth"] = auth_factory(check)
                kwargs["middleware"] = middleware
            super().__init__(*args, **kwargs)
            FLIGHT_BOUND.set()  # the constructor binds the port

    databend_udf.UDFServer = GuardedUDFServer


def gate_status_server():
    base = http.server.HTTPServer

    class GatedHTTPServer(base):
        def serve_forever(self, *args, **kwargs):
            if getattr(self.RequestHandlerClass, "__name__", "") == "StatusHandler":
                FLIGHT_BOUND.wait(BIND_WAIT_S)
            return super().serve_forever(*args, **kwargs)

    http.server.HTTPServer = GatedHTTPServer


def main():
    if os.path.isdir(PACKAGES_DIR) and PACKAGES_DIR not in sys.path:
        sys.path.insert(0, PACKAGES_DIR)
    if APP_DIR not in sys.path:
        sys.path.append(APP_DIR)
    keys, tokens = os.environ.get("UDF_AUTH_KEYS"), os.environ.get("UDF_AUTH_TOKEN")
    guard_server(token_checker(keys, tokens) if keys or tokens else None)
    gate_status_server()
    sys.argv[0] = STUB
    runpy.run_path(STUB, run_name="__main__")


if __name__ == "__main__":
    main()
