/* PEP 723 inline script metadata: the "# /// script" block in a UDF's code.
 * Its TOML gives "dependencies" (merged with the spec's packages) and
 * "requires-python".  Debian packages no C TOML library, so toml.c reads the
 * subset of TOML this needs and skips every other value correctly. */
#ifndef UDFB_PEP723_H
#define UDFB_PEP723_H

#include <stddef.h>

#include "common/err.h"

#define UDFB_PEP723_MAX_DEPS 256

struct udfb_pep723 {
	int present;
	char **dependencies; /* as written; the caller validates them */
	size_t n_dependencies;
	char *requires_python; /* NULL when absent */
};

int udfb_pep723_parse(struct udfb_pep723 *out, const char *code, size_t len, struct udfb_err *err);
void udfb_pep723_free(struct udfb_pep723 *m);

/* The TOML reader behind it: top-level string and string-array keys. */
int udfb_toml_script_fields(struct udfb_pep723 *out, const char *toml, size_t len, struct udfb_err *err);

#endif
