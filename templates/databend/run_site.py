"""sitecustomize of a Databend script run as-is (script_mode = run).

udf-builder runs a script whose shape its parser does not know (a newer
Databend's) as the script says: pip, the import downloader, then
`exec python /app/server.py`.  Its stub checks no auth header, and its text
is not touched: this module, found first on PYTHONPATH by every Python the
script starts, only hooks two imports.  When `databend_udf` is imported,
its UDFServer is replaced by the subclass of udfb_guard.py (the wrapper the
parsed path runs) that rejects Flight calls without a good x-authorization;
when `http.server` is imported, a status server named StatusHandler answers
only once the Flight port is bound.  pip and the downloader import neither
(or never serve): they run unchanged.
"""

import os
import sys


def _guard(name, module):
    import udfb_guard

    if name == "databend_udf":
        keys, tokens = os.environ.get("UDF_AUTH_KEYS"), os.environ.get("UDF_AUTH_TOKEN")
        udfb_guard.guard_server(udfb_guard.token_checker(keys, tokens) if keys or tokens else None)
    elif name == "http.server":
        # As udfb_guard.gate_status_server(), on the module being imported
        # (the package's attribute `http.server` is set only afterwards).
        base = module.HTTPServer

        class GatedHTTPServer(base):
            def serve_forever(self, *args, **kwargs):
                if getattr(self.RequestHandlerClass, "__name__", "") == "StatusHandler":
                    udfb_guard.FLIGHT_BOUND.wait(udfb_guard.BIND_WAIT_S)
                return super().serve_forever(*args, **kwargs)

        module.HTTPServer = GatedHTTPServer


class _Hook:
    NAMES = ("databend_udf", "http.server")

    def find_spec(self, name, path=None, target=None):
        if name not in self.NAMES:
            return None
        spec = None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader = spec.loader
        run = loader.exec_module

        def exec_module(module):
            run(module)
            _guard(name, module)

        loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _Hook())
