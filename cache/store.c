/* The local store: see store.h and docs/store.md. */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "fsutil.h"
#include "image.h"
#include "ocilayout.h"

#define KEY_FILE_MAX 4096

char *udfb_store_default_dir(void)
{
	const char *env = getenv("UDFB_STORE");
	if (env && *env)
		return strdup(env);
	if (geteuid() == 0)
		return strdup("/var/lib/udf-builder/store");
	const char *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	char *p = NULL;
	int n = xdg && *xdg ? asprintf(&p, "%s/udf-builder/store", xdg)
			    : asprintf(&p, "%s/.cache/udf-builder/store", home ? home : "/tmp");
	if (n < 0)
		abort();
	return p;
}

/* Temporary files of writes that never finished: nothing refers to them. */
static void remove_leftovers(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)))
		if (strncmp(e->d_name, ".tmp-", 5) == 0 || strncmp(e->d_name, "build-", 6) == 0) {
			cleanup_free char *p = udfb_path_join(dir, e->d_name);
			udfb_rm_rf(p);
		}
	closedir(d);
}

int udfb_store_open(struct udfb_store **out, const char *root, struct udfb_err *err)
{
	struct udfb_store *s = calloc(1, sizeof(*s));
	s->root = strdup(root);
	s->tmp = udfb_path_join(root, "tmp");
	cleanup_free char *keys = udfb_path_join(root, "keys");
	cleanup_free char *blobs = udfb_path_join(root, "blobs/sha256");
	if (udfb_oci_init(root, err) < 0 || udfb_mkdir_p(s->tmp, 0755, err) < 0 || udfb_mkdir_p(keys, 0755, err) < 0) {
		udfb_store_close(s);
		return udfb_err_wrap(err, "store %s", root);
	}
	/* Leftovers are only safe to remove when no other process is writing;
	 * for now one process owns a store (docs/store.md). */
	remove_leftovers(s->tmp);
	remove_leftovers(blobs);
	*out = s;
	return 0;
}

void udfb_store_close(struct udfb_store *s)
{
	if (!s)
		return;
	free(s->root);
	free(s->tmp);
	free(s);
}

char *udfb_store_blob_path(const struct udfb_store *s, const char *digest)
{
	return udfb_oci_blob_path(s->root, digest);
}

int udfb_store_has_blob(const struct udfb_store *s, const char *digest)
{
	cleanup_free char *p = udfb_store_blob_path(s, digest);
	return udfb_exists(p);
}

int udfb_store_put_tmp(struct udfb_store *s, const char *tmp_path, const char *digest, struct udfb_err *err)
{
	cleanup_free char *dst = udfb_store_blob_path(s, digest);
	if (rename(tmp_path, dst) < 0)
		return udfb_err_sys(err, errno, "store blob %s", digest);
	cleanup_free char *dir = udfb_path_join(s->root, "blobs/sha256");
	return udfb_fsync_dir(dir, err);
}

int udfb_store_put_bytes(struct udfb_store *s, const void *data, size_t len, char digest[UDFB_DIGEST_LEN + 1],
			 struct udfb_err *err)
{
	udfb_sha256_digest(data, len, digest);
	cleanup_free char *dst = udfb_store_blob_path(s, digest);
	if (udfb_exists(dst))
		return 0;
	return udfb_write_file_atomic(dst, data, len, err);
}

int udfb_store_put_link(struct udfb_store *s, const char *src, const char *digest, struct udfb_err *err)
{
	cleanup_free char *dst = udfb_store_blob_path(s, digest);
	return udfb_link_or_copy(src, dst, err);
}

static char *key_path(const struct udfb_store *s, const char *key, int make_dir)
{
	const char *hex = udfb_digest_hex(key);
	char *p = NULL;
	if (asprintf(&p, "%s/keys/%.2s", s->root, hex) < 0)
		abort();
	if (make_dir)
		mkdir(p, 0755);
	char *f = NULL;
	if (asprintf(&f, "%s/%s", p, hex + 2) < 0)
		abort();
	free(p);
	return f;
}

int udfb_store_key_get(struct udfb_store *s, const char *key, char manifest[UDFB_DIGEST_LEN + 1], struct udfb_err *err)
{
	cleanup_free char *path = key_path(s, key, 0);
	cleanup_free char *text = NULL;
	size_t len = 0;
	if (udfb_read_file(&text, &len, path, KEY_FILE_MAX, err) < 0) {
		if (err->cat != UDFB_E_NOTFOUND)
			return udfb_err_wrap(err, "store key %s", key);
		udfb_err_clear(err);
		return 0;
	}
	json_t *j = json_loadb(text, len, 0, NULL);
	const char *m = json_string_value(json_object_get(j, "manifest"));
	int ok = m && udfb_digest_valid(m) && udfb_store_has_blob(s, m);
	if (ok)
		memcpy(manifest, m, UDFB_DIGEST_LEN + 1);
	json_decref(j);
	/* A damaged entry is a miss: the build that follows rewrites it. */
	return ok;
}

int udfb_store_key_put(struct udfb_store *s, const char *key, const char *manifest, struct udfb_err *err)
{
	cleanup_free char *path = key_path(s, key, 1);
	json_t *j = json_pack("{s:s,s:s}", "key", key, "manifest", manifest);
	char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	int rc = udfb_write_file_atomic(path, text, strlen(text), err);
	free(text);
	return rc;
}
