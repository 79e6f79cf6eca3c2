#!/usr/bin/python3
"""docs/configuration.md's settings tables are the settings engine's rows.

Each table sits between "<!-- settings: SECTION -->" and "<!-- end settings -->"
and must be exactly what `udf-builder settings --markdown SECTION` prints
(config/config.c, cmd/cli.c, scheduler/local_opts.c, scheduler/k8s_objects.c
hold the rows).  With --write, rewrites the tables from the rows instead
(`make docs-settings`).  Prints one TAP line per table, and one for every
section the binary has that the docs lack."""
import os, re, subprocess, sys

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
DOC = os.path.join(REPO, "docs", "configuration.md")
BIN = os.environ.get("UDFB_BIN") or os.path.join(REPO, "bin", "udf-builder")
SECTIONS = ("service", "imports", "packages", "local", "kubernetes", "cli")
BLOCK = re.compile(r"(<!-- settings: (\S+) -->\n)(.*?)(<!-- end settings -->)", re.S)


def table(section):
    return subprocess.run([BIN, "settings", "--markdown", section], check=True, stdout=subprocess.PIPE,
                          text=True, timeout=60).stdout


def main():
    text = open(DOC).read()
    if "--write" in sys.argv[1:]:
        new = BLOCK.sub(lambda m: m.group(1) + table(m.group(2)) + m.group(4), text)
        if new != text:
            open(DOC, "w").write(new)
        print("docs/configuration.md: %d tables written" % len(BLOCK.findall(new)))
        return 0
    n, failed, seen = 0, 0, set()
    for m in BLOCK.finditer(text):
        section, body = m.group(2), m.group(3)
        seen.add(section)
        want = table(section)
        n += 1
        ok = body == want
        failed += not ok
        print("%sok %d - docs/configuration.md's %s table is the engine's (make docs-settings)"
              % ("" if ok else "not ", n, section))
        if not ok:
            have, need = body.splitlines(), want.splitlines()
            for line in [l for l in need if l not in have][:5]:
                print("#   missing: " + line[:160])
            for line in [l for l in have if l not in need][:5]:
                print("#   stale:   " + line[:160])
    for section in SECTIONS:
        if section not in seen:
            n += 1
            failed += 1
            print("not ok %d - docs/configuration.md has no %s table" % (n, section))
    print("1..%d" % n)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
