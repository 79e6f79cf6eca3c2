/* Blobs the store names but does not hold: the layers of a docker:// base
 * image, which stay in their registry (they are mounted or streamed when an
 * image is pushed, never downloaded to build).  One small file per blob,
 * remote/sha256/<hex>, says where it lives, so `cache verify` knows its
 * absence is expected. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/fsutil.h"
#include "cache/store.h"

static char *remote_path(const struct udfb_store *s, const char *digest)
{
	return udfb_asprintf("%s/remote/sha256/%s", s->root, udfb_digest_hex(digest));
}

int udfb_store_put_remote(struct udfb_store *s, const char *digest, const char *source, struct udfb_err *err)
{
	cleanup_free char *path = remote_path(s, digest);
	if (udfb_exists(path))
		return 0;
	cleanup_free char *dir = udfb_path_join(s->root, "remote/sha256");
	if (udfb_mkdir_p(dir, 0755, err) < 0)
		return -1;
	cleanup_free char *line = udfb_asprintf("%s\n", source);
	return udfb_write_file_atomic(path, line, strlen(line), err);
}

int udfb_store_is_remote(const struct udfb_store *s, const char *digest)
{
	cleanup_free char *path = remote_path(s, digest);
	return udfb_exists(path);
}
