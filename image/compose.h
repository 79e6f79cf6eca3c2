/* The image config and manifest of a UDF image, on top of the base image's:
 * base layers are referenced as they are (never re-packed), our layers are
 * appended, and the runtime settings match templates/Dockerfile.in. */
#ifndef UDFB_COMPOSE_H
#define UDFB_COMPOSE_H

#include <stddef.h>

#include "common/err.h"
#include "image/image.h"
#include "image/layer.h"

/* The runtime settings of every UDF image (also in templates/Dockerfile.in). */
#define UDFB_IMAGE_WORKDIR "/app"
#define UDFB_IMAGE_USER "65534:65534"
#define UDFB_IMAGE_CREATED "1970-01-01T00:00:00Z"

struct udfb_composed {
	char *config;
	size_t config_len;
	char config_digest[UDFB_DIGEST_LEN + 1];
	char *manifest;
	size_t manifest_len;
	char manifest_digest[UDFB_DIGEST_LEN + 1];
};

int udfb_compose(struct udfb_composed *out, const struct udfb_image *base, const struct udfb_layer *layers,
		 const char *const *created_by, size_t n, const char *platform, struct udfb_err *err);
/* The same with another command (NULL-terminated; NULL: the usual one),
 * for images that run Databend's own stub through templates/databend/guard.py. */
int udfb_compose_cmd(struct udfb_composed *out, const struct udfb_image *base, const struct udfb_layer *layers,
		     const char *const *created_by, size_t n, const char *platform, const char *const *cmd,
		     struct udfb_err *err);
/* ... and another working directory (a script run as-is, script_mode =
 * run, starts in "/": its /app is a link into the sandbox's /tmp). */
int udfb_compose_cmd_in(struct udfb_composed *out, const struct udfb_image *base, const struct udfb_layer *layers,
			const char *const *created_by, size_t n, const char *platform, const char *const *cmd,
			const char *workdir, struct udfb_err *err);
void udfb_composed_free(struct udfb_composed *c);

#endif
