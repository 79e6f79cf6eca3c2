/* The worker registry: Databend's WORKER statements (CREATE, ALTER with
 * tags, options, SUSPEND and RESUME, DROP, SHOW) and what they do to the
 * worker's sandbox.  See docs/service.md ("Workers").
 *
 * A worker is (tenant, name): tags, options, a state (active, suspended),
 * created_at/updated_at, and the key of the sandbox its UDF's script maps to
 * (script_call.c points it).  Records live in memory under the service's
 * lock and in the store, one file per tenant (workers/<sha256 of the
 * tenant>.json) replaced atomically on every change (temp file, fsync,
 * rename): a kill -9 mid-ALTER leaves the old or the new file, never a torn
 * one, and a restarted service finds every worker as it was.  Where the
 * backend keeps a shared registry (Kubernetes: a ConfigMap per worker),
 * that is the record: changes are read-change-write there with the
 * record's revision, redone on a conflict, so replicas lose none.
 *
 * What a change does to sandboxes (stop on SUSPEND or DROP, start on
 * RESUME, restart on a new size) runs on one background thread in the order
 * the statements came, so a statement answers at once and a SUSPEND then
 * RESUME never overtake each other.  The same thread suspends workers idle
 * longer than their auto_suspend and keeps the worker and sandbox gauges of
 * /metrics current. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/fsutil.h"
#include "common/jsonout.h"
#include "common/log.h"
#include "service/metrics.h"
#include "common/clock.h"
#include "common/pool.h"
#include "service/service_internal.h"

#define HOUSEKEEPING_MS 1000
#define NAME_MAX_LEN 128
#define MAX_AUTO_SUSPEND_S (7 * 24 * 3600)
#define MAX_CLUSTER_COUNT 64

/* The built-in size table (configurable: "worker_sizes"). */
static const struct {
	const char *name;
	long cpu_millis, memory_mb;
} default_sizes[] = {
	{ "xsmall", 250, 256 },	 { "small", 500, 512 },	   { "medium", 1000, 1024 },
	{ "large", 2000, 2048 }, { "xlarge", 4000, 4096 },
};

static const char known_options[] = "size, auto_suspend, auto_resume, min_cluster_count, max_cluster_count";

/* ---- records ---- */

static char *id_of(const char *tenant, const char *name)
{
	return udfb_asprintf("%s\n%s", tenant, name);
}

void svc_now_text(char out[32])
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void svc_worker_free(void *v)
{
	struct svc_worker *w = v;
	if (!w)
		return;
	free(w->name);
	free(w->image);
	free(w->handler);
	free(w->version);
	json_decref(w->tags);
	json_decref(w->options);
	free(w);
}

struct svc_worker *svc_worker_get(struct udfb_service *s, const char *tenant, const char *name, int create)
{
	char *id = id_of(tenant, name);
	void **slot = udfb_table_slot(s->workers, id, create);
	free(id);
	if (!slot)
		return NULL;
	if (!*slot) {
		struct svc_worker *w = udfb_calloc(1, sizeof(*w));
		w->name = udfb_strdup(name);
		w->tags = json_object();
		w->options = json_object();
		svc_now_text(w->created_at);
		memcpy(w->updated_at, w->created_at, sizeof(w->updated_at));
		*slot = w;
		svc_count_add(s->worker_counts, tenant, 1);
	}
	return *slot;
}

/* Take the record of id ("tenant\nname") out of the table (lock held);
 * NULL when there is none.  The caller frees it or puts it back (keep). */
static struct svc_worker *forget(struct udfb_service *s, const char *id)
{
	void *v = NULL;
	if (!udfb_table_remove(s->workers, id, &v))
		return NULL;
	const char *nl = strchr(id, '\n');
	char *tenant = udfb_strndup(id, nl ? (size_t)(nl - id) : strlen(id));
	svc_count_add(s->worker_counts, tenant, -1);
	free(tenant);
	return v;
}

static void keep(struct udfb_service *s, const char *tenant, const char *id, struct svc_worker *w)
{
	*udfb_table_slot(s->workers, id, 1) = w;
	svc_count_add(s->worker_counts, tenant, 1);
}

/* Room for one more worker record of tenant (lock held).  Records are not
 * a cache (nothing may evict them), so a tenant naming ever new workers,
 * by CREATE WORKER or by UDF calls, is refused past max_tenant_workers
 * rather than growing the service's memory and store without end. */
static int worker_room(struct udfb_service *s, const char *tenant, const char *name, struct udfb_err *err)
{
	void **slot = udfb_table_slot(s->worker_counts, tenant, 0);
	long n = slot && *slot ? *(long *)*slot : 0;
	if (n < s->cfg.max_tenant_workers)
		return 0;
	udfb_metrics_worker_refused(s->metrics);
	return udfb_err_set(err, UDFB_E_EXHAUSTED,
			    "worker %.128s: tenant %.128s has %ld workers already (max_tenant_workers); drop one first",
			    name, tenant, n);
}

struct most {
	long max;
};

static void most_one(const char *id, void *val, void *ctx)
{
	(void)id;
	struct most *m = ctx;
	long n = *(const long *)val;
	if (n > m->max)
		m->max = n;
}

long svc_workers_max_per_tenant(struct udfb_service *s)
{
	struct most m = { 0 };
	udfb_table_each(s->worker_counts, most_one, &m);
	return m.max;
}

/* Every field is valid UTF-8 by now (the name and tags checked at the
 * edge or on load, the stamps ASCII): a failure is a bug, so it aborts. */
json_t *svc_worker_json(const struct svc_worker *w)
{
	return udfb_json_must(json_pack("{s:s,s:O,s:O,s:s,s:s}", "name", w->name, "tags", w->tags, "options",
					w->options, "created_at", w->created_at, "updated_at", w->updated_at));
}

static const char *opt(const struct svc_worker *w, const char *k)
{
	return json_string_value(json_object_get(w->options, k));
}

static int auto_resume(const struct svc_worker *w)
{
	const char *v = opt(w, "auto_resume");
	return v && strcasecmp(v, "true") == 0;
}

static long auto_suspend_s(const struct svc_worker *w)
{
	const char *v = opt(w, "auto_suspend");
	return v ? strtol(v, NULL, 10) : 0;
}

/* ---- the store: one file per tenant ---- */

static char *tenant_file(const struct udfb_service *s, const char *tenant)
{
	struct udfb_sha256 *h = udfb_sha256_new();
	udfb_sha256_update(h, tenant, strlen(tenant));
	char d[UDFB_DIGEST_LEN + 1];
	udfb_sha256_final(h, d);
	return udfb_asprintf("%s/workers/%s.json", s->cfg.store, udfb_digest_hex(d));
}

struct collect {
	const char *tenant;
	size_t tlen;
	json_t *out;
	long long counts[2];
};

static json_t *record_json(const struct svc_worker *w)
{
	json_t *j = svc_worker_json(w);
	json_object_set_new(j, "state", json_string(w->suspended ? "suspended" : "active"));
	json_object_set_new(j, "declared", json_boolean(w->declared));
	if (w->key[0])
		json_object_set_new(j, "key", json_string(w->key));
	if (w->image)
		json_object_set_new(j, "image", json_string(w->image));
	if (w->handler)
		json_object_set_new(j, "handler", json_string(w->handler));
	return j;
}

static void collect_one(const char *id, void *val, void *ctx)
{
	struct collect *c = ctx;
	const struct svc_worker *w = val;
	c->counts[w->suspended ? 1 : 0]++;
	if (!c->tenant || strncmp(id, c->tenant, c->tlen) != 0 || id[c->tlen] != '\n')
		return;
	json_array_append_new(c->out, record_json(w));
}

static void update_gauge(struct udfb_service *s, const long long counts[2])
{
	udfb_metrics_workers(s->metrics, s->sched.ops ? s->sched.ops->name : "none", counts[0], counts[1]);
}

/* Write the tenant's workers (lock held): the new file replaces the old
 * one in one rename.  No worker left: the file goes. */
int svc_workers_save(struct udfb_service *s, const char *tenant, struct udfb_err *err)
{
	struct collect c = { tenant, strlen(tenant), json_array(), { 0, 0 } };
	udfb_table_each(s->workers, collect_one, &c);
	update_gauge(s, c.counts);
	char *path = tenant_file(s, tenant);
	int rc = 0;
	if (json_array_size(c.out) == 0) {
		if (unlink(path) < 0 && errno != ENOENT)
			rc = udfb_err_sys(err, errno, "%s", path);
	} else {
		json_t *doc = json_pack("{s:i,s:s,s:O}", "version", 1, "tenant", tenant, "workers", c.out);
		char *text = doc ? json_dumps(doc, JSON_SORT_KEYS | JSON_INDENT(1)) : NULL;
		rc = text ? udfb_write_file_atomic(path, text, strlen(text), err)
			  : udfb_err_set(err, UDFB_E_INTERNAL, "cannot encode the records as JSON");
		free(text);
		json_decref(doc);
	}
	free(path);
	json_decref(c.out);
	return rc < 0 ? udfb_err_wrap(err, "worker registry of tenant %s", tenant) : 0;
}

/* Revisions of the shared registry (Kubernetes resourceVersions: opaque,
 * but etcd's revisions in practice): a is older than b when both are
 * numbers and a is the smaller.  Anything else is not known to be older. */
static int older(const char *a, const char *b)
{
	if (!a || !b || !*a || !*b || strspn(a, "0123456789") != strlen(a) || strspn(b, "0123456789") != strlen(b))
		return 0;
	size_t la = strlen(a), lb = strlen(b);
	return la != lb ? la < lb : strcmp(a, b) < 0;
}

/* A stamp as svc_now_text writes it (a file or another replica's record
 * may hold anything): "" otherwise. */
static void stamp_copy(char out[32], const char *v)
{
	out[0] = 0;
	if (v && strlen(v) < 32 && strspn(v, "0123456789-:TZ") == strlen(v))
		memcpy(out, v, strlen(v) + 1);
}

/* A record (lock held) from the store (version NULL) or the shared
 * registry: taken unless this replica holds a newer revision or, unless
 * mine (its own write just made), has a change on its way there. */
static void load_worker(struct udfb_service *s, const char *tenant, json_t *j, const char *version, int mine)
{
	const char *name = json_string_value(json_object_get(j, "name"));
	json_t *tags = json_object_get(j, "tags"), *options = json_object_get(j, "options");
	struct udfb_err bad = UDFB_ERR_INIT;
	if (!name || !json_is_object(tags) || !json_is_object(options) || svc_worker_name_ok(name, &bad) < 0) {
		udfb_err_clear(&bad);
		return;
	}
	struct svc_worker *w = svc_worker_get(s, tenant, name, 1);
	if ((w->pending && !mine) || older(version, w->version))
		return; /* this replica's change is on its way to the registry, or it knows a newer one */
	if (version) {
		free(w->version);
		w->version = udfb_strdup(version);
	}
	json_object_clear(w->tags);
	json_object_update(w->tags, tags);
	json_object_clear(w->options);
	json_object_update(w->options, options);
	stamp_copy(w->created_at, json_string_value(json_object_get(j, "created_at")));
	stamp_copy(w->updated_at, json_string_value(json_object_get(j, "updated_at")));
	const char *state = json_string_value(json_object_get(j, "state"));
	w->suspended = state && strcmp(state, "suspended") == 0;
	w->declared = json_is_true(json_object_get(j, "declared"));
	const char *key = json_string_value(json_object_get(j, "key"));
	if (key && udfb_digest_valid(key))
		snprintf(w->key, sizeof(w->key), "%s", key);
	const char *image = json_string_value(json_object_get(j, "image"));
	const char *handler = json_string_value(json_object_get(j, "handler"));
	free(w->image);
	free(w->handler);
	w->image = image ? udfb_strdup(image) : NULL;
	w->handler = handler ? udfb_strdup(handler) : NULL;
	w->key[0] = 0;
	if (key && udfb_digest_valid(key))
		snprintf(w->key, sizeof(w->key), "%s", key);
}

/* ---- the backend's shared registry (Kubernetes: ConfigMaps) ---- */

struct gone {
	const char *tenant;
	size_t tlen;
	json_t *seen; /* ids in the registry */
	json_t *drop; /* ids to forget */
};

static void find_gone(const char *id, void *val, void *ctx)
{
	struct gone *g = ctx;
	const struct svc_worker *w = val;
	if (g->tenant && (strncmp(id, g->tenant, g->tlen) != 0 || id[g->tlen] != '\n'))
		return;
	if (!w->pending && !json_object_get(g->seen, id))
		json_array_append_new(g->drop, json_string(id));
}

/* Take the registry's workers (of tenant, or all) as this replica's: what
 * another replica created, altered or dropped is seen here.  Records with a
 * change of this replica's on its way are left as they are. */
static int refresh(struct udfb_service *s, const char *tenant, struct udfb_err *err)
{
	const struct udfb_scheduler_ops *ops = s->sched.ops;
	if (!ops || !ops->registry_load)
		return 0;
	json_t *all = NULL;
	if (ops->registry_load(s->sched.impl, tenant, &all, err) < 0)
		return udfb_err_wrap(err, "worker registry");
	struct gone g = { tenant, tenant ? strlen(tenant) : 0, json_object(), json_array() };
	pthread_mutex_lock(&s->mu);
	size_t i;
	json_t *e;
	json_array_foreach(all, i, e) {
		const char *t = json_string_value(json_object_get(e, "tenant"));
		json_t *w = json_object_get(e, "worker");
		const char *name = json_string_value(json_object_get(w, "name"));
		struct udfb_err bad = UDFB_ERR_INIT;
		if (!t || !name || svc_worker_name_ok(name, &bad) < 0) {
			udfb_err_clear(&bad);
			continue;
		}
		load_worker(s, t, w, json_string_value(json_object_get(e, "version")), 0);
		char *id = id_of(t, name);
		json_object_set_new(g.seen, id, json_true());
		free(id);
	}
	udfb_table_each(s->workers, find_gone, &g);
	json_array_foreach(g.drop, i, e)
		svc_worker_free(forget(s, json_string_value(e)));
	pthread_mutex_unlock(&s->mu);
	json_decref(g.seen);
	json_decref(g.drop);
	json_decref(all);
	return 0;
}

/* ---- writes to the shared registry: optimistic, retried on conflict ----
 * Each write reads the record and its revision, changes it, and writes it
 * back only if no one wrote since (Kubernetes: the resourceVersion; a 409
 * means another replica came first).  Then it reads again and redoes its
 * change on what the other wrote, so concurrent ALTERs through several
 * replicas all survive.  This replica's own writers take turns (one
 * lock), so they do not spend their retries on each other. */

#define MAX_CONFLICTS 32

static pthread_mutex_t shared_mu = PTHREAD_MUTEX_INITIALIZER;

static int shared(const struct udfb_service *s)
{
	const struct udfb_scheduler_ops *ops = s->sched.ops;
	return ops && ops->registry_get && ops->registry_put;
}

/* Changes *rec, the registry's record (NULL: none; a copy it owns), in
 * place or by replacing it; *rec NULL afterwards: nothing to write. */
typedef int (*change_fn)(struct udfb_service *s, const char *name, json_t **rec, void *ctx, struct udfb_err *err);

/* On success *out is the record written (NULL: none) at *version. */
static int shared_change(struct udfb_service *s, const char *tenant, const char *name, change_fn fn, void *ctx,
			 json_t **out, char **version, struct udfb_err *err)
{
	const struct udfb_scheduler_ops *ops = s->sched.ops;
	*out = NULL;
	*version = NULL;
	int rc = 1;
	pthread_mutex_lock(&shared_mu);
	for (int attempt = 0; rc == 1 && attempt < MAX_CONFLICTS; attempt++) {
		json_t *rec = NULL;
		char *ver = NULL;
		if (ops->registry_get(s->sched.impl, tenant, name, &rec, &ver, err) < 0) {
			rc = udfb_err_wrap(err, "worker %s: the shared registry", name);
		} else if (fn(s, name, &rec, ctx, err) < 0) {
			rc = -1; /* the change's own answer: NOT_FOUND, EXISTS, INVALID */
		} else if (!rec) {
			rc = 0;
		} else {
			rc = ops->registry_put(s->sched.impl, tenant, rec, ver, version, err);
			if (rc < 0)
				udfb_err_wrap(err, "worker %s: the shared registry", name);
			else if (rc == 0)
				*out = json_incref(rec);
			else if (rc == 1)
				udfb_debug("worker '%s' of tenant %s: the shared registry changed under this write; "
					   "again",
					   name, tenant);
		}
		json_decref(rec);
		free(ver);
	}
	pthread_mutex_unlock(&shared_mu);
	if (rc == 1)
		return udfb_err_set(err, UDFB_E_UNAVAILABLE,
				    "worker %s: the shared registry changed under this change %d times; try again",
				    name, MAX_CONFLICTS);
	return rc;
}

/* A change made on a call's path, published later: delta's fields set on
 * the registry's record; full (the whole record) when there is none and
 * the change may create it (a UDF's first call). */
struct delta {
	json_t *full, *delta;
};

static int delta_change(struct udfb_service *s, const char *name, json_t **rec, void *ctx, struct udfb_err *err)
{
	(void)s, (void)name, (void)err;
	const struct delta *d = ctx;
	if (!*rec)
		*rec = d->full ? json_deep_copy(d->full) : NULL; /* dropped meanwhile: stays dropped */
	else
		json_object_update(*rec, d->delta);
	return 0;
}

/* Publish a change made on a call's path (lock not held); w->pending was
 * raised when it was queued. */
static int publish(struct udfb_service *s, const char *tenant, const char *name, struct delta *d, struct udfb_err *err)
{
	json_t *got = NULL;
	char *version = NULL;
	int rc = shared_change(s, tenant, name, delta_change, d, &got, &version, err);
	pthread_mutex_lock(&s->mu);
	struct svc_worker *w = svc_worker_get(s, tenant, name, 0);
	if (w && w->pending > 0)
		w->pending--;
	if (w && got && !w->pending)
		load_worker(s, tenant, got, version, 1);
	pthread_mutex_unlock(&s->mu);
	json_decref(got);
	free(version);
	return rc;
}

/* Every tenant's file; a file that does not parse is named and left alone. */
static int load_all(struct udfb_service *s, struct udfb_err *err)
{
	char *dir = udfb_asprintf("%s/workers", s->cfg.store);
	if (udfb_mkdir_p(dir, 0700, err) < 0) {
		free(dir);
		return -1;
	}
	DIR *d = opendir(dir);
	size_t n = 0;
	for (struct dirent *e; d && (e = readdir(d));) {
		size_t len = strlen(e->d_name);
		if (e->d_name[0] == '.' || len < 6 || strcmp(e->d_name + len - 5, ".json") != 0)
			continue; /* ".tmp-*": a write a crash interrupted; the old file stands */
		char *path = udfb_asprintf("%s/%s", dir, e->d_name);
		json_error_t jerr;
		json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
		const char *tenant = json_string_value(json_object_get(doc, "tenant"));
		json_t *ws = json_object_get(doc, "workers");
		if (!tenant || !udfb_tenant_valid(tenant) || !json_is_array(ws)) {
			udfb_warn("worker registry %s: not readable (%s); its workers are not served", path,
				  doc ? "no tenant or workers" : jerr.text);
		} else {
			size_t k;
			json_t *j;
			json_array_foreach(ws, k, j) {
				load_worker(s, tenant, j, NULL, 0);
				n++;
			}
		}
		json_decref(doc);
		free(path);
	}
	if (d)
		closedir(d);
	free(dir);
	if (n)
		udfb_info("worker registry: %zu workers from the store", n);
	return 0;
}

/* ---- options and sizes ---- */

static int sizes_setup(struct udfb_service *s, struct udfb_err *err)
{
	if (!s->cfg.worker_sizes) {
		s->sizes = json_object();
		for (size_t k = 0; k < sizeof(default_sizes) / sizeof(default_sizes[0]); k++)
			json_object_set_new(s->sizes, default_sizes[k].name,
					    udfb_json_must(json_pack(
						    "{s:I,s:I}", "cpu_millis", (json_int_t)default_sizes[k].cpu_millis,
						    "memory_mb", (json_int_t)default_sizes[k].memory_mb)));
		return 0;
	}
	const char *k;
	json_t *v;
	json_object_foreach(s->cfg.worker_sizes, k, v) {
		json_t *cpu = json_object_get(v, "cpu_millis"), *mem = json_object_get(v, "memory_mb");
		if (!json_is_object(v) || json_object_size(v) != 2 || !json_is_integer(cpu) || !json_is_integer(mem) ||
		    json_integer_value(cpu) <= 0 || json_integer_value(mem) <= 0)
			return udfb_err_set(err, UDFB_E_INVALID,
					    "worker_sizes.%s: must be {\"cpu_millis\": N, \"memory_mb\": N} with N > 0",
					    k);
	}
	if (json_object_size(s->cfg.worker_sizes) == 0)
		return udfb_err_set(err, UDFB_E_INVALID, "worker_sizes: names no size");
	s->sizes = json_incref(s->cfg.worker_sizes);
	return 0;
}

static void size_names(const struct udfb_service *s, char *out, size_t n)
{
	size_t at = 0;
	out[0] = 0;
	const char *k;
	json_t *v;
	json_object_foreach(s->sizes, k, v) {
		int w = snprintf(out + at, n - at, "%s%s", at ? ", " : "", k);
		if (w < 0 || (size_t)w >= n - at)
			break;
		at += (size_t)w;
	}
}

/* A whole decimal number in [lo, hi]. */
static int whole(const char *v, long lo, long hi, long *out)
{
	if (!*v || strlen(v) > 12)
		return 0;
	for (const char *p = v; *p; p++)
		if (!isdigit((unsigned char)*p))
			return 0;
	long x = strtol(v, NULL, 10);
	*out = x;
	return x >= lo && x <= hi;
}

/* The options a worker would have: each known, each value of its type. */
static int options_check(const struct udfb_service *s, json_t *opts, struct udfb_err *err)
{
	const char *k;
	json_t *jv;
	long min = 0, max = 0, x;
	json_object_foreach(opts, k, jv) {
		const char *v = json_string_value(jv);
		if (strcmp(k, "size") == 0) {
			if (!json_object_get(s->sizes, v)) {
				char names[512];
				size_names(s, names, sizeof(names));
				return udfb_err_set(err, UDFB_E_INVALID,
						    "options.size: '%.64s' is not a size (known: %s)", v, names);
			}
		} else if (strcmp(k, "auto_suspend") == 0) {
			if (!whole(v, 0, MAX_AUTO_SUSPEND_S, &x))
				return udfb_err_set(
					err, UDFB_E_INVALID,
					"options.auto_suspend: '%.64s' is not a number of seconds from 0 (never) to %d",
					v, MAX_AUTO_SUSPEND_S);
		} else if (strcmp(k, "auto_resume") == 0) {
			if (strcasecmp(v, "true") != 0 && strcasecmp(v, "false") != 0)
				return udfb_err_set(err, UDFB_E_INVALID,
						    "options.auto_resume: '%.64s' is not true or false", v);
		} else if (strcmp(k, "min_cluster_count") == 0 || strcmp(k, "max_cluster_count") == 0) {
			if (!whole(v, 1, MAX_CLUSTER_COUNT, &x))
				return udfb_err_set(err, UDFB_E_INVALID,
						    "options.%s: '%.64s' is not a whole number from 1 to %d", k, v,
						    MAX_CLUSTER_COUNT);
			*(k[1] == 'i' ? &min : &max) = x;
		} else {
			return udfb_err_set(err, UDFB_E_INVALID, "options.%.64s: unknown option (known: %s)", k,
					    known_options);
		}
	}
	if (min && max && min > max)
		return udfb_err_set(err, UDFB_E_INVALID,
				    "options: min_cluster_count %ld is above max_cluster_count %ld", min, max);
	return 0;
}

void svc_worker_size(struct udfb_service *s, const char *tenant, const char *name, struct udfb_sandbox_req *req)
{
	pthread_mutex_lock(&s->mu);
	struct svc_worker *w = svc_worker_get(s, tenant, name, 0);
	json_t *size = w && opt(w, "size") ? json_object_get(s->sizes, opt(w, "size")) : NULL;
	if (size) {
		req->memory_bytes = (long long)json_integer_value(json_object_get(size, "memory_mb")) << 20;
		req->cpu_millis = (long)json_integer_value(json_object_get(size, "cpu_millis"));
	}
	if (w && opt(w, "min_cluster_count"))
		req->replicas = (int)strtol(opt(w, "min_cluster_count"), NULL, 10);
	if (w && opt(w, "max_cluster_count"))
		req->max_replicas = (int)strtol(opt(w, "max_cluster_count"), NULL, 10);
	pthread_mutex_unlock(&s->mu);
}

/* ---- who is calling, what is named ---- */

int svc_tenant_of(struct udfb_service *s, const struct udfb_call_meta *meta, const char *tenant_id, char **out,
		  struct udfb_err *err)
{
	const char *t = meta->tenant ? meta->tenant : tenant_id && *tenant_id ? tenant_id : s->cfg.default_tenant;
	if (!t)
		return udfb_err_set(err, UDFB_E_INVALID,
				    "metadata x-databend-tenant: missing (and no default tenant is configured)");
	if (!udfb_tenant_valid(t))
		return udfb_err_set(err, UDFB_E_INVALID,
				    "metadata x-databend-tenant: must be 1 to 128 visible ASCII characters");
	if (tenant_id && *tenant_id && strcmp(tenant_id, t) != 0)
		return udfb_err_set(err, UDFB_E_DENIED,
				    "tenant_id '%.128s' is not the calling tenant '%s' (x-databend-tenant)", tenant_id,
				    t);
	*out = udfb_strdup(t);
	return 0;
}

/* Databend's identifiers: a worker is named after a UDF or by CREATE
 * WORKER.  Letters, digits, '_', '-', '.', '$', and non-ASCII UTF-8 (quoted
 * identifiers); no spaces, quotes, slashes or control characters. */
int svc_worker_name_ok(const char *name, struct udfb_err *err)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n > NAME_MAX_LEN)
		return udfb_err_set(err, UDFB_E_INVALID, "name: must be 1 to %d bytes (got %zu)", NAME_MAX_LEN, n);
	json_t *utf8 = json_string(name);
	json_decref(utf8);
	if (!utf8)
		return udfb_err_set(err, UDFB_E_INVALID, "name: not UTF-8");
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (*p < 0x80 && !isalnum(*p) && !strchr("_-.$", *p))
			return udfb_err_set(err, UDFB_E_INVALID,
					    "name '%.128s': character %zu is not a letter, digit, '_', '-', '.' or '$'",
					    name, (size_t)(p - (const unsigned char *)name) + 1);
	return 0;
}

static int kv_ok(const struct udfb_kv *kv, size_t n, const char *what, struct udfb_err *err)
{
	if (n > 64)
		return udfb_err_set(err, UDFB_E_INVALID, "%s: more than 64", what);
	for (size_t k = 0; k < n; k++) {
		json_t *a = json_string(kv[k].key), *b = json_string(kv[k].value);
		int ok = a && b && *kv[k].key && strlen(kv[k].key) <= 256 && strlen(kv[k].value) <= 4096;
		json_decref(a);
		json_decref(b);
		if (!ok)
			return udfb_err_set(err, UDFB_E_INVALID,
					    "%s: a key is empty, or a key or value is too long or not UTF-8", what);
	}
	return 0;
}

/* Databend lower-cases option names; ALTER's are taken the same way. */
static void set_all(json_t *obj, const struct udfb_kv *kv, size_t n, int lower)
{
	for (size_t k = 0; k < n; k++) {
		char *key = udfb_strdup(kv[k].key);
		for (char *p = key; lower && *p; p++)
			*p = (char)tolower((unsigned char)*p);
		json_object_set_new(obj, key, json_string(kv[k].value));
		free(key);
	}
}

/* ---- what a change does to the sandbox: one thread, in order ---- */

enum effect_kind { FX_STOP, FX_SUSPEND, FX_START, FX_HOLD, FX_PUBLISH };

struct effect {
	struct udfb_service *s;
	enum effect_kind kind;
	char *tenant, *name, *image, *handler;
	char key[UDFB_DIGEST_LEN + 1];
	int held;
	struct delta publish; /* FX_PUBLISH */
};

struct key_use {
	const char *prefix, *key, *except;
	size_t plen;
	int used;
};

static void check_use(const char *id, void *val, void *ctx)
{
	struct key_use *u = ctx;
	const struct svc_worker *w = val;
	if (strncmp(id, u->prefix, u->plen) == 0 && id[u->plen] == '\n' && !w->suspended &&
	    strcmp(w->key, u->key) == 0 && (!u->except || strcmp(id + u->plen + 1, u->except) != 0))
		u->used = 1;
}

/* An active worker of the tenant other than `except` maps to key.  Lock held. */
int svc_key_used_active(struct udfb_service *s, const char *tenant, const char *key, const char *except)
{
	struct key_use u = { tenant, key, except, strlen(tenant), 0 };
	udfb_table_each(s->workers, check_use, &u);
	return u.used;
}

static void run_effect(void *arg)
{
	struct effect *e = arg;
	struct udfb_service *s = e->s;
	const struct udfb_scheduler_ops *ops = s->sched.ops;
	struct udfb_err err = UDFB_ERR_INIT;
	if (e->kind == FX_PUBLISH) {
		if (publish(s, e->tenant, e->name, &e->publish, &err) < 0)
			udfb_warn("%s", err.msg);
		json_decref(e->publish.full);
		json_decref(e->publish.delta);
	} else if (e->kind == FX_HOLD) {
		if (ops->hold)
			ops->hold(s->sched.impl, e->tenant, e->key, e->held);
	} else if (e->kind == FX_SUSPEND && ops->suspend) {
		if (ops->suspend(s->sched.impl, e->tenant, e->key, &err) < 0)
			udfb_warn("worker '%s' of tenant %s: suspending its sandbox: %s", e->name, e->tenant, err.msg);
		else
			udfb_info("worker '%s' of tenant %s: sandbox of key %s suspended", e->name, e->tenant, e->key);
	} else if (e->kind == FX_STOP || e->kind == FX_SUSPEND) {
		if (ops->stop && ops->stop(s->sched.impl, e->tenant, e->key, &err) < 0)
			udfb_warn("worker '%s' of tenant %s: stopping its sandbox: %s", e->name, e->tenant, err.msg);
		else
			udfb_info("worker '%s' of tenant %s: sandbox of key %s stopped", e->name, e->tenant, e->key);
	} else {
		struct svc_sandbox_what w = { e->tenant, e->key, e->image, e->handler, e->name, e->name };
		struct udfb_sandbox sb = { 0 };
		if (svc_sandbox_start(s, &w, &sb, &err) < 0)
			udfb_warn("worker '%s' of tenant %s: starting its sandbox: %s", e->name, e->tenant, err.msg);
		else
			udfb_info("worker '%s' of tenant %s: sandbox of key %s at %s", e->name, e->tenant, e->key,
				  sb.endpoint);
		udfb_sandbox_clear(&sb);
	}
	udfb_err_clear(&err);
	free(e->tenant);
	free(e->name);
	free(e->image);
	free(e->handler);
	free(e);
}

/* Queue an effect for the worker w (lock held). */
static void effect(struct udfb_service *s, enum effect_kind kind, const char *tenant, const struct svc_worker *w,
		   int held)
{
	if (!w->key[0])
		return;
	const char *image = w->image, *handler = w->handler;
	if (kind == FX_START && !image) {
		/* Pointed in accepted mode before its image was known: the flight knows it now. */
		struct udfb_flight *f = udfb_flights_get(s->flights, tenant, w->key);
		image = f ? f->image : NULL;
		handler = f ? f->handler : NULL;
	}
	if (kind == FX_START && (!image || !handler))
		return; /* never started: the next UDF call starts it */
	struct effect *e = udfb_calloc(1, sizeof(*e));
	*e = (struct effect){ .s = s,
			      .kind = kind,
			      .tenant = udfb_strdup(tenant),
			      .name = udfb_strdup(w->name),
			      .image = image ? udfb_strdup(image) : NULL,
			      .handler = handler ? udfb_strdup(handler) : NULL,
			      .held = held };
	memcpy(e->key, w->key, sizeof(e->key));
	if (udfb_pool_submit(s->worker_fx, run_effect, e) < 0) {
		free(e->tenant);
		free(e->name);
		free(e->image);
		free(e->handler);
		free(e);
	}
}

/* Publish a change of w (lock held) on the effects thread: for changes
 * made on a call's path, which must not wait for the API.  delta (stolen):
 * the fields it changes; create: the record may be created from w. */
static void queue_publish(struct udfb_service *s, const char *tenant, struct svc_worker *w, json_t *delta, int create)
{
	if (!shared(s)) {
		json_decref(delta);
		return;
	}
	w->pending++;
	struct effect *e = udfb_calloc(1, sizeof(*e));
	*e = (struct effect){ .s = s,
			      .kind = FX_PUBLISH,
			      .tenant = udfb_strdup(tenant),
			      .name = udfb_strdup(w->name),
			      .publish = { create ? record_json(w) : NULL, delta } };
	if (udfb_pool_submit(s->worker_fx, run_effect, e) < 0) {
		w->pending--;
		json_decref(e->publish.full);
		json_decref(delta);
		free(e->tenant);
		free(e->name);
		free(e);
	}
}

/* {state, updated_at} of w: what SUSPEND or RESUME by a call changes. */
static json_t *state_delta(const struct svc_worker *w)
{
	return json_pack("{s:s,s:s}", "state", w->suspended ? "suspended" : "active", "updated_at", w->updated_at);
}

/* The worker now maps to key and its sandbox runs image (lock held):
 * recorded, and held from the idle reaper when auto_suspend governs it. */
void svc_worker_started(struct udfb_service *s, const char *tenant, struct svc_worker *w)
{
	struct udfb_flight *f = w->key[0] ? udfb_flights_get(s->flights, tenant, w->key) : NULL;
	if (f && f->image && (!w->image || strcmp(w->image, f->image) != 0)) {
		free(w->image);
		free(w->handler);
		w->image = udfb_strdup(f->image);
		w->handler = f->handler ? udfb_strdup(f->handler) : NULL;
	}
	struct udfb_err err = UDFB_ERR_INIT;
	if (svc_workers_save(s, tenant, &err) < 0)
		udfb_warn("%s", err.msg);
	udfb_err_clear(&err);
	if (auto_suspend_s(w) > 0)
		effect(s, FX_HOLD, tenant, w, 1);
	/* Only what the call knows: the tags and options a CREATE WORKER set
	 * (here or through another replica) stay as they are. */
	json_t *delta =
		udfb_json_must(json_pack("{s:s,s:s?,s:s?}", "key", w->key, "image", w->image, "handler", w->handler));
	queue_publish(s, tenant, w, delta, 1);
}

/* ---- a UDF call for a worker ---- */

int svc_worker_gate(struct udfb_service *s, const char *tenant, const char *name, struct udfb_err *err)
{
	pthread_mutex_lock(&s->mu);
	struct svc_worker *w = svc_worker_get(s, tenant, name, 0);
	int rc = 0;
	if (w && w->suspended && auto_resume(w)) {
		/* The sandbox is stopped: the call's slow path starts it again. */
		w->suspended = 0;
		svc_now_text(w->updated_at);
		udfb_info("worker '%s' of tenant %s: resumed by a call (auto_resume)", name, tenant);
		struct udfb_err e2 = UDFB_ERR_INIT;
		if (svc_workers_save(s, tenant, &e2) < 0)
			udfb_warn("%s", e2.msg);
		udfb_err_clear(&e2);
		queue_publish(s, tenant, w, state_delta(w), 0);
	} else if (w && w->suspended) {
		rc = udfb_err_set(err, UDFB_E_PRECONDITION,
				  "worker %s is suspended (ALTER WORKER %s RESUME, or SET auto_resume = 'true')", name,
				  name);
	} else if (!w) {
		rc = worker_room(s, tenant, name, err); /* the call would record a new worker */
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* ---- the WORKER statements ---- */

static int opt_changed(json_t *a, json_t *b, const char *k)
{
	const char *x = json_string_value(json_object_get(a, k)), *y = json_string_value(json_object_get(b, k));
	return (x == NULL) != (y == NULL) || (x && strcmp(x, y) != 0);
}

/* What a change of r's options or state (from old_opts, old_state) does to
 * its sandbox (lock held). */
static void change_effects(struct udfb_service *s, const char *tenant, struct svc_worker *r, json_t *old_opts,
			   int old_state)
{
	int resized = opt_changed(old_opts, r->options, "size") ||
		      opt_changed(old_opts, r->options, "min_cluster_count") ||
		      opt_changed(old_opts, r->options, "max_cluster_count");
	if (r->suspended && !old_state && !svc_key_used_active(s, tenant, r->key, r->name))
		effect(s, FX_SUSPEND, tenant, r, 0);
	else if (!r->suspended && (old_state || resized))
		effect(s, FX_START, tenant, r, 0); /* same ports: the same endpoint; a new size restarts it */
	if (opt_changed(old_opts, r->options, "auto_suspend"))
		effect(s, FX_HOLD, tenant, r, auto_suspend_s(r) > 0);
}

/* CREATE WORKER where the backend's shared registry is the record. */
struct create_ctx {
	const struct udfb_worker_req *w;
	json_t *opts;
	json_t *before; /* the record its UDF's call made first, if any */
	json_t *existing; /* declared already, and IF NOT EXISTS */
};

static int create_change(struct udfb_service *s, const char *name, json_t **rec, void *ctx, struct udfb_err *err)
{
	(void)s;
	struct create_ctx *c = ctx;
	json_decref(c->before);
	json_decref(c->existing);
	c->before = c->existing = NULL;
	if (*rec && json_is_true(json_object_get(*rec, "declared"))) {
		if (!c->w->if_not_exists)
			return udfb_err_set(err, UDFB_E_EXISTS, "worker %s: exists already", name);
		c->existing = *rec;
		*rec = NULL;
		return 0;
	}
	char now[32];
	svc_now_text(now);
	if (*rec)
		c->before = json_deep_copy(*rec);
	else
		*rec = udfb_json_must(json_pack("{s:s,s:{},s:{},s:s,s:s,s:s,s:b}", "name", name, "tags", "options",
						"created_at", now, "updated_at", now, "state", "active", "declared",
						0));
	json_t *tags = json_object();
	set_all(tags, c->w->tags, c->w->n_tags, 0);
	json_object_set_new(*rec, "tags", tags);
	if (!json_is_object(json_object_get(*rec, "options")))
		json_object_set_new(*rec, "options", json_object());
	json_object_update(json_object_get(*rec, "options"), c->opts);
	json_object_set_new(*rec, "declared", json_true());
	json_object_set_new(*rec, "updated_at", json_string(now));
	return 0;
}

static int create_shared(struct udfb_service *s, const char *tenant, const struct udfb_worker_req *w, json_t *opts,
			 json_t **worker, struct udfb_err *err)
{
	pthread_mutex_lock(&s->mu);
	int rc = svc_worker_get(s, tenant, w->name, 0) ? 0 : worker_room(s, tenant, w->name, err);
	pthread_mutex_unlock(&s->mu);
	if (rc < 0)
		return -1;
	struct create_ctx c = { w, opts, NULL, NULL };
	json_t *got = NULL;
	char *version = NULL;
	rc = shared_change(s, tenant, w->name, create_change, &c, &got, &version, err);
	if (rc == 0) {
		pthread_mutex_lock(&s->mu);
		load_worker(s, tenant, got ? got : c.existing, version, got != NULL);
		struct svc_worker *r = svc_worker_get(s, tenant, w->name, 1);
		struct udfb_err e2 = UDFB_ERR_INIT;
		if (got && svc_workers_save(s, tenant, &e2) < 0)
			udfb_warn("%s (the cluster has it)", e2.msg);
		udfb_err_clear(&e2);
		if (got && c.before && !r->suspended) {
			effect(s, FX_START, tenant, r, 0); /* its size now applies */
			effect(s, FX_HOLD, tenant, r, auto_suspend_s(r) > 0);
		}
		*worker = svc_worker_json(r);
		pthread_mutex_unlock(&s->mu);
	}
	json_decref(got);
	json_decref(c.before);
	json_decref(c.existing);
	free(version);
	return rc;
}

/* CREATE WORKER where the store is the record. */
static int create_local(struct udfb_service *s, const char *tenant, const struct udfb_worker_req *w, json_t *opts,
			json_t **worker, struct udfb_err *err)
{
	int rc = 0;
	pthread_mutex_lock(&s->mu);
	struct svc_worker *r = svc_worker_get(s, tenant, w->name, 0);
	if (r && r->declared && !w->if_not_exists) {
		rc = udfb_err_set(err, UDFB_E_EXISTS, "worker %s: exists already", w->name);
	} else if (!r && worker_room(s, tenant, w->name, err) < 0) {
		rc = -1;
	} else if (!r || !r->declared) {
		/* New, or made by its UDF's call first: CREATE WORKER gives it
		 * its tags and options (a UDF call never sets them). */
		int fresh = !r;
		r = svc_worker_get(s, tenant, w->name, 1);
		json_t *old_tags = json_deep_copy(r->tags), *old_opts = json_deep_copy(r->options);
		json_object_clear(r->tags);
		set_all(r->tags, w->tags, w->n_tags, 0);
		json_object_update(r->options, opts);
		r->declared = 1;
		svc_now_text(r->updated_at);
		rc = svc_workers_save(s, tenant, err);
		if (rc < 0 && fresh) {
			char *id = id_of(tenant, w->name);
			svc_worker_free(forget(s, id));
			free(id);
			r = NULL;
		} else if (rc < 0) {
			json_object_clear(r->tags);
			json_object_update(r->tags, old_tags);
			json_object_clear(r->options);
			json_object_update(r->options, old_opts);
			r->declared = 0;
		} else if (!fresh && !r->suspended) {
			effect(s, FX_START, tenant, r, 0); /* its size now applies */
			effect(s, FX_HOLD, tenant, r, auto_suspend_s(r) > 0);
		}
		json_decref(old_tags);
		json_decref(old_opts);
	}
	if (rc == 0)
		*worker = svc_worker_json(r);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int udfb_service_worker_create(struct udfb_service *s, const struct udfb_call_meta *meta,
			       const struct udfb_worker_req *w, json_t **worker, struct udfb_err *err)
{
	char *tenant = NULL;
	if (svc_tenant_of(s, meta, w->tenant_id, &tenant, err) < 0 || svc_worker_name_ok(w->name, err) < 0 ||
	    kv_ok(w->tags, w->n_tags, "tags", err) < 0 || kv_ok(w->options, w->n_options, "options", err) < 0) {
		free(tenant);
		return -1;
	}
	json_t *opts = json_object();
	set_all(opts, w->options, w->n_options, 1);
	int rc = options_check(s, opts, err);
	if (rc == 0)
		rc = shared(s) ? create_shared(s, tenant, w, opts, worker, err)
			       : create_local(s, tenant, w, opts, worker, err);
	json_decref(opts);
	free(tenant);
	return rc;
}

/* An ALTER's tag and option changes, on tags and opts. */
static void alter_fields(json_t *tags, json_t *opts, const struct udfb_worker_alter *a)
{
	set_all(tags, a->set_tags, a->n_set_tags, 0);
	set_all(opts, a->set_options, a->n_set_options, 1);
	for (size_t k = 0; k < a->n_unset_tags; k++)
		json_object_del(tags, a->unset_tags[k]);
	for (size_t k = 0; k < a->n_unset_options; k++) {
		char *key = udfb_strdup(a->unset_options[k]);
		for (char *p = key; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		json_object_del(opts, key);
		free(key);
	}
}

/* ALTER on copies: nothing changes unless the result is valid and stored. */
static int alter_locked(struct udfb_service *s, const char *tenant, struct svc_worker *r,
			const struct udfb_worker_alter *a, struct udfb_err *err)
{
	json_t *tags = json_deep_copy(r->tags), *opts = json_deep_copy(r->options);
	alter_fields(tags, opts, a);
	if (options_check(s, opts, err) < 0) {
		json_decref(tags);
		json_decref(opts);
		return -1;
	}
	json_t *old_tags = r->tags, *old_opts = r->options;
	int old_state = r->suspended;
	char old_updated[32];
	memcpy(old_updated, r->updated_at, sizeof(old_updated));
	r->tags = tags;
	r->options = opts;
	if (a->state_action == 1 || a->state_action == 2)
		r->suspended = a->state_action == 1;
	svc_now_text(r->updated_at);
	if (svc_workers_save(s, tenant, err) < 0) {
		r->tags = old_tags;
		r->options = old_opts;
		r->suspended = old_state;
		memcpy(r->updated_at, old_updated, sizeof(old_updated));
		json_decref(tags);
		json_decref(opts);
		return -1;
	}
	change_effects(s, tenant, r, old_opts, old_state);
	json_decref(old_tags);
	json_decref(old_opts);
	if (a->state_action)
		udfb_info("worker '%s' of tenant %s: %s", r->name, tenant, r->suspended ? "suspended" : "resumed");
	return 0;
}

/* ALTER where the backend's shared registry is the record: applied to the
 * registry's record, again on a newer one when another replica wrote
 * first; the effects follow from the record as the registry had it. */
struct alter_ctx {
	const struct udfb_worker_alter *a;
	json_t *before;
};

static int alter_change(struct udfb_service *s, const char *name, json_t **rec, void *ctx, struct udfb_err *err)
{
	struct alter_ctx *c = ctx;
	if (!*rec)
		return udfb_err_set(err, UDFB_E_NOTFOUND, "worker %s: does not exist", name);
	json_decref(c->before);
	c->before = json_deep_copy(*rec);
	if (!json_is_object(json_object_get(*rec, "tags")))
		json_object_set_new(*rec, "tags", json_object());
	if (!json_is_object(json_object_get(*rec, "options")))
		json_object_set_new(*rec, "options", json_object());
	json_t *opts = json_object_get(*rec, "options");
	alter_fields(json_object_get(*rec, "tags"), opts, c->a);
	if (options_check(s, opts, err) < 0)
		return -1;
	if (c->a->state_action == 1 || c->a->state_action == 2)
		json_object_set_new(*rec, "state", json_string(c->a->state_action == 1 ? "suspended" : "active"));
	char now[32];
	svc_now_text(now);
	json_object_set_new(*rec, "updated_at", json_string(now));
	return 0;
}

static int alter_shared(struct udfb_service *s, const char *tenant, const char *name, const struct udfb_worker_alter *a,
			json_t **worker, struct udfb_err *err)
{
	struct alter_ctx c = { a, NULL };
	json_t *got = NULL;
	char *version = NULL;
	int rc = shared_change(s, tenant, name, alter_change, &c, &got, &version, err);
	if (rc == 0 && got) {
		const char *st = json_string_value(json_object_get(c.before, "state"));
		pthread_mutex_lock(&s->mu);
		load_worker(s, tenant, got, version, 1);
		struct svc_worker *r = svc_worker_get(s, tenant, name, 1);
		struct udfb_err e2 = UDFB_ERR_INIT;
		if (svc_workers_save(s, tenant, &e2) < 0)
			udfb_warn("%s (the cluster has the change)", e2.msg);
		udfb_err_clear(&e2);
		change_effects(s, tenant, r, json_object_get(c.before, "options"), st && strcmp(st, "suspended") == 0);
		if (a->state_action)
			udfb_info("worker '%s' of tenant %s: %s", name, tenant, r->suspended ? "suspended" : "resumed");
		*worker = svc_worker_json(r);
		pthread_mutex_unlock(&s->mu);
	}
	json_decref(got);
	json_decref(c.before);
	free(version);
	return rc;
}

int udfb_service_worker_alter(struct udfb_service *s, const struct udfb_call_meta *meta, const char *tenant_id,
			      const char *name, const struct udfb_worker_alter *a, json_t **worker,
			      struct udfb_err *err)
{
	char *tenant = NULL;
	if (svc_tenant_of(s, meta, tenant_id, &tenant, err) < 0 || svc_worker_name_ok(name, err) < 0 ||
	    kv_ok(a->set_tags, a->n_set_tags, "set_tags", err) < 0 ||
	    kv_ok(a->set_options, a->n_set_options, "set_options", err) < 0) {
		free(tenant);
		return -1;
	}
	if (a->state_action < 0 || a->state_action > 2) {
		free(tenant);
		return udfb_err_set(err, UDFB_E_INVALID, "state_action: %d is not Unspecified, Suspend or Resume",
				    a->state_action);
	}
	if (shared(s)) {
		int rc = alter_shared(s, tenant, name, a, worker, err);
		free(tenant);
		return rc;
	}
	pthread_mutex_lock(&s->mu);
	struct svc_worker *r = svc_worker_get(s, tenant, name, 0);
	int rc = 0;
	if (!r)
		rc = udfb_err_set(err, UDFB_E_NOTFOUND, "worker %s: does not exist", name);
	else if ((rc = alter_locked(s, tenant, r, a, err)) == 0)
		*worker = svc_worker_json(r);
	pthread_mutex_unlock(&s->mu);
	free(tenant);
	return rc;
}

int udfb_service_worker_drop(struct udfb_service *s, const struct udfb_call_meta *meta, const char *tenant_id,
			     const char *name, int if_exists, struct udfb_err *err)
{
	char *tenant = NULL;
	if (svc_tenant_of(s, meta, tenant_id, &tenant, err) < 0 || svc_worker_name_ok(name, err) < 0) {
		free(tenant);
		return -1;
	}
	if (refresh(s, tenant, err) < 0) {
		free(tenant);
		return -1;
	}
	char *id = id_of(tenant, name);
	pthread_mutex_lock(&s->mu);
	struct svc_worker *r = forget(s, id);
	int found = r != NULL, rc = 0;
	if (found && (rc = svc_workers_save(s, tenant, err)) < 0) {
		keep(s, tenant, id, r); /* not stored: it stays */
		r = NULL;
	} else if (found && r->key[0] && !svc_key_used_active(s, tenant, r->key, NULL)) {
		/* Its sandbox goes now; the image stays in the store for gc. */
		effect(s, FX_STOP, tenant, r, 0);
	}
	pthread_mutex_unlock(&s->mu);
	if (found && rc == 0 && s->sched.ops->registry_del &&
	    s->sched.ops->registry_del(s->sched.impl, tenant, name, err) < 0)
		rc = udfb_err_wrap(err, "worker %s: the shared registry", name);
	if (found && rc == 0)
		udfb_info("worker '%s' of tenant %s: dropped", name, tenant);
	svc_worker_free(r);
	free(id);
	free(tenant);
	if (rc == 0 && !found && !if_exists)
		return udfb_err_set(err, UDFB_E_NOTFOUND, "worker %s: does not exist", name);
	return rc;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(json_string_value(json_object_get(*(json_t *const *)a, "name")),
		      json_string_value(json_object_get(*(json_t *const *)b, "name")));
}

int udfb_service_worker_list(struct udfb_service *s, const struct udfb_call_meta *meta, const char *tenant_id,
			     json_t **workers, struct udfb_err *err)
{
	char *tenant = NULL;
	if (svc_tenant_of(s, meta, tenant_id, &tenant, err) < 0)
		return -1;
	if (refresh(s, tenant, err) < 0) {
		free(tenant);
		return -1;
	}
	struct collect c = { tenant, strlen(tenant), json_array(), { 0, 0 } };
	pthread_mutex_lock(&s->mu);
	udfb_table_each(s->workers, collect_one, &c);
	pthread_mutex_unlock(&s->mu);
	/* Sorted by name, so SHOW WORKERS is stable; only Databend's fields. */
	size_t n = json_array_size(c.out);
	json_t **v = udfb_calloc(n + 1, sizeof(*v));
	for (size_t k = 0; k < n; k++) {
		v[k] = json_incref(json_array_get(c.out, k));
		const char *inner[] = { "state", "declared", "key", "image", "handler" };
		for (size_t i = 0; i < sizeof(inner) / sizeof(inner[0]); i++)
			json_object_del(v[k], inner[i]);
	}
	qsort(v, n, sizeof(*v), by_name);
	json_array_clear(c.out);
	for (size_t k = 0; k < n; k++)
		json_array_append_new(c.out, v[k]);
	free(v);
	*workers = c.out;
	free(tenant);
	return 0;
}

/* ---- housekeeping: auto_suspend, gauges ---- */

struct due {
	char *tenant, *name;
	char key[UDFB_DIGEST_LEN + 1];
	long secs;
	struct due *next;
};

static void find_due(const char *id, void *val, void *ctx)
{
	struct due **list = ctx;
	const struct svc_worker *w = val;
	long secs = auto_suspend_s(w);
	if (w->suspended || !w->key[0] || secs <= 0)
		return;
	struct due *d = udfb_calloc(1, sizeof(*d));
	const char *nl = strchr(id, '\n');
	d->tenant = udfb_strndup(id, (size_t)(nl - id));
	d->name = udfb_strdup(w->name);
	memcpy(d->key, w->key, sizeof(d->key));
	d->secs = secs;
	d->next = *list;
	*list = d;
}

static void auto_suspend_pass(struct udfb_service *s)
{
	const struct udfb_scheduler_ops *ops = s->sched.ops;
	if (!ops->idle_for)
		return;
	struct due *list = NULL;
	pthread_mutex_lock(&s->mu);
	udfb_table_each(s->workers, find_due, &list);
	pthread_mutex_unlock(&s->mu);
	for (struct due *d = list, *next; d; d = next) {
		next = d->next;
		long long idle = ops->idle_for(s->sched.impl, d->tenant, d->key);
		if (idle >= d->secs * 1000) {
			pthread_mutex_lock(&s->mu);
			struct svc_worker *w = svc_worker_get(s, d->tenant, d->name, 0);
			if (w && !w->suspended && strcmp(w->key, d->key) == 0) {
				struct udfb_worker_alter a = { .state_action = 1 };
				struct udfb_err err = UDFB_ERR_INIT;
				if (alter_locked(s, d->tenant, w, &a, &err) < 0)
					udfb_warn("worker '%s': auto_suspend: %s", d->name, err.msg);
				else {
					udfb_info("worker '%s' of tenant %s: idle for %lld s: suspended (auto_suspend "
						  "= %ld)",
						  d->name, d->tenant, idle / 1000, d->secs);
					queue_publish(s, d->tenant, w, state_delta(w), 0);
				}
				udfb_err_clear(&err);
			}
			pthread_mutex_unlock(&s->mu);
		}
		free(d->tenant);
		free(d->name);
		free(d);
	}
}

/* Sandboxes by state, as the backend reports them, onto the four gauges. */
static void sandbox_gauges(struct udfb_service *s)
{
	json_t *list = NULL;
	struct udfb_err err = UDFB_ERR_INIT;
	if (!s->sched.ops->list || s->sched.ops->list(s->sched.impl, &list, &err) < 0) {
		udfb_err_clear(&err);
		return;
	}
	long long n[4] = { 0, 0, 0, 0 }; /* starting, ready, failed, stopped */
	size_t k;
	json_t *j;
	json_array_foreach(list, k, j) {
		const char *st = json_string_value(json_object_get(j, "state"));
		if (!st)
			continue;
		if (strcmp(st, "starting") == 0 || strcmp(st, "new") == 0)
			n[0]++;
		else if (strcmp(st, "ready") == 0 || strcmp(st, "running") == 0)
			n[1]++;
		else if (strcmp(st, "failed") == 0 || strcmp(st, "exited") == 0)
			n[2]++;
		else
			n[3]++;
	}
	json_decref(list);
	static const char *const names[4] = { "starting", "ready", "failed", "stopped" };
	for (int i = 0; i < 4; i++)
		udfb_metrics_sandboxes(s->metrics, names[i], n[i]);
}

static void *housekeeping(void *arg)
{
	struct udfb_service *s = arg;
	pthread_mutex_lock(&s->wk_mu);
	while (!s->wk_stop) {
		pthread_mutex_unlock(&s->wk_mu);
		struct udfb_err err = UDFB_ERR_INIT;
		if (refresh(s, NULL, &err) < 0)
			udfb_warn("%s", err.msg);
		udfb_err_clear(&err);
		auto_suspend_pass(s);
		svc_script_sweep_retired(s);
		sandbox_gauges(s);
		struct collect c = { NULL, 0, NULL, { 0, 0 } };
		pthread_mutex_lock(&s->mu);
		udfb_table_each(s->workers, collect_one, &c);
		pthread_mutex_unlock(&s->mu);
		update_gauge(s, c.counts);
		pthread_mutex_lock(&s->wk_mu);
		struct timespec ts;
		udfb_abstime(&ts, CLOCK_REALTIME, HOUSEKEEPING_MS);
		if (!s->wk_stop)
			pthread_cond_timedwait(&s->wk_wake, &s->wk_mu, &ts);
	}
	pthread_mutex_unlock(&s->wk_mu);
	return NULL;
}

int svc_workers_start(struct udfb_service *s, struct udfb_err *err)
{
	if (sizes_setup(s, err) < 0 || load_all(s, err) < 0)
		return -1;
	s->worker_fx = udfb_pool_new(1, "worker");
	pthread_mutex_lock(&s->mu);
	struct collect c = { NULL, 0, NULL, { 0, 0 } };
	udfb_table_each(s->workers, collect_one, &c);
	pthread_mutex_unlock(&s->mu);
	update_gauge(s, c.counts);
	pthread_mutex_init(&s->wk_mu, NULL);
	pthread_cond_init(&s->wk_wake, NULL);
	s->wk_started = pthread_create(&s->wk_thread, NULL, housekeeping, s) == 0;
	return 0;
}

void svc_workers_stop(struct udfb_service *s)
{
	if (s->wk_started) {
		pthread_mutex_lock(&s->wk_mu);
		s->wk_stop = 1;
		pthread_cond_broadcast(&s->wk_wake);
		pthread_mutex_unlock(&s->wk_mu);
		pthread_join(s->wk_thread, NULL);
		s->wk_started = 0;
		pthread_mutex_destroy(&s->wk_mu);
		pthread_cond_destroy(&s->wk_wake);
	}
	udfb_pool_free(s->worker_fx); /* runs what is queued */
	s->worker_fx = NULL;
	json_decref(s->sizes);
	s->sizes = NULL;
}
