/* Publishing a built image where --dest says: the parts of build.c that
 * reach past the store (a registry; a base whose layers are remote). */
#ifndef UDFB_PUBLISH_H
#define UDFB_PUBLISH_H

#include <jansson.h>

#include "builder/build.h"
#include "common/err.h"
#include "registry-client/ref.h"
#include "cache/store.h"

/* Push the image (its blobs in the store, or the base's) to a docker://
 * dest, tagged tag. */
int udfb_publish_docker(const struct udfb_ref *dest, const char *tag, struct udfb_store *st,
			const struct udfb_base *base, const struct udfb_image *img, long long *pushed_bytes,
			struct udfb_err *err);
/* Put blob digest into the OCI layout dir: from the store, else (a remote
 * base's layer) fetched from the base's registry. */
int udfb_publish_oci_blob(const char *dir, struct udfb_store *st, const struct udfb_base *base, const char *digest,
			  struct udfb_err *err);
/* The registry as the shared cache of every replica: when dest's repository
 * holds tag (the key's), adopt that image into the store (manifest and
 * config; its layers recorded as remote) and return 1 with its digest; 0
 * when it is not there.  Nothing to do for an oci: dest. */
int udfb_publish_lookup(char manifest[UDFB_DIGEST_LEN + 1], const struct udfb_ref *dest, const char *tag,
			struct udfb_store *st, struct udfb_err *err);
/* Record in the store where a remote base's layers live (cache verify). */
int udfb_publish_note_remote(struct udfb_store *st, const struct udfb_base *base, struct udfb_err *err);

#endif
