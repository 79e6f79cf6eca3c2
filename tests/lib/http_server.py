#!/usr/bin/python3
"""Serves a directory over HTTP on 127.0.0.1 (stand-in for an object store
answering presigned URLs; query strings are ignored as S3 would check them).
Prints the port on the first line of stdout, then serves until killed."""
import functools
import http.server
import sys
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
    def handle_error(self, request, client_address):
        # A client that hangs up early (a fetch cancelled on purpose) is normal.
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


def main():
    handler = functools.partial(Quiet, directory=sys.argv[1])
    server = Server(("127.0.0.1", 0), handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
