/* PEP 440 versions and specifiers: normalisation, the PEP's ordering, every
 * operator at its edges, and rejection of malformed input.  Expected values
 * agree with Python's packaging 24.1 (except where pyver.h says otherwise). */
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "python/pyver.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static int parse(struct udfb_pyver *v, const char *s)
{
	struct udfb_err err = UDFB_ERR_INIT;
	int rc = udfb_pyver_parse(v, s, &err);
	if (rc < 0)
		printf("# '%s': %s\n", s, err.msg);
	udfb_err_clear(&err);
	return rc;
}

static void norm(const char *in, const char *want)
{
	struct udfb_pyver v;
	if (parse(&v, in) < 0) {
		CHECK(0, "version '%s' parses", in);
		return;
	}
	CHECK_STR(v.text, want, "version '%s' normalises to '%s'", in, want);
}

static void bad(const char *in, const char *why)
{
	struct udfb_pyver v;
	struct udfb_err err = UDFB_ERR_INIT;
	int rc = udfb_pyver_parse(&v, in, &err);
	CHECK(rc < 0 && err.cat == UDFB_E_INVALID && err.msg, "version '%.40s' rejected (%s): %s", in, why,
	      err.msg ? err.msg : "accepted");
	udfb_err_clear(&err);
}

static int cmp(const char *a, const char *b)
{
	struct udfb_pyver va, vb;
	if (parse(&va, a) < 0 || parse(&vb, b) < 0)
		return 99;
	int c = udfb_pyver_cmp(&va, &vb);
	return (c > 0) - (c < 0);
}

/* Every pair of a strictly ascending list, both ways round. */
static void ascending(const char *const *list, size_t n, const char *what)
{
	int ok = 1;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++) {
			int want = (j > i) - (j < i);
			if (cmp(list[i], list[j]) != -want) {
				printf("# %s vs %s: got %d, want %d\n", list[i], list[j], cmp(list[i], list[j]), -want);
				ok = 0;
			}
		}
	CHECK(ok, "%s: %zu versions in PEP 440 order, pairwise", what, n);
}

static void same(const char *a, const char *b)
{
	CHECK(cmp(a, b) == 0 && cmp(b, a) == 0, "'%s' and '%s' compare equal", a, b);
}

static void less(const char *a, const char *b)
{
	CHECK(cmp(a, b) < 0 && cmp(b, a) > 0, "'%s' sorts before '%s'", a, b);
}

/* want: contains(prereleases = 0), contains(prereleases = 1). */
static void spec(const char *text, const char *ver, int want_final, int want_pre)
{
	struct udfb_pyspec *s = NULL;
	struct udfb_err err = UDFB_ERR_INIT;
	struct udfb_pyver v;
	if (udfb_pyspec_parse(&s, text, &err) < 0 || parse(&v, ver) < 0) {
		CHECK(0, "'%s' and '%s' parse: %s", text, ver, err.msg ? err.msg : "bad version");
		udfb_err_clear(&err);
		udfb_pyspec_free(s);
		return;
	}
	int got0 = udfb_pyspec_contains(s, &v, 0), got1 = udfb_pyspec_contains(s, &v, 1);
	CHECK(got0 == want_final && got1 == want_pre, "'%s' %s '%s'%s", text, want_pre ? "takes" : "refuses", ver,
	      want_final != want_pre ? " only with pre-releases allowed" : "");
	if (got0 != want_final || got1 != want_pre)
		printf("#   got %d/%d, want %d/%d\n", got0, got1, want_final, want_pre);
	udfb_pyspec_free(s);
}

static void bad_spec(const char *text, const char *why)
{
	struct udfb_pyspec *s = NULL;
	struct udfb_err err = UDFB_ERR_INIT;
	int rc = udfb_pyspec_parse(&s, text, &err);
	CHECK(rc < 0 && !s && err.cat == UDFB_E_INVALID && err.msg, "specifier '%.40s' rejected (%s): %s", text, why,
	      err.msg ? err.msg : "accepted");
	udfb_pyspec_free(s);
	udfb_err_clear(&err);
}

static void wants_pre(const char *text, int want)
{
	struct udfb_pyspec *s = NULL;
	struct udfb_err err = UDFB_ERR_INIT;
	int rc = udfb_pyspec_parse(&s, text, &err);
	CHECK(rc == 0 && udfb_pyspec_wants_prereleases(s) == want, "'%s' %s pre-releases", text,
	      want ? "asks for" : "does not ask for");
	udfb_pyspec_free(s);
	udfb_err_clear(&err);
}

static void test_normalise(void)
{
	norm("1.0", "1.0");
	norm("v1.0", "1.0");
	norm("  1.0\t", "1.0");
	norm("01.002.0003", "1.2.3");
	norm("0!1.0", "1.0");
	norm("1!2.0rc1.post2+abc", "1!2.0rc1.post2+abc");
	norm("1.0alpha1", "1.0a1");
	norm("1.0-Beta.2", "1.0b2");
	norm("1.0c1", "1.0rc1");
	norm("1.0pre", "1.0rc0");
	norm("1.0.preview-3", "1.0rc3");
	norm("1.0a", "1.0a0");
	norm("1.0a.", "1.0a0");
	norm("1.0-1", "1.0.post1");
	norm("1.0_rev", "1.0.post0");
	norm("1.0r5", "1.0.post5");
	norm("1.0.POST-7", "1.0.post7");
	norm("1.0-dev", "1.0.dev0");
	norm("1.0DEV_2", "1.0.dev2");
	norm("1.0a1-1", "1.0a1.post1");
	norm("1crdev", "1rc0.post0.dev0");
	norm("1.0+Ubuntu-1_007", "1.0+ubuntu.1.7");
	norm("1.0+0", "1.0+0");
	norm("00000000000000000000000000001", "1");
	norm("9223372036854775807", "9223372036854775807");
	norm("1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16", "1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16");
	struct udfb_pyver v;
	CHECK(parse(&v, "2!1.2.3rc4.post5.dev6+x.7") == 0 && v.epoch == 2 && v.n_release == 3 && v.release[2] == 3 &&
		      v.pre_kind == 'c' && v.pre == 4 && v.post == 5 && v.dev == 6 && strcmp(v.local, "x.7") == 0,
	      "struct fields of 2!1.2.3rc4.post5.dev6+x.7");
	CHECK(parse(&v, "1.0") == 0 && v.pre_kind == 0 && v.pre == -1 && v.post == -1 && v.dev == -1 && !v.local[0],
	      "struct fields of a final release say none");
}

static void test_malformed(void)
{
	bad("", "empty");
	bad("   ", "blank");
	bad("abc", "no release");
	bad("1..0", "empty release segment");
	bad("1.0.", "trailing dot");
	bad("1.0-", "trailing dash");
	bad(".1", "leading dot");
	bad("1.0+", "empty local");
	bad("1.0+a..b", "empty local segment");
	bad("1.0+a_", "trailing local separator");
	bad("1.0+ab!", "bad local character");
	bad("1.0a1a2", "two pre-releases");
	bad("1.0.post1.post2", "two post-releases");
	bad("1.0.dev1.post1", "dev before post");
	bad("1.0 a1", "blank inside");
	bad("1!2!3", "two epochs");
	bad("!1.0", "empty epoch");
	bad("vv1.0", "two v");
	bad("1.*", "wildcard is not a version");
	bad("1.0\x80", "non-ASCII byte");
	bad("9223372036854775808", "number past LLONG_MAX");
	bad("99999999999999999999999999999999", "32-digit number");
	bad("1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17", "17 release segments");
	bad("1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20", "20 release segments");
	char longv[200];
	memset(longv, '1', sizeof(longv) - 1);
	longv[sizeof(longv) - 1] = '\0';
	bad(longv, "longer than 128 bytes");
}

static void test_order(void)
{
	/* The ordering example of PEP 440's "Summary of permitted suffixes". */
	static const char *const pep[] = {
		"1.dev0",
		"1.0.dev456",
		"1.0a1",
		"1.0a2.dev456",
		"1.0a12.dev456",
		"1.0a12",
		"1.0b1.dev456",
		"1.0b2",
		"1.0b2.post345.dev456",
		"1.0b2.post345",
		"1.0rc1.dev456",
		"1.0rc1",
		"1.0",
		"1.0+abc.5",
		"1.0+abc.7",
		"1.0+5",
		"1.0.post456.dev34",
		"1.0.post456",
		"1.0.15",
		"1.1.dev1",
	};
	ascending(pep, N(pep), "PEP 440 summary example");
	static const char *const chain[] = {
		"1.0.dev1",    "1.0a1.dev1", "1.0a1",	       "1.0a1.post1.dev1",
		"1.0a1.post1", "1.0",	     "1.0.post1.dev1", "1.0.post1",
	};
	ascending(chain, N(chain), "dev < pre < final < post");
	static const char *const epochs[] = { "2013.10", "2014.04", "1!1.0", "1!1.1", "2!0.1" };
	ascending(epochs, N(epochs), "epochs before releases");
	static const char *const locals[] = {
		"1.0",
		"1.0+abc",
		"1.0+abc.1",
		"1.0+abd",
		"1.0+0",
		"1.0+1.abc",
		"1.0+1.2",
		"1.0+1.10",
		"1.0+2",
		"1.0+10",
		"1.0+99999999999999999999999",
	};
	ascending(locals, N(locals), "local labels: none, alphanumeric, numeric, longer");
	same("1.0", "1.0.0");
	same("1", "1.0.0.0.0");
	same("1.0", "0!1.0");
	same("1.0+01", "1.0+1");
	same("1.0+ABC", "1.0+abc");
	same("1.0a", "1.0alpha0");
	same("1.0c1", "1.0rc1");
	less("1.0", "1.0+0");
	less("1.0.dev0", "1.0a0");
	less("1.0.post1.dev1", "1.0.post1");
	less("1.0rc1", "1.0.0.1");
	less("1.9", "1.10");
	less("1.0b1", "1.0rc0");
}

static void test_operators(void)
{
	/* ~= */
	spec("~=2.2", "2.2", 1, 1);
	spec("~=2.2", "2.3", 1, 1);
	spec("~=2.2", "3.0", 0, 0);
	spec("~=2.2", "2.1", 0, 0);
	spec("~=2.2", "2.2.post3", 1, 1);
	spec("~=1.4.5", "1.4.5", 1, 1);
	spec("~=1.4.5", "1.4.9", 1, 1);
	spec("~=1.4.5", "1.5.0", 0, 0);
	spec("~=1.4.5", "1.4.4", 0, 0);
	spec("~=1.4.5", "1.4.6a1", 0, 1);
	spec("~=1.4.5a4", "1.4.9", 1, 1);
	spec("~=1.4.5a4", "1.4.5a3", 0, 0);
	spec("~=2.2.post3", "2.9", 1, 1);
	spec("~=2.2.post3", "2.2.post2", 0, 0);
	spec("~=1.4.5.c1", "1.4.6", 1, 1);
	spec("~=1!2.2", "2.3", 0, 0);
	spec("~=1!2.2", "1!2.3", 1, 1);
	spec("~=2.2", "2.3+local", 1, 1);
	/* == */
	spec("==1.0", "1.0", 1, 1);
	spec("==1.0", "1.0.0", 1, 1);
	spec("==1", "1.0.0", 1, 1);
	spec("==1.0", "1.0+local", 1, 1);
	spec("==1.0+local", "1.0+LOCAL", 1, 1);
	spec("==1.0+local", "1.0+other", 0, 0);
	spec("==1.0+local", "1.0", 0, 0);
	spec("==1.0", "1.0.post1", 0, 0);
	spec("==1.0a1", "1.0a1", 0, 1);
	spec("==1!1.0", "1.0", 0, 0);
	/* ==X.* */
	spec("==1.1.*", "1.1", 1, 1);
	spec("==1.1.*", "1.1.post1", 1, 1);
	spec("==1.1.*", "1.1a1", 0, 1);
	spec("==1.1.*", "1.1.0.dev1", 0, 1);
	spec("==1.1.*", "1.10", 0, 0);
	spec("==1.1.*", "1.2", 0, 0);
	spec("==1.1.*", "1.1.3+local", 1, 1);
	spec("==1.0.0.*", "1", 1, 1);
	spec("==01.1.*", "1.1.5", 1, 1);
	spec("==1!1.*", "1.5", 0, 0);
	spec("==1!1.*", "1!1.5", 1, 1);
	/* != and !=X.* */
	spec("!=1.1", "1.1.0", 0, 0);
	spec("!=1.1", "1.1+local", 0, 0);
	spec("!=1.1", "1.1.post1", 1, 1);
	spec("!=1.1.*", "1.1.5", 0, 0);
	spec("!=1.1.*", "1.10", 1, 1);
	spec("!=1.1.*", "1.2", 1, 1);
	spec("!=1.1.*", "1.1a1", 0, 0);
	/* <= and >= */
	spec("<=1.0", "1.0+local", 1, 1);
	spec("<=1.0", "1.0.post1", 0, 0);
	spec("<=1.0", "1.0a1", 0, 1);
	spec(">=1.0", "1.0", 1, 1);
	spec(">=1.0", "1.0+local", 1, 1);
	spec(">=1.0", "1.0rc1", 0, 0);
	spec(">=1.0", "1.0.post1", 1, 1);
	spec(">=1.0b1", "1.0b2", 0, 1);
	/* < */
	spec("<2", "1.9", 1, 1);
	spec("<2", "2.0a1", 0, 0);
	spec("<2", "2.0.dev1", 0, 0);
	spec("<2", "2.0", 0, 0);
	spec("<2", "1.9a1", 0, 1);
	spec("<2.0b1", "2.0a1", 0, 1);
	spec("<2.0b1", "2.0b1", 0, 0);
	spec("<2", "1.9.post1", 1, 1);
	spec("<2", "1!1.0", 0, 0);
	/* > */
	spec(">1.7", "1.7.1", 1, 1);
	spec(">1.7", "1.7.post1", 0, 0);
	spec(">1.7", "1.7+local", 0, 0);
	spec(">1.7", "1.7", 0, 0);
	spec(">1.7", "1.8a1", 0, 1);
	spec(">1.7.post2", "1.7.post3", 1, 1);
	spec(">1.7.post2", "1.7.post2", 0, 0);
	spec(">1.7.post2", "1.8", 1, 1);
	spec(">1.7", "1.7.1.post1", 1, 1);
	spec(">1.0a1", "1.0a2", 0, 1);
	spec(">1.0a1", "1.0a1.post1", 0, 0);
	/* === */
	spec("===1.0", "1.0", 1, 1);
	spec("===1.0", "1.0.0", 0, 0);
	spec("===1.0+ABC", "1.0+abc", 1, 1);
	spec("===foobar", "1.0", 0, 0);
	/* epochs and sets */
	spec(">=1.0", "1!0.5", 1, 1);
	spec("<1!0", "2024.1", 1, 1);
	spec(">=1.0,!=1.3.*,<2", "1.3.1", 0, 0);
	spec(">=1.0,!=1.3.*,<2", "1.4", 1, 1);
	spec(" >= 1.0 , < 2 ", "1.5", 1, 1);
	spec(">=1,,<2,", "1.5", 1, 1);
	spec("", "1.0", 1, 1);
	spec("", "1.0a1", 0, 1);
	spec("", "1.0.post1.dev1", 0, 1);
	spec("==1.0a1", "1.0a1", 0, 1);
}

static void test_prerelease_flag(void)
{
	struct udfb_pyver v;
	CHECK(parse(&v, "1.0a1") == 0 && udfb_pyver_is_prerelease(&v), "1.0a1 is a pre-release");
	CHECK(parse(&v, "1.0.dev1") == 0 && udfb_pyver_is_prerelease(&v), "1.0.dev1 is a pre-release");
	CHECK(parse(&v, "1.0.post1.dev1") == 0 && udfb_pyver_is_prerelease(&v), "1.0.post1.dev1 is a pre-release");
	CHECK(parse(&v, "1.0.post1") == 0 && !udfb_pyver_is_prerelease(&v), "1.0.post1 is not a pre-release");
	CHECK(parse(&v, "1.0+dev") == 0 && !udfb_pyver_is_prerelease(&v), "1.0+dev is not a pre-release");
	wants_pre(">=2.0b1", 1);
	wants_pre("==2.0.dev1", 1);
	wants_pre("~=2.0rc1", 1);
	wants_pre("<=2.0a1", 1);
	wants_pre("===2.0a1", 1);
	wants_pre("===foo", 0);
	wants_pre(">=1.0,<2.0b1", 0);
	wants_pre("!=2.0b1", 0);
	wants_pre(">2.0b1", 0);
	wants_pre("==2.*", 0);
	wants_pre("", 0);
}

static void test_bad_specs(void)
{
	bad_spec("1.0", "no operator");
	bad_spec("=1.0", "single =");
	bad_spec("=>1.0", "reversed operator");
	bad_spec(">=", "no version");
	bad_spec("==", "no version");
	bad_spec(">=1.0 extra", "trailing word");
	bad_spec(">=1 .0", "blank inside the version");
	bad_spec("~=1", "~= with one segment");
	bad_spec("~=1.0+local", "~= with a local version");
	bad_spec(">=1.0+local", ">= with a local version");
	bad_spec("<=1.*", "wildcard with <=");
	bad_spec("~=1.*", "wildcard with ~=");
	bad_spec("==1.0a1.*", "wildcard after a pre-release");
	bad_spec("==1.0+abc.*", "wildcard after a local label");
	bad_spec("==1 .*", "blank before the wildcard");
	bad_spec("===foo bar", "=== with two words");
	bad_spec("===a)", "=== with ')'");
	bad_spec(">=1.0;", "semicolon");
	bad_spec(">=abc", "not a version");
	char many[512] = "";
	for (int k = 0; k < 33; k++)
		strcat(many, ">=1,");
	bad_spec(many, "33 clauses");
	char longs[5000];
	memset(longs, ' ', sizeof(longs) - 1);
	longs[sizeof(longs) - 1] = '\0';
	bad_spec(longs, "longer than 4096 bytes");
}

int main(void)
{
	test_normalise();
	test_malformed();
	test_order();
	test_operators();
	test_prerelease_flag();
	test_bad_specs();
	return check_done();
}
