/* Service metrics, rendered in the Prometheus text format on the admin
 * port.  Updates are lock-free (atomics) so the gRPC fast path can count
 * without contention.  Labels are fixed enumerations (status codes, cache
 * outcome, sandbox state): no tenant-supplied text and no secret ever becomes
 * a label. */
#ifndef UDFB_METRICS_H
#define UDFB_METRICS_H

#include "buf.h"

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

/* Appends the Prometheus text exposition (format 0.0.4) to out. */
int udfb_metrics_render(struct udfb_metrics *m, struct udfb_buf *out);

#endif
