/* What goes under /app: the stub, the UDF's code and its udf.json, the
 * requirements file, and the imports flattened by basename (the last import
 * with a basename wins).  Both the native build and the Dockerfile's build
 * context are made from this one description, so they cannot drift. */
#ifndef UDFB_CONTEXT_H
#define UDFB_CONTEXT_H

#include <stddef.h>

#include "common/err.h"
#include "fetch/fetch.h"
#include "builder/request.h"

struct udfb_import_file {
	char *name; /* file name under /app/imports */
	size_t index; /* position in the request */
	struct udfb_fetched file;
};

struct udfb_context {
	char *udf_json;
	size_t udf_json_len;
	char *requirements; /* requirements.txt, NULL when there are none */
	size_t requirements_len;
	struct udfb_import_file *imports; /* sorted by name */
	size_t n_imports;
	long long fetched_bytes; /* downloaded now, not from the cache */
};

/* The name an import gets under /app/imports: its location's basename, or
 * import_<i> when that is empty, "." or "..".  Never holds a '/'. */
char *udfb_import_name(const char *location, size_t index);
struct udfb_store;

struct udfb_context_opts {
	const struct udfb_fetch_opts *fetch;
	long long deadline_ms; /* monotonic, 0: the fetcher's own timeout */
	struct udfb_store *cache; /* the import cache; NULL: none */
	const char *tmpdir; /* downloads land here (the store's file system) */
	const char *tenant; /* scopes the import cache; "" for none */
};

/* Gets every winning import: from the cache, else fetched (and cached). */
int udfb_context_prepare(struct udfb_context *out, const struct udfb_request *req, const struct udfb_context_opts *o,
			 struct udfb_err *err);
void udfb_context_free(struct udfb_context *c);

#endif
