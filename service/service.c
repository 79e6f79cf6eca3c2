/* The ApplyUdfResource service core: see service.h and docs/service.md. */
#include "service/service.h"

#include <errno.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "builder/build.h"
#include "common/buf.h"
#include "service/flight.h"
#include "common/log.h"
#include "service/callq.h"
#include "service/runtime_base.h"
#include "common/clock.h"
#include "common/pool.h"
#include "registry-client/ref.h"
#include "scheduler/scheduler.h"
#include "cache/store.h"
#include "service/token.h"
#include "service/service_internal.h"

/* ---- start and stop ---- */

/* Say plainly when a base cannot serve UDFs: its sandboxes would fail to
 * start with an ImportError that nobody would see. */
static void check_runtime(const struct svc_base *b, const char *ref)
{
	static const char *const names[] = { "/databend_udf/__init__.py", "/databend_udf.py", NULL };
	struct udfb_err err = UDFB_ERR_INIT;
	int found = 0;
	if (udfb_base_has_file(&b->base, names, &found, &err) < 0) {
		udfb_debug("runtime %s: not checked for databend_udf: %s", b->runtime, err.msg);
		udfb_err_clear(&err);
	} else if (!found) {
		udfb_warn("runtime %s: base %s has no databend_udf module: images build, but their sandboxes cannot "
			  "serve UDFs (use the operator's runtime image: Python with databend-udf)",
			  b->runtime, ref);
	}
}

static int resolve_bases(struct udfb_service *s, struct udfb_err *err)
{
	s->bases = udfb_calloc(s->cfg.n_bases + 1, sizeof(*s->bases));
	for (size_t k = 0; k < s->cfg.n_bases; k++) {
		struct svc_base *b = &s->bases[s->n_bases];
		b->runtime = s->cfg.bases[k].runtime;
		/* With runtime_packages, the base plus those packages (runtime_base.c). */
		char *composed = NULL;
		if (udfb_runtime_compose(&composed, b->runtime, s->cfg.bases[k].ref, &s->cfg, err) < 0)
			return -1;
		const char *ref = composed ? composed : s->cfg.bases[k].ref;
		int rc = udfb_base_resolve(&b->base, ref, s->cfg.platform, NULL, err);
		if (rc == 0) {
			s->n_bases++;
			udfb_info("runtime %s: base %s is %s", b->runtime, ref, b->base.image.manifest_digest);
			check_runtime(b, ref);
		}
		free(composed);
		if (rc < 0)
			return udfb_err_wrap(err, "runtime %s", b->runtime);
	}
	return 0;
}

static void setup_secrets(struct udfb_service *s)
{
	if (s->cfg.n_token_secrets) {
		s->secrets = s->cfg.token_secrets;
		s->n_secrets = s->cfg.n_token_secrets;
		return;
	}
	/* Without a configured secret, tokens hold for this process only and
	 * replicas disagree: fine for one machine, wrong for a fleet. */
	unsigned char raw[32];
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		abort();
	char *hex = udfb_malloc(65);
	for (int k = 0; k < 32; k++)
		snprintf(hex + 2 * k, 3, "%02x", raw[k]);
	s->secrets = udfb_malloc(sizeof(char *));
	s->secrets[0] = hex;
	s->n_secrets = 1;
	udfb_warn("no token secret configured: a random one signs tokens until this process exits (set token_secrets "
		  "for replicas)");
}

static char *default_dest(const char *store)
{
	return udfb_asprintf("oci:%s/images", store);
}

/* At each scrape: the sizes of the tables max_cached_calls bounds. */
static void sample_tables(void *ctx)
{
	struct udfb_service *s = ctx;
	pthread_mutex_lock(&s->mu);
	udfb_metrics_table(s->metrics, UDFB_TABLE_FINGERPRINTS,
			   (long long)udfb_flights_size(s->flights, UDFB_FLIGHT_KIND_ALIAS),
			   udfb_flights_evicted(s->flights, UDFB_FLIGHT_KIND_ALIAS));
	udfb_metrics_table(s->metrics, UDFB_TABLE_FLIGHTS,
			   (long long)udfb_flights_size(s->flights, UDFB_FLIGHT_KIND_FLIGHT),
			   udfb_flights_evicted(s->flights, UDFB_FLIGHT_KIND_FLIGHT));
	udfb_metrics_table(s->metrics, UDFB_TABLE_IMPORTS, (long long)udfb_table_count(s->seen),
			   udfb_table_evicted(s->seen));
	udfb_metrics_table(s->metrics, UDFB_TABLE_SCRIPTS, (long long)udfb_table_count(s->memo),
			   udfb_table_evicted(s->memo));
	udfb_metrics_quota_levels(s->metrics, s->builds_pending, svc_workers_max_per_tenant(s));
	pthread_mutex_unlock(&s->mu);
}

int udfb_service_new(struct udfb_service **out, struct udfb_config *cfg, struct udfb_err *err)
{
	struct udfb_service *s = udfb_calloc(1, sizeof(*s));
	s->cfg = *cfg;
	memset(cfg, 0, sizeof(*cfg));
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->changed, &ca);
	pthread_condattr_destroy(&ca);
	s->flights = udfb_flights_new();
	udfb_flights_set_max(s->flights, (size_t)s->cfg.max_cached_calls);
	s->build_counts = udfb_table_new();
	s->worker_counts = udfb_table_new();
	svc_script_init(s);
	udfb_metrics_new(&s->metrics);
	udfb_metrics_set_sampler(s->metrics, sample_tables, s);
	if (!s->cfg.store)
		s->cfg.store = udfb_store_default_dir();
	s->dest = s->cfg.dest ? udfb_strdup(s->cfg.dest) : default_dest(s->cfg.store);
	setup_secrets(s);
	struct udfb_store *st = NULL;
	int rc = udfb_config_validate(&s->cfg, err);
	if (rc == 0 && (rc = udfb_store_open(&st, s->cfg.store, err)) == 0)
		udfb_store_close(st);
	if (rc == 0)
		rc = resolve_bases(s, err);
	if (rc == 0)
		rc = udfb_scheduler_new(&s->sched, &s->cfg, err);
	if (rc == 0)
		rc = svc_workers_start(s, err);
	if (rc < 0) {
		udfb_service_free(s);
		return -1;
	}
	s->build_q = udfb_callq_new(s->cfg.max_queued_builds);
	s->builds = udfb_pool_new(s->cfg.build_workers, "build");
	s->ready = 1;
	*out = s;
	return 0;
}

void udfb_service_free(struct udfb_service *s)
{
	if (!s)
		return;
	udfb_pool_free(s->builds); /* waits for running builds */
	udfb_callq_free(s->build_q); /* empty: every build had its turn */
	svc_workers_stop(s);
	if (s->sched.ops)
		s->sched.ops->destroy(s->sched.impl);
	for (size_t k = 0; k < s->n_bases; k++)
		udfb_base_free(&s->bases[k].base);
	free(s->bases);
	if (s->secrets != s->cfg.token_secrets) {
		free(s->secrets[0]);
		free(s->secrets);
	}
	udfb_flights_free(s->flights);
	svc_script_free(s);
	udfb_table_free(s->build_counts, free);
	udfb_table_free(s->worker_counts, free);
	udfb_metrics_free(s->metrics);
	free(s->dest);
	udfb_config_free(&s->cfg);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->changed);
	free(s);
}

int udfb_service_ready(struct udfb_service *s)
{
	return s->ready && s->sched.ops->ready(s->sched.impl);
}

struct udfb_metrics *udfb_service_metrics(struct udfb_service *s)
{
	return s->metrics;
}

const struct udfb_config *udfb_service_config(struct udfb_service *s)
{
	return &s->cfg;
}

void udfb_service_stop(struct udfb_service *s)
{
	pthread_mutex_lock(&s->mu);
	s->stopping = 1;
	s->ready = 0;
	pthread_cond_broadcast(&s->changed);
	pthread_mutex_unlock(&s->mu);
}

int udfb_service_builds_running(struct udfb_service *s)
{
	pthread_mutex_lock(&s->mu);
	int n = s->builds_running + (int)udfb_pool_queued(s->builds);
	pthread_mutex_unlock(&s->mu);
	return n;
}

/* ---- one call ---- */

/* A fresh token with every answer: it expires token_ttl_s from now. */
static char *mint_token(const struct udfb_service *s, const char *tenant, const char *key)
{
	char t[UDFB_TOKEN_MAX];
	udfb_token_mint(t, s->secrets[0], strlen(s->secrets[0]), tenant, key,
			(long long)time(NULL) + s->cfg.token_ttl_s);
	return udfb_strdup(t);
}

void svc_fill_out(const struct udfb_service *s, struct udfb_apply_out *out, const struct udfb_flight *f)
{
	out->endpoint = udfb_strdup(f->endpoint);
	out->token = mint_token(s, f->tenant, f->key);
	out->accepted = 0;
}

/* What decides a request's outcome, as bytes: length-prefixed so that no
 * two different requests share a fingerprint by shifting bytes around.  On
 * the path of every repeated call: one hash update per part, no formatting. */
void svc_fp_part(struct udfb_sha256 *h, const char *p, size_t n)
{
	uint64_t len = n;
	udfb_sha256_update(h, &len, sizeof(len));
	udfb_sha256_update(h, p, n);
}

static void fingerprint(char out[UDFB_DIGEST_LEN + 1], const char *tenant, const char *spec, size_t spec_len,
			const struct udfb_import *imports, size_t n_imports)
{
	struct udfb_sha256 *h = udfb_sha256_new();
	svc_fp_part(h, tenant, strlen(tenant));
	svc_fp_part(h, spec, spec_len);
	for (size_t k = 0; k < n_imports; k++) {
		const char *loc = imports[k].location ? imports[k].location : "",
			   *tag = imports[k].tag ? imports[k].tag : "";
		svc_fp_part(h, loc, strlen(loc));
		svc_fp_part(h, tag, strlen(tag));
	}
	udfb_sha256_final(h, out);
}

/* A ready flight whose sandbox the scheduler lost (it died, or was stopped
 * idle) goes back to NEW, so this call takes the slow path: the build is a
 * store hit and the scheduler's ensure() starts a new sandbox.  Lock held. */
int svc_sandbox_alive(struct udfb_service *s, struct udfb_flight *f)
{
	if (!s->sched.ops->alive || s->sched.ops->alive(s->sched.impl, f->tenant, f->key))
		return 1;
	free(f->endpoint);
	f->endpoint = NULL;
	f->state = UDFB_FLIGHT_NEW;
	return 0;
}

/* Called with the lock held, once the flight is ready. */
void svc_remember(struct udfb_service *s, const char *fp, struct udfb_flight *f)
{
	udfb_flights_alias(s->flights, FP_TENANT, fp, f);
}

int udfb_service_repeat(struct udfb_service *s, const struct udfb_call_meta *meta, const char *spec, size_t spec_len,
			const struct udfb_import *imports, size_t n_imports, struct udfb_apply_out *out)
{
	const char *tenant = meta->tenant ? meta->tenant : s->cfg.default_tenant;
	if (!tenant)
		return 0;
	char fp[UDFB_DIGEST_LEN + 1];
	fingerprint(fp, tenant, spec, spec_len, imports, n_imports);
	pthread_mutex_lock(&s->mu);
	struct udfb_flight *a = udfb_flights_get(s->flights, FP_TENANT, fp);
	int hit = a && a->alias->state == UDFB_FLIGHT_READY && svc_sandbox_alive(s, a->alias);
	if (hit)
		svc_fill_out(s, out, a->alias);
	pthread_mutex_unlock(&s->mu);
	if (hit)
		udfb_metrics_cache(s->metrics, 1);
	return hit;
}

static int supported_runtimes(struct udfb_service *s, const char *want, struct udfb_err *err)
{
	struct udfb_buf b;
	udfb_buf_init(&b, 4096);
	for (size_t k = 0; k < s->n_bases; k++)
		udfb_buf_printf(&b, "%s%s", k ? ", " : "", s->bases[k].runtime);
	udfb_err_set(err, UDFB_E_INVALID, "spec.runtime_version: '%s' is not supported here (supported: %s)", want,
		     b.len ? b.data : "none configured");
	udfb_buf_free(&b);
	return -1;
}

const struct svc_base *svc_base_for(struct udfb_service *s, const char *runtime_version)
{
	const struct udfb_runtime_base *rb = udfb_config_base_for(&s->cfg, runtime_version);
	for (size_t k = 0; rb && k < s->n_bases; k++)
		if (s->bases[k].runtime == rb->runtime)
			return &s->bases[k];
	return NULL;
}

int udfb_service_prepare(struct udfb_service *s, struct udfb_prepared **out, const struct udfb_call_meta *meta,
			 const char *spec, size_t spec_len, const struct udfb_import *imports, size_t n_imports,
			 struct udfb_err *err)
{
	const char *tenant = meta->tenant ? meta->tenant : s->cfg.default_tenant;
	if (!tenant)
		return udfb_err_set(err, UDFB_E_INVALID,
				    "metadata x-databend-tenant: missing (and no default tenant is configured)");
	if (!udfb_tenant_valid(tenant))
		return udfb_err_set(err, UDFB_E_INVALID,
				    "metadata x-databend-tenant: must be 1 to 128 visible ASCII characters");
	struct udfb_prepared *p = udfb_calloc(1, sizeof(*p));
	if (udfb_request_from_parts(&p->req, spec, spec_len, imports, n_imports, err) < 0) {
		free(p);
		return -1;
	}
	p->tenant = udfb_strdup(tenant);
	fingerprint(p->fingerprint, tenant, spec, spec_len, imports, n_imports);
	p->query_id = meta->query_id ? udfb_strndup(meta->query_id, 128) : NULL;
	if (svc_prepare_key(s, p, err) < 0) {
		udfb_prepared_free(p);
		return -1;
	}
	*out = p;
	return 0;
}

int svc_prepare_key(struct udfb_service *s, struct udfb_prepared *p, struct udfb_err *err)
{
	p->fields = (struct udfb_log_fields){ p->tenant, p->query_id, NULL };
	if (!(p->base = svc_base_for(s, p->req.spec.runtime_version)))
		return supported_runtimes(s, p->req.spec.runtime_version, err);
	struct udfb_build_opts o = {
		.salt = s->cfg.salt, .platform = s->cfg.platform, .tenant = p->tenant, .packages = &s->cfg.packages
	};
	if (udfb_build_key(p->key, &p->req, p->base->base.image.manifest_digest, &o, err) < 0)
		return -1;
	p->fields.key = p->key;
	return 0;
}

int udfb_service_lookup(struct udfb_service *s, const struct udfb_prepared *p, struct udfb_apply_out *out)
{
	pthread_mutex_lock(&s->mu);
	struct udfb_flight *f = udfb_flights_get(s->flights, p->tenant, p->key);
	int hit = f && f->state == UDFB_FLIGHT_READY && svc_sandbox_alive(s, f);
	if (hit) {
		svc_fill_out(s, out, f);
		svc_remember(s, p->fingerprint, f);
	}
	pthread_mutex_unlock(&s->mu);
	udfb_metrics_cache(s->metrics, hit);
	return hit;
}

const struct udfb_log_fields *udfb_prepared_fields(const struct udfb_prepared *p)
{
	return &p->fields;
}

void udfb_prepared_free(struct udfb_prepared *p)
{
	if (!p)
		return;
	udfb_request_free(&p->req);
	free(p->tenant);
	free(p->query_id);
	free(p->worker);
	free(p->run_script);
	free(p);
}

void udfb_apply_out_clear(struct udfb_apply_out *o)
{
	free(o->endpoint);
	free(o->token);
	json_decref(o->worker);
	memset(o, 0, sizeof(*o));
}

/* ---- builds ---- */

struct build_job {
	struct udfb_prepared *p;
};

/* A failed system call (a file gone under a concurrent gc: ENOENT is
 * NOTFOUND) may not fail again: only the request's own faults are. */
static int deterministic(const struct udfb_err *e)
{
	return !e->sys_errno && (e->cat == UDFB_E_INVALID || e->cat == UDFB_E_UNSUPPORTED || e->cat == UDFB_E_NOTFOUND);
}

/* The tenant scopes where an image is published: its tag names both. */
int svc_dest_for(char **out, struct udfb_service *s, const struct udfb_prepared *p, struct udfb_err *err)
{
	struct udfb_ref r;
	if (udfb_ref_parse(&r, s->dest, err) < 0)
		return udfb_err_wrap(err, "dest");
	char *label = udfb_tenant_label(p->tenant), *name = udfb_ref_name(&r);
	*out = udfb_asprintf("%s:%s-%.64s", name, label, udfb_digest_hex(p->key));
	free(label);
	free(name);
	udfb_ref_free(&r);
	return 0;
}

/* Every configured secret's sandbox key, so sandboxes accept tokens of old
 * and new during a rotation. */
static char *sandbox_keys(struct udfb_service *s, const char *tenant, const char *key)
{
	struct udfb_buf b;
	udfb_buf_init(&b, 1 << 16);
	for (size_t k = 0; k < s->n_secrets; k++) {
		char t[UDFB_SANDBOX_KEY_LEN + 1];
		udfb_token_sandbox_key(t, s->secrets[k], strlen(s->secrets[k]), tenant, key);
		udfb_buf_printf(&b, "%s%s", k ? "," : "", t);
	}
	return udfb_buf_steal(&b, NULL);
}

/* The hand-over to the scheduler: the reference a build reported (or a
 * worker's registry kept), parsed once here into its manifest digest and
 * the store holding its blobs on this machine (an OCI layout; a registry
 * image's are in the store the scheduler knows). */
static void image_for_scheduler(struct udfb_sandbox_req *req, struct udfb_ref *r, const char *image)
{
	struct udfb_err e = UDFB_ERR_INIT;
	if (!image || udfb_ref_parse(r, image, &e) < 0) {
		udfb_err_clear(&e); /* the scheduler says what it lacks */
		return;
	}
	req->manifest_digest = r->digest;
	req->store = r->kind == UDFB_REF_OCI ? udfb_image_store_oci(r->dir) : NULL;
}

int svc_sandbox_start(struct udfb_service *s, const struct svc_sandbox_what *w, struct udfb_sandbox *sb,
		      struct udfb_err *err)
{
	const struct udfb_udf_env *env =
		udfb_config_env_for(&s->cfg, w->tenant, w->env_name ? w->env_name : w->handler);
	char *keys = sandbox_keys(s, w->tenant, w->key);
	size_t n_env = (env ? env->n_vars : 0) + w->n_extra_env;
	struct udfb_env_var *vars = udfb_calloc(n_env + 1, sizeof(*vars));
	for (size_t k = 0; env && k < env->n_vars; k++)
		vars[k] = env->vars[k];
	for (size_t k = 0; k < w->n_extra_env; k++)
		vars[n_env - w->n_extra_env + k] = w->extra_env[k];
	struct udfb_sandbox_req req = { .tenant = w->tenant,
					.key = w->key,
					.image = w->image,
					.handler = w->handler,
					.auth_keys = keys,
					.env = vars,
					.n_env = n_env,
					.egress_to = w->egress_to,
					.n_egress_to = w->n_egress_to };
	if (w->worker)
		svc_worker_size(s, w->tenant, w->worker, &req);
	struct udfb_ref ref = { 0 };
	image_for_scheduler(&req, &ref, w->image);
	int rc = s->sched.ops->ensure(s->sched.impl, &req, sb, err);
	udfb_image_store_free(req.store);
	udfb_ref_free(&ref);
	free(keys);
	free(vars);
	return rc < 0 ? udfb_err_wrap(err, "scheduler %s", s->sched.ops->name) : 0;
}

static int start_sandbox(struct udfb_service *s, const struct udfb_prepared *p, const char *image,
			 struct udfb_sandbox *sb, struct udfb_err *err)
{
	struct svc_sandbox_what w = { p->tenant, p->key, image, p->req.spec.handler, p->env_name, p->worker };
	return svc_sandbox_start(s, &w, sb, err);
}

struct udfb_build_opts svc_build_opts(struct udfb_service *s, const struct udfb_prepared *p, const char *dest)
{
	return (struct udfb_build_opts){ .store_dir = s->cfg.store,
					 .base = p->base->runtime,
					 .dest = dest,
					 .salt = s->cfg.salt,
					 .platform = s->cfg.platform,
					 .tenant = p->tenant,
					 .base_resolved = &p->base->base,
					 .fetch = &s->cfg.fetch,
					 .packages = &s->cfg.packages };
}

static int build_and_start(struct udfb_service *s, const struct udfb_prepared *p, struct udfb_sandbox *sb, char **image,
			   struct udfb_err *err)
{
	if (p->run_script)
		return svc_run_build_and_start(s, p, sb, image, err);
	char *dest = NULL;
	if (svc_dest_for(&dest, s, p, err) < 0)
		return -1;
	struct udfb_build_opts o = svc_build_opts(s, p, dest);
	struct udfb_build_result r;
	int rc = udfb_build(&r, &p->req, &o, err);
	free(dest);
	if (rc < 0)
		return -1;
	udfb_logf(UDFB_LOG_INFO, &p->fields, "image %s (%s)", r.image, r.cached ? "cached" : "built");
	udfb_metrics_bytes_fetched(s->metrics, r.fetched_bytes);
	udfb_metrics_bytes_pushed(s->metrics, r.pushed_bytes);
	udfb_metrics_wheels_installed(s->metrics, r.package_installs);
	rc = start_sandbox(s, p, r.image, sb, err);
	*image = udfb_strdup(r.image);
	udfb_build_result_free(&r);
	return rc;
}

static void finish_flight(struct udfb_service *s, const struct udfb_prepared *p, struct udfb_sandbox *sb, char *image,
			  struct udfb_err *err, int rc)
{
	pthread_mutex_lock(&s->mu);
	struct udfb_flight *f = udfb_flights_get(s->flights, p->tenant, p->key);
	if (rc == 0) {
		f->state = UDFB_FLIGHT_READY;
		f->endpoint = sb->endpoint;
		sb->endpoint = NULL;
		free(f->image);
		free(f->handler);
		f->image = image;
		image = NULL;
		f->handler = udfb_strdup(p->req.spec.handler);
	} else {
		f->state = UDFB_FLIGHT_FAILED;
		f->failed_at_ms = udfb_now_ms();
		udfb_err_move(&f->err, err);
	}
	pthread_cond_broadcast(&s->changed);
	pthread_mutex_unlock(&s->mu);
	free(image);
}

/* A build worker's turn: the next build round-robin over the tenants
 * with builds queued (s->build_q), so one tenant's queue of builds delays
 * another tenant's by at most one build per worker, not by all of it.
 * start_flight queues the build and this turn under the lock, so a turn
 * always finds one. */
static void build_job(void *arg)
{
	struct udfb_service *s = arg;
	pthread_mutex_lock(&s->mu);
	struct build_job *j = udfb_callq_take(s->build_q);
	if (j)
		s->builds_running++;
	pthread_mutex_unlock(&s->mu);
	if (!j)
		return;
	long long t0 = udfb_now_ms();
	udfb_metrics_builds_in_flight(s->metrics, 1);
	struct udfb_err err = UDFB_ERR_INIT;
	struct udfb_sandbox sb = { 0 };
	char *image = NULL;
	int rc = build_and_start(s, j->p, &sb, &image, &err);
	double secs = (double)(udfb_now_ms() - t0) / 1000.0;
	if (rc < 0)
		udfb_logf(UDFB_LOG_WARN, &j->p->fields, "build failed after %.3f s: %s", secs, err.msg);
	else
		udfb_logf(UDFB_LOG_INFO, &j->p->fields, "ready after %.3f s at %s", secs, sb.endpoint);
	/* Counted before the outcome is published: whoever sees it sees the count. */
	udfb_metrics_build_done(s->metrics, secs, rc == 0);
	udfb_metrics_builds_in_flight(s->metrics, -1);
	finish_flight(s, j->p, &sb, image, &err, rc);
	pthread_mutex_lock(&s->mu);
	s->builds_running--;
	s->builds_pending--;
	svc_count_add(s->build_counts, j->p->tenant, -1);
	pthread_mutex_unlock(&s->mu);
	udfb_sandbox_clear(&sb);
	udfb_err_clear(&err);
	udfb_prepared_free(j->p);
	free(j);
}

/* ---- waiting for a flight ---- */

/* Room for one more build of tenant (lock held).  A build goes on when its
 * calls are cancelled or time out (a later call gets its image), so without
 * these caps a tenant could queue builds without end by sending distinct
 * requests and hanging up: at most max_queued_builds of one tenant and
 * max_queued_builds_total of all are queued or running. */
static int build_room(struct udfb_service *s, const char *tenant, struct udfb_err *err)
{
	void **slot = udfb_table_slot(s->build_counts, tenant, 0);
	long mine = slot && *slot ? *(long *)*slot : 0;
	if (mine >= s->cfg.max_queued_builds) {
		udfb_metrics_build_refused(s->metrics, 1);
		return udfb_err_set(err, UDFB_E_EXHAUSTED,
				    "tenant %.128s: %ld builds already queued or running (max_queued_builds); retry "
				    "later",
				    tenant, mine);
	}
	if (s->builds_pending >= s->cfg.max_queued_builds_total) {
		udfb_metrics_build_refused(s->metrics, 0);
		return udfb_err_set(err, UDFB_E_EXHAUSTED,
				    "%ld builds of all tenants already queued or running (max_queued_builds_total); "
				    "retry later",
				    s->builds_pending);
	}
	return 0;
}

/* Start a build for f unless one runs or a recent deterministic failure
 * stands.  Called with the lock held; takes ownership of *p when it starts. */
static int start_flight(struct udfb_service *s, struct udfb_flight *f, struct udfb_prepared **p, struct udfb_err *err)
{
	if (f->state == UDFB_FLIGHT_BUILDING || f->state == UDFB_FLIGHT_READY)
		return 0;
	if (f->state == UDFB_FLIGHT_FAILED && deterministic(&f->err) &&
	    udfb_now_ms() - f->failed_at_ms < s->cfg.failure_ttl_ms)
		return udfb_err_set(err, f->err.cat, "%s", f->err.msg);
	if (build_room(s, (*p)->tenant, err) < 0)
		return -1;
	udfb_err_clear(&f->err);
	f->state = UDFB_FLIGHT_BUILDING;
	f->started_at_ms = udfb_now_ms();
	struct build_job *j = udfb_malloc(sizeof(*j));
	j->p = *p;
	if (udfb_pool_submit(s->builds, build_job, s) < 0) {
		free(j);
		f->state = UDFB_FLIGHT_FAILED;
		f->failed_at_ms = udfb_now_ms();
		udfb_err_set(&f->err, UDFB_E_UNAVAILABLE, "the service is shutting down");
		return udfb_err_set(err, UDFB_E_UNAVAILABLE, "the service is shutting down");
	}
	/* Room was checked above: the queue's own cap (max_queued_builds)
	 * cannot refuse. */
	struct udfb_err never = UDFB_ERR_INIT;
	if (udfb_callq_put(s->build_q, j->p->tenant, j, &never) < 0)
		abort();
	s->builds_pending++;
	svc_count_add(s->build_counts, j->p->tenant, 1);
	*p = NULL;
	return 0;
}

static void wait_until(struct udfb_service *s, struct udfb_flight *f, long long until_ms, const atomic_int *gone)
{
	while (f->state == UDFB_FLIGHT_BUILDING && !s->stopping && !(gone && atomic_load(gone))) {
		long long now = udfb_now_ms();
		if (until_ms && now >= until_ms)
			return;
		long long wake = until_ms ? until_ms : now + 1000;
		struct timespec ts = { .tv_sec = wake / 1000, .tv_nsec = (wake % 1000) * 1000000 };
		pthread_cond_timedwait(&s->changed, &s->mu, &ts);
	}
}

/* The flight is still building at the deadline. */
static int not_yet(struct udfb_service *s, const struct udfb_flight *f, struct udfb_apply_out *out,
		   struct udfb_err *err)
{
	if (s->stopping)
		return udfb_err_set(err, UDFB_E_UNAVAILABLE, "the service is shutting down; retry on another replica");
	if (s->cfg.deadline_mode != UDFB_DEADLINE_ACCEPTED)
		return udfb_err_set(
			err, UDFB_E_DEADLINE,
			"image for key %s: still building when the call's deadline came; a later call gets it", f->key);
	if (s->sched.ops->predict(s->sched.impl, f->tenant, f->key, &out->endpoint, err) < 0)
		return -1;
	out->token = mint_token(s, f->tenant, f->key);
	out->accepted = 1;
	return 0;
}

void udfb_service_wake(struct udfb_service *s)
{
	pthread_mutex_lock(&s->mu);
	pthread_cond_broadcast(&s->changed);
	pthread_mutex_unlock(&s->mu);
}

int udfb_service_complete(struct udfb_service *s, struct udfb_prepared *p, long long deadline_ms,
			  struct udfb_apply_out *out, struct udfb_err *err)
{
	return udfb_service_complete_until(s, p, deadline_ms, NULL, out, err);
}

int udfb_service_complete_until(struct udfb_service *s, struct udfb_prepared *p, long long deadline_ms,
				const atomic_int *gone, struct udfb_apply_out *out, struct udfb_err *err)
{
	memset(out, 0, sizeof(*out));
	char fp[UDFB_DIGEST_LEN + 1];
	memcpy(fp, p->fingerprint, sizeof(fp));
	pthread_mutex_lock(&s->mu);
	struct udfb_flight *f = udfb_flights_get(s->flights, p->tenant, p->key);
	if (!f)
		f = udfb_flights_add(s->flights, p->tenant, p->key);
	int rc = start_flight(s, f, &p, err);
	if (rc == 0) {
		f->waiters++; /* the lock is released while it waits: f must stay */
		wait_until(s, f, deadline_ms ? deadline_ms - s->cfg.deadline_margin_ms : 0, gone);
		f->waiters--;
		if (f->state == UDFB_FLIGHT_BUILDING && gone && atomic_load(gone))
			rc = udfb_err_set(err, UDFB_E_DEADLINE,
					  "image for key %s: the call was cancelled; the build goes on", f->key);
		else if (f->state == UDFB_FLIGHT_READY) {
			svc_fill_out(s, out, f);
			svc_remember(s, fp, f);
		} else if (f->state == UDFB_FLIGHT_FAILED)
			rc = udfb_err_set(err, f->err.cat, "%s", f->err.msg);
		else
			rc = not_yet(s, f, out, err);
	}
	pthread_mutex_unlock(&s->mu);
	udfb_prepared_free(p);
	return rc;
}
