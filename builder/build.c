/* One native build: see build.h and docs/architecture.md. */
#include "build.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "compose.h"
#include "context.h"
#include "fsutil.h"
#include "key.h"
#include "layer.h"
#include "log.h"
#include "ocilayout.h"
#include "publish.h"
#include "ref.h"
#include "store.h"
#include "templates.h"

enum { LAYER_STUB, LAYER_IMPORTS, LAYER_UDF, LAYER_MAX };

const char *udfb_build_tenant(const struct udfb_request *req, const struct udfb_build_opts *o)
{
	return o->tenant ? o->tenant : req->tenant ? req->tenant : "";
}

int udfb_build_key(char key[UDFB_DIGEST_LEN + 1], const struct udfb_request *req, const char *base_digest,
		   const struct udfb_build_opts *o, struct udfb_err *err)
{
	struct udfb_key_inputs in = { .req = req, .base_digest = base_digest, .platform = o->platform, .salt = o->salt,
				      .tenant = udfb_build_tenant(req, o) };
	return udfb_key_compute(key, NULL, &in, err);
}

/* Compress a layer only when no blob of the store has its diff_id yet: the
 * stub layer, and an imports layer shared by UDFs that differ only in code,
 * are compressed once (one uncompressed pass finds the diff_id). */
static int store_layer(struct udfb_layer *out, struct udfb_layer_writer *w, struct udfb_store *st, const char *tmp,
		       struct udfb_err *err)
{
	memset(out, 0, sizeof(*out));
	if (udfb_layer_diff_id(out->diff_id, w, err) < 0) {
		udfb_layer_writer_free(w);
		return -1;
	}
	if (udfb_store_layer_get(st, out->diff_id, out->digest, &out->size)) {
		udfb_debug("layer %s: reused blob %s, not compressed again", out->diff_id, out->digest);
		udfb_layer_writer_free(w);
		return 0;
	}
	if (udfb_layer_write(out, w, tmp, err) < 0 || udfb_store_put_tmp(st, out->path, out->digest, err) < 0)
		return -1;
	free(out->path);
	out->path = NULL;
	return udfb_store_layer_put(st, out->diff_id, out->digest, out->size, err);
}

/* The stub's layer is the same for every UDF: one blob shared by all images. */
static struct udfb_layer_writer *stub_layer(struct udfb_err *err)
{
	const struct udfb_template *t = udfb_template_get("server.py");
	struct udfb_layer_writer *w;
	udfb_layer_writer_new(&w);
	if (udfb_layer_add_dir(w, "app/imports", err) < 0 ||
	    udfb_layer_add_bytes(w, "app/server.py", t->data, t->len, 0, err) < 0) {
		udfb_layer_writer_free(w);
		return NULL;
	}
	return w;
}

static struct udfb_layer_writer *imports_layer(const struct udfb_context *c, struct udfb_err *err)
{
	struct udfb_layer_writer *w;
	udfb_layer_writer_new(&w);
	for (size_t k = 0; k < c->n_imports; k++) {
		cleanup_free char *path = udfb_path_join("app/imports", c->imports[k].name);
		if (udfb_layer_add_file(w, path, c->imports[k].file.path, c->imports[k].file.size, 0, err) < 0) {
			udfb_layer_writer_free(w);
			return NULL;
		}
	}
	return w;
}

static struct udfb_layer_writer *udf_layer(const struct udfb_request *r, const struct udfb_context *c,
					   struct udfb_err *err)
{
	struct udfb_layer_writer *w;
	udfb_layer_writer_new(&w);
	if (udfb_layer_add_bytes(w, "app/udf.py", r->spec.code, r->spec.code_len, 0, err) < 0 ||
	    udfb_layer_add_bytes(w, "app/udf.json", c->udf_json, c->udf_json_len, 0, err) < 0) {
		udfb_layer_writer_free(w);
		return NULL;
	}
	return w;
}

/* Writes the layers into the store; returns how many there are. */
static int make_layers(struct udfb_layer *ls, const char **created_by, struct udfb_store *st,
		       const struct udfb_request *r, const struct udfb_context *c, const char *tmp, struct udfb_err *err)
{
	struct udfb_layer_writer *ws[LAYER_MAX];
	int n = 0;
	created_by[n] = "udf-builder: COPY server.py /app/server.py";
	ws[n++] = stub_layer(err);
	if (c->n_imports) {
		created_by[n] = "udf-builder: COPY imports/ /app/imports/";
		ws[n++] = imports_layer(c, err);
	}
	created_by[n] = "udf-builder: COPY udf.py udf.json /app/";
	ws[n++] = udf_layer(r, c, err);
	int rc = 0;
	for (int k = 0; k < n; k++) {
		if (rc == 0 && !ws[k])
			rc = -1;
		else if (rc == 0)
			rc = store_layer(&ls[k], ws[k], st, tmp, err);
		else
			udfb_layer_writer_free(ws[k]);
	}
	return rc < 0 ? -1 : n;
}

static int link_base_layers(struct udfb_store *st, const struct udfb_base *base, struct udfb_err *err)
{
	if (!base->blob_dir)
		return udfb_publish_note_remote(st, base, err); /* its layers stay in the registry */
	size_t k;
	json_t *l;
	json_array_foreach(json_object_get(base->image.manifest_json, "layers"), k, l) {
		const char *d = json_string_value(json_object_get(l, "digest"));
		if (udfb_store_has_blob(st, d))
			continue;
		cleanup_free char *src = udfb_oci_blob_path(base->blob_dir, d);
		if (udfb_store_put_link(st, src, d, err) < 0)
			return udfb_err_wrap(err, "base layer %s", d);
	}
	return 0;
}

static int build_fresh(char manifest[UDFB_DIGEST_LEN + 1], long long *fetched, struct udfb_store *st,
		       const struct udfb_request *req, const struct udfb_base *base, const struct udfb_build_opts *o,
		       const char *tmp, struct udfb_err *err)
{
	struct udfb_context ctx;
	struct udfb_context_opts co = { .fetch = o->fetch, .deadline_ms = o->deadline_ms, .cache = st, .tmpdir = tmp,
					.tenant = udfb_build_tenant(req, o) };
	if (udfb_context_prepare(&ctx, req, &co, err) < 0)
		return -1;
	*fetched = ctx.fetched_bytes;
	struct udfb_layer ls[LAYER_MAX] = { 0 };
	const char *created_by[LAYER_MAX];
	struct udfb_composed img = { 0 };
	char cfg_digest[UDFB_DIGEST_LEN + 1];
	int n = make_layers(ls, created_by, st, req, &ctx, tmp, err);
	int rc = n < 0 ? -1 : udfb_compose(&img, &base->image, ls, created_by, (size_t)n, o->platform, err);
	if (rc == 0)
		rc = udfb_store_put_bytes(st, img.config, img.config_len, cfg_digest, err);
	if (rc == 0)
		rc = link_base_layers(st, base, err);
	/* The manifest goes in last: whatever names a blob finds it present. */
	if (rc == 0)
		rc = udfb_store_put_bytes(st, img.manifest, img.manifest_len, manifest, err);
	for (int k = 0; k < LAYER_MAX; k++)
		udfb_layer_clear(&ls[k]);
	udfb_composed_free(&img);
	udfb_context_free(&ctx);
	return rc;
}

static int publish_oci(const struct udfb_ref *dest, const char *tag, struct udfb_store *st,
		       const struct udfb_base *base, const char *manifest, json_t *m, size_t manifest_len,
		       struct udfb_err *err)
{
	if (udfb_oci_init(dest->dir, err) < 0)
		return -1;
	const char *cfg = json_string_value(json_object_get(json_object_get(m, "config"), "digest"));
	cleanup_free char *cfg_src = udfb_store_blob_path(st, cfg);
	if (udfb_oci_put_blob(dest->dir, cfg_src, cfg, err) < 0)
		return -1;
	size_t k;
	json_t *l;
	json_array_foreach(json_object_get(m, "layers"), k, l) {
		const char *d = json_string_value(json_object_get(l, "digest"));
		if (udfb_publish_oci_blob(dest->dir, st, base, d, err) < 0)
			return -1;
	}
	cleanup_free char *msrc = udfb_store_blob_path(st, manifest);
	if (udfb_oci_put_blob(dest->dir, msrc, manifest, err) < 0)
		return -1;
	return udfb_oci_tag(dest->dir, manifest, (long long)manifest_len, UDFB_MT_OCI_MANIFEST, tag, err);
}

static json_t *describe_layers(json_t *m, json_t *cfg)
{
	json_t *out = json_array();
	json_t *ids = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
	size_t k;
	json_t *l;
	json_array_foreach(json_object_get(m, "layers"), k, l) {
		json_t *d = json_deep_copy(l);
		json_object_set(d, "diff_id", json_array_get(ids, k));
		json_array_append_new(out, d);
	}
	return out;
}

/* Without a tag the image is tagged by its key, so any reader can find it. */
static char *dest_tag(const struct udfb_ref *dest, const char *key)
{
	char *tag = dest->tag ? strdup(dest->tag) : NULL;
	if (!tag && asprintf(&tag, "udf-%s", udfb_digest_hex(key)) < 0)
		abort();
	return tag;
}

static int publish(struct udfb_build_result *out, struct udfb_store *st, const struct udfb_base *base,
		   const struct udfb_ref *dest, const char *dest_str, struct udfb_err *err)
{
	cleanup_free char *mtext = NULL, *ctext = NULL;
	size_t mlen = 0, clen = 0;
	if (udfb_oci_read_blob(&mtext, &mlen, st->root, out->manifest_digest, UDFB_MANIFEST_MAX_BYTES, err) < 0)
		return -1;
	json_t *m = json_loadb(mtext, mlen, 0, NULL);
	const char *cfg = json_string_value(json_object_get(json_object_get(m, "config"), "digest"));
	if (!cfg || udfb_oci_read_blob(&ctext, &clen, st->root, cfg, UDFB_CONFIG_MAX_BYTES, err) < 0) {
		json_decref(m);
		return err->msg ? -1 : udfb_err_set(err, UDFB_E_INTERNAL, "store: manifest %s is damaged", out->manifest_digest);
	}
	json_t *c = json_loadb(ctext, clen, 0, NULL);
	cleanup_free char *tag = dest_tag(dest, out->key);
	int rc = dest->kind == UDFB_REF_DOCKER
			 ? udfb_publish_docker(dest, tag, st, base, out->manifest_digest, m, mtext, mlen, &out->pushed_bytes, err)
			 : publish_oci(dest, tag, st, base, out->manifest_digest, m, mlen, err);
	if (rc < 0)
		udfb_err_wrap(err, "publish to %s", dest_str);
	cleanup_free char *name = udfb_ref_name(dest);
	if (rc == 0 && asprintf(&out->image, "%s:%s@%s", name, tag, out->manifest_digest) < 0)
		abort();
	out->layers = describe_layers(m, c);
	json_decref(m);
	json_decref(c);
	return rc;
}

static int check_buildable(const struct udfb_request *req, struct udfb_err *err)
{
	if (req->n_requirements == 0)
		return 0;
	return udfb_err_set(err, UDFB_E_UNSUPPORTED,
			    "spec.packages: installing Python packages natively is not in this build yet (%s%s); "
			    "'udf-builder dockerfile' writes a Dockerfile that installs them",
			    req->requirements[0], req->n_requirements > 1 ? ", ..." : "");
}

/* Lookup order: the local index, then the destination registry (another
 * replica may have built it: one HEAD), then a build. */
static int lookup(struct udfb_build_result *out, struct udfb_store *st, const struct udfb_ref *dest,
		  struct udfb_err *err)
{
	int hit = udfb_store_key_get(st, out->key, out->manifest_digest, err);
	if (hit)
		return hit;
	cleanup_free char *tag = dest_tag(dest, out->key);
	/* Only a tag made from the key says what it holds; a tag the operator
	 * chose ("latest") may hold anything. */
	size_t n = strlen(tag);
	if (n < 64 || strcmp(tag + n - 64, udfb_digest_hex(out->key)) != 0)
		return 0;
	hit = udfb_publish_lookup(out->manifest_digest, dest, tag, st, err);
	if (hit > 0 && udfb_store_key_put(st, out->key, out->manifest_digest, err) < 0)
		return -1;
	if (hit > 0)
		udfb_info("key %s found in %s:%s", out->key, dest->repo, tag);
	return hit;
}

static int build_in_store(struct udfb_build_result *out, struct udfb_store *st, const struct udfb_request *req,
			  const struct udfb_base *base, const struct udfb_build_opts *o, const struct udfb_ref *dest,
			  struct udfb_err *err)
{
	int hit = lookup(out, st, dest, err);
	if (hit < 0)
		return -1;
	if (hit) {
		out->cached = 1;
		return 0;
	}
	if (check_buildable(req, err) < 0)
		return -1;
	/* A private directory per build: its temporary files never collide
	 * with another build's, and start-up removes it after a crash. */
	cleanup_free char *tmpl = udfb_path_join(st->tmp, "build-XXXXXX");
	if (!mkdtemp(tmpl))
		return udfb_err_sys(err, errno, "create a build directory in %s", st->tmp);
	int rc = build_fresh(out->manifest_digest, &out->fetched_bytes, st, req, base, o, tmpl, err);
	udfb_rm_rf(tmpl);
	if (rc == 0)
		rc = udfb_store_key_put(st, out->key, out->manifest_digest, err);
	return rc;
}

int udfb_build(struct udfb_build_result *out, const struct udfb_request *req, const struct udfb_build_opts *o,
	       struct udfb_err *err)
{
	memset(out, 0, sizeof(*out));
	struct udfb_ref dest;
	if (udfb_ref_parse(&dest, o->dest, err) < 0)
		return udfb_err_wrap(err, "--dest");
	struct udfb_base own = { 0 };
	const struct udfb_base *base = o->base_resolved ? o->base_resolved : &own;
	struct udfb_store *st = NULL;
	int rc = o->base_resolved ? 0 : udfb_base_resolve(&own, o->base, o->platform, err);
	if (rc == 0)
		rc = udfb_build_key(out->key, req, base->image.manifest_digest, o, err);
	if (rc == 0)
		rc = udfb_store_open(&st, o->store_dir, err);
	if (rc == 0)
		rc = build_in_store(out, st, req, base, o, &dest, err);
	if (rc == 0)
		rc = publish(out, st, base, &dest, o->dest, err);
	if (rc == 0)
		udfb_info("built key=%s manifest=%s cached=%d", out->key, out->manifest_digest, out->cached);
	udfb_store_close(st);
	udfb_base_free(&own);
	udfb_ref_free(&dest);
	if (rc < 0)
		udfb_build_result_free(out);
	return rc;
}

void udfb_build_result_free(struct udfb_build_result *r)
{
	free(r->image);
	json_decref(r->layers);
	r->image = NULL;
	r->layers = NULL;
}
