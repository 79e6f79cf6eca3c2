#!/usr/bin/python3
"""Real pip as the independent reference for package installs (Debian's pip,
python3-pip, run as `/usr/bin/python3 -m pip`).

    pip_reference.py install (--find-links DIR | --index-url URL) --target T
                     [--allow-sdist] [--pre] REQ...
        runs pip; pip's output goes to stderr; exits with pip's status
    pip_reference.py tree T       "MODE SHA256 PATH" per file, sorted
    pip_reference.py resolved T   "NAME VERSION" per installed distribution

As a module: install(reqs, target, find_links=..., index_url=...) returns
the CompletedProcess; tree(target) a sorted list of (relative path, mode,
sha256 hex); resolved(target) a sorted list of (normalised name, version).

pip runs isolated from this machine's settings: --isolated (no config
files, no PIP_* variables), --no-cache-dir (so every run reaches the index
and request counts mean something), --no-compile (no .pyc), no proxy
variables, --only-binary :all: unless --allow-sdist (the native installer
installs wheels only).  --target needs no --break-system-packages: pip
skips its PEP 668 "externally managed" check when --target is given.

tree() leaves out what differs between installers by design: the
.dist-info INSTALLER, RECORD, REQUESTED and direct_url.json, __pycache__
directories and *.pyc files.
"""
import argparse
import hashlib
import os
import re
import stat
import subprocess
import sys

PYTHON = "/usr/bin/python3"
EXCLUDED_INFO = ("INSTALLER", "RECORD", "REQUESTED", "direct_url.json")


def normalize(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def pip_env():
    env = {k: v for k, v in os.environ.items()
           if not k.upper().startswith("PIP_") and k.lower() not in
           ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost,::1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def install(reqs, target, find_links=None, index_url=None, allow_sdist=False, pre=False, extra=(), timeout=120):
    """pip install REQS into target; exactly one of find_links, index_url."""
    if (find_links is None) == (index_url is None):
        raise ValueError("give exactly one of find_links and index_url")
    argv = [PYTHON, "-m", "pip", "install", "--isolated", "--no-cache-dir", "--no-compile",
            "--disable-pip-version-check", "--no-input", "--no-warn-script-location", "--timeout", "10",
            "--target", target]
    argv += ["--no-index", "--find-links", find_links] if find_links is not None else ["--index-url", index_url]
    if not allow_sdist:
        argv += ["--only-binary", ":all:"]
    if pre:
        argv.append("--pre")
    argv += list(extra) + list(reqs)
    return subprocess.run(argv, capture_output=True, text=True, env=pip_env(), timeout=timeout)


def _excluded(rel):
    parts = rel.split("/")
    if "__pycache__" in parts or rel.endswith(".pyc"):
        return True
    return len(parts) >= 2 and parts[-2].endswith(".dist-info") and parts[-1] in EXCLUDED_INFO


def tree(target):
    """[(relative path, mode, sha256)] of the regular files below target;
    a symlink is listed with mode 'l' and the sha256 of its link text."""
    out = []
    for dirpath, dirnames, filenames in os.walk(target):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for fn in filenames:
            full = os.path.join(dirpath, fn)
            rel = os.path.relpath(full, target).replace(os.sep, "/")
            if _excluded(rel):
                continue
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                out.append((rel, "l", hashlib.sha256(os.readlink(full).encode()).hexdigest()))
                continue
            with open(full, "rb") as f:
                out.append((rel, "%04o" % stat.S_IMODE(st.st_mode), hashlib.sha256(f.read()).hexdigest()))
    return sorted(out)


def resolved(target):
    """[(normalised name, version)] from the .dist-info directories' METADATA."""
    out = []
    for d in sorted(os.listdir(target)) if os.path.isdir(target) else []:
        if not d.endswith(".dist-info"):
            continue
        name = version = None
        with open(os.path.join(target, d, "METADATA"), encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    break
                k, _, v = line.partition(":")
                if k == "Name":
                    name = v.strip()
                elif k == "Version":
                    version = v.strip()
        out.append((normalize(name), version))
    return sorted(out)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="pip_reference.py", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    i = sub.add_parser("install")
    src = i.add_mutually_exclusive_group(required=True)
    src.add_argument("--find-links")
    src.add_argument("--index-url")
    i.add_argument("--target", required=True)
    i.add_argument("--allow-sdist", action="store_true")
    i.add_argument("--pre", action="store_true")
    i.add_argument("reqs", nargs="+")
    t = sub.add_parser("tree")
    t.add_argument("target")
    r = sub.add_parser("resolved")
    r.add_argument("target")
    a = ap.parse_args(argv)
    if a.cmd == "install":
        p = install(a.reqs, a.target, a.find_links, a.index_url, a.allow_sdist, a.pre)
        sys.stderr.write(p.stdout + p.stderr)
        return p.returncode
    if a.cmd == "tree":
        for rel, mode, sha in tree(a.target):
            print(mode, sha, rel)
        return 0
    for name, version in resolved(a.target):
        print(name, version)
    return 0


if __name__ == "__main__":
    sys.exit(main())
