/* `cache verify`: re-hash every blob, then check that every key names a
 * manifest whose config and layers are all present.  Problems are reported,
 * never repaired: the operator decides (gc removes what nothing reaches). */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/fsutil.h"
#include "image/image.h"
#include "cache/index.h"
#include "image/ocilayout.h"
#include "cache/store.h"

struct blob_walk {
	FILE *report;
	long *problems, *count;
};

static void verify_blob(const char *name, const char *path, void *ctx)
{
	struct blob_walk *w = ctx;
	char want[300], got[UDFB_DIGEST_LEN + 1];
	struct udfb_err e = UDFB_ERR_INIT;
	snprintf(want, sizeof(want), "sha256:%s", name);
	(*w->count)++;
	if (!udfb_digest_valid(want)) {
		fprintf(w->report, "blob %s: not named by a sha256 digest\n", name);
		(*w->problems)++;
	} else if (udfb_sha256_file(got, NULL, path, &e) < 0) {
		fprintf(w->report, "blob %s: %s\n", want, e.msg);
		(*w->problems)++;
	} else if (strcmp(got, want) != 0) {
		fprintf(w->report, "blob %s: corrupt, content hashes to %s\n", want, got);
		(*w->problems)++;
	}
	udfb_err_clear(&e);
}

static int verify_blobs(struct udfb_store *s, FILE *report, long *problems, long *count, struct udfb_err *err)
{
	struct blob_walk w = { report, problems, count };
	return udfb_store_each_blob(s, verify_blob, &w, err);
}

static void check_desc(struct udfb_store *s, const struct udfb_descriptor *desc, const char *key, const char *what,
		       FILE *report, long *problems)
{
	const char *d = desc->digest; /* valid: the manifest parsed */
	if (!udfb_store_has_blob(s, d) && !udfb_store_is_remote(s, d)) {
		fprintf(report, "key %s: %s %s is missing\n", key, what, d);
		(*problems)++;
	}
}

static void verify_key(struct udfb_store *s, const char *key, FILE *report, long *problems)
{
	struct udfb_index_entry ie;
	struct udfb_err e = UDFB_ERR_INIT;
	if (!udfb_index_get(s->index, key, 0, &ie)) {
		fprintf(report, "key %s: vanished while checking\n", key);
		(*problems)++;
		return;
	}
	const char *manifest = ie.manifest;
	cleanup_free char *text = NULL;
	size_t len = 0;
	if (udfb_oci_read_blob(&text, &len, s->root, manifest, UDFB_MANIFEST_MAX_BYTES, &e) < 0) {
		fprintf(report, "key %s: %s\n", key, e.msg);
		(*problems)++;
		udfb_err_clear(&e);
		return;
	}
	struct udfb_manifest m;
	if (udfb_manifest_parse(&m, text, len, manifest, &e) < 0) {
		fprintf(report, "key %s: %s\n", key, e.msg);
		(*problems)++;
		udfb_err_clear(&e);
		return;
	}
	check_desc(s, &m.config, key, "config", report, problems);
	for (size_t k = 0; k < m.n_layers; k++)
		check_desc(s, &m.layers[k], key, "layer", report, problems);
	udfb_manifest_clear(&m);
}

struct key_list {
	char (*keys)[UDFB_DIGEST_LEN + 1];
	size_t n, cap;
};

static void collect(const struct udfb_index_entry *e, void *ctx)
{
	struct key_list *l = ctx;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 256;
		l->keys = udfb_realloc(l->keys, l->cap * sizeof(*l->keys));
	}
	memcpy(l->keys[l->n++], e->key, UDFB_DIGEST_LEN + 1);
}

/* Keys are listed first and checked after: checking reads the index,
 * which the listing holds locked. */
static int verify_keys(struct udfb_store *s, FILE *report, long *problems, long *count, struct udfb_err *err)
{
	(void)err;
	struct key_list l = { 0 };
	size_t torn = udfb_index_each(s->index, collect, &l);
	for (size_t k = 0; k < l.n; k++)
		verify_key(s, l.keys[k], report, problems);
	*count = (long)l.n;
	free(l.keys);
	if (torn) {
		fprintf(report, "index: %zu entries torn (a crash while another process had the store open)\n", torn);
		*problems += (long)torn;
	}
	return 0;
}

int udfb_store_verify(struct udfb_store *s, FILE *report, long *problems, long *blobs, long *keys, struct udfb_err *err)
{
	*problems = *blobs = *keys = 0;
	if (verify_blobs(s, report, problems, blobs, err) < 0)
		return -1;
	return verify_keys(s, report, problems, keys, err);
}
