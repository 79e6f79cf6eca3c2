/* Imports identified by their objects: see script_imports.h and docs/imports.md. */
#include "builder/script_imports.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/store.h"
#include "common/alloc.h"

static void validator_of(char *out, size_t size, const struct udfb_fetched *f, long long total)
{
	out[0] = '\0';
	if (f->etag[0])
		snprintf(out, size, "etag:%s;len:%lld", f->etag, total);
	else if (f->last_modified[0])
		snprintf(out, size, "lm:%s;len:%lld", f->last_modified, total);
}

/* Keep a downloaded body: a blob of the store, an entry under the content
 * digest (what the build looks up) and one under the validator. */
static int keep(struct udfb_import_ident *im, struct udfb_fetched *f, struct udfb_store *st, const char *tenant,
		struct udfb_err *err)
{
	validator_of(im->validator, sizeof(im->validator), f, f->size);
	memcpy(im->digest, f->digest, sizeof(im->digest));
	im->size = f->size;
	if (udfb_store_import_put(st, tenant, im->location, im->digest, f, err) < 0)
		return -1;
	return im->validator[0] ? udfb_store_import_alias(st, tenant, im->location, im->validator, f, err) : 0;
}

static int fetch(struct udfb_fetch_item *items, struct udfb_import_ident *ims, size_t n, int probe,
		 struct udfb_store *st, const struct udfb_fetch_opts *fo, long long deadline_ms,
		 struct udfb_import_ident_stats *stats, struct udfb_err *err)
{
	for (size_t k = 0; k < n; k++)
		items[k] = (struct udfb_fetch_item){
			.location = ims[k].location, .url = ims[k].url, .headers = ims[k].headers, .probe = probe
		};
	stats->requests += (long long)n;
	return udfb_fetch_all(items, n, fo, deadline_ms, st->tmp, err);
}

int udfb_imports_identify(struct udfb_import_ident *ims, size_t n, struct udfb_store *st, const char *tenant,
			  const struct udfb_fetch_opts *fo, long long deadline_ms,
			  struct udfb_import_ident_stats *stats, struct udfb_err *err)
{
	if (n == 0)
		return 0;
	struct udfb_fetch_item *items = udfb_calloc(n, sizeof(*items));
	struct udfb_import_ident **missing = udfb_calloc(n, sizeof(*missing));
	size_t n_missing = 0;
	int rc = fetch(items, ims, n, 1, st, fo, deadline_ms, stats, err);
	for (size_t k = 0; rc == 0 && k < n; k++) {
		struct udfb_fetched *f = &items[k].out, hit;
		stats->fetched_bytes += f->size;
		if (f->whole) { /* the range was ignored: this is the object */
			rc = keep(&ims[k], f, st, tenant, err);
			continue;
		}
		validator_of(ims[k].validator, sizeof(ims[k].validator), f, f->total_size);
		if (ims[k].validator[0] && f->total_size >= 0 &&
		    udfb_store_import_get(st, tenant, ims[k].location, ims[k].validator, &hit)) {
			memcpy(ims[k].digest, hit.digest, sizeof(ims[k].digest));
			ims[k].size = hit.size;
			udfb_fetched_clear(&hit);
			continue;
		}
		missing[n_missing++] = &ims[k];
	}
	for (size_t k = 0; k < n; k++)
		udfb_fetched_clear(&items[k].out);
	if (rc == 0 && n_missing) {
		struct udfb_import_ident *todo = udfb_calloc(n_missing, sizeof(*todo));
		for (size_t k = 0; k < n_missing; k++)
			todo[k] = *missing[k];
		rc = fetch(items, todo, n_missing, 0, st, fo, deadline_ms, stats, err);
		for (size_t k = 0; k < n_missing; k++) {
			stats->fetched_bytes += items[k].out.size;
			if (rc == 0)
				rc = keep(missing[k], &items[k].out, st, tenant, err);
			udfb_fetched_clear(&items[k].out);
		}
		free(todo);
	}
	free(items);
	free(missing);
	return rc;
}
