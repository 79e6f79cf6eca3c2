/* What service.c shares with script_call.c (the ApplyResource and
 * CreateWorker paths) and nothing else: the service's state and the
 * helpers of one call.  Not for other modules. */
#ifndef UDFB_SERVICE_INTERNAL_H
#define UDFB_SERVICE_INTERNAL_H

#include <pthread.h>

#include "builder/build.h"
#include "service/flight.h"
#include "common/hash.h"
#include "scheduler/scheduler.h"
#include "service/service.h"

struct udfb_callq;
struct udfb_table;

/* The flight table's "tenant" of fingerprint entries (aliases of ready
 * flights): no real tenant has a control byte. */
#define FP_TENANT "\x01fingerprint"

struct svc_base {
	const char *runtime; /* borrowed from the config */
	struct udfb_base base;
	int pip_checked, has_pip; /* under mu: script_mode = run asked whether the base has pip */
};

struct udfb_service {
	struct udfb_config cfg;
	struct svc_base *bases;
	size_t n_bases;
	char *dest;
	struct udfb_scheduler sched;
	struct udfb_metrics *metrics;
	struct udfb_pool *builds;
	struct udfb_callq *build_q; /* builds waiting for a build worker, fair by tenant */
	char **secrets; /* cfg's, or one random secret of this process */
	size_t n_secrets;
	pthread_mutex_t mu;
	pthread_cond_t changed; /* broadcast when any flight finishes */
	struct udfb_flights *flights;
	int ready;
	int stopping; /* under mu: waiters give up */
	int builds_running; /* under mu */
	/* Under mu (script_call.c): imports validated, by "tenant\nlocation";
	 * workers, by "tenant\nname"; sandboxes a replaced worker left. */
	struct udfb_table *seen;
	struct udfb_table *workers;
	struct udfb_table *memo; /* scripts seen, by a hash without their URLs */
	struct svc_retired *retired;
	/* Quotas (docs/service.md, "Quotas"), under mu: builds queued or
	 * running by tenant (long *, an entry only while it has some) and in
	 * all; worker records by tenant (long *), kept by workers.c. */
	struct udfb_table *build_counts, *worker_counts;
	long builds_pending;
	/* workers.c: the size table, the thread that applies statements to
	 * sandboxes in order, the housekeeping thread (auto_suspend, gauges). */
	json_t *sizes;
	struct udfb_pool *worker_fx;
	pthread_t wk_thread;
	pthread_mutex_t wk_mu;
	pthread_cond_t wk_wake;
	int wk_started, wk_stop;
};

/* One worker of a tenant (workers.c), under the service's lock. */
struct svc_worker {
	char *name;
	json_t *tags, *options;
	char created_at[32], updated_at[32];
	char key[UDFB_DIGEST_LEN + 1]; /* the sandbox its script maps to; "" before any */
	int suspended;
	int declared; /* by CREATE WORKER, not only by its UDF's call */
	char *image, *handler; /* what its sandbox runs: RESUME and a resize start it again */
	int pending; /* changes not yet in the backend's shared registry */
	char *version; /* the shared registry's revision of the record as last seen; NULL: none */
};

struct udfb_prepared {
	char fingerprint[UDFB_DIGEST_LEN + 1];
	struct udfb_request req;
	char *tenant, *query_id;
	char key[UDFB_DIGEST_LEN + 1];
	const struct svc_base *base;
	struct udfb_log_fields fields;
	const char *env_name; /* whose operator variables: the handler, or a CreateWorker's name */
	char *worker; /* CreateWorker: the worker's name; NULL otherwise */
	/* A Databend script run as-is (script_mode = run, script_run.c);
	 * NULL for the native build. */
	char *run_script;
	size_t run_len;
};

void svc_fill_out(const struct udfb_service *s, struct udfb_apply_out *out, const struct udfb_flight *f);
void svc_fp_part(struct udfb_sha256 *h, const char *p, size_t n);
int svc_sandbox_alive(struct udfb_service *s, struct udfb_flight *f);
void svc_remember(struct udfb_service *s, const char *fp, struct udfb_flight *f);
const struct svc_base *svc_base_for(struct udfb_service *s, const char *runtime_version);
/* The tenant's key and the base for p->req, once p->tenant is set. */
int svc_prepare_key(struct udfb_service *s, struct udfb_prepared *p, struct udfb_err *err);
void svc_script_init(struct udfb_service *s);

/* What a sandbox runs: enough to start it again (RESUME, a resize). */
struct svc_sandbox_what {
	const char *tenant, *key, *image, *handler;
	const char *env_name; /* whose operator variables; NULL: the handler's */
	const char *worker; /* whose size; NULL: the backend's limits */
	const char *const *egress_to; /* a script run as-is: where it may connect */
	size_t n_egress_to;
	const struct udfb_env_var *extra_env; /* a script run as-is: its URLs' query strings */
	size_t n_extra_env;
};
int svc_sandbox_start(struct udfb_service *s, const struct svc_sandbox_what *w, struct udfb_sandbox *sb,
		      struct udfb_err *err);

/* script_run.c: script_mode = run.  A script the parser refused for its
 * shape: the content checks, then the prepared call (its key) when the
 * backend can run it; UDFB_E_PRECONDITION naming the setting when not. */
int svc_run_prepare(struct udfb_service *s, struct udfb_prepared **out, const char *tenant, const char *worker,
		    const char *query_id, const char *script, size_t len, struct udfb_err *err);
/* The build job of a prepared run: its image, then its sandbox. */
int svc_run_build_and_start(struct udfb_service *s, const struct udfb_prepared *p, struct udfb_sandbox *sb,
			    char **image, struct udfb_err *err);
int svc_dest_for(char **out, struct udfb_service *s, const struct udfb_prepared *p, struct udfb_err *err);
/* The build options of p's image: the service's store and settings, p's base and tenant, into dest. */
struct udfb_build_opts svc_build_opts(struct udfb_service *s, const struct udfb_prepared *p, const char *dest);

/* workers.c */
/* Lock held: the most worker records one tenant has (a /metrics gauge). */
long svc_workers_max_per_tenant(struct udfb_service *s);
/* Lock held: n added to (or, negative, taken from) the count of tenant in
 * the table of long * counts t; the entry goes at zero.  Returns the new
 * count. */
long svc_count_add(struct udfb_table *t, const char *tenant, long n);
int svc_workers_start(struct udfb_service *s, struct udfb_err *err);
void svc_workers_stop(struct udfb_service *s);
void svc_now_text(char out[32]);
int svc_tenant_of(struct udfb_service *s, const struct udfb_call_meta *meta, const char *tenant_id, char **out,
		  struct udfb_err *err);
int svc_worker_name_ok(const char *name, struct udfb_err *err);
/* Lock held. */
struct svc_worker *svc_worker_get(struct udfb_service *s, const char *tenant, const char *name, int create);
json_t *svc_worker_json(const struct svc_worker *w);
void svc_worker_free(void *w);
int svc_workers_save(struct udfb_service *s, const char *tenant, struct udfb_err *err);
int svc_key_used_active(struct udfb_service *s, const char *tenant, const char *key, const char *except);
void svc_worker_started(struct udfb_service *s, const char *tenant, struct svc_worker *w);
/* Takes the lock.  A suspended worker refuses a UDF call (PRECONDITION)
 * unless its auto_resume is true: then it is active again.  A worker not
 * recorded yet is refused (EXHAUSTED) when its tenant has
 * max_tenant_workers already. */
int svc_worker_gate(struct udfb_service *s, const char *tenant, const char *name, struct udfb_err *err);
/* Takes the lock: the worker's size, when it has one. */
void svc_worker_size(struct udfb_service *s, const char *tenant, const char *name, struct udfb_sandbox_req *req);
void svc_script_free(struct udfb_service *s);
/* Stop the sandboxes CREATE OR REPLACE left once no call needs them (the
 * housekeeping timer, every second). */
void svc_script_sweep_retired(struct udfb_service *s);

/* A string-keyed table; values are owned by the caller (freed by fn). */
struct udfb_table *udfb_table_new(void);
void **udfb_table_slot(struct udfb_table *t, const char *id, int create);
int udfb_table_remove(struct udfb_table *t, const char *id, void **val);
/* Calls fn(value, ctx) for every entry; in no particular order. */
void udfb_table_each(struct udfb_table *t, void (*fn)(const char *id, void *val, void *ctx), void *ctx);
void udfb_table_free(struct udfb_table *t, void (*free_val)(void *));
/* A cache: at most max entries (0: no bound); creating one past it frees
 * the least recently used (found or created) with free_val. */
void udfb_table_set_max(struct udfb_table *t, size_t max, void (*free_val)(void *));
size_t udfb_table_count(const struct udfb_table *t);
unsigned long long udfb_table_evicted(const struct udfb_table *t);

#endif
