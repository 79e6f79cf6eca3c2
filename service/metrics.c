/* Service metrics: see metrics.h.
 *
 * Every value is a relaxed C11 atomic: a scrape may see one counter a few
 * increments ahead of another, which Prometheus tolerates, and in exchange
 * the gRPC path never takes a lock to count.  A histogram keeps one counter
 * per bucket (not cumulative) and derives _count from their total at render
 * time, so within one exposition the +Inf bucket always equals _count even
 * while observations race with the scrape.  Sums are integer nanoseconds:
 * atomic adds of doubles would need a compare-and-swap loop and lose
 * precision as the sum grows. */
#include "service/metrics.h"

#include <assert.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"

/* "Lock-free" is the point of this module: refuse to build where it is not. */
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "metrics need lock-free 64-bit atomics");

#define GRPC_CODES 17
#define GRPC_UNKNOWN 2
#define HIST_MAX 16 /* finite bounds plus the +Inf bucket */
#define NS_PER_S 1000000000ULL
/* A duration past this is a broken clock, not a build; clamping it keeps the
 * conversion to nanoseconds defined. */
#define MAX_SECONDS 1e9

static const char *const grpc_code_names[GRPC_CODES] = {
	"OK",	     "CANCELLED",	"UNKNOWN",	     "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
	"NOT_FOUND", "ALREADY_EXISTS",	"PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
	"ABORTED",   "OUT_OF_RANGE",	"UNIMPLEMENTED",     "INTERNAL",	   "UNAVAILABLE",
	"DATA_LOSS", "UNAUTHENTICATED",
};

/* The only label values a sandbox state can take: a caller's string is
 * matched against this table and never copied into the exposition. */
enum sandbox_state { SB_STARTING, SB_READY, SB_FAILED, SB_STOPPED, SB_STATES };
static const char *const sandbox_state_names[SB_STATES] = { "starting", "ready", "failed", "stopped" };

static const double call_bounds[] = { 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
static const double build_bounds[] = { 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300 };

#define NBOUNDS(a) (sizeof(a) / sizeof((a)[0]))
_Static_assert(NBOUNDS(call_bounds) < HIST_MAX && NBOUNDS(build_bounds) < HIST_MAX, "raise HIST_MAX");

struct hist {
	const double *bounds; /* ascending upper bounds, +Inf implied */
	size_t nbounds;
	atomic_ullong bucket[HIST_MAX]; /* bucket[nbounds] is (last bound, +Inf) */
	atomic_ullong sum_ns;
};

struct udfb_metrics {
	atomic_ullong calls[GRPC_CODES];
	struct hist call_duration;
	atomic_ullong cache_hit, cache_miss;
	atomic_ullong builds_ok, builds_error;
	struct hist build_duration;
	atomic_llong builds_in_flight;
	atomic_ullong fetched_bytes, pushed_bytes, wheels_installed;
	atomic_llong sandboxes[SB_STATES];
	atomic_ullong rpc[UDFB_RPCS][GRPC_CODES];
	atomic_ullong client_version[4][2];
	atomic_ullong import_requests;
	atomic_int workers_backend; /* index into backend_names */
	atomic_llong workers[2]; /* active, suspended */
	atomic_llong table_entries[UDFB_TABLES];
	atomic_ullong table_evicted[UDFB_TABLES];
	atomic_llong calls_waiting;
	atomic_ullong calls_refused;
	atomic_llong builds_pending, tenant_workers_max;
	atomic_ullong builds_refused[2]; /* max_queued_builds, max_queued_builds_total */
	atomic_ullong workers_refused;
	void (*sampler)(void *ctx);
	void *sampler_ctx;
};

static const char *const table_names[UDFB_TABLES] = { "fingerprints", "flights", "imports", "scripts" };

/* The backends a worker gauge can name: fixed, so no text of a caller's. */
static const char *const backend_names[] = { "local", "kubernetes", "template", "other" };
#define N_BACKENDS (sizeof(backend_names) / sizeof(backend_names[0]))

static const char *const rpc_names[UDFB_RPCS] = {
	"ApplyUdfResource", "ApplyResource", "CreateWorker", "AlterWorker",
	"DropWorker",	    "ListWorkers",   "Check",	     "unimplemented"
};
static const char *const marker_names[4] = { "udf_client_version", "resource_client_version", "worker_client_version",
					     "none" };

static void hist_init(struct hist *h, const double *bounds, size_t n)
{
	h->bounds = bounds;
	h->nbounds = n;
}

void udfb_metrics_new(struct udfb_metrics **out)
{
	assert(out);
	struct udfb_metrics *m = udfb_calloc(1, sizeof(*m));
	/* calloc's zero bytes are already a zero for lock-free integer atomics;
	 * only the histograms need their bounds set. */
	hist_init(&m->call_duration, call_bounds, NBOUNDS(call_bounds));
	hist_init(&m->build_duration, build_bounds, NBOUNDS(build_bounds));
	*out = m;
}

void udfb_metrics_free(struct udfb_metrics *m)
{
	free(m);
}

static void hist_observe(struct hist *h, double seconds)
{
	/* A clock stepped back gives a negative duration; count it as 0, and NaN
	 * too (it fails every comparison, so the test is written as !(x > 0)). */
	if (!(seconds > 0))
		seconds = 0;
	if (seconds > MAX_SECONDS)
		seconds = MAX_SECONDS;
	size_t i = 0;
	while (i < h->nbounds && seconds > h->bounds[i])
		i++;
	atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
	/* seconds is in [0, MAX_SECONDS]: adding 0.5 rounds, and libm stays out of the link. */
	unsigned long long ns = (unsigned long long)(seconds * 1e9 + 0.5);
	atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
}

static void add(atomic_ullong *c, unsigned long long n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

void udfb_metrics_call(struct udfb_metrics *m, int grpc_code, double seconds)
{
	assert(m);
	if (grpc_code < 0 || grpc_code >= GRPC_CODES)
		grpc_code = GRPC_UNKNOWN;
	add(&m->calls[grpc_code], 1);
	hist_observe(&m->call_duration, seconds);
}

void udfb_metrics_cache(struct udfb_metrics *m, int hit)
{
	assert(m);
	add(hit ? &m->cache_hit : &m->cache_miss, 1);
}

void udfb_metrics_build_done(struct udfb_metrics *m, double seconds, int ok)
{
	assert(m);
	add(ok ? &m->builds_ok : &m->builds_error, 1);
	hist_observe(&m->build_duration, seconds);
}

void udfb_metrics_builds_in_flight(struct udfb_metrics *m, int delta)
{
	assert(m);
	atomic_fetch_add_explicit(&m->builds_in_flight, delta, memory_order_relaxed);
}

/* A counter only goes up: a negative byte count is a caller's bug that must
 * not make the series look like a process restart to rate(). */
void udfb_metrics_bytes_fetched(struct udfb_metrics *m, long long n)
{
	assert(m);
	if (n > 0)
		add(&m->fetched_bytes, (unsigned long long)n);
}

void udfb_metrics_bytes_pushed(struct udfb_metrics *m, long long n)
{
	assert(m);
	if (n > 0)
		add(&m->pushed_bytes, (unsigned long long)n);
}

void udfb_metrics_wheels_installed(struct udfb_metrics *m, long n)
{
	assert(m);
	if (n > 0)
		add(&m->wheels_installed, (unsigned long long)n);
}

void udfb_metrics_rpc(struct udfb_metrics *m, enum udfb_rpc rpc, int grpc_code)
{
	assert(m);
	if ((unsigned)rpc >= UDFB_RPCS)
		rpc = UDFB_RPC_UNIMPLEMENTED;
	if (grpc_code < 0 || grpc_code >= GRPC_CODES)
		grpc_code = GRPC_UNKNOWN;
	add(&m->rpc[rpc][grpc_code], 1);
}

void udfb_metrics_client_version(struct udfb_metrics *m, int marker, int value_v1)
{
	assert(m);
	add(&m->client_version[marker >= 0 && marker < 4 ? marker : 3][value_v1 ? 0 : 1], 1);
}

void udfb_metrics_import_requests(struct udfb_metrics *m, long long n)
{
	assert(m);
	if (n > 0)
		add(&m->import_requests, (unsigned long long)n);
}

/* count is the current number in that state (a set, not an increment): the
 * scheduler owns the truth and reports it, so a missed event cannot leave the
 * gauge drifting forever. */
void udfb_metrics_sandboxes(struct udfb_metrics *m, const char *state, long long count)
{
	assert(m && state);
	for (int i = 0; i < SB_STATES; i++)
		if (strcmp(state, sandbox_state_names[i]) == 0) {
			atomic_store_explicit(&m->sandboxes[i], count, memory_order_relaxed);
			return;
		}
}

void udfb_metrics_workers(struct udfb_metrics *m, const char *backend, long long active, long long suspended)
{
	assert(m && backend);
	int b = (int)N_BACKENDS - 1;
	for (int i = 0; i < (int)N_BACKENDS - 1; i++)
		if (strcmp(backend, backend_names[i]) == 0)
			b = i;
	atomic_store_explicit(&m->workers_backend, b, memory_order_relaxed);
	atomic_store_explicit(&m->workers[0], active, memory_order_relaxed);
	atomic_store_explicit(&m->workers[1], suspended, memory_order_relaxed);
}

void udfb_metrics_table(struct udfb_metrics *m, enum udfb_cache_table t, long long entries, unsigned long long evicted)
{
	assert(m && t < UDFB_TABLES);
	atomic_store_explicit(&m->table_entries[t], entries, memory_order_relaxed);
	atomic_store_explicit(&m->table_evicted[t], evicted, memory_order_relaxed);
}

void udfb_metrics_calls_waiting(struct udfb_metrics *m, int delta)
{
	assert(m);
	atomic_fetch_add_explicit(&m->calls_waiting, delta, memory_order_relaxed);
}

void udfb_metrics_calls_refused(struct udfb_metrics *m)
{
	assert(m);
	add(&m->calls_refused, 1);
}

void udfb_metrics_quota_levels(struct udfb_metrics *m, long long builds_pending, long long tenant_workers_max)
{
	assert(m);
	atomic_store_explicit(&m->builds_pending, builds_pending, memory_order_relaxed);
	atomic_store_explicit(&m->tenant_workers_max, tenant_workers_max, memory_order_relaxed);
}

void udfb_metrics_build_refused(struct udfb_metrics *m, int per_tenant)
{
	assert(m);
	add(&m->builds_refused[per_tenant ? 0 : 1], 1);
}

void udfb_metrics_worker_refused(struct udfb_metrics *m)
{
	assert(m);
	add(&m->workers_refused, 1);
}

/* Set once, before the admin port serves: no race with a render. */
void udfb_metrics_set_sampler(struct udfb_metrics *m, void (*fn)(void *ctx), void *ctx)
{
	assert(m);
	m->sampler = fn;
	m->sampler_ctx = ctx;
}

/* ---- rendering ---- */

static unsigned long long get(atomic_ullong *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

static long long get_signed(atomic_llong *g)
{
	return atomic_load_explicit(g, memory_order_relaxed);
}

static int head(struct udfb_buf *out, const char *name, const char *type, const char *help)
{
	return udfb_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int render_hist(struct udfb_buf *out, const char *name, const char *help, struct hist *h)
{
	int rc = head(out, name, "histogram", help);
	unsigned long long cum = 0;
	for (size_t i = 0; i < h->nbounds; i++) {
		cum += get(&h->bucket[i]);
		rc |= udfb_buf_printf(out, "%s_bucket{le=\"%g\"} %llu\n", name, h->bounds[i], cum);
	}
	cum += get(&h->bucket[h->nbounds]);
	unsigned long long ns = get(&h->sum_ns);
	rc |= udfb_buf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name, cum);
	rc |= udfb_buf_printf(out, "%s_sum %llu.%09llu\n", name, ns / NS_PER_S, ns % NS_PER_S);
	rc |= udfb_buf_printf(out, "%s_count %llu\n", name, cum);
	return rc;
}

static int render_calls(struct udfb_buf *out, struct udfb_metrics *m)
{
	int rc = head(out, "udfb_calls_total", "counter",
		      "UDF calls (ApplyUdfResource, ApplyResource, CreateWorker with a script) by gRPC status code.");
	for (int i = 0; i < GRPC_CODES; i++)
		rc |= udfb_buf_printf(out, "udfb_calls_total{code=\"%s\"} %llu\n", grpc_code_names[i],
				      get(&m->calls[i]));
	rc |= render_hist(out, "udfb_call_duration_seconds", "UDF call duration.", &m->call_duration);
	rc |= head(out, "udfb_rpc_calls_total", "counter",
		   "Calls by RPC and gRPC status code (series with calls only).");
	for (int r = 0; r < UDFB_RPCS; r++)
		for (int i = 0; i < GRPC_CODES; i++)
			if (get(&m->rpc[r][i]))
				rc |= udfb_buf_printf(out, "udfb_rpc_calls_total{rpc=\"%s\",code=\"%s\"} %llu\n",
						      rpc_names[r], grpc_code_names[i], get(&m->rpc[r][i]));
	rc |= head(out, "udfb_client_versions_total", "counter",
		   "Calls by the Databend version marker they carried and its value (v1 or other).");
	for (int k = 0; k < 4; k++)
		for (int v = 0; v < 2; v++)
			rc |= udfb_buf_printf(out, "udfb_client_versions_total{marker=\"%s\",value=\"%s\"} %llu\n",
					      marker_names[k], v ? "other" : "v1", get(&m->client_version[k][v]));
	rc |= head(out, "udfb_import_requests_total", "counter",
		   "HTTP requests for imports without tags (first-byte probes and downloads).");
	rc |= udfb_buf_printf(out, "udfb_import_requests_total %llu\n", get(&m->import_requests));
	return rc;
}

static int render_builds(struct udfb_buf *out, struct udfb_metrics *m)
{
	int rc = head(out, "udfb_cache_lookups_total", "counter", "Image cache lookups by result.");
	rc |= udfb_buf_printf(out, "udfb_cache_lookups_total{result=\"hit\"} %llu\n", get(&m->cache_hit));
	rc |= udfb_buf_printf(out, "udfb_cache_lookups_total{result=\"miss\"} %llu\n", get(&m->cache_miss));
	rc |= head(out, "udfb_builds_total", "counter", "Finished image builds by result.");
	rc |= udfb_buf_printf(out, "udfb_builds_total{result=\"ok\"} %llu\n", get(&m->builds_ok));
	rc |= udfb_buf_printf(out, "udfb_builds_total{result=\"error\"} %llu\n", get(&m->builds_error));
	rc |= render_hist(out, "udfb_build_duration_seconds", "Image build duration.", &m->build_duration);
	rc |= head(out, "udfb_builds_in_flight", "gauge", "Image builds running now.");
	rc |= udfb_buf_printf(out, "udfb_builds_in_flight %lld\n", get_signed(&m->builds_in_flight));
	return rc;
}

static int render_io(struct udfb_buf *out, struct udfb_metrics *m)
{
	int rc = head(out, "udfb_fetched_bytes_total", "counter",
		      "Bytes downloaded: stage imports, packages, base image layers.");
	rc |= udfb_buf_printf(out, "udfb_fetched_bytes_total %llu\n", get(&m->fetched_bytes));
	rc |= head(out, "udfb_pushed_bytes_total", "counter", "Bytes pushed to image registries.");
	rc |= udfb_buf_printf(out, "udfb_pushed_bytes_total %llu\n", get(&m->pushed_bytes));
	rc |= head(out, "udfb_wheels_installed_total", "counter",
		   "Wheels unpacked into new package layers (a layer already in the store is not counted).");
	rc |= udfb_buf_printf(out, "udfb_wheels_installed_total %llu\n", get(&m->wheels_installed));
	rc |= head(out, "udfb_sandboxes", "gauge", "Sandboxes by state.");
	for (int i = 0; i < SB_STATES; i++)
		rc |= udfb_buf_printf(out, "udfb_sandboxes{state=\"%s\"} %lld\n", sandbox_state_names[i],
				      get_signed(&m->sandboxes[i]));
	rc |= head(out, "udfb_workers", "gauge",
		   "Workers (Databend's WORKER statements, UDF workers) by state and backend.");
	const char *b = backend_names[atomic_load_explicit(&m->workers_backend, memory_order_relaxed)];
	rc |= udfb_buf_printf(out, "udfb_workers{backend=\"%s\",state=\"active\"} %lld\n", b,
			      get_signed(&m->workers[0]));
	rc |= udfb_buf_printf(out, "udfb_workers{backend=\"%s\",state=\"suspended\"} %lld\n", b,
			      get_signed(&m->workers[1]));
	return rc;
}

static int render_memory(struct udfb_buf *out, struct udfb_metrics *m)
{
	int rc = head(out, "udfb_cached_entries", "gauge",
		      "Entries of the in-memory tables that grow with distinct calls (each at most max_cached_calls).");
	for (int t = 0; t < UDFB_TABLES; t++)
		rc |= udfb_buf_printf(out, "udfb_cached_entries{table=\"%s\"} %lld\n", table_names[t],
				      get_signed(&m->table_entries[t]));
	rc |= head(out, "udfb_cached_evictions_total", "counter",
		   "Entries those tables dropped, least recently used first, to stay within max_cached_calls.");
	for (int t = 0; t < UDFB_TABLES; t++)
		rc |= udfb_buf_printf(out, "udfb_cached_evictions_total{table=\"%s\"} %llu\n", table_names[t],
				      get(&m->table_evicted[t]));
	rc |= head(out, "udfb_calls_waiting", "gauge", "Calls waiting for a call worker (all tenants).");
	rc |= udfb_buf_printf(out, "udfb_calls_waiting %lld\n", get_signed(&m->calls_waiting));
	rc |= head(out, "udfb_calls_refused_total", "counter",
		   "Calls refused (RESOURCE_EXHAUSTED) because their tenant had max_queued_calls waiting.");
	rc |= udfb_buf_printf(out, "udfb_calls_refused_total %llu\n", get(&m->calls_refused));
	rc |= head(out, "udfb_builds_pending", "gauge", "Builds queued for a build worker or running (all tenants).");
	rc |= udfb_buf_printf(out, "udfb_builds_pending %lld\n", get_signed(&m->builds_pending));
	rc |= head(out, "udfb_builds_refused_total", "counter",
		   "New builds refused (RESOURCE_EXHAUSTED) by the limit named: the tenant's or all tenants' builds "
		   "queued or running.");
	rc |= udfb_buf_printf(out, "udfb_builds_refused_total{limit=\"max_queued_builds\"} %llu\n",
			      get(&m->builds_refused[0]));
	rc |= udfb_buf_printf(out, "udfb_builds_refused_total{limit=\"max_queued_builds_total\"} %llu\n",
			      get(&m->builds_refused[1]));
	rc |= head(out, "udfb_worker_records_max", "gauge",
		   "Worker records of the tenant that has the most (each tenant at most max_tenant_workers).");
	rc |= udfb_buf_printf(out, "udfb_worker_records_max %lld\n", get_signed(&m->tenant_workers_max));
	rc |= head(out, "udfb_workers_refused_total", "counter",
		   "New workers refused (RESOURCE_EXHAUSTED) because their tenant had max_tenant_workers.");
	rc |= udfb_buf_printf(out, "udfb_workers_refused_total %llu\n", get(&m->workers_refused));
	return rc;
}

int udfb_metrics_render(struct udfb_metrics *m, struct udfb_buf *out)
{
	assert(m && out);
	if (m->sampler)
		m->sampler(m->sampler_ctx);
	size_t start = out->len;
	int rc = render_calls(out, m);
	rc |= render_builds(out, m);
	rc |= render_io(out, m);
	rc |= render_memory(out, m);
	if (rc == 0)
		return 0;
	/* Past the buffer's limit: a truncated exposition would be misread as
	 * series that vanished, so hand back none of it. */
	out->len = start;
	if (out->data)
		out->data[start] = '\0';
	return -1;
}
