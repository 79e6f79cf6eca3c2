"""TAP for the Python integration tests: check() prints "ok N - what" or
"not ok N - what" with up to `lines` lines of detail; done() prints the plan
and returns the exit status (tests/run.sh counts the lines)."""

_n = 0
_failed = 0


def check(what, cond, detail="", lines=30):
    global _n, _failed
    _n += 1
    print("%sok %d - %s" % ("" if cond else "not ", _n, what), flush=True)
    if not cond:
        _failed += 1
        for line in str(detail).splitlines()[:lines]:
            print("#   " + line)
    return cond


def done():
    print("1..%d" % _n)
    return 1 if _failed else 0
