/* A string-keyed hash map (open addressing, linear probing) for the loops
 * over thousands of names: layer paths, wheel entries, compatibility tags.
 * Keys are borrowed: they must stay valid and unchanged while in the map.
 * The hash is seeded once per process, so names chosen by a package author
 * cannot be crafted to collide. */
#ifndef UDFB_STRMAP_H
#define UDFB_STRMAP_H

#include <stddef.h>

struct udfb_strmap {
	const char **keys;
	size_t *lens;
	size_t *vals;
	size_t cap, n; /* cap: 0 or a power of two */
};

void udfb_strmap_init(struct udfb_strmap *m);
void udfb_strmap_free(struct udfb_strmap *m);
/* Forget every key, keep the memory. */
void udfb_strmap_reset(struct udfb_strmap *m);
/* 1 when key was added with val, 0 when it was there (its value unchanged). */
int udfb_strmap_put(struct udfb_strmap *m, const char *key, size_t val);
/* 1 and *val (when val is not NULL) when found, 0 otherwise.  The _n form
 * looks up the len bytes at key, which need not be NUL-terminated. */
int udfb_strmap_get(const struct udfb_strmap *m, const char *key, size_t *val);
int udfb_strmap_getn(const struct udfb_strmap *m, const char *key, size_t len, size_t *val);

#endif
