/* The content cache of imports, keyed by (location, tag), never by URL: a
 * query asking again with a fresh presigned URL touches no network.  The
 * bytes are an ordinary blob of the store (content-addressed, shared); the
 * entry imports/ab/cdef... names the blob, its size and what it is.  Entries
 * are not synced: one lost or torn by a crash reads as a miss (its blob's
 * presence and size are checked), which costs a fetch, never wrong bytes. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/fsutil.h"
#include "fetch/fetch.h"
#include "cache/store.h"

static void entry_id(char hex[65], const char *tenant, const char *location, const char *tag)
{
	struct udfb_sha256 *h = udfb_sha256_new();
	char n[32];
	int w = snprintf(n, sizeof(n), "%zu:", strlen(tenant));
	udfb_sha256_update(h, n, (size_t)w);
	udfb_sha256_update(h, tenant, strlen(tenant));
	w = snprintf(n, sizeof(n), "%zu:", strlen(location));
	udfb_sha256_update(h, n, (size_t)w);
	udfb_sha256_update(h, location, strlen(location));
	w = snprintf(n, sizeof(n), "%zu:", strlen(tag));
	udfb_sha256_update(h, n, (size_t)w);
	udfb_sha256_update(h, tag, strlen(tag));
	char d[UDFB_DIGEST_LEN + 1];
	udfb_sha256_final(h, d);
	memcpy(hex, udfb_digest_hex(d), 65);
}

static char *entry_path(const struct udfb_store *s, const char *tenant, const char *location, const char *tag,
			int make_dir)
{
	char hex[65];
	entry_id(hex, tenant, location, tag);
	char *dir = NULL, *path = NULL;
	dir = udfb_asprintf("%s/imports/%.2s", s->root, hex);
	path = udfb_asprintf("%s/%s", dir, hex + 2);
	if (make_dir) {
		struct udfb_err err = UDFB_ERR_INIT;
		udfb_mkdir_p(dir, 0755, &err);
		udfb_err_clear(&err);
	}
	free(dir);
	return path;
}

int udfb_store_import_get(struct udfb_store *s, const char *tenant, const char *location, const char *tag,
			  struct udfb_fetched *out)
{
	if (!*tag)
		return 0; /* without a tag nothing identifies the content */
	cleanup_free char *path = entry_path(s, tenant ? tenant : "", location, tag, 0);
	cleanup_free char *text = NULL;
	size_t len = 0;
	struct udfb_err err = UDFB_ERR_INIT;
	if (udfb_read_file(&text, &len, path, 64 * 1024, &err) < 0) {
		udfb_err_clear(&err);
		return 0;
	}
	json_t *j = json_loadb(text, len, 0, NULL);
	const char *d = json_string_value(json_object_get(j, "digest"));
	const char *l = json_string_value(json_object_get(j, "location")),
		   *t = json_string_value(json_object_get(j, "tag"));
	json_int_t size = json_integer_value(json_object_get(j, "size"));
	int hit = d && l && t && udfb_digest_valid(d) && strcmp(l, location) == 0 && strcmp(t, tag) == 0;
	struct stat st;
	char *blob = hit ? udfb_store_blob_path(s, d) : NULL;
	/* A missing or resized blob is a miss: fetching again repairs it. */
	hit = hit && stat(blob, &st) == 0 && st.st_size == size;
	if (hit) {
		memset(out, 0, sizeof(*out));
		out->path = blob;
		memcpy(out->digest, d, UDFB_DIGEST_LEN + 1);
		out->size = (long long)size;
	} else {
		free(blob);
	}
	json_decref(j);
	return hit;
}

static int write_entry(struct udfb_store *s, const char *tenant, const char *location, const char *tag,
		       const struct udfb_fetched *f, struct udfb_err *err);

int udfb_store_import_put(struct udfb_store *s, const char *tenant, const char *location, const char *tag,
			  struct udfb_fetched *f, struct udfb_err *err)
{
	if (udfb_store_put_tmp(s, f->path, f->digest, err) < 0)
		return -1;
	free(f->path);
	f->path = udfb_store_blob_path(s, f->digest);
	f->owned = 0;
	return write_entry(s, tenant, location, tag, f, err);
}

int udfb_store_import_alias(struct udfb_store *s, const char *tenant, const char *location, const char *tag,
			    const struct udfb_fetched *f, struct udfb_err *err)
{
	return write_entry(s, tenant, location, tag, f, err);
}

static int write_entry(struct udfb_store *s, const char *tenant, const char *location, const char *tag,
		       const struct udfb_fetched *f, struct udfb_err *err)
{
	if (!*tag)
		return 0;
	cleanup_free char *path = entry_path(s, tenant ? tenant : "", location, tag, 1);
	json_t *j = json_pack("{s:s,s:s,s:s,s:I}", "location", location, "tag", tag, "digest", f->digest, "size",
			      (json_int_t)f->size);
	char *text = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(j);
	if (!text) /* not UTF-8: the request check refuses it first */
		return udfb_err_set(err, UDFB_E_INVALID, "import '%.256s': its location or tag is not UTF-8", location);
	int rc = udfb_write_file_unsynced(path, text, strlen(text), err);
	free(text);
	return rc;
}
