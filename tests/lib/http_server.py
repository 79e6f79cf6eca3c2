#!/usr/bin/python3
"""The import server of the tests: a stand-in for the object store behind
Databend's presigned URLs, on 127.0.0.1 (query strings are ignored, as S3
checks them and we do not).

As a program (the shell tests and benchmarks): serves a directory; prints
the port on the first line of stdout, then serves until killed.  /slow/PATH
serves PATH after 2 s: a build that stays in flight.

As a module (the Python tests): ImportServer serves files held in memory
as an object store does (ETag; Range bytes=0-0 answered 206 unless
honor_range is off), lets a test answer paths of its own first (dynamic),
and records every request."""
import functools
import hashlib
import http.server
import sys
import threading
import time


class Quiet(http.server.SimpleHTTPRequestHandler):
    """/slow/PATH serves PATH after 2 s: a build that stays in flight."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path.startswith("/slow/"):
            time.sleep(2)
            self.path = self.path[len("/slow"):]
        super().do_GET()


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that hangs up early (a fetch cancelled on purpose) is normal.
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


def serve(handler):
    """A Server for handler on 127.0.0.1:0, serving in a daemon thread."""
    server = Server(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class ImportServer:
    """Serves `files` ({path without the leading slash: bytes or str}).
    `dynamic(path)`, when given, is asked first and answers (status, body)
    or None.  Every GET is recorded in `requests` as (path, Range, Host)."""

    def __init__(self, files=None, dynamic=None, honor_range=True):
        self.files = {}
        self.requests = []
        self.queries = []  # the query string of each request, in the order of requests
        self.honor_range = honor_range
        self.cond = threading.Condition()
        for name, content in (files or {}).items():
            self.put(name, content)
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                path = self.path.split("?", 1)[0].lstrip("/")
                with outer.cond:
                    outer.requests.append((path, self.headers.get("Range"), self.headers.get("Host")))
                    outer.queries.append(self.path.split("?", 1)[1] if "?" in self.path else "")
                    outer.cond.notify_all()
                    body, honor = outer.files.get(path), outer.honor_range
                answer = dynamic(path) if dynamic else None
                try:
                    if answer is not None:
                        self.reply(*answer)
                    elif body is None:
                        self.reply(404, b"")
                    elif honor and self.headers.get("Range") == "bytes=0-0" and body:
                        self.reply(206, body[:1], body, [("Content-Range", "bytes 0-0/%d" % len(body))])
                    else:
                        self.reply(200, body, body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # a client that stopped while it downloaded

            def reply(self, status, out, whole=None, headers=()):
                self.send_response(status)
                if whole is not None:
                    self.send_header("ETag", '"%s"' % hashlib.md5(whole).hexdigest())
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.httpd = serve(Handler)
        self.port = self.httpd.server_address[1]

    def url(self, path):
        return "http://127.0.0.1:%d/%s" % (self.port, path.lstrip("/"))

    def put(self, name, content):
        with self.cond:
            self.files[name.lstrip("/")] = content.encode() if isinstance(content, str) else content

    def count(self, path=None):
        """Requests so far, for one path or for all."""
        with self.cond:
            return len([r for r in self.requests if path is None or r[0] == path.lstrip("/")])

    def wait_for_request(self, path, timeout):
        with self.cond:
            if not self.cond.wait_for(lambda: any(r[0] == path.lstrip("/") for r in self.requests), timeout):
                raise AssertionError("the server never fetched %s" % path)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def main():
    handler = functools.partial(Quiet, directory=sys.argv[1])
    server = Server(("127.0.0.1", 0), handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
