/* Batch builds: see batch.h. */
#include "builder/batch.h"

#include <dirent.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/alloc.h"
#include "common/fsutil.h"
#include "common/pool.h"
#include "registry-client/ref.h"
#include "builder/request.h"
#include "common/clock.h"
#include "common/tenant.h"

static void add(struct udfb_batch *b, const char *name, const char *json, size_t len)
{
	b->items = udfb_realloc(b->items, (b->n + 1) * sizeof(*b->items));
	struct udfb_batch_item *it = &b->items[b->n++];
	memset(it, 0, sizeof(*it));
	it->name = udfb_strdup(name);
	it->json = udfb_strndup(json, len);
	it->len = len;
	json_t *j = json_loadb(json, len, 0, NULL);
	const char *t = json_string_value(json_object_get(j, "tenant"));
	if (!t) /* a Databend CreateWorkerRequest line */
		t = json_string_value(json_object_get(j, "tenantId"));
	it->tenant = t ? udfb_strdup(t) : NULL;
	json_decref(j);
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int load_lines(struct udfb_batch *b, const char *path, const char *text, size_t len, struct udfb_err *err)
{
	size_t line = 0;
	for (const char *p = text, *end = text + len; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		line++;
		char name[4200];
		snprintf(name, sizeof(name), "%s:%zu", path, line);
		int blank = 1;
		for (size_t k = 0; k < n; k++)
			blank &= p[k] == ' ' || p[k] == '\t' || p[k] == '\r';
		if (!blank)
			add(b, name, p, n);
		p += n + 1;
	}
	(void)err;
	return 0;
}

static int load_file(struct udfb_batch *b, const char *path, struct udfb_err *err)
{
	int lines = ends_with(path, ".jsonl") || ends_with(path, ".ndjson");
	char *text = NULL;
	size_t len = 0;
	size_t max = lines ? (size_t)1 << 30 : UDFB_REQUEST_MAX_BYTES;
	if (udfb_read_file(&text, &len, path, max, err) < 0) {
		err->cat = UDFB_E_INVALID; /* a missing or oversized input is the caller's */
		return udfb_err_wrap(err, "prebuild input");
	}
	int rc = lines ? load_lines(b, path, text, len, err) : (add(b, path, text, len), 0);
	free(text);
	return rc;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int load_dir(struct udfb_batch *b, const char *dir, struct udfb_err *err)
{
	DIR *d = opendir(dir);
	if (!d)
		return udfb_err_set(err, UDFB_E_INVALID, "prebuild input %s: cannot read the directory", dir);
	char **names = NULL;
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (ends_with(e->d_name, ".request.json")) {
			names = udfb_realloc(names, (n + 1) * sizeof(char *));
			names[n++] = udfb_path_join(dir, e->d_name);
		}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(char *), cmp_str);
	int rc = 0;
	for (size_t k = 0; k < n; k++) {
		if (rc == 0)
			rc = load_file(b, names[k], err);
		free(names[k]);
	}
	free(names);
	return rc;
}

int udfb_batch_load(struct udfb_batch *out, char *const *inputs, size_t n_inputs, struct udfb_err *err)
{
	memset(out, 0, sizeof(*out));
	for (size_t k = 0; k < n_inputs; k++) {
		struct stat st;
		if (stat(inputs[k], &st) < 0) {
			udfb_batch_free(out);
			return udfb_err_set(err, UDFB_E_INVALID, "prebuild input %s: no such file or directory",
					    inputs[k]);
		}
		int rc = S_ISDIR(st.st_mode) ? load_dir(out, inputs[k], err) : load_file(out, inputs[k], err);
		if (rc < 0) {
			udfb_batch_free(out);
			return -1;
		}
	}
	return 0;
}

void udfb_batch_shard(struct udfb_batch *b, size_t i, size_t n)
{
	size_t kept = 0;
	for (size_t k = 0; k < b->n; k++) {
		if (k % n == i) {
			b->items[kept++] = b->items[k];
			continue;
		}
		free(b->items[k].name), free(b->items[k].json), free(b->items[k].tenant);
	}
	b->n = kept;
}

/* ---- running ---- */

struct run {
	struct udfb_batch *b;
	const struct udfb_build_opts *o;
	void (*done)(const struct udfb_batch_item *it, size_t finished, void *ctx);
	void *ctx;
	pthread_mutex_t mu;
	size_t finished;
};

struct job {
	struct run *r;
	struct udfb_batch_item *it;
};

/* A tenant's images get the tag the service gives them, so a prebuild
 * warms exactly what the service will look for. */
static char *dest_for(const char *dest, const struct udfb_batch_item *it, const char *key)
{
	struct udfb_ref r;
	struct udfb_err err = UDFB_ERR_INIT;
	if (!it->tenant || udfb_ref_parse(&r, dest, &err) < 0 || r.tag || r.digest) {
		if (!err.msg && it->tenant)
			udfb_ref_free(&r);
		udfb_err_clear(&err);
		return udfb_strdup(dest);
	}
	char *name = udfb_ref_name(&r), *label = udfb_tenant_label(it->tenant);
	char *out = udfb_asprintf("%s:%s-%s", name, label, udfb_digest_hex(key));
	free(name);
	free(label);
	udfb_ref_free(&r);
	return out;
}

static int build_one(struct udfb_batch_item *it, const struct udfb_build_opts *o, struct udfb_err *err)
{
	struct udfb_request req;
	if (udfb_request_parse_json(&req, it->json, it->len, err) < 0)
		return -1;
	struct udfb_build_opts id_opts = *o;
	id_opts.tenant = it->tenant;
	int rc = udfb_request_identify(&req, &id_opts, err); /* a Databend script's imports */
	if (rc == 0)
		rc = udfb_build_key(it->key, &req, o->base_resolved->image.manifest_digest, o, err);
	char *dest = rc == 0 ? dest_for(o->dest, it, it->key) : NULL;
	struct udfb_build_opts mine = *o;
	mine.dest = dest;
	mine.tenant = it->tenant;
	struct udfb_build_result r;
	if (rc == 0 && (rc = udfb_build(&r, &req, &mine, err)) == 0) {
		memcpy(it->digest, r.manifest_digest, sizeof(it->digest));
		it->image = udfb_strdup(r.image);
		it->cached = r.cached;
		udfb_build_result_free(&r);
	}
	free(dest);
	udfb_request_free(&req);
	return rc;
}

static void job(void *arg)
{
	struct job *j = arg;
	struct udfb_err err = UDFB_ERR_INIT;
	double t0 = udfb_now_s();
	if (build_one(j->it, j->r->o, &err) < 0) {
		j->it->failed = 1;
		j->it->error = udfb_strdup(err.msg);
	}
	j->it->seconds = udfb_now_s() - t0;
	udfb_err_clear(&err);
	pthread_mutex_lock(&j->r->mu);
	j->r->finished++;
	if (j->r->done)
		j->r->done(j->it, j->r->finished, j->r->ctx);
	pthread_mutex_unlock(&j->r->mu);
	free(j);
}

void udfb_batch_run(struct udfb_batch *b, const struct udfb_build_opts *o, int jobs,
		    void (*done)(const struct udfb_batch_item *it, size_t finished, void *ctx), void *ctx)
{
	struct run r = { .b = b, .o = o, .done = done, .ctx = ctx };
	pthread_mutex_init(&r.mu, NULL);
	struct udfb_pool *pool = udfb_pool_new(jobs, "prebuild");
	for (size_t k = 0; k < b->n; k++) {
		struct job *j = udfb_malloc(sizeof(*j));
		*j = (struct job){ &r, &b->items[k] };
		udfb_pool_submit(pool, job, j);
	}
	udfb_pool_free(pool); /* runs everything queued, then joins */
	pthread_mutex_destroy(&r.mu);
}

int udfb_batch_keys(struct udfb_batch *b, const struct udfb_build_opts *o, struct udfb_err *err)
{
	for (size_t k = 0; k < b->n; k++) {
		struct udfb_request req;
		struct udfb_err e = UDFB_ERR_INIT;
		struct udfb_build_opts mine = *o;
		mine.tenant = b->items[k].tenant;
		if (udfb_request_parse_json(&req, b->items[k].json, b->items[k].len, &e) < 0) {
			b->items[k].failed = 1;
			b->items[k].error = udfb_strdup(e.msg);
			udfb_err_clear(&e);
			continue;
		}
		/* A Databend script's imports carry no tag: one first-byte GET each
		 * names their content, as build_one does (nothing is built). */
		if (udfb_request_identify(&req, &mine, &e) < 0 ||
		    udfb_build_key(b->items[k].key, &req, o->base_resolved->image.manifest_digest, o, &e) < 0) {
			b->items[k].failed = 1;
			b->items[k].error = udfb_strdup(e.msg);
			udfb_err_clear(&e);
		}
		udfb_request_free(&req);
	}
	(void)err;
	return 0;
}

void udfb_batch_free(struct udfb_batch *b)
{
	for (size_t k = 0; k < b->n; k++) {
		struct udfb_batch_item *it = &b->items[k];
		free(it->name), free(it->json), free(it->tenant), free(it->image), free(it->error);
	}
	free(b->items);
	memset(b, 0, sizeof(*b));
}
