/* Backoff and Retry-After: see retry.h. */
#include "registry-client/retry.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int udfb_retry_status(long status)
{
	return status == 408 || status == 429 || (status >= 500 && status <= 599 && status != 501 && status != 505);
}

static long cap_after(long long ms)
{
	return ms > UDFB_RETRY_AFTER_CAP_MS ? UDFB_RETRY_AFTER_CAP_MS : (long)ms;
}

long udfb_retry_after_ms(const char *value, time_t now)
{
	if (!value)
		return -1;
	while (*value == ' ' || *value == '\t')
		value++;
	if (*value >= '0' && *value <= '9') {
		char *end;
		errno = 0;
		unsigned long long s = strtoull(value, &end, 10);
		while (*end == ' ' || *end == '\t')
			end++;
		if (*end != '\0')
			return -1;
		return errno == ERANGE || s > UDFB_RETRY_AFTER_CAP_MS / 1000 ? UDFB_RETRY_AFTER_CAP_MS
									     : (long)(s * 1000);
	}
	/* IMF-fixdate, the one form RFC 9110 requires senders to use. */
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	const char *end = strptime(value, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (!end || *end != '\0')
		return -1;
	time_t when = timegm(&tm);
	if (when == (time_t)-1)
		return -1;
	return when <= now ? 0 : cap_after((long long)(when - now) * 1000);
}

long udfb_retry_delay_ms(int attempt, const char *retry_after, time_t now)
{
	long after = udfb_retry_after_ms(retry_after, now);
	if (after >= 0)
		return after;
	long ms = UDFB_RETRY_BASE_MS;
	for (int k = 0; k < attempt && ms < UDFB_RETRY_CAP_MS; k++)
		ms *= 2;
	if (ms > UDFB_RETRY_CAP_MS)
		ms = UDFB_RETRY_CAP_MS;
	/* Jitter keeps a fleet of replicas from retrying in lock step. */
	return ms / 2 + (long)((unsigned long)random() % (unsigned long)(ms / 2 + 1));
}

void udfb_retry_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}
