/* PEP 508 markers evaluated for a target CPython 3.12 on x86_64 Linux:
 * version against string comparisons, the extras rule, precedence, and
 * rejection of what does not parse.  Expected values agree with Python's
 * packaging 24.1 (except where marker.h says otherwise). */
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "python/marker.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static struct udfb_pyenv env312;

static int eval_in(const struct udfb_pyenv *env, const char *m, char *const *extras, size_t n)
{
	struct udfb_err err = UDFB_ERR_INIT;
	int rc = udfb_marker_eval(m, env, extras, n, &err);
	if (rc < 0)
		printf("# '%.60s': %s\n", m, err.msg ? err.msg : "no message");
	if ((rc < 0) != (err.msg != NULL))
		rc = 42; /* an error without a message, or a message without an error */
	udfb_err_clear(&err);
	return rc;
}

static void holds(const char *m, int want)
{
	int got = eval_in(&env312, m, NULL, 0);
	CHECK(got == want, "'%s' %s on 3.12.2/x86_64 (got %d)", m, want ? "holds" : "does not hold", got);
}

static void holds_with(const char *m, char *const *extras, size_t n, int want, const char *what)
{
	int got = eval_in(&env312, m, extras, n);
	CHECK(got == want, "'%s' %s %s (got %d)", m, want ? "holds" : "does not hold", what, got);
}

static void bad(const char *m, const char *why)
{
	struct udfb_err err = UDFB_ERR_INIT;
	int rc = udfb_marker_eval(m, &env312, NULL, 0, &err);
	CHECK(rc == -1 && err.cat == UDFB_E_INVALID && err.msg, "'%.50s' rejected (%s): %s", m, why,
	      err.msg ? err.msg : "accepted");
	udfb_err_clear(&err);
}

static void test_env(void)
{
	struct udfb_pyenv e;
	udfb_pyenv_init(&e, "3.12.2", "aarch64");
	CHECK(strcmp(e.python_version, "3.12") == 0 && strcmp(e.python_full_version, "3.12.2") == 0 &&
		      strcmp(e.platform_machine, "aarch64") == 0 && !e.platform_release[0] && !e.platform_version[0],
	      "pyenv from 3.12.2 on aarch64");
	udfb_pyenv_init(&e, "3.11", "x86_64");
	CHECK(strcmp(e.python_version, "3.11") == 0 && strcmp(e.python_full_version, "3.11.0") == 0,
	      "pyenv from 3.11 has python_full_version 3.11.0");
	udfb_pyenv_init(&e, "3.13.0rc1", NULL);
	CHECK(strcmp(e.python_version, "3.13") == 0 && strcmp(e.python_full_version, "3.13.0rc1") == 0 &&
		      !e.platform_machine[0],
	      "pyenv from 3.13.0rc1 without a machine");
	CHECK(eval_in(&e, "python_full_version >= '3.13.0rc1' and python_full_version < '3.13.0rc2'", NULL, 0) == 1,
	      "a pre-release Python compares as one (pre-releases allowed in markers)");
}

static void test_versions(void)
{
	holds("python_version < \"3.10\"", 0);
	holds("python_version > '3.9'", 1); /* a string comparison would say no */
	holds("python_version >= '3.8'", 1);
	holds("python_version == '3.12'", 1);
	holds("python_version == '3.12.0'", 1);
	holds("python_version == '3.*'", 1);
	holds("python_version == '3.1.*'", 0);
	holds("python_version != '3.12.*'", 0);
	holds("python_version ~= '3.10'", 1);
	holds("python_version ~= '3.13'", 0);
	holds("python_full_version == '3.12.2'", 1);
	holds("python_full_version < '3.12.10'", 1);
	holds("python_full_version > '3.12.1'", 1);
	holds("python_full_version === '3.12.2'", 1);
	holds("implementation_version >= '3.12'", 1);
	holds("'3.9' < python_version", 1); /* the variable on the right */
	holds("python_version == ' 3.12 '", 1);
	struct udfb_pyenv e;
	udfb_pyenv_init(&e, "3.9.18", "x86_64");
	CHECK(eval_in(&e, "python_version < '3.10'", NULL, 0) == 1,
	      "'python_version < \"3.10\"' holds on 3.9 (a string comparison would say no)");
}

static void test_strings(void)
{
	holds("sys_platform == 'linux'", 1);
	holds("\"linux\" in sys_platform", 1);
	holds("'lin' in sys_platform", 1);
	holds("sys_platform in 'linux2 darwin'", 1);
	holds("sys_platform not in 'win32 cygwin'", 1);
	holds("os_name == 'nt'", 0);
	holds("os_name != 'nt'", 1);
	holds("platform_system == 'Linux'", 1);
	holds("platform_system == 'linux'", 0); /* case matters */
	holds("implementation_name == 'cpython'", 1);
	holds("platform_python_implementation == 'CPython'", 1);
	holds("python_implementation == 'CPython'", 1);
	holds("os.name == 'posix' and sys.platform == 'linux' and platform.machine == 'x86_64'", 1);
	holds("platform_release == ''", 1);
	holds("platform_version == ''", 1);
	holds("os_name < 'q'", 1); /* not versions: string order */
	holds("os_name >= 'z'", 0);
	holds("platform_machine === 'X86_64'", 1);
	holds("platform_machine == \"x86_64\" and (python_version >= \"3.8\" or os_name == \"nt\")", 1);
	holds("platform_machine == \"aarch64\" and (python_version >= \"3.8\" or os_name == \"nt\")", 0);
	holds("python_version == python_version", 1);
	holds("sys_platform == 'linux' or os_name == 'nt' and python_version < '3'", 1); /* and binds tighter */
	holds("(sys_platform == 'linux' or os_name == 'nt') and python_version < '3'", 0);
	holds("os_name == 'nt' or os_name == 'posix'", 1);
	holds("((((os_name == 'posix'))))", 1);
	holds("  os_name=='posix'and\tsys_platform=='linux'  ", 1);
	holds("python_version=='3.12'or os_name=='nt'", 1);
	holds("os_name not   in 'nt'", 1);
	holds("os_name == \"it's\"", 0);
	holds("os_name == 'say \"hi\"'", 0);
}

static void test_extras(void)
{
	char *one[] = { "test-extra" };
	char *two[] = { "docs", "dev-tools" };
	holds_with("extra == \"Test_Extra\"", one, N(one), 1, "with extras [test-extra]");
	holds_with("extra == 'test.extra'", one, N(one), 1, "with extras [test-extra]");
	holds_with("'TEST-extra' == extra", one, N(one), 1, "with extras [test-extra]");
	holds_with("extra == \"Test_Extra\"", NULL, 0, 0, "without extras");
	holds_with("extra == 'Dev_Tools'", two, N(two), 1, "with extras [docs, dev-tools]");
	holds_with("extra == 'test'", two, N(two), 0, "with extras [docs, dev-tools]");
	holds_with("extra != 'test'", NULL, 0, 1, "without extras (extra is \"\")");
	holds_with("extra == ''", NULL, 0, 1, "without extras");
	holds_with("extra == 'docs' and extra == 'dev-tools'", two, N(two), 0, "(one extra at a time)");
	holds_with("extra == 'docs' or extra == 'dev-tools'", two, N(two), 1, "with extras [docs, dev-tools]");
	holds_with("python_version < '3' and extra == 'docs'", two, N(two), 0, "on 3.12");
	holds_with("extra in 'docs test'", NULL, 0, 1, "without extras (\"\" is in any string)");
}

static void test_bad(void)
{
	bad("", "empty");
	bad("   ", "blank");
	bad("os_name", "no operator");
	bad("os_name ==", "no right side");
	bad("os_name = 'posix'", "single =");
	bad("os_name == posix", "unquoted string");
	bad("os_name == 'posix", "unterminated single quote");
	bad("os_name == \"posix'", "unterminated double quote");
	bad("'a' == 'b'", "no variable");
	bad("os_namex == 'a'", "unknown variable");
	bad("OS_NAME == 'posix'", "variables are lower case");
	bad("python_version == '3' and", "dangling and");
	bad("and python_version == '3'", "leading and");
	bad("python_version == '3' xor os_name == 'a'", "unknown boolean operator");
	bad("python_version == '3' os_name == 'a'", "missing boolean operator");
	bad("(os_name == 'posix'", "unclosed parenthesis");
	bad("os_name == 'posix')", "stray parenthesis");
	bad("()", "empty parentheses");
	bad("os_name notin 'posix'", "notin");
	bad("os_name not'posix'", "not without in");
	bad("os_name ~= 'posix'", "~= between strings");
	bad("os_name == 'po\\six'", "backslash");
	bad("os_name == 'po\x01six'", "control byte");
	bad("os_name == 'posix' ; rm -rf /", "trailing text");
	char deep[256] = "";
	for (int k = 0; k < 33; k++)
		strcat(deep, "(");
	strcat(deep, "os_name=='posix'");
	for (int k = 0; k < 33; k++)
		strcat(deep, ")");
	bad(deep, "33 nested parentheses");
	char ok32[256] = "";
	for (int k = 0; k < 32; k++)
		strcat(ok32, "(");
	strcat(ok32, "os_name=='posix'");
	for (int k = 0; k < 32; k++)
		strcat(ok32, ")");
	CHECK(eval_in(&env312, ok32, NULL, 0) == 1, "32 nested parentheses are fine");
	static char longm[5000];
	strcpy(longm, "os_name == '");
	memset(longm + strlen(longm), 'x', 4200);
	strcat(longm, "'");
	bad(longm, "longer than 4096 bytes");
}

int main(void)
{
	udfb_pyenv_init(&env312, "3.12.2", "x86_64");
	test_env();
	test_versions();
	test_strings();
	test_extras();
	test_bad();
	return check_done();
}
