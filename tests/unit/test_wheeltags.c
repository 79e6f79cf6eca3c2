/* Wheel file names, the supported-tag order and core metadata.  The tag
 * lists in tests/data/tags-*.txt are packaging.tags' (pip 23.2's vendored
 * packaging 21.3: cpython_tags + compatible_tags with the manylinux
 * platforms of the given glibc), so rank must equal each tag's line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "python/wheel.h"

static int rank_of(const struct udfb_pytags *t, const char *filename)
{
	struct udfb_wheelname w;
	struct udfb_err err = UDFB_ERR_INIT;
	if (udfb_wheelname_parse(&w, filename, &err) < 0) {
		printf("# %s\n", err.msg);
		udfb_err_clear(&err);
		return -2;
	}
	int r = udfb_pytags_rank(t, &w);
	udfb_wheelname_free(&w);
	return r;
}

/* Every line's tag ranks at its line number: the order is packaging's. */
static void check_order(const char *file, const struct udfb_pytarget *tg)
{
	struct udfb_pytags *t;
	struct udfb_err err = UDFB_ERR_INIT;
	CHECK(udfb_pytags_new(&t, tg, &err) == 0, "tags for %s", file);
	FILE *f = fopen(file, "r");
	CHECK(f != NULL, "open %s", file);
	if (!f)
		return;
	char line[256];
	int n = 0, bad = 0;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		char name[300];
		snprintf(name, sizeof(name), "x-1.0-%s.whl", line);
		int r = rank_of(t, name);
		if (r != n && bad++ < 5)
			printf("# %s ranks %d, want %d\n", line, r, n);
		n++;
	}
	fclose(f);
	CHECK(bad == 0 && n > 0, "all %d tags of %s rank in packaging's order", n, file);
	char *d = udfb_pytags_describe(t);
	printf("# %s\n", d);
	CHECK(strstr(d, "py30-none-any") && strstr(d, "tags)"), "describe names the last tag and the count");
	free(d);
	udfb_pytags_free(t);
}

static void test_tags(void)
{
	struct udfb_pytarget x86 = { 3, 12, 2, 36, "x86_64" }, arm = { 3, 11, 2, 17, "aarch64" };
	check_order("tests/data/tags-cp312-glibc2.36-x86_64.txt", &x86);
	check_order("tests/data/tags-cp311-glibc2.17-aarch64.txt", &arm);
	struct udfb_pytags *t;
	struct udfb_err err = UDFB_ERR_INIT;
	udfb_pytags_new(&t, &x86, &err);
	char *d = udfb_pytags_describe(t);
	CHECK_STR(d,
		  "cp312-cp312-manylinux_2_36_x86_64, cp312-cp312-manylinux_2_35_x86_64, "
		  "cp312-cp312-manylinux_2_34_x86_64, ..., py30-none-any (987 tags)",
		  "describe");
	free(d);
	CHECK(rank_of(t, "a-1-cp312-cp312-manylinux_2_36_x86_64.whl") == 0, "the most specific tag ranks 0");
	CHECK(rank_of(t, "a-1-cp312-cp312-manylinux2014_x86_64.whl") == 20, "manylinux2014 right after manylinux_2_17");
	CHECK(rank_of(t, "a-1-cp312-cp312-linux_x86_64.whl") == 35, "linux_x86_64 before the abi3 group");
	int pure = rank_of(t, "a-1-py3-none-any.whl"), abi3 = rank_of(t, "a-1-cp312-abi3-manylinux2014_x86_64.whl");
	CHECK(pure == 974 && abi3 == 56 && abi3 < pure, "abi3 manylinux2014 (%d) beats py3-none-any (%d)", abi3, pure);
	CHECK(rank_of(t, "a-1-cp311-cp311-manylinux_2_17_x86_64.whl") == -1, "cp311-cp311 does not fit 3.12");
	CHECK(rank_of(t, "a-1-cp312-cp312-win_amd64.whl") == -1, "win_amd64 does not fit");
	CHECK(rank_of(t, "a-1-cp312-cp312-manylinux_2_38_x86_64.whl") == -1, "a newer glibc does not fit");
	CHECK(rank_of(t, "a-1-cp312-cp312-manylinux_2_17_aarch64.whl") == -1, "another arch does not fit");
	CHECK(rank_of(t, "a-1-cp37-cp37m-manylinux_2_17_x86_64.manylinux2014_x86_64.whl") == -1, "cp37m does not fit");
	CHECK(rank_of(t, "numpy-1.26.4-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl") == 19,
	      "compressed platform set: its best tag counts");
	CHECK(rank_of(t, "six-1.16.0-py2.py3-none-any.whl") == 974, "compressed python set py2.py3");
	CHECK(rank_of(t, "a-1-py3.py3.py3-none.none-any.any.whl") == 974, "repeated tags");
	CHECK(rank_of(t, "A-1-CP312-ABI3-MANYLINUX2014_X86_64.whl") == 56, "tags compare lower-cased");
	udfb_pytags_free(t);
	struct udfb_pytarget bad = { 2, 7, 2, 17, "x86_64" }, badarch = { 3, 12, 2, 17, "x86/64" };
	CHECK(udfb_pytags_new(&t, &bad, &err) < 0 && err.cat == UDFB_E_UNSUPPORTED, "python 2 is refused");
	udfb_err_clear(&err);
	CHECK(udfb_pytags_new(&t, &badarch, &err) < 0, "an odd arch is refused");
	udfb_err_clear(&err);
}

static void test_names(void)
{
	struct udfb_wheelname w;
	struct udfb_err err = UDFB_ERR_INIT;
	CHECK(udfb_wheelname_parse(
		      &w, "Foo.Bar_baz-1.0RC1-7abc-cp312.cp311-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
		      &err) == 0,
	      "full name with build tag parses");
	CHECK_STR(w.name, "foo-bar-baz", "name normalised");
	CHECK_STR(w.version, "1.0rc1", "version normalised");
	CHECK_STR(w.build, "7abc", "build tag");
	CHECK(w.n_py == 2 && w.n_abi == 1 && w.n_plat == 2 && !strcmp(w.py[1], "cp311") &&
		      !strcmp(w.plat[1], "manylinux2014_x86_64"),
	      "tag sets split on '.'");
	udfb_wheelname_free(&w);
	CHECK(udfb_wheelname_parse(&w, "six-1.16.0-py2.py3-none-any.whl", &err) == 0 && !strcmp(w.build, ""),
	      "no build tag: empty");
	udfb_wheelname_free(&w);
	const char *bad[] = { "six-1.16.0-py3-none-any.zip",   "six-1.16.0-none-any.whl",
			      "six-1.0-1-2-py3-none-any.whl",  "six-1.16.0-x1-py3-none-any.whl",
			      "si__x-1.0-py3-none-any.whl",    "six-notaversion-py3-none-any.whl",
			      "six-1.0-py3..py2-none-any.whl", "six-1.0-py3-none-.whl",
			      "-1.0-py3-none-any.whl",	       "s/x-1.0-py3-none-any.whl",
			      "six-1.0-py3-none-any$.whl",     ".whl" };
	for (size_t k = 0; k < sizeof(bad) / sizeof(*bad); k++) {
		int rc = udfb_wheelname_parse(&w, bad[k], &err);
		CHECK(rc < 0 && err.cat == UDFB_E_INVALID && strstr(err.msg, bad[k]), "refused: %s (%s)", bad[k],
		      err.msg ? err.msg : "accepted");
		udfb_err_clear(&err);
	}
	char longname[2100];
	memset(longname, 'a', sizeof(longname));
	strcpy(longname + 2000, "-1.0-py3-none-any.whl");
	CHECK(udfb_wheelname_parse(&w, longname, &err) < 0, "an overlong name is refused");
	udfb_err_clear(&err);
}

static void test_metadata(void)
{
	const char *text = "Metadata-Version: 2.1\r\n"
			   "name: Demo-Pkg\n"
			   "VERSION: 1.0\n"
			   "Summary: a summary\n"
			   "  that continues\n"
			   "Requires-Python: >=3.8\n"
			   "Requires-Dist: requests (>=2.0)\n"
			   "Requires-Dist: numpy>=1.26;\n"
			   "\tpython_version >= \"3.9\"\n"
			   "Provides-Extra: cli\n"
			   "Requires-Dist: click ; extra == 'cli'\n"
			   "Name: Other\n"
			   "\n"
			   "Requires-Dist: not-a-header-this-is-the-body\n";
	struct udfb_pkgmeta m;
	struct udfb_err err = UDFB_ERR_INIT;
	CHECK(udfb_pkgmeta_parse(&m, text, strlen(text), &err) == 0, "metadata parses");
	CHECK_STR(m.name, "Demo-Pkg", "Name as written, case-insensitive header, the first one");
	CHECK_STR(m.version, "1.0", "Version");
	CHECK_STR(m.requires_python, ">=3.8", "Requires-Python");
	CHECK(m.n_requires_dist == 3, "three Requires-Dist, none from the body (%zu)", m.n_requires_dist);
	if (m.n_requires_dist == 3) {
		CHECK_STR(m.requires_dist[0], "requests (>=2.0)", "Requires-Dist 1");
		CHECK_STR(m.requires_dist[1], "numpy>=1.26;\tpython_version >= \"3.9\"", "continuation line joined");
		CHECK_STR(m.requires_dist[2], "click ; extra == 'cli'", "Requires-Dist 3");
	}
	CHECK(m.n_provides_extra == 1 && !strcmp(m.provides_extra[0], "cli"), "Provides-Extra");
	udfb_pkgmeta_free(&m);
	const char *nover = "Metadata-Version: 2.1\nName: x\n\nVersion: 1.0\n";
	CHECK(udfb_pkgmeta_parse(&m, nover, strlen(nover), &err) < 0 && err.cat == UDFB_E_INVALID &&
		      strstr(err.msg, "Version"),
	      "no Version before the body: refused (%s)", err.msg);
	udfb_err_clear(&err);
	const char *noname = "Version: 1.0\n";
	CHECK(udfb_pkgmeta_parse(&m, noname, strlen(noname), &err) < 0 && strstr(err.msg, "Name"), "no Name: refused");
	udfb_err_clear(&err);
	const char *nul = "Name: a\0b\nVersion: 1\n";
	CHECK(udfb_pkgmeta_parse(&m, nul, 20, &err) < 0, "NUL in a header: refused");
	udfb_err_clear(&err);
	const char *junk = "Name: a\nVersion: 1\nthis line is no header\nRequires-Dist: b\n";
	CHECK(udfb_pkgmeta_parse(&m, junk, strlen(junk), &err) == 0 && m.n_requires_dist == 0,
	      "a line that is no header starts the body, as in email");
	udfb_pkgmeta_free(&m);
	size_t big = UDFB_METADATA_MAX_BYTES + 1;
	char *huge = malloc(big);
	memset(huge, 'a', big);
	CHECK(udfb_pkgmeta_parse(&m, huge, big, &err) < 0, "over the size limit: refused");
	udfb_err_clear(&err);
	free(huge);
	/* 20,000 headers: past the cap. */
	size_t n = 20001 * 6;
	char *many = malloc(n + 1);
	for (size_t k = 0; k < 20001; k++)
		memcpy(many + 6 * k, "A: b\r\n", 6);
	CHECK(udfb_pkgmeta_parse(&m, many, n, &err) < 0 && strstr(err.msg, "headers"), "too many headers: refused");
	udfb_err_clear(&err);
	free(many);
}

int main(void)
{
	test_tags();
	test_names();
	test_metadata();
	return check_done();
}
