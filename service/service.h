/* The ApplyUdfResource service core, independent of gRPC: validate, key,
 * look up, build once per (tenant, key) (single flight), ask the scheduler
 * for a sandbox, and answer {endpoint, token}.
 *
 * A call is split in two so the gRPC front end never blocks its completion
 * queue: udfb_service_prepare() and udfb_service_lookup() are CPU-only and
 * answer a ready (tenant, key) from memory; udfb_service_complete() may wait
 * for a build and runs on a worker thread. */
#ifndef UDFB_SERVICE_H
#define UDFB_SERVICE_H

#include <stdatomic.h>
#include <jansson.h>

#include "config/config.h"
#include "common/clock.h" /* deadlines are udfb_now_ms() values */
#include "common/err.h"
#include "common/log.h"
#include "service/metrics.h"
#include "builder/request.h"

struct udfb_service;
struct udfb_prepared;

struct udfb_call_meta {
	const char *tenant; /* NULL when the call carried none */
	const char *user;
	const char *query_id;
	const char *client_version;
};

struct udfb_apply_out {
	char *endpoint;
	char *token; /* the x-authorization header value */
	int accepted; /* 1: the sandbox is still being built or started */
	json_t *worker; /* CreateWorker: {name, tags, options, created_at, updated_at} */
};

/* Takes the configuration (frees it with the service). */
int udfb_service_new(struct udfb_service **out, struct udfb_config *cfg, struct udfb_err *err);
void udfb_service_free(struct udfb_service *s);
int udfb_service_ready(struct udfb_service *s);
/* Wake every waiting call (they answer UNAVAILABLE) and stop being ready. */
void udfb_service_stop(struct udfb_service *s);
/* Builds running or queued. */
int udfb_service_builds_running(struct udfb_service *s);
struct udfb_metrics *udfb_service_metrics(struct udfb_service *s);
const struct udfb_config *udfb_service_config(struct udfb_service *s);

/* The fastest path: a request whose bytes (tenant, spec, imports' locations
 * and tags; never the URLs) were seen before for a ready (tenant, key)
 * answers without parsing anything.  1 when answered, 0 otherwise. */
int udfb_service_repeat(struct udfb_service *s, const struct udfb_call_meta *meta, const char *spec, size_t spec_len,
			const struct udfb_import *imports, size_t n_imports, struct udfb_apply_out *out);
int udfb_service_prepare(struct udfb_service *s, struct udfb_prepared **out, const struct udfb_call_meta *meta,
			 const char *spec, size_t spec_len, const struct udfb_import *imports, size_t n_imports,
			 struct udfb_err *err);
/* 1 and *out when (tenant, key) is ready; 0 when the slow path is needed. */
int udfb_service_lookup(struct udfb_service *s, const struct udfb_prepared *p, struct udfb_apply_out *out);
/* Build if needed (joining a build already running), ensure a sandbox,
 * wait until deadline_ms (monotonic; 0: none) less the margin. */
int udfb_service_complete(struct udfb_service *s, struct udfb_prepared *p, long long deadline_ms,
			  struct udfb_apply_out *out, struct udfb_err *err);
/* The same, also returning (DEADLINE, "cancelled") as soon as *gone is set
 * (the caller cancelled or its deadline passed): the call worker is freed
 * while the build goes on.  Whoever sets *gone calls udfb_service_wake. */
int udfb_service_complete_until(struct udfb_service *s, struct udfb_prepared *p, long long deadline_ms,
				const atomic_int *gone, struct udfb_apply_out *out, struct udfb_err *err);
void udfb_service_wake(struct udfb_service *s);
const struct udfb_log_fields *udfb_prepared_fields(const struct udfb_prepared *p);
void udfb_prepared_free(struct udfb_prepared *p);
void udfb_apply_out_clear(struct udfb_apply_out *o);

/* ---- Databend's released forms (script_call.c, docs/service.md) ----
 * ApplyResource{script}: a worker is (tenant, key).  CreateWorker{tenant_id,
 * name, script}: a worker is (tenant, name), and the name's current script
 * decides which sandbox is handed out.  The script is read, never run
 * (script.h); its imports are identified by their objects (script_imports.h). */

struct udfb_kv {
	const char *key, *value;
};

struct udfb_worker_req {
	const char *tenant_id, *name;
	int if_not_exists;
	const struct udfb_kv *tags, *options;
	size_t n_tags, n_options;
};

struct udfb_script_call;

/* CPU only: parse and answer from memory when the script (imports known
 * within imports.revalidate_ms) maps to a ready sandbox: 1 and *hit.  0:
 * *out is for udfb_service_script_complete (on a worker thread).  w is
 * NULL for ApplyResource. */
int udfb_service_script_begin(struct udfb_service *s, struct udfb_script_call **out, const struct udfb_call_meta *meta,
			      const struct udfb_worker_req *w, const char *script, size_t len,
			      struct udfb_apply_out *hit, struct udfb_err *err);
/* Identify the imports (a first-byte GET each, when not known), key, build
 * if needed, start the sandbox; consumes c. */
int udfb_service_script_complete(struct udfb_service *s, struct udfb_script_call *c, long long deadline_ms,
				 struct udfb_apply_out *out, struct udfb_err *err);
/* The same, returning (DEADLINE, "cancelled") once *gone is set while it
 * waits for the build (udfb_service_complete_until). */
int udfb_service_script_complete_until(struct udfb_service *s, struct udfb_script_call *c, long long deadline_ms,
				       const atomic_int *gone, struct udfb_apply_out *out, struct udfb_err *err);
const struct udfb_log_fields *udfb_script_call_fields(const struct udfb_script_call *c);
void udfb_script_call_free(struct udfb_script_call *c);

/* The WORKER statements: CreateWorker with an empty script records the
 * worker (tags, options); Alter changes them; Drop forgets it (its sandbox
 * stops); List shows the tenant's.  *worker / *workers: JSON as above. */
struct udfb_worker_alter {
	const struct udfb_kv *set_tags, *set_options;
	size_t n_set_tags, n_set_options;
	const char *const *unset_tags, *const *unset_options;
	size_t n_unset_tags, n_unset_options;
	int state_action; /* 0 none, 1 suspend, 2 resume */
};
int udfb_service_worker_create(struct udfb_service *s, const struct udfb_call_meta *meta,
			       const struct udfb_worker_req *w, json_t **worker, struct udfb_err *err);
int udfb_service_worker_alter(struct udfb_service *s, const struct udfb_call_meta *meta, const char *tenant_id,
			      const char *name, const struct udfb_worker_alter *a, json_t **worker,
			      struct udfb_err *err);
int udfb_service_worker_drop(struct udfb_service *s, const struct udfb_call_meta *meta, const char *tenant_id,
			     const char *name, int if_exists, struct udfb_err *err);
int udfb_service_worker_list(struct udfb_service *s, const struct udfb_call_meta *meta, const char *tenant_id,
			     json_t **workers, struct udfb_err *err);

#endif
