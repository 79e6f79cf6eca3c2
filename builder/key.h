/* The cache key: sha256 over a canonical JSON encoding of every input that
 * decides the image (docs/cache-key.md).  The presigned URLs are not inputs:
 * an import is identified by its (location, tag). */
#ifndef UDFB_KEY_H
#define UDFB_KEY_H

#include "common/hash.h"
#include "builder/request.h"

struct udfb_key_inputs {
	const struct udfb_request *req;
	const char *base_digest; /* manifest digest of the base image */
	const char *platform; /* "linux/amd64" */
	const char *salt; /* operator's salt; "" for none */
	const char *tenant; /* whose image it is; "" for none */
	/* The package target settings ("glibc=2.36;python=3.12"), keyed only
	 * when the request has requirements; NULL for none. */
	const char *packages;
};

/* The canonical text (malloc'd) and the key "sha256:<hex>" over it. */
int udfb_key_compute(char out[UDFB_DIGEST_LEN + 1], char **canonical, const struct udfb_key_inputs *in,
		     struct udfb_err *err);

#endif
