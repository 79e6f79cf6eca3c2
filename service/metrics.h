/* Service metrics, rendered in the Prometheus text format on the admin
 * port.  Updates are lock-free (atomics) so the gRPC fast path can count
 * without contention.  Labels are fixed enumerations (status codes, cache
 * outcome, sandbox state): no tenant-supplied text and no secret ever becomes
 * a label. */
#ifndef UDFB_METRICS_H
#define UDFB_METRICS_H

#include "common/buf.h"

struct udfb_metrics;

void udfb_metrics_new(struct udfb_metrics **out);
void udfb_metrics_free(struct udfb_metrics *m);

/* One finished ApplyUdfResource call with its gRPC status code (0..16). */
void udfb_metrics_call(struct udfb_metrics *m, int grpc_code, double seconds);
void udfb_metrics_cache(struct udfb_metrics *m, int hit);
/* A finished build: its duration feeds a histogram; ok says how it ended. */
void udfb_metrics_build_done(struct udfb_metrics *m, double seconds, int ok);
void udfb_metrics_builds_in_flight(struct udfb_metrics *m, int delta);
void udfb_metrics_bytes_fetched(struct udfb_metrics *m, long long n);
void udfb_metrics_bytes_pushed(struct udfb_metrics *m, long long n);
void udfb_metrics_wheels_installed(struct udfb_metrics *m, long n);
/* Gauge of sandboxes per state: "starting", "ready", "failed", "stopped". */
void udfb_metrics_sandboxes(struct udfb_metrics *m, const char *state, long long count);
/* Gauge of workers by state for the service's backend ("local",
 * "kubernetes", "template"; any other counts as "other"). */
void udfb_metrics_workers(struct udfb_metrics *m, const char *backend, long long active, long long suspended);

/* Calls by RPC: the names are a fixed table (UDFB_RPC_*); anything else is
 * counted as "unimplemented". */
enum udfb_rpc {
	UDFB_RPC_APPLY_UDF_RESOURCE,
	UDFB_RPC_APPLY_RESOURCE,
	UDFB_RPC_CREATE_WORKER,
	UDFB_RPC_ALTER_WORKER,
	UDFB_RPC_DROP_WORKER,
	UDFB_RPC_LIST_WORKERS,
	UDFB_RPC_HEALTH,
	UDFB_RPC_UNIMPLEMENTED,
	UDFB_RPCS
};
void udfb_metrics_rpc(struct udfb_metrics *m, enum udfb_rpc rpc, int grpc_code);
/* The version marker a call carried: marker is 0 udf_client_version, 1
 * resource_client_version, 2 worker_client_version, 3 none; value_v1 says
 * whether its value was "v1" (any other value counts as "other"). */
void udfb_metrics_client_version(struct udfb_metrics *m, int marker, int value_v1);
/* HTTP requests for imports without tags: probes (first byte) and downloads. */
void udfb_metrics_import_requests(struct udfb_metrics *m, long long n);

/* The service's in-memory tables that grow with distinct inputs, each
 * bounded by max_cached_calls (docs/service.md, "Memory"). */
enum udfb_cache_table {
	UDFB_TABLE_FINGERPRINTS, /* a request's exact bytes -> its flight */
	UDFB_TABLE_FLIGHTS, /* (tenant, key) -> building, ready, failed */
	UDFB_TABLE_IMPORTS, /* (tenant, stage location) -> content digest (scripts) */
	UDFB_TABLE_SCRIPTS, /* a script's bytes but its URLs -> its parts */
	UDFB_TABLES
};
/* Entries now (a set) and evicted so far (a total), per table. */
void udfb_metrics_table(struct udfb_metrics *m, enum udfb_cache_table t, long long entries, unsigned long long evicted);
/* Calls waiting for a call worker (a gauge, by delta); calls refused
 * because their tenant had max_queued_calls waiting. */
void udfb_metrics_calls_waiting(struct udfb_metrics *m, int delta);
void udfb_metrics_calls_refused(struct udfb_metrics *m);
/* The quotas of docs/service.md ("Quotas"): builds queued or running in
 * all and the most worker records one tenant has (gauges, set); a new
 * build refused by max_queued_builds (per_tenant) or
 * max_queued_builds_total; a new worker refused by max_tenant_workers. */
void udfb_metrics_quota_levels(struct udfb_metrics *m, long long builds_pending, long long tenant_workers_max);
void udfb_metrics_build_refused(struct udfb_metrics *m, int per_tenant);
void udfb_metrics_worker_refused(struct udfb_metrics *m);
/* fn(ctx) runs at the start of every render, to set gauges that are
 * cheaper to read at a scrape than to keep on every call. */
void udfb_metrics_set_sampler(struct udfb_metrics *m, void (*fn)(void *ctx), void *ctx);

/* Appends the Prometheus text exposition (format 0.0.4) to out. */
int udfb_metrics_render(struct udfb_metrics *m, struct udfb_buf *out);

#endif
