/* The key index of the store: cache key -> manifest digest, with created,
 * last-used and hit counts for LRU eviction and `cache ls`.  One file,
 * index.bin: an open-addressing hash table of fixed 80-byte slots, mapped
 * with mmap, so a lookup is one probe sequence in memory at any size (no
 * file per key, no rewrite of a big index per insert).
 *
 * Each slot carries a CRC: a slot torn by a crash reads as absent (a cache
 * miss, so a rebuild), never as a wrong answer.  Entries are written after
 * the blobs they name are durable; losing an entry in a crash costs a
 * rebuild only, so inserts are not synced one by one.  Processes sharing a
 * store coordinate with flock on index.lock and notice a grown (renamed)
 * file by its inode. */
#ifndef UDFB_INDEX_H
#define UDFB_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/hash.h"

struct udfb_index;

struct udfb_index_entry {
	char key[UDFB_DIGEST_LEN + 1];
	char manifest[UDFB_DIGEST_LEN + 1];
	uint32_t created, last_used, hits; /* unix seconds, seconds, count */
};

int udfb_index_open(struct udfb_index **out, const char *root, struct udfb_err *err);
/* When ROOT/index.bin is missing, an empty one into g (synced and renamed
 * in with the group's other files; an index made meanwhile by another
 * process is kept).  udfb_index_open makes one itself otherwise. */
struct udfb_wgroup;
int udfb_index_create_in(struct udfb_wgroup *g, const char *root, struct udfb_err *err);
void udfb_index_close(struct udfb_index *ix);
/* 1 and the entry when present (touch: count a hit and its time), 0 if not. */
int udfb_index_get(struct udfb_index *ix, const char *key, int touch, struct udfb_index_entry *out);
int udfb_index_put(struct udfb_index *ix, const char *key, const char *manifest, struct udfb_err *err);
int udfb_index_del(struct udfb_index *ix, const char *key);
/* Calls fn for every live entry; returns how many slots were torn. */
size_t udfb_index_each(struct udfb_index *ix, void (*fn)(const struct udfb_index_entry *e, void *ctx), void *ctx);
/* Turns torn slots into free ones; returns how many (call with the store
 * to yourself: no other process writing). */
size_t udfb_index_scrub(struct udfb_index *ix);
size_t udfb_index_count(struct udfb_index *ix);
/* Bytes of the mapping and the slot count, for `cache stat`. */
void udfb_index_size(struct udfb_index *ix, size_t *bytes, size_t *slots);
int udfb_index_sync(struct udfb_index *ix, struct udfb_err *err);

#endif
