/* The HTTP admin port (libmicrohttpd): /healthz (the process is up),
 * /readyz (the store and scheduler are ready), /metrics (Prometheus text).
 * Anything else is 404; only GET and HEAD are served. */
#ifndef UDFB_ADMIN_H
#define UDFB_ADMIN_H

#include "common/err.h"
#include "service/metrics.h"

struct udfb_admin;

/* addr is "HOST:PORT" (IPv4 or [IPv6]); port 0 picks a free one, reported
 * by udfb_admin_port().  ready() is called per /readyz request. */
int udfb_admin_start(struct udfb_admin **out, const char *addr, struct udfb_metrics *m, int (*ready)(void *ctx),
		     void *ctx, struct udfb_err *err);
int udfb_admin_port(const struct udfb_admin *a);
void udfb_admin_stop(struct udfb_admin *a);

#endif
