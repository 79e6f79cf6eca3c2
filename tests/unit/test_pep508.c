/* Requirement strings: canonical forms, and rejection of what pip would
 * reject (or what could smuggle text into an image). */
#include <stdlib.h>

#include "check.h"
#include "python/pep508.h"

static void canon(const char *in, const char *want)
{
	struct udfb_requirement r;
	struct udfb_err err = UDFB_ERR_INIT;
	int rc = udfb_req_parse(&r, in, &err);
	CHECK(rc == 0, "parse '%s'%s%s", in, err.msg ? ": " : "", err.msg ? err.msg : "");
	if (rc == 0)
		CHECK_STR(r.canonical, want, "canonical form of '%s'", in);
	udfb_req_free(&r);
	udfb_err_clear(&err);
}

static void bad(const char *in)
{
	struct udfb_requirement r;
	struct udfb_err err = UDFB_ERR_INIT;
	int rc = udfb_req_parse(&r, in, &err);
	char shown[128];
	size_t k = 0;
	for (const char *c = in; *c && k < sizeof(shown) - 3; c++)
		shown[k++] = *c == '\n' ? '|' : *c;
	shown[k] = '\0';
	CHECK(rc < 0 && err.cat == UDFB_E_INVALID && err.msg, "reject '%s' (%s)", shown,
	      err.msg ? err.msg : "accepted");
	if (rc == 0)
		udfb_req_free(&r);
	udfb_err_clear(&err);
}

static void version(const char *in, const char *want)
{
	char *out = NULL;
	struct udfb_err err = UDFB_ERR_INIT;
	int rc = udfb_pep440_normalize(&out, in, 1, &err);
	if (want)
		CHECK(rc == 0 && out && strcmp(out, want) == 0, "version '%s' -> '%s' (got %s)", in, want,
		      out ? out : err.msg);
	else
		CHECK(rc < 0, "version '%s' rejected", in);
	free(out);
	udfb_err_clear(&err);
}

int main(void)
{
	canon("numpy", "numpy");
	canon("NumPy", "numpy");
	canon("  humanize==4.9.0 ", "humanize==4.9.0");
	canon("Foo_Bar.baz>=1.0", "foo-bar-baz>=1.0");
	canon("requests[socks, security] >=2.8.1, ==2.8.*", "requests[security,socks]==2.8.*,>=2.8.1");
	canon("pandas (>=2.0,<3)", "pandas<3,>=2.0");
	canon("pkg~=1.4.2", "pkg~=1.4.2");
	canon("pkg===foobar", "pkg===foobar");
	canon("pkg==1.0RC1", "pkg==1.0rc1");
	canon("pkg==v1.0.post2.dev3", "pkg==1.0.post2.dev3");
	canon("pkg==1.0+Local.7", "pkg==1.0+local.7");
	canon("pkg; python_version < '3.13' and (sys_platform == \"linux\" or extra=='x')",
	      "pkg; python_version < \"3.13\" and (sys_platform == \"linux\" or extra == \"x\")");
	canon("pkg ; os_name not  in 'nt'", "pkg; os_name not in \"nt\"");
	bad("");
	bad("-numpy");
	bad("numpy==");
	bad("numpy>=1.0.*");
	bad("numpy~=1");
	bad("numpy<1.0+local");
	bad("numpy @ https://example.com/numpy.whl");
	bad("numpy; rm -rf /");
	bad("numpy; python_version <");
	bad("numpy\nRUN curl evil");
	bad("numpy==1.0 extra");
	bad("numpy[");
	bad("numpy; (((((((((((((((((((python_version>'3')))))))))))))))))))");
	version("1.0", "1.0");
	version("01.002", "1.2");
	version("1!2.0", "1!2.0");
	version("0!2.0", "2.0");
	version("1.0-1", "1.0.post1");
	version("1.0alpha", "1.0a0");
	version("1.0-preview.2", "1.0rc2");
	version("1.0.dev", "1.0.dev0");
	version("1.*", "1.*");
	version("1.0a1.*", NULL);
	version("1..0", NULL);
	version("1.0+", NULL);
	version("abc", NULL);

	/* Lists (runtime_packages, warm --packages): canonical, sorted, unique. */
	char **v = NULL;
	size_t n = 0;
	struct udfb_err err = UDFB_ERR_INIT;
	CHECK(udfb_req_list_parse(&v, &n, " Pandas==2.2.*,numpy\tpandas==2.2.*  numpy ", " ,\t\n", &err) == 0 &&
		      n == 2 && strcmp(v[0], "numpy") == 0 && strcmp(v[1], "pandas==2.2.*") == 0,
	      "a list: two spellings of one requirement are one");
	udfb_req_list_free(v, n);
	udfb_err_clear(&err);
	CHECK(udfb_req_list_parse(&v, &n, "  ", " ", &err) == 0 && n == 0, "an empty list");
	udfb_req_list_free(v, n);
	CHECK(udfb_req_list_parse(&v, &n, "numpy x!y", " ", &err) < 0 && err.msg && strncmp(err.msg, "'x!y': ", 7) == 0,
	      "a bad item is named: %s", err.msg ? err.msg : "");
	udfb_req_list_free(v, n);
	udfb_err_clear(&err);
	return check_done();
}
