# TEST DOUBLE standing in for the real databend-udf runtime (which needs
# pyarrow and cannot be installed on the test machines).  It keeps the real
# module's shapes that the server stub relies on:
#   - udf(...) returns a decorator producing an object with `_name`, `_func`
#     and `eval_batch(batch, headers=None)`, callable like the function;
#   - UDFServer(location, middleware=...) binds in the constructor, takes
#     add_function(obj) keyed by obj._name, and blocks in serve().
# Instead of Arrow Flight it speaks a tiny JSON-over-HTTP protocol:
#   POST /call  {"function": NAME, "args": [...]}  -> 200 {"result": VALUE}
#   (401 unauthenticated, 404 unknown function, 400 bad body, 500 other error,
#   all as {"error": MESSAGE});  GET /functions -> 200 [{"name",
#   "input_types", "result_type"}, ...].
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pyarrow.flight import (
    CallInfo,
    FlightMethod,
    FlightUnauthenticatedError,
    ServerMiddleware,
    ServerMiddlewareFactory,
)


class ScalarFunction:
    def __init__(self, func, input_types, result_type, name=None):
        if isinstance(func, ScalarFunction):
            # The real runtime would fail on inspect.getfullargspec here.
            raise TypeError("function is already decorated: " + func._name)
        self._func = func
        self._input_types = list(input_types) if isinstance(input_types, list) else [input_types]
        self._result_type = result_type
        self._name = name or func.__name__

    def eval_batch(self, batch, headers=None):
        # batch: a list of rows; one output batch holding one value per row.
        yield [self._func(*row) for row in batch]

    def __call__(self, *args):
        return self._func(*args)


def udf(input_types, result_type, name=None, **kwargs):
    return lambda f: ScalarFunction(f, input_types, result_type, name)


class _HeadersFactory(ServerMiddlewareFactory):
    # The real UDFServer always adds a "log_headers" middleware.
    def start_call(self, info, headers):
        return ServerMiddleware()


class UDFServer:
    def __init__(self, location="0.0.0.0:8815", middleware=None, **kwargs):
        self._functions = {}
        self._middleware = dict(middleware or {})
        self._middleware.setdefault("log_headers", _HeadersFactory())
        host, port = location.rsplit(":", 1)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path != "/functions":
                    return self.reply(404, {"error": "not found"})
                self.reply(200, [
                    {"name": f._name, "input_types": f._input_types,
                     "result_type": f._result_type}
                    for f in server._functions.values()])

            def do_POST(self):
                if self.path != "/call":
                    return self.reply(404, {"error": "not found"})
                status, body = server._call(self)
                self.reply(status, body)

            def reply(self, status, body):
                data = json.dumps(body, default=str).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format, *args):
                pass

        self._http = ThreadingHTTPServer((host.strip("[]"), int(port)), Handler)

    def _call(self, req):
        headers = {}
        for key, value in req.headers.items():
            headers.setdefault(key.lower(), []).append(value)
        try:
            length = int(req.headers.get("Content-Length") or 0)
            body = json.loads(req.rfile.read(length) or b"null")
            name, args = body["function"], list(body["args"])
        except (ValueError, TypeError, KeyError) as e:
            return 400, {"error": "bad request: %s" % e}
        started = []
        try:
            for factory in self._middleware.values():
                mw = factory.start_call(CallInfo(FlightMethod.DO_EXCHANGE), headers)
                if mw is not None:
                    started.append(mw)
        except FlightUnauthenticatedError as e:
            return 401, {"error": str(e)}
        except Exception as e:
            return 500, {"error": "%s: %s" % (type(e).__name__, e)}
        fn = self._functions.get(name)
        error = None
        try:
            if fn is None:
                return 404, {"error": "Function %s does not exists" % name}
            value = next(iter(fn.eval_batch([args], headers)))[0]
            return 200, {"result": value}
        except Exception as e:
            error = e
            return 500, {"error": "%s: %s" % (type(e).__name__, e)}
        finally:
            for mw in started:
                if hasattr(mw, "call_completed"):
                    mw.call_completed(error)

    def add_function(self, udf):
        if udf._name in self._functions:
            raise ValueError("Function already exists: " + udf._name)
        self._functions[udf._name] = udf

    def serve(self):
        self._http.serve_forever()
