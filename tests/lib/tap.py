"""TAP for the Python integration tests, one numbering per process:
check(what, cond) (or ok(cond, what), Test::More's order) prints "ok N -
what" or "not ok N - what" with up to `lines` lines of detail; TapResult
prints one such line per unittest test (with its time); skip_all() says
"1..0 # SKIP why" and exits 77; done() prints the plan and returns the exit
status.  tests/run.sh counts the lines."""

import sys
import time
import unittest

_n = 0
_failed = 0


def line(ok, what, detail="", lines=30, directive="", counts=True):
    """One TAP line; a "not ok" that counts makes done() return 1."""
    global _n, _failed
    _n += 1
    print("%sok %d - %s%s" % ("" if ok else "not ", _n, what, directive), flush=True)
    if not ok and counts:
        _failed += 1
    if detail and (not ok or directive):
        for text in str(detail).rstrip().splitlines()[:lines]:
            print("#   " + text, flush=True)
    return ok


def check(what, cond, detail="", lines=30):
    line(bool(cond), what, detail, lines)
    return cond


def ok(cond, what, detail="", lines=30):
    """check() in Test::More's order, the condition first."""
    return check(what, cond, detail, lines)


def diag(text):
    for text_line in str(text).splitlines():
        print("# " + text_line, flush=True)


def skip_all(reason):
    """Nothing can run here: tests/run.sh counts a skip (exit 77)."""
    print("1..0 # SKIP %s" % reason, flush=True)
    sys.exit(77)


def failed():
    return _failed


def done():
    print("1..%d" % _n, flush=True)
    return 1 if _failed else 0


class TapResult(unittest.TestResult):
    """A unittest result printing one TAP line per test, named by its id
    (without the module) after `prefix`, with the time it took; a failing
    subtest gets its own line."""

    def __init__(self, prefix=""):
        super().__init__()
        self.prefix = prefix
        self.t0 = {}

    def name(self, test):
        return self.prefix + (test.id().split(".", 1)[-1] if isinstance(test, unittest.TestCase) else str(test))

    def startTest(self, test):
        super().startTest(test)
        self.t0[test] = time.monotonic()

    def _line(self, ok, test, directive="", err=None, counts=True):
        took = time.monotonic() - self.t0.get(test, time.monotonic())
        text = self._exc_info_to_string(err, test) if err else ""
        line(ok, "%s (%.2f s)" % (self.name(test), took), text, lines=10 ** 6, directive=directive, counts=counts)

    def addSuccess(self, test):
        super().addSuccess(test)
        self._line(True, test)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._line(False, test, err=err)

    def addError(self, test, err):
        super().addError(test, err)
        self._line(False, test, err=err)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._line(True, test, " # SKIP " + reason)

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._line(False, test, " # TODO known bug", err, counts=False)

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._line(True, test, " # TODO passed unexpectedly")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._line(False, subtest, err=err)


def run_cases(classes, only=(), result=None):
    """Runs the tests of `classes` whose id holds one of `only` (all when
    empty) into `result` (a new TapResult by default), which is returned."""
    suite = unittest.TestSuite()
    for cls in classes:
        for t in unittest.TestLoader().loadTestsFromTestCase(cls):
            if not only or any(o in t.id() for o in only):
                suite.addTest(t)
    result = result if result is not None else TapResult()
    result._previousTestClass = None  # a second pass sets its classes up again, even the last one's
    suite.run(result)
    return result
