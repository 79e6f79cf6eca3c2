/* Publishing a built image where --dest says: the parts of build.c that
 * reach past the store (a registry; a base whose layers are remote). */
#ifndef UDFB_PUBLISH_H
#define UDFB_PUBLISH_H

#include <jansson.h>

#include "builder/build.h"
#include "common/err.h"
#include "image/store.h"
#include "cache/store.h"

/* Publish the image (its blobs in the store st, or the base's store) to
 * dest, tagged tag: to a registry, pushed (blobs mounted from the base's
 * repository, or streamed from its registry); to an OCI layout, each blob
 * put (a registry base's layers fetched), the manifest last. */
int udfb_publish(struct udfb_image_store *dest, const char *tag, struct udfb_store *st, const struct udfb_base *base,
		 const struct udfb_image *img, long long *pushed_bytes, struct udfb_err *err);
/* The registry as the shared cache of every replica: when dest's repository
 * holds tag (the key's), adopt that image into the store (manifest and
 * config; its layers recorded as remote) and return 1 with its digest; 0
 * when it is not there.  Nothing to do for an oci: dest. */
int udfb_publish_lookup(char manifest[UDFB_DIGEST_LEN + 1], struct udfb_image_store *dest, const char *tag,
			struct udfb_store *st, struct udfb_err *err);
/* Record in the store where a remote base's layers live (cache verify). */
int udfb_publish_note_remote(struct udfb_store *st, const struct udfb_base *base, struct udfb_err *err);

#endif
