/* Store eviction and garbage collection: see gc.h and docs/store.md. */
#include "cache/gc.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "image/image.h"
#include "cache/index.h"
#include "common/alloc.h"
#include "common/jsonout.h"
#include "image/ocilayout.h"

static void add_size(const char *name, const char *path, void *ctx)
{
	struct stat st;
	char digest[300];
	snprintf(digest, sizeof(digest), "sha256:%s", name);
	if (stat(path, &st) == 0)
		json_object_set_new(ctx, digest, json_integer((json_int_t)st.st_size));
}

/* digest -> size of every blob in the store */
static int blob_sizes(struct udfb_store *s, json_t **out, struct udfb_err *err)
{
	*out = json_object();
	if (udfb_store_each_blob(s, add_size, *out, err) < 0) {
		json_decref(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

int udfb_store_blob_bytes(struct udfb_store *s, long long *bytes, long *count, struct udfb_err *err)
{
	json_t *sizes;
	if (blob_sizes(s, &sizes, err) < 0)
		return -1;
	*bytes = 0;
	*count = (long)json_object_size(sizes);
	const char *k;
	json_t *v;
	json_object_foreach(sizes, k, v)
		*bytes += json_integer_value(v);
	json_decref(sizes);
	return 0;
}

/* The blobs a key reaches: its manifest, config and layers. */
static json_t *key_blobs(struct udfb_store *s, const char *manifest)
{
	json_t *set = json_array();
	json_array_append_new(set, json_string(manifest));
	cleanup_free char *text = NULL;
	size_t len = 0;
	struct udfb_err err = UDFB_ERR_INIT;
	if (udfb_oci_read_blob(&text, &len, s->root, manifest, UDFB_MANIFEST_MAX_BYTES, &err) < 0) {
		udfb_err_clear(&err);
		return set;
	}
	struct udfb_manifest m;
	if (udfb_manifest_parse(&m, text, len, manifest, &err) < 0) {
		udfb_err_clear(&err); /* a damaged manifest keeps only itself */
		return set;
	}
	json_array_append_new(set, json_string(m.config.digest));
	for (size_t k = 0; k < m.n_layers; k++)
		json_array_append_new(set, json_string(m.layers[k].digest));
	udfb_manifest_clear(&m);
	return set;
}

/* ---- entries ---- */

struct list {
	struct udfb_store_entry *v;
	size_t n, cap;
	struct udfb_store *s;
};

static struct udfb_store_entry *push(struct list *l)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->v = udfb_realloc(l->v, l->cap * sizeof(*l->v));
	}
	struct udfb_store_entry *e = &l->v[l->n++];
	memset(e, 0, sizeof(*e));
	return e;
}

static void add_key(const struct udfb_index_entry *ie, void *ctx)
{
	struct udfb_store_entry *e = push(ctx);
	memcpy(e->name, ie->key, sizeof(e->name));
	memcpy(e->manifest, ie->manifest, sizeof(e->manifest));
	e->created = ie->created;
	e->last_used = ie->last_used;
	e->hits = ie->hits;
}

static void add_import(struct list *l, const char *path)
{
	cleanup_free char *text = NULL;
	size_t len = 0;
	struct udfb_err err = UDFB_ERR_INIT;
	struct stat st;
	if (stat(path, &st) < 0 || udfb_read_file(&text, &len, path, 64 * 1024, &err) < 0) {
		udfb_err_clear(&err);
		return;
	}
	json_t *j = json_loadb(text, len, 0, NULL);
	const char *d = json_string_value(json_object_get(j, "digest"));
	if (d && udfb_digest_valid(d)) {
		struct udfb_store_entry *e = push(l);
		e->is_import = 1;
		memcpy(e->name, d, sizeof(e->name));
		e->label = udfb_asprintf("%s (tag %s)", json_string_value(json_object_get(j, "location")),
					 json_string_value(json_object_get(j, "tag")));
		e->created = e->last_used = (uint32_t)st.st_mtime;
		e->blobs = udfb_json_must(json_pack("[s]", d)); /* a valid digest */
		/* Remember the entry file for eviction. */
		json_array_append_new(e->blobs, json_string(path));
	}
	json_decref(j);
}

static void add_imports(struct list *l)
{
	cleanup_free char *dir = udfb_path_join(l->s->root, "imports");
	DIR *d = opendir(dir);
	struct dirent *shard;
	while (d && (shard = readdir(d))) {
		if (shard->d_name[0] == '.')
			continue;
		cleanup_free char *sub = udfb_path_join(dir, shard->d_name);
		DIR *sd = opendir(sub);
		struct dirent *e;
		while (sd && (e = readdir(sd))) {
			if (e->d_name[0] == '.')
				continue;
			cleanup_free char *p = udfb_path_join(sub, e->d_name);
			add_import(l, p);
		}
		if (sd)
			closedir(sd);
	}
	if (d)
		closedir(d);
}

static int newest_first(const void *a, const void *b)
{
	const struct udfb_store_entry *x = a, *y = b;
	return x->last_used < y->last_used ? 1 : x->last_used > y->last_used ? -1 : strcmp(x->name, y->name);
}

static void measure(struct list *l, json_t *sizes)
{
	for (size_t k = 0; k < l->n; k++) {
		struct udfb_store_entry *e = &l->v[k];
		if (!e->is_import)
			e->blobs = key_blobs(l->s, e->manifest);
		size_t i;
		json_t *d;
		json_array_foreach(e->blobs, i, d) {
			if (e->is_import && i > 0)
				break; /* the entry file, not a blob */
			e->bytes += json_integer_value(json_object_get(sizes, json_string_value(d)));
		}
	}
}

int udfb_store_entries(struct udfb_store *s, struct udfb_store_entry **out, size_t *n, struct udfb_err *err)
{
	struct list l = { .s = s };
	json_t *sizes;
	if (blob_sizes(s, &sizes, err) < 0)
		return -1;
	udfb_index_each(s->index, add_key, &l);
	add_imports(&l);
	measure(&l, sizes);
	json_decref(sizes);
	if (l.n)
		qsort(l.v, l.n, sizeof(*l.v), newest_first);
	*out = l.v;
	*n = l.n;
	return 0;
}

void udfb_store_entries_free(struct udfb_store_entry *v, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		free(v[k].label);
		json_decref(v[k].blobs);
	}
	free(v);
}

/* ---- collection ---- */

/* Keep the newest entries while they fit; evict every older one (strict LRU). */
static void evict(struct udfb_store *s, struct udfb_store_entry *v, size_t n, long long max_bytes, json_t *sizes,
		  json_t *marked, struct udfb_gc_report *r)
{
	long long kept = 0;
	int full = 0;
	for (size_t k = 0; k < n; k++) {
		struct udfb_store_entry *e = &v[k];
		long long extra = 0;
		size_t i;
		json_t *d;
		json_array_foreach(e->blobs, i, d) {
			if (e->is_import && i > 0)
				break;
			if (!json_object_get(marked, json_string_value(d)))
				extra += json_integer_value(json_object_get(sizes, json_string_value(d)));
		}
		full = full || (max_bytes > 0 && kept + extra > max_bytes);
		if (!full) {
			kept += extra;
			json_array_foreach(e->blobs, i, d)
				if (!(e->is_import && i > 0))
					json_object_set_new(marked, json_string_value(d), json_true());
		} else if (e->is_import) {
			unlink(json_string_value(json_array_get(e->blobs, 1)));
			r->imports_evicted++;
		} else {
			udfb_index_del(s->index, e->name);
			r->keys_evicted++;
		}
	}
}

static void sweep(struct udfb_store *s, json_t *sizes, json_t *marked, struct udfb_gc_report *r)
{
	const char *d;
	json_t *size;
	json_object_foreach(sizes, d, size) {
		if (json_object_get(marked, d))
			continue;
		cleanup_free char *p = udfb_store_blob_path(s, d);
		if (unlink(p) == 0) {
			r->blobs_swept++;
			r->bytes_after -= json_integer_value(size);
		}
	}
}

/* Empties wheels/sha256: no build is in flight (gc.lock is exclusive). */
static void drop_wheels(struct udfb_store *s, struct udfb_gc_report *r)
{
	cleanup_free char *dir = udfb_asprintf("%s/wheels/sha256", s->root);
	DIR *d = opendir(dir);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		cleanup_free char *p = udfb_path_join(dir, e->d_name);
		r->wheels_removed += unlink(p) == 0;
	}
	if (d)
		closedir(d);
}

static int lock_exclusive(struct udfb_store *s, int wait, struct udfb_err *err)
{
	if (flock(s->gc_lock, LOCK_EX | (wait ? 0 : LOCK_NB)) == 0)
		return 0;
	if (errno == EWOULDBLOCK)
		return 1;
	return udfb_err_sys(err, errno, "lock %s/gc.lock", s->root);
}

int udfb_store_gc(struct udfb_store *s, long long max_bytes, int wait, struct udfb_gc_report *r, struct udfb_err *err)
{
	memset(r, 0, sizeof(*r));
	int rc = lock_exclusive(s, wait, err);
	if (rc != 0)
		return rc;
	json_t *sizes = NULL, *marked = json_object();
	struct udfb_store_entry *v = NULL;
	size_t n = 0;
	rc = udfb_store_entries(s, &v, &n, err);
	if (rc == 0)
		rc = blob_sizes(s, &sizes, err);
	if (rc == 0) {
		const char *d;
		json_t *size;
		json_object_foreach(sizes, d, size)
			r->bytes_before += json_integer_value(size);
		r->bytes_after = r->bytes_before;
		evict(s, v, n, max_bytes, sizes, marked, r);
		sweep(s, sizes, marked, r);
		if (max_bytes > 0)
			drop_wheels(s, r);
		rc = udfb_index_sync(s->index, err);
	}
	udfb_store_entries_free(v, n);
	json_decref(sizes);
	json_decref(marked);
	flock(s->gc_lock, LOCK_SH);
	return rc;
}
