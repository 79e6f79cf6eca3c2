#!/usr/bin/env python3
"""Writes the seed corpora of fuzz_wheel and fuzz_metadata (tests/fuzz/
corpus/wheel, corpus/metadata): small wheels, valid and broken in the
ways udfb_wheel_install refuses, and METADATA/RECORD/entry_points texts.
Deterministic: the same files on every run.  Usage: wheel_seeds.py"""
import base64
import hashlib
import os
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
WHEELS = os.path.join(HERE, "corpus", "wheel")
TEXTS = os.path.join(HERE, "corpus", "metadata")
DATE = (2024, 1, 1, 0, 0, 0)


def rhash(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def wheel(name, files, record=True, distinfo="demo-1.0.dist-info", corrupt=None, omit=None,
          compression=zipfile.ZIP_DEFLATED):
    """files: (name, bytes, unix mode) in order; RECORD appended last."""
    path = os.path.join(WHEELS, name)
    rows = []
    with zipfile.ZipFile(path, "w", compression) as z:
        for fname, data, mode in files:
            info = zipfile.ZipInfo(fname, DATE)
            info.external_attr = mode << 16
            info.create_system = 3
            info.compress_type = compression
            z.writestr(info, data)
            if fname == omit or mode >> 12 != 0o10:
                continue
            h = rhash(data)
            if fname == corrupt:
                h = h[:-1] + ("A" if h[-1] != "A" else "B")
            rows.append(f"{fname},{h},{len(data)}")
        if record:
            rows.append(f"{distinfo}/RECORD,,")
            info = zipfile.ZipInfo(f"{distinfo}/RECORD", DATE)
            info.external_attr = 0o100644 << 16
            z.writestr(info, "\n".join(rows) + "\n")
    assert os.path.getsize(path) < 4096, name
    return path


REG, EXE, LNK = 0o100644, 0o100755, 0o120777
META = b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\nRequires-Dist: six\n"
WHEEL = b"Wheel-Version: 1.0\nGenerator: seeds\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
EPS = b"[console_scripts]\ndemo = demo.cli:main\n[gui_scripts]\ndemo-gui = demo.gui:App.run [gui]\n"
BASE = [("demo/__init__.py", b"X = 1\n", REG),
        ("demo-1.0.dist-info/METADATA", META, REG),
        ("demo-1.0.dist-info/WHEEL", WHEEL, REG)]
FULL = BASE + [
    ("demo/tool.sh", b"#!/bin/sh\necho\n", EXE),
    ("demo/__pycache__/x.cpython-312.pyc", b"\x55\x0d\x0d\x0a", REG),
    ("demo-1.0.data/scripts/run", b"#!python\nprint(1)\n", REG),
    ("demo-1.0.data/scripts/demo", b"#!python\n# wrapper\n", REG),
    ("demo-1.0.data/headers/demo.h", b"#define DEMO 1\n", REG),
    ("demo-1.0.data/data/share/demo.txt", b"data\n", REG),
    ("demo-1.0.data/platlib/demo_ext.py", b"Y = 2\n", REG),
    ("demo-1.0.dist-info/entry_points.txt", EPS, REG),
]


def main():
    os.makedirs(WHEELS, exist_ok=True)
    os.makedirs(TEXTS, exist_ok=True)
    wheel("valid-minimal.whl", BASE)
    full = wheel("valid-full.whl", FULL)
    wheel("valid-stored.whl", FULL, compression=zipfile.ZIP_STORED)
    data = open(full, "rb").read()
    for cut in (30, len(data) // 2, len(data) - 30, len(data) - 1):
        with open(os.path.join(WHEELS, f"truncated-{cut}.whl"), "wb") as f:
            f.write(data[:cut])
    # A byte flipped inside compressed data, and in a local header: the
    # central directory still reads.
    with zipfile.ZipFile(full) as z:
        info = z.getinfo("demo-1.0.dist-info/entry_points.txt")
    start = info.header_offset + 30 + len(info.filename)
    for name, at in (("flipped-data", start + info.compress_size // 2), ("flipped-header", info.header_offset + 8)):
        bad = bytearray(data)
        bad[at] ^= 0x5A
        with open(os.path.join(WHEELS, name + ".whl"), "wb") as f:
            f.write(bad)
    stored = open(os.path.join(WHEELS, "valid-stored.whl"), "rb").read()
    bad = bytearray(stored)
    bad[len(stored) // 4] ^= 0x01
    with open(os.path.join(WHEELS, "flipped-stored.whl"), "wb") as f:
        f.write(bad)
    # An entry whose deflate stream (over 512 bytes) the layer splices
    # (issue 17), and the same with a byte of that stream flipped.
    big = "".join(hashlib.sha256(b"%d" % i).hexdigest() + "\n" for i in range(24)).encode()
    spliced = wheel("valid-spliced.whl", BASE + [("demo/big.py", big, REG)])
    with zipfile.ZipFile(spliced) as z:
        info = z.getinfo("demo/big.py")
    assert info.compress_size >= 512
    at = info.header_offset + 30 + len(info.filename) + info.compress_size // 3
    bad = bytearray(open(spliced, "rb").read())
    bad[at] ^= 0x20
    with open(os.path.join(WHEELS, "spliced-flipped.whl"), "wb") as f:
        f.write(bad)
    wheel("symlink.whl", BASE + [("demo/link", b"/etc/passwd", LNK)])
    wheel("dotdot.whl", BASE + [("../evil.py", b"x", REG)])
    wheel("absolute.whl", BASE + [("/abs.py", b"x", REG)])
    wheel("wrong-hash.whl", BASE, corrupt="demo/__init__.py")
    wheel("not-in-record.whl", BASE, omit="demo/__init__.py")
    wheel("no-record.whl", BASE, record=False)
    wheel("wheel-version-2.whl", BASE[:2] + [("demo-1.0.dist-info/WHEEL", b"Wheel-Version: 2.0\n", REG)])
    wheel("bad-entry-points.whl", BASE + [("demo-1.0.dist-info/entry_points.txt",
                                           b"[console_scripts]\na/b = x:y\n", REG)])
    wheel("two-dist-info.whl", BASE + [("other-1.0.dist-info/METADATA", META, REG)])
    wheel("file-and-dir.whl", BASE + [("demo/__init__.py/x", b"", REG)])
    wheel("unknown-scheme.whl", BASE + [("demo-1.0.data/lib/x.py", b"", REG)])
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate
        wheel("duplicate.whl", BASE + [("demo/__init__.py", b"Y = 2\n", REG)])
    with open(os.path.join(WHEELS, "not-a-zip.whl"), "wb") as f:
        f.write(b"PK\x03\x04 this is not a zip file")
    open(os.path.join(WHEELS, "empty.whl"), "wb").close()

    texts = {
        "metadata": META + b"Summary: a\n  continued\nProvides-Extra: cli\n"
                           b"Requires-Dist: click; extra == 'cli'\n\nBody: not a header\n",
        "metadata-crlf": META.replace(b"\n", b"\r\n"),
        "metadata-no-version": b"Metadata-Version: 2.1\nName: demo\n\nVersion: 1.0\n",
        "wheel-file": WHEEL,
        "name-simple": b"six-1.16.0-py2.py3-none-any.whl",
        "name-build": b"numpy-1.26.4-1abc-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "name-bad": b"si__x-1.0-py3-none-any.whl",
        "record": b'demo/__init__.py,sha256=' + rhash(b"X = 1\n")[7:].encode() + b',6\r\n'
                  b'"a,b.py",sha256=abc,1\n"x""y",,\ndemo-1.0.dist-info/RECORD,,\n',
        "entry-points": EPS + b"[other]\nanything\n# comment\n",
    }
    for name, text in texts.items():
        with open(os.path.join(TEXTS, name), "wb") as f:
            f.write(text)


if __name__ == "__main__":
    main()
