/* Where sandboxes come from: one interface, several backends (a struct of
 * function pointers, like crun's cgroup managers).  The service asks for a
 * sandbox running an image for a tenant and hands its endpoint to Databend. */
#ifndef UDFB_SCHEDULER_H
#define UDFB_SCHEDULER_H

#include <jansson.h>
#include <stddef.h>

#include "config/config.h"
#include "common/err.h"
#include "common/tenant.h"
#include "image/store.h"

struct udfb_sandbox_req {
	const char *tenant;
	const char *key; /* the cache key, "sha256:..." */
	/* The image: its manifest digest and the store holding its blobs on
	 * this machine (an OCI layout; NULL: the scheduler's own store), read
	 * through image/store.h, never by slicing a reference. */
	struct udfb_image_store *store;
	const char *manifest_digest;
	const char *image; /* its reference, pinned by digest: what a cluster pulls, and messages */
	const char *handler;
	const char *
		auth_keys; /* UDF_AUTH_KEYS: the sandbox keys tokens are checked with, one per secret, comma-separated */
	const struct udfb_env_var *env; /* operator-bound variables */
	size_t n_env;
	/* A worker's size (docs/configuration.md, worker_sizes); 0: the
	 * backend's own limits.  A change restarts the sandbox. */
	long long memory_bytes;
	long cpu_millis;
	int replicas; /* a worker's min_cluster_count (Kubernetes); 0: one */
	int max_replicas; /* a worker's max_cluster_count (Kubernetes: an autoscaler up to it); 0: none */
	/* A Databend script run as-is (script_mode = run): its egress is
	 * exactly these "ADDR:PORT" TCP destinations (the package index's and
	 * the import hosts'), instead of the backend's usual; NULL otherwise.
	 * Only a backend with run_scripts set takes it. */
	const char *const *egress_to;
	size_t n_egress_to;
};

struct udfb_sandbox {
	char *endpoint; /* "http://host:port" */
	int ready; /* 1: serving now; 0: starting */
};

struct udfb_scheduler_ops {
	const char *name;
	/* 1: ensure() honours udfb_sandbox_req.egress_to (a sandbox running a
	 * Databend script as-is, script_mode = run). */
	int run_scripts;
	/* Make sure a sandbox for (tenant, key) runs the image; report it. */
	int (*ensure)(void *impl, const struct udfb_sandbox_req *req, struct udfb_sandbox *out, struct udfb_err *err);
	/* The endpoint the sandbox for (tenant, key) will have (accepted mode). */
	int (*predict)(void *impl, const char *tenant, const char *key, char **endpoint, struct udfb_err *err);
	int (*stop)(void *impl, const char *tenant, const char *key, struct udfb_err *err);
	/* Optional (NULL: stop).  A suspended worker's sandbox: kept, not
	 * running (Kubernetes: scaled to zero replicas); ensure() starts it. */
	int (*suspend)(void *impl, const char *tenant, const char *key, struct udfb_err *err);
	/* [{tenant, key, endpoint, state}] */
	int (*list)(void *impl, json_t **out, struct udfb_err *err);
	/* Stop sandboxes idle longer than idle_ms; returns how many. */
	int (*reap_idle)(void *impl, long idle_ms, struct udfb_err *err);
	int (*ready)(void *impl);
	/* Optional (NULL: always).  0 when the sandbox ensure() reported for
	 * (tenant, key) is gone (died, stopped idle): the service then calls
	 * ensure() again instead of answering from memory.  Called on every
	 * call answered from memory, so it must not block. */
	int (*alive)(void *impl, const char *tenant, const char *key);
	/* Optional: milliseconds since the sandbox for (tenant, key) last
	 * served a call (-1: not running or unknown).  May block briefly. */
	long long (*idle_for)(void *impl, const char *tenant, const char *key);
	/* Optional: held sandboxes are left alone by the backend's idle reaper
	 * (a worker's auto_suspend decides instead). */
	void (*hold)(void *impl, const char *tenant, const char *key, int held);
	void (*destroy)(void *impl);
	/* Optional: a worker registry the backend keeps where every replica
	 * sees it (Kubernetes: one ConfigMap per worker).  load: tenant NULL
	 * for all; *out [{tenant, worker, version}] with worker as workers.c
	 * stores it and version the backend's opaque revision of it.  Writes
	 * are optimistic: get gives the record (NULL: none) and its version;
	 * put writes it only if the stored one is still `version` (NULL:
	 * only if there is none) and returns 0 with *new_version, 1 when
	 * another writer came first (get again and redo the change), or -1. */
	int (*registry_load)(void *impl, const char *tenant, json_t **out, struct udfb_err *err);
	int (*registry_get)(void *impl, const char *tenant, const char *name, json_t **worker, char **version,
			    struct udfb_err *err);
	int (*registry_put)(void *impl, const char *tenant, json_t *worker, const char *version, char **new_version,
			    struct udfb_err *err);
	int (*registry_del)(void *impl, const char *tenant, const char *name, struct udfb_err *err);
};

struct udfb_scheduler {
	const struct udfb_scheduler_ops *ops;
	void *impl;
};

/* The backend the configuration names (cfg->scheduler), with its options
 * (cfg->scheduler_opts); an unknown name is UDFB_E_INVALID listing the known. */
int udfb_scheduler_new(struct udfb_scheduler *out, const struct udfb_config *cfg, struct udfb_err *err);

/* Endpoints from an operator's pattern: {key} (64 hex), {key12}, {tenant}
 * (as a DNS label).  It starts nothing: the operator runs the sandboxes.
 * list() names the max_listed endpoints handed out most recently. */
int udfb_scheduler_template_new(struct udfb_scheduler *out, const char *pattern, size_t max_listed,
				struct udfb_err *err);
/* Sandboxes on this machine under an OCI runtime (runc, runsc); its
 * settings are cfg->scheduler_opts (docs/configuration.md). */
int udfb_scheduler_local_new(struct udfb_scheduler *out, const struct udfb_config *cfg, struct udfb_err *err);
/* Sandboxes on a Kubernetes cluster (gVisor by default): a Deployment,
 * Service and NetworkPolicy per (tenant, key) in a namespace per tenant;
 * settings in cfg->scheduler_opts (docs/configuration.md). */
int udfb_scheduler_k8s_new(struct udfb_scheduler *out, const struct udfb_config *cfg, struct udfb_err *err);
void udfb_sandbox_clear(struct udfb_sandbox *s);

#endif
