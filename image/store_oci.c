/* The OCI-layout backend of the image store (store.h) over ocilayout.c:
 * blobs are files, hard-linked in when they can be; tags go to the
 * layout's journal (ocitags.c). */
#include "image/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/fsutil.h"
#include "image/ocilayout.h"

struct oci_store {
	struct udfb_image_store pub;
	char *dir;
	int made; /* the layout exists (made or found once): not checked again */
	int links_unsynced; /* blobs linked in since blobs/sha256 was last fsync'd */
};

/* A tag must not reach the disk before the names of the blobs it reaches:
 * blobs are linked in without a sync, and blobs/sha256 is fsync'd once
 * before the tag that follows them (nothing when no link was made). */
static int sync_links(struct oci_store *o, struct udfb_err *err)
{
	if (!__atomic_exchange_n(&o->links_unsynced, 0, __ATOMIC_SEQ_CST))
		return 0;
	cleanup_free char *blobs = udfb_path_join(o->dir, "blobs/sha256");
	if (udfb_fsync_dir(blobs, err) < 0) {
		__atomic_store_n(&o->links_unsynced, 1, __ATOMIC_SEQ_CST);
		return -1;
	}
	return 0;
}

static int ensure_layout(struct udfb_image_store *s, struct udfb_err *err)
{
	struct oci_store *o = (struct oci_store *)s;
	if (!o->made && udfb_oci_init_blobs(o->dir, err) < 0)
		return -1;
	o->made = 1;
	return 0;
}

static const char *dir_of(struct udfb_image_store *s)
{
	return ((struct oci_store *)s)->dir;
}

static int oci_read_image(struct udfb_image_store *s, const char *ref, const char *platform, struct udfb_image *out,
			  struct udfb_err *err)
{
	return udfb_oci_read_image(out, dir_of(s), ref, platform, err);
}

static int oci_lookup(struct udfb_image_store *s, const char *tag, char digest[UDFB_DIGEST_LEN + 1],
		      struct udfb_err *err)
{
	return udfb_oci_lookup(dir_of(s), tag, digest, err);
}

static int oci_has_blob(struct udfb_image_store *s, const char *digest, struct udfb_err *err)
{
	(void)err;
	cleanup_free char *p = udfb_oci_blob_path(dir_of(s), digest);
	return udfb_exists(p);
}

static int oci_get_blob(struct udfb_image_store *s, const char *digest, size_t max, char **out, size_t *len,
			struct udfb_err *err)
{
	return udfb_oci_read_blob(out, len, dir_of(s), digest, max, err);
}

static int oci_fetch_blob(struct udfb_image_store *s, const char *digest, const char *path, struct udfb_err *err)
{
	cleanup_free char *src = udfb_oci_blob_path(dir_of(s), digest);
	if (!udfb_exists(src))
		return udfb_err_set(err, UDFB_E_NOTFOUND, "%s: no blob %s", s->name, digest);
	unlink(path); /* replaced, as a download would truncate it */
	return udfb_link_or_copy(src, path, err);
}

/* A blob only another store has: to a temporary file in the blob
 * directory, checked against its digest by the source, then renamed. */
static int copy_from(const char *dir, struct udfb_image_store *from, const char *digest, const char *dst,
		     struct udfb_err *err)
{
	cleanup_free char *blobs = udfb_path_join(dir, "blobs/sha256");
	cleanup_free char *tmp = NULL;
	int fd;
	if (udfb_mktemp(&tmp, &fd, blobs, err) < 0)
		return -1;
	close(fd);
	int rc = from->ops->fetch_blob(from, digest, tmp, err);
	if (rc == 0 && rename(tmp, dst) < 0)
		rc = udfb_err_sys(err, errno, "%s", dst);
	if (rc == 0)
		rc = udfb_fsync_dir(blobs, err);
	if (rc < 0)
		unlink(tmp);
	return rc;
}

static int oci_put_blob(struct udfb_image_store *s, const char *digest, long long size, const char *path,
			struct udfb_image_store *from, struct udfb_err *err)
{
	(void)size;
	const char *dir = dir_of(s);
	if (ensure_layout(s, err) < 0)
		return -1;
	if (path) {
		if (udfb_oci_put_blob(dir, path, digest, err) < 0)
			return -1;
		__atomic_store_n(&((struct oci_store *)s)->links_unsynced, 1, __ATOMIC_SEQ_CST);
		return 0;
	}
	cleanup_free char *dst = udfb_oci_blob_path(dir, digest);
	if (udfb_exists(dst))
		return 0; /* named by content: already right */
	if (!from)
		return udfb_err_set(err, UDFB_E_INTERNAL, "%s: blob %s: nowhere to copy it from", s->name, digest);
	return copy_from(dir, from, digest, dst, err);
}

static int oci_tag(struct udfb_image_store *s, const char *tag, const char *manifest, size_t len,
		   const char *media_type, const char *digest, struct udfb_err *err)
{
	const char *dir = dir_of(s);
	if (ensure_layout(s, err) < 0)
		return -1;
	cleanup_free char *path = udfb_oci_blob_path(dir, digest);
	/* The manifest's own write syncs blobs/sha256 after its rename; a
	 * manifest linked in earlier still needs that sync. */
	if (sync_links((struct oci_store *)s, err) < 0 ||
	    (!udfb_exists(path) && udfb_write_file_atomic(path, manifest, len, err) < 0))
		return -1;
	return udfb_oci_tag(dir, digest, (long long)len, media_type, tag, err);
}

static char *oci_blob_path(struct udfb_image_store *s, const char *digest)
{
	char *p = udfb_oci_blob_path(dir_of(s), digest);
	if (udfb_exists(p))
		return p;
	free(p);
	return NULL;
}

static void oci_free(struct udfb_image_store *s)
{
	free(((struct oci_store *)s)->dir);
	free(s->name);
	free(s);
}

static const struct udfb_image_store_ops oci_ops = {
	.kind = "oci",
	.read_image = oci_read_image,
	.lookup = oci_lookup,
	.has_blob = oci_has_blob,
	.get_blob = oci_get_blob,
	.fetch_blob = oci_fetch_blob,
	.put_blob = oci_put_blob,
	.tag = oci_tag,
	.blob_path = oci_blob_path,
	.free = oci_free,
};

struct udfb_image_store *udfb_image_store_oci(const char *dir)
{
	struct oci_store *s = udfb_calloc(1, sizeof(*s));
	s->dir = udfb_strdup(dir);
	s->pub.name = udfb_asprintf("oci:%s", dir);
	s->pub.ops = &oci_ops;
	return &s->pub;
}

const char *udfb_image_store_oci_dir(const struct udfb_image_store *s)
{
	return s && s->ops == &oci_ops ? ((const struct oci_store *)s)->dir : NULL;
}

void udfb_image_store_free(struct udfb_image_store *s)
{
	if (s)
		s->ops->free(s);
}
