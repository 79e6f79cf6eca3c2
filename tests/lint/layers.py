#!/usr/bin/python3
"""The module order of the Makefile's MODULES line, checked: a module
includes only itself and the modules listed before it (cmd/ may include
any), with module-qualified names ("image/layer.h"), so no two modules
depend on each other and a folder's place in the list says what it may use.
A module's *_internal.h headers are its own: no other module includes them
(unit tests may).  Prints one TAP line per module."""
import glob, os, re, sys

os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
line = next(l for l in open("Makefile") if l.startswith("MODULES :="))
order = line.split(":=", 1)[1].split() + ["cmd"]
include = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)

n = 0
for rank, mod in enumerate(order):
    bad = []
    for path in sorted(glob.glob(mod + "/*.[ch]")):
        for name in include.findall(open(path).read()):
            top = name.split("/", 1)[0] if "/" in name else None
            if top is None:
                bad.append("%s: \"%s\" is not module-qualified" % (path, name))
            elif top in order and order.index(top) > rank:
                bad.append("%s includes %s, a module above %s" % (path, name, mod))
            elif top != mod and name.endswith("_internal.h"):
                bad.append("%s includes %s, internal to %s" % (path, name, top))
    n += 1
    print(("ok" if not bad else "not ok") + " %d - %s includes only modules below it" % (n, mod))
    for b in bad:
        print("#   " + b)
print("1..%d" % n)
