/* When to try a registry step again and how long to wait first: capped
 * exponential backoff with jitter, or the server's Retry-After. */
#ifndef UDFB_RETRY_H
#define UDFB_RETRY_H

#include <time.h>

#define UDFB_RETRY_DEFAULT 5 /* retries after the first try */
#define UDFB_RETRY_BASE_MS 250
#define UDFB_RETRY_CAP_MS 4000 /* one backoff never waits longer */
#define UDFB_RETRY_AFTER_CAP_MS 30000 /* nor a server's Retry-After */

/* 1 for statuses a retry may cure: 408, 429 and 5xx (501 and 505 excepted:
 * those never change). */
int udfb_retry_status(long status);
/* Retry-After as delta-seconds or an HTTP-date, in ms from now (capped);
 * -1 when absent or unreadable. */
long udfb_retry_after_ms(const char *value, time_t now);
/* The wait before retry number attempt (0-based): base * 2^attempt, capped,
 * with jitter in [half, full]; a Retry-After value wins when present. */
long udfb_retry_delay_ms(int attempt, const char *retry_after, time_t now);
void udfb_retry_sleep_ms(long ms);

#endif
