/* PEP 440 versions and version specifiers, in full: epochs, pre/post/dev
 * releases, local versions, and every operator (~=, ==, ==X.*, !=, !=X.*,
 * <=, >=, <, >, ===).  Used by the resolver to order candidates and to test
 * them against requirements, and by marker evaluation.  Inputs come from
 * package indexes and METADATA files: untrusted, hence the limits below. */
#ifndef UDFB_PYVER_H
#define UDFB_PYVER_H

#include <stddef.h>

#include "common/err.h"

#define UDFB_PYVER_MAX_LEN 128 /* version text */
#define UDFB_PYVER_MAX_RELEASE 16 /* release segments */
#define UDFB_PYSPEC_MAX_CLAUSES 32

struct udfb_pyver {
	long long epoch;
	long long release[UDFB_PYVER_MAX_RELEASE];
	size_t n_release;
	char pre_kind; /* 0: none; 'a', 'b' or 'c' (rc) */
	long long pre; /* -1: none */
	long long post; /* -1: none */
	long long dev; /* -1: none */
	char local[UDFB_PYVER_MAX_LEN + 1]; /* normalised ("ubuntu.1"), "" when none */
	char text[UDFB_PYVER_MAX_LEN + 16]; /* normalised text ("1!2.0rc1.post2+abc") */
};

/* Parse (and normalise) a version, as Python's packaging does (surrounding
 * blanks allowed); errors are UDFB_E_INVALID.  Beyond packaging, numbers
 * past LLONG_MAX and more than UDFB_PYVER_MAX_RELEASE segments are refused. */
int udfb_pyver_parse(struct udfb_pyver *out, const char *s, struct udfb_err *err);
/* <0, 0, >0 as PEP 440 orders a and b (local versions included). */
int udfb_pyver_cmp(const struct udfb_pyver *a, const struct udfb_pyver *b);
/* A pre-release or development release. */
int udfb_pyver_is_prerelease(const struct udfb_pyver *v);

struct udfb_pyspec; /* a parsed specifier set: clauses joined by ',' (all must hold) */

/* Parse "", ">=1.0,!=1.3.*,<2" (whitespace allowed, as in METADATA's
 * Requires-Dist and Requires-Python; empty clauses are skipped, as by
 * packaging's SpecifierSet).  An empty text matches every version.  ~=V
 * means >=V,==P.* with P the release of V less its last segment (PEP 440;
 * packaging 24 gets this wrong for some spellings of V, e.g. "~=1.4.5.c1"). */
int udfb_pyspec_parse(struct udfb_pyspec **out, const char *text, struct udfb_err *err);
void udfb_pyspec_free(struct udfb_pyspec *s);
/* 1 when v satisfies every clause, 0 otherwise.  Pre-releases follow PEP
 * 440: they match only when prereleases is non-zero, and even then "<2"
 * does not take "2.0a1" (nor ">1.7" take "1.7.post1" or "1.7+local"): the
 * operators' own exclusions always hold.  Callers usually pass
 * udfb_pyspec_wants_prereleases(s) or an explicit --pre. */
int udfb_pyspec_contains(const struct udfb_pyspec *s, const struct udfb_pyver *v, int prereleases);
/* 1 when some clause names a pre-release (">=2.0b1"): then pre-releases are
 * wanted, as pip does.  As in packaging, only ==, ===, ~=, <= and >= count:
 * "!=2.0b1" and "<2.0b1" do not. */
int udfb_pyspec_wants_prereleases(const struct udfb_pyspec *s);

#endif
