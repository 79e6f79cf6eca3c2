/* The local store (docs/store.md has the layout): an OCI image layout
 * (blobs/sha256/..., readable by skopeo and umoci) plus what the cache
 * needs beside it: the key index (index.bin, cache key -> manifest digest:
 * cache/index.h), layers by diff_id (layers/), the import cache
 * (imports/), blobs kept in a registry (remote/), package layers and locks,
 * and the service's default destination (images/, with its tag journal).
 * Every blob is a temporary file in tmp/, fsync'd and renamed into place
 * (a build's own blobs all together: udfb_store_put_tmp_later); blobs/sha256
 * is fsync'd once for all of a build's blobs, before the key naming them is
 * written (or at close). */
#ifndef UDFB_STORE_H
#define UDFB_STORE_H

#include <pthread.h>
#include <stdio.h>

#include "common/err.h"
#include "common/fsutil.h"
#include "common/hash.h"

struct udfb_index;

struct udfb_store {
	char *root;
	char *tmp; /* scratch space on the same file system as the blobs */
	struct udfb_index *index;
	int gc_lock; /* held shared while open: gc waits for open stores */
	int blobs_unsynced; /* a blob renamed (or found) in blobs/sha256 since its last fsync */
	int root_unsynced; /* this open made the store's own files: root not yet fsync'd */
	pthread_mutex_t later_mu;
	struct udfb_wgroup later; /* blobs put "later": not yet synced nor in place */
};

/* Creates the layout when missing.  At a process's first open of the
 * store, when no other store handle is open (here or in another process),
 * removes leftovers of crashed writes and torn index slots, and derives the
 * default destination's index.json from its tag journal. */
int udfb_store_open(struct udfb_store **out, const char *root, struct udfb_err *err);
/* Syncs blobs/sha256 when a blob came in since its last sync. */
void udfb_store_close(struct udfb_store *s);
/* Puts the blobs put "later" in place (their bytes fsync'd together, then
 * renamed), then fsyncs blobs/sha256 when a blob was put since the last
 * sync: the names of this handle's blobs are then durable (their bytes
 * were before their rename).  udfb_store_key_put calls it first. */
int udfb_store_sync_blobs(struct udfb_store *s, struct udfb_err *err);
/* The documented default: $UDFB_STORE, else /var/lib/udf-builder/store for
 * root, else $XDG_CACHE_HOME (or ~/.cache)/udf-builder/store. */
char *udfb_store_default_dir(void);

char *udfb_store_blob_path(const struct udfb_store *s, const char *digest);
int udfb_store_has_blob(const struct udfb_store *s, const char *digest);
/* Move a finished temporary file (in s->tmp) into place as blob digest. */
int udfb_store_put_tmp(struct udfb_store *s, const char *tmp_path, const char *digest, struct udfb_err *err);
int udfb_store_put_bytes(struct udfb_store *s, const void *data, size_t len, char digest[UDFB_DIGEST_LEN + 1],
			 struct udfb_err *err);
/* The same, deferred: the file (tmp_path, taken over; its bytes need not be
 * synced) or the bytes wait beside their place and go in with the others at
 * the next udfb_store_sync_blobs (before the key entry naming them, or at
 * close), their fsyncs grouped: one round of writes for a build's layers,
 * config and manifest instead of one each.  Until then the blob is not in
 * the store (has_blob says 0): only for blobs nothing reads back before the
 * key entry is written. */
int udfb_store_put_tmp_later(struct udfb_store *s, const char *tmp_path, const char *digest, struct udfb_err *err);
int udfb_store_put_bytes_later(struct udfb_store *s, const void *data, size_t len, char digest[UDFB_DIGEST_LEN + 1],
			       struct udfb_err *err);
/* Link an existing file in as blob digest (its content must hash to it). */
int udfb_store_put_link(struct udfb_store *s, const char *src, const char *digest, struct udfb_err *err);

/* A blob named by the store's manifests but kept in a registry (a
 * docker:// base's layer); source is "docker://HOST/REPO". */
int udfb_store_put_remote(struct udfb_store *s, const char *digest, const char *source, struct udfb_err *err);
int udfb_store_is_remote(const struct udfb_store *s, const char *digest);

/* 1 and the manifest digest when the key is present, 0 when absent. */
int udfb_store_key_get(struct udfb_store *s, const char *key, char manifest[UDFB_DIGEST_LEN + 1], struct udfb_err *err);
int udfb_store_key_put(struct udfb_store *s, const char *key, const char *manifest, struct udfb_err *err);

/* Calls fn for every file in blobs/sha256 (name: its file name, which a
 * sound blob has as its hex digest). */
int udfb_store_each_blob(struct udfb_store *s, void (*fn)(const char *name, const char *path, void *ctx), void *ctx,
			 struct udfb_err *err);

/* Layers by diff_id: the blob (compressed) already holding that tar.  get:
 * 1 with its digest and size when the blob is present. */
int udfb_store_layer_get(struct udfb_store *s, const char *diff_id, char digest[UDFB_DIGEST_LEN + 1], long long *size);
int udfb_store_layer_put(struct udfb_store *s, const char *diff_id, const char *digest, long long size,
			 struct udfb_err *err);

/* Small records by key (a "sha256:..." digest) under a kind's directory
 * ("packages", "locks"): get is 1 with *text malloc'd on a hit, 0 on a miss. */
int udfb_store_record_get(struct udfb_store *s, const char *kind, const char *key, char **text, size_t *len);
int udfb_store_record_put(struct udfb_store *s, const char *kind, const char *key, const char *text, size_t len,
			  struct udfb_err *err);

/* The import cache, keyed by (tenant, location, tag): a location and a
 * tag (perhaps only a length) say nothing across tenants.  get: 1 and the blob (not
 * owned) on a hit.  put: moves the fetched temporary file in as a blob. */
struct udfb_fetched;
int udfb_store_import_get(struct udfb_store *s, const char *tenant, const char *location, const char *tag,
			  struct udfb_fetched *out);
int udfb_store_import_put(struct udfb_store *s, const char *tenant, const char *location, const char *tag,
			  struct udfb_fetched *f, struct udfb_err *err);
/* One more entry for a blob the store has (put before): the same content
 * under another tag (an import known by its validator and by its digest). */
int udfb_store_import_alias(struct udfb_store *s, const char *tenant, const char *location, const char *tag,
			    const struct udfb_fetched *f, struct udfb_err *err);

/* Re-hash every blob and check every key's manifest, config and layers.
 * Writes one line per problem to report; *problems counts them. */
int udfb_store_verify(struct udfb_store *s, FILE *report, long *problems, long *blobs, long *keys,
		      struct udfb_err *err);

#endif
