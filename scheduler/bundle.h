/* From a published image to a root file system an OCI runtime can start.
 *
 * Each layer is unpacked once into a cache directory named by its blob
 * digest (unpack.h: overlayfs's lower-layer form), shared by every image and
 * sandbox that has it.  A sandbox's root is a read-only overlay mount of its
 * image's layers over a "skeleton" layer holding the mount points the
 * runtime needs (/proc, /dev, /tmp), so an image lacking one still starts
 * and nothing is ever written into a shared layer. */
#ifndef UDFB_BUNDLE_H
#define UDFB_BUNDLE_H

#include <jansson.h>
#include <stddef.h>

#include "common/err.h"
#include "common/hash.h"
#include "image/store.h"

struct udfb_bundle_image {
	char manifest_digest[UDFB_DIGEST_LEN + 1];
	json_t *config; /* the image config's "config" object: User, Env, Cmd, ... */
	size_t n_layers;
	char (*layers)[UDFB_DIGEST_LEN + 1]; /* bottom first */
	char **blobs; /* the file holding each layer */
};

/* The image manifest_digest names, from the first of stores holding it;
 * each layer's file from the first store holding that layer. */
int udfb_bundle_read_image(struct udfb_bundle_image *out, struct udfb_image_store *const *stores, size_t n,
			   const char *manifest_digest, struct udfb_err *err);
void udfb_bundle_image_free(struct udfb_bundle_image *im);

/* Creates layers_dir and its skeleton layer; removes leftovers of unpacks
 * that died (their process is gone). */
int udfb_layers_init(const char *layers_dir, struct udfb_err *err);
/* Unpack every layer of im not in the cache yet. */
int udfb_layers_ensure(const char *layers_dir, const struct udfb_bundle_image *im, struct udfb_err *err);
/* Mount im read-only at target (an empty directory). */
int udfb_rootfs_mount(const char *target, const char *layers_dir, const struct udfb_bundle_image *im,
		      struct udfb_err *err);
/* Unmount (lazily); not mounted is fine. */
int udfb_rootfs_umount(const char *target, struct udfb_err *err);
/* Can this host mount an overlay of layers unpacked in dir? */
int udfb_overlay_probe(const char *dir, struct udfb_err *err);

#endif
