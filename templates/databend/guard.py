"""Runs Databend's own server stub (/app/server.py, byte for byte as the
Databend script carries it) behind udf-builder's x-authorization check.

The stub checks no auth header and does not know /app/packages (udf-builder
installs packages there, one layer per wheel, instead of running pip).  This
wrapper, the image's command, adds both without touching the stub's text:
/app/packages goes on sys.path (the stub later puts the imports in front of
it), and databend_udf.UDFServer is replaced by a subclass that adds a Flight
middleware rejecting calls whose x-authorization is not one of the tokens in
UDF_AUTH_TOKEN (comma-separated, during a secret rotation).  Then the stub
runs as __main__.
"""

import hmac
import http.server
import os
import runpy
import sys
import threading

APP_DIR = os.path.dirname(os.path.abspath(__file__))
STUB = os.path.join(APP_DIR, "server.py")
PACKAGES_DIR = os.path.join(APP_DIR, "packages")
AUTH_HEADER = "x-authorization"
FLIGHT_BOUND = threading.Event()
BIND_WAIT_S = 600  # a UDF whose import takes longer still gets its /health


def auth_factory(tokens):
    from pyarrow.flight import FlightUnauthenticatedError, ServerMiddlewareFactory

    accepted = [t.strip().encode("utf-8") for t in tokens.split(",") if t.strip()]

    class TokenAuthFactory(ServerMiddlewareFactory):
        def start_call(self, info, headers):
            for key, vals in (headers or {}).items():
                if key.lower() != AUTH_HEADER:
                    continue
                for value in vals if isinstance(vals, (list, tuple)) else [vals]:
                    if isinstance(value, str):
                        value = value.encode("utf-8", "surrogateescape")
                    # Constant time so the token cannot be guessed byte by byte.
                    if isinstance(value, bytes) and any(hmac.compare_digest(value, t) for t in accepted):
                        return None
            raise FlightUnauthenticatedError("missing or invalid x-authorization")

    return TokenAuthFactory()


def guard_server(tokens):
    import databend_udf

    base = databend_udf.UDFServer

    class GuardedUDFServer(base):
        def __init__(self, *args, **kwargs):
            if tokens:
                middleware = dict(kwargs.pop("middleware", None) or {})
                middleware["udf_auth"] = auth_factory(tokens)
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
    guard_server(os.environ.get("UDF_AUTH_TOKEN"))
    gate_status_server()
    sys.argv[0] = STUB
    runpy.run_path(STUB, run_name="__main__")


if __name__ == "__main__":
    main()
