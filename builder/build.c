/* One native build: see build.h and docs/architecture.md. */
#include "builder/build.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/cleanup.h"
#include "image/compose.h"
#include "builder/context.h"
#include "common/fsutil.h"
#include "common/jsonout.h"
#include "builder/key.h"
#include "image/layer.h"
#include "common/log.h"
#include "image/ocilayout.h"
#include "builder/packages.h"
#include "pkgindex/pkgopts.h"
#include "builder/publish.h"
#include "registry-client/imagestore.h"
#include "builder/script_imports.h"
#include "registry-client/ref.h"
#include "cache/store.h"
#include "builder/templates.h"
#include "common/version.h"

/* The image's own layers: the stub, the packages', the imports, the UDF. */
#define LAYER_MAX (3 + UDFB_RESOLVE_MAX_PACKAGES)

const char *udfb_build_tenant(const struct udfb_request *req, const struct udfb_build_opts *o)
{
	return o->tenant ? o->tenant : req->tenant ? req->tenant : "";
}

/* The package settings that change which wheels a request gets. */
static char *packages_key(const struct udfb_build_opts *o)
{
	const struct udfb_pkg_opts *p = o->packages;
	return udfb_asprintf("glibc=%d.%d;python=%s", p ? p->glibc_major : UDFB_PKG_DEFAULT_GLIBC_MAJOR,
			     p ? p->glibc_minor : UDFB_PKG_DEFAULT_GLIBC_MINOR,
			     p ? p->python : UDFB_PKG_DEFAULT_PYTHON);
}

int udfb_request_identify(struct udfb_request *req, const struct udfb_build_opts *o, struct udfb_err *err)
{
	size_t todo = 0;
	for (size_t k = 0; req->untagged && k < req->n_imports; k++)
		todo += !*req->imports[k].tag;
	if (!todo)
		return 0;
	struct udfb_fetch_opts defaults;
	udfb_fetch_opts_defaults(&defaults);
	struct udfb_import_ident *ids = udfb_calloc(req->n_imports + 1, sizeof(*ids));
	for (size_t k = 0; k < req->n_imports; k++)
		ids[k] = (struct udfb_import_ident){ .location = req->imports[k].location,
						     .url = req->imports[k].url,
						     .headers = (const char *const *)req->imports[k].headers };
	struct udfb_store *st = NULL;
	struct udfb_import_ident_stats stats = { 0 };
	int rc = udfb_store_open(&st, o->store_dir, err);
	if (rc == 0)
		rc = udfb_imports_identify(ids, req->n_imports, st, udfb_build_tenant(req, o),
					   o->fetch ? o->fetch : &defaults, o->deadline_ms, &stats, err);
	for (size_t k = 0; rc == 0 && k < req->n_imports; k++) {
		free(req->imports[k].tag);
		req->imports[k].tag = udfb_strdup(ids[k].digest);
	}
	udfb_store_close(st);
	udfb_fetch_opts_free(&defaults);
	free(ids);
	return rc;
}

int udfb_build_key(char key[UDFB_DIGEST_LEN + 1], const struct udfb_request *req, const char *base_digest,
		   const struct udfb_build_opts *o, struct udfb_err *err)
{
	for (size_t k = 0; req->untagged && k < req->n_imports; k++)
		if (!*req->imports[k].tag)
			return udfb_err_set(err, UDFB_E_INVALID,
					    "imports[%zu] ('%s'): a Databend script's import has no tag; "
					    "its identity needs a first-byte fetch (not done for a key alone)",
					    k, req->imports[k].location);
	cleanup_free char *pk = packages_key(o);
	struct udfb_key_inputs in = { .req = req,
				      .base_digest = base_digest,
				      .platform = o->platform,
				      .salt = o->salt,
				      .tenant = udfb_build_tenant(req, o),
				      .packages = pk };
	return udfb_key_compute(key, NULL, &in, err);
}

/* Compress a layer only when no blob of the store has its diff_id yet: the
 * stub layer, and an imports layer shared by UDFs that differ only in code,
 * are compressed once (one uncompressed pass finds the diff_id). */
int udfb_build_store_layer(struct udfb_layer *out, struct udfb_layer_writer *w, struct udfb_store *st, const char *tmp,
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
	/* Synced and put in place with the build's other blobs, together. */
	if (udfb_layer_write(out, w, tmp, err) < 0 || udfb_store_put_tmp_later(st, out->path, out->digest, err) < 0)
		return -1;
	free(out->path);
	out->path = NULL;
	return udfb_store_layer_put(st, out->diff_id, out->digest, out->size, err);
}

/* The stub's layer is the same for every UDF: one blob shared by all images.
 * A script request brings Databend's own stub (the same for every UDF of one
 * handler and types) and the wrapper that runs it behind the token check,
 * which it takes from our stub, beside it as udfb_server.py. */
static struct udfb_layer_writer *stub_layer(const struct udfb_request *r, struct udfb_err *err)
{
	const struct udfb_template *t = udfb_template_get("server.py"), *g = udfb_template_guard();
	struct udfb_layer_writer *w;
	udfb_layer_writer_new(&w);
	if (r->stub) {
		if (udfb_layer_add_dir(w, "app/imports", err) < 0 ||
		    udfb_layer_add_bytes(w, "app/server.py", r->stub, r->stub_len, 0, err) < 0 ||
		    udfb_layer_add_bytes(w, "app/udfb_guard.py", g->data, g->len, 0, err) < 0 ||
		    udfb_layer_add_bytes(w, "app/udfb_server.py", t->data, t->len, 0, err) < 0) {
			udfb_layer_writer_free(w);
			return NULL;
		}
		return w;
	}
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
					   const struct udfb_packages *p, struct udfb_err *err)
{
	struct udfb_layer_writer *w;
	udfb_layer_writer_new(&w);
	if (udfb_layer_add_bytes(w, "app/udf.py", r->spec.code, r->spec.code_len, 0, err) < 0 ||
	    udfb_layer_add_bytes(w, "app/udf.json", c->udf_json, c->udf_json_len, 0, err) < 0 ||
	    (p->lock_json && udfb_layer_add_bytes(w, "app/udf.lock", p->lock_json, p->lock_len, 0, err) < 0)) {
		udfb_layer_writer_free(w);
		return NULL;
	}
	return w;
}

/* Writes the layers into the store; returns how many there are.  The
 * package layers are in the store already: they come after the stub. */
static int make_layers(struct udfb_layer *ls, const char **created_by, struct udfb_store *st,
		       const struct udfb_request *r, const struct udfb_context *c, const struct udfb_packages *p,
		       const char *tmp, struct udfb_err *err)
{
	struct udfb_layer_writer *ws[4];
	const char *names[4];
	int n = 0;
	names[n] = r->stub ? "udf-builder: COPY server.py udfb_guard.py udfb_server.py /app/"
			   : "udf-builder: COPY server.py /app/server.py";
	ws[n++] = stub_layer(r, err);
	if (c->n_imports) {
		names[n] = "udf-builder: COPY imports/ /app/imports/";
		ws[n++] = imports_layer(c, err);
	}
	names[n] = p->lock_json ? "udf-builder: COPY udf.py udf.json udf.lock /app/"
				: "udf-builder: COPY udf.py udf.json /app/";
	ws[n++] = udf_layer(r, c, p, err);
	int rc = 0, out = 0;
	for (int k = 0; k < n; k++) {
		if (rc == 0 && !ws[k]) {
			rc = -1;
		} else if (rc == 0) {
			created_by[out] = names[k]; /* in the order of ls, packages between */
			rc = udfb_build_store_layer(&ls[out++], ws[k], st, tmp, err);
		} else {
			udfb_layer_writer_free(ws[k]);
		}
		/* The package layers go right after the stub. */
		for (size_t j = 0; k == 0 && rc == 0 && j < p->n_layers; j++) {
			ls[out] = p->layers[j];
			ls[out].path = NULL;
			created_by[out++] = p->created_by[j];
		}
	}
	return rc < 0 ? -1 : out;
}

static int link_base_layers(struct udfb_store *st, const struct udfb_base *base, struct udfb_err *err)
{
	const char *dir = udfb_image_store_oci_dir(base->store);
	if (!dir)
		return udfb_publish_note_remote(st, base, err); /* its layers stay in the registry */
	for (size_t k = 0; k < base->image.m.n_layers; k++) {
		const char *d = base->image.m.layers[k].digest;
		if (udfb_store_has_blob(st, d))
			continue;
		cleanup_free char *src = udfb_oci_blob_path(dir, d);
		if (udfb_store_put_link(st, src, d, err) < 0)
			return udfb_err_wrap(err, "base layer %s", d);
	}
	return 0;
}

static int prepare_packages(struct udfb_packages *out, struct udfb_store *st, const struct udfb_request *req,
			    const struct udfb_base *base, const struct udfb_build_opts *o, const char *key,
			    const char *tmp, struct udfb_err *err)
{
	memset(out, 0, sizeof(*out));
	if (req->n_requirements == 0)
		return 0;
	struct udfb_pkg_opts defaults;
	if (!o->packages)
		udfb_pkg_opts_defaults(&defaults);
	const struct udfb_pkg_opts *po = o->packages ? o->packages : &defaults;
	cleanup_free char *python = udfb_packages_python(&base->image, req->spec.runtime_version, po->python);
	struct udfb_packages_in in = { .reqs = req->requirements,
				       .n_reqs = req->n_requirements,
				       .opts = po,
				       .fetch = o->fetch,
				       .python = python,
				       .platform = o->platform,
				       .key = key,
				       .st = st,
				       .tmp = tmp,
				       .deadline_ms = o->deadline_ms };
	int rc = udfb_packages_prepare(out, &in, err);
	if (!o->packages)
		udfb_pkg_opts_free(&defaults);
	return rc < 0 ? udfb_err_wrap(err, "spec.packages") : 0;
}

/* Config and manifest over the layers, into the store; the manifest goes
 * in last (whatever names a blob finds it present), then the lock. */
static const char *const guard_cmd[] = { "python3", "/app/udfb_guard.py", NULL };

/* What was just composed as the image publish() hands on: parsed from
 * memory, never read back from the store. */
static int image_of(struct udfb_image *out, struct udfb_composed *c, struct udfb_err *err)
{
	memset(out, 0, sizeof(*out));
	memcpy(out->manifest_digest, c->manifest_digest, UDFB_DIGEST_LEN + 1);
	memcpy(out->config_digest, c->config_digest, UDFB_DIGEST_LEN + 1);
	out->manifest_len = c->manifest_len, out->config_len = c->config_len;
	out->manifest = udfb_steal(c->manifest);
	out->config = udfb_steal(c->config);
	out->manifest_json = json_loadb(out->manifest, out->manifest_len, 0, NULL);
	out->config_json = json_loadb(out->config, out->config_len, 0, NULL);
	udfb_platform_of_config(&out->platform, out->config_json);
	return udfb_manifest_from_json(&out->m, out->manifest_json, out->manifest_digest, err);
}

static int store_image(struct udfb_image *built, struct udfb_build_result *res, struct udfb_store *st,
		       const struct udfb_base *base, const struct udfb_build_opts *o, const struct udfb_layer *ls,
		       const char **created_by, size_t n, const struct udfb_packages *pk, int guarded,
		       struct udfb_err *err)
{
	struct udfb_composed img = { 0 };
	char cfg_digest[UDFB_DIGEST_LEN + 1];
	int rc = udfb_compose_cmd(&img, &base->image, ls, created_by, n, o->platform, guarded ? guard_cmd : NULL, err);
	if (rc == 0)
		rc = udfb_store_put_bytes_later(st, img.config, img.config_len, cfg_digest, err);
	if (rc == 0)
		rc = link_base_layers(st, base, err);
	if (rc == 0)
		rc = udfb_store_put_bytes_later(st, img.manifest, img.manifest_len, res->manifest_digest, err);
	if (rc == 0)
		rc = udfb_packages_keep_lock(pk, st, res->key, err);
	if (rc == 0)
		rc = image_of(built, &img, err);
	res->package_installs = pk->installs;
	udfb_composed_free(&img);
	return rc;
}

static int build_fresh(struct udfb_image *built, struct udfb_build_result *res, struct udfb_store *st,
		       const struct udfb_request *req, const struct udfb_base *base, const struct udfb_build_opts *o,
		       const char *tmp, struct udfb_err *err)
{
	struct udfb_context ctx;
	struct udfb_context_opts co = { .fetch = o->fetch,
					.deadline_ms = o->deadline_ms,
					.cache = st,
					.tmpdir = tmp,
					.tenant = udfb_build_tenant(req, o) };
	if (udfb_context_prepare(&ctx, req, &co, err) < 0)
		return -1;
	res->fetched_bytes = ctx.fetched_bytes;
	struct udfb_packages pk;
	struct udfb_layer *ls = udfb_calloc(LAYER_MAX, sizeof(*ls));
	const char **created_by = udfb_calloc(LAYER_MAX, sizeof(*created_by));
	int rc = prepare_packages(&pk, st, req, base, o, res->key, tmp, err);
	int n = rc < 0 ? -1 : make_layers(ls, created_by, st, req, &ctx, &pk, tmp, err);
	rc = n < 0 ? -1 : store_image(built, res, st, base, o, ls, created_by, (size_t)n, &pk, req->stub != NULL, err);
	for (int k = 0; k < n; k++)
		udfb_layer_clear(&ls[k]);
	free(ls);
	free(created_by);
	udfb_packages_free(&pk);
	udfb_context_free(&ctx);
	return rc;
}

static json_t *describe_layers(const struct udfb_image *img)
{
	json_t *out = json_array();
	json_t *ids = json_object_get(json_object_get(img->config_json, "rootfs"), "diff_ids");
	for (size_t k = 0; k < img->m.n_layers; k++) {
		json_t *d = json_deep_copy(img->m.layers[k].json);
		json_object_set(d, "diff_id", json_array_get(ids, k));
		json_array_append_new(out, d);
	}
	return out;
}

/* Without a tag the image is tagged by its key, so any reader can find it. */
static char *dest_tag(const struct udfb_ref *dest, const char *key)
{
	return dest->tag ? udfb_strdup(dest->tag) : udfb_asprintf("udf-%s", udfb_digest_hex(key));
}

static int publish(struct udfb_build_result *out, struct udfb_store *st, const struct udfb_base *base,
		   const struct udfb_ref *dest, struct udfb_image_store *ds, const char *dest_str,
		   const struct udfb_image *img, struct udfb_err *err)
{
	cleanup_free char *tag = dest_tag(dest, out->key);
	int rc = udfb_publish(ds, tag, st, base, img, &out->pushed_bytes, err);
	if (rc < 0)
		udfb_err_wrap(err, "publish to %s", dest_str);
	cleanup_free char *name = udfb_ref_name(dest);
	if (rc == 0)
		out->image = udfb_asprintf("%s:%s@%s", name, tag, out->manifest_digest);
	out->layers = describe_layers(img);
	return rc;
}

/* A warm image: the base, the package layers and the lock, no UDF.
 * Pushing it puts the package layers in the registry, where the first UDF
 * needing them finds them. */
static int warm_fresh(struct udfb_image *built, struct udfb_build_result *res, struct udfb_store *st,
		      const struct udfb_request *req, const struct udfb_base *base, const struct udfb_build_opts *o,
		      const char *tmp, struct udfb_err *err)
{
	struct udfb_packages pk;
	if (prepare_packages(&pk, st, req, base, o, res->key, tmp, err) < 0)
		return -1;
	struct udfb_layer *ls = udfb_calloc(pk.n_layers + 1, sizeof(*ls));
	const char **created_by = udfb_calloc(pk.n_layers + 1, sizeof(*created_by));
	for (size_t k = 0; k < pk.n_layers; k++) {
		ls[k] = pk.layers[k];
		created_by[k] = pk.created_by[k];
	}
	struct udfb_layer_writer *w;
	udfb_layer_writer_new(&w);
	created_by[pk.n_layers] = "udf-builder: COPY udf.lock /app/";
	int rc = udfb_layer_add_bytes(w, "app/udf.lock", pk.lock_json, pk.lock_len, 0, err);
	rc = rc < 0 ? (udfb_layer_writer_free(w), -1) : udfb_build_store_layer(&ls[pk.n_layers], w, st, tmp, err);
	if (rc == 0)
		rc = store_image(built, res, st, base, o, ls, created_by, pk.n_layers + 1, &pk, 0, err);
	udfb_layer_clear(&ls[pk.n_layers]);
	free(ls);
	free(created_by);
	udfb_packages_free(&pk);
	return rc;
}

/* Lookup order: the local index, then the destination registry (another
 * replica may have built it: one HEAD), then a build. */
static int lookup(struct udfb_build_result *out, struct udfb_store *st, const struct udfb_ref *dest,
		  struct udfb_image_store *ds, struct udfb_err *err)
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
	hit = udfb_publish_lookup(out->manifest_digest, ds, tag, st, err);
	if (hit > 0 && udfb_store_key_put(st, out->key, out->manifest_digest, err) < 0)
		return -1;
	if (hit > 0)
		udfb_info("key %s found in %s:%s", out->key, dest->repo, tag);
	return hit;
}

static int build_in_store(struct udfb_image *built, struct udfb_build_result *out, struct udfb_store *st,
			  const struct udfb_request *req, const struct udfb_base *base, const struct udfb_build_opts *o,
			  const struct udfb_ref *dest, struct udfb_image_store *ds, struct udfb_err *err)
{
	/* A refresh resolves the packages again and rebuilds: the key then
	 * names the image of the new lock. */
	int refresh = o->packages && o->packages->refresh && req->n_requirements;
	int hit = refresh ? 0 : lookup(out, st, dest, ds, err);
	if (hit < 0)
		return -1;
	if (hit) {
		out->cached = 1;
		/* The one read of a cached image: its manifest and config. */
		if (udfb_oci_read_image(built, st->root, out->manifest_digest, NULL, err) < 0)
			return udfb_err_wrap(err, "store");
		return 0;
	}
	/* A private directory per build: its temporary files never collide
	 * with another build's, and start-up removes it after a crash. */
	cleanup_free char *tmpl = udfb_path_join(st->tmp, "build-XXXXXX");
	if (!mkdtemp(tmpl))
		return udfb_err_sys(err, errno, "create a build directory in %s", st->tmp);
	/* A warm request (udfb_build_warm) has requirements and no code. */
	int rc = req->spec.code ? build_fresh(built, out, st, req, base, o, tmpl, err)
				: warm_fresh(built, out, st, req, base, o, tmpl, err);
	/* The blobs put "later" wait in tmpl: in place (synced together)
	 * before it goes, whether or not the build got to its end. */
	struct udfb_err e = UDFB_ERR_INIT;
	if (udfb_store_sync_blobs(st, rc == 0 ? err : &e) < 0)
		rc = -1;
	udfb_err_clear(&e);
	udfb_rm_rf(tmpl);
	if (rc == 0)
		rc = udfb_store_key_put(st, out->key, out->manifest_digest, err);
	return rc;
}

/* The destination's store, over the caller's registry clients, else the
 * base's: a base and a destination on one registry share one client. */
static int open_dest(struct udfb_image_store **out, const struct udfb_ref *dest, const struct udfb_base *base,
		     const struct udfb_build_opts *o, struct udfb_err *err)
{
	if (udfb_image_store_open(out, dest, o->registries ? o->registries : base->registries, err) < 0)
		return udfb_err_wrap(err, "--dest");
	return 0;
}

int udfb_build(struct udfb_build_result *out, const struct udfb_request *req, const struct udfb_build_opts *o,
	       struct udfb_err *err)
{
	memset(out, 0, sizeof(*out));
	struct udfb_ref dest;
	if (udfb_ref_parse(&dest, o->dest, err) < 0)
		return udfb_err_wrap(err, "--dest");
	struct udfb_base own = { 0 };
	struct udfb_image built = { 0 };
	const struct udfb_base *base = o->base_resolved ? o->base_resolved : &own;
	struct udfb_store *st = NULL;
	struct udfb_image_store *ds = NULL;
	int rc = o->base_resolved ? 0 : udfb_base_resolve(&own, o->base, o->platform, o->registries, err);
	if (rc == 0)
		rc = open_dest(&ds, &dest, base, o, err);
	/* Only the imports' tags are filled in: the request stays the same. */
	if (rc == 0)
		rc = udfb_request_identify((struct udfb_request *)req, o, err);
	if (rc == 0)
		rc = udfb_build_key(out->key, req, base->image.manifest_digest, o, err);
	if (rc == 0)
		rc = udfb_store_open(&st, o->store_dir, err);
	if (rc == 0)
		rc = build_in_store(&built, out, st, req, base, o, &dest, ds, err);
	if (rc == 0)
		rc = publish(out, st, base, &dest, ds, o->dest, &built, err);
	if (rc == 0)
		udfb_info("built key=%s manifest=%s cached=%d", out->key, out->manifest_digest, out->cached);
	udfb_store_close(st);
	udfb_image_store_free(ds);
	udfb_image_free(&built);
	udfb_base_free(&own);
	udfb_ref_free(&dest);
	if (rc < 0)
		udfb_build_result_free(out);
	return rc;
}

/* The key of a warm image: what decides its layers, and a format of its
 * own so it never equals a UDF's key. */
static void warm_key(char out[UDFB_DIGEST_LEN + 1], const struct udfb_request *req, const char *base_digest,
		     const struct udfb_build_opts *o)
{
	cleanup_free char *pk = packages_key(o);
	json_t *reqs = json_array();
	for (size_t k = 0; k < req->n_requirements; k++)
		json_array_append_new(reqs, json_string(req->requirements[k]));
	json_t *doc = udfb_json_must(json_pack("{s:s,s:s,s:i,s:s,s:s,s:s,s:s,s:o}", "format", "udf-builder-warm/1",
					       "builder", UDFB_VERSION, "layer_format", UDFB_LAYER_FORMAT, "platform",
					       o->platform, "base", base_digest, "runtime", req->spec.runtime_version,
					       "packages", pk, "requirements", reqs));
	char *text = udfb_json_dumps_must(doc, JSON_COMPACT | JSON_SORT_KEYS);
	udfb_sha256_digest(text, strlen(text), out);
	free(text);
	json_decref(doc);
}

int udfb_build_warm(struct udfb_build_result *out, char *const *reqs, size_t n, const char *runtime,
		    const struct udfb_build_opts *o, struct udfb_err *err)
{
	memset(out, 0, sizeof(*out));
	struct udfb_request req = { .requirements = (char **)reqs, .n_requirements = n };
	req.spec.runtime_version = (char *)runtime;
	struct udfb_ref dest;
	if (udfb_ref_parse(&dest, o->dest, err) < 0)
		return udfb_err_wrap(err, "--dest");
	struct udfb_base own = { 0 };
	struct udfb_image built = { 0 };
	struct udfb_store *st = NULL;
	struct udfb_image_store *ds = NULL;
	int rc = udfb_base_resolve(&own, o->base, o->platform, o->registries, err);
	if (rc == 0)
		rc = open_dest(&ds, &dest, &own, o, err);
	if (rc == 0) {
		warm_key(out->key, &req, own.image.manifest_digest, o);
		rc = udfb_store_open(&st, o->store_dir, err);
	}
	if (rc == 0)
		rc = build_in_store(&built, out, st, &req, &own, o, &dest, ds, err);
	if (rc == 0)
		rc = publish(out, st, &own, &dest, ds, o->dest, &built, err);
	udfb_store_close(st);
	udfb_image_store_free(ds);
	udfb_image_free(&built);
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

/* An image of the base and one layer of the caller's (a Databend script
 * run as-is, builder/run.h), built every time: it is small, and it carries
 * the caller's current script.  Stored under key, published as usual. */
int udfb_build_one_layer(struct udfb_build_result *out, const char *key, struct udfb_layer_writer *w,
			 const char *created_by, const char *const *cmd, const char *workdir,
			 const struct udfb_build_opts *o, struct udfb_err *err)
{
	memset(out, 0, sizeof(*out));
	memcpy(out->key, key, UDFB_DIGEST_LEN + 1);
	struct udfb_ref dest;
	if (udfb_ref_parse(&dest, o->dest, err) < 0) {
		udfb_layer_writer_free(w);
		return udfb_err_wrap(err, "--dest");
	}
	struct udfb_base own = { 0 };
	struct udfb_image built = { 0 };
	const struct udfb_base *base = o->base_resolved ? o->base_resolved : &own;
	struct udfb_store *st = NULL;
	struct udfb_image_store *ds = NULL;
	struct udfb_layer layer = { 0 };
	struct udfb_composed img = { 0 };
	char cfg_digest[UDFB_DIGEST_LEN + 1];
	cleanup_free char *tmpl = NULL;
	int rc = o->base_resolved ? 0 : udfb_base_resolve(&own, o->base, o->platform, o->registries, err);
	if (rc == 0)
		rc = open_dest(&ds, &dest, base, o, err);
	if (rc == 0)
		rc = udfb_store_open(&st, o->store_dir, err);
	if (rc == 0) {
		tmpl = udfb_path_join(st->tmp, "build-XXXXXX");
		if (!mkdtemp(tmpl))
			rc = udfb_err_sys(err, errno, "create a build directory in %s", st->tmp);
	}
	if (rc == 0) {
		rc = udfb_build_store_layer(&layer, w, st, tmpl, err);
		w = NULL;
	}
	if (rc == 0)
		rc = udfb_compose_cmd_in(&img, &base->image, &layer, &created_by, 1, o->platform, cmd, workdir, err);
	if (rc == 0)
		rc = udfb_store_put_bytes_later(st, img.config, img.config_len, cfg_digest, err);
	if (rc == 0)
		rc = link_base_layers(st, base, err);
	if (rc == 0)
		rc = udfb_store_put_bytes_later(st, img.manifest, img.manifest_len, out->manifest_digest, err);
	if (rc == 0)
		rc = image_of(&built, &img, err);
	if (rc == 0)
		rc = udfb_store_key_put(st, out->key, out->manifest_digest, err);
	if (rc == 0)
		rc = publish(out, st, base, &dest, ds, o->dest, &built, err);
	if (tmpl) {
		/* Blobs put "later" wait in tmpl (see build_in_store). */
		struct udfb_err e = UDFB_ERR_INIT;
		udfb_store_sync_blobs(st, &e);
		udfb_err_clear(&e);
		udfb_rm_rf(tmpl);
	}
	udfb_layer_writer_free(w);
	udfb_layer_clear(&layer);
	udfb_composed_free(&img);
	udfb_store_close(st);
	udfb_image_store_free(ds);
	udfb_image_free(&built);
	udfb_base_free(&own);
	udfb_ref_free(&dest);
	if (rc < 0)
		udfb_build_result_free(out);
	return rc;
}
