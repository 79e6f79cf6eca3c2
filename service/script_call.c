/* Databend's ApplyResource and CreateWorker calls, and the WORKER
 * statements: see service.h and docs/service.md.
 *
 * A call's script is parsed on the completion-queue thread (microseconds).
 * When every import of it was validated within imports.revalidate_ms, the
 * fingerprint of what decides the image (tenant, code, stub, packages,
 * imports' content digests; never a URL) finds a ready sandbox in memory.
 * Otherwise a worker thread identifies the imports (one first-byte GET
 * each, downloads only for content the store lacks), computes the key and
 * joins the single-flight build of service.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/log.h"
#include "builder/script.h"
#include "builder/script_imports.h"
#include "service/service_internal.h"
#include "cache/store.h"
#include "common/tenant.h"

/* A sandbox left by CREATE OR REPLACE keeps serving the queries that were
 * handed its endpoint before the replacement (Databend does not say when a
 * query ends): the housekeeping timer (workers.c, every second) stops it
 * once no call has reached it for RETIRE_IDLE_MS, unless a worker points at
 * it again; where the backend cannot say, RETIRE_GRACE_MS after it was
 * replaced. */
#define RETIRE_IDLE_MS 10000
#define RETIRE_GRACE_MS 60000

struct seen {
	char digest[UDFB_DIGEST_LEN + 1];
	long long at_ms;
};

struct svc_retired {
	char *tenant;
	char key[UDFB_DIGEST_LEN + 1];
	long long at_ms;
	struct svc_retired *next;
};

/* A script seen before, by its quick hash: what the fast path needs. */
struct memo {
	char base[UDFB_DIGEST_LEN + 1];
	char **locations;
	size_t n;
};

struct udfb_script_call {
	struct udfb_script script;
	char quick[UDFB_DIGEST_LEN + 1], base[UDFB_DIGEST_LEN + 1];
	char **locations; /* the imports' locations (into script) */
	char *tenant, *query_id, *worker;
	int if_not_exists;
	const char *env_scope; /* = worker when its variables are not the handler's */
	struct udfb_log_fields fields;
	struct udfb_prepared *run; /* script_mode = run: the script as-is (script_run.c) */
};

static void free_memo(void *v)
{
	struct memo *m = v;
	if (!m)
		return;
	for (size_t k = 0; k < m->n; k++)
		free(m->locations[k]);
	free(m->locations);
	free(m);
}

void svc_script_init(struct udfb_service *s)
{
	s->seen = udfb_table_new();
	s->workers = udfb_table_new();
	s->memo = udfb_table_new();
	/* Caches of what callers sent: bounded, least recently used first out. */
	udfb_table_set_max(s->seen, (size_t)s->cfg.max_cached_calls, free);
	udfb_table_set_max(s->memo, (size_t)s->cfg.max_cached_calls, free_memo);
}

void svc_script_free(struct udfb_service *s)
{
	udfb_table_free(s->seen, free);
	udfb_table_free(s->workers, svc_worker_free);
	udfb_table_free(s->memo, free_memo);
	for (struct svc_retired *r = s->retired, *next; r; r = next) {
		next = r->next;
		free(r->tenant);
		free(r);
	}
}

static char *id_of(const char *tenant, const char *name)
{
	return udfb_asprintf("%s\n%s", tenant, name);
}

/* ---- the fingerprint of a script call ---- */

/* What decides the image except the imports' contents: tenant, variables'
 * scope, code, stub, packages. */
static void base_fingerprint(struct udfb_script_call *c)
{
	const struct udfb_script *sc = &c->script;
	struct udfb_sha256 *h = udfb_sha256_new();
	svc_fp_part(h, c->tenant, strlen(c->tenant));
	svc_fp_part(h, "\x03script", 8);
	svc_fp_part(h, c->env_scope ? c->env_scope : "", c->env_scope ? strlen(c->env_scope) : 0);
	svc_fp_part(h, sc->code, sc->code_len);
	svc_fp_part(h, sc->stub, sc->stub_len);
	for (size_t k = 0; k < sc->n_packages; k++)
		svc_fp_part(h, sc->packages[k], strlen(sc->packages[k]));
	udfb_sha256_final(h, c->base);
}

/* The whole fingerprint: the base and every import's (location, content). */
static void fingerprint(char out[UDFB_DIGEST_LEN + 1], const char *base, char *const *locations, size_t n,
			char (*digests)[UDFB_DIGEST_LEN + 1])
{
	struct udfb_sha256 *h = udfb_sha256_new();
	svc_fp_part(h, base, strlen(base));
	for (size_t k = 0; k < n; k++) {
		svc_fp_part(h, locations[k], strlen(locations[k]));
		svc_fp_part(h, digests[k], strlen(digests[k]));
	}
	udfb_sha256_final(h, out);
}

/* The script's bytes with every "url" value of its imports line left out
 * (the signatures change on every query), with the tenant and the worker's
 * name: equal for two calls of one UDF, so the second needs no parse. */
static void quick_hash(char out[UDFB_DIGEST_LEN + 1], const char *tenant, const char *worker, const char *s, size_t len)
{
	struct udfb_sha256 *h = udfb_sha256_new();
	svc_fp_part(h, tenant, strlen(tenant));
	svc_fp_part(h, worker ? worker : "", worker ? strlen(worker) + 1 : 0);
	static const char open[] = "\ncat <<'UDF_IMPORTS";
	const char *p = memmem(s, len, open, sizeof(open) - 1), *e = s + len;
	const char *line = p ? memchr(p + 1, '\n', (size_t)(e - p - 1)) : NULL;
	const char *end = line ? memchr(line + 1, '\n', (size_t)(e - line - 1)) : NULL;
	if (!end) {
		udfb_sha256_update(h, s, len);
		udfb_sha256_final(h, out);
		return;
	}
	const char *q = line + 1;
	udfb_sha256_update(h, s, (size_t)(q - s));
	for (;;) {
		const char *u = memmem(q, (size_t)(end - q), "\"url\":\"", 7);
		if (!u)
			break;
		udfb_sha256_update(h, q, (size_t)(u + 7 - q));
		for (q = u + 7; q < end && *q != '"'; q++)
			if (*q == '\\' && q + 1 < end)
				q++;
	}
	udfb_sha256_update(h, q, (size_t)(e - q));
	udfb_sha256_final(h, out);
}

/* Digests of the imports validated within the window; 0 when one is not.  Lock held. */
static int known_imports(struct udfb_service *s, const char *tenant, char *const *locations, size_t n,
			 char (*digests)[UDFB_DIGEST_LEN + 1], int *fresh)
{
	long long now = udfb_now_ms();
	int all = 1;
	for (size_t k = 0; k < n; k++) {
		char *id = id_of(tenant, locations[k]);
		void **slot = udfb_table_slot(s->seen, id, 0);
		free(id);
		struct seen *v = slot ? *slot : NULL;
		fresh[k] = v && now - v->at_ms < s->cfg.fetch.revalidate_ms;
		if (fresh[k])
			memcpy(digests[k], v->digest, sizeof(digests[k]));
		all &= fresh[k];
	}
	return all;
}

/* ---- workers ---- */

static int key_used(struct udfb_service *s, const char *tenant, const char *key);

/* The worker's script now maps to key: from this answer on only its sandbox
 * is handed out; the one it replaces retires.  Lock held. */
static void worker_point(struct udfb_service *s, const char *tenant, const char *name, const char *key, json_t **out)
{
	struct svc_worker *w = svc_worker_get(s, tenant, name, 1);
	struct udfb_flight *f = udfb_flights_get(s->flights, tenant, key);
	int changed = strcmp(w->key, key) != 0;
	if (changed) {
		if (w->key[0]) {
			struct svc_retired *r = udfb_calloc(1, sizeof(*r));
			r->tenant = udfb_strdup(tenant);
			memcpy(r->key, w->key, sizeof(r->key));
			r->at_ms = udfb_now_ms();
			r->next = s->retired;
			s->retired = r;
			udfb_info("worker '%s' of tenant %s: now key %s (replaces %s, stopped once no call reached it "
				  "for %d s)",
				  name, tenant, key, w->key, RETIRE_IDLE_MS / 1000);
		}
		memcpy(w->key, key, sizeof(w->key));
		svc_now_text(w->updated_at);
	}
	/* Stored: its key (the sandbox SUSPEND stops) and image (what RESUME starts). */
	if (changed || (f && f->image && (!w->image || strcmp(w->image, f->image) != 0)))
		svc_worker_started(s, tenant, w);
	if (out)
		*out = svc_worker_json(w);
}

struct key_use {
	const char *prefix, *key;
	size_t plen;
	int used;
};

static void check_use(const char *id, void *val, void *ctx)
{
	struct key_use *u = ctx;
	const struct svc_worker *w = val;
	if (strncmp(id, u->prefix, u->plen) == 0 && id[u->plen] == '\n' && strcmp(w->key, u->key) == 0)
		u->used = 1;
}

static int key_used(struct udfb_service *s, const char *tenant, const char *key)
{
	struct key_use u = { tenant, key, strlen(tenant), 0 };
	udfb_table_each(s->workers, check_use, &u);
	return u.used;
}

/* Is a replaced sandbox no longer needed?  Where the backend says how long
 * a sandbox has been idle (no UDF call, no hand-out), once that reaches
 * RETIRE_IDLE_MS: a query handed its endpoint before the replacement still
 * calls it, however long it runs.  Elsewhere, RETIRE_GRACE_MS after the
 * replacement.  Called without the lock (the backend may ask the sandbox). */
static int retired_due(struct udfb_service *s, const struct svc_retired *r, long long now)
{
	long long age = now - r->at_ms;
	if (!s->sched.ops->idle_for)
		return age >= RETIRE_GRACE_MS;
	long long idle = s->sched.ops->idle_for(s->sched.impl, r->tenant, r->key);
	return idle >= RETIRE_IDLE_MS || (idle < 0 && age >= RETIRE_GRACE_MS);
}

static void retired_free(struct svc_retired *r)
{
	free(r->tenant);
	free(r);
}

void svc_script_sweep_retired(struct udfb_service *s)
{
	long long now = udfb_now_ms();
	pthread_mutex_lock(&s->mu);
	struct svc_retired *all = s->retired, *keep = NULL;
	s->retired = NULL;
	pthread_mutex_unlock(&s->mu);
	for (struct svc_retired *r = all, *next; r; r = next) {
		next = r->next;
		pthread_mutex_lock(&s->mu);
		int used = key_used(s, r->tenant, r->key); /* a worker points at it again */
		pthread_mutex_unlock(&s->mu);
		if (used) {
			retired_free(r);
			continue;
		}
		if (!retired_due(s, r, now)) {
			r->next = keep;
			keep = r;
			continue;
		}
		struct udfb_err err = UDFB_ERR_INIT;
		if (s->sched.ops->stop && s->sched.ops->stop(s->sched.impl, r->tenant, r->key, &err) < 0)
			udfb_warn("stopping the replaced sandbox of key %s: %s", r->key, err.msg);
		else
			udfb_info("stopped the replaced sandbox of key %s (tenant %s): no call for %d s", r->key,
				  r->tenant, RETIRE_IDLE_MS / 1000);
		udfb_err_clear(&err);
		retired_free(r);
	}
	pthread_mutex_lock(&s->mu); /* back in front of those retired meanwhile */
	struct svc_retired **tail = &keep;
	while (*tail)
		tail = &(*tail)->next;
	*tail = s->retired;
	s->retired = keep;
	pthread_mutex_unlock(&s->mu);
}

/* ---- one call ---- */

void udfb_script_call_free(struct udfb_script_call *c)
{
	if (!c)
		return;
	udfb_script_free(&c->script);
	free(c->locations);
	free(c->tenant);
	free(c->query_id);
	free(c->worker);
	udfb_prepared_free(c->run);
	free(c);
}

const struct udfb_log_fields *udfb_script_call_fields(const struct udfb_script_call *c)
{
	return &c->fields;
}

/* Lock held.  base, locations: the script's, from the memo or the parse. */
static int answer_locked(struct udfb_service *s, struct udfb_script_call *c, const char *base, char *const *locations,
			 size_t n, struct udfb_apply_out *hit)
{
	char digests_one[1][UDFB_DIGEST_LEN + 1];
	int fresh_one[1];
	char(*digests)[UDFB_DIGEST_LEN + 1] = n <= 1 ? digests_one : udfb_calloc(n, sizeof(*digests));
	int *fresh = n <= 1 ? fresh_one : udfb_calloc(n, sizeof(int)), answered = 0;
	if (known_imports(s, c->tenant, locations, n, digests, fresh)) {
		char fp[UDFB_DIGEST_LEN + 1];
		fingerprint(fp, base, locations, n, digests);
		struct udfb_flight *a = udfb_flights_get(s->flights, FP_TENANT, fp);
		if (a && a->alias->state == UDFB_FLIGHT_READY && svc_sandbox_alive(s, a->alias)) {
			struct svc_worker *w = c->worker ? svc_worker_get(s, c->tenant, c->worker, 0) : NULL;
			/* if_not_exists = false on a worker with another script: the slow path says so. */
			if (!(w && !c->if_not_exists && w->key[0] && strcmp(w->key, a->alias->key))) {
				svc_fill_out(s, hit, a->alias);
				if (c->worker)
					worker_point(s, c->tenant, c->worker, a->alias->key, &hit->worker);
				answered = 1;
			}
		}
	}
	if (n > 1) {
		free(digests);
		free(fresh);
	}
	return answered;
}

/* A script seen before (same bytes but for its URLs): no parse at all. */
static int memo_answer(struct udfb_service *s, struct udfb_script_call *c, struct udfb_apply_out *hit)
{
	pthread_mutex_lock(&s->mu);
	void **slot = udfb_table_slot(s->memo, c->quick, 0);
	const struct memo *m = slot ? *slot : NULL;
	int answered = m && answer_locked(s, c, m->base, m->locations, m->n, hit);
	pthread_mutex_unlock(&s->mu);
	return answered;
}

static void memo_put(struct udfb_service *s, const struct udfb_script_call *c)
{
	struct memo *m = udfb_calloc(1, sizeof(*m));
	memcpy(m->base, c->base, sizeof(m->base));
	m->n = c->script.n_imports;
	m->locations = udfb_calloc(m->n + 1, sizeof(char *));
	for (size_t k = 0; k < m->n; k++)
		m->locations[k] = udfb_strdup(c->locations[k]);
	pthread_mutex_lock(&s->mu);
	void **slot = udfb_table_slot(s->memo, c->quick, 1);
	free_memo(*slot);
	*slot = m;
	pthread_mutex_unlock(&s->mu);
}

static int fast_answer(struct udfb_service *s, struct udfb_script_call *c, struct udfb_apply_out *hit)
{
	pthread_mutex_lock(&s->mu);
	int answered = answer_locked(s, c, c->base, c->locations, c->script.n_imports, hit);
	pthread_mutex_unlock(&s->mu);
	return answered;
}

/* script_mode = run, the script refused for its shape (err says why):
 * answered from a running sandbox (1), to be completed (0), refused (-1). */
static int run_begin(struct udfb_service *s, struct udfb_script_call *c, const struct udfb_call_meta *meta,
		     const char *script, size_t len, struct udfb_apply_out *hit, struct udfb_err *err)
{
	udfb_err_clear(err);
	if (svc_run_prepare(s, &c->run, c->tenant, c->worker, meta->query_id, script, len, err) < 0)
		return -1;
	c->fields = (struct udfb_log_fields){ c->tenant, c->run->query_id, NULL };
	pthread_mutex_lock(&s->mu);
	struct svc_worker *w = c->worker ? svc_worker_get(s, c->tenant, c->worker, 0) : NULL;
	int clash = w && !c->if_not_exists && w->key[0] && strcmp(w->key, c->run->key) != 0;
	pthread_mutex_unlock(&s->mu);
	if (clash || !udfb_service_lookup(s, c->run, hit))
		return 0; /* the slow path says ALREADY_EXISTS, or starts it */
	if (c->worker) {
		pthread_mutex_lock(&s->mu);
		worker_point(s, c->tenant, c->worker, c->run->key, &hit->worker);
		pthread_mutex_unlock(&s->mu);
	}
	return 1;
}

int udfb_service_script_begin(struct udfb_service *s, struct udfb_script_call **out, const struct udfb_call_meta *meta,
			      const struct udfb_worker_req *w, const char *script, size_t len,
			      struct udfb_apply_out *hit, struct udfb_err *err)
{
	*out = NULL;
	struct udfb_script_call *c = udfb_calloc(1, sizeof(*c));
	if (svc_tenant_of(s, meta, w ? w->tenant_id : NULL, &c->tenant, err) < 0 ||
	    (w && svc_worker_name_ok(w->name, err) < 0)) {
		udfb_script_call_free(c);
		return -1;
	}
	if (w && svc_worker_gate(s, c->tenant, w->name, err) < 0) {
		udfb_script_call_free(c);
		return -1;
	}
	if (w) {
		c->worker = udfb_strdup(w->name);
		c->if_not_exists = w->if_not_exists;
	}
	quick_hash(c->quick, c->tenant, c->worker, script, len);
	if (memo_answer(s, c, hit)) {
		udfb_metrics_cache(s->metrics, 1);
		udfb_script_call_free(c);
		return 1;
	}
	if (udfb_script_parse(&c->script, script, len, err) < 0) {
		int rc = c->script.shape && s->cfg.script_mode == UDFB_SCRIPT_RUN
				 ? run_begin(s, c, meta, script, len, hit, err)
				 : -1;
		if (rc == 0) {
			*out = c;
			return 0;
		}
		udfb_script_call_free(c);
		return rc;
	}
	c->query_id = meta->query_id ? udfb_strndup(meta->query_id, 128) : NULL;
	c->locations = udfb_calloc(c->script.n_imports + 1, sizeof(char *));
	for (size_t k = 0; k < c->script.n_imports; k++)
		c->locations[k] = c->script.imports[k].location;
	if (w) {
		/* The variables are the name's; the key already covers the
		 * handler's, so only a name whose variables differ from the
		 * handler's needs a key (and a sandbox) of its own.  Usually the
		 * name is the handler: the key is then the one prebuild computes. */
		if (udfb_config_env_for(&s->cfg, c->tenant, c->worker) !=
		    udfb_config_env_for(&s->cfg, c->tenant, c->script.handler))
			c->env_scope = c->worker;
	}
	c->fields = (struct udfb_log_fields){ c->tenant, c->query_id, NULL };
	base_fingerprint(c);
	memo_put(s, c);
	if (fast_answer(s, c, hit)) {
		udfb_metrics_cache(s->metrics, 1);
		udfb_script_call_free(c);
		return 1;
	}
	*out = c;
	return 0;
}

/* Validate what the window does not cover: probes, downloads, the table. */
static int identify(struct udfb_service *s, struct udfb_script_call *c, char (*digests)[UDFB_DIGEST_LEN + 1],
		    long long deadline_ms, const atomic_int *gone, struct udfb_err *err)
{
	size_t n = c->script.n_imports;
	int *fresh = udfb_calloc(n + 1, sizeof(int));
	pthread_mutex_lock(&s->mu);
	known_imports(s, c->tenant, c->locations, n, digests, fresh);
	pthread_mutex_unlock(&s->mu);
	struct udfb_import_ident *ids = udfb_calloc(n + 1, sizeof(*ids));
	size_t m = 0;
	for (size_t k = 0; k < n; k++)
		if (!fresh[k])
			ids[m++] =
				(struct udfb_import_ident){ .location = c->script.imports[k].location,
							    .url = c->script.imports[k].url,
							    .headers =
								    (const char *const *)c->script.imports[k].headers };
	int rc = 0;
	if (m) {
		struct udfb_store *st = NULL;
		struct udfb_import_ident_stats stats = { 0 };
		struct udfb_fetch_opts fo = s->cfg.fetch; /* a view: the guard stays the config's */
		fo.cancel = gone; /* a cancelled call stops its downloads */
		rc = udfb_store_open(&st, s->cfg.store, err);
		if (rc == 0)
			rc = udfb_imports_identify(ids, m, st, c->tenant, &fo, deadline_ms, &stats, err);
		udfb_store_close(st);
		udfb_metrics_import_requests(s->metrics, stats.requests);
		udfb_metrics_bytes_fetched(s->metrics, stats.fetched_bytes);
		long long now = udfb_now_ms();
		pthread_mutex_lock(&s->mu);
		for (size_t k = 0, j = 0; rc == 0 && k < n; k++) {
			if (fresh[k])
				continue;
			memcpy(digests[k], ids[j].digest, sizeof(digests[k]));
			char *id = id_of(c->tenant, ids[j].location);
			void **slot = udfb_table_slot(s->seen, id, 1);
			free(id);
			if (!*slot)
				*slot = udfb_calloc(1, sizeof(struct seen));
			struct seen *v = *slot;
			memcpy(v->digest, ids[j].digest, sizeof(v->digest));
			v->at_ms = now;
			j++;
		}
		pthread_mutex_unlock(&s->mu);
	}
	free(ids);
	free(fresh);
	return rc;
}

/* The request the native build takes: the script's parts, each import
 * tagged by its content digest, Databend's stub. */
static struct udfb_prepared *make_prepared(struct udfb_service *s, struct udfb_script_call *c,
					   char (*digests)[UDFB_DIGEST_LEN + 1], struct udfb_err *err)
{
	size_t n = c->script.n_imports, len = 0;
	struct udfb_import *ims = udfb_calloc(n + 1, sizeof(*ims));
	for (size_t k = 0; k < n; k++)
		ims[k] = (struct udfb_import){ c->script.imports[k].location, c->script.imports[k].url, digests[k],
					       c->script.imports[k].headers };
	char *spec = udfb_script_spec_json(&c->script, &len);
	struct udfb_prepared *p = udfb_calloc(1, sizeof(*p));
	int rc = udfb_request_from_parts(&p->req, spec, len, ims, n, err);
	free(spec);
	free(ims);
	if (rc < 0) {
		free(p);
		return NULL;
	}
	p->req.stub = udfb_malloc(c->script.stub_len + 1);
	memcpy(p->req.stub, c->script.stub, c->script.stub_len + 1);
	p->req.stub_len = c->script.stub_len;
	p->req.env_scope = c->env_scope ? udfb_strdup(c->env_scope) : NULL;
	p->tenant = udfb_strdup(c->tenant);
	p->query_id = c->query_id ? udfb_strdup(c->query_id) : NULL;
	p->worker = c->worker ? udfb_strdup(c->worker) : NULL;
	p->env_name = p->worker; /* NULL: the handler, as for ApplyUdfResource */
	fingerprint(p->fingerprint, c->base, c->locations, n, digests);
	if (svc_prepare_key(s, p, err) < 0) {
		udfb_prepared_free(p);
		return NULL;
	}
	return p;
}

static int exists_elsewhere(struct udfb_service *s, const struct udfb_script_call *c, const char *key,
			    struct udfb_err *err)
{
	if (!c->worker || c->if_not_exists)
		return 0;
	pthread_mutex_lock(&s->mu);
	struct svc_worker *w = svc_worker_get(s, c->tenant, c->worker, 0);
	int clash = w && w->key[0] && strcmp(w->key, key) != 0;
	pthread_mutex_unlock(&s->mu);
	return clash ? udfb_err_set(err, UDFB_E_EXISTS,
				    "worker '%s': exists with another script (if_not_exists is false)", c->worker)
		     : 0;
}

int udfb_service_script_complete(struct udfb_service *s, struct udfb_script_call *c, long long deadline_ms,
				 struct udfb_apply_out *out, struct udfb_err *err)
{
	return udfb_service_script_complete_until(s, c, deadline_ms, NULL, out, err);
}

int udfb_service_script_complete_until(struct udfb_service *s, struct udfb_script_call *c, long long deadline_ms,
				       const atomic_int *gone, struct udfb_apply_out *out, struct udfb_err *err)
{
	memset(out, 0, sizeof(*out));
	size_t n = c->script.n_imports;
	struct udfb_prepared *p = c->run;
	int looked_up = p != NULL; /* a script run as-is: run_begin asked already */
	c->run = NULL;
	int rc = 0;
	if (!p) {
		char(*digests)[UDFB_DIGEST_LEN + 1] = udfb_calloc(n + 1, sizeof(*digests));
		long long fetch_deadline = deadline_ms ? deadline_ms - s->cfg.deadline_margin_ms : 0;
		rc = identify(s, c, digests, fetch_deadline, gone, err);
		if (rc == 0 && !(p = make_prepared(s, c, digests, err)))
			rc = -1;
		free(digests);
	}
	char key[UDFB_DIGEST_LEN + 1] = "";
	if (p)
		memcpy(key, p->key, sizeof(key));
	c->fields.key = key[0] ? key : NULL;
	if (rc == 0)
		rc = exists_elsewhere(s, c, key, err);
	if (rc == 0 && !looked_up && udfb_service_lookup(s, p, out))
		udfb_prepared_free(p);
	else if (rc == 0)
		rc = udfb_service_complete_until(s, p, deadline_ms, gone, out, err); /* consumes p */
	else
		udfb_prepared_free(p);
	if (rc == 0 && c->worker && !out->accepted) {
		pthread_mutex_lock(&s->mu);
		worker_point(s, c->tenant, c->worker, key, &out->worker);
		pthread_mutex_unlock(&s->mu);
	} else if (rc == 0 && c->worker) {
		pthread_mutex_lock(&s->mu);
		out->worker = svc_worker_json(svc_worker_get(s, c->tenant, c->worker, 1));
		pthread_mutex_unlock(&s->mu);
	}
	c->fields.key = NULL;
	udfb_script_call_free(c);
	return rc;
}
