/* `serve --runtime-packages REQS`: every runtime base composed once with
 * the operator's requirements (databend-udf, say), so that a plain Python
 * base serves UDFs.  See docs/configuration.md. */
#ifndef UDFB_RUNTIME_BASE_H
#define UDFB_RUNTIME_BASE_H

#include "config/config.h"
#include "common/err.h"

/* *out: the composed image's reference (oci:<store>/runtimes:<tag>),
 * or NULL when there is nothing to compose, or when composing failed for
 * want of an index or a package (logged as a warning: the plain base is
 * used).  A malformed requirement is an error. */
int udfb_runtime_compose(char **out, const char *runtime, const char *base_ref, const struct udfb_config *cfg,
			 struct udfb_err *err);

#endif
