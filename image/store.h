/* One interface for every place images live (crun-style ops table): an OCI
 * image-layout directory (image/ocilayout.h: the layouts of --base and
 * --dest, and the cache store's blobs, which have the same form) or a
 * registry repository (registry-client/imagestore.c).  Callers read an
 * image once into a struct udfb_image (manifest and config parsed) and
 * then hand {store, manifest digest} around, never a reference string to
 * be sliced again. */
#ifndef UDFB_IMAGE_STORE_H
#define UDFB_IMAGE_STORE_H

#include <stddef.h>

#include "common/err.h"
#include "common/hash.h"
#include "image/image.h"

struct udfb_image_store;

struct udfb_image_store_ops {
	const char *kind; /* "oci", "registry" */
	/* The image ref names: a tag, a digest, or NULL (the only image); an
	 * index resolves to platform ("os/arch"). */
	int (*read_image)(struct udfb_image_store *s, const char *ref, const char *platform, struct udfb_image *out,
			  struct udfb_err *err);
	/* 1 and the manifest digest tag names; 0 when no such tag. */
	int (*lookup)(struct udfb_image_store *s, const char *tag, char digest[UDFB_DIGEST_LEN + 1],
		      struct udfb_err *err);
	/* 1 when the store holds the blob, 0 when not. */
	int (*has_blob)(struct udfb_image_store *s, const char *digest, struct udfb_err *err);
	/* A small blob into memory (at most max bytes), digest checked. */
	int (*get_blob)(struct udfb_image_store *s, const char *digest, size_t max, char **out, size_t *len,
			struct udfb_err *err);
	/* The blob into the file path (created), digest checked. */
	int (*fetch_blob)(struct udfb_image_store *s, const char *digest, const char *path, struct udfb_err *err);
	/* Put the file path (or, path NULL, the blob of from) as blob digest. */
	int (*put_blob)(struct udfb_image_store *s, const char *digest, long long size, const char *path,
			struct udfb_image_store *from, struct udfb_err *err);
	/* Put the manifest (its blobs already put) and name it tag. */
	int (*tag)(struct udfb_image_store *s, const char *tag, const char *manifest, size_t len,
		   const char *media_type, const char *digest, struct udfb_err *err);
	/* The file holding the blob when it is on this machine, else NULL. */
	char *(*blob_path)(struct udfb_image_store *s, const char *digest);
	void (*free)(struct udfb_image_store *s);
};

struct udfb_image_store {
	const struct udfb_image_store_ops *ops;
	char *name; /* "oci:DIR" or "docker://HOST/REPO": for messages */
};

/* An OCI image layout at dir (created by the first put or tag). */
struct udfb_image_store *udfb_image_store_oci(const char *dir);
/* The layout directory of an "oci" store; NULL for other kinds. */
const char *udfb_image_store_oci_dir(const struct udfb_image_store *s);
void udfb_image_store_free(struct udfb_image_store *s);

static inline int udfb_image_store_read(struct udfb_image_store *s, const char *ref, const char *platform,
					struct udfb_image *out, struct udfb_err *err)
{
	return s->ops->read_image(s, ref, platform, out, err);
}

static inline int udfb_image_store_has_blob(struct udfb_image_store *s, const char *digest, struct udfb_err *err)
{
	return s->ops->has_blob(s, digest, err);
}

static inline char *udfb_image_store_blob_path(struct udfb_image_store *s, const char *digest)
{
	return s->ops->blob_path(s, digest);
}

#endif
