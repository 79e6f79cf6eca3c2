/* Wheel file names (binary distribution format, as packaging's
 * parse_wheel_filename reads them): see wheel.h. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/cleanup.h"
#include "python/pep508.h"
#include "python/wheel.h"

#define WHEELNAME_MAX_LEN 1024
#define WHEELNAME_MAX_TAGS 64 /* per field: real names have a dozen at most */

static int bad(struct udfb_err *err, const char *filename, const char *why)
{
	return udfb_err_set(err, UDFB_E_INVALID, "wheel file name '%.200s': %s", filename, why);
}

/* packaging accepts [\w.] with no "__" (the escaped form of PEP 427). */
static int name_ok(const char *s, size_t n)
{
	if (n == 0)
		return 0;
	for (size_t k = 0; k < n; k++) {
		if (!isalnum((unsigned char)s[k]) && s[k] != '.' && s[k] != '_')
			return 0;
		if (k && s[k] == '_' && s[k - 1] == '_')
			return 0;
	}
	return 1;
}

/* Split a compressed tag set ("py2.py3") into lower-cased tags: packaging
 * compares tags lower-cased. */
static int split_tags(char ***out, size_t *n, const char *s, size_t len)
{
	*out = udfb_calloc(WHEELNAME_MAX_TAGS, sizeof(**out));
	*n = 0;
	size_t start = 0;
	for (size_t k = 0; k <= len; k++) {
		if (k < len && s[k] != '.') {
			if (!isalnum((unsigned char)s[k]) && s[k] != '_')
				return -1;
			continue;
		}
		if (k == start || *n == WHEELNAME_MAX_TAGS)
			return -1;
		char *t = udfb_strndup(s + start, k - start);
		for (char *c = t; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		(*out)[(*n)++] = t;
		start = k + 1;
	}
	return 0;
}

static int parse_build(struct udfb_wheelname *out, const char *s, size_t n)
{
	if (n == 0 || !isdigit((unsigned char)s[0]))
		return -1;
	for (size_t k = 0; k < n; k++)
		if (!isalnum((unsigned char)s[k]) && s[k] != '_' && s[k] != '.')
			return -1;
	out->build = udfb_strndup(s, n);
	return 0;
}

static int parse_parts(struct udfb_wheelname *out, const char *filename, const char *stem, size_t len,
		       struct udfb_err *err)
{
	const char *dash[5];
	size_t n_dash = 0;
	for (size_t k = 0; k < len; k++) {
		if (stem[k] != '-')
			continue;
		if (n_dash == 5)
			return bad(err, filename, "wrong number of parts");
		dash[n_dash++] = stem + k;
	}
	if (n_dash < 4)
		return bad(err, filename, "wrong number of parts");
	const char *end = stem + len;
	if (!name_ok(stem, (size_t)(dash[0] - stem)))
		return bad(err, filename, "invalid project name");
	cleanup_free char *raw_name = udfb_strndup(stem, (size_t)(dash[0] - stem));
	udfb_pep503_normalize(&out->name, raw_name);
	cleanup_free char *raw_ver = udfb_strndup(dash[0] + 1, (size_t)(dash[1] - dash[0] - 1));
	struct udfb_err verr = UDFB_ERR_INIT;
	if (udfb_pep440_normalize(&out->version, raw_ver, 0, &verr) < 0) {
		udfb_err_clear(&verr);
		return bad(err, filename, "invalid version");
	}
	size_t t = n_dash - 3; /* the dash before the python tags */
	if (n_dash == 5 && parse_build(out, dash[1] + 1, (size_t)(dash[2] - dash[1] - 1)) < 0)
		return bad(err, filename, "invalid build tag (it must start with a digit)");
	if (!out->build)
		out->build = udfb_strdup("");
	if (split_tags(&out->py, &out->n_py, dash[t] + 1, (size_t)(dash[t + 1] - dash[t] - 1)) < 0 ||
	    split_tags(&out->abi, &out->n_abi, dash[t + 1] + 1, (size_t)(dash[t + 2] - dash[t + 1] - 1)) < 0 ||
	    split_tags(&out->plat, &out->n_plat, dash[t + 2] + 1, (size_t)(end - dash[t + 2] - 1)) < 0)
		return bad(err, filename, "invalid compatibility tags");
	return 0;
}

int udfb_wheelname_parse(struct udfb_wheelname *out, const char *filename, struct udfb_err *err)
{
	memset(out, 0, sizeof(*out));
	size_t len = strlen(filename);
	if (len > WHEELNAME_MAX_LEN)
		return udfb_err_set(err, UDFB_E_INVALID, "wheel file name '%.200s...': longer than %d bytes", filename,
				    WHEELNAME_MAX_LEN);
	if (len < 4 || strcmp(filename + len - 4, ".whl") != 0)
		return bad(err, filename, "not a .whl file");
	if (parse_parts(out, filename, filename, len - 4, err) < 0) {
		udfb_wheelname_free(out);
		return -1;
	}
	return 0;
}

static void free_tags(char **v, size_t n)
{
	for (size_t k = 0; k < n; k++)
		free(v[k]);
	free(v);
}

void udfb_wheelname_free(struct udfb_wheelname *w)
{
	free(w->name);
	free(w->version);
	free(w->build);
	free_tags(w->py, w->n_py);
	free_tags(w->abi, w->n_abi);
	free_tags(w->plat, w->n_plat);
	memset(w, 0, sizeof(*w));
}
