/* The map from a layer's diff_id (its uncompressed tar) to the compressed
 * blob holding it: layers/<diff_id hex> -> {"digest", "size"}.  A layer
 * whose tar the store has seen is never compressed again.  An entry whose
 * blob was swept is a miss, and so is a torn one: entries are not synced
 * (a crash costs one compression again, never a wrong blob). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/jsonout.h"
#include "cache/store.h"

static char *map_path(const struct udfb_store *s, const char *diff_id)
{
	return udfb_asprintf("%s/layers/%s", s->root, udfb_digest_hex(diff_id));
}

int udfb_store_layer_get(struct udfb_store *s, const char *diff_id, char digest[UDFB_DIGEST_LEN + 1], long long *size)
{
	if (!udfb_digest_valid(diff_id))
		return 0;
	cleanup_free char *path = map_path(s, diff_id);
	cleanup_free char *text = NULL;
	size_t len = 0;
	struct udfb_err err = UDFB_ERR_INIT;
	if (udfb_read_file(&text, &len, path, 4096, &err) < 0) {
		udfb_err_clear(&err);
		return 0;
	}
	json_t *j = json_loadb(text, len, 0, NULL);
	const char *d = json_string_value(json_object_get(j, "digest"));
	json_int_t n = json_integer_value(json_object_get(j, "size"));
	struct stat st;
	cleanup_free char *blob = d && udfb_digest_valid(d) ? udfb_store_blob_path(s, d) : NULL;
	int hit = blob && stat(blob, &st) == 0 && st.st_size == n;
	if (hit) {
		memcpy(digest, d, UDFB_DIGEST_LEN + 1);
		*size = (long long)n;
	}
	json_decref(j);
	return hit;
}

int udfb_store_layer_put(struct udfb_store *s, const char *diff_id, const char *digest, long long size,
			 struct udfb_err *err)
{
	cleanup_free char *dir = udfb_path_join(s->root, "layers");
	if (udfb_mkdir_p(dir, 0755, err) < 0)
		return -1;
	cleanup_free char *path = map_path(s, diff_id);
	json_t *j = udfb_json_must(json_pack("{s:s,s:I}", "digest", digest, "size", (json_int_t)size));
	char *text = udfb_json_dumps_must(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	int rc = udfb_write_file_unsynced(path, text, strlen(text), err);
	free(text);
	return rc;
}
