#!/usr/bin/python3
"""Wheel entries spliced into package layers (issue 17, UDFB_LAYER_FORMAT 3):
a deflated entry's stream goes into the layer's gzip as a member of its own
instead of being inflated and compressed again.  End to end with the real
binary and wheels written byte by byte here (a zip writer of its own, so a
test can hand the builder any stream it likes):
- the layer's blob holds the wheel's stream verbatim, gunzips (Python's
  gzip, every member) to the tar its diff_id names, and its files are the
  bytes RECORD names; a stored (method 0) entry, a '#!python' script and a
  tiny file (compressed again) sit beside it;
- the same wheel twice, in fresh stores: the same layer digest;
- umoci unpacks the image and skopeo inspects it;
- two wheels in one group layer (packages-layer-budget 1);
- a real wheel (Debian's setuptools): its streams spliced, every file of
  the layer the wheel's bytes, the blob gunzips to its diff_id's tar;
- streams that must not be spliced: corrupted, truncated, with a
  back-reference before their start (a preset dictionary), inflating to
  other bytes than RECORD's: refused in one line naming the entry; one
  without a final block or with bytes after it: either refused or
  installed with RECORD's bytes (pip's reading), never other bytes;
- entries sharing their stored bytes (central directory entries pointing
  at one local header, a zip bomb's trick): refused in one line."""
import gzip
import hashlib
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import harness  # noqa: E402
import tap  # noqa: E402
import wheels  # noqa: E402
from harness import BIN  # noqa: E402
from tap import check, done  # noqa: E402

PREFIX = "app/packages/"


def deflate(data, level=6):
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def raw_zip(path, entries):
    """entries: (name, method, stored bytes, crc, size, mode), written as
    Python's zipfile would (UTF-8 names, unix modes, 1980-01-01)."""
    out, central = bytearray(), bytearray()
    for name, method, data, crc, size, mode in entries:
        nb = name.encode()
        off = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0x800, method, 0, 0x21, crc, len(data), size,
                           len(nb), 0) + nb + data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, (3 << 8) | 20, 20, 0x800, method, 0, 0x21, crc,
                               len(data), size, len(nb), 0, 0, 0, 0, (0o100000 | mode) << 16, off) + nb
    cd = len(out)
    out += central + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(central), cd, 0)
    with open(path, "wb") as f:
        f.write(out)


def make_wheel(outdir, name, files, stored=(), streams=None):
    """files: {path: bytes}; stored: paths written with method 0; streams:
    {path: (stored bytes, content the zip's CRC and size describe)} for
    entries whose stream is not deflate(content).  RECORD lists files."""
    os.makedirs(outdir, exist_ok=True)
    info = "%s-1.0.dist-info" % name
    files = dict(files)
    files[info + "/METADATA"] = wheels.metadata_text(name, "1.0").encode()
    files[info + "/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: udfb-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n\n"
    rows = "".join("%s,%s,%d\n" % (p, wheels.record_hash(c), len(c)) for p, c in sorted(files.items()))
    files[info + "/RECORD"] = (rows + info + "/RECORD,,\n").encode()
    entries = []
    for path, content in sorted(files.items()):
        mode = 0o755 if "/scripts/" in path else 0o644
        if streams and path in streams:
            data, described = streams[path]
            entries.append((path, 8, data, zlib.crc32(described), len(described), mode))
        elif path in stored:
            entries.append((path, 0, content, zlib.crc32(content), len(content), mode))
        else:
            entries.append((path, 8, deflate(content), zlib.crc32(content), len(content), mode))
    raw_zip(os.path.join(outdir, "%s-1.0-py3-none-any.whl" % name), entries)


def text_module(seed, lines=3000):
    return "".join("V%d_%d = '%s'\n" % (seed, i, hashlib.sha256(b"%d-%d" % (seed, i)).hexdigest())
                   for i in range(lines)).encode()


def request(packages, n):
    spec = {"version": 1, "kind": "udf", "language": "python", "handler": "f", "input_types": [],
            "result_type": "INT", "imports": [], "packages": packages, "runtime_version": "3.11",
            "code": "def f():\n    return %d\n" % n}
    return {"spec": json.dumps(spec), "imports": []}


class Env:
    def __init__(self, tmp, base):
        self.tmp, self.base, self.count = tmp, base, 0

    def build(self, packages, index, store=None, env_extra=None):
        self.count += 1
        path = os.path.join(self.tmp, "req-%d.json" % self.count)
        with open(path, "w") as f:
            json.dump(request(packages, self.count), f)
        store = store or os.path.join(self.tmp, "store-%d" % self.count)
        dest = os.path.join(self.tmp, "dest-%d" % self.count)
        env = dict(os.environ)
        env.pop("UDFB_INDEX_URL", None)
        env.update(env_extra or {})
        p = subprocess.run([BIN, "build", path, "--base", "oci:%s:tiny" % self.base, "--dest", "oci:%s:udf" % dest,
                            "--store", store, "--index-url", index], capture_output=True, text=True, env=env,
                           timeout=300)
        return p, dest


def blob_path(dest, digest):
    return os.path.join(dest, "blobs", "sha256", digest.split(":", 1)[1])


def package_layers(dest):
    """[(digest, diff_id)] of the layers holding app/packages/."""
    index = json.load(open(os.path.join(dest, "index.json")))
    m = json.load(open(blob_path(dest, index["manifests"][0]["digest"])))
    cfg = json.load(open(blob_path(dest, m["config"]["digest"])))
    out = []
    for layer, diff_id in zip(m["layers"], cfg["rootfs"]["diff_ids"]):
        path = blob_path(dest, layer["digest"])
        if not os.path.exists(path):
            continue
        with tarfile.open(path, "r:gz") as t:
            if any(n.startswith(PREFIX) for n in t.getnames()):
                out.append((layer["digest"], diff_id))
    return out


def layer_files(dest, digest):
    files = {}
    with tarfile.open(blob_path(dest, digest), "r:gz") as t:
        for m in t.getmembers():
            if m.isfile() and m.name.startswith(PREFIX):
                files[m.name[len(PREFIX):]] = (t.extractfile(m).read(), m.mode & 0o777)
    return files


def good(env, root):
    idx = os.path.join(root, "good")
    big = text_module(1)
    rnd = os.urandom(40000)
    files = {"splice_ok/__init__.py": b"", "splice_ok/mod.py": big, "splice_ok/tiny.py": b"X = 1\n",
             "splice_ok/data.bin": rnd, "splice_ok-1.0.data/scripts/tool": b"#!python\nprint(1)\n"}
    make_wheel(idx, "splice_ok", files, stored=("splice_ok/data.bin",))
    p, dest = env.build(["splice_ok"], idx)
    if not check("a wheel with deflated, stored and script entries builds", p.returncode == 0, p.stderr):
        return
    layers = package_layers(dest)
    check("one package layer", len(layers) == 1, layers)
    digest, diff_id = layers[0]
    data = open(blob_path(dest, digest), "rb").read()
    check("the layer's blob holds the wheel's deflate stream of mod.py verbatim", deflate(big) in data)
    check("(and not the stream of the small file: compressed again)", deflate(b"X = 1\n") not in data)
    tar = gzip.decompress(data)
    check("every gzip member inflates; together, the tar the diff_id names",
          "sha256:" + hashlib.sha256(tar).hexdigest() == diff_id, diff_id)
    got = layer_files(dest, digest)
    check("mod.py, the stored data.bin and tiny.py are the wheel's bytes",
          got.get("splice_ok/mod.py", (None,))[0] == big and got.get("splice_ok/data.bin", (None,))[0] == rnd and
          got.get("splice_ok/tiny.py", (None,))[0] == b"X = 1\n", sorted(got))
    check("the '#!python' script is rewritten, 0755",
          got.get("bin/tool") == (b"#!/usr/bin/env python3\nprint(1)\n", 0o755), got.get("bin/tool"))
    p2, dest2 = env.build(["splice_ok"], idx)
    check("the same wheel in a fresh store: the same layer digest",
          p2.returncode == 0 and package_layers(dest2) == layers, p2.stderr)
    bundle = os.path.join(env.tmp, "bundle")
    u = subprocess.run(["umoci", "unpack", "--rootless", "--image", dest + ":udf", bundle], capture_output=True,
                       text=True, timeout=120)
    mod = os.path.join(bundle, "rootfs", PREFIX, "splice_ok/mod.py")
    check("umoci unpacks the image with the spliced layer (checks each layer's diff_id)",
          u.returncode == 0 and os.path.exists(mod) and open(mod, "rb").read() == big, u.stderr)
    s = subprocess.run(["skopeo", "inspect", "oci:%s:udf" % dest], capture_output=True, text=True, timeout=60)
    check("skopeo inspects it", s.returncode == 0 and digest in s.stdout, s.stderr)


def group(env, root):
    idx = os.path.join(root, "group")
    a, b = text_module(2), text_module(3, 2000)
    make_wheel(idx, "grp_a", {"grp_a/__init__.py": a})
    make_wheel(idx, "grp_b", {"grp_b/__init__.py": b})
    extra = {"UDFB_PACKAGES_LAYER_BUDGET": "1"}
    p, dest = env.build(["grp_a", "grp_b"], idx, env_extra=extra)
    if not check("two wheels into one group layer build", p.returncode == 0, p.stderr):
        return
    layers = package_layers(dest)
    check("one package layer for both", len(layers) == 1, layers)
    digest, diff_id = layers[0]
    data = open(blob_path(dest, digest), "rb").read()
    check("both wheels' streams are in it", deflate(a) in data and deflate(b) in data)
    check("it gunzips to its diff_id's tar", "sha256:" + hashlib.sha256(gzip.decompress(data)).hexdigest() == diff_id)
    got = layer_files(dest, digest)
    check("both modules are the wheels' bytes", got.get("grp_a/__init__.py", (None,))[0] == a and
          got.get("grp_b/__init__.py", (None,))[0] == b, sorted(got))
    p2, dest2 = env.build(["grp_a", "grp_b"], idx, env_extra=extra)
    check("built again in a fresh store: the same group layer", p2.returncode == 0 and package_layers(dest2) == layers)


def real_wheel(env, root):
    import glob
    import zipfile
    found = sorted(glob.glob(os.path.join(wheels.DEBIAN_WHEELS, "setuptools-*.whl")))
    if not found:
        tap.line(True, "a real wheel", directive=" # SKIP no Debian setuptools wheel in %s" % wheels.DEBIAN_WHEELS)
        return
    idx = os.path.join(root, "real")
    os.makedirs(idx)
    shutil.copy(found[0], idx)
    p, dest = env.build(["setuptools"], idx)
    if not check("Debian's setuptools wheel builds", p.returncode == 0, p.stderr):
        return
    layers = package_layers(dest)
    digest, diff_id = layers[0]
    data = open(blob_path(dest, digest), "rb").read()
    check("its layer gunzips to its diff_id's tar",
          "sha256:" + hashlib.sha256(gzip.decompress(data)).hexdigest() == diff_id)
    got = layer_files(dest, digest)
    spliced = same = differ = 0
    with zipfile.ZipFile(found[0]) as z, open(found[0], "rb") as raw:
        for info in z.infolist():
            if info.is_dir() or ".dist-info/" in info.filename or ".data/" in info.filename:
                continue
            content = z.read(info)
            if got.get(info.filename, (None,))[0] == content:
                same += 1
            else:
                differ += 1
            if info.compress_type == zipfile.ZIP_DEFLATED and info.compress_size >= 512:
                raw.seek(info.header_offset + 26)
                n, m = struct.unpack("<HH", raw.read(4))
                raw.seek(info.header_offset + 30 + n + m)
                spliced += raw.read(info.compress_size) in data
    check("every file is the wheel's bytes (%d files)" % same, same > 100 and differ == 0, differ)
    check("the wheel's deflate streams are in the blob as they are (%d)" % spliced, spliced > 50)


def bad_streams(env, root):
    content = text_module(4)
    full = deflate(content)
    flipped = bytearray(full)
    for k in range(len(full) // 2, len(full) // 2 + 8):
        flipped[k] ^= 0x5A
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    synced = c.compress(content) + c.flush(zlib.Z_SYNC_FLUSH)
    dictionary = content[:4096]
    d = zlib.compressobj(6, zlib.DEFLATED, -15, zdict=dictionary)
    backref = d.compress(content) + d.flush()
    other = content.replace(b"V4_", b"W4_")
    refused = [
        ("bad_flip", bytes(flipped), content, "corrupted in the middle"),
        ("bad_trunc", full[:-40], content, "truncated"),
        ("bad_backref", backref, content, "a back-reference before its start (preset dictionary)"),
        ("bad_liar", deflate(other), other, "inflating to other bytes than RECORD's (zip CRC agreeing)"),
    ]
    lenient = [("odd_synced", synced, "without a final block"), ("odd_trailing", full + b"JUNK", "with bytes after it")]
    # Past 8 MiB a wheel's packs are in memory (the streams checked where
    # the mapped wheel holds them): each case again with a stored pad.
    pad = random.Random(17).randbytes(9 << 20)
    for mem in (False, True):
        suffix, where = ("_mem", " (packs in memory)") if mem else ("", "")

        def wheel_with(name, path, stream, described):
            idx = os.path.join(root, name + suffix)
            files = {path: content}
            if mem:
                files["%s/pad.bin" % name] = pad
            make_wheel(idx, name, files, stored=("%s/pad.bin" % name,), streams={path: (stream, described)})
            return idx

        for name, stream, described, what in refused:
            path = "%s/mod.py" % name
            p, dest = env.build([name], wheel_with(name, path, stream, described))
            msg = p.stderr.strip()
            check("a stream %s is refused in one line naming the entry%s" % (what, where),
                  p.returncode != 0 and msg.count("\n") == 0 and "entry '%s'" % path in msg and name in msg, msg)
        for name, stream, what in lenient:
            path = "%s/mod.py" % name
            p, dest = env.build([name], wheel_with(name, path, stream, content))
            msg = p.stderr.strip()
            if p.returncode != 0:
                check("a stream %s: refused in one line naming the entry%s" % (what, where),
                      msg.count("\n") == 0 and "entry '%s'" % path in msg, msg)
                continue
            layers = package_layers(dest)
            got = layer_files(dest, layers[0][0]) if len(layers) == 1 else {}
            data = open(blob_path(dest, layers[0][0]), "rb").read() if len(layers) == 1 else b""
            check("a stream %s: installed with RECORD's bytes, compressed again (not spliced)%s" % (what, where),
                  got.get(path, (None,))[0] == content and stream not in data and
                  (not mem or got.get("%s/pad.bin" % name, (None,))[0] == pad) and
                  "sha256:" + hashlib.sha256(gzip.decompress(data)).hexdigest() == layers[0][1], sorted(got))


def overlapping(env, root):
    """Three more central directory entries pointing at mod.py's local
    header: each listed in RECORD with mod.py's hash, so only the shared
    bytes give them away."""
    name = "ovl"
    content = text_module(5)
    stream = deflate(content)
    info = "%s-1.0.dist-info" % name
    extra = ["%s/copy%d.py" % (name, k) for k in range(3)]
    files = {"%s/mod.py" % name: content, info + "/METADATA": wheels.metadata_text(name, "1.0").encode(),
             info + "/WHEEL": b"Wheel-Version: 1.0\nGenerator: udfb-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n\n"}
    rows = "".join("%s,%s,%d\n" % (p, wheels.record_hash(c), len(c)) for p, c in sorted(files.items()))
    rows += "".join("%s,%s,%d\n" % (p, wheels.record_hash(content), len(content)) for p in extra)
    files[info + "/RECORD"] = (rows + info + "/RECORD,,\n").encode()
    out, central, offsets = bytearray(), bytearray(), {}
    listing = [(p, deflate(c) if p != "%s/mod.py" % name else stream, c) for p, c in sorted(files.items())]
    listing += [(p, stream, content) for p in extra]
    for path, data, plain in listing:
        nb = path.encode()
        if path in extra:
            off = offsets["%s/mod.py" % name]
        else:
            off = offsets[path] = len(out)
            out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0x800, 8, 0, 0x21, zlib.crc32(plain), len(data),
                               len(plain), len(nb), 0) + nb + data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, (3 << 8) | 20, 20, 0x800, 8, 0, 0x21,
                               zlib.crc32(plain), len(data), len(plain), len(nb), 0, 0, 0, 0, 0o100644 << 16,
                               off) + nb
    cd = len(out)
    out += central + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(listing), len(listing), len(central), cd, 0)
    idx = os.path.join(root, name)
    os.makedirs(idx, exist_ok=True)
    with open(os.path.join(idx, "%s-1.0-py3-none-any.whl" % name), "wb") as f:
        f.write(out)
    p, dest = env.build([name], idx)
    msg = p.stderr.strip()
    check("entries sharing their stored bytes are refused in one line naming the wheel",
          p.returncode != 0 and msg.count("\n") == 0 and "entries overlap" in msg and name in msg, msg)


def main():
    harness.skip_unless(tools=("umoci", "skopeo"))
    base = harness.tiny_image()
    tmp = tempfile.mkdtemp(prefix="udfb-splice-")
    try:
        env = Env(tmp, base)
        root = os.path.join(tmp, "idx")
        good(env, root)
        group(env, root)
        real_wheel(env, root)
        bad_streams(env, root)
        overlapping(env, root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return done()


if __name__ == "__main__":
    sys.exit(main())
