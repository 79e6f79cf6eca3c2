/* Manifests parsed once: see manifest.h. */
#include "image/manifest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "image/image.h"

static int parse_descriptor(struct udfb_descriptor *d, json_t *j, const char *where, const char *field,
			    struct udfb_err *err)
{
	if (!json_is_object(j))
		return udfb_err_set(err, UDFB_E_INVALID, "manifest %s: %s: not an object", where, field);
	const char *digest = json_string_value(json_object_get(j, "digest"));
	json_t *size = json_object_get(j, "size");
	const char *mt = json_string_value(json_object_get(j, "mediaType"));
	json_t *ann = json_object_get(j, "annotations");
	if (!digest || !udfb_digest_valid(digest))
		return udfb_err_set(err, UDFB_E_INVALID, "manifest %s: %s.digest: not a sha256 digest", where, field);
	if (!json_is_integer(size) || json_integer_value(size) < 0)
		return udfb_err_set(err, UDFB_E_INVALID, "manifest %s: %s.size: not a size", where, field);
	if (!mt)
		return udfb_err_set(err, UDFB_E_INVALID, "manifest %s: %s.mediaType: missing", where, field);
	if (ann && !json_is_object(ann))
		return udfb_err_set(err, UDFB_E_INVALID, "manifest %s: %s.annotations: not an object", where, field);
	memcpy(d->digest, digest, UDFB_DIGEST_LEN + 1);
	d->size = (long long)json_integer_value(size);
	d->media_type = mt;
	d->annotations = ann;
	d->json = json_incref(j);
	return 0;
}

static int parse_layers(struct udfb_manifest *out, json_t *ls, const char *where, struct udfb_err *err)
{
	if (!json_is_array(ls))
		return udfb_err_set(err, UDFB_E_INVALID, "manifest %s: layers: not an array (an index?)", where);
	out->layers = udfb_calloc(json_array_size(ls) + 1, sizeof(*out->layers));
	for (size_t k = 0; k < json_array_size(ls); k++) {
		char field[32];
		snprintf(field, sizeof(field), "layers[%zu]", k);
		if (parse_descriptor(&out->layers[k], json_array_get(ls, k), where, field, err) < 0)
			return -1;
		out->n_layers = k + 1;
	}
	return 0;
}

int udfb_manifest_from_json(struct udfb_manifest *out, json_t *m, const char *where, struct udfb_err *err)
{
	memset(out, 0, sizeof(*out));
	if (!json_is_object(m))
		return udfb_err_set(err, UDFB_E_INVALID, "manifest %s: not a JSON object", where);
	json_t *mt = json_object_get(m, "mediaType"), *ann = json_object_get(m, "annotations");
	int rc = mt && !json_is_string(mt)
			 ? udfb_err_set(err, UDFB_E_INVALID, "manifest %s: mediaType: not a string", where)
			 : 0;
	if (rc == 0 && ann && !json_is_object(ann))
		rc = udfb_err_set(err, UDFB_E_INVALID, "manifest %s: annotations: not an object", where);
	if (rc == 0)
		rc = parse_descriptor(&out->config, json_object_get(m, "config"), where, "config", err);
	if (rc == 0)
		rc = parse_layers(out, json_object_get(m, "layers"), where, err);
	if (rc < 0) {
		udfb_manifest_clear(out);
		return -1;
	}
	out->media_type = json_string_value(mt);
	out->annotations = ann;
	out->json = json_incref(m);
	return 0;
}

int udfb_manifest_parse(struct udfb_manifest *out, const char *text, size_t len, const char *where,
			struct udfb_err *err)
{
	memset(out, 0, sizeof(*out));
	if (len > UDFB_MANIFEST_MAX_BYTES)
		return udfb_err_set(err, UDFB_E_INVALID, "manifest %s: over %u bytes", where, UDFB_MANIFEST_MAX_BYTES);
	json_error_t jerr;
	json_t *m = json_loadb(text, len, 0, &jerr);
	if (!m)
		return udfb_err_set(err, UDFB_E_INVALID, "manifest %s: not JSON: %s", where, jerr.text);
	int rc = udfb_manifest_from_json(out, m, where, err);
	json_decref(m);
	return rc;
}

static void descriptor_clear(struct udfb_descriptor *d)
{
	json_decref(d->json);
	memset(d, 0, sizeof(*d));
}

void udfb_manifest_clear(struct udfb_manifest *m)
{
	if (!m)
		return;
	descriptor_clear(&m->config);
	for (size_t k = 0; k < m->n_layers; k++)
		descriptor_clear(&m->layers[k]);
	free(m->layers);
	json_decref(m->json);
	memset(m, 0, sizeof(*m));
}

static void copy_field(char *dst, size_t n, json_t *config, const char *key)
{
	const char *v = json_string_value(json_object_get(config, key));
	snprintf(dst, n, "%s", v ? v : "");
}

void udfb_platform_of_config(struct udfb_platform *out, json_t *config)
{
	copy_field(out->os, sizeof(out->os), config, "os");
	copy_field(out->architecture, sizeof(out->architecture), config, "architecture");
	copy_field(out->variant, sizeof(out->variant), config, "variant");
}
