/* The one libcurl request helper of every HTTP front end: the registry
 * client (registry-client/http.c), the import fetcher (fetch/fetch.c, which
 * drives its handles from its own multi loop), the Kubernetes API client
 * (scheduler/k8s_api.c) and the sandbox probes (scheduler/probe.c).
 *
 * It owns what they share, so it is decided once: libcurl's global
 * initialisation; a handle's setup (allowed protocols, no signals, connect,
 * total and low-speed timeouts, TLS verification, CA and client
 * certificate, proxy policy, user agent); a response body captured into a
 * bounded udfb_buf; response headers read with a cap; a CURLcode or an
 * HTTP status turned into an udfb_err category; and URL redaction, so that
 * a presigned URL's signature (its query) or a URL's credentials never
 * reach an error or a log line.  What each front end adds stays with it:
 * the registry's uploads, auth and retries, the fetcher's SSRF guard and
 * file sinks, the Kubernetes credentials. */
#ifndef UDFB_CURLX_H
#define UDFB_CURLX_H

#include <curl/curl.h>
#include <stddef.h>

#include "common/buf.h"
#include "common/err.h"

/* Which proxy a handle may use. */
enum udfb_curl_proxy {
	UDFB_PROXY_ENV, /* libcurl's default: http_proxy, https_proxy, no_proxy */
	UDFB_PROXY_NONE, /* never: loopback probes, and the fetcher (a proxy would hide the address from its guard) */
};

struct udfb_curl_opts {
	const char *protocols; /* NULL: "http,https", for redirects too */
	int follow; /* follow redirects, at most 5 */
	enum udfb_curl_proxy proxy;
	long connect_timeout_ms; /* 0: 10 s */
	long timeout_ms; /* the whole transfer; 0: none */
	long low_speed_time_s; /* fail below 1 KiB/s for this long; 0: never */
	const char *ca_bundle; /* NULL: the system's */
	int insecure; /* 1: no peer or host verification (hosts the operator listed only) */
	const char *cert_file, *key_file; /* a TLS client certificate, or NULL */
	const char *user_agent; /* NULL: "udf-builder/VERSION" */
};

/* curl_global_init once per process, whoever asks first. */
int udfb_curl_global_init(struct udfb_err *err);

/* Apply o to c (fresh, or after curl_easy_reset) for url.  errbuf, when not
 * NULL, receives libcurl's message for a failure (CURL_ERROR_SIZE bytes). */
void udfb_curl_setup(CURL *c, const char *url, const struct udfb_curl_opts *o, char *errbuf);
/* A new handle set up as udfb_curl_setup does; aborts when libcurl cannot
 * make one (out of memory, as udfb_malloc does). */
CURL *udfb_curl_open(const char *url, const struct udfb_curl_opts *o, char *errbuf);

/* A response body into a bounded buffer: udfb_curl_body_to(c, &sink) and
 * the transfer fails (CURLE_WRITE_ERROR) with sink.too_big set at the
 * buffer's limit rather than grow past it. */
struct udfb_curl_sink {
	struct udfb_buf *buf;
	int too_big;
};
void udfb_curl_body_to(CURL *c, struct udfb_curl_sink *s);

/* The value of a header of the last response (after redirects), at most
 * max bytes (a longer one is cut); NULL when absent.  free() it. */
char *udfb_curl_header(CURL *c, const char *name, size_t max);
/* Every value of a repeated header, joined with ", " (RFC 9110 allows it),
 * at most max bytes in all; NULL when absent. */
char *udfb_curl_header_all(CURL *c, const char *name, size_t max);

/* One request on a fresh handle, for the simple front ends: method (NULL:
 * GET, else a custom request), extra headers, an optional body sent as is,
 * the response body into resp (bounded; may be NULL).  Returns 0 when a
 * response came, whatever its status (*status), else -1 with err set to
 * "<what>: <why>" in udfb_curl_cat's category (EXHAUSTED for a body past
 * resp's limit). */
struct udfb_curl_call {
	const char *method;
	const char *url;
	const struct curl_slist *headers;
	const char *body;
	struct udfb_buf *resp;
	const char *what; /* names the peer or object in the error, never the URL */
};
int udfb_curl_request(const struct udfb_curl_call *call, const struct udfb_curl_opts *o, long *status,
		      struct udfb_err *err);

/* ---- errors: decided once ---- */

/* The category of a transfer that got no (whole) response: INVALID for a
 * URL or redirect we were given that cannot be followed, INTERNAL for
 * libcurl's own failures, UNAVAILABLE for the peer and the network. */
enum udfb_errcat udfb_curl_cat(CURLcode rc);
/* A failure worth another attempt (connection, timeout, a cut transfer). */
int udfb_curl_transient(CURLcode rc);
/* The category of a peer's HTTP status: OK for 2xx; NOTFOUND for 404 and
 * 410; EXHAUSTED for 413; UNAVAILABLE for 408, 429 and 5xx (retrying may
 * help); INVALID for any other 4xx; UNAVAILABLE for anything else. */
enum udfb_errcat udfb_http_status_cat(long status);
/* The failure as one line: libcurl's message (errbuf, redacted) when it
 * left one, else its code's text.  Never a URL's query or credentials.
 * Returns a pointer to errbuf (rewritten in place) or static text. */
const char *udfb_curl_why(CURLcode rc, char *errbuf);
/* udfb_err_set(err, udfb_curl_cat(rc), "<fmt...>: <why>"); returns -1. */
int udfb_curl_err(struct udfb_err *err, CURLcode rc, char *errbuf, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* ---- URLs ---- */

/* url without its credentials, query and fragment: "https://host:port/path",
 * with "?REDACTED" in place of a query that was there.  For logs and
 * messages; free() it. */
char *udfb_url_redact(const char *url);
/* The same applied to every "scheme://..." inside a line of text held in
 * size bytes, in place (cut to fit). */
void udfb_url_redact_text(char *text, size_t size);

#endif
