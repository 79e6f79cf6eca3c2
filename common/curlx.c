/* The one libcurl request helper: see curlx.h. */
#include "common/curlx.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/version.h"

#define DEFAULT_CONNECT_MS 10000L
#define MAX_REDIRS 5L
/* The low-speed floor: below it for low_speed_time_s, a peer counts as stalled. */
#define LOW_SPEED_BYTES 1024L

static pthread_once_t once = PTHREAD_ONCE_INIT;
static CURLcode init_rc;

static void init(void)
{
	init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int udfb_curl_global_init(struct udfb_err *err)
{
	pthread_once(&once, init);
	if (init_rc != CURLE_OK)
		return udfb_err_set(err, UDFB_E_INTERNAL, "libcurl: %s", curl_easy_strerror(init_rc));
	return 0;
}

/* ---- handle setup ---- */

static void setup_tls(CURL *c, const struct udfb_curl_opts *o)
{
	if (o->ca_bundle)
		curl_easy_setopt(c, CURLOPT_CAINFO, o->ca_bundle);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, o->insecure ? 0L : 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, o->insecure ? 0L : 2L);
	if (o->cert_file)
		curl_easy_setopt(c, CURLOPT_SSLCERT, o->cert_file);
	if (o->key_file)
		curl_easy_setopt(c, CURLOPT_SSLKEY, o->key_file);
}

void udfb_curl_setup(CURL *c, const char *url, const struct udfb_curl_opts *o, char *errbuf)
{
	const char *protocols = o->protocols ? o->protocols : "http,https";
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, protocols);
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, protocols);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, o->follow ? 1L : 0L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, MAX_REDIRS);
	/* Threads and libcurl's SIGALRM-based resolver timeouts do not mix. */
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
			 o->connect_timeout_ms > 0 ? o->connect_timeout_ms : DEFAULT_CONNECT_MS);
	if (o->timeout_ms > 0)
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, o->timeout_ms);
	if (o->low_speed_time_s > 0) {
		curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, LOW_SPEED_BYTES);
		curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, o->low_speed_time_s);
	}
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	if (o->proxy == UDFB_PROXY_NONE)
		curl_easy_setopt(c, CURLOPT_PROXY, "");
	curl_easy_setopt(c, CURLOPT_USERAGENT, o->user_agent ? o->user_agent : "udf-builder/" UDFB_VERSION);
	if (errbuf) {
		errbuf[0] = '\0';
		curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	}
	setup_tls(c, o);
}

CURL *udfb_curl_open(const char *url, const struct udfb_curl_opts *o, char *errbuf)
{
	CURL *c = curl_easy_init();
	if (!c)
		udfb_oom(); /* curl_easy_init fails only when it cannot allocate */
	udfb_curl_setup(c, url, o, errbuf);
	return c;
}

/* ---- bounded capture ---- */

static size_t on_body(char *p, size_t sz, size_t n, void *ctx)
{
	struct udfb_curl_sink *s = ctx;
	if (udfb_buf_add(s->buf, p, sz * n) < 0) {
		s->too_big = 1;
		return 0; /* fails the transfer: CURLE_WRITE_ERROR */
	}
	return sz * n;
}

void udfb_curl_body_to(CURL *c, struct udfb_curl_sink *s)
{
	s->too_big = 0;
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
}

char *udfb_curl_header(CURL *c, const char *name, size_t max)
{
	struct curl_header *h;
	if (curl_easy_header(c, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK || !h->value)
		return NULL;
	return udfb_strndup(h->value, max);
}

char *udfb_curl_header_all(CURL *c, const char *name, size_t max)
{
	struct curl_header *h;
	struct udfb_buf b;
	udfb_buf_init(&b, max);
	for (size_t k = 0; curl_easy_header(c, name, k, CURLH_HEADER, -1, &h) == CURLHE_OK; k++) {
		if ((k && udfb_buf_addstr(&b, ", ") < 0) || udfb_buf_addstr(&b, h->value) < 0)
			break;
		if (k + 1 >= h->amount)
			break;
	}
	return b.data ? udfb_buf_steal(&b, NULL) : NULL;
}

/* ---- one simple request ---- */

static void set_method(CURL *c, const struct udfb_curl_call *call)
{
	if (call->method && strcmp(call->method, "GET") != 0)
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, call->method);
	if (call->body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(call->body));
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, call->body);
	}
}

static size_t on_discard(char *p, size_t sz, size_t n, void *ctx)
{
	(void)p, (void)ctx;
	return sz * n;
}

int udfb_curl_request(const struct udfb_curl_call *call, const struct udfb_curl_opts *o, long *status,
		      struct udfb_err *err)
{
	*status = 0;
	if (udfb_curl_global_init(err) < 0)
		return -1;
	char errbuf[CURL_ERROR_SIZE];
	CURL *c = udfb_curl_open(call->url, o, errbuf);
	struct udfb_curl_sink sink = { .buf = call->resp };
	if (call->resp)
		udfb_curl_body_to(c, &sink);
	else
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_discard);
	set_method(c, call);
	if (call->headers)
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, call->headers);
	CURLcode rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	curl_easy_cleanup(c);
	if (sink.too_big) {
		*status = 0;
		return udfb_err_set(err, UDFB_E_EXHAUSTED, "%s: response larger than %zu bytes", call->what,
				    call->resp->max);
	}
	if (rc != CURLE_OK) {
		*status = 0;
		return udfb_curl_err(err, rc, errbuf, "%s", call->what);
	}
	return 0;
}

/* ---- errors ---- */

enum udfb_errcat udfb_curl_cat(CURLcode rc)
{
	switch (rc) {
	case CURLE_OK: return UDFB_E_OK;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_TOO_MANY_REDIRECTS: return UDFB_E_INVALID;
	case CURLE_FILESIZE_EXCEEDED: return UDFB_E_EXHAUSTED;
	case CURLE_OUT_OF_MEMORY:
	case CURLE_FAILED_INIT:
	case CURLE_BAD_FUNCTION_ARGUMENT:
	case CURLE_UNKNOWN_OPTION:
	case CURLE_NOT_BUILT_IN: return UDFB_E_INTERNAL;
	default: return UDFB_E_UNAVAILABLE;
	}
}

int udfb_curl_transient(CURLcode rc)
{
	return rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_OPERATION_TIMEDOUT ||
	       rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR || rc == CURLE_GOT_NOTHING ||
	       rc == CURLE_PARTIAL_FILE || rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_HTTP2 ||
	       rc == CURLE_HTTP2_STREAM;
}

enum udfb_errcat udfb_http_status_cat(long status)
{
	if (status >= 200 && status <= 299)
		return UDFB_E_OK;
	if (status == 404 || status == 410)
		return UDFB_E_NOTFOUND;
	if (status == 413)
		return UDFB_E_EXHAUSTED;
	if (status == 408 || status == 429 || status >= 500)
		return UDFB_E_UNAVAILABLE;
	if (status >= 400)
		return UDFB_E_INVALID;
	return UDFB_E_UNAVAILABLE;
}

const char *udfb_curl_why(CURLcode rc, char *errbuf)
{
	if (!errbuf || !errbuf[0])
		return curl_easy_strerror(rc);
	size_t n = strlen(errbuf);
	while (n > 0 && (errbuf[n - 1] == '\n' || errbuf[n - 1] == '\r'))
		errbuf[--n] = '\0';
	udfb_url_redact_text(errbuf, CURL_ERROR_SIZE);
	return errbuf;
}

int udfb_curl_err(struct udfb_err *err, CURLcode rc, char *errbuf, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *what = udfb_vasprintf(fmt, ap);
	va_end(ap);
	udfb_err_set(err, udfb_curl_cat(rc), "%s: %s", what, udfb_curl_why(rc, errbuf));
	free(what);
	return -1;
}

/* ---- redaction ---- */

/* scheme "://" [userinfo "@"] host [path] ["?" query] ["#" fragment], kept
 * as scheme://host/path[?REDACTED]. */
static void redact_span(struct udfb_buf *out, const char *s, size_t n)
{
	const char *end = s + n, *sep = strstr(s, "://");
	if (!sep || sep >= end) {
		udfb_buf_add(out, s, n);
		return;
	}
	const char *auth = sep + 3, *p = auth;
	while (p < end && *p != '/' && *p != '?' && *p != '#')
		p++;
	const char *at = NULL;
	for (const char *q = auth; q < p; q++)
		if (*q == '@')
			at = q;
	udfb_buf_add(out, s, (size_t)(auth - s));
	const char *host = at ? at + 1 : auth;
	udfb_buf_add(out, host, (size_t)(p - host));
	const char *path = p;
	while (p < end && *p != '?' && *p != '#')
		p++;
	udfb_buf_add(out, path, (size_t)(p - path));
	if (p < end && *p == '?')
		udfb_buf_addstr(out, "?REDACTED");
}

char *udfb_url_redact(const char *url)
{
	struct udfb_buf b;
	udfb_buf_init(&b, strlen(url) + 16);
	redact_span(&b, url, strlen(url));
	return b.data ? udfb_buf_steal(&b, NULL) : udfb_strdup("");
}

static int scheme_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' || c == '-' ||
	       c == '.';
}

static int url_end(char c)
{
	return c == '\0' || c == ' ' || c == '\t' || c == '"' || c == '\'' || c == '<' || c == '>' || c == '\n';
}

void udfb_url_redact_text(char *text, size_t size)
{
	if (!strstr(text, "://"))
		return;
	struct udfb_buf b;
	udfb_buf_init(&b, 2 * size + 64);
	const char *p = text;
	for (const char *sep; (sep = strstr(p, "://"));) {
		const char *start = sep;
		while (start > p && scheme_char(start[-1]))
			start--;
		const char *end = sep + 3;
		while (!url_end(*end))
			end++;
		udfb_buf_add(&b, p, (size_t)(start - p));
		redact_span(&b, start, (size_t)(end - start));
		p = end;
	}
	udfb_buf_addstr(&b, p);
	snprintf(text, size, "%s", b.data ? b.data : "");
	udfb_buf_free(&b);
}
