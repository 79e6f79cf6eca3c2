/* Small HTTP GETs to a sandbox's status server (/health, /stats) through
 * its endpoint's host address: libcurl, no proxy, a hard timeout and a cap
 * on the body. */
#ifndef UDFB_PROBE_H
#define UDFB_PROBE_H

#include "common/err.h"

/* *status is the HTTP status (0 when no answer came); *body (free() it) is
 * at most 64 KiB.  Returns -1 only for a failure to even try. */
int udfb_probe_get(int *status, char **body, const char *url, long timeout_ms, struct udfb_err *err);
/* 1 when GET http://host:port/health answers 200 "1" (host: "127.0.0.1", "[::1]"). */
int udfb_probe_health(const char *host, int port, long timeout_ms);

#endif
