#!/usr/bin/python3
"""The package-install fixtures test themselves: tests/lib/wheels.py makes
valid, deterministic wheels; tests/lib/pkgindex_server.py answers the simple
API as PEP 503/691/592/658 say (content negotiation, hashes, yanked,
metadata files, names, auth, 503s, its request log); and Debian's pip
(tests/lib/pip_reference.py) installs from it over loopback.  Needs
python3-pip and the python3-*-whl packages (deploy/install-deps.sh test)."""
import base64
import csv
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import harness  # noqa: E402
import pip_reference  # noqa: E402
import tap  # noqa: E402
import wheels  # noqa: E402
from tap import check, done  # noqa: E402

LIB = str(harness.LIB)

PY = "/usr/bin/python3"
PIP_ACCEPT = ("application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, "
              "text/html; q=0.01")
JSON_TYPE = "application/vnd.pypi.simple.v1+json"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args):
        return None


OPENER = urllib.request.build_opener(NoRedirect, urllib.request.ProxyHandler({}))


def get(port, path, accept=None, auth=None):
    """(status, headers, body) without following redirects."""
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path))
    if accept:
        req.add_header("Accept", accept)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with OPENER.open(req, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def start_server(wdir, *args):
    start_server.count = getattr(start_server, "count", 0) + 1
    log = os.path.join(os.path.dirname(wdir), "requests.%d.log" % start_server.count)
    p = subprocess.Popen([PY, os.path.join(LIB, "pkgindex_server.py"), "--dir", wdir, "--port", "0",
                          "--log", log] + list(args), stdout=subprocess.PIPE, text=True)
    port = int(p.stdout.readline())
    return p, port, log


def read_log(log):
    with open(log) as f:
        return f.read().splitlines()


def check_wheel(path):
    """Problems with one wheel file, as a list of strings (empty: valid)."""
    problems = []
    with zipfile.ZipFile(path) as z:
        infos = z.infolist()
        names = [i.filename for i in infos]
        infodirs = {x.split("/")[0] for x in names if x.split("/")[0].endswith(".dist-info")}
        if len(infodirs) != 1:
            return ["dist-info dirs: %r" % infodirs]
        info = infodirs.pop()
        fn = os.path.basename(path)
        if not fn.startswith(info[: -len(".dist-info")] + "-"):
            problems.append("dist-info %s does not match %s" % (info, fn))
        body = [x for x in names if not x.startswith(info + "/")]
        meta = [x for x in names if x.startswith(info + "/")]
        if body != sorted(body) or meta[:-1] != sorted(meta[:-1]) or meta[-1] != info + "/RECORD" \
                or names != body + meta:
            problems.append("entry order: %r" % names)
        for i in infos:
            if i.date_time != (1980, 1, 1, 0, 0, 0):
                problems.append("%s dated %r" % (i.filename, i.date_time))
        rows = list(csv.reader(io.StringIO(z.read(info + "/RECORD").decode())))
        recorded = {r[0]: r for r in rows}
        if sorted(recorded) != sorted(names):
            problems.append("RECORD lists %r, zip has %r" % (sorted(recorded), sorted(names)))
        for name in names:
            r = recorded.get(name)
            if not r or name == info + "/RECORD":
                continue
            data = z.read(name)
            want = "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode().rstrip("=")
            if r[1] != want or r[2] != str(len(data)) or "=" in r[1][len("sha256="):]:
                problems.append("RECORD of %s: %r, want %s,%d" % (name, r, want, len(data)))
        for need in ("METADATA", "WHEEL"):
            if info + "/" + need not in names:
                problems.append("no " + need)
        wheel = z.read(info + "/WHEEL").decode()
        if "Wheel-Version: 1.0" not in wheel or "Root-Is-Purelib:" not in wheel:
            problems.append("WHEEL: %r" % wheel)
    return problems


def main():
    if subprocess.run([PY, "-m", "pip", "--version"], capture_output=True).returncode != 0:
        tap.skip_all("Debian's pip is missing (deploy/install-deps.sh test)")
    work = tempfile.mkdtemp(prefix="udfb-pkgfixtures.")
    wdir = os.path.join(work, "wheels")

    # 1. The wheels: complete, valid, deterministic.
    made = wheels.build(wdir)
    again = wheels.build(os.path.join(work, "again"))
    same = made == again and all(
        open(os.path.join(wdir, f), "rb").read() == open(os.path.join(work, "again", f), "rb").read() for f in made)
    check("two builds give the same files, byte for byte", same)
    want = {"humanize-4.9.0-py3-none-any.whl", "humanize-4.8.0-py3-none-any.whl", "beta-2.0a1-py3-none-any.whl",
            "conflict_a-1.0-py3-none-any.whl", "sdistonly-1.0.tar.gz", "dotted_name_pkg-1.0-py3-none-any.whl",
            "platpkg-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            "platpkg-1.0-py3-none-any.whl", "winonly-1.0-cp311-cp311-win_amd64.whl", "datapkg-1.0-py3-none-any.whl"}
    check("the expected files are there", want <= set(made), sorted(want - set(made)))
    check("Debian's pip, setuptools and wheel wheels are copied",
          all(any(f.startswith(p + "-") for f in made) for p in ("pip", "setuptools", "wheel")), made)
    bad = {}
    for f in made:
        if f.endswith(".whl") and not f.startswith(("pip-", "setuptools-", "wheel-")):
            p = check_wheel(os.path.join(wdir, f))
            if p:
                bad[f] = p
    check("every generated wheel: one dist-info, sorted entries with RECORD last, 1980 dates, "
          "RECORD hashes (urlsafe b64, no padding) and sizes right", not bad, json.dumps(bad, indent=1))
    with zipfile.ZipFile(os.path.join(wdir, "datapkg-1.0-py3-none-any.whl")) as z:
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in z.infolist()}
    check("datapkg: executable script and package file are 0755 in the zip",
          modes.get("datapkg-1.0.data/scripts/dp-tool") == 0o755 and modes.get("datapkg/run.sh") == 0o755, modes)
    big_dir = os.path.join(work, "big")
    bigwhl = wheels.big(big_dir, mb=2, nfiles=120)
    bigwhl2 = wheels.big(os.path.join(work, "big2"), mb=2, nfiles=120)
    with zipfile.ZipFile(os.path.join(big_dir, bigwhl)) as z:
        total = sum(i.file_size for i in z.infolist())
        nfiles = len(z.infolist())
    check("big: deterministic, the asked size and file count",
          open(os.path.join(big_dir, bigwhl), "rb").read() == open(os.path.join(work, "big2", bigwhl2), "rb").read()
          and total >= 2 << 20 and nfiles >= 120 and not check_wheel(os.path.join(big_dir, bigwhl)), (total, nfiles))

    # 2. The index, through its command line.
    srv, port, log = start_server(wdir)
    try:
        st, hd, body = get(port, "/simple/")
        check("/simple/ lists the projects (HTML)", st == 200 and b'href="alpha/"' in body
              and b'href="dotted-name-pkg/"' in body and b'href="sdistonly/"' in body, body[:300])
        st, hd, body = get(port, "/simple/", accept=JSON_TYPE)
        names = [p["name"] for p in json.loads(body)["projects"]] if st == 200 else []
        check("/simple/ lists the projects (JSON)", "humanize" in names and "conflict-a" in names, body[:300])

        st, hd, body = get(port, "/simple/alpha/", accept=PIP_ACCEPT)
        check("pip's Accept gets PEP 691 JSON", st == 200 and hd["Content-Type"] == JSON_TYPE, (st, hd))
        page = json.loads(body)
        check("JSON page: api-version, name, versions",
              page["meta"]["api-version"].startswith("1.") and page["name"] == "alpha"
              and page["versions"] == ["1.0", "2.0"], page)
        for accept, what in ((None, "no Accept"), ("text/html", "text/html"), ("*/*", "*/*"),
                             (JSON_TYPE + "; q=0.1, text/html", "JSON at a lower q")):
            st, hd, hbody = get(port, "/simple/alpha/", accept=accept)
            check("%s gets HTML" % what, st == 200 and hd["Content-Type"].startswith("text/html")
                  and hbody.startswith(b"<!DOCTYPE html>"), (st, hd["Content-Type"]))
        st, hd, hbody = get(port, "/simple/alpha/", accept="application/vnd.pypi.simple.v1+html")
        check("v1+html asked for is what it answers", hd["Content-Type"] == "application/vnd.pypi.simple.v1+html",
              hd["Content-Type"])

        hashes_ok = True
        detail = []
        for f in page["files"]:
            fst, _, fdata = get(port, urllib.parse.urljoin("/simple/alpha/", f["url"]))
            real = hashlib.sha256(open(os.path.join(wdir, f["filename"]), "rb").read()).hexdigest()
            if not (f["url"] == "../../files/" + f["filename"] and fst == 200 and f["hashes"]["sha256"] == real
                    and hashlib.sha256(fdata).hexdigest() == real and f["size"] == len(fdata)):
                hashes_ok = False
                detail.append(f)
        check("JSON: relative file URLs, sha256 and size match the files served", hashes_ok, detail)
        hrefs = re.findall(r'href="([^"#]+)#sha256=([0-9a-f]{64})"', hbody.decode())
        check("HTML: relative links with #sha256= matching the files",
              len(hrefs) == 2 and all(h == hashlib.sha256(open(os.path.join(wdir, u.split("/")[-1]), "rb").read())
                                      .hexdigest() and u.startswith("../../files/") for u, h in hrefs), hrefs)

        st, _, body = get(port, "/simple/yanky/", accept=JSON_TYPE)
        yk = {f["filename"]: f.get("yanked") for f in json.loads(body)["files"]}
        check("JSON: yanky 1.1 yanked with its reason, 1.0 not",
              yk == {"yanky-1.0-py3-none-any.whl": None, "yanky-1.1-py3-none-any.whl": "broken release"}, yk)
        st, _, body = get(port, "/simple/yanky/")
        lines = body.decode().splitlines()
        check("HTML: data-yanked on 1.1 only",
              any("yanky-1.1" in l and 'data-yanked="broken release"' in l for l in lines)
              and not any("yanky-1.0" in l and "data-yanked" in l for l in lines), body)
        with open(os.path.join(wdir, "yanked.txt"), "a") as f:
            f.write("beta-1.0-py3-none-any.whl\n")
        st, _, body = get(port, "/simple/beta/", accept=JSON_TYPE)
        by = {f["filename"]: f.get("yanked") for f in json.loads(body)["files"]}
        _, _, hb = get(port, "/simple/beta/")
        check("a yanked line without a reason: JSON true, HTML data-yanked=\"\"",
              by.get("beta-1.0-py3-none-any.whl") is True
              and re.search(r'beta-1\.0-py3-none-any\.whl#sha256=[0-9a-f]+" data-yanked=""', hb.decode()), (by, hb))

        st, _, body = get(port, "/simple/humanize/", accept=JSON_TYPE)
        rp = {f["filename"]: f.get("requires-python") for f in json.loads(body)["files"]}
        _, _, hb = get(port, "/simple/humanize/")
        check("requires-python from METADATA (JSON, and HTML-escaped)",
              set(rp.values()) == {">=3.8"} and hb.count(b'data-requires-python="&gt;=3.8"') == 2, (rp, hb))
        st, _, body = get(port, "/simple/newpy/", accept=JSON_TYPE)
        rp = {f["filename"]: f.get("requires-python") for f in json.loads(body)["files"]}
        check("newpy's two requires-python", rp == {"newpy-1.0-py3-none-any.whl": ">=3.0",
                                                    "newpy-2.0-py3-none-any.whl": ">=3.99"}, rp)

        # PEP 658 / 714.
        st, _, body = get(port, "/simple/humanize/", accept=JSON_TYPE)
        files = {f["filename"]: f for f in json.loads(body)["files"]}
        f49, f48 = files["humanize-4.9.0-py3-none-any.whl"], files["humanize-4.8.0-py3-none-any.whl"]
        st, _, meta = get(port, "/files/humanize-4.9.0-py3-none-any.whl.metadata")
        with zipfile.ZipFile(os.path.join(wdir, "humanize-4.9.0-py3-none-any.whl")) as z:
            inner = z.read("humanize-4.9.0.dist-info/METADATA")
        check("PEP 658: core-metadata advertised, served, its sha256 right, same as the wheel's METADATA",
              st == 200 and meta == inner and f49.get("core-metadata") == {"sha256": hashlib.sha256(meta).hexdigest()}
              and "dist-info-metadata" not in f49, (st, f49))
        st48, _, _ = get(port, "/files/humanize-4.8.0-py3-none-any.whl.metadata")
        _, _, hb = get(port, "/simple/humanize/")
        l48 = [l for l in hb.decode().splitlines() if "humanize-4.8.0" in l]
        l49 = [l for l in hb.decode().splitlines() if "humanize-4.9.0" in l]
        check("a wheel in no-metadata.txt: nothing advertised, .metadata is a 404",
              "core-metadata" not in f48 and st48 == 404 and l48 and "metadata" not in l48[0], (f48, st48, l48))
        check("HTML: data-core-metadata and data-dist-info-metadata",
              l49 and 'data-core-metadata="sha256=%s"' % hashlib.sha256(meta).hexdigest() in l49[0]
              and 'data-dist-info-metadata="sha256=' in l49[0], l49)
        st, _, _ = get(port, "/files/sdistonly-1.0.tar.gz.metadata")
        check("no .metadata for an sdist", st == 404, st)

        st, hd, _ = get(port, "/simple/Dotted.Name_pkg/")
        check("an unnormalised name redirects to the PEP 503 name",
              st == 301 and hd["Location"] == "/simple/dotted-name-pkg/", (st, dict(hd)))
        st, hd, _ = get(port, "/simple/alpha")
        check("no trailing slash redirects", st == 301 and hd["Location"] == "/simple/alpha/", (st, dict(hd)))
        st, _, _ = get(port, "/simple/no-such-thing/")
        st2, _, _ = get(port, "/files/../yanked.txt")
        st3, _, _ = get(port, "/files/yanked.txt")
        check("unknown projects and non-distribution files are 404s", (st, st2, st3) == (404, 404, 404),
              (st, st2, st3))
        logged = read_log(log)
        check("the log has one line per request, method path status",
              len(logged) > 20 and "GET /simple/Dotted.Name_pkg/ 301" in logged
              and "GET /files/humanize-4.8.0-py3-none-any.whl.metadata 404" in logged, logged[-5:])
    finally:
        srv.kill()
        srv.wait()

    # 3. Options: --html-only, --auth, --fail-first.
    srv, port, log = start_server(wdir, "--html-only", "--auth", "user:s3cret", "--fail-first", "2")
    try:
        codes = [get(port, "/simple/alpha/", auth="user:s3cret")[0] for _ in range(3)]
        check("--fail-first 2: two 503s, then served", codes == [503, 503, 200], codes)
        st, hd, _ = get(port, "/simple/alpha/")
        st2, _, _ = get(port, "/files/alpha-1.0-py3-none-any.whl", auth="user:wrong")
        check("--auth: 401 with a Basic challenge without the right credentials",
              st == 401 and hd["WWW-Authenticate"].startswith("Basic") and st2 == 401, (st, st2))
        st, hd, body = get(port, "/simple/alpha/", accept=PIP_ACCEPT, auth="user:s3cret")
        check("--html-only: HTML even when JSON is preferred",
              st == 200 and hd["Content-Type"].startswith("text/html") and b"<a " in body, (st, hd["Content-Type"]))
        check("the log never holds credentials", not any("s3cret" in l for l in read_log(log)))

        # 4. Debian's pip installs from the index, with credentials in the URL.
        target = os.path.join(work, "t-humanize")
        p = pip_reference.install(["humanize==4.9.0"], target,
                                  index_url="http://user:s3cret@127.0.0.1:%d/simple" % port)
        check("pip installs humanize==4.9.0 from the index (HTML, auth)",
              p.returncode == 0 and pip_reference.resolved(target) == [("humanize", "4.9.0")], p.stdout + p.stderr)
        out = subprocess.run([PY, "-c", "import humanize; print(humanize.intcomma(1234567), humanize.__version__)"],
                             capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=target))
        check("humanize.intcomma works", out.stdout.strip() == "1,234,567 4.9.0", out.stdout + out.stderr)
        check("pip read PEP 658 metadata from the HTML page",
              "GET /files/humanize-4.9.0-py3-none-any.whl.metadata 200" in read_log(log), read_log(log)[-6:])
        tree = pip_reference.tree(target)
        paths = [t[0] for t in tree]
        check("tree() leaves out INSTALLER, RECORD, REQUESTED and __pycache__",
              "humanize/__init__.py" in paths and "humanize-4.9.0.dist-info/METADATA" in paths
              and not any(x.endswith(("INSTALLER", "RECORD", "REQUESTED")) or "__pycache__" in x for x in paths), paths)
    finally:
        srv.kill()
        srv.wait()

    srv, port, log = start_server(wdir)
    try:
        target = os.path.join(work, "t-alpha")
        p = pip_reference.install(["alpha"], target, index_url="http://127.0.0.1:%d/simple" % port)
        check("pip resolves alpha from the index (JSON): alpha 2.0 + beta 1.2",
              p.returncode == 0 and pip_reference.resolved(target) == [("alpha", "2.0"), ("beta", "1.2")],
              p.stdout + p.stderr)
        check("pip fetched JSON pages and the two wheels",
              "GET /simple/alpha/ 200" in read_log(log) and "GET /files/beta-1.2-py3-none-any.whl 200" in read_log(log),
              read_log(log))
        out = subprocess.run([PY, "-c", "import alpha; print(alpha.uses_beta())"], capture_output=True, text=True,
                             env=dict(os.environ, PYTHONPATH=target))
        check("alpha calls beta", out.stdout.strip() == "alpha 2.0 with beta 1.2", out.stdout + out.stderr)
        target = os.path.join(work, "t-yanky")
        p = pip_reference.install(["yanky"], target, index_url="http://127.0.0.1:%d/simple" % port)
        check("pip skips the yanked yanky 1.1", p.returncode == 0
              and pip_reference.resolved(target) == [("yanky", "1.0")], p.stdout + p.stderr)
    finally:
        srv.kill()
        srv.wait()
    shutil.rmtree(work, ignore_errors=True)
    return done()


if __name__ == "__main__":
    sys.exit(main())
