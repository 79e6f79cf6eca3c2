/* Keeping the store under a byte limit: least-recently-used eviction of
 * index entries and import-cache entries, then a mark-and-sweep of blobs no
 * remaining entry reaches.  It runs only with gc.lock held exclusively, so
 * no build is in flight (an open store holds it shared): a blob a build is
 * writing or has just written for its entry is never swept. */
#ifndef UDFB_GC_H
#define UDFB_GC_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "common/err.h"
#include "cache/store.h"

struct udfb_gc_report {
	long keys_evicted, imports_evicted, blobs_swept;
	long wheels_removed; /* downloads of the wheel cache (a bounded run empties it) */
	long long bytes_before, bytes_after;
};

/* max_bytes <= 0: no limit, sweep only what nothing reaches.  A bounded run
 * also empties the wheel download cache (wheels/): package layers stay, and a
 * wheel is fetched again only for a layer the store no longer has.  wait = 0:
 * give up (return 1) instead of waiting for builds in flight. */
int udfb_store_gc(struct udfb_store *s, long long max_bytes, int wait, struct udfb_gc_report *r, struct udfb_err *err);

/* One entry of the store, for `cache ls` and the collector. */
struct udfb_store_entry {
	int is_import;
	char name[UDFB_DIGEST_LEN + 1]; /* the key, or the import blob's digest */
	char manifest[UDFB_DIGEST_LEN + 1];
	char *label; /* an import's location and tag */
	uint32_t created, last_used, hits;
	long long bytes; /* of the blobs it reaches */
	json_t *blobs; /* the digests it reaches */
};

/* Every entry, newest use first; free with udfb_store_entries_free. */
int udfb_store_entries(struct udfb_store *s, struct udfb_store_entry **out, size_t *n, struct udfb_err *err);
void udfb_store_entries_free(struct udfb_store_entry *v, size_t n);
/* Sum of the blob sizes, and their count. */
int udfb_store_blob_bytes(struct udfb_store *s, long long *bytes, long *count, struct udfb_err *err);

#endif
