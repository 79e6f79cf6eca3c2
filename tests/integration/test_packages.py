#!/usr/bin/python3
"""Native package installs, end to end with the real binary: a package index
served on loopback from wheels this test builds (tests/lib/wheels.py: real
Debian wheels plus generated ones covering dependencies, extras, markers, a
conflict, backtracking, sdist-only, yanked, requires-python, platform tags,
.data directories and console scripts), and Debian's pip as the independent
reference (tests/lib/pip_reference.py): same resolved versions, same
installed files.  Also: locks kept per key and refreshed on request, layers
shared between images, the layer budget, warm, credentials kept out of
messages, determinism."""
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import harness  # noqa: E402
import pip_reference  # noqa: E402
import pkgindex_server  # noqa: E402
import tap  # noqa: E402
import wheels  # noqa: E402
from harness import BIN  # noqa: E402
from tap import check, done  # noqa: E402

ROOT = str(harness.REPO)


def request(packages, code="def f(x):\n    return x\n", runtime="3.11"):
    spec = {"version": 1, "kind": "udf", "language": "python", "handler": "f", "input_types": ["INT"],
            "result_type": "INT", "imports": [], "packages": packages, "runtime_version": runtime, "code": code}
    return {"spec": json.dumps(spec), "imports": []}


class Env:
    def __init__(self, tmp, base):
        self.tmp, self.base, self.count = tmp, base, 0

    def run(self, args, env_extra=None):
        env = dict(os.environ)
        env.pop("UDFB_INDEX_URL", None)
        env.update(env_extra or {})
        return subprocess.run([BIN] + args, capture_output=True, text=True, env=env, timeout=300)

    def build(self, req, index, store=None, dest=None, extra=(), env_extra=None):
        self.count += 1
        path = os.path.join(self.tmp, "req-%d.json" % self.count)
        with open(path, "w") as f:
            json.dump(req, f)
        store = store or os.path.join(self.tmp, "store-%d" % self.count)
        dest = dest or os.path.join(self.tmp, "dest-%d" % self.count)
        args = ["build", path, "--base", "oci:%s:tiny" % self.base, "--dest", "oci:%s:udf" % dest, "--store", store]
        for i in ([index] if isinstance(index, str) else index):
            args += ["--index-url", i]
        p = self.run(args + list(extra), env_extra)
        out = json.loads(p.stdout) if p.returncode == 0 else None
        return p, out, dest


def blob(dest, digest):
    with open(os.path.join(dest, "blobs", "sha256", digest.split(":", 1)[1]), "rb") as f:
        return f.read()


def manifest(dest, out):
    return json.loads(blob(dest, out["manifest_digest"]))


def image_files(dest, out, prefix="app/packages/"):
    """{relative path: (mode, sha256, first line)} under prefix, layers applied in order."""
    files = {}
    for layer in manifest(dest, out)["layers"]:
        path = os.path.join(dest, "blobs", "sha256", layer["digest"].split(":", 1)[1])
        if not os.path.exists(path):
            continue  # a base layer (the tiny base's are linked, but be lenient)
        with tarfile.open(path, "r:gz") as t:
            for m in t.getmembers():
                if not m.isfile() or not m.name.startswith(prefix):
                    continue
                data = t.extractfile(m).read()
                files[m.name[len(prefix):]] = (m.mode & 0o7777, hashlib.sha256(data).hexdigest(),
                                               data.split(b"\n", 1)[0])
    return files


def read_file(dest, out, name):
    for layer in manifest(dest, out)["layers"]:
        path = os.path.join(dest, "blobs", "sha256", layer["digest"].split(":", 1)[1])
        if not os.path.exists(path):
            continue
        with tarfile.open(path, "r:gz") as t:
            try:
                return t.extractfile(name).read()
            except KeyError:
                pass
    return None


def lock_of(dest, out):
    data = read_file(dest, out, "app/udf.lock")
    return json.loads(data) if data else None


def ours_tree(files):
    """Comparable with pip_reference.tree(): leaves out what differs by design."""
    skip = ("INSTALLER", "RECORD", "REQUESTED", "direct_url.json")
    out = []
    for rel, (mode, sha, first) in files.items():
        parts = rel.split("/")
        if parts[0].endswith(".dist-info") and parts[-1] in skip:
            continue
        if rel.startswith("bin/"):
            sha = "script"  # the shebang names the interpreter: pip's own, ours /usr/bin/env python3
        out.append((rel, "%04o" % mode, sha))
    return sorted(out)


def pip_tree(target):
    out = []
    for rel, mode, sha in pip_reference.tree(target):
        out.append((rel, mode, "script" if rel.startswith("bin/") else sha))
    return sorted(out)


DIFFERENTIAL = [
    ["alpha"], ["gamma[fast]"], ["epsilon"], ["theta", "kappa"], ["yanky"], ["yanky==1.1"], ["newpy"],
    ["datapkg"], ["humanize==4.9.0"], ["Dotted.Name_pkg"], ["pip", "setuptools", "wheel"], ["beta<1.2,>=1.0"],
    ["platpkg"],
]


def differential(env, index_url):
    for reqs in DIFFERENTIAL:
        p, out, dest = env.build(request(reqs), index_url)
        if not check("build %s" % " ".join(reqs), p.returncode == 0, p.stderr):
            continue
        lock = lock_of(dest, out)
        ours = sorted((x["name"], x["version"]) for x in lock["packages"])
        target = os.path.join(env.tmp, "pip-%d" % env.count)
        r = pip_reference.install(reqs, target, index_url=index_url)
        if not check("pip installs %s" % " ".join(reqs), r.returncode == 0, r.stderr):
            continue
        theirs = sorted(pip_reference.resolved(target))
        check("%s: the versions pip resolves (%s)" % (" ".join(reqs), ours), ours == theirs,
              "ours %s\npip  %s" % (ours, theirs))
        a, b = ours_tree(image_files(dest, out)), pip_tree(target)
        check("%s: the files pip installs (%d)" % (" ".join(reqs), len(a)), a == b,
              "only ours: %s\nonly pip: %s" % (sorted(set(a) - set(b))[:10], sorted(set(b) - set(a))[:10]))


def scripts_and_record(env, index_url):
    p, out, dest = env.build(request(["datapkg"]), index_url)
    files = image_files(dest, out)
    check("console script dp-hello is executable and runs python3", files.get("bin/dp-hello", (0,))[0] == 0o755 and
          files["bin/dp-hello"][2] == b"#!/usr/bin/env python3", files.get("bin/dp-hello"))
    check("a '#!python' script gets the runtime's python", files.get("bin/dp-tool", (0, 0, b""))[2] ==
          b"#!/usr/bin/env python3", files.get("bin/dp-tool"))
    record = read_file(dest, out, "app/packages/datapkg-1.0.dist-info/RECORD").decode()
    check("RECORD lists installed paths with hashes", "bin/dp-hello,sha256=" in record and
          "datapkg-1.0.dist-info/INSTALLER,sha256=" in record, record)
    check("INSTALLER names udf-builder",
          read_file(dest, out, "app/packages/datapkg-1.0.dist-info/INSTALLER") == b"udf-builder\n")
    check("no .pyc in the image", not any(k.endswith(".pyc") for k in files))
    # One history entry per layer, in layer order: the package layers were
    # once described with the UDF layer's entry lost (found by issue 18's
    # checked json_pack).
    m = manifest(dest, out)
    cfg = json.loads(blob(dest, m["config"]["digest"]))
    made = [h["created_by"] for h in cfg["history"] if not h.get("empty_layer")]
    check("the config's history has one entry per layer, the UDF's last",
          len(made) == len(m["layers"]) and made[-1].startswith("udf-builder: COPY udf.py udf.json udf.lock") and
          any("datapkg" in c for c in made), made)


def failures(env, index_url):
    cases = [
        (["conflict-a", "conflict-b"], ["cannot resolve", "shared", "conflict-a 1.0 requires shared<2",
                                        "conflict-b 1.0 requires shared>=2"]),
        (["sdistonly"], ["sdistonly", "source distributions"]),
        (["winonly"], ["winonly", "looked for", "cp311-cp311-manylinux"]),
        (["newpy>=2"], ["newpy", "no version matches"]),
        (["no-such-project"], ["no-such-project"]),
    ]
    for reqs, words in cases:
        p, out, dest = env.build(request(reqs), index_url)
        msg = p.stderr.strip()
        check("%s fails in one line naming %s" % (" ".join(reqs), words[0]),
              p.returncode != 0 and msg.count("\n") == 0 and all(w in msg for w in words) and
              "spec.packages" in msg, msg)


def lock_kept_and_refreshed(env, index_url, wheel_dir):
    store = os.path.join(env.tmp, "lockstore")
    req = request(["beta"])
    p1, out1, dest1 = env.build(req, index_url, store=store)
    check("beta resolves to 1.2 (not the 2.0a1 pre-release)",
          p1.returncode == 0 and lock_of(dest1, out1)["packages"][0]["version"] == "1.2", p1.stderr)
    wheels.pure(wheel_dir, "beta", "1.3")
    # The image is gone (gc), the lock stays: the rebuild is bit-identical.
    g = env.run(["cache", "gc", "--max-bytes", "1", "--store", store])
    check("cache gc evicts the image", g.returncode == 0, g.stderr)
    p2, out2, dest2 = env.build(req, index_url, store=store)
    check("rebuilt from the kept lock: same digest though beta 1.3 is out",
          p2.returncode == 0 and out2["manifest_digest"] == out1["manifest_digest"] and not out2["cached"],
          "%s %s" % (p2.stderr, out2))
    p3, out3, dest3 = env.build(req, index_url, store=store, extra=["--refresh-packages"])
    check("--refresh-packages resolves again: beta 1.3",
          p3.returncode == 0 and lock_of(dest3, out3)["packages"][0]["version"] == "1.3", p3.stderr)
    p4, out4, dest4 = env.build(req, index_url, store=store)
    check("the refreshed lock is the key's from now on",
          p4.returncode == 0 and out4["manifest_digest"] == out3["manifest_digest"] and out4["cached"], p4.stderr)


def two_directories(env):
    """Two directory indexes holding different wheels of one name and version
    never share a lock (their names once both read "(unparsable URL)" in the
    lock's key, so the second directory's UDF got the first one's wheel); the
    same directory named by a relative path does."""
    store = os.path.join(env.tmp, "twodirs-store")
    dirs = [os.path.join(env.tmp, "twodirs-%d" % k) for k in range(2)]
    for k, d in enumerate(dirs):
        os.makedirs(d)
        wheels.big(d, 1, 3 + k)  # bigpkg 1.0 both, different files
    outs = []
    for k, d in enumerate(dirs + [os.path.relpath(dirs[0])]):
        p, out, dest = env.build(request(["bigpkg"], code="def f(x):\n    return x + %d\n" % k), d, store=store)
        outs.append(out)
        check("a build from directory index %s succeeds" % ("A", "B", "A (relative)")[k], p.returncode == 0, p.stderr)
    if None in outs:
        return
    pkg = [o["layers"][-2]["digest"] for o in outs]
    check("the second directory's wheel is installed, not the first's",
          outs[1]["packages_installed"] == 1 and pkg[1] != pkg[0], "%s %s" % (pkg, outs[1]))
    check("the first directory by a relative path reuses its lock and layer",
          outs[2]["packages_installed"] == 0 and pkg[2] == pkg[0], "%s %s" % (pkg, outs[2]))


def sharing_and_determinism(env, index_url, log):
    store = os.path.join(env.tmp, "sharestore")
    p1, out1, d1 = env.build(request(["alpha"], code="def f(x):\n    return x + 1\n"), index_url, store=store)
    before = len(open(log).read().splitlines())
    p2, out2, d2 = env.build(request(["alpha"], code="def f(x):\n    return x + 2\n"), index_url, store=store)
    after = open(log).read().splitlines()[before:]
    l1 = [x["digest"] for x in manifest(d1, out1)["layers"]]
    l2 = [x["digest"] for x in manifest(d2, out2)["layers"]]
    check("a second UDF with the same packages shares their layers", p2.returncode == 0 and l1[:-1] == l2[:-1] and
          l1[-1] != l2[-1], "%s\n%s" % (l1, l2))
    check("... and makes no index request and unpacks nothing",
          after == [] and out2.get("packages_installed") == 0, "%s %s" % (after, out2))
    p3, out3, d3 = env.build(request(["alpha"], code="def f(x):\n    return x + 1\n"), index_url)
    check("same request, fresh store: same manifest digest",
          p3.returncode == 0 and out3["manifest_digest"] == out1["manifest_digest"], p3.stderr)
    p4, out4, d4 = env.build(request(["Alpha >= 1"], code="def f(x):\n    return x + 3\n"), index_url, store=store)
    check("another UDF with another spelling reuses the wheel's layer",
          p4.returncode == 0 and l1[1] in [x["digest"] for x in manifest(d4, out4)["layers"]], p4.stderr)


def budget(env, index_url):
    reqs = ["alpha", "gamma[fast]", "epsilon", "humanize"]
    p, out, dest = env.build(request(reqs), index_url, env_extra={"UDFB_PACKAGES_LAYER_BUDGET": "2"})
    layers = manifest(dest, out)["layers"] if p.returncode == 0 else []
    n_pkgs = len(lock_of(dest, out)["packages"]) if out else 0
    # tiny base (1 layer) + stub + 2 package layers + udf
    if not check("layer budget 2: %d packages in 2 layers" % n_pkgs, len(layers) == 5 and n_pkgs == 7, p.stderr):
        return
    p2, out2, _ = env.build(request(reqs), index_url, env_extra={"UDFB_PACKAGES_LAYER_BUDGET": "2"})
    check("... deterministic", p2.returncode == 0 and out2["manifest_digest"] == out["manifest_digest"])
    files = image_files(dest, out)
    check("... every package still installed", all(any(k.startswith(d) for k in files)
          for d in ("alpha/", "beta/", "gamma/", "delta/", "epsilon/", "eta/", "humanize/")), sorted(files)[:20])


def html_and_auth(env, wheel_dir, json_lock):
    srv = pkgindex_server.start(wheel_dir, html_only=True)
    url = "http://127.0.0.1:%d/simple" % srv.port
    p, out, dest = env.build(request(["alpha", "gamma[fast]"]), url)
    # The same wheels; PEP 503 pages carry no file sizes (PEP 700 is JSON only).
    strip = lambda pkgs: [{k: v for k, v in x.items() if k != "size"} for x in pkgs or []]  # noqa: E731
    check("PEP 503 HTML index: same lock as the JSON index",
          p.returncode == 0 and strip(lock_of(dest, out)["packages"]) == strip(json_lock), p.stderr)
    srv.shutdown()
    srv = pkgindex_server.start(wheel_dir, auth="user:s3cr3t-t0ken")
    good = "http://user:s3cr3t-t0ken@127.0.0.1:%d/simple" % srv.port
    bad = "http://user:wr0ng-t0ken@127.0.0.1:%d/simple" % srv.port
    p, out, dest = env.build(request(["alpha"]), good)
    check("credentials in the index URL are used", p.returncode == 0, p.stderr)
    lock_text = read_file(dest, out, "app/udf.lock") or b""
    check("... and never written to the lock", b"s3cr3t" not in lock_text)
    p, out, dest = env.build(request(["alpha"]), bad, env_extra={"UDFB_LOG_LEVEL": "debug"})
    check("a refused credential fails without showing it", p.returncode != 0 and "wr0ng" not in p.stderr and
          "alpha" in p.stderr, p.stderr[-2000:])
    srv.shutdown()
    p, out, dest = env.build(request(["alpha"]), wheel_dir)
    check("a local directory of wheels is an index too",
          p.returncode == 0 and lock_of(dest, out)["packages"][0]["name"] == "alpha", p.stderr)


def warm(env, index_url, log):
    store = os.path.join(env.tmp, "warmstore")
    dest = os.path.join(env.tmp, "warmdest")
    args = ["warm", "--runtime", "3.11", "--packages", "alpha gamma[fast]", "--base", "oci:%s:tiny" % env.base,
            "--dest", "oci:%s:warm" % dest, "--store", store, "--index-url", index_url]
    p = env.run(args)
    out = json.loads(p.stdout) if p.returncode == 0 else {}
    check("warm builds the package layers", p.returncode == 0 and out.get("installed") == 4, p.stderr)
    p2 = env.run(args)
    out2 = json.loads(p2.stdout) if p2.returncode == 0 else {}
    check("a second warm is a hit", p2.returncode == 0 and out2.get("cached") is True, p2.stderr)
    before = len(open(log).read().splitlines())
    p3, out3, d3 = env.build(request(["alpha"]), index_url, store=store)
    after = [line for line in open(log).read().splitlines()[before:] if "/files/" in line and ".metadata" not in line]
    check("a UDF after warm unpacks nothing and downloads no wheel",
          p3.returncode == 0 and out3.get("packages_installed") == 0 and after == [], "%s %s" % (p3.stderr, after))


def registry_warm(env, index_url):
    """warm to a real registry (Debian's docker-registry on loopback): the
    package layers are pushed, and a UDF's image names those same blobs."""
    r = subprocess.run(["bash", "-c", ". tests/lib/registry.sh && udfb_registry_start >&2 && "
                        "echo $REGISTRY $UDFB_REGISTRY_PID $UDFB_REGISTRY_DIR"], cwd=ROOT, capture_output=True,
                       text=True)
    if not check("a loopback registry starts", r.returncode == 0 and r.stdout.strip(), r.stderr[-2000:]):
        return
    reg, pid, regdir = r.stdout.split()
    try:
        store = os.path.join(env.tmp, "regwarm")
        p = env.run(["warm", "--runtime", "3.11", "--packages", "alpha", "--base", "oci:%s:tiny" % env.base,
                     "--dest", "docker://%s/udfb/warm" % reg, "--store", store, "--index-url", index_url])
        out = json.loads(p.stdout) if p.returncode == 0 else {}
        check("warm pushes to a registry", p.returncode == 0 and out.get("image", "").startswith("docker://" + reg), p.stderr)
        tag = out.get("image", ":@").split("@")[0].rsplit(":", 1)[1]
        req = urllib.request.Request("http://%s/v2/udfb/warm/manifests/%s" % (reg, tag),
                                     headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
        pushed = [x["digest"] for x in json.load(urllib.request.urlopen(req, timeout=10))["layers"]]
        p2, out2, d2 = env.build(request(["alpha"]), index_url, store=store)
        mine = [x["digest"] for x in manifest(d2, out2)["layers"]] if p2.returncode == 0 else []
        check("the warm image in the registry holds the UDF's package layers",
              len(mine) == 5 and mine[2] in pushed and mine[3] in pushed, "%s\n%s" % (pushed, mine))
    finally:
        subprocess.run(["kill", pid])
        shutil.rmtree(regdir, ignore_errors=True)


def main():
    if not shutil.which("python3") or pip_reference.PYTHON and not os.path.exists(pip_reference.PYTHON):
        tap.skip_all("no /usr/bin/python3")
    harness.skip_unless()
    base = harness.tiny_image()
    tmp = tempfile.mkdtemp(prefix="udfb-pkgs-")
    try:
        wheel_dir = os.path.join(tmp, "wheels")
        wheels.build(wheel_dir)
        log = os.path.join(tmp, "index.log")
        srv = pkgindex_server.start(wheel_dir, log=log)
        url = "http://127.0.0.1:%d/simple" % srv.port
        env = Env(tmp, base)
        os.environ["UDFB_IMPORTS_ALLOW"] = "127.0.0.1"
        differential(env, url)
        scripts_and_record(env, url)
        failures(env, url)
        p, out, dest = env.build(request(["alpha", "gamma[fast]"]), url)
        json_lock = lock_of(dest, out)["packages"] if p.returncode == 0 else None
        sharing_and_determinism(env, url, log)
        budget(env, url)
        html_and_auth(env, wheel_dir, json_lock)
        warm(env, url, log)
        registry_warm(env, url)
        lock_kept_and_refreshed(env, url, wheel_dir)
        two_directories(env)
        srv.shutdown()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return done()


if __name__ == "__main__":
    sys.exit(main())
