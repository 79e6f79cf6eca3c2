/* One HTTP exchange over a reusable libcurl handle, the way the registry
 * client needs it: a body from memory, a file or a stream; a response body
 * into a bounded buffer or a sink; the few response headers the
 * distribution API speaks through.  No auth and no retries here (registry.c
 * does those), and nothing here logs: URLs and headers may carry secrets. */
#ifndef UDFB_HTTP_H
#define UDFB_HTTP_H

#include <curl/curl.h>

#include "common/buf.h"
#include "common/err.h"

#define UDFB_HTTP_ERROR_BODY_MAX (64u << 10)

enum udfb_http_body_kind { UDFB_BODY_NONE, UDFB_BODY_MEM, UDFB_BODY_FILE, UDFB_BODY_STREAM };

/* A stream reader returns bytes read, 0 at the end, -1 to abort. */
typedef long (*udfb_http_reader)(char *p, size_t n, void *ctx);
/* A sink returns 0, or -1 to abort the transfer. */
typedef int (*udfb_http_sink)(const char *p, size_t n, void *ctx);

struct udfb_http_body {
	enum udfb_http_body_kind kind;
	const char *data; /* MEM */
	int fd; /* FILE: read with pread from offset 0 */
	long long size; /* MEM, FILE, STREAM: the exact length sent */
	udfb_http_reader read;
	void *read_ctx;
};

/* What a host may use: https verified (the default); also plain http
 * (loopback); also unverified https and plain http (listed as insecure). */
enum udfb_host_policy { UDFB_HOST_SECURE, UDFB_HOST_LOOPBACK, UDFB_HOST_INSECURE };

struct udfb_tls {
	const char *ca_bundle; /* NULL: the system's */
	int verify; /* 0 only for hosts the operator listed as insecure */
};

struct udfb_http_req {
	const char *method; /* GET HEAD POST PUT PATCH DELETE */
	const char *url;
	struct curl_slist *headers;
	struct udfb_http_body body;
	struct udfb_buf *resp; /* 2xx body (bounded); NULL: kept only for errors */
	udfb_http_sink sink; /* 2xx body streamed here instead */
	void *sink_ctx;
	int follow; /* follow redirects (blob GETs land on storage) */
	const struct udfb_tls *tls;
};

struct udfb_http_resp {
	long status; /* 0 when no response came */
	CURLcode rc; /* CURLE_OK when a response came */
	char curl_msg[CURL_ERROR_SIZE];
	int too_big; /* the body passed its buffer's limit */
	int sink_failed;
	long long body_bytes;
	struct udfb_buf err_body; /* non-2xx body, bounded */
	char *www_authenticate; /* every challenge, joined with ", " */
	char *location;
	char *docker_digest;
	char *content_type;
	char *retry_after;
	char *range;
};

/* Performs the request on c (reset first: connections stay cached).
 * Returns 0 when an HTTP response came (any status), -1 otherwise with
 * resp->rc and resp->curl_msg set; never fills an udfb_err, so the caller
 * names the object. */
int udfb_http_perform(CURL *c, const struct udfb_http_req *req, struct udfb_http_resp *resp);
void udfb_http_resp_clear(struct udfb_http_resp *r);

/* The failure as one line without a URL: curl's own message (redacted
 * by udfb_http_perform), else its code's text. */
const char *udfb_http_failure(const struct udfb_http_resp *r);
/* True for a loopback host ("127.x.y.z", "[::1]", "localhost"), port ignored. */
int udfb_http_host_is_loopback(const char *host);
/* "host[:port]" of an absolute URL; NULL when it has none. */
char *udfb_http_url_host(const char *url);

#endif
