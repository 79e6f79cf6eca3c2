/* OCI image-layout directories (image-spec image-layout.md): reading an
 * image by tag, adding blobs, tagging.  index.json is updated under a lock
 * and replaced atomically, so concurrent builds into one directory do not
 * lose each other's tags. */
#ifndef UDFB_OCILAYOUT_H
#define UDFB_OCILAYOUT_H

#include "err.h"
#include "image.h"

/* tag NULL: the layout must hold exactly one manifest.  An index resolves
 * to the entry for platform ("linux/amd64"). */
int udfb_oci_read_image(struct udfb_image *out, const char *dir, const char *tag, const char *platform,
			struct udfb_err *err);
char *udfb_oci_blob_path(const char *dir, const char *digest);
/* The descriptor for platform ("os/arch") in an image index, or its only
 * entry; shared with the registry client.  NULL and *err when none. */
json_t *udfb_index_pick_platform(json_t *index, const char *platform, const char *where, struct udfb_err *err);
int udfb_oci_init(const char *dir, struct udfb_err *err);
/* Put the file src into the layout as the blob digest (a hard link when it can). */
int udfb_oci_put_blob(const char *dir, const char *src, const char *digest, struct udfb_err *err);
int udfb_oci_tag(const char *dir, const char *digest, long long size, const char *media_type, const char *tag,
		 struct udfb_err *err);
/* Read a blob, checking its size limit and its digest. */
int udfb_oci_read_blob(char **out, size_t *len, const char *dir, const char *digest, size_t max,
		       struct udfb_err *err);

#endif
