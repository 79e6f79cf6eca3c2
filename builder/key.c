/* Cache key: see key.h and docs/cache-key.md.  The encoding is JSON with
 * sorted keys and no whitespace (jansson JSON_COMPACT | JSON_SORT_KEYS), so
 * field order and white space in the request never change the key. */
#include "builder/key.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "builder/templates.h"
#include "common/version.h"

/* NULL when an item cannot be encoded (not UTF-8): json_pack then fails
 * on the NULL "o" argument, so no item is ever dropped from the key. */
static json_t *string_list(char *const *v, size_t n)
{
	json_t *a = json_array();
	for (size_t k = 0; k < n; k++)
		if (json_array_append_new(a, json_string(v[k])) < 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

static json_t *normalized_spec(const struct udfb_spec *s)
{
	/* packages are left out: they enter through the merged requirements. */
	return json_pack("{s:i,s:s,s:s,s:s,s:o,s:s,s:o,s:s,s:s%}", "version", s->version, "kind", s->kind, "language",
			 s->language, "handler", s->handler, "input_types",
			 string_list(s->input_types, s->n_input_types), "result_type", s->result_type, "imports",
			 string_list(s->imports, s->n_imports), "runtime_version", s->runtime_version, "code", s->code,
			 s->code_len);
}

static json_t *import_pairs(const struct udfb_request *r)
{
	json_t *a = json_array();
	for (size_t k = 0; k < r->n_imports; k++)
		if (json_array_append_new(a, json_pack("[s,s]", r->imports[k].location, r->imports[k].tag)) < 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

int udfb_key_compute(char out[UDFB_DIGEST_LEN + 1], char **canonical, const struct udfb_key_inputs *in,
		     struct udfb_err *err)
{
	char templates[UDFB_DIGEST_LEN + 1];
	udfb_templates_digest(templates);
	json_t *spec = normalized_spec(&in->req->spec);
	json_t *doc = json_pack("{s:s,s:s,s:i,s:s,s:s,s:s,s:s,s:s,s:o,s:o,s:o}", "format", UDFB_KEY_FORMAT, "builder",
				UDFB_VERSION, "layer_format", UDFB_LAYER_FORMAT, "templates", templates, "salt",
				in->salt ? in->salt : "", "tenant", in->tenant ? in->tenant : "", "platform",
				in->platform, "base", in->base_digest ? in->base_digest : "", "spec", spec,
				"requirements", string_list(in->req->requirements, in->req->n_requirements), "imports",
				import_pairs(in->req));
	if (!doc)
		return udfb_err_set(err, UDFB_E_INTERNAL, "cache key: cannot encode the inputs");
	/* Databend's stub (script requests) and the wrapper that runs it: only
	 * those keys carry the field, so every ApplyUdfResource key stays. */
	if (in->req->stub) {
		char d[UDFB_DIGEST_LEN + 1], g[UDFB_DIGEST_LEN + 1];
		udfb_sha256_digest(in->req->stub, in->req->stub_len, d);
		udfb_templates_guard_digest(g);
		json_object_set_new(doc, "stub", json_pack("{s:s,s:s}", "server.py", d, "guard", g));
	}
	if (in->req->env_scope)
		json_object_set_new(doc, "env_scope", json_string(in->req->env_scope));
	/* Only keys with packages carry the field: every other key stays as it was. */
	if (in->req->n_requirements && in->packages)
		json_object_set_new(doc, "packages", json_string(in->packages));
	char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(doc);
	if (!text)
		return udfb_err_set(err, UDFB_E_INTERNAL, "cache key: cannot encode the inputs");
	udfb_sha256_digest(text, strlen(text), out);
	if (canonical)
		*canonical = text;
	else
		free(text);
	return 0;
}
