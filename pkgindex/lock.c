/* The lock file (/app/udf.lock, and beside each cache entry): see
 * resolve.h and docs/packages.md.  Written with sorted keys and a fixed
 * indentation, so one lock is always the same bytes. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/jsonout.h"
#include "pkgindex/resolve.h"

char *udfb_lock_to_json(const struct udfb_lock *l, json_t *target, size_t *len)
{
	json_t *pkgs = json_array();
	for (size_t k = 0; k < l->n; k++) {
		const struct udfb_lock_pkg *p = &l->pkgs[k];
		/* Every field passed the wheel-name and version grammars (ASCII). */
		json_t *o = udfb_json_must(json_pack("{s:s,s:s,s:s,s:s}", "name", p->name, "version", p->version,
						     "file", p->filename, "sha256", p->sha256));
		if (p->size >= 0)
			json_object_set_new(o, "size", json_integer(p->size));
		json_array_append_new(pkgs, o);
	}
	json_t *doc = udfb_json_must(
		json_pack("{s:s,s:O,s:o}", "format", UDFB_LOCK_FORMAT, "target", target, "packages", pkgs));
	char *text = udfb_json_dumps_must(doc, JSON_INDENT(1) | JSON_SORT_KEYS);
	json_decref(doc);
	/* A trailing newline: a text file. */
	size_t n = strlen(text);
	text = udfb_realloc(text, n + 2);
	text[n] = '\n';
	text[n + 1] = '\0';
	if (len)
		*len = n + 1;
	return text;
}

static int hex64(const char *s)
{
	if (!s || strlen(s) != 64)
		return 0;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s) && !(*s >= 'a' && *s <= 'f'))
			return 0;
	return 1;
}

static int pkg_from_json(struct udfb_lock_pkg *p, json_t *o, size_t k, struct udfb_err *err)
{
	const char *name = json_string_value(json_object_get(o, "name"));
	const char *version = json_string_value(json_object_get(o, "version"));
	const char *file = json_string_value(json_object_get(o, "file"));
	const char *sha = json_string_value(json_object_get(o, "sha256"));
	json_t *size = json_object_get(o, "size");
	if (!name || !version || !file || !hex64(sha) || strchr(file, '/') || (size && !json_is_integer(size)))
		return udfb_err_set(err, UDFB_E_INVALID, "lock: packages[%zu] needs name, version, file and sha256", k);
	p->name = udfb_strdup(name);
	p->version = udfb_strdup(version);
	p->filename = udfb_strdup(file);
	memcpy(p->sha256, sha, 65);
	p->size = size ? (long long)json_integer_value(size) : -1;
	return 0;
}

int udfb_lock_from_json(struct udfb_lock *out, const char *text, size_t len, struct udfb_err *err)
{
	memset(out, 0, sizeof(*out));
	json_t *doc = json_loadb(text, len, 0, NULL);
	const char *format = json_string_value(json_object_get(doc, "format"));
	json_t *pkgs = json_object_get(doc, "packages");
	int rc = 0;
	if (!format || strcmp(format, UDFB_LOCK_FORMAT) != 0 || !json_is_array(pkgs) ||
	    json_array_size(pkgs) > UDFB_RESOLVE_MAX_PACKAGES)
		rc = udfb_err_set(err, UDFB_E_INVALID, "lock: not a %s document", UDFB_LOCK_FORMAT);
	out->pkgs = udfb_calloc(json_array_size(pkgs) + 1, sizeof(*out->pkgs));
	for (size_t k = 0; rc == 0 && k < json_array_size(pkgs); k++) {
		rc = pkg_from_json(&out->pkgs[k], json_array_get(pkgs, k), k, err);
		out->n += rc == 0;
	}
	json_decref(doc);
	if (rc < 0)
		udfb_lock_free(out);
	return rc;
}
