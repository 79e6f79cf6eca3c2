/* A UDF's packages: lock, then one cached layer per wheel.  See packages.h. */
#include "builder/packages.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "builder/build.h"
#include "common/clock.h"
#include "common/alloc.h"
#include "common/cleanup.h"
#include "fetch/fetch.h"
#include "common/fsutil.h"
#include "image/image.h"
#include "common/jsonout.h"
#include "common/log.h"
#include "python/marker.h"
#include "pkgindex/pkgindex.h"
#include "pkgindex/pkgopts.h"
#include "cache/store.h"
#include "common/version.h"
#include "python/wheel.h"

#define DEFAULT_INDEX "https://pypi.org/simple"
/* Package layers are the big ones, made once and shared: the fast level
 * (about 2x the speed of 6 for a few percent of size). */
#define PACKAGE_GZIP_LEVEL 1

struct pctx {
	const struct udfb_packages_in *in;
	struct udfb_packages *out;
	struct udfb_pyenv env;
	struct udfb_pytags *tags;
	struct udfb_pkgindex *index; /* made when first needed */
	struct udfb_fetch_opts fetch; /* the caller's, with the package guard */
	char *wheels; /* the wheel cache */
	int n_dirs; /* private unpack directories made */
	long long unpacked; /* bytes all wheels of this build unpacked to */
	long long unpack_ms; /* time all wheels of this build took to unpack */
};

char *udfb_packages_python(const struct udfb_image *base, const char *runtime_version, const char *fallback)
{
	json_t *env = json_object_get(json_object_get(base ? base->config_json : NULL, "config"), "Env");
	size_t k;
	json_t *v;
	json_array_foreach(env, k, v) {
		const char *s = json_string_value(v);
		if (s && strncmp(s, "PYTHON_VERSION=", 15) == 0 && s[15])
			return udfb_strdup(s + 15);
	}
	return udfb_strdup(runtime_version && *runtime_version ? runtime_version : fallback);
}

static const char *machine_of(const char *platform)
{
	const char *arch = strchr(platform, '/');
	arch = arch ? arch + 1 : platform;
	return strncmp(arch, "arm64", 5) == 0 ? "aarch64" : strcmp(arch, "amd64") == 0 ? "x86_64" : arch;
}

static json_t *target_json(const struct pctx *c)
{
	char glibc[16];
	snprintf(glibc, sizeof(glibc), "%d.%d", c->in->opts->glibc_major, c->in->opts->glibc_minor);
	return udfb_json_must(json_pack("{s:s,s:s,s:s}", "python", c->env.python_full_version, "glibc", glibc,
					"platform", c->in->platform));
}

static int setup_target(struct pctx *c, struct udfb_err *err)
{
	int ma = 0, mi = 0;
	if (sscanf(c->in->python, "%d.%d", &ma, &mi) != 2)
		return udfb_err_set(err, UDFB_E_INVALID, "packages: target Python '%s' is not a version like 3.12",
				    c->in->python);
	const char *machine = machine_of(c->in->platform);
	udfb_pyenv_init(&c->env, c->in->python, machine);
	struct udfb_pytarget t = { .py_major = ma,
				   .py_minor = mi,
				   .glibc_major = c->in->opts->glibc_major,
				   .glibc_minor = c->in->opts->glibc_minor,
				   .arch = machine };
	return udfb_pytags_new(&c->tags, &t, err);
}

static int get_index(struct pctx *c, struct udfb_err *err)
{
	if (c->index)
		return 0;
	const struct udfb_pkg_opts *o = c->in->opts;
	char *fallback[] = { DEFAULT_INDEX };
	c->fetch = *c->in->fetch;
	c->fetch.guard = o->guard; /* shallow: neither copy is freed here */
	/* Wheels are bigger than imports (torch: 750 MiB); unpacked they are
	 * held to UDFB_WHEEL_MAX_UNPACKED. */
	c->fetch.max_import_bytes = UDFB_WHEEL_MAX_DOWNLOAD;
	c->fetch.max_request_bytes = UDFB_WHEEL_MAX_DOWNLOAD;
	return udfb_pkgindex_new(&c->index, o->n_index ? o->index : fallback, o->n_index ? o->n_index : 1, &c->fetch,
				 c->in->tmp, c->wheels, err);
}

/* ---- the lock ---- */

/* What names an index in the requirement set's key: an http(s) URL without
 * its credentials, query and fragment; a directory (or file: URL, which
 * carries no credentials) by its real path, so two directories never
 * share a lock, whatever the working directory. */
static char *index_identity(const char *index)
{
	if (strncasecmp(index, "http://", 7) == 0 || strncasecmp(index, "https://", 8) == 0)
		return udfb_url_display(index);
	char *real = strstr(index, "://") ? NULL : realpath(index, NULL);
	char *out = udfb_strdup(real ? real : index); /* unresolvable: the index fails when opened */
	free(real);
	return out;
}

/* The requirement set's own key: another UDF asking for the same packages
 * on the same target gets the same lock, with no index request at all.
 * Index URLs enter without their credentials. */
static void reqs_key(struct pctx *c)
{
	json_t *reqs = json_array(), *ix = json_array();
	for (size_t k = 0; k < c->in->n_reqs; k++)
		json_array_append_new(reqs, json_string(c->in->reqs[k]));
	for (size_t k = 0; k < c->in->opts->n_index; k++) {
		char *shown = index_identity(c->in->opts->index[k]);
		json_array_append_new(ix, json_string(shown));
		free(shown);
	}
	json_t *doc = udfb_json_must(json_pack("{s:s,s:o,s:o,s:o}", "format", "udf-builder-lock-key/1", "target",
					       target_json(c), "requirements", reqs, "index", ix));
	char *text = udfb_json_dumps_must(doc, JSON_COMPACT | JSON_SORT_KEYS);
	udfb_sha256_digest(text, strlen(text), c->out->reqs_key);
	free(text);
	json_decref(doc);
}

static int kept_lock(struct pctx *c, const char *key, struct udfb_err *err)
{
	cleanup_free char *text = NULL;
	size_t len = 0;
	if (!key || !udfb_store_record_get(c->in->st, "locks", key, &text, &len))
		return 0;
	if (udfb_lock_from_json(&c->out->lock, text, len, err) == 0) {
		udfb_info("packages: the lock kept under %s (%zu packages)", key, c->out->lock.n);
		return 1;
	}
	udfb_warn("packages: the lock kept under %s is damaged (%s); resolving again", key, err->msg);
	udfb_err_clear(err);
	return 0;
}

static int get_lock(struct pctx *c, struct udfb_err *err)
{
	const struct udfb_packages_in *in = c->in;
	reqs_key(c);
	/* The key's own lock first: it stays fixed for that key even when
	 * another key refreshed the requirement set's. */
	if (!in->opts->refresh && (kept_lock(c, in->key, err) || kept_lock(c, c->out->reqs_key, err)))
		return 0;
	struct udfb_resolve_opts ro = { .env = &c->env, .tags = c->tags, .deadline_ms = in->deadline_ms };
	if (get_index(c, err) < 0)
		return -1;
	ro.index = c->index;
	c->out->resolved = 1;
	return udfb_resolve(&c->out->lock, in->reqs, in->n_reqs, &ro, err);
}

int udfb_packages_keep_lock(const struct udfb_packages *p, struct udfb_store *st, const char *key, struct udfb_err *err)
{
	if (!p->lock_json)
		return 0;
	if (udfb_store_record_put(st, "locks", key, p->lock_json, p->lock_len, err) < 0)
		return -1;
	if (!p->resolved)
		return 0;
	return udfb_store_record_put(st, "locks", p->reqs_key, p->lock_json, p->lock_len, err);
}

/* ---- wheels ---- */

/* The locked wheel: from the wheel cache, else from an index serving that
 * very file (the lock's sha256 is checked on download). */
static int wheel_file(char **path, struct pctx *c, const struct udfb_lock_pkg *p, struct udfb_err *err)
{
	if ((*path = udfb_pkgindex_cached(c->wheels, p->sha256)))
		return 0;
	const struct udfb_pkgproject *proj = NULL;
	if (get_index(c, err) < 0 || udfb_pkgindex_project(&proj, c->index, p->name, c->in->deadline_ms, err) < 0)
		return -1;
	for (size_t k = 0; k < proj->n_files; k++) {
		struct udfb_pkgfile f = proj->files[k];
		if (strcmp(f.filename, p->filename) != 0)
			continue;
		if (f.sha256[0] && strcmp(f.sha256, p->sha256) != 0)
			return udfb_err_set(
				err, UDFB_E_INVALID,
				"%s: the index now serves other bytes than the lock's (sha256 %s, locked %s)",
				p->filename, f.sha256, p->sha256);
		memcpy(f.sha256, p->sha256, sizeof(f.sha256));
		return udfb_pkgindex_download(path, c->index, &f, c->in->deadline_ms, err);
	}
	return udfb_err_set(err, UDFB_E_NOTFOUND, "%s: no index serves the locked file %s", p->name, p->filename);
}

static int install_wheel(struct udfb_layer_writer *w, struct pctx *c, const struct udfb_lock_pkg *p,
			 struct udfb_err *err)
{
	cleanup_free char *path = NULL;
	if (wheel_file(&path, c, p, err) < 0)
		return -1;
	char sub[32];
	snprintf(sub, sizeof(sub), "unpack-%d", c->n_dirs++);
	cleanup_free char *dir = udfb_path_join(c->in->tmp, sub);
	if (mkdir(dir, 0700) < 0)
		return udfb_err_sys(err, errno, "create %s", dir);
	/* One budget for the whole build: many small bombs add up too. */
	long long left = c->in->opts->max_unpacked - c->unpacked, got = 0;
	if (left <= 0)
		return udfb_err_set(
			err, UDFB_E_INVALID,
			"%s: the packages of this request unpack to more than %lld bytes (packages-max-unpacked)",
			p->filename, c->in->opts->max_unpacked);
	/* And one time budget: a bomb that inflates slowly stops too. */
	long long t0 = udfb_now_ms(), ms_left = c->in->opts->max_unpack_ms - c->unpack_ms;
	if (c->in->opts->max_unpack_ms > 0 && ms_left <= 0)
		return udfb_err_set(err, UDFB_E_INVALID,
				    "%s: the packages of this request took more than %lld ms to unpack "
				    "(packages-max-unpack-ms)",
				    p->filename, c->in->opts->max_unpack_ms);
	struct udfb_wheel_install_opts o = { .target = UDFB_PACKAGES_DIR,
					     .python = UDFB_PACKAGES_PYTHON,
					     .tmpdir = dir,
					     .installer = "udf-builder",
					     .max_unpacked = left,
					     .unpacked = &got,
					     .deadline_ms = c->in->opts->max_unpack_ms > 0 ? t0 + ms_left : 0 };
	c->out->installs++;
	int rc = udfb_wheel_install(w, path, &o, err);
	c->unpacked += got;
	c->unpack_ms += udfb_now_ms() - t0;
	return rc;
}

/* ---- layers ---- */

struct item {
	const struct udfb_lock_pkg *p;
	char key[UDFB_DIGEST_LEN + 1]; /* of its layer */
};

/* A wheel's layer depends on the wheel's bytes and on how we install it,
 * nothing else: the same key in every image and on every replica. */
static void layer_key(char out[UDFB_DIGEST_LEN + 1], const struct udfb_lock_pkg *p)
{
	cleanup_free char *text = udfb_asprintf(
		"udf-builder-package-layer/1\nlayer_format=%d\ngzip=%d\nwheel=%s\ntarget=%s\npython=%s\n",
		UDFB_LAYER_FORMAT, PACKAGE_GZIP_LEVEL, p->sha256, UDFB_PACKAGES_DIR, UDFB_PACKAGES_PYTHON);
	udfb_sha256_digest(text, strlen(text), out);
}

static void group_key(char out[UDFB_DIGEST_LEN + 1], const struct item *v, size_t n)
{
	struct udfb_sha256 *h = udfb_sha256_new();
	udfb_sha256_update(h, "udf-builder-package-group/1\n", 28);
	for (size_t k = 0; k < n; k++) {
		udfb_sha256_update(h, v[k].key, strlen(v[k].key));
		udfb_sha256_update(h, "\n", 1);
	}
	udfb_sha256_final(h, out); /* frees h */
}

static int cached_layer(struct udfb_layer *l, struct udfb_store *st, const char *key)
{
	cleanup_free char *text = NULL;
	size_t len = 0;
	if (!udfb_store_record_get(st, "packages", key, &text, &len) || len != UDFB_DIGEST_LEN ||
	    !udfb_store_layer_get(st, memcpy(l->diff_id, text, UDFB_DIGEST_LEN), l->digest, &l->size))
		return 0;
	return udfb_digest_valid(l->diff_id);
}

/* One layer holding the wheels v[0..n): from the store when it was made
 * before, else unpacked now. */
static int group_layer(struct udfb_layer *l, struct pctx *c, const struct item *v, size_t n, struct udfb_err *err)
{
	char key[UDFB_DIGEST_LEN + 1];
	if (n == 1)
		memcpy(key, v[0].key, sizeof(key));
	else
		group_key(key, v, n);
	memset(l, 0, sizeof(*l));
	if (cached_layer(l, c->in->st, key))
		return 0;
	struct udfb_layer_writer *w;
	udfb_layer_writer_new(&w);
	udfb_layer_writer_set_level(w, PACKAGE_GZIP_LEVEL);
	for (size_t k = 0; k < n; k++)
		if (install_wheel(w, c, v[k].p, err) < 0) {
			udfb_layer_writer_free(w);
			return udfb_err_wrap(err, "install %s %s", v[k].p->name, v[k].p->version);
		}
	/* Straight to the blob: the record missed, so the layer is new here
	 * (no pass to look its diff_id up first). */
	struct udfb_store *st = c->in->st;
	if (udfb_layer_write(l, w, c->in->tmp, err) < 0 || udfb_store_put_tmp_later(st, l->path, l->digest, err) < 0)
		return -1;
	free(l->path);
	l->path = NULL;
	if (udfb_store_layer_put(st, l->diff_id, l->digest, l->size, err) < 0)
		return -1;
	return udfb_store_record_put(st, "packages", key, l->diff_id, UDFB_DIGEST_LEN, err);
}

static int cmp_small_first(const void *a, const void *b)
{
	const struct udfb_lock_pkg *x = ((const struct item *)a)->p, *y = ((const struct item *)b)->p;
	long long sx = x->size < 0 ? 0 : x->size, sy = y->size < 0 ? 0 : y->size;
	return sx != sy ? (sx < sy ? -1 : 1) : strcmp(x->name, y->name);
}

static int cmp_lock_name_item(const void *a, const void *b)
{
	return strcmp(((const struct item *)a)->p->name, ((const struct item *)b)->p->name);
}

static void add_created_by(struct udfb_packages *out, const struct item *v, size_t n)
{
	out->created_by[out->n_layers++] =
		n == 1 ? udfb_asprintf("udf-builder: install %s %s", v[0].p->name, v[0].p->version)
		       : udfb_asprintf("udf-builder: install %zu small packages (%s %s, ...)", n, v[0].p->name,
				       v[0].p->version);
}

/* One layer per wheel in name order; over the budget, the smallest wheels
 * (by size, then name: a stable choice) share one last layer. */
static int make_layers(struct pctx *c, struct udfb_err *err)
{
	const struct udfb_lock *lock = &c->out->lock;
	size_t n = lock->n, budget = (size_t)c->in->opts->layer_budget;
	struct item *v = udfb_calloc(n + 1, sizeof(*v));
	for (size_t k = 0; k < n; k++) {
		v[k].p = &lock->pkgs[k];
		layer_key(v[k].key, v[k].p);
	}
	size_t merged = n > budget ? n - budget + 1 : 0;
	if (merged)
		qsort(v, n, sizeof(*v), cmp_small_first);
	c->out->layers = udfb_calloc(n + 1, sizeof(*c->out->layers));
	c->out->created_by = udfb_calloc(n + 1, sizeof(char *));
	int rc = 0;
	/* The singles are the largest wheels: back in name order. */
	size_t singles = n - merged;
	struct item *single = v + merged;
	qsort(single, singles, sizeof(*single), cmp_lock_name_item);
	for (size_t k = 0; rc == 0 && k < singles; k++) {
		rc = group_layer(&c->out->layers[c->out->n_layers], c, &single[k], 1, err);
		if (rc == 0)
			add_created_by(c->out, &single[k], 1);
	}
	if (rc == 0 && merged) {
		qsort(v, merged, sizeof(*v), cmp_lock_name_item);
		rc = group_layer(&c->out->layers[c->out->n_layers], c, v, merged, err);
		if (rc == 0)
			add_created_by(c->out, v, merged);
	}
	free(v);
	return rc;
}

int udfb_packages_prepare(struct udfb_packages *out, const struct udfb_packages_in *in, struct udfb_err *err)
{
	memset(out, 0, sizeof(*out));
	struct pctx c = { .in = in, .out = out };
	c.wheels = udfb_path_join(in->st->root, "wheels");
	int rc = setup_target(&c, err);
	if (rc == 0)
		rc = get_lock(&c, err);
	if (rc == 0)
		rc = make_layers(&c, err);
	if (rc == 0) {
		json_t *t = target_json(&c);
		out->lock_json = udfb_lock_to_json(&out->lock, t, &out->lock_len);
		json_decref(t);
		udfb_info("packages: %zu packages in %zu layers, %ld wheels unpacked, lock %s", out->lock.n,
			  out->n_layers, out->installs, out->resolved ? "resolved" : "kept");
	}
	udfb_pkgindex_free(c.index);
	udfb_pytags_free(c.tags);
	free(c.wheels);
	if (rc < 0)
		udfb_packages_free(out);
	return rc;
}

void udfb_packages_free(struct udfb_packages *p)
{
	udfb_lock_free(&p->lock);
	free(p->lock_json);
	for (size_t k = 0; k < p->n_layers; k++) {
		udfb_layer_clear(&p->layers[k]);
		free(p->created_by[k]);
	}
	free(p->layers);
	free(p->created_by);
	memset(p, 0, sizeof(*p));
}
