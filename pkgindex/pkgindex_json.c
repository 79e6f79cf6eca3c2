/* PEP 691 JSON project pages (application/vnd.pypi.simple.v1+json), with
 * PEP 700's size and PEP 714's core-metadata.  The page is untrusted: a
 * file entry that breaks the format is left out (nothing could check or
 * fetch it safely), only a page that is not a PEP 691 page is an error. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "pkgindex/pkgindex_internal.h"

static int api_version_ok(json_t *root)
{
	json_t *meta = json_object_get(root, "meta");
	if (!meta)
		return 1; /* required by PEP 691, but nothing else can be meant */
	const char *v = json_string_value(json_object_get(meta, "api-version"));
	/* A major version above 1 may change the meaning of keys we read. */
	return v && v[0] == '1' && (v[1] == '\0' || v[1] == '.');
}

/* core-metadata (PEP 714) over the older dist-info-metadata (PEP 658):
 * true, or a dictionary of hashes. */
static void read_metadata(struct udfb_pkgfile *f, json_t *entry)
{
	json_t *m = json_object_get(entry, "core-metadata");
	if (!m || json_is_null(m))
		m = json_object_get(entry, "dist-info-metadata");
	if (json_is_true(m)) {
		f->has_metadata = 1;
	} else if (json_is_object(m)) {
		f->has_metadata = 1;
		const char *h = json_string_value(json_object_get(m, "sha256"));
		if (h && udfb_sha256_hex_parse(f->metadata_sha256, h) < 0)
			f->metadata_sha256[0] = '\0';
	}
}

/* 0 when the entry is usable, -1 to leave it out. */
static int read_file(struct udfb_pkgfile *f, json_t *entry, CURLU *base)
{
	const char *name = json_string_value(json_object_get(entry, "filename"));
	const char *href = json_string_value(json_object_get(entry, "url"));
	if (!json_is_object(entry) || !name || !href || !udfb_pkgfile_name_ok(name))
		return -1;
	f->filename = udfb_strdup(name);
	char *frag = NULL;
	f->url = udfb_url_resolve(base, href, &frag);
	free(frag); /* PEP 691 gives hashes in "hashes", not in the URL */
	if (!f->filename || !f->url)
		return -1;
	json_t *hashes = json_object_get(entry, "hashes");
	const char *sha = json_string_value(json_object_get(hashes, "sha256"));
	if (hashes && !json_is_object(hashes))
		return -1;
	/* A hash we cannot read cannot be checked: not the same as none. */
	if (sha && udfb_sha256_hex_parse(f->sha256, sha) < 0)
		return -1;
	json_t *rp = json_object_get(entry, "requires-python");
	if (rp && !json_is_null(rp) && !json_is_string(rp))
		return -1;
	if (json_is_string(rp))
		f->requires_python = udfb_strdup(json_string_value(rp));
	json_t *y = json_object_get(entry, "yanked");
	if (y && !json_is_boolean(y) && !json_is_string(y))
		return -1;
	f->yanked = json_is_true(y) || json_is_string(y); /* a string is the reason */
	read_metadata(f, entry);
	json_t *size = json_object_get(entry, "size");
	if (json_is_integer(size) && json_integer_value(size) >= 0)
		f->size = (long long)json_integer_value(size);
	return 0;
}

static int read_files(struct udfb_pkgproject *out, json_t *files, CURLU *base, struct udfb_err *err)
{
	struct udfb_pkglist l = { out, 0 };
	size_t k;
	json_t *entry;
	json_array_foreach(files, k, entry) {
		struct udfb_pkgfile *f = udfb_pkglist_push(&l);
		if (!f)
			return udfb_err_set(err, UDFB_E_EXHAUSTED, "more than %d files", UDFB_INDEX_MAX_FILES);
		if (read_file(f, entry, base) < 0)
			udfb_pkglist_pop(&l);
	}
	return 0;
}

int udfb_pkgindex_parse_json(struct udfb_pkgproject *out, const char *page_url, const char *body, size_t len,
			     struct udfb_err *err)
{
	CURLU *base;
	if (udfb_pkgpage_begin(out, &base, page_url, len, err) < 0)
		return -1;
	int rc = -1;
	json_error_t je;
	/* Duplicate keys could make two readers of one page see two hashes. */
	json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		/* Not what the page said near the error: its links may hold tokens. */
		char *near = strstr(je.text, " near '");
		if (near)
			*near = '\0';
		udfb_text_oneline(je.text);
		udfb_err_set(err, UDFB_E_INVALID, "not JSON (line %d, column %d: %s)", je.line, je.column, je.text);
	} else if (!json_is_object(root) || !json_is_array(json_object_get(root, "files"))) {
		udfb_err_set(err, UDFB_E_INVALID, "not a PEP 691 project page (no \"files\" array)");
	} else if (!api_version_ok(root)) {
		udfb_err_set(err, UDFB_E_UNSUPPORTED, "PEP 691 api-version other than 1.x");
	} else {
		rc = read_files(out, json_object_get(root, "files"), base, err);
	}
	json_decref(root);
	curl_url_cleanup(base);
	if (rc < 0)
		udfb_pkgproject_free(out);
	return rc;
}
