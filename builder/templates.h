/* Files from templates/, embedded in the binary at build time (templates_data.S)
 * so that the binary alone carries them.  Their digest enters the cache key:
 * changing the stub changes every key, with no version to remember. */
#ifndef UDFB_TEMPLATES_H
#define UDFB_TEMPLATES_H

#include <stddef.h>

#include "common/hash.h"

struct udfb_template {
	const char *name;
	const unsigned char *data;
	size_t len;
};

const struct udfb_template *udfb_template_get(const char *name);
void udfb_templates_digest(char out[UDFB_DIGEST_LEN + 1]);
/* templates/databend/guard.py: the command of an image running Databend's
 * own stub (not in the table above, so ApplyUdfResource keys keep their
 * value; keys of script requests name its digest). */
const struct udfb_template *udfb_template_guard(void);
/* The sitecustomize.py of a script run as-is (script_mode = run). */
const struct udfb_template *udfb_template_run_site(void);
void udfb_templates_guard_digest(char out[UDFB_DIGEST_LEN + 1]);

#endif
