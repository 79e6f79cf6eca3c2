#!/usr/bin/python3
"""Test fixtures for package installs: real, valid wheels made here (stdlib
only, deterministic: the same bytes on every run), plus copies of Debian's
own wheels (python3-pip-whl, python3-setuptools-whl, python3-wheel-whl).

    python3 tests/lib/wheels.py build DIR
    python3 tests/lib/wheels.py big DIR [--mb 24] [--files 1200]

`build` writes into DIR (created when missing):

    humanize 4.8.0, 4.9.0     intcomma(value); Requires-Python >=3.8
    alpha 1.0, 2.0            alpha 2.0 Requires-Dist beta>=1.1
    beta 1.0, 1.1, 1.2, 2.0a1 (2.0a1 a pre-release, never picked by default)
    gamma 1.0, delta 1.0      gamma: Provides-Extra fast, delta ; extra == "fast"
    epsilon 1.0, zeta, eta    zeta ; python_version < "3.0" (never),
                              eta ; sys_platform == "linux" (installed)
    conflict-a 1.0, conflict-b 1.0, shared 1.0, 2.0
                              shared<2 vs shared>=2: no solution
    theta 1.0, 2.0, kappa 1.0, iota 1.0, 2.0
                              theta 2.0 pins iota==1.0, kappa needs iota>=2:
                              `theta kappa` backtracks to theta 1.0
    sdistonly-1.0.tar.gz      an sdist (PKG-INFO, pyproject.toml), no wheel
    yanky 1.0, 1.1            1.1 listed in yanked.txt
    newpy 1.0, 2.0            Requires-Python >=3.0 / >=3.99
    platpkg 1.0               cp311 manylinux2014 x86_64 wheel (FLAVOUR "native",
                              Root-Is-Purelib false) and py3-none-any ("pure")
    winonly 1.0               cp311-cp311-win_amd64 only
    datapkg 1.0               .data/{scripts,headers,data,purelib}, a console
                              script, an executable file in the package
    Dotted.Name_pkg 1.0       dotted_name_pkg-1.0-py3-none-any.whl
    pip, setuptools, wheel    Debian's wheels, copied
    yanked.txt                "FILENAME REASON" per line: files the index marks yanked
    no-metadata.txt           wheels whose PEP 658 .metadata the index does not offer

Every generated module has a function to call (`describe()` returns
"NAME VERSION"; humanize has intcomma).  Zip entries: 1980-01-01 00:00:00,
Unix modes, deflated, the package files sorted, then the .dist-info files
sorted with RECORD last; RECORD has urlsafe-base64 sha256 without padding.

`big` writes bigpkg-1.0-py3-none-any.whl: FILES files (.py modules holding
hex strings and .bin blobs) of pseudo-random bytes from a fixed seed, MB MiB
in all, for benchmarks.

What real pip (Debian's 23.0.1, /usr/bin/python3 3.11, x86_64, glibc 2.36)
does with these, seen through tests/lib/pip_reference.py (pip install
--target T --only-binary :all:, from --find-links DIR or from
tests/lib/pkgindex_server.py):
  - alpha -> alpha 2.0 + beta 1.2; beta -> 1.2 (2.0a1 only with --pre or
    beta==2.0a1); gamma[fast] -> gamma + delta; epsilon -> epsilon + eta, no
    zeta; conflict-a conflict-b -> exit 1, "ResolutionImpossible"; theta
    kappa -> theta 1.0 + iota 2.0 + kappa 1.0; newpy -> 1.0; winonly and
    sdistonly -> exit 1, "No matching distribution found" (without
    --only-binary pip builds sdistonly with setuptools and wheel from DIR);
    Dotted.Name_pkg -> pip asks the index for /simple/dotted-name-pkg/.
  - platpkg -> the cp311 manylinux2014_x86_64 wheel (FLAVOUR "native").
  - yanky -> 1.0 from the index; yanky==1.1 -> 1.1 with a warning giving the
    reason.  --find-links has no yanking: there yanky -> 1.1.
  - --target layout (datapkg): purelib and platlib at T/ (T/datapkg/,
    T/datapkg_extra.py from .data/purelib); scripts and console scripts in
    T/bin/ (dp-tool, dp-hello); headers in T/include/python/NAME/ with NAME
    the Name field as written (a "Hdr.Pkg_X" wheel gets
    include/python/Hdr.Pkg_X/h.h); data at T/ (T/share/datapkg/readme.txt).
  - Modes (umask 022): 0644, or 0755 for an entry with any x bit in the wheel
    (datapkg/run.sh, bin/dp-tool) and for generated console scripts.  A
    script without x bits in the wheel stays 0644.
  - A script whose first line starts with "#!python" gets that whole line
    replaced by "#!/usr/bin/python3" (sys.executable): "#!python -u" loses
    its "-u".  Other shebangs ("#!/usr/bin/env python") are left alone.
  - The console script pip writes (distlib), byte for byte:
        #!/usr/bin/python3
        # -*- coding: utf-8 -*-
        import re
        import sys
        from datapkg.cli import main
        if __name__ == '__main__':
            sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])
            sys.exit(main())
  - .dist-info gets INSTALLER ("pip\\n"), REQUESTED (empty; only for the
    projects named on the command line, not dependencies), RECORD rewritten with
    the files outside the package dir as "../../bin/dp-tool",
    "../../include/python/datapkg/datapkg.h", "../../share/datapkg/readme.txt"
    (relative to the temporary home scheme's lib/python that --target moves
    from, so wrong relative to T), no direct_url.json from an index.
  - From a JSON page pip 23.0.1 never uses PEP 658 metadata (it does not know
    "core-metadata", and crashes on a dict "dist-info-metadata", pip issue
    12042) and downloads whole wheels; from an HTML page it fetches
    FILE.metadata first (data-dist-info-metadata), then the wheel.
  - Retries: a 503 is retried at once (two 503s then 200 install fine);
    credentials in --index-url are sent to the index and its files; a 401
    without them is "No matching distribution found".
"""
import argparse
import base64
import csv
import gzip
import hashlib
import io
import os
import random
import re
import shutil
import sys
import tarfile
import zipfile

DATE = (1980, 1, 1, 0, 0, 0)
TAR_MTIME = 315532800  # 1980-01-01 00:00:00 UTC
DEBIAN_WHEELS = "/usr/share/python-wheels"
DEBIAN_PROJECTS = ("pip", "setuptools", "wheel")
GENERATOR = "udfb-test-wheels (1.0)"


def normalize(name):
    """PEP 503."""
    return re.sub(r"[-_.]+", "-", name).lower()


def dist_name(name):
    """The name part of wheel and .dist-info names: normalised, '_' for '-'."""
    return normalize(name).replace("-", "_")


def record_hash(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def metadata_text(name, version, requires_python=None, requires=(), extras=(), summary=None):
    lines = ["Metadata-Version: 2.1", "Name: " + name, "Version: " + version,
             "Summary: " + (summary or "udf-builder test fixture %s %s" % (name, version))]
    if requires_python:
        lines.append("Requires-Python: " + requires_python)
    for e in extras:
        lines.append("Provides-Extra: " + e)
    for r in requires:
        lines.append("Requires-Dist: " + r)
    return "\n".join(lines) + "\n\n"


def zinfo(path, mode):
    zi = zipfile.ZipInfo(path, DATE)
    zi.create_system = 3
    zi.external_attr = (0o100000 | mode) << 16
    zi.compress_type = zipfile.ZIP_DEFLATED
    return zi


def write_wheel(outdir, name, version, files, tags=("py3-none-any",), purelib=True, requires_python=None,
                requires=(), extras=(), entry_points=None, data=None):
    """files: {path: bytes or (bytes, mode)} at the wheel's root; data:
    {"scripts/x": ...} below NAME-VERSION.data/.  Returns the file name."""
    dn = dist_name(name)
    info = "%s-%s.dist-info" % (dn, version)
    data_dir = "%s-%s.data" % (dn, version)
    body = []
    for path, content in files.items():
        body.append((path, content))
    for path, content in (data or {}).items():
        body.append((data_dir + "/" + path, content))
    body.sort(key=lambda e: e[0])
    meta = [(info + "/METADATA", metadata_text(name, version, requires_python, requires, extras).encode())]
    wheel = ["Wheel-Version: 1.0", "Generator: " + GENERATOR,
             "Root-Is-Purelib: " + ("true" if purelib else "false")]
    # Compressed tag sets ("cp311-cp311-a.b") expand to one Tag line each.
    expanded = []
    for t in tags:
        py, abi, plat = t.split("-")
        for p in py.split("."):
            for a in abi.split("."):
                for pl in plat.split("."):
                    expanded.append("%s-%s-%s" % (p, a, pl))
    wheel += ["Tag: " + t for t in expanded]
    meta.append((info + "/WHEEL", ("\n".join(wheel) + "\n\n").encode()))
    if entry_points:
        meta.append((info + "/entry_points.txt", entry_points.encode()))
    meta.append((info + "/top_level.txt", "".join(sorted({p.split("/")[0].removesuffix(".py") + "\n"
                                                         for p, _ in body if not p.startswith(data_dir)})).encode()))
    meta.sort(key=lambda e: e[0])
    entries = []
    for path, content in body + meta:
        mode = 0o644
        if isinstance(content, tuple):
            content, mode = content
        if isinstance(content, str):
            content = content.encode()
        entries.append((path, content, mode))
    rec = io.StringIO()
    w = csv.writer(rec, lineterminator="\n")
    for path, content, _ in entries:
        w.writerow([path, record_hash(content), len(content)])
    w.writerow([info + "/RECORD", "", ""])
    entries.append((info + "/RECORD", rec.getvalue().encode(), 0o644))
    # Several tag triples: each field of the name joins its distinct values.
    filename = "%s-%s-%s.whl" % (dn, version, "-".join(
        ".".join(dict.fromkeys(t.split("-")[i] for t in tags)) for i in range(3)))
    tmp = os.path.join(outdir, "." + filename + ".tmp")
    with zipfile.ZipFile(tmp, "w") as z:
        for path, content, mode in entries:
            z.writestr(zinfo(path, mode), content)
    os.replace(tmp, os.path.join(outdir, filename))
    return filename


def module(name, version, extra=""):
    return ('"""%s %s: a udf-builder test fixture."""\n__version__ = "%s"\n\n\n'
            'def describe():\n    return "%s %s"\n' % (name, version, version, name, version)) + extra


HUMANIZE = '''

def intcomma(value, ndigits=None):
    """Converts an integer (or float, or a string of one) to a string with
    a comma every three digits: intcomma(1000000) == "1,000,000"."""
    if value is None:
        return "None"
    if isinstance(value, str):
        try:
            text = value.replace(",", "")
            value = float(text) if any(c in text for c in ".eE") else int(text)
        except ValueError:
            return value
    if ndigits is not None:
        return "{:,.{}f}".format(value, ndigits)
    return "{:,}".format(value)
'''


def pure(outdir, name, version, requires=(), requires_python=None, extras=(), extra_code=""):
    pkg = dist_name(name)
    return write_wheel(outdir, name, version, {pkg + "/__init__.py": module(name, version, extra_code)},
                       requires=requires, requires_python=requires_python, extras=extras)


def write_sdist(outdir, name, version):
    dn = dist_name(name)
    root = "%s-%s" % (dn, version)
    files = {
        "PKG-INFO": metadata_text(name, version),
        "pyproject.toml": ('[build-system]\nrequires = ["setuptools>=61"]\n'
                           'build-backend = "setuptools.build_meta"\n\n'
                           '[project]\nname = "%s"\nversion = "%s"\n' % (name, version)),
        dn + "/__init__.py": module(name, version),
    }
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        dirs = sorted({"/".join(p.split("/")[:i]) for p in files for i in range(1, p.count("/") + 1)})
        for d in [""] + dirs:
            ti = tarfile.TarInfo(root + ("/" + d if d else ""))
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, TAR_MTIME
            t.addfile(ti)
        for path in sorted(files):
            content = files[path].encode()
            ti = tarfile.TarInfo(root + "/" + path)
            ti.size, ti.mode, ti.mtime = len(content), 0o644, TAR_MTIME
            t.addfile(ti, io.BytesIO(content))
    filename = root + ".tar.gz"
    out = io.BytesIO()
    with gzip.GzipFile(filename="", fileobj=out, mode="wb", compresslevel=9, mtime=0) as g:
        g.write(buf.getvalue())
    with open(os.path.join(outdir, filename), "wb") as f:
        f.write(out.getvalue())
    return filename


def build(outdir):
    os.makedirs(outdir, exist_ok=True)
    made = []
    p = lambda *a, **k: made.append(pure(outdir, *a, **k))  # noqa: E731
    for v in ("4.8.0", "4.9.0"):
        p("humanize", v, requires_python=">=3.8", extra_code=HUMANIZE)
    alpha2 = ('\n\ndef uses_beta():\n    import beta\n    return "alpha 2.0 with " + beta.describe()\n')
    p("alpha", "1.0")
    p("alpha", "2.0", requires=["beta>=1.1"], extra_code=alpha2)
    for v in ("1.0", "1.1", "1.2", "2.0a1"):
        p("beta", v)
    p("gamma", "1.0", extras=["fast"], requires=['delta ; extra == "fast"'])
    p("delta", "1.0")
    p("epsilon", "1.0", requires=['zeta ; python_version < "3.0"', 'eta ; sys_platform == "linux"'])
    p("zeta", "1.0")
    p("eta", "1.0")
    p("conflict-a", "1.0", requires=["shared<2"])
    p("conflict-b", "1.0", requires=["shared>=2"])
    p("shared", "1.0")
    p("shared", "2.0")
    p("theta", "1.0", requires=["iota>=1.0"])
    p("theta", "2.0", requires=["iota==1.0"])
    p("kappa", "1.0", requires=["iota>=2"])
    p("iota", "1.0")
    p("iota", "2.0")
    made.append(write_sdist(outdir, "sdistonly", "1.0"))
    p("yanky", "1.0")
    p("yanky", "1.1")
    p("newpy", "1.0", requires_python=">=3.0")
    p("newpy", "2.0", requires_python=">=3.99")
    flavour = lambda f: {"platpkg/__init__.py": module("platpkg", "1.0", 'FLAVOUR = "%s"\n' % f)}  # noqa: E731
    made.append(write_wheel(outdir, "platpkg", "1.0", flavour("native"), purelib=False,
                            tags=("cp311-cp311-manylinux_2_17_x86_64", "cp311-cp311-manylinux2014_x86_64")))
    made.append(write_wheel(outdir, "platpkg", "1.0", flavour("pure")))
    made.append(write_wheel(outdir, "winonly", "1.0", {"winonly/__init__.py": module("winonly", "1.0")},
                            purelib=False, tags=("cp311-cp311-win_amd64",)))
    made.append(write_wheel(
        outdir, "datapkg", "1.0",
        {"datapkg/__init__.py": module("datapkg", "1.0"),
         "datapkg/cli.py": 'def main():\n    print("hello from datapkg")\n    return 0\n',
         "datapkg/run.sh": ("#!/bin/sh\necho datapkg run.sh\n", 0o755)},
        data={"scripts/dp-tool": ('#!python\nimport datapkg\nprint("dp-tool", datapkg.describe())\n', 0o755),
              "headers/datapkg.h": "#define DATAPKG_VERSION \"1.0\"\n",
              "data/share/datapkg/readme.txt": "datapkg data file\n",
              "purelib/datapkg_extra.py": 'def extra():\n    return "datapkg extra"\n'},
        entry_points="[console_scripts]\ndp-hello = datapkg.cli:main\n"))
    made.append(write_wheel(outdir, "Dotted.Name_pkg", "1.0",
                            {"dotted_name_pkg/__init__.py": module("Dotted.Name_pkg", "1.0")}))
    for proj in DEBIAN_PROJECTS:
        found = sorted(f for f in os.listdir(DEBIAN_WHEELS) if f.startswith(proj + "-") and f.endswith(".whl")) \
            if os.path.isdir(DEBIAN_WHEELS) else []
        if not found:
            sys.exit("wheels.py: no %s wheel in %s (apt-get install python3-%s-whl)" % (proj, DEBIAN_WHEELS, proj))
        shutil.copyfile(os.path.join(DEBIAN_WHEELS, found[-1]), os.path.join(outdir, found[-1]))
        made.append(found[-1])
    with open(os.path.join(outdir, "yanked.txt"), "w") as f:
        f.write("yanky-1.1-py3-none-any.whl broken release\n")
    # Wheels whose PEP 658 metadata the index does not offer: the installer
    # must read METADATA from inside the wheel for these.
    no_meta = ["alpha-1.0-py3-none-any.whl", "beta-1.1-py3-none-any.whl", "humanize-4.8.0-py3-none-any.whl",
               "iota-2.0-py3-none-any.whl", "theta-1.0-py3-none-any.whl", "epsilon-1.0-py3-none-any.whl",
               "datapkg-1.0-py3-none-any.whl"]
    with open(os.path.join(outdir, "no-metadata.txt"), "w") as f:
        f.write("".join(n + "\n" for n in no_meta))
    return made


def big(outdir, mb=24, nfiles=1200):
    """One wheel of nfiles files, mb MiB of content in all, deterministic."""
    os.makedirs(outdir, exist_ok=True)
    rng = random.Random(20240101)
    total = mb << 20
    # Uneven sizes that add up to total: weights from the generator.
    weights = [rng.randint(1, 100) for _ in range(nfiles)]
    scale = total / sum(weights)
    sizes = [max(1, int(w * scale)) for w in weights]
    sizes[-1] += total - sum(sizes)
    files = {"bigpkg/__init__.py": module("bigpkg", "1.0", "\nFILES = %d\n" % nfiles)}
    for i, size in enumerate(sizes):
        d = "bigpkg/part%02d" % (i % 40)
        if i % 3 == 0:
            # A module holding a hex string: size bytes, about half random.
            files["%s/m%04d.py" % (d, i)] = 'DATA = "%s"\n' % rng.randbytes(max(0, (size - 10) // 2)).hex()
        else:
            files["%s/b%04d.bin" % (d, i)] = rng.randbytes(size)
    for k in range(40):
        files["bigpkg/part%02d/__init__.py" % k] = ""
    return write_wheel(outdir, "bigpkg", "1.0", files)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="wheels.py", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="write the fixture wheels into DIR")
    b.add_argument("dir")
    g = sub.add_parser("big", help="write bigpkg-1.0-py3-none-any.whl into DIR")
    g.add_argument("dir")
    g.add_argument("--mb", type=int, default=24)
    g.add_argument("--files", type=int, default=1200)
    a = ap.parse_args(argv)
    if a.cmd == "build":
        for f in build(a.dir):
            print(f)
    else:
        print(big(a.dir, a.mb, a.files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
