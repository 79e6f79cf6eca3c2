/* Small records beside the store's blobs, one file per key under a kind's
 * directory: packages/<hex> (a wheel's layer by install key) and
 * locks/<hex> (the lock a cache key was built with).  Written atomically;
 * a record that cannot be read is a miss. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/fsutil.h"
#include "cache/store.h"

#define RECORD_MAX_BYTES (1u << 20)

static char *record_path(const struct udfb_store *s, const char *kind, const char *key)
{
	return udfb_asprintf("%s/%s/%s", s->root, kind, udfb_digest_hex(key));
}

int udfb_store_record_get(struct udfb_store *s, const char *kind, const char *key, char **text, size_t *len)
{
	*text = NULL;
	if (!udfb_digest_valid(key))
		return 0;
	cleanup_free char *path = record_path(s, kind, key);
	struct udfb_err err = UDFB_ERR_INIT;
	if (udfb_read_file(text, len, path, RECORD_MAX_BYTES, &err) < 0) {
		udfb_err_clear(&err);
		return 0;
	}
	return 1;
}

int udfb_store_record_put(struct udfb_store *s, const char *kind, const char *key, const char *text, size_t len,
			  struct udfb_err *err)
{
	cleanup_free char *dir = udfb_path_join(s->root, kind);
	if (udfb_mkdir_p(dir, 0755, err) < 0)
		return -1;
	cleanup_free char *path = record_path(s, kind, key);
	return udfb_write_file_atomic(path, text, len, err);
}
