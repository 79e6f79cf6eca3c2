/* The Dockerfile and its build context for a request (udf-builder
 * dockerfile): rendered from templates/Dockerfile.in.  `from` is the exact
 * text after FROM: a name pinned by digest ("host/repo@sha256:..."). */
#ifndef UDFB_DOCKERFILE_H
#define UDFB_DOCKERFILE_H

#include "builder/context.h"
#include "common/err.h"

int udfb_dockerfile_render(char **out, const char *from, int has_requirements, struct udfb_err *err);
/* Writes OUT/Dockerfile, server.py, udf.py, udf.json, imports/, and
 * requirements.txt when there are requirements. */
int udfb_dockerfile_write(const char *outdir, const char *from, const struct udfb_request *req,
			  const struct udfb_context *ctx, struct udfb_err *err);

#endif
