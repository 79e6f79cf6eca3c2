/* libcurl, loaded on the first call into it (a fetch, a push, a URL
 * parsed): the functions the library calls.  See lazylib.h. */
#define CURL_DISABLE_TYPECHECK /* the type-checking macros would rename our definitions */
#include <curl/curl.h>
#include <stdarg.h>

#include "cmd/lazylib.h"

/* Each function as (return type, name, parameters, arguments). */
#define CURL_FUNCS(X)                                                                                             \
	X(CURLcode, curl_global_init, (long flags), (flags))                                                      \
	X(CURL *, curl_easy_init, (void), ())                                                                     \
	X(CURLcode, curl_easy_perform, (CURL * c), (c))                                                           \
	X(const char *, curl_easy_strerror, (CURLcode rc), (rc))                                                  \
	X(char *, curl_easy_escape, (CURL * c, const char *s, int len), (c, s, len))                              \
	X(CURLHcode, curl_easy_header,                                                                            \
	  (CURL * c, const char *name, size_t index, unsigned int origin, int request, struct curl_header **out), \
	  (c, name, index, origin, request, out))                                                                 \
	X(struct curl_slist *, curl_slist_append, (struct curl_slist * l, const char *s), (l, s))                 \
	X(CURLM *, curl_multi_init, (void), ())                                                                   \
	X(CURLMcode, curl_multi_add_handle, (CURLM * m, CURL * c), (m, c))                                        \
	X(CURLMcode, curl_multi_remove_handle, (CURLM * m, CURL * c), (m, c))                                     \
	X(CURLMcode, curl_multi_perform, (CURLM * m, int *running), (m, running))                                 \
	X(CURLMcode, curl_multi_poll, (CURLM * m, struct curl_waitfd * fds, unsigned int n, int ms, int *ret),    \
	  (m, fds, n, ms, ret))                                                                                   \
	X(CURLMsg *, curl_multi_info_read, (CURLM * m, int *left), (m, left))                                     \
	X(CURLMcode, curl_multi_cleanup, (CURLM * m), (m))                                                        \
	X(CURLU *, curl_url, (void), ())                                                                          \
	X(CURLU *, curl_url_dup, (CURLU * u), (u))                                                                \
	X(CURLUcode, curl_url_get, (CURLU * u, CURLUPart what, char **part, unsigned int flags),                  \
	  (u, what, part, flags))                                                                                 \
	X(CURLUcode, curl_url_set, (CURLU * u, CURLUPart what, const char *part, unsigned int flags),             \
	  (u, what, part, flags))                                                                                 \
	X(const char *, curl_url_strerror, (CURLUcode rc), (rc))
#define CURL_VOID_FUNCS(X)                                         \
	X(void, curl_global_cleanup, (void), ())                   \
	X(void, curl_easy_cleanup, (CURL * c), (c))                \
	X(void, curl_easy_reset, (CURL * c), (c))                  \
	X(void, curl_free, (void *p), (p))                         \
	X(void, curl_slist_free_all, (struct curl_slist * l), (l)) \
	X(void, curl_url_cleanup, (CURLU * u), (u))

enum {
	CURL_FUNCS(UDFB_LAZY_ENUM) CURL_VOID_FUNCS(UDFB_LAZY_ENUM) UDFB_LAZY_curl_easy_setopt,
	UDFB_LAZY_curl_easy_getinfo,
	N_SYMS
};
static const char *const names[] = { CURL_FUNCS(UDFB_LAZY_NAME) CURL_VOID_FUNCS(UDFB_LAZY_NAME) "curl_easy_setopt",
				     "curl_easy_getinfo", NULL };
static void *syms[N_SYMS];
static struct udfb_lazylib lazy_lib = { "libcurl.so.4", names, syms, PTHREAD_ONCE_INIT };

CURL_FUNCS(UDFB_LAZY_FORWARD)
CURL_VOID_FUNCS(UDFB_LAZY_FORWARD_VOID)

/* The option's number says its argument's type (curl.h, CURLOPTTYPE_*),
 * as libcurl's own curl_easy_setopt reads it; a callback passes through as
 * a function pointer (all of one size and passing here, as libcurl assumes
 * when it reads each as its own type). */
CURLcode curl_easy_setopt(CURL *c, CURLoption opt, ...)
{
	CURLcode (*fn)(CURL *, CURLoption, ...) = UDFB_LAZY_FN(CURLcode, curl_easy_setopt, (CURL *, CURLoption, ...));
	va_list ap;
	va_start(ap, opt);
	CURLcode rc;
	if (opt < CURLOPTTYPE_OBJECTPOINT)
		rc = fn(c, opt, va_arg(ap, long));
	else if (opt < CURLOPTTYPE_FUNCTIONPOINT)
		rc = fn(c, opt, va_arg(ap, void *));
	else if (opt < CURLOPTTYPE_OFF_T)
		rc = fn(c, opt, va_arg(ap, void (*)(void)));
	else if (opt < CURLOPTTYPE_BLOB)
		rc = fn(c, opt, va_arg(ap, curl_off_t));
	else
		rc = fn(c, opt, va_arg(ap, void *));
	va_end(ap);
	return rc;
}

/* Every CURLINFO takes one pointer. */
CURLcode curl_easy_getinfo(CURL *c, CURLINFO info, ...)
{
	CURLcode (*fn)(CURL *, CURLINFO, ...) = UDFB_LAZY_FN(CURLcode, curl_easy_getinfo, (CURL *, CURLINFO, ...));
	va_list ap;
	va_start(ap, info);
	void *p = va_arg(ap, void *);
	va_end(ap);
	return fn(c, info, p);
}
