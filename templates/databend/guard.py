"""Runs Databend's own server stub (/app/server.py, byte for byte as the
Databend script carries it) behind udf-builder's x-authorization check.

The stub checks no auth header and does not know /app/packages (udf-builder
installs packages there, one layer per wheel, instead of running pip).  This
wrapper, the image's command, adds both without touching the stub's text:
/app/packages goes on sys.path (the stub later puts the imports in front of
it), and databend_udf.UDFServer is replaced by a subclass that adds a Flight
middleware rejecting calls without a good x-authorization.  The check is
udf-builder's own stub's (templates/server.py, shipped beside this file as
/app/udfb_server.py): one copy of the token rules for both kinds of image.
Then the stub runs as __main__.
"""

import http.server
import os
import runpy
import sys
import threading

APP_DIR = os.path.dirname(os.path.abspath(__file__))
STUB = os.path.join(APP_DIR, "server.py")
PACKAGES_DIR = os.path.join(APP_DIR, "packages")
FLIGHT_BOUND = threading.Event()
BIND_WAIT_S = 600  # a UDF whose import takes longer still gets its /health

# Before anything reaches sys.path: the imports cannot shadow it.
from udfb_server import make_auth_factory, token_checker  # noqa: E402


def guard_server(check):
    import databend_udf

    base = databend_udf.UDFServer

    class GuardedUDFServer(base):
        def __init__(self, *args, **kwargs):
            if check:
                middleware = dict(kwargs.pop("middleware", None) or {})
                middleware["udf_auth"] = make_auth_factory(check)
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
