/* The `kubernetes` scheduler: see scheduler.h and docs/configuration.md
 * ("kubernetes scheduler").  Per tenant a Namespace udf-<label>; per (tenant,
 * key) a Deployment, a ClusterIP Service and a NetworkPolicy (and, for a
 * worker with max_cluster_count, a HorizontalPodAutoscaler), applied with
 * server-side apply over libcurl (k8s_api.c); the objects are built in
 * k8s_objects.c.  The worker registry is a ConfigMap per worker, written
 * with resourceVersion preconditions (optimistic concurrency).  What ran is kept in memory: list(), idleness and alive()
 * never call the API. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/hash.h"
#include "common/jsonout.h"
#include "scheduler/k8s.h"
#include "common/clock.h"
#include "common/log.h"
#include "scheduler/scheduler.h"

struct k8s_sb {
	char *endpoint;
	long last_used_ms;
	int scaled_down;
	int held; /* a worker's auto_suspend decides, not idle_ms */
	int hpa; /* this replica applied its HorizontalPodAutoscaler */
	json_t *deployment; /* the applied Deployment, for scaling */
};

struct k8s {
	struct k8s_opts o;
	struct k8s_api api;
	pthread_mutex_t mu;
	json_t *sandboxes; /* "tenant\nkey" -> struct k8s_sb * (as an integer) */
	pthread_cond_t wake;
	pthread_t reaper;
	int reaper_started, quit;
};

static char *sb_id(const char *tenant, const char *key)
{
	char *id = udfb_asprintf("%s\n%s", tenant, key);
	return id;
}

static struct k8s_sb *sb_get(struct k8s *k, const char *id)
{
	json_t *v = json_object_get(k->sandboxes, id);
	return v ? (struct k8s_sb *)(uintptr_t)json_integer_value(v) : NULL;
}

static void sb_free(struct k8s_sb *sb)
{
	if (!sb)
		return;
	free(sb->endpoint);
	json_decref(sb->deployment);
	free(sb);
}

static int k8s_predict(void *impl, const char *tenant, const char *key, char **endpoint, struct udfb_err *err)
{
	struct k8s *k = impl;
	struct k8s_names n;
	if (k8s_names_for(&n, tenant, key, err) < 0)
		return -1;
	*endpoint = udfb_asprintf("http://%s.%s.svc.%s:8815", n.name, n.ns, k->o.cluster_domain);
	k8s_names_free(&n);
	return 0;
}

/* Poll the Deployment until status.readyReplicas >= 1. */
static int wait_ready(struct k8s *k, const struct k8s_names *n, struct udfb_err *err)
{
	long deadline = udfb_now_ms() + k->o.start_timeout_ms;
	char *path = udfb_asprintf("/apis/apps/v1/namespaces/%s/deployments/%s", n->ns, n->name);
	for (;;) {
		json_t *obj = NULL;
		if (k8s_api_call(&k->api, "GET", path, NULL, &obj, "get Deployment", n->ns, n->name, err) < 0) {
			free(path);
			return -1;
		}
		json_int_t ready = json_integer_value(json_object_get(json_object_get(obj, "status"), "readyReplicas"));
		json_decref(obj);
		if (ready >= 1)
			break;
		if (udfb_now_ms() >= deadline) {
			free(path);
			return udfb_err_set(err, UDFB_E_DEADLINE,
					    "kubernetes: Deployment %s/%s: no ready replica after %ld ms", n->ns,
					    n->name, k->o.start_timeout_ms);
		}
		usleep((useconds_t)k->o.poll_ms * 1000);
	}
	free(path);
	return 0;
}

/* DELETE of one object; gone already is fine. */
static int delete_obj(struct k8s *k, const char *fmt, const char *kind, const struct k8s_names *n, struct udfb_err *err)
{
	char *path = udfb_asprintf(fmt, n->ns, n->name), *what = udfb_asprintf("delete %s", kind);
	int rc = k8s_api_call(&k->api, "DELETE", path, NULL, NULL, what, n->ns, n->name, err);
	if (rc < 0 && err->cat == UDFB_E_NOTFOUND) {
		udfb_err_clear(err);
		rc = 0;
	}
	free(path);
	free(what);
	return rc;
}

#define HPA_PATH "/apis/autoscaling/v2/namespaces/%s/horizontalpodautoscalers/%s"

/* A worker's autoscaler: applied from min (> 0) to its max_cluster_count;
 * min 0 (no max, or max <= min) deletes the one this replica applied (an
 * UNSET max_cluster_count, a smaller max). */
static int hpa_set(struct k8s *k, const struct k8s_names *n, const struct udfb_sandbox_req *req, int min,
		   struct udfb_err *err)
{
	if (min > 0) {
		json_t *hpa = k8s_hpa_obj(n, min, req->max_replicas);
		int rc = k8s_apply(&k->api, hpa, err);
		json_decref(hpa);
		return rc;
	}
	char *id = sb_id(req->tenant, req->key);
	pthread_mutex_lock(&k->mu);
	struct k8s_sb *sb = sb_get(k, id);
	int had = sb && sb->hpa;
	pthread_mutex_unlock(&k->mu);
	free(id);
	return had ? delete_obj(k, HPA_PATH, "HorizontalPodAutoscaler", n, err) : 0;
}

static int k8s_ensure(void *impl, const struct udfb_sandbox_req *req, struct udfb_sandbox *out, struct udfb_err *err)
{
	struct k8s *k = impl;
	memset(out, 0, sizeof(*out));
	struct k8s_names n;
	char *image = NULL;
	json_t *objs[4] = { NULL };
	int rc = -1;
	if (k8s_image_ref(req->image, &image, err) < 0)
		return -1;
	if (k8s_names_for(&n, req->tenant, req->key, err) < 0) {
		free(image);
		return -1;
	}
	objs[0] = k8s_namespace_obj(&n);
	objs[1] = k8s_deployment_obj(&k->o, &n, req, image, req->replicas > 0 ? req->replicas : 1);
	objs[2] = k8s_service_obj(&n);
	objs[3] = k8s_netpol_obj(&k->o, &n);
	for (int i = 0; i < 4; i++)
		if (!objs[i]) {
			udfb_err_set(err, UDFB_E_INTERNAL, "kubernetes: building the objects of %s/%s failed", n.ns,
				     n.name);
			goto out;
		}
	for (int i = 0; i < 4; i++)
		if (k8s_apply(&k->api, objs[i], err) < 0)
			goto out;
	int replicas = req->replicas > 0 ? req->replicas : 1, hpa = req->max_replicas > replicas;
	if (hpa_set(k, &n, req, hpa ? replicas : 0, err) < 0)
		goto out;
	if (wait_ready(k, &n, err) < 0)
		goto out;
	if (k8s_predict(k, req->tenant, req->key, &out->endpoint, err) < 0)
		goto out;
	out->ready = 1;
	char *id = sb_id(req->tenant, req->key);
	pthread_mutex_lock(&k->mu);
	struct k8s_sb *sb = sb_get(k, id);
	if (!sb) {
		sb = udfb_calloc(1, sizeof(*sb));
		json_object_set_new(k->sandboxes, id, json_integer((json_int_t)(uintptr_t)sb));
	}
	free(sb->endpoint);
	sb->endpoint = udfb_strdup(out->endpoint);
	sb->last_used_ms = udfb_now_ms();
	sb->scaled_down = 0;
	sb->hpa = hpa;
	json_decref(sb->deployment);
	sb->deployment = json_incref(objs[1]);
	pthread_mutex_unlock(&k->mu);
	free(id);
	rc = 0;
out:
	for (int i = 0; i < 4; i++)
		json_decref(objs[i]);
	k8s_names_free(&n);
	free(image);
	return rc;
}

static int k8s_stop(void *impl, const char *tenant, const char *key, struct udfb_err *err)
{
	struct k8s *k = impl;
	struct k8s_names n;
	if (k8s_names_for(&n, tenant, key, err) < 0)
		return -1;
	static const struct {
		const char *fmt, *kind;
	} del[] = {
		{ HPA_PATH, "HorizontalPodAutoscaler" }, /* first: it scales the Deployment */
		{ "/apis/apps/v1/namespaces/%s/deployments/%s", "Deployment" },
		{ "/api/v1/namespaces/%s/services/%s", "Service" },
		{ "/apis/networking.k8s.io/v1/namespaces/%s/networkpolicies/%s", "NetworkPolicy" },
	};
	int rc = 0;
	for (size_t i = 0; i < sizeof(del) / sizeof(*del) && rc == 0; i++)
		rc = delete_obj(k, del[i].fmt, del[i].kind, &n, err); /* gone already (another replica): fine */
	k8s_names_free(&n);
	char *id = sb_id(tenant, key);
	pthread_mutex_lock(&k->mu);
	sb_free(sb_get(k, id));
	json_object_del(k->sandboxes, id);
	pthread_mutex_unlock(&k->mu);
	free(id);
	return rc;
}

/* ---- the worker registry: one ConfigMap per worker ----
 * In the tenant's namespace, named udfw-<first 16 hex of sha256(name)>,
 * labelled udf-builder/worker=true; data.worker holds the record (JSON).
 * Every replica reads the same: the cluster is the record. */

#define WORKER_LABEL "udf-builder/worker"

static char *worker_cm_name(const char *name)
{
	struct udfb_sha256 *h = udfb_sha256_new();
	udfb_sha256_update(h, name, strlen(name));
	char d[UDFB_DIGEST_LEN + 1];
	udfb_sha256_final(h, d);
	char *out = udfb_asprintf("udfw-%.16s", udfb_digest_hex(d));
	return out;
}

/* The tenant's namespace, udf-<label>. */
static char *tenant_ns(const char *tenant)
{
	char *label = udfb_tenant_label(tenant), *ns = NULL;
	ns = udfb_asprintf("udf-%s", label);
	free(label);
	return ns;
}

/* Optimistic concurrency: a first write is a POST (409 AlreadyExists:
 * another replica created it first), a later one a PUT carrying the
 * resourceVersion it was read at (409 Conflict: it changed since; 404: it
 * was dropped since).  Either way the caller reads it again and redoes its
 * change, so no replica's change is lost to another's. */
static int k8s_registry_put(void *impl, const char *tenant, json_t *worker, const char *version, char **new_version,
			    struct udfb_err *err)
{
	struct k8s *k = impl;
	*new_version = NULL;
	const char *name = json_string_value(json_object_get(worker, "name"));
	char *label = udfb_tenant_label(tenant), *ns = tenant_ns(tenant), *cm = worker_cm_name(name), *path = NULL;
	char *text = udfb_json_dumps_must(worker, JSON_SORT_KEYS | JSON_COMPACT);
	json_t *obj = udfb_json_must(json_pack("{s:s,s:s,s:{s:s,s:s,s:{s:s,s:s,s:s},s:{s:s}},s:{s:s}}", "apiVersion",
					       "v1", "kind", "ConfigMap", "metadata", "name", cm, "namespace", ns,
					       "labels", "app.kubernetes.io/managed-by", "udf-builder", WORKER_LABEL,
					       "true", "udf-builder/tenant", label, "annotations", "udf-builder/tenant",
					       tenant, "data", "worker", text));
	int rc = 0;
	if (version) {
		json_object_set_new(json_object_get(obj, "metadata"), "resourceVersion", json_string(version));
		path = udfb_asprintf("/api/v1/namespaces/%s/configmaps/%s", ns, cm);
	} else {
		struct k8s_names n = { .label = label, .ns = ns };
		json_t *nsobj = k8s_namespace_obj(&n);
		rc = k8s_apply(&k->api, nsobj, err);
		json_decref(nsobj);
		path = udfb_asprintf("/api/v1/namespaces/%s/configmaps", ns);
	}
	json_t *got = NULL;
	if (rc == 0)
		rc = k8s_api_call(&k->api, version ? "PUT" : "POST", path, obj, &got,
				  version ? "update ConfigMap" : "create ConfigMap", ns, cm, err);
	if (rc < 0 && (err->cat == UDFB_E_EXISTS || (version && err->cat == UDFB_E_NOTFOUND))) {
		udfb_err_clear(err);
		rc = 1;
	} else if (rc == 0) {
		const char *rv =
			json_string_value(json_object_get(json_object_get(got, "metadata"), "resourceVersion"));
		*new_version = udfb_strdup(rv ? rv : "");
	}
	json_decref(got);
	json_decref(obj);
	free(text);
	free(label);
	free(ns);
	free(cm);
	free(path);
	return rc;
}

static int k8s_registry_get(void *impl, const char *tenant, const char *name, json_t **worker, char **version,
			    struct udfb_err *err)
{
	struct k8s *k = impl;
	*worker = NULL;
	*version = NULL;
	char *ns = tenant_ns(tenant), *cm = worker_cm_name(name), *path = NULL;
	path = udfb_asprintf("/api/v1/namespaces/%s/configmaps/%s", ns, cm);
	json_t *got = NULL;
	int rc = k8s_api_call(&k->api, "GET", path, NULL, &got, "get ConfigMap", ns, cm, err);
	if (rc < 0 && err->cat == UDFB_E_NOTFOUND) {
		udfb_err_clear(err);
		rc = 0;
	} else if (rc == 0) {
		json_t *meta = json_object_get(got, "metadata");
		const char *text = json_string_value(json_object_get(json_object_get(got, "data"), "worker"));
		const char *rv = json_string_value(json_object_get(meta, "resourceVersion"));
		json_t *w = text ? json_loads(text, JSON_REJECT_DUPLICATES, NULL) : NULL;
		if (!json_is_object(w) || !rv) {
			json_decref(w);
			rc = udfb_err_set(err, UDFB_E_INVALID,
					  "kubernetes: ConfigMap %s/%s: no worker record or resourceVersion", ns, cm);
		} else {
			*worker = w;
			*version = udfb_strdup(rv);
		}
	}
	json_decref(got);
	free(ns);
	free(cm);
	free(path);
	return rc;
}

static int k8s_registry_del(void *impl, const char *tenant, const char *name, struct udfb_err *err)
{
	struct k8s *k = impl;
	char *label = udfb_tenant_label(tenant), *cm = worker_cm_name(name), *ns = udfb_asprintf("udf-%s", label);
	char *path = udfb_asprintf("/api/v1/namespaces/%s/configmaps/%s", ns, cm);
	int rc = k8s_api_call(&k->api, "DELETE", path, NULL, NULL, "delete ConfigMap", ns, cm, err);
	if (rc < 0 && err->cat == UDFB_E_NOTFOUND) { /* gone already: another replica dropped it */
		udfb_err_clear(err);
		rc = 0;
	}
	free(label);
	free(cm);
	free(path);
	free(ns);
	return rc;
}

static int k8s_registry_load(void *impl, const char *tenant, json_t **out, struct udfb_err *err)
{
	struct k8s *k = impl;
	*out = NULL;
	char *label = tenant ? udfb_tenant_label(tenant) : NULL;
	char *path =
		tenant ? udfb_asprintf("/api/v1/namespaces/udf-%s/configmaps?labelSelector=" WORKER_LABEL "%%3Dtrue",
				       label)
		       : udfb_asprintf("/api/v1/configmaps?labelSelector=" WORKER_LABEL "%%3Dtrue");
	json_t *list = NULL;
	int rc = k8s_api_call(&k->api, "GET", path, NULL, &list, "list ConfigMaps", tenant ? label : "-", "workers",
			      err);
	free(path);
	free(label);
	if (rc < 0)
		return -1;
	*out = json_array();
	size_t i;
	json_t *cm;
	json_array_foreach(json_object_get(list, "items"), i, cm) {
		json_t *meta = json_object_get(cm, "metadata");
		const char *t =
			json_string_value(json_object_get(json_object_get(meta, "annotations"), "udf-builder/tenant"));
		const char *text = json_string_value(json_object_get(json_object_get(cm, "data"), "worker"));
		json_t *w = text ? json_loads(text, 0, NULL) : NULL;
		const char *rv = json_string_value(json_object_get(meta, "resourceVersion"));
		if (t && json_is_object(w) && (!tenant || strcmp(t, tenant) == 0))
			json_array_append_new(*out,
					      json_pack("{s:s,s:o,s:s?}", "tenant", t, "worker", w, "version", rv));
		else
			json_decref(w);
	}
	json_decref(list);
	return 0;
}

/* A suspended worker: its Deployment applied with zero replicas; the
 * Service and NetworkPolicy stay, so RESUME (ensure) keeps the endpoint. */
static int k8s_suspend(void *impl, const char *tenant, const char *key, struct udfb_err *err)
{
	struct k8s *k = impl;
	char *id = sb_id(tenant, key);
	pthread_mutex_lock(&k->mu);
	struct k8s_sb *sb = sb_get(k, id);
	json_t *d = sb && sb->deployment ? json_deep_copy(sb->deployment) : NULL;
	if (sb)
		sb->scaled_down = 1;
	pthread_mutex_unlock(&k->mu);
	free(id);
	if (!d) {
		/* Started by another replica: the cluster's Deployment, scaled. */
		struct k8s_names n;
		if (k8s_names_for(&n, tenant, key, err) < 0)
			return -1;
		char *path = udfb_asprintf("/apis/apps/v1/namespaces/%s/deployments/%s", n.ns, n.name);
		json_t *got = NULL;
		int rc = k8s_api_call(&k->api, "GET", path, NULL, &got, "get Deployment", n.ns, n.name, err);
		free(path);
		k8s_names_free(&n);
		if (rc < 0)
			return err->cat == UDFB_E_NOTFOUND ? (udfb_err_clear(err), 0) : -1;
		json_t *meta = json_object_get(got, "metadata");
		d = json_pack("{s:s,s:s,s:{s:O,s:O,s:O*},s:O}", "apiVersion", "apps/v1", "kind", "Deployment",
			      "metadata", "name", json_object_get(meta, "name"), "namespace",
			      json_object_get(meta, "namespace"), "labels", json_object_get(meta, "labels"), "spec",
			      json_object_get(got, "spec"));
		json_decref(got);
		if (!d)
			return udfb_err_set(err, UDFB_E_INTERNAL, "kubernetes: a Deployment without name or spec");
	}
	json_object_set_new(json_object_get(d, "spec"), "replicas", json_integer(0));
	int rc = k8s_apply(&k->api, d, err);
	json_decref(d);
	return rc;
}

static int k8s_list(void *impl, json_t **out, struct udfb_err *err)
{
	(void)err;
	struct k8s *k = impl;
	*out = json_array();
	pthread_mutex_lock(&k->mu);
	const char *id;
	json_t *v;
	json_object_foreach(k->sandboxes, id, v) {
		struct k8s_sb *sb = (struct k8s_sb *)(uintptr_t)json_integer_value(v);
		const char *nl = strchr(id, '\n');
		char *tenant = udfb_strndup(id, (size_t)(nl - id));
		json_array_append_new(*out, udfb_json_must(json_pack("{s:s,s:s,s:s,s:s}", "tenant", tenant, "key",
								     nl + 1, "endpoint", sb->endpoint, "state",
								     sb->scaled_down ? "scaled-to-zero" : "ready")));
		free(tenant);
	}
	pthread_mutex_unlock(&k->mu);
	return 0;
}

/* Scale Deployments idle longer than idle_ms to zero replicas (apply with
 * replicas 0); alive() then says no and the next call's ensure() scales back. */
static int k8s_reap_idle(void *impl, long idle_ms, struct udfb_err *err)
{
	struct k8s *k = impl;
	if (idle_ms <= 0)
		return 0;
	json_t *todo = json_array();
	long now = udfb_now_ms();
	pthread_mutex_lock(&k->mu);
	const char *id;
	json_t *v;
	json_object_foreach(k->sandboxes, id, v) {
		struct k8s_sb *sb = (struct k8s_sb *)(uintptr_t)json_integer_value(v);
		if (!sb->scaled_down && !sb->held && sb->deployment && now - sb->last_used_ms > idle_ms) {
			json_t *d = json_deep_copy(sb->deployment);
			json_object_set_new(json_object_get(d, "spec"), "replicas", json_integer(0));
			json_array_append_new(todo, udfb_json_must(json_pack("{s:s,s:o}", "id", id, "obj", d)));
			sb->scaled_down = 1;
		}
	}
	pthread_mutex_unlock(&k->mu);
	int n = 0, rc = 0;
	size_t i;
	json_array_foreach(todo, i, v) {
		struct udfb_err e = UDFB_ERR_INIT;
		if (k8s_apply(&k->api, json_object_get(v, "obj"), &e) < 0) {
			if (rc == 0)
				udfb_err_move(err, &e);
			udfb_err_clear(&e);
			rc = -1;
			continue;
		}
		n++;
	}
	json_decref(todo);
	return rc < 0 && n == 0 ? -1 : n;
}

/* Scales idle sandboxes to zero every reap_interval_ms (idle_ms 0: never). */
static void *reaper_main(void *arg)
{
	struct k8s *k = arg;
	pthread_mutex_lock(&k->mu);
	while (!k->quit) {
		struct timespec ts;
		udfb_abstime(&ts, CLOCK_MONOTONIC, k->o.reap_interval_ms); /* k->wake's clock */
		pthread_cond_timedwait(&k->wake, &k->mu, &ts);
		if (k->quit)
			break;
		pthread_mutex_unlock(&k->mu);
		struct udfb_err err = UDFB_ERR_INIT;
		int n = k8s_reap_idle(k, k->o.idle_ms, &err);
		if (n < 0)
			udfb_warn("kubernetes: scaling idle sandboxes to zero: %s", err.msg);
		else if (n > 0)
			udfb_info("kubernetes: %d sandbox(es) idle for more than %ld ms scaled to zero", n,
				  k->o.idle_ms);
		udfb_err_clear(&err);
		pthread_mutex_lock(&k->mu);
	}
	pthread_mutex_unlock(&k->mu);
	return NULL;
}

static int k8s_ready(void *impl)
{
	(void)impl;
	return 1;
}

static int k8s_alive(void *impl, const char *tenant, const char *key)
{
	struct k8s *k = impl;
	char *id = sb_id(tenant, key);
	pthread_mutex_lock(&k->mu);
	struct k8s_sb *sb = sb_get(k, id);
	int alive = sb && !sb->scaled_down;
	if (alive)
		sb->last_used_ms = udfb_now_ms();
	pthread_mutex_unlock(&k->mu);
	free(id);
	return alive;
}

/* Idleness as this replica sees it: the last time it handed the endpoint
 * out (Databend asks before every query that uses the UDF). */
static long long k8s_idle_for(void *impl, const char *tenant, const char *key)
{
	struct k8s *k = impl;
	char *id = sb_id(tenant, key);
	pthread_mutex_lock(&k->mu);
	struct k8s_sb *sb = sb_get(k, id);
	long long idle = sb && !sb->scaled_down ? udfb_now_ms() - sb->last_used_ms : -1;
	pthread_mutex_unlock(&k->mu);
	free(id);
	return idle;
}

static void k8s_hold(void *impl, const char *tenant, const char *key, int held)
{
	struct k8s *k = impl;
	char *id = sb_id(tenant, key);
	pthread_mutex_lock(&k->mu);
	struct k8s_sb *sb = sb_get(k, id);
	if (sb)
		sb->held = held;
	pthread_mutex_unlock(&k->mu);
	free(id);
}

static void k8s_destroy(void *impl)
{
	struct k8s *k = impl;
	pthread_mutex_lock(&k->mu);
	k->quit = 1;
	pthread_cond_broadcast(&k->wake);
	pthread_mutex_unlock(&k->mu);
	if (k->reaper_started)
		pthread_join(k->reaper, NULL);
	pthread_cond_destroy(&k->wake);
	const char *id;
	json_t *v;
	json_object_foreach(k->sandboxes, id, v)
		sb_free((struct k8s_sb *)(uintptr_t)json_integer_value(v));
	json_decref(k->sandboxes);
	pthread_mutex_destroy(&k->mu);
	k8s_api_free(&k->api);
	k8s_opts_free(&k->o);
	free(k);
}

static const struct udfb_scheduler_ops k8s_ops = {
	.name = "kubernetes",
	.suspend = k8s_suspend,
	.idle_for = k8s_idle_for,
	.hold = k8s_hold,
	.registry_load = k8s_registry_load,
	.registry_get = k8s_registry_get,
	.registry_put = k8s_registry_put,
	.registry_del = k8s_registry_del,
	.ensure = k8s_ensure,
	.predict = k8s_predict,
	.stop = k8s_stop,
	.list = k8s_list,
	.reap_idle = k8s_reap_idle,
	.ready = k8s_ready,
	.alive = k8s_alive,
	.destroy = k8s_destroy,
};

int udfb_scheduler_k8s_new(struct udfb_scheduler *out, const struct udfb_config *cfg, struct udfb_err *err)
{
	struct k8s *k = udfb_calloc(1, sizeof(*k));
	if (k8s_opts_parse(&k->o, cfg->scheduler_opts, err) < 0 || k8s_api_init(&k->api, &k->o, err) < 0) {
		k8s_api_free(&k->api);
		k8s_opts_free(&k->o);
		free(k);
		return udfb_err_wrap(err, "scheduler kubernetes");
	}
	pthread_mutex_init(&k->mu, NULL);
	k->sandboxes = json_object();
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&k->wake, &ca);
	pthread_condattr_destroy(&ca);
	if (k->o.idle_ms > 0 && pthread_create(&k->reaper, NULL, reaper_main, k) == 0)
		k->reaper_started = 1;
	out->ops = &k8s_ops;
	out->impl = k;
	return 0;
}
