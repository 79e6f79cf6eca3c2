/* Files from templates/, embedded in the binary at build time (templates_data.S)
 * so that the binary alone carries them.  Their digest enters the cache key:
 * changing the stub changes every key, with no version to remember. */
#ifndef UDFB_TEMPLATES_H
#define UDFB_TEMPLATES_H

#include <stddef.h>

#include "hash.h"

struct udfb_template {
	const char *name;
	const unsigned char *data;
	size_t len;
};

const struct udfb_template *udfb_template_get(const char *name);
void udfb_templates_digest(char out[UDFB_DIGEST_LEN + 1]);

#endif
