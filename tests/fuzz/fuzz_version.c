/* Fuzz target: PEP 440 versions and specifiers.  Input lines: a version, a
 * specifier set, a second version (missing lines are empty).  Checks that
 * normalised text is a fixed point, that ordering is antisymmetric, and
 * that allowing pre-releases only ever adds matches. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "python/pep508.h"
#include "python/pyver.h"

static int sign(int c)
{
	return (c > 0) - (c < 0);
}

/* The next line of *s (NUL-terminated in place), "" past the end. */
static char *next_line(char **s)
{
	char *line = *s;
	char *nl = strchr(line, '\n');
	if (nl) {
		*nl = '\0';
		*s = nl + 1;
	} else {
		*s = line + strlen(line);
	}
	return line;
}

static int parse(struct udfb_pyver *v, const char *s)
{
	struct udfb_err err = UDFB_ERR_INIT;
	int rc = udfb_pyver_parse(v, s, &err);
	if ((rc < 0) != (err.msg != NULL))
		abort();
	udfb_err_clear(&err);
	return rc;
}

static void check_version(const struct udfb_pyver *v, const char *raw)
{
	struct udfb_pyver again;
	if (parse(&again, v->text) < 0 || udfb_pyver_cmp(v, &again) != 0 || udfb_pyver_cmp(&again, v) != 0 ||
	    strcmp(again.text, v->text) != 0 || udfb_pyver_cmp(v, v) != 0)
		abort();
	/* The requirement parser's normaliser is the same parser. */
	char *norm = NULL;
	struct udfb_err err = UDFB_ERR_INIT;
	if (udfb_pep440_normalize(&norm, raw, 0, &err) < 0 || strcmp(norm, v->text) != 0)
		abort();
	free(norm);
}

static void check_spec(const char *text, const struct udfb_pyver *v)
{
	struct udfb_pyspec *s = NULL;
	struct udfb_err err = UDFB_ERR_INIT;
	if (udfb_pyspec_parse(&s, text, &err) < 0) {
		if (s || !err.msg)
			abort();
		udfb_err_clear(&err);
		return;
	}
	(void)udfb_pyspec_wants_prereleases(s);
	if (v) {
		int final = udfb_pyspec_contains(s, v, 0), pre = udfb_pyspec_contains(s, v, 1);
		if (final > pre || (!udfb_pyver_is_prerelease(v) && final != pre))
			abort();
	}
	udfb_pyspec_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1);
	memcpy(buf, data, size);
	buf[size] = '\0';
	char *rest = buf;
	const char *va = next_line(&rest), *spec = next_line(&rest), *vb = next_line(&rest);
	struct udfb_pyver a, b;
	int a_ok = parse(&a, va) == 0, b_ok = parse(&b, vb) == 0;
	if (a_ok)
		check_version(&a, va);
	if (b_ok)
		check_version(&b, vb);
	if (a_ok && b_ok && sign(udfb_pyver_cmp(&a, &b)) != -sign(udfb_pyver_cmp(&b, &a)))
		abort();
	check_spec(spec, a_ok ? &a : NULL);
	free(buf);
	return 0;
}
