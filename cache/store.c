/* The local store: see store.h and docs/store.md. */
#include "cache/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
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
#include "common/log.h"
#include "image/ocilayout.h"

#define KEY_FILE_MAX 4096

char *udfb_store_default_dir(void)
{
	const char *env = getenv("UDFB_STORE");
	if (env && *env)
		return udfb_strdup(env);
	if (geteuid() == 0)
		return udfb_strdup("/var/lib/udf-builder/store");
	const char *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	if (xdg && *xdg)
		return udfb_asprintf("%s/udf-builder/store", xdg);
	return udfb_asprintf("%s/.cache/udf-builder/store", home ? home : "/tmp");
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

/* The stores this process has already recovered, by gc.lock's inode:
 * recovery reads every blob name and index slot, which grows with the
 * store, so it is done at a process's first open, not at every build's. */
static pthread_mutex_t recovered_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	dev_t dev;
	ino_t ino;
} recovered[16];
static size_t n_recovered;

static int first_open(int fd)
{
	struct stat sb;
	if (fstat(fd, &sb) < 0)
		return 1;
	pthread_mutex_lock(&recovered_mu);
	int first = 1;
	for (size_t k = 0; k < n_recovered && first; k++)
		first = !(recovered[k].dev == sb.st_dev && recovered[k].ino == sb.st_ino);
	pthread_mutex_unlock(&recovered_mu);
	return first;
}

static void note_recovered(int fd)
{
	struct stat sb;
	if (fstat(fd, &sb) < 0)
		return;
	pthread_mutex_lock(&recovered_mu);
	if (n_recovered < sizeof(recovered) / sizeof(recovered[0]))
		recovered[n_recovered].dev = sb.st_dev, recovered[n_recovered++].ino = sb.st_ino;
	pthread_mutex_unlock(&recovered_mu);
}

/* After a crash, the default destination's journal may hold tags
 * index.json does not list yet. */
static void sync_images(const struct udfb_store *s)
{
	cleanup_free char *images = udfb_path_join(s->root, "images");
	cleanup_free char *journal = udfb_path_join(images, ".udfb-tags");
	struct stat sb;
	struct udfb_err err = UDFB_ERR_INIT;
	if (stat(journal, &sb) == 0 && sb.st_size > 0 && udfb_oci_sync(images, &err) < 0)
		udfb_warn("store %s: %s", s->root, err.msg);
	udfb_err_clear(&err);
}

/* Every open store holds gc.lock shared; whoever gets it exclusive knows
 * nobody is writing, so temporary files are leftovers of a crash. */
static int take_gc_lock(struct udfb_store *s, struct udfb_err *err)
{
	cleanup_free char *path = udfb_path_join(s->root, "gc.lock");
	s->gc_lock = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (s->gc_lock < 0)
		return udfb_err_sys(err, errno, "open %s", path);
	if (first_open(s->gc_lock) && flock(s->gc_lock, LOCK_EX | LOCK_NB) == 0) {
		cleanup_free char *blobs = udfb_path_join(s->root, "blobs/sha256");
		remove_leftovers(s->tmp);
		remove_leftovers(blobs);
		size_t torn = udfb_index_scrub(s->index);
		if (torn)
			udfb_warn("store %s: %zu index entries torn by a crash were dropped", s->root, torn);
		sync_images(s);
		note_recovered(s->gc_lock);
	}
	/* Converting the lock keeps it held throughout: no gc slips in. */
	if (flock(s->gc_lock, LOCK_SH) < 0)
		return udfb_err_sys(err, errno, "lock %s", path);
	return 0;
}

/* A new store's oci-layout, index.json and index.bin: their bytes synced
 * together (their writes in flight at once), renamed in, and the root directory not
 * synced until the first key entry (udfb_store_sync_blobs): a name lost
 * before then costs nothing that an entry depends on, and the next open
 * makes the file again. */
static int init_files(struct udfb_store *s, struct udfb_err *err)
{
	struct udfb_wgroup g;
	udfb_wgroup_init(&g);
	int rc = udfb_oci_init_files(s->root, &g, err);
	if (rc == 0)
		rc = udfb_index_create_in(&g, s->root, err);
	if (rc == 0 && g.n) {
		rc = udfb_wgroup_commit(&g, err);
		__atomic_store_n(&s->root_unsynced, 1, __ATOMIC_SEQ_CST);
	}
	udfb_wgroup_free(&g);
	return rc;
}

int udfb_store_open(struct udfb_store **out, const char *root, struct udfb_err *err)
{
	struct udfb_store *s = udfb_calloc(1, sizeof(*s));
	s->root = udfb_strdup(root);
	s->tmp = udfb_path_join(root, "tmp");
	s->gc_lock = -1;
	pthread_mutex_init(&s->later_mu, NULL);
	cleanup_free char *imports = udfb_path_join(root, "imports");
	if (init_files(s, err) < 0 || udfb_mkdir_p(s->tmp, 0755, err) < 0 || udfb_mkdir_p(imports, 0755, err) < 0 ||
	    udfb_index_open(&s->index, root, err) < 0 || take_gc_lock(s, err) < 0) {
		udfb_store_close(s);
		return udfb_err_wrap(err, "store %s", root);
	}
	*out = s;
	return 0;
}

void udfb_store_close(struct udfb_store *s)
{
	if (!s)
		return;
	struct udfb_err err = UDFB_ERR_INIT;
	if (udfb_store_sync_blobs(s, &err) < 0)
		udfb_warn("store %s: %s", s->root, err.msg);
	udfb_err_clear(&err);
	udfb_wgroup_free(&s->later);
	pthread_mutex_destroy(&s->later_mu);
	udfb_index_close(s->index);
	if (s->gc_lock >= 0)
		close(s->gc_lock);
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

/* Blobs are named by content and written before anything names them:
 * each one's bytes are fsync'd before its rename, and the directory once
 * for all of them (udfb_store_sync_blobs, before the key entry).  A blob
 * found present counts too: another writer's rename may not be synced yet,
 * and our key entry must not outlive it in a crash. */
static void mark_unsynced(struct udfb_store *s)
{
	__atomic_store_n(&s->blobs_unsynced, 1, __ATOMIC_SEQ_CST);
}

/* The blobs put "later": synced together, then renamed in (under
 * later_mu, so a sync that finds the list empty knows every blob put
 * before it is in place). */
static int flush_later(struct udfb_store *s, struct udfb_err *err)
{
	if (!s->later.n)
		return 0;
	int rc = udfb_wgroup_commit(&s->later, err);
	udfb_wgroup_free(&s->later);
	mark_unsynced(s);
	return rc;
}

int udfb_store_sync_blobs(struct udfb_store *s, struct udfb_err *err)
{
	pthread_mutex_lock(&s->later_mu);
	int rc = flush_later(s, err);
	/* Cleared before the fsync and set after each rename: a rename
	 * racing this sync leaves the flag set for the next one. */
	if (rc == 0 && __atomic_exchange_n(&s->blobs_unsynced, 0, __ATOMIC_SEQ_CST)) {
		cleanup_free char *dir = udfb_path_join(s->root, "blobs/sha256");
		if ((rc = udfb_fsync_dir(dir, err)) < 0)
			mark_unsynced(s);
	}
	/* A new store's own files (init_files): the commit above, if any,
	 * carried this directory's changes too, so this one costs little. */
	if (rc == 0 && __atomic_exchange_n(&s->root_unsynced, 0, __ATOMIC_SEQ_CST) &&
	    (rc = udfb_fsync_dir(s->root, err)) < 0)
		__atomic_store_n(&s->root_unsynced, 1, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&s->later_mu);
	return rc;
}

int udfb_store_put_tmp(struct udfb_store *s, const char *tmp_path, const char *digest, struct udfb_err *err)
{
	cleanup_free char *dst = udfb_store_blob_path(s, digest);
	/* Named by content: a blob already there is this one, and leaving its
	 * inode alone spares those linking from it a retry. */
	if (udfb_exists(dst)) {
		unlink(tmp_path);
	} else if (rename(tmp_path, dst) < 0) {
		return udfb_err_sys(err, errno, "store blob %s", digest);
	}
	mark_unsynced(s);
	return 0;
}

int udfb_store_put_tmp_later(struct udfb_store *s, const char *tmp_path, const char *digest, struct udfb_err *err)
{
	cleanup_free char *dst = udfb_store_blob_path(s, digest);
	pthread_mutex_lock(&s->later_mu);
	int rc = udfb_wgroup_add_tmp(&s->later, tmp_path, dst, 1, err);
	pthread_mutex_unlock(&s->later_mu);
	return rc;
}

int udfb_store_put_bytes_later(struct udfb_store *s, const void *data, size_t len, char digest[UDFB_DIGEST_LEN + 1],
			       struct udfb_err *err)
{
	udfb_sha256_digest(data, len, digest);
	cleanup_free char *dst = udfb_store_blob_path(s, digest);
	pthread_mutex_lock(&s->later_mu);
	int rc = udfb_exists(dst) ? 0 : udfb_wgroup_add_bytes(&s->later, dst, data, len, 1, err);
	pthread_mutex_unlock(&s->later_mu);
	if (rc == 0)
		mark_unsynced(s); /* a blob found present counts too (see above) */
	return rc;
}

int udfb_store_put_bytes(struct udfb_store *s, const void *data, size_t len, char digest[UDFB_DIGEST_LEN + 1],
			 struct udfb_err *err)
{
	udfb_sha256_digest(data, len, digest);
	cleanup_free char *dst = udfb_store_blob_path(s, digest);
	if (!udfb_exists(dst) && udfb_write_file_nodirsync(dst, data, len, err) < 0)
		return -1;
	mark_unsynced(s);
	return 0;
}

int udfb_store_put_link(struct udfb_store *s, const char *src, const char *digest, struct udfb_err *err)
{
	cleanup_free char *dst = udfb_store_blob_path(s, digest);
	if (udfb_link_or_copy(src, dst, err) < 0)
		return -1;
	mark_unsynced(s);
	return 0;
}

int udfb_store_key_get(struct udfb_store *s, const char *key, char manifest[UDFB_DIGEST_LEN + 1], struct udfb_err *err)
{
	(void)err;
	struct udfb_index_entry e;
	if (!udfb_index_get(s->index, key, 1, &e))
		return 0;
	/* An entry whose manifest went missing is a miss: the build rewrites it. */
	if (!udfb_store_has_blob(s, e.manifest))
		return 0;
	memcpy(manifest, e.manifest, UDFB_DIGEST_LEN + 1);
	return 1;
}

int udfb_store_key_put(struct udfb_store *s, const char *key, const char *manifest, struct udfb_err *err)
{
	/* The entry is not synced, but it must never reach the disk before
	 * the names of the blobs it reaches. */
	if (udfb_store_sync_blobs(s, err) < 0)
		return -1;
	return udfb_index_put(s->index, key, manifest, err);
}

int udfb_store_each_blob(struct udfb_store *s, void (*fn)(const char *name, const char *path, void *ctx), void *ctx,
			 struct udfb_err *err)
{
	cleanup_free char *dir = udfb_path_join(s->root, "blobs/sha256");
	DIR *d = opendir(dir);
	if (!d)
		return udfb_err_sys(err, errno, "open %s", dir);
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		cleanup_free char *p = udfb_path_join(dir, e->d_name);
		fn(e->d_name, p, ctx);
	}
	closedir(d);
	return 0;
}
