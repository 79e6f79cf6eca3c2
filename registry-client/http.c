/* One HTTP exchange over libcurl: see http.h. */
#include "registry-client/http.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/curlx.h"

#define HEADER_VALUE_MAX (16u << 10)

struct xfer {
	const struct udfb_http_req *req;
	struct udfb_http_resp *resp;
	CURL *c;
	long long offset; /* MEM and FILE bodies */
};

static size_t on_body(char *p, size_t sz, size_t n, void *ctx)
{
	struct xfer *x = ctx;
	size_t len = sz * n;
	long status = 0;
	curl_easy_getinfo(x->c, CURLINFO_RESPONSE_CODE, &status);
	x->resp->body_bytes += (long long)len;
	if (status < 200 || status > 299) {
		/* An error body is only read for its message: keep its head. */
		size_t room = x->resp->err_body.max - x->resp->err_body.len;
		udfb_buf_add(&x->resp->err_body, p, len < room ? len : room);
		return len;
	}
	if (x->req->sink) {
		if (x->req->sink(p, len, x->req->sink_ctx) < 0) {
			x->resp->sink_failed = 1;
			return 0;
		}
		return len;
	}
	if (x->req->resp && udfb_buf_add(x->req->resp, p, len) < 0) {
		x->resp->too_big = 1;
		return 0;
	}
	return len;
}

static size_t on_read(char *p, size_t sz, size_t n, void *ctx)
{
	struct xfer *x = ctx;
	const struct udfb_http_body *b = &x->req->body;
	size_t want = sz * n;
	if ((long long)want > b->size - x->offset)
		want = (size_t)(b->size - x->offset);
	if (b->kind == UDFB_BODY_MEM) {
		memcpy(p, b->data + x->offset, want);
	} else if (b->kind == UDFB_BODY_FILE) {
		ssize_t got = pread(b->fd, p, want, (off_t)x->offset);
		if (got < 0)
			return CURL_READFUNC_ABORT;
		want = (size_t)got;
	} else if (b->kind == UDFB_BODY_STREAM) {
		long got = b->read(p, want, b->read_ctx);
		if (got < 0)
			return CURL_READFUNC_ABORT;
		want = (size_t)got;
	} else {
		want = 0;
	}
	x->offset += (long long)want;
	return want;
}

/* Memory and files can be rewound (curl asks on a redirect or a resend);
 * a stream cannot, and saying so makes curl fail instead of resending
 * bytes it no longer has. */
static int on_seek(void *ctx, curl_off_t off, int origin)
{
	struct xfer *x = ctx;
	if (origin != SEEK_SET || x->req->body.kind == UDFB_BODY_STREAM || off < 0 || off > x->req->body.size)
		return CURL_SEEKFUNC_CANTSEEK;
	x->offset = off;
	return CURL_SEEKFUNC_OK;
}

static void set_method(CURL *c, const struct udfb_http_req *req, struct xfer *x)
{
	const char *m = req->method;
	if (strcmp(m, "HEAD") == 0) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (strcmp(m, "GET") == 0) {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	} else if (strcmp(m, "POST") == 0) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)(req->body.kind == UDFB_BODY_MEM ? req->body.size : 0));
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body.kind == UDFB_BODY_MEM ? req->body.data : "");
	} else if (strcmp(m, "DELETE") == 0) {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE");
	} else {
		/* PUT and PATCH: an upload of exactly body.size bytes. */
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE,
				 (curl_off_t)(req->body.kind == UDFB_BODY_NONE ? 0 : req->body.size));
		curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(c, CURLOPT_READDATA, x);
		curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(c, CURLOPT_SEEKDATA, x);
		if (strcmp(m, "PUT") != 0)
			curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, m);
	}
}

static void setup(CURL *c, const struct udfb_http_req *req, struct xfer *x, struct curl_slist *headers)
{
	/* A stalled peer fails after 60 s below 1 KiB/s, whatever the size. */
	struct udfb_curl_opts o = { .follow = req->follow, .low_speed_time_s = 60 };
	if (req->tls) {
		o.ca_bundle = req->tls->ca_bundle;
		o.insecure = !req->tls->verify;
	}
	curl_easy_reset(c);
	udfb_curl_setup(c, req->url, &o, x->resp->curl_msg);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
	set_method(c, req, x);
}

/* A 401 may carry several WWW-Authenticate headers; auth.c parses them
 * joined as one list, as RFC 7235 allows. */
static void read_headers(CURL *c, struct udfb_http_resp *r)
{
	r->www_authenticate = udfb_curl_header_all(c, "WWW-Authenticate", HEADER_VALUE_MAX);
	r->location = udfb_curl_header(c, "Location", HEADER_VALUE_MAX);
	r->docker_digest = udfb_curl_header(c, "Docker-Content-Digest", HEADER_VALUE_MAX);
	r->content_type = udfb_curl_header(c, "Content-Type", HEADER_VALUE_MAX);
	r->retry_after = udfb_curl_header(c, "Retry-After", HEADER_VALUE_MAX);
	r->range = udfb_curl_header(c, "Range", HEADER_VALUE_MAX);
}

int udfb_http_perform(CURL *c, const struct udfb_http_req *req, struct udfb_http_resp *resp)
{
	memset(resp, 0, sizeof(*resp));
	udfb_buf_init(&resp->err_body, UDFB_HTTP_ERROR_BODY_MAX);
	if (req->resp)
		udfb_buf_reset(req->resp);
	struct xfer x = { .req = req, .resp = resp, .c = c };
	/* An empty Expect: saves the 100-continue round trip on every upload. */
	struct curl_slist *headers = NULL;
	for (struct curl_slist *h = req->headers; h; h = h->next)
		headers = curl_slist_append(headers, h->data);
	headers = curl_slist_append(headers, "Expect:");
	setup(c, req, &x, headers);
	resp->rc = curl_easy_perform(c);
	curl_slist_free_all(headers);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
	udfb_curl_why(resp->rc, resp->curl_msg); /* redacts curl's message, should it quote a URL */
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
	if (resp->status > 0)
		read_headers(c, resp);
	return resp->rc == CURLE_OK ? 0 : -1;
}

void udfb_http_resp_clear(struct udfb_http_resp *r)
{
	udfb_buf_free(&r->err_body);
	free(r->www_authenticate);
	free(r->location);
	free(r->docker_digest);
	free(r->content_type);
	free(r->retry_after);
	free(r->range);
	memset(r, 0, sizeof(*r));
}

const char *udfb_http_failure(const struct udfb_http_resp *r)
{
	return r->curl_msg[0] ? r->curl_msg : curl_easy_strerror(r->rc);
}

int udfb_http_host_is_loopback(const char *host)
{
	char name[256];
	const char *end;
	if (host[0] == '[') {
		host++;
		end = strchr(host, ']');
	} else {
		end = strchr(host, ':');
	}
	size_t n = end ? (size_t)(end - host) : strlen(host);
	if (n == 0 || n >= sizeof(name))
		return 0;
	memcpy(name, host, n);
	name[n] = '\0';
	if (strcasecmp(name, "localhost") == 0)
		return 1;
	unsigned char a[16];
	if (inet_pton(AF_INET, name, a) == 1)
		return a[0] == 127;
	if (inet_pton(AF_INET6, name, a) == 1) {
		static const unsigned char one[16] = { [15] = 1 };
		return memcmp(a, one, 16) == 0;
	}
	return 0;
}

char *udfb_http_url_host(const char *url)
{
	CURLU *u = curl_url();
	char *host = NULL, *port = NULL, *out = NULL;
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
		curl_url_get(u, CURLUPART_PORT, &port, 0);
		out = udfb_asprintf("%s%s%s", host, port ? ":" : "", port ? port : "");
	}
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return out;
}
