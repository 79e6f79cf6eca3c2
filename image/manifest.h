/* An image manifest (image-spec manifest.md, and Docker's schema 2 twin)
 * parsed once into a struct, so no caller walks raw JSON: its media type,
 * config descriptor and layer descriptors, each checked (a valid sha256
 * digest, a size >= 0, a media type) when parsed.  The bytes themselves
 * stay with their owner (struct udfb_image): digests are over them, so a
 * manifest is never re-serialised.  Each descriptor keeps its JSON object
 * too (json), for the one caller that copies base layers verbatim. */
#ifndef UDFB_MANIFEST_H
#define UDFB_MANIFEST_H

#include <jansson.h>
#include <stddef.h>

#include "common/err.h"
#include "common/hash.h"

struct udfb_descriptor {
	char digest[UDFB_DIGEST_LEN + 1];
	long long size;
	const char *media_type; /* points into json */
	json_t *annotations; /* borrowed from json; NULL when absent */
	json_t *json; /* the descriptor's object as read (a reference) */
};

struct udfb_manifest {
	const char *media_type; /* NULL when the manifest names none (allowed by OCI) */
	struct udfb_descriptor config;
	size_t n_layers;
	struct udfb_descriptor *layers; /* bottom first */
	json_t *annotations; /* borrowed; NULL when absent */
	json_t *json; /* the whole manifest (a reference) */
};

/* The os/architecture/variant an image config names ("" when absent). */
struct udfb_platform {
	char os[32];
	char architecture[32];
	char variant[32];
};

/* Parse the JSON of a manifest; where names it in errors (a digest, a
 * reference).  INVALID naming the field on a bad one. */
int udfb_manifest_from_json(struct udfb_manifest *out, json_t *m, const char *where, struct udfb_err *err);
/* The same from its bytes (a manifest is at most UDFB_MANIFEST_MAX_BYTES). */
int udfb_manifest_parse(struct udfb_manifest *out, const char *text, size_t len, const char *where,
			struct udfb_err *err);
void udfb_manifest_clear(struct udfb_manifest *m);

/* The platform of an image config (os, architecture, variant). */
void udfb_platform_of_config(struct udfb_platform *out, json_t *config);

#endif
