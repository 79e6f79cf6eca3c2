/* libcurl, loaded when first used.
 *
 * Loading libcurl and what it links (GnuTLS or OpenSSL, nghttp2, libssh2,
 * Kerberos, LDAP, libpsl, libidn2, brotli...) costs a process 5-9 ms of
 * dynamic linking before main(), which a build that never touches the
 * network (an oci: base and destination, no imports, no packages) paid for
 * nothing: about a third of a whole native build (docs/benchmarks.md).  So
 * the binary is not linked against libcurl; these definitions, with the
 * names and prototypes of <curl/curl.h>, open libcurl.so.4 on the first
 * call (dlopen, once) and forward to it.  A missing libcurl is a clear
 * abort, as a missing shared library would have been at start. */
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define LIBCURL "libcurl.so.4"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static void *lib;

static void open_lib(void)
{
	lib = dlopen(LIBCURL, RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		fprintf(stderr, "udf-builder: cannot load %s: %s\n", LIBCURL, dlerror());
		abort();
	}
}

static void *sym(const char *name)
{
	pthread_once(&once, open_lib);
	void *p = dlsym(lib, name);
	if (!p) {
		fprintf(stderr, "udf-builder: %s lacks %s\n", LIBCURL, name);
		abort();
	}
	return p;
}

/* Each function looks its target up once; the pointer is then read without
 * a lock (a word written by whichever thread got there first, same value). */
#define FWD(ret, name, params, args)                                                                          \
	ret name params                                                                                        \
	{                                                                                                      \
		static ret(*volatile fn) params;                                                               \
		if (!fn)                                                                                       \
			fn = (ret(*) params)sym(#name);                                                        \
		return fn args;                                                                                \
	}

FWD(CURLcode, curl_global_init, (long flags), (flags))
FWD(CURL *, curl_easy_init, (void), ())
FWD(CURLcode, curl_easy_perform, (CURL * c), (c))
FWD(const char *, curl_easy_strerror, (CURLcode e), (e))
FWD(const char *, curl_url_strerror, (CURLUcode e), (e))
FWD(char *, curl_easy_escape, (CURL * c, const char *s, int n), (c, s, n))
FWD(CURLHcode, curl_easy_header,
    (CURL * c, const char *name, size_t index, unsigned int origin, int request, struct curl_header **hout),
    (c, name, index, origin, request, hout))
FWD(struct curl_slist *, curl_slist_append, (struct curl_slist * l, const char *s), (l, s))
FWD(CURLU *, curl_url, (void), ())
FWD(CURLU *, curl_url_dup, (CURLU * u), (u))
FWD(CURLUcode, curl_url_set, (CURLU * u, CURLUPart what, const char *part, unsigned int flags), (u, what, part, flags))
FWD(CURLUcode, curl_url_get, (CURLU * u, CURLUPart what, char **part, unsigned int flags), (u, what, part, flags))
FWD(CURLM *, curl_multi_init, (void), ())
FWD(CURLMcode, curl_multi_add_handle, (CURLM * m, CURL *c), (m, c))
FWD(CURLMcode, curl_multi_remove_handle, (CURLM * m, CURL *c), (m, c))
FWD(CURLMcode, curl_multi_perform, (CURLM * m, int *running), (m, running))
FWD(CURLMcode, curl_multi_poll, (CURLM * m, struct curl_waitfd extra[], unsigned int n, int timeout_ms, int *ret),
    (m, extra, n, timeout_ms, ret))
FWD(CURLMsg *, curl_multi_info_read, (CURLM * m, int *left), (m, left))
FWD(CURLMcode, curl_multi_cleanup, (CURLM * m), (m))

#define FWD_VOID(name, params, args)                                                                          \
	void name params                                                                                       \
	{                                                                                                      \
		static void(*volatile fn) params;                                                              \
		if (!fn)                                                                                       \
			fn = (void(*) params)sym(#name);                                                       \
		fn args;                                                                                       \
	}

FWD_VOID(curl_global_cleanup, (void), ())
FWD_VOID(curl_easy_cleanup, (CURL * c), (c))
FWD_VOID(curl_easy_reset, (CURL * c), (c))
FWD_VOID(curl_free, (void *p), (p))
FWD_VOID(curl_slist_free_all, (struct curl_slist * l), (l))
FWD_VOID(curl_url_cleanup, (CURLU * u), (u))

/* The option's number says its argument's type (curl.h, CURLOPTTYPE_*). */
CURLcode curl_easy_setopt(CURL *c, CURLoption opt, ...)
{
	static CURLcode (*volatile fn)(CURL *, CURLoption, ...);
	if (!fn)
		fn = (CURLcode(*)(CURL *, CURLoption, ...))sym("curl_easy_setopt");
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

/* Every CURLINFO takes a pointer. */
CURLcode curl_easy_getinfo(CURL *c, CURLINFO info, ...)
{
	static CURLcode (*volatile fn)(CURL *, CURLINFO, ...);
	if (!fn)
		fn = (CURLcode(*)(CURL *, CURLINFO, ...))sym("curl_easy_getinfo");
	va_list ap;
	va_start(ap, info);
	void *p = va_arg(ap, void *);
	va_end(ap);
	return fn(c, info, p);
}
