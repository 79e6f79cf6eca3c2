/* PEP 723 blocks inside UDF code and the TOML read from them. */
#include <stdlib.h>

#include "check.h"
#include "python/pep723.h"

static int parse(struct udfb_pep723 *m, const char *code, struct udfb_err *err)
{
	return udfb_pep723_parse(m, code, strlen(code), err);
}

static void deps(const char *code, size_t n, const char *first, const char *what)
{
	struct udfb_pep723 m;
	struct udfb_err err = UDFB_ERR_INIT;
	int rc = parse(&m, code, &err);
	CHECK(rc == 0 && m.n_dependencies == n && (n == 0 || strcmp(m.dependencies[0], first) == 0), "%s (%s)", what,
	      err.msg ? err.msg : "ok");
	udfb_pep723_free(&m);
	udfb_err_clear(&err);
}

static void fails(const char *code, const char *what)
{
	struct udfb_pep723 m;
	struct udfb_err err = UDFB_ERR_INIT;
	int rc = parse(&m, code, &err);
	CHECK(rc < 0 && err.cat == UDFB_E_INVALID, "%s is rejected (%s)", what, err.msg ? err.msg : "accepted");
	if (rc == 0)
		udfb_pep723_free(&m);
	udfb_err_clear(&err);
}

int main(void)
{
	deps("# /// script\n# dependencies = [\"humanize==4.9.0\"]\n# ///\nimport humanize\n", 1, "humanize==4.9.0",
	     "Databend's request form");
	deps("def f(): pass\n", 0, NULL, "no block");
	deps("# /// script\n# requires-python = '>=3.11'\n# dependencies = [\n#   'a', # first\n#   \"b\",\n# ]\n"
	     "# [tool.uv]\n# dependencies = ['not-top-level']\n# ///\n",
	     2, "a", "multi-line array, comments, a table after");
	deps("# /// script\n# dependencies = []\n# ///\n", 0, NULL, "empty dependencies");
	deps("# /// pyproject\n# dependencies = ['x']\n# ///\n", 0, NULL, "another block type is ignored");
	deps("# /// script\n# x = \"\"\"a\n# ]b\"\"\"\n# y = {a = 1, b = [1, 2]}\n# dependencies = [\"q\\u0041\"]\n# "
	     "///\n",
	     1, "qA", "multi-line strings, inline tables, escapes");
	fails("# /// script\n# dependencies = ['a']\n# ///\n# more comment\n# ///\nx = 1\n",
	      "a block running to the last '# ///' of its comment lines, as the PEP's expression reads it,");
	fails("# /// script\n# dependencies = ['a']\n", "an unclosed block");
	fails("# /// script\n# dependencies = ['a']\n# ///\n\n# /// script\n# ///\n", "two script blocks");
	fails("# /// script\n# dependencies = 'a'\n# ///\n", "dependencies as a string");
	fails("# /// script\n# dependencies = [1]\n# ///\n", "a non-string dependency");
	fails("# /// script\n# dependencies = ['a'\n# ///\n", "an unterminated array");
	fails("# /// script\n# dependencies = ['a']\n# dependencies = ['b']\n# ///\n", "a repeated key");
	fails("# /// script\n# a = 'unterminated\n# ///\n", "an unterminated string");
	struct udfb_pep723 m;
	struct udfb_err err = UDFB_ERR_INIT;
	CHECK(parse(&m, "# /// script\n# requires-python = \">=3.12\"\n# ///\n", &err) == 0 && m.requires_python &&
		      strcmp(m.requires_python, ">=3.12") == 0,
	      "requires-python is read");
	udfb_pep723_free(&m);
	return check_done();
}
