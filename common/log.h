/* The one logging module.  The level is checked before the arguments are
 * formatted.  Lines are JSON when stderr is not a terminal, text when it is.
 * Nothing that may carry a secret (a presigned URL, a token, a password) is
 * ever passed here: callers log import locations, never URLs. */
#ifndef UDFB_LOG_H
#define UDFB_LOG_H

enum udfb_log_level { UDFB_LOG_DEBUG, UDFB_LOG_INFO, UDFB_LOG_WARN, UDFB_LOG_ERROR, UDFB_LOG_OFF };

extern enum udfb_log_level udfb_log_threshold;

void udfb_log_init(enum udfb_log_level level, int json);
int udfb_log_parse_level(const char *s, enum udfb_log_level *out);
void udfb_log_emit(enum udfb_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Fields a request carries into its log lines (NULL ones are left out). */
struct udfb_log_fields {
	const char *tenant;
	const char *query_id;
	const char *key;
};

void udfb_log_emit_fields(enum udfb_log_level level, const struct udfb_log_fields *f, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define udfb_logf(level, fields, ...)                                         \
	do {                                                                  \
		if ((level) >= udfb_log_threshold)                            \
			udfb_log_emit_fields((level), (fields), __VA_ARGS__); \
	} while (0)

#define udfb_log(level, ...)                                 \
	do {                                                 \
		if ((level) >= udfb_log_threshold)           \
			udfb_log_emit((level), __VA_ARGS__); \
	} while (0)
#define udfb_debug(...) udfb_log(UDFB_LOG_DEBUG, __VA_ARGS__)
#define udfb_info(...) udfb_log(UDFB_LOG_INFO, __VA_ARGS__)
#define udfb_warn(...) udfb_log(UDFB_LOG_WARN, __VA_ARGS__)
#define udfb_error(...) udfb_log(UDFB_LOG_ERROR, __VA_ARGS__)

#endif
