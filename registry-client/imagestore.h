/* Images in a registry as an image store (image/store.h), and a
 * reference opened as the store it names: the OCI-layout backend for
 * oci:DIR, the registry backend for docker://HOST/REPO over the caller's
 * client for HOST. */
#ifndef UDFB_REGISTRY_IMAGESTORE_H
#define UDFB_REGISTRY_IMAGESTORE_H

#include "common/err.h"
#include "image/store.h"
#include "registry-client/ref.h"
#include "registry-client/registry.h"

/* The repository repo of r; r must outlive the store. */
struct udfb_image_store *udfb_image_store_registry(struct udfb_registry *r, const char *repo);
/* The client and repository of a registry store; NULL for other kinds. */
struct udfb_registry *udfb_image_store_client(const struct udfb_image_store *s, const char **repo);
/* The store ref names (its tag and digest are the caller's); a docker://
 * one uses the client regs holds for its host. */
int udfb_image_store_open(struct udfb_image_store **out, const struct udfb_ref *ref, struct udfb_registries *regs,
			  struct udfb_err *err);

#endif
