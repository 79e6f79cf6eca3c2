#!/usr/bin/python3
"""A loopback package index (the "simple" repository API) serving the
distribution files of one directory, for tests only (stdlib only).

    pkgindex_server.py --dir DIR [--port 0] [--html-only] [--log FILE]
                       [--fail-first N] [--auth USER:PASS]
                       [--json-dist-info-metadata]

Prints the port on the first line of stdout once listening (like
http_server.py and token_server.py), then serves until killed.

- GET /simple/ lists the projects; GET /simple/NAME/ lists NAME's files.
  PEP 691 JSON (application/vnd.pypi.simple.v1+json, api-version 1.1 with
  "versions" and "size") when the Accept header prefers it (q-values
  honoured; no Accept or */* gets HTML), else PEP 503 HTML.  --html-only:
  always HTML (a PEP 503-only index).  A name that is not PEP 503
  normalised, or lacks the trailing slash, is a 301 to /simple/NORMALISED/.
  An unknown project is a 404.
- File links are relative ("../../files/FILENAME"), with the sha256 in
  "hashes" (JSON) or a "#sha256=" fragment (HTML); "requires-python" /
  data-requires-python from the wheel's METADATA (an sdist's PKG-INFO).
- DIR/yanked.txt: "FILENAME [REASON]" per line; those files are yanked
  (PEP 592): JSON "yanked": REASON or true, HTML data-yanked="REASON" ("" when
  no reason).
- PEP 658/714: every wheel not listed in DIR/no-metadata.txt has its core
  metadata at /files/FILENAME.metadata, advertised in HTML as both
  data-core-metadata and data-dist-info-metadata ("sha256=..."), and in JSON
  as "core-metadata": {"sha256": ...} only.  The old JSON key
  "dist-info-metadata" (a dict, as PEP 691 defines it) makes pip before 23.2
  crash (pip issue 12042: "TypeError: unhashable type: 'dict'"), which is why
  PEP 714 renamed it; --json-dist-info-metadata emits it too.  So Debian's
  pip 23.0.1 reads PEP 658 files from HTML pages only, and from a JSON page
  downloads the wheel for its METADATA.  The others' .metadata is a 404.
- GET /files/FILENAME serves the file.  HEAD works wherever GET does.
- --log FILE: one line per request, "METHOD PATH STATUS" (never credentials),
  flushed at once, so tests can count requests.
- --fail-first N: the first N requests get 503.
- --auth USER:PASS: every request without these Basic credentials gets 401
  (WWW-Authenticate: Basic).

Files are read at each request (hashes cached by size and mtime), so a test
may add files to DIR while the server runs.  Also importable:
start(dir, ...) returns a running server (.port, .shutdown()).
"""
import argparse
import base64
import hashlib
import html
import json
import os
import re
import sys
import tarfile
import threading
import urllib.parse
import zipfile
import http.server

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_V1_TYPE = "application/vnd.pypi.simple.v1+html"


def normalize(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def project_of(filename):
    """(normalised project, version) of a distribution file name, or None."""
    if filename.endswith(".whl"):
        parts = filename[:-4].split("-")
        if len(parts) in (5, 6):
            return normalize(parts[0]), parts[1]
        return None
    for ext in (".tar.gz", ".zip", ".tar.bz2", ".tgz"):
        if filename.endswith(ext):
            stem = filename[: -len(ext)]
            if "-" in stem:
                name, version = stem.rsplit("-", 1)
                return normalize(name), version
    return None


def core_metadata(path):
    """The METADATA of a wheel (PKG-INFO of an sdist), as bytes, or None."""
    try:
        if path.endswith(".whl"):
            with zipfile.ZipFile(path) as z:
                names = [n for n in z.namelist()
                         if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
                return z.read(names[0]) if len(names) == 1 else None
        if path.endswith((".tar.gz", ".tgz", ".tar.bz2")):
            with tarfile.open(path) as t:
                for m in t.getmembers():
                    if m.isfile() and m.name.count("/") == 1 and m.name.endswith("/PKG-INFO"):
                        return t.extractfile(m).read()
    except (OSError, zipfile.BadZipFile, tarfile.TarError, KeyError):
        return None
    return None


def header(meta, field):
    if meta is None:
        return None
    for line in meta.decode("utf-8", "replace").split("\n"):
        if not line.strip():
            break
        k, _, v = line.partition(":")
        if k.strip().lower() == field.lower():
            return v.strip()
    return None


def accept_json(accept, html_only):
    """Whether Accept prefers PEP 691 JSON over HTML."""
    if html_only or not accept:
        return False
    best = {"json": -1.0, "html": -1.0}
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        mtype = fields[0].lower()
        q = 1.0
        for f in fields[1:]:
            if f.lower().startswith("q="):
                try:
                    q = float(f[2:])
                except ValueError:
                    q = 0.0
        if mtype in (JSON_TYPE, "application/vnd.pypi.simple.latest+json"):
            best["json"] = max(best["json"], q)
        elif mtype in (HTML_V1_TYPE, "application/vnd.pypi.simple.latest+html", "text/html", "text/*", "*/*"):
            best["html"] = max(best["html"], q)
    return best["json"] > 0 and best["json"] >= best["html"]


class Index:
    def __init__(self, directory, html_only=False, log=None, fail_first=0, auth=None, json_old_key=False):
        self.dir = os.path.abspath(directory)
        self.html_only = html_only
        self.log_path = log
        self.fail_left = fail_first
        self.auth = auth
        self.json_old_key = json_old_key
        self.lock = threading.Lock()
        self.cache = {}  # path -> ((size, mtime_ns), sha256, metadata bytes)

    def log(self, method, path, status):
        if self.log_path:
            with self.lock, open(self.log_path, "a") as f:
                f.write("%s %s %d\n" % (method, path, status))

    def take_failure(self):
        with self.lock:
            if self.fail_left > 0:
                self.fail_left -= 1
                return True
            return False

    def listed(self, name):
        try:
            with open(os.path.join(self.dir, name)) as f:
                lines = [l.strip() for l in f if l.strip() and not l.startswith("#")]
        except FileNotFoundError:
            return {}
        return {l.split(None, 1)[0]: (l.split(None, 1) + [""])[1] for l in lines}

    def info(self, filename):
        path = os.path.join(self.dir, filename)
        st = os.stat(path)
        key = (st.st_size, st.st_mtime_ns)
        with self.lock:
            hit = self.cache.get(path)
        if hit and hit[0] == key:
            return hit
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        entry = (key, h.hexdigest(), core_metadata(path), st.st_size)
        with self.lock:
            self.cache[path] = entry
        return entry

    def projects(self):
        out = {}
        for fn in sorted(os.listdir(self.dir)):
            p = project_of(fn)
            if p and os.path.isfile(os.path.join(self.dir, fn)):
                out.setdefault(p[0], []).append((fn, p[1]))
        return out

    def files(self, project):
        """Entries of one project's files, as dicts of what the pages say."""
        yanked = self.listed("yanked.txt")
        no_meta = self.listed("no-metadata.txt")
        out = []
        for fn, version in self.projects().get(project, []):
            _, sha, meta, size = self.info(fn)
            e = {"filename": fn, "version": version, "sha256": sha, "size": size,
                 "requires_python": header(meta, "Requires-Python"),
                 "yanked": yanked.get(fn) if fn in yanked else None, "metadata_sha256": None}
            if fn.endswith(".whl") and fn not in no_meta and meta is not None:
                e["metadata_sha256"] = hashlib.sha256(meta).hexdigest()
            out.append(e)
        return out

    def metadata_offered(self, filename):
        if not filename.endswith(".whl") or filename in self.listed("no-metadata.txt"):
            return None
        if project_of(filename) is None or not os.path.isfile(os.path.join(self.dir, filename)):
            return None
        return self.info(filename)[2]


def project_json(name, files, old_key=False):
    out = {"meta": {"api-version": "1.1"}, "name": name, "files": [], "versions": []}
    for e in files:
        f = {"filename": e["filename"], "url": "../../files/" + urllib.parse.quote(e["filename"]),
             "hashes": {"sha256": e["sha256"]}, "size": e["size"]}
        if e["requires_python"]:
            f["requires-python"] = e["requires_python"]
        if e["yanked"] is not None:
            f["yanked"] = e["yanked"] or True
        if e["metadata_sha256"]:
            f["core-metadata"] = {"sha256": e["metadata_sha256"]}
            if old_key:
                f["dist-info-metadata"] = {"sha256": e["metadata_sha256"]}
        out["files"].append(f)
        if e["version"] not in out["versions"]:
            out["versions"].append(e["version"])
    return json.dumps(out, indent=1, sort_keys=True).encode()


def project_html(name, files):
    lines = ["<!DOCTYPE html>", "<html>", "<head>", '<meta name="pypi:repository-version" content="1.1">',
             "<title>Links for %s</title>" % html.escape(name), "</head>", "<body>",
             "<h1>Links for %s</h1>" % html.escape(name)]
    for e in files:
        attrs = ['href="../../files/%s#sha256=%s"' % (html.escape(urllib.parse.quote(e["filename"])), e["sha256"])]
        if e["requires_python"]:
            attrs.append('data-requires-python="%s"' % html.escape(e["requires_python"]))
        if e["yanked"] is not None:
            attrs.append('data-yanked="%s"' % html.escape(e["yanked"]))
        if e["metadata_sha256"]:
            attrs.append('data-core-metadata="sha256=%s"' % e["metadata_sha256"])
            attrs.append('data-dist-info-metadata="sha256=%s"' % e["metadata_sha256"])
        lines.append("<a %s>%s</a><br>" % (" ".join(attrs), html.escape(e["filename"])))
    lines += ["</body>", "</html>", ""]
    return "\n".join(lines).encode()


def root_json(names):
    return json.dumps({"meta": {"api-version": "1.1"}, "projects": [{"name": n} for n in names]},
                      indent=1, sort_keys=True).encode()


def root_html(names):
    lines = ["<!DOCTYPE html>", "<html>", "<head>", '<meta name="pypi:repository-version" content="1.1">',
             "<title>Simple index</title>", "</head>", "<body>"]
    lines += ['<a href="%s/">%s</a><br>' % (html.escape(n), html.escape(n)) for n in names]
    lines += ["</body>", "</html>", ""]
    return "\n".join(lines).encode()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    index = None  # set on the subclass made by make_server

    def log_message(self, *args):
        pass

    def reply(self, code, body=b"", ctype="text/plain", headers=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.index.log(self.command, self.path, code)

    def authorised(self):
        if not self.index.auth:
            return True
        want = "Basic " + base64.b64encode(self.index.auth.encode()).decode()
        return self.headers.get("Authorization", "") == want

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        ix = self.index
        if ix.take_failure():
            return self.reply(503, b"try again\n", headers=[("Retry-After", "0")])
        if not self.authorised():
            return self.reply(401, b"credentials needed\n", headers=[("WWW-Authenticate", 'Basic realm="pkgindex"')])
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        if path in ("/simple", "/simple/"):
            if path == "/simple":
                return self.reply(301, headers=[("Location", "/simple/")])
            names = sorted(ix.projects())
            if accept_json(self.headers.get("Accept"), ix.html_only):
                return self.reply(200, root_json(names), JSON_TYPE, [("Vary", "Accept")])
            return self.reply(200, root_html(names), self.html_type(), [("Vary", "Accept")])
        m = re.fullmatch(r"/simple/([^/]+)(/?)", path)
        if m:
            name = m.group(1)
            if normalize(name) != name or not m.group(2):
                return self.reply(301, headers=[("Location", "/simple/%s/" % urllib.parse.quote(normalize(name)))])
            files = ix.files(name)
            if not files:
                return self.reply(404, b"no such project\n")
            if accept_json(self.headers.get("Accept"), ix.html_only):
                return self.reply(200, project_json(name, files, ix.json_old_key), JSON_TYPE, [("Vary", "Accept")])
            return self.reply(200, project_html(name, files), self.html_type(), [("Vary", "Accept")])
        m = re.fullmatch(r"/files/([^/]+)", path)
        if m:
            fn = m.group(1)
            if fn.endswith(".metadata"):
                meta = ix.metadata_offered(fn[: -len(".metadata")])
                if meta is None:
                    return self.reply(404, b"no metadata\n")
                return self.reply(200, meta, "application/octet-stream")
            full = os.path.join(ix.dir, fn)
            if fn.startswith(".") or project_of(fn) is None or not os.path.isfile(full):
                return self.reply(404, b"no such file\n")
            with open(full, "rb") as f:
                return self.reply(200, f.read(), "application/octet-stream")
        return self.reply(404, b"not found\n")

    def html_type(self):
        if not self.index.html_only and HTML_V1_TYPE in (self.headers.get("Accept") or ""):
            return HTML_V1_TYPE
        return "text/html; charset=utf-8"


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


def make_server(directory, port=0, host="127.0.0.1", **kw):
    handler = type("BoundHandler", (Handler,), {"index": Index(directory, **kw)})
    server = Server((host, port), handler)
    server.port = server.server_address[1]
    return server


def start(directory, **kw):
    """A server running in a daemon thread; call .shutdown() when done."""
    server = make_server(directory, **kw)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main(argv=None):
    ap = argparse.ArgumentParser(prog="pkgindex_server.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--html-only", action="store_true")
    ap.add_argument("--log")
    ap.add_argument("--fail-first", type=int, default=0)
    ap.add_argument("--auth", help="USER:PASS")
    ap.add_argument("--json-dist-info-metadata", action="store_true")
    a = ap.parse_args(argv)
    server = make_server(a.dir, a.port, html_only=a.html_only, log=a.log, fail_first=a.fail_first, auth=a.auth,
                         json_old_key=a.json_dist_info_metadata)
    print(server.port, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
