/* Logging: see log.h. */
#include "common/log.h"

#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/text.h"

enum udfb_log_level udfb_log_threshold = UDFB_LOG_WARN;
static int log_json = 0;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *level_names[] = { "debug", "info", "warn", "error", "off" };

void udfb_log_init(enum udfb_log_level level, int json)
{
	udfb_log_threshold = level;
	log_json = json < 0 ? !isatty(STDERR_FILENO) : json;
}

int udfb_log_parse_level(const char *s, enum udfb_log_level *out)
{
	for (int i = 0; i <= UDFB_LOG_OFF; i++)
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum udfb_log_level)i;
			return 0;
		}
	return -1;
}

static void emit(enum udfb_log_level level, const struct udfb_log_fields *f, const char *msg)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char when[96];
	snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
	const char *names[] = { "tenant", "query_id", "key" };
	const char *values[] = { f ? f->tenant : NULL, f ? f->query_id : NULL, f ? f->key : NULL };

	pthread_mutex_lock(&log_lock);
	if (log_json) {
		json_t *o = json_pack("{s:s,s:s,s:s}", "ts", when, "level", level_names[level], "msg", msg);
		for (int k = 0; o && k < 3; k++)
			if (values[k])
				json_object_set_new(o, names[k], json_string(values[k]));
		char *s = o ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER) : NULL;
		if (s) /* never NULL: every value is valid UTF-8 (see vemit) */
			fprintf(stderr, "%s\n", s);
		else
			fprintf(stderr, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"(unencodable log line)\"}\n", when,
				level_names[level]);
		free(s);
		json_decref(o);
	} else {
		fprintf(stderr, "%s %-5s %s", when, level_names[level], msg);
		for (int k = 0; k < 3; k++)
			if (values[k])
				fprintf(stderr, " %s=%s", names[k], values[k]);
		fputc('\n', stderr);
	}
	pthread_mutex_unlock(&log_lock);
}

/* A field value as it may be written: bytes that are not UTF-8 (a tenant
 * from the wire) become '?', or jansson would refuse the whole line. */
static const char *clean(const char *v, char *buf, size_t size)
{
	if (!v)
		return NULL;
	size_t n = strlen(v);
	if (udfb_utf8_valid(v, n))
		return v;
	n = n < size ? n : udfb_utf8_trim(v, size - 1);
	memcpy(buf, v, n);
	buf[n] = '\0';
	udfb_utf8_sanitize(buf, n);
	return buf;
}

static void vemit(enum udfb_log_level level, const struct udfb_log_fields *f, const char *fmt, va_list ap)
{
	char msg[2048];
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);
	size_t len = n < 0 ? 0 : (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1;
	/* A long message is cut at a character boundary, whatever is cut. */
	if ((size_t)n >= sizeof(msg))
		len = udfb_utf8_trim(msg, len);
	msg[len] = '\0';
	udfb_utf8_sanitize(msg, len);
	char t[256], q[256], k[256];
	struct udfb_log_fields c = { 0 };
	if (f)
		c = (struct udfb_log_fields){ clean(f->tenant, t, sizeof(t)), clean(f->query_id, q, sizeof(q)),
					      clean(f->key, k, sizeof(k)) };
	emit(level, f ? &c : NULL, msg);
}

void udfb_log_emit(enum udfb_log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vemit(level, NULL, fmt, ap);
	va_end(ap);
}

void udfb_log_emit_fields(enum udfb_log_level level, const struct udfb_log_fields *f, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vemit(level, f, fmt, ap);
	va_end(ap);
}
