/* The libcurl request helper (common/curlx.h) against a real HTTP server on
 * loopback (libmicrohttpd, port chosen by the kernel): handle setup
 * (protocols, redirects, timeouts, proxy policy, user agent), the bounded
 * body and headers, the error categories, and that no URL's credentials or
 * query reach an error. */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "common/curlx.h"

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned code, const char *body)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
	if (code == 200) {
		MHD_add_response_header(r, "ETag", "\"v1\"");
		MHD_add_response_header(r, "X-Long", "0123456789abcdef");
		MHD_add_response_header(r, "WWW-Authenticate", "Bearer realm=\"a\"");
		MHD_add_response_header(r, "WWW-Authenticate", "Basic realm=\"b\"");
	}
	enum MHD_Result ret = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result redirect(struct MHD_Connection *conn, const char *to)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	MHD_add_response_header(r, "Location", to);
	enum MHD_Result ret = MHD_queue_response(conn, 302, r);
	MHD_destroy_response(r);
	return ret;
}

struct upload {
	char data[256];
	size_t len;
};

/* /echo answers "METHOD|User-Agent|body"; a body is gathered first. */
static enum MHD_Result echo(struct MHD_Connection *conn, const char *method, const char *data, size_t *size,
			    void **state)
{
	struct upload *u = *state;
	if (!u) {
		*state = calloc(1, sizeof(*u));
		return MHD_YES;
	}
	if (*size) {
		size_t n = *size < sizeof(u->data) - 1 - u->len ? *size : sizeof(u->data) - 1 - u->len;
		memcpy(u->data + u->len, data, n);
		u->len += n;
		*size = 0;
		return MHD_YES;
	}
	const char *ua = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "User-Agent");
	char out[512];
	snprintf(out, sizeof(out), "%s|%s|%s", method, ua ? ua : "", u->data);
	return reply(conn, 200, out);
}

static enum MHD_Result route(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
			     const char *version, const char *data, size_t *size, void **state)
{
	(void)cls, (void)version;
	if (strcmp(url, "/echo") == 0)
		return echo(conn, method, data, size, state);
	if (strcmp(url, "/hello") == 0)
		return reply(conn, 200, "hello");
	if (strcmp(url, "/big") == 0) {
		static char big[100000];
		memset(big, 'x', sizeof(big) - 1);
		return reply(conn, 200, big);
	}
	if (strcmp(url, "/redirect") == 0)
		return redirect(conn, "/hello");
	if (strcmp(url, "/loop") == 0)
		return redirect(conn, "/loop");
	if (strcmp(url, "/tofile") == 0)
		return redirect(conn, "file:///etc/passwd");
	if (strcmp(url, "/slow") == 0) {
		usleep(1500 * 1000);
		return reply(conn, 200, "late");
	}
	if (strcmp(url, "/busy") == 0)
		return reply(conn, 503, "busy");
	return reply(conn, 404, "no such path");
}

static void done(void *cls, struct MHD_Connection *conn, void **state, enum MHD_RequestTerminationCode why)
{
	(void)cls, (void)conn, (void)why;
	free(*state);
	*state = NULL;
}

/* A port nothing listens on: bound by us, then closed. */
static int closed_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	bind(fd, (struct sockaddr *)&a, sizeof(a));
	getsockname(fd, (struct sockaddr *)&a, &len);
	close(fd);
	return ntohs(a.sin_port);
}

static char base[64];
static const struct udfb_curl_opts plain = { .proxy = UDFB_PROXY_NONE, .timeout_ms = 10000 };

/* GET base+path into a buffer of max bytes with o; the status, or -1 with *err. */
static long get(const char *path, size_t max, const struct udfb_curl_opts *o, char **body, struct udfb_err *err)
{
	char url[256];
	snprintf(url, sizeof(url), "%s%s", base, path);
	struct udfb_buf b;
	udfb_buf_init(&b, max);
	const struct udfb_curl_call call = { .url = url, .resp = &b, .what = "test server" };
	long status = 0;
	int rc = udfb_curl_request(&call, o, &status, err);
	if (body)
		*body = b.data ? udfb_buf_steal(&b, NULL) : strdup("");
	udfb_buf_free(&b);
	return rc < 0 ? -1 : status;
}

static void test_requests(void)
{
	struct udfb_err err = UDFB_ERR_INIT;
	char *body = NULL;
	CHECK(get("/hello", 1024, &plain, &body, &err) == 200, "GET answers 200");
	CHECK_STR(body, "hello", "the body lands in the buffer");
	free(body);

	CHECK(get("/missing", 1024, &plain, &body, &err) == 404 && !err.msg, "a 404 is a response, not a failure");
	CHECK(udfb_http_status_cat(404) == UDFB_E_NOTFOUND, "404 is NOTFOUND");
	free(body);

	CHECK(get("/big", 1024, &plain, NULL, &err) == -1 && err.cat == UDFB_E_EXHAUSTED,
	      "a body past the limit fails");
	CHECK(err.msg && strstr(err.msg, "test server: response larger than 1024 bytes"), "and says so: %s", err.msg);
	udfb_err_clear(&err);

	char url[256];
	snprintf(url, sizeof(url), "%s/echo", base);
	struct udfb_buf b;
	udfb_buf_init(&b, 1024);
	const struct udfb_curl_call patch = {
		.method = "PATCH", .url = url, .body = "{\"a\":1}", .resp = &b, .what = "t"
	};
	long status = 0;
	CHECK(udfb_curl_request(&patch, &plain, &status, &err) == 0 && status == 200, "PATCH with a body");
	CHECK(b.data && strncmp(b.data, "PATCH|udf-builder/", 18) == 0 && strstr(b.data, "|{\"a\":1}"),
	      "the method, our user agent and the body arrive: %s", b.data ? b.data : "");
	udfb_buf_free(&b);
}

static void test_redirects(void)
{
	struct udfb_err err = UDFB_ERR_INIT;
	char *body = NULL;
	CHECK(get("/redirect", 1024, &plain, &body, &err) == 302, "redirects are not followed unless asked");
	free(body);
	struct udfb_curl_opts follow = plain;
	follow.follow = 1;
	CHECK(get("/redirect", 1024, &follow, &body, &err) == 200, "follow: the redirect is followed");
	CHECK_STR(body, "hello", "to its target");
	free(body);

	CHECK(get("/loop", 1024, &follow, NULL, &err) == -1 && err.cat == UDFB_E_INVALID, "a redirect loop is INVALID");
	udfb_err_clear(&err);
	CHECK(get("/tofile", 1024, &follow, NULL, &err) == -1 && err.cat == UDFB_E_INVALID,
	      "a redirect to file:// is refused: %s", err.msg ? err.msg : "");
	udfb_err_clear(&err);
	struct udfb_curl_opts http_only = plain;
	http_only.protocols = "http";
	struct udfb_buf b;
	udfb_buf_init(&b, 64);
	const struct udfb_curl_call ftp = { .url = "ftp://127.0.0.1/x", .resp = &b, .what = "ftp" };
	long status = 0;
	CHECK(udfb_curl_request(&ftp, &http_only, &status, &err) < 0 && err.cat == UDFB_E_INVALID,
	      "a protocol not allowed is INVALID");
	udfb_err_clear(&err);
	udfb_buf_free(&b);
}

static void test_failures(void)
{
	struct udfb_err err = UDFB_ERR_INIT;
	struct udfb_curl_opts quick = plain;
	quick.timeout_ms = 300;
	CHECK(get("/slow", 1024, &quick, NULL, &err) == -1 && err.cat == UDFB_E_UNAVAILABLE,
	      "a peer slower than the timeout is UNAVAILABLE: %s", err.msg ? err.msg : "");
	CHECK(udfb_curl_transient(CURLE_OPERATION_TIMEDOUT), "and worth another attempt");
	udfb_err_clear(&err);

	/* Credentials and a presigned query never reach the message. */
	char url[256];
	snprintf(url, sizeof(url), "http://joe:hunter2@127.0.0.1:%d/o?X-Amz-Signature=s3cr3t", closed_port());
	const struct udfb_curl_call call = { .url = url, .what = "import 'x'" };
	long status = 0;
	CHECK(udfb_curl_request(&call, &plain, &status, &err) < 0 && err.cat == UDFB_E_UNAVAILABLE && status == 0,
	      "a refused connection is UNAVAILABLE");
	CHECK(err.msg && strncmp(err.msg, "import 'x': ", 12) == 0 && !strstr(err.msg, "hunter2") &&
		      !strstr(err.msg, "s3cr3t"),
	      "named by what, without the URL's secrets: %s", err.msg ? err.msg : "");
	udfb_err_clear(&err);

	CHECK(udfb_http_status_cat(503) == UDFB_E_UNAVAILABLE && udfb_http_status_cat(429) == UDFB_E_UNAVAILABLE &&
		      udfb_http_status_cat(403) == UDFB_E_INVALID && udfb_http_status_cat(413) == UDFB_E_EXHAUSTED &&
		      udfb_http_status_cat(204) == UDFB_E_OK,
	      "statuses map to categories once");
	CHECK(udfb_curl_cat(CURLE_COULDNT_RESOLVE_HOST) == UDFB_E_UNAVAILABLE &&
		      udfb_curl_cat(CURLE_URL_MALFORMAT) == UDFB_E_INVALID &&
		      udfb_curl_cat(CURLE_OUT_OF_MEMORY) == UDFB_E_INTERNAL &&
		      !udfb_curl_transient(CURLE_URL_MALFORMAT),
	      "CURLcodes map to categories once");
}

/* http_proxy names a closed port: UDFB_PROXY_ENV goes there and fails,
 * UDFB_PROXY_NONE reaches the server directly. */
static void test_proxy(void)
{
	char proxy[64];
	snprintf(proxy, sizeof(proxy), "http://127.0.0.1:%d", closed_port());
	unsetenv("no_proxy");
	unsetenv("NO_PROXY");
	setenv("http_proxy", proxy, 1);
	struct udfb_err err = UDFB_ERR_INIT;
	struct udfb_curl_opts env = plain;
	env.proxy = UDFB_PROXY_ENV;
	CHECK(get("/hello", 1024, &env, NULL, &err) == -1, "UDFB_PROXY_ENV uses the environment's proxy");
	udfb_err_clear(&err);
	CHECK(get("/hello", 1024, &plain, NULL, &err) == 200, "UDFB_PROXY_NONE never does");
	unsetenv("http_proxy");
}

static void test_headers(void)
{
	char url[256], errbuf[CURL_ERROR_SIZE];
	snprintf(url, sizeof(url), "%s/hello", base);
	CURL *c = udfb_curl_open(url, &plain, errbuf);
	struct udfb_buf b;
	udfb_buf_init(&b, 64);
	struct udfb_curl_sink sink = { .buf = &b };
	udfb_curl_body_to(c, &sink);
	CHECK(curl_easy_perform(c) == CURLE_OK && !sink.too_big, "a handle from udfb_curl_open performs");
	char *etag = udfb_curl_header(c, "etag", 64), *cut = udfb_curl_header(c, "X-Long", 8);
	char *all = udfb_curl_header_all(c, "WWW-Authenticate", 1024), *none = udfb_curl_header(c, "X-None", 64);
	char *capped = udfb_curl_header_all(c, "WWW-Authenticate", 20);
	CHECK_STR(etag, "\"v1\"", "a header, by any case of its name");
	CHECK_STR(cut, "01234567", "a long header is cut at its cap");
	CHECK_STR(all, "Bearer realm=\"a\", Basic realm=\"b\"", "a repeated header, joined");
	CHECK(capped && strlen(capped) <= 20, "the joined header keeps its cap too");
	CHECK(!none, "an absent header is NULL");
	free(etag), free(cut), free(all), free(none), free(capped);
	udfb_buf_free(&b);
	curl_easy_cleanup(c);
}

static void test_redaction(void)
{
	char *r = udfb_url_redact("https://joe:pw@bucket.example:9000/a/b.py?X-Amz-Signature=abc&x=1#frag");
	CHECK_STR(r, "https://bucket.example:9000/a/b.py?REDACTED", "credentials, query and fragment go");
	free(r);
	r = udfb_url_redact("http://[::1]:5000/v2/");
	CHECK_STR(r, "http://[::1]:5000/v2/", "a URL without secrets is kept");
	free(r);
	char text[CURL_ERROR_SIZE] = "Failed to GET 'https://u:p@h/x?sig=1', then http://h2?t=2 and ftp://a@b";
	udfb_url_redact_text(text, sizeof(text));
	CHECK_STR(text, "Failed to GET 'https://h/x?REDACTED', then http://h2?REDACTED and ftp://b",
		  "every URL inside a message is redacted");
	char small[13] = "x http://h?s";
	udfb_url_redact_text(small, sizeof(small));
	CHECK(strlen(small) < sizeof(small) && !strstr(small, "?s"), "and cut to its buffer: %s", small);
	char none[] = "Could not resolve host: h";
	udfb_url_redact_text(none, sizeof(none));
	CHECK_STR(none, "Could not resolve host: h", "text without URLs is unchanged");
}

int main(void)
{
	struct udfb_err err = UDFB_ERR_INIT;
	CHECK(udfb_curl_global_init(&err) == 0 && udfb_curl_global_init(&err) == 0, "global init, once or twice");
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0,
						NULL, NULL, route, NULL, MHD_OPTION_SOCK_ADDR, &addr,
						MHD_OPTION_NOTIFY_COMPLETED, done, NULL, MHD_OPTION_END);
	CHECK(d != NULL, "a loopback server runs");
	if (!d)
		return check_done();
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	snprintf(base, sizeof(base), "http://127.0.0.1:%u", (unsigned)info->port);
	test_requests();
	test_redirects();
	test_failures();
	test_proxy();
	test_headers();
	test_redaction();
	MHD_stop_daemon(d);
	return check_done();
}
