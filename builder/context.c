/* The files of a UDF image: see context.h. */
#include "builder/context.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdint.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/jsonout.h"
#include "cache/store.h"

char *udfb_import_name(const char *location, size_t index)
{
	const char *slash = strrchr(location, '/');
	const char *base = slash ? slash + 1 : location;
	if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
		return udfb_asprintf("import_%zu", index);
	return udfb_strdup(base);
}

static int render_udf_json(struct udfb_context *c, const struct udfb_spec *s)
{
	json_t *types = json_array();
	for (size_t k = 0; k < s->n_input_types; k++)
		json_array_append_new(types, json_string(s->input_types[k]));
	json_t *j = udfb_json_must(
		json_pack("{s:s,s:o,s:s}", "handler", s->handler, "input_types", types, "result_type", s->result_type));
	c->udf_json = udfb_json_dumps_must(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	c->udf_json_len = strlen(c->udf_json);
	return 0;
}

static void render_requirements(struct udfb_context *c, const struct udfb_request *r)
{
	if (r->n_requirements == 0)
		return;
	struct udfb_buf b;
	udfb_buf_init(&b, SIZE_MAX / 2);
	for (size_t k = 0; k < r->n_requirements; k++)
		udfb_buf_printf(&b, "%s\n", r->requirements[k]);
	c->requirements = udfb_buf_steal(&b, &c->requirements_len);
}

static int cmp_import(const void *a, const void *b)
{
	return strcmp(((const struct udfb_import_file *)a)->name, ((const struct udfb_import_file *)b)->name);
}

/* Keep, for every name, the last import that has it (Databend's rule). */
static void pick_winners(struct udfb_context *c, const struct udfb_request *r)
{
	c->imports = udfb_calloc(r->n_imports + 1, sizeof(*c->imports));
	for (size_t k = 0; k < r->n_imports; k++) {
		char *name = udfb_import_name(r->imports[k].location, k);
		size_t j;
		for (j = 0; j < c->n_imports; j++)
			if (strcmp(c->imports[j].name, name) == 0)
				break;
		if (j == c->n_imports)
			c->n_imports++;
		free(c->imports[j].name);
		c->imports[j].name = name;
		c->imports[j].index = k;
	}
	qsort(c->imports, c->n_imports, sizeof(*c->imports), cmp_import);
}

/* Fetch what the cache does not have, all at once, and cache it. */
static int fetch_missing(struct udfb_context *c, const struct udfb_request *req, const struct udfb_context_opts *o,
			 struct udfb_err *err)
{
	struct udfb_fetch_item *items = udfb_calloc(c->n_imports + 1, sizeof(*items));
	size_t *slot = udfb_calloc(c->n_imports + 1, sizeof(*slot)), n = 0;
	for (size_t k = 0; k < c->n_imports; k++) {
		const struct udfb_import *im = &req->imports[c->imports[k].index];
		if (o->cache && udfb_store_import_get(o->cache, o->tenant, im->location, im->tag, &c->imports[k].file))
			continue;
		items[n] = (struct udfb_fetch_item){ .location = im->location,
						     .url = im->url,
						     .tag = im->tag,
						     .headers = (const char *const *)im->headers };
		slot[n++] = k;
	}
	int rc = udfb_fetch_all(items, n, o->fetch, o->deadline_ms, o->tmpdir, err);
	for (size_t j = 0; j < n; j++) {
		if (rc == 0 && o->cache)
			rc = udfb_store_import_put(o->cache, o->tenant, items[j].location, items[j].tag, &items[j].out,
						   err);
		c->fetched_bytes += items[j].out.size;
		c->imports[slot[j]].file = items[j].out; /* cleared with the context */
	}
	free(items);
	free(slot);
	return rc;
}

int udfb_context_prepare(struct udfb_context *out, const struct udfb_request *req, const struct udfb_context_opts *o,
			 struct udfb_err *err)
{
	memset(out, 0, sizeof(*out));
	render_udf_json(out, &req->spec);
	render_requirements(out, req);
	/* Only the winners are fetched: an import that a later one replaces
	 * cannot change the image. */
	pick_winners(out, req);
	if (fetch_missing(out, req, o, err) < 0) {
		udfb_context_free(out);
		return -1;
	}
	return 0;
}

void udfb_context_free(struct udfb_context *c)
{
	if (!c)
		return;
	free(c->udf_json);
	free(c->requirements);
	for (size_t k = 0; k < c->n_imports; k++) {
		free(c->imports[k].name);
		udfb_fetched_clear(&c->imports[k].file);
	}
	free(c->imports);
	memset(c, 0, sizeof(*c));
}
