/* Config and manifest composition: see compose.h.  Our own JSON is written
 * with sorted keys and no whitespace; the base's config is parsed, changed
 * and written the same way (its digest is ours now), while the base's
 * layer blobs keep their bytes and digests. */
#include "image/compose.h"
#include "common/jsonout.h"

#include <stdlib.h>
#include <string.h>

static int check_platform(json_t *cfg, const char *platform, struct udfb_err *err)
{
	const char *os = json_string_value(json_object_get(cfg, "os"));
	const char *arch = json_string_value(json_object_get(cfg, "architecture"));
	size_t n = os ? strlen(os) : 0;
	if (!os || !arch || strncmp(platform, os, n) != 0 || platform[n] != '/' || strcmp(platform + n + 1, arch) != 0)
		return udfb_err_set(err, UDFB_E_INVALID, "base image: built for %s/%s, not %s", os ? os : "?",
				    arch ? arch : "?", platform);
	return 0;
}

static void set_runtime(json_t *cfg, const char *const *cmd, const char *workdir)
{
	json_t *c = json_object_get(cfg, "config");
	if (!json_is_object(c)) {
		c = json_object();
		json_object_set_new(cfg, "config", c);
	}
	json_object_del(c, "Entrypoint");
	json_object_del(c, "Hostname");
	json_t *argv = udfb_json_must(
		json_pack("[s,s,s,s]", "python3", "-X", "databend_import_directory=/app/imports", "/app/server.py"));
	if (cmd) {
		json_array_clear(argv);
		for (; *cmd; cmd++)
			json_array_append_new(argv, json_string(*cmd));
	}
	json_object_set_new(c, "Cmd", argv);
	json_object_set_new(c, "WorkingDir", json_string(workdir));
	json_object_set_new(c, "User", json_string(UDFB_IMAGE_USER));
	json_t *ports = json_object_get(c, "ExposedPorts");
	if (!json_is_object(ports)) {
		ports = json_object();
		json_object_set_new(c, "ExposedPorts", ports);
	}
	json_object_set_new(ports, "8080/tcp", json_object());
	json_object_set_new(ports, "8815/tcp", json_object());
	/* These describe the base's build container, not this image. */
	json_object_del(cfg, "container");
	json_object_del(cfg, "container_config");
	json_object_set_new(cfg, "created", json_string(UDFB_IMAGE_CREATED));
}

static int add_layers_to_config(json_t *cfg, const struct udfb_layer *layers, const char *const *created_by, size_t n,
				struct udfb_err *err)
{
	json_t *rootfs = json_object_get(cfg, "rootfs");
	json_t *ids = json_object_get(rootfs, "diff_ids");
	if (!json_is_array(ids))
		return udfb_err_set(err, UDFB_E_INVALID, "base image: config has no rootfs.diff_ids");
	json_t *hist = json_object_get(cfg, "history");
	if (!json_is_array(hist)) {
		hist = json_array();
		json_object_set_new(cfg, "history", hist);
	}
	for (size_t k = 0; k < n; k++) {
		json_array_append_new(ids, json_string(layers[k].diff_id));
		json_array_append_new(hist,
				      udfb_json_must(json_pack("{s:s,s:s,s:s}", "created", UDFB_IMAGE_CREATED,
							       "created_by", created_by[k], "comment", "udf-builder")));
	}
	json_array_append_new(hist,
			      udfb_json_must(json_pack("{s:s,s:s,s:b}", "created", UDFB_IMAGE_CREATED, "created_by",
						       "udf-builder: WORKDIR /app, USER 65534:65534, CMD server.py",
						       "empty_layer", 1)));
	return 0;
}

/* Base layer descriptors, with Docker media types turned into their OCI
 * equivalents (same bytes) so that one manifest never mixes the two. */
static int base_layers(json_t *out, const struct udfb_image *base, size_t n_diff_ids, struct udfb_err *err)
{
	if (base->m.n_layers != n_diff_ids)
		return udfb_err_set(err, UDFB_E_INVALID, "base image: manifest layers and config diff_ids disagree");
	for (size_t k = 0; k < base->m.n_layers; k++) {
		const struct udfb_descriptor *l = &base->m.layers[k];
		json_t *copy = json_deep_copy(l->json);
		if (strcmp(l->media_type, UDFB_MT_DOCKER_LAYER_GZIP) == 0)
			json_object_set_new(copy, "mediaType", json_string(UDFB_MT_OCI_LAYER_GZIP));
		else if (strncmp(l->media_type, "application/vnd.oci.image.layer.", 32) != 0)
			return json_decref(copy), udfb_err_set(err, UDFB_E_UNSUPPORTED,
							       "base image: layer media type '%.100s'", l->media_type);
		json_array_append_new(out, copy);
	}
	return 0;
}

static char *dump(json_t *j, size_t *len, char digest[UDFB_DIGEST_LEN + 1])
{
	char *s = udfb_json_dumps_must(j, JSON_COMPACT | JSON_SORT_KEYS);
	if (!s)
		abort();
	*len = strlen(s);
	udfb_sha256_digest(s, *len, digest);
	return s;
}

static int make_manifest(struct udfb_composed *out, const struct udfb_image *base, json_t *cfg,
			 const struct udfb_layer *layers, size_t n, struct udfb_err *err)
{
	json_t *ls = json_array();
	size_t n_base = json_array_size(json_object_get(json_object_get(cfg, "rootfs"), "diff_ids")) - n;
	if (base_layers(ls, base, n_base, err) < 0) {
		json_decref(ls);
		return -1;
	}
	for (size_t k = 0; k < n; k++)
		json_array_append_new(
			ls, udfb_json_must(json_pack("{s:s,s:s,s:I}", "mediaType", UDFB_MT_OCI_LAYER_GZIP, "digest",
						     layers[k].digest, "size", (json_int_t)layers[k].size)));
	json_t *m =
		udfb_json_must(json_pack("{s:i,s:s,s:{s:s,s:s,s:I},s:o,s:{s:s}}", "schemaVersion", 2, "mediaType",
					 UDFB_MT_OCI_MANIFEST, "config", "mediaType", UDFB_MT_OCI_CONFIG, "digest",
					 out->config_digest, "size", (json_int_t)out->config_len, "layers", ls,
					 "annotations", "org.opencontainers.image.base.digest", base->manifest_digest));
	out->manifest = dump(m, &out->manifest_len, out->manifest_digest);
	json_decref(m);
	return 0;
}

int udfb_compose(struct udfb_composed *out, const struct udfb_image *base, const struct udfb_layer *layers,
		 const char *const *created_by, size_t n, const char *platform, struct udfb_err *err)
{
	return udfb_compose_cmd(out, base, layers, created_by, n, platform, NULL, err);
}

int udfb_compose_cmd(struct udfb_composed *out, const struct udfb_image *base, const struct udfb_layer *layers,
		     const char *const *created_by, size_t n, const char *platform, const char *const *cmd,
		     struct udfb_err *err)
{
	return udfb_compose_cmd_in(out, base, layers, created_by, n, platform, cmd, UDFB_IMAGE_WORKDIR, err);
}

int udfb_compose_cmd_in(struct udfb_composed *out, const struct udfb_image *base, const struct udfb_layer *layers,
			const char *const *created_by, size_t n, const char *platform, const char *const *cmd,
			const char *workdir, struct udfb_err *err)
{
	memset(out, 0, sizeof(*out));
	if (check_platform(base->config_json, platform, err) < 0)
		return -1;
	json_t *cfg = json_deep_copy(base->config_json);
	set_runtime(cfg, cmd, workdir);
	int rc = add_layers_to_config(cfg, layers, created_by, n, err);
	if (rc == 0) {
		out->config = dump(cfg, &out->config_len, out->config_digest);
		rc = make_manifest(out, base, cfg, layers, n, err);
	}
	json_decref(cfg);
	if (rc < 0)
		udfb_composed_free(out);
	return rc;
}

void udfb_composed_free(struct udfb_composed *c)
{
	free(c->config);
	free(c->manifest);
	memset(c, 0, sizeof(*c));
}
