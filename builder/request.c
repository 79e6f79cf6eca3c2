/* The request around the spec: imports with their presigned URLs and tags,
 * the agreement between spec.imports and imports[], and the merged set of
 * requirements (spec.packages plus PEP 723 dependencies). */
#include "builder/request.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/fsutil.h"
#include "python/pep508.h"
#include "python/pep723.h"
#include "builder/script.h"
#include "builder/spec_internal.h"
#include "common/text.h"

static int check_visible(const char *s, const char *field, struct udfb_err *err)
{
	for (const unsigned char *c = (const unsigned char *)s; *c; c++)
		if (*c < 0x20 || *c == 0x7f)
			return udfb_err_set(err, UDFB_E_INVALID, "%s: holds a control character", field);
	return 0;
}

static int import_from_json(struct udfb_import *im, json_t *o, size_t k, struct udfb_err *err)
{
	char f[64];
	if (!json_is_object(o))
		return udfb_err_set(err, UDFB_E_INVALID, "imports[%zu]: must be an object", k);
	const char *key;
	json_t *v;
	json_object_foreach(o, key, v) {
		if (strcmp(key, "location") && strcmp(key, "url") && strcmp(key, "tag"))
			return udfb_err_set(err, UDFB_E_INVALID, "imports[%zu].%.64s: unknown field", k, key);
	}
	/* proto3: an absent string field is the empty string. */
	json_t *empty = json_string("");
	json_t *loc = json_object_get(o, "location"), *url = json_object_get(o, "url"),
	       *tag = json_object_get(o, "tag");
	int rc = 0;
	snprintf(f, sizeof(f), "imports[%zu].location", k);
	rc = udfb_json_string(&im->location, loc ? loc : empty, f, UDFB_LOCATION_MAX_LEN, 1, err);
	snprintf(f, sizeof(f), "imports[%zu].url", k);
	if (rc == 0)
		rc = udfb_json_string(&im->url, url ? url : empty, f, UDFB_URL_MAX_LEN, 0, err);
	snprintf(f, sizeof(f), "imports[%zu].tag", k);
	if (rc == 0)
		rc = udfb_json_string(&im->tag, tag ? tag : empty, f, UDFB_TAG_MAX_LEN, 1, err);
	json_decref(empty);
	return rc;
}

/* An import becomes the file app/imports/<basename>: one path segment an
 * image layer and a file system both hold as it is. */
static int check_basename(const char *location, size_t k, struct udfb_err *err)
{
	const char *slash = strrchr(location, '/');
	const char *base = slash ? slash + 1 : location;
	if (strlen(base) > 255)
		return udfb_err_set(err, UDFB_E_INVALID,
				    "imports[%zu].location: file name '%.64s...' is longer than 255 bytes", k, base);
	/* In a layer, .wh.NAME deletes NAME from the layers below. */
	if (strncmp(base, ".wh.", 4) == 0)
		return udfb_err_set(err, UDFB_E_INVALID,
				    "imports[%zu].location: file name '%s' starts with '.wh.' (an OCI whiteout)", k,
				    base);
	return 0;
}

/* The URL must parse (RFC 3986 as libcurl reads it: no spaces) and name a
 * host: otherwise the fetch fails later as if the network had. */
static int check_url(const struct udfb_import *im, size_t k, struct udfb_err *err)
{
	CURLU *u = curl_url();
	char *host = NULL;
	CURLUcode rc = curl_url_set(u, CURLUPART_URL, im->url, 0);
	if (rc == CURLUE_OK)
		rc = curl_url_get(u, CURLUPART_HOST, &host, 0);
	int ok = rc == CURLUE_OK && host && *host;
	curl_free(host);
	curl_url_cleanup(u);
	if (!ok) /* the URL is a secret: name the import, and libcurl's reason */
		return udfb_err_set(err, UDFB_E_INVALID, "imports[%zu].url (import '%s'): not a valid URL (%s)", k,
				    im->location, rc == CURLUE_OK ? "no host" : curl_url_strerror(rc));
	return 0;
}

static int check_imports(const struct udfb_request *r, struct udfb_err *err)
{
	char f[64];
	for (size_t k = 0; k < r->n_imports; k++) {
		const struct udfb_import *im = &r->imports[k];
		snprintf(f, sizeof(f), "imports[%zu].location", k);
		if (check_visible(im->location, f, err) < 0)
			return -1;
		snprintf(f, sizeof(f), "imports[%zu].tag", k);
		if (check_visible(im->tag, f, err) < 0)
			return -1;
		/* The URL is a secret: name the import, never print the URL. */
		if (strncmp(im->url, "http://", 7) != 0 && strncmp(im->url, "https://", 8) != 0)
			return udfb_err_set(err, UDFB_E_INVALID,
					    "imports[%zu].url (import '%s'): must be an http or https URL", k,
					    im->location);
		if (check_visible(im->url, "imports[].url", err) < 0) {
			udfb_err_clear(err);
			return udfb_err_set(err, UDFB_E_INVALID,
					    "imports[%zu].url (import '%s'): holds a control character", k,
					    im->location);
		}
		if (check_url(im, k, err) < 0 || check_basename(im->location, k, err) < 0)
			return -1;
	}
	const struct udfb_spec *s = &r->spec;
	for (size_t k = 0; k < s->n_imports || k < r->n_imports; k++) {
		if (k >= r->n_imports)
			return udfb_err_set(err, UDFB_E_INVALID,
					    "imports: spec.imports[%zu] '%s' has no entry in imports[]", k,
					    s->imports[k]);
		if (k >= s->n_imports)
			return udfb_err_set(err, UDFB_E_INVALID, "imports[%zu]: '%s' is not in spec.imports", k,
					    r->imports[k].location);
		if (strcmp(s->imports[k], r->imports[k].location) != 0)
			return udfb_err_set(err, UDFB_E_INVALID,
					    "imports[%zu].location: '%s' differs from spec.imports[%zu] '%s'", k,
					    r->imports[k].location, k, s->imports[k]);
	}
	return 0;
}

static int add_requirement(struct udfb_request *r, const char *text, const char *field, struct udfb_err *err)
{
	struct udfb_requirement req;
	if (udfb_req_parse(&req, text, err) < 0)
		return udfb_err_wrap(err, "%s: '%.128s'", field, text);
	r->requirements = udfb_realloc(r->requirements, (r->n_requirements + 2) * sizeof(char *));
	r->requirements[r->n_requirements++] = req.canonical;
	r->requirements[r->n_requirements] = NULL;
	req.canonical = NULL;
	udfb_req_free(&req);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int merge_requirements(struct udfb_request *r, struct udfb_err *err)
{
	char f[64];
	for (size_t k = 0; k < r->spec.n_packages; k++) {
		snprintf(f, sizeof(f), "spec.packages[%zu]", k);
		if (add_requirement(r, r->spec.packages[k], f, err) < 0)
			return -1;
	}
	struct udfb_pep723 meta;
	if (udfb_pep723_parse(&meta, r->spec.code, r->spec.code_len, err) < 0)
		return udfb_err_wrap(err, "spec.code");
	int rc = 0;
	for (size_t k = 0; rc == 0 && k < meta.n_dependencies; k++) {
		snprintf(f, sizeof(f), "spec.code: script dependencies[%zu]", k);
		rc = add_requirement(r, meta.dependencies[k], f, err);
	}
	r->requires_python = meta.requires_python;
	meta.requires_python = NULL;
	udfb_pep723_free(&meta);
	if (rc < 0)
		return -1;
	if (r->n_requirements > UDFB_MAX_PACKAGES)
		return udfb_err_set(err, UDFB_E_INVALID,
				    "spec.packages: more than %d requirements with the script's dependencies",
				    UDFB_MAX_PACKAGES);
	if (r->n_requirements == 0)
		return 0;
	qsort(r->requirements, r->n_requirements, sizeof(char *), cmp_str);
	size_t u = 1;
	for (size_t k = 1; k < r->n_requirements; k++) {
		if (strcmp(r->requirements[k], r->requirements[u - 1]) == 0)
			free(r->requirements[k]);
		else
			r->requirements[u++] = r->requirements[k];
	}
	r->n_requirements = u;
	r->requirements[u] = NULL;
	return 0;
}

static int finish(struct udfb_request *r, const char *spec, size_t spec_len, struct udfb_err *err)
{
	if (udfb_spec_parse(&r->spec, spec, spec_len, err) < 0 || check_imports(r, err) < 0 ||
	    merge_requirements(r, err) < 0) {
		udfb_request_free(r);
		return -1;
	}
	return 0;
}

static int script_field(const char *key)
{
	/* "tenant": a batch input's tenant for an ApplyResource line (whose
	 * message has none), as in the ApplyUdfResource form. */
	static const char *const names[] = { "type",	      "script", "tenantId", "tenant_id", "name", "ifNotExists",
					     "if_not_exists", "tags",	"options",  "tenant",	 NULL };
	for (int k = 0; names[k]; k++)
		if (strcmp(key, names[k]) == 0)
			return 1;
	return 0;
}

/* ApplyResourceRequest / CreateWorkerRequest in proto3 JSON. */
static int parse_script_form(struct udfb_request *r, json_t *root, struct udfb_err *err)
{
	const char *key;
	json_t *v;
	json_object_foreach(root, key, v) {
		if (!script_field(key))
			return udfb_err_set(err, UDFB_E_INVALID,
					    "request.%.64s: not a field of ApplyResourceRequest or CreateWorkerRequest",
					    key);
	}
	json_t *type = json_object_get(root, "type"), *script = json_object_get(root, "script");
	if (!json_is_string(type) || strcmp(json_string_value(type), "udf") != 0)
		return udfb_err_set(err, UDFB_E_INVALID, "type: must be \"udf\"");
	if (!json_is_string(script))
		return udfb_err_set(err, UDFB_E_INVALID, "script: must be a string");
	json_t *t = json_object_get(root, "tenantId");
	if (!t)
		t = json_object_get(root, "tenant_id");
	if (!t)
		t = json_object_get(root, "tenant");
	char *tenant = NULL;
	if (t && udfb_json_string(&tenant, t, "tenantId", 256, 0, err) < 0)
		return -1;
	struct udfb_script s;
	if (udfb_script_parse(&s, json_string_value(script), json_string_length(script), err) < 0) {
		free(tenant);
		return -1;
	}
	size_t len = 0;
	char *spec = udfb_script_spec_json(&s, &len);
	struct udfb_import *ims = udfb_calloc(s.n_imports + 1, sizeof(*ims));
	for (size_t k = 0; k < s.n_imports; k++)
		ims[k] = (struct udfb_import){ s.imports[k].location, s.imports[k].url, "", s.imports[k].headers };
	int rc = udfb_request_from_parts(r, spec, len, ims, s.n_imports, err);
	if (rc == 0) {
		r->tenant = tenant;
		tenant = NULL;
		r->stub = s.stub;
		r->stub_len = s.stub_len;
		s.stub = NULL;
		r->untagged = 1;
	}
	free(tenant);
	free(ims);
	free(spec);
	udfb_script_free(&s);
	return rc;
}

static int parse_top(struct udfb_request *r, json_t *root, const char **spec, size_t *spec_len, struct udfb_err *err)
{
	if (!json_is_object(root))
		return udfb_err_set(err, UDFB_E_INVALID, "request: must be a JSON object");
	const char *key;
	json_t *v;
	json_object_foreach(root, key, v) {
		if (strcmp(key, "spec") && strcmp(key, "imports") && strcmp(key, "tenant"))
			return udfb_err_set(err, UDFB_E_INVALID, "request.%.64s: unknown field", key);
	}
	json_t *js = json_object_get(root, "spec");
	if (!json_is_string(js))
		return udfb_err_set(err, UDFB_E_INVALID, "spec: missing, or not a string holding the spec JSON");
	*spec = json_string_value(js);
	*spec_len = json_string_length(js);
	json_t *t = json_object_get(root, "tenant");
	if (t && udfb_json_string(&r->tenant, t, "tenant", 256, 0, err) < 0)
		return -1;
	json_t *ims = json_object_get(root, "imports");
	if (!ims)
		return 0;
	if (!json_is_array(ims))
		return udfb_err_set(err, UDFB_E_INVALID, "imports: must be an array");
	if (json_array_size(ims) > UDFB_MAX_IMPORTS)
		return udfb_err_set(err, UDFB_E_INVALID, "imports: more than %d entries", UDFB_MAX_IMPORTS);
	r->imports = udfb_calloc(json_array_size(ims) + 1, sizeof(*r->imports));
	for (size_t k = 0; k < json_array_size(ims); k++) {
		if (import_from_json(&r->imports[k], json_array_get(ims, k), k, err) < 0) {
			r->n_imports = k + 1;
			return -1;
		}
		r->n_imports = k + 1;
	}
	return 0;
}

int udfb_request_parse_json(struct udfb_request *out, const char *json, size_t len, struct udfb_err *err)
{
	memset(out, 0, sizeof(*out));
	if (len > UDFB_REQUEST_MAX_BYTES)
		return udfb_err_set(err, UDFB_E_INVALID, "request: larger than %u bytes", UDFB_REQUEST_MAX_BYTES);
	json_error_t jerr;
	json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return udfb_err_set(err, UDFB_E_INVALID, "request: not valid JSON: %s (line %d)", jerr.text, jerr.line);
	const char *spec = NULL;
	size_t spec_len = 0;
	if (json_is_object(root) && json_object_get(root, "script")) {
		int rc = parse_script_form(out, root, err);
		json_decref(root);
		return rc;
	}
	int rc = parse_top(out, root, &spec, &spec_len, err);
	if (rc == 0)
		rc = finish(out, spec, spec_len, err);
	else
		udfb_request_free(out);
	json_decref(root);
	return rc;
}

/* The gRPC front end hands C strings that protobuf-c did not validate:
 * bytes that are not UTF-8 would later fail to encode (the cache key, the
 * import cache entry), so they are refused here, the field named. */
static int check_import_text(const struct udfb_import *im, size_t k, struct udfb_err *err)
{
	const char *const names[] = { "location", "url", "tag" };
	const char *const values[] = { im->location, im->url, im->tag };
	const size_t limits[] = { UDFB_LOCATION_MAX_LEN, UDFB_URL_MAX_LEN, UDFB_TAG_MAX_LEN };
	for (int i = 0; i < 3; i++) {
		char f[64];
		snprintf(f, sizeof(f), "imports[%zu].%s", k, names[i]);
		if (udfb_text_check(values[i], strlen(values[i]), limits[i], f, err) < 0)
			return -1;
	}
	return 0;
}

int udfb_request_from_parts(struct udfb_request *out, const char *spec, size_t spec_len,
			    const struct udfb_import *imports, size_t n_imports, struct udfb_err *err)
{
	memset(out, 0, sizeof(*out));
	if (n_imports > UDFB_MAX_IMPORTS)
		return udfb_err_set(err, UDFB_E_INVALID, "imports: more than %d entries", UDFB_MAX_IMPORTS);
	out->imports = udfb_calloc(n_imports + 1, sizeof(*out->imports));
	for (size_t k = 0; k < n_imports; k++) {
		const struct udfb_import *im = &imports[k];
		out->imports[k].location = udfb_strdup(im->location ? im->location : "");
		out->imports[k].url = udfb_strdup(im->url ? im->url : "");
		out->imports[k].tag = udfb_strdup(im->tag ? im->tag : "");
		if (im->headers) {
			size_t n = 0;
			while (im->headers[n])
				n++;
			out->imports[k].headers = udfb_calloc(n + 1, sizeof(char *));
			for (size_t j = 0; j < n; j++)
				out->imports[k].headers[j] = udfb_strdup(im->headers[j]);
		}
		out->n_imports++;
		if (check_import_text(&out->imports[k], k, err) < 0) {
			udfb_request_free(out);
			return -1;
		}
	}
	return finish(out, spec, spec_len, err);
}

int udfb_request_load(struct udfb_request *out, const char *path, struct udfb_err *err)
{
	char *text = NULL;
	size_t len = 0;
	if (udfb_read_file(&text, &len, path, UDFB_REQUEST_MAX_BYTES, err) < 0) {
		if (err->cat == UDFB_E_NOTFOUND || err->cat == UDFB_E_EXHAUSTED)
			err->cat = UDFB_E_INVALID;
		return -1;
	}
	int rc = udfb_request_parse_json(out, text, len, err);
	free(text);
	if (rc < 0)
		return udfb_err_wrap(err, "%s", path);
	return 0;
}

void udfb_request_free(struct udfb_request *r)
{
	if (!r)
		return;
	udfb_spec_free(&r->spec);
	for (size_t k = 0; k < r->n_imports; k++) {
		free(r->imports[k].location);
		free(r->imports[k].url);
		free(r->imports[k].tag);
		for (size_t j = 0; r->imports[k].headers && r->imports[k].headers[j]; j++)
			free(r->imports[k].headers[j]);
		free(r->imports[k].headers);
	}
	free(r->imports);
	for (size_t k = 0; k < r->n_requirements; k++)
		free(r->requirements[k]);
	free(r->requirements);
	free(r->tenant);
	free(r->requires_python);
	free(r->stub);
	free(r->env_scope);
	memset(r, 0, sizeof(*r));
}
