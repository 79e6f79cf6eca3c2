/* Fills a store with N keys for the scale benchmark: each key gets its own
 * manifest (the store's manifest TEMPLATE plus an annotation naming the
 * key's number, so every manifest is a distinct blob sharing the config
 * and the layers), written without fsync (a benchmark fixture, not a
 * build).  Usage: fill_store STORE N TEMPLATE_DIGEST. */
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/hash.h"
#include "cache/index.h"
#include "image/ocilayout.h"

static int write_blob(const char *root, const char *text, size_t len, char digest[UDFB_DIGEST_LEN + 1])
{
	udfb_sha256_digest(text, len, digest);
	char *path = udfb_oci_blob_path(root, digest);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int rc = fd >= 0 && write(fd, text, len) == (ssize_t)len ? 0 : -1;
	if (fd >= 0)
		close(fd);
	free(path);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc != 4)
		return 2;
	const char *root = argv[1];
	long n = atol(argv[2]);
	struct udfb_err err = UDFB_ERR_INIT;
	char *text = NULL;
	size_t len = 0;
	if (udfb_oci_read_blob(&text, &len, root, argv[3], 1 << 20, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	json_t *m = json_loadb(text, len, 0, NULL);
	free(text);
	struct udfb_index *ix;
	if (!m || udfb_index_open(&ix, root, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg ? err.msg : "bad template manifest");
		return 1;
	}
	for (long i = 0; i < n; i++) {
		char num[32], key[UDFB_DIGEST_LEN + 1], digest[UDFB_DIGEST_LEN + 1];
		int k = snprintf(num, sizeof(num), "%ld", i);
		json_object_set_new(m, "annotations", json_pack("{s:s}", "bench.key", num));
		char *out = json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS);
		udfb_sha256_digest(num, (size_t)k, key);
		if (write_blob(root, out, strlen(out), digest) < 0 || udfb_index_put(ix, key, digest, &err) < 0) {
			fprintf(stderr, "key %ld: %s\n", i, err.msg ? err.msg : "cannot write its manifest");
			return 1;
		}
		free(out);
	}
	udfb_index_close(ix);
	json_decref(m);
	return 0;
}
