/* What service.c shares with script_call.c (the ApplyResource and
 * CreateWorker paths) and nothing else: the service's state and the
 * helpers of one call.  Not for other modules. */
#ifndef UDFB_SERVICE_INTERNAL_H
#define UDFB_SERVICE_INTERNAL_H

#include <pthread.h>

#include "build.h"
#include "flight.h"
#include "hash.h"
#include "scheduler.h"
#include "service.h"

struct udfb_table;

/* The flight table's "tenant" of fingerprint entries (aliases of ready
 * flights): no real tenant has a control byte. */
#define FP_TENANT "\x01fingerprint"

struct svc_base {
	const char *runtime; /* borrowed from the config */
	struct udfb_base base;
};

struct udfb_service {
	struct udfb_config cfg;
	struct svc_base *bases;
	size_t n_bases;
	char *dest;
	struct udfb_scheduler sched;
	struct udfb_metrics *metrics;
	struct udfb_pool *builds;
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
	size_t n_memo;
	struct svc_retired *retired;
};

struct udfb_prepared {
	char fingerprint[UDFB_DIGEST_LEN + 1];
	struct udfb_request req;
	char *tenant, *query_id;
	char key[UDFB_DIGEST_LEN + 1];
	const struct svc_base *base;
	struct udfb_log_fields fields;
	const char *env_name; /* whose operator variables: the handler, or a CreateWorker's name */
	char *worker;         /* CreateWorker: the worker's name; NULL otherwise */
};

void svc_fill_out(const struct udfb_service *s, struct udfb_apply_out *out, const struct udfb_flight *f);
void svc_fp_part(struct udfb_sha256 *h, const char *p, size_t n);
int svc_sandbox_alive(struct udfb_service *s, struct udfb_flight *f);
void svc_remember(struct udfb_service *s, const char *fp, struct udfb_flight *f);
const struct svc_base *svc_base_for(struct udfb_service *s, const char *runtime_version);
/* The tenant's key and the base for p->req, once p->tenant is set. */
int svc_prepare_key(struct udfb_service *s, struct udfb_prepared *p, struct udfb_err *err);
void svc_script_init(struct udfb_service *s);
void svc_script_free(struct udfb_service *s);

/* A string-keyed table; values are owned by the caller (freed by fn). */
struct udfb_table *udfb_table_new(void);
void **udfb_table_slot(struct udfb_table *t, const char *id, int create);
int udfb_table_remove(struct udfb_table *t, const char *id, void **val);
/* Calls fn(value, ctx) for every entry; in no particular order. */
void udfb_table_each(struct udfb_table *t, void (*fn)(const char *id, void *val, void *ctx), void *ctx);
void udfb_table_free(struct udfb_table *t, void (*free_val)(void *));

#endif
