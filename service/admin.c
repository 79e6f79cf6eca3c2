/* The HTTP admin port: see admin.h.
 *
 * libmicrohttpd runs one internal polling thread (epoll on Linux).  Every
 * handler here answers from memory without blocking, so one thread serves
 * any number of scrapers and probes; a thread per connection would only add
 * threads that a probe storm could multiply.  The socket is bound to exactly
 * the address given (never a wildcard behind the operator's back), the number
 * of connections is capped and idle ones are closed, because this port sits
 * next to the service and must not become a way to exhaust it. */
#include "service/admin.h"

#include "common/alloc.h"
#include "common/buf.h"
#include "common/log.h"

#include <arpa/inet.h>
#include <assert.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#define ADMIN_MAX_CONNECTIONS 64
#define ADMIN_TIMEOUT_SECONDS 10
#define METRICS_MAX_BYTES (1024 * 1024) /* the exposition is a few KiB; this is a bug stop */
#define TEXT_PLAIN "text/plain; charset=utf-8"
#define PROMETHEUS_TEXT "text/plain; version=0.0.4; charset=utf-8"

struct udfb_admin {
	struct MHD_Daemon *daemon;
	struct udfb_metrics *metrics;
	int (*ready)(void *ctx);
	void *ctx;
	int port;
	/* While MHD_start_daemon runs, its log lines are the only account of why
	 * it failed (it returns NULL and errno is not reliable by then). */
	atomic_bool starting;
	char start_why[256];
};

union admin_sockaddr {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};

/* ---- address ---- */

static int parse_port(const char *s, unsigned *port)
{
	unsigned long v = 0;
	if (!*s || strlen(s) > 5)
		return -1;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (unsigned long)(*p - '0');
	}
	if (v > 65535)
		return -1;
	*port = (unsigned)v;
	return 0;
}

/* Numeric hosts only: the admin port is bound before anything else starts,
 * and a name that resolves to several addresses (or none, offline) would
 * make what gets exposed depend on DNS. */
static int parse_host(const char *host, size_t len, int v6, union admin_sockaddr *sa)
{
	char tmp[INET6_ADDRSTRLEN];
	if (len == 0 || len >= sizeof(tmp))
		return -1;
	memcpy(tmp, host, len);
	tmp[len] = '\0';
	memset(sa, 0, sizeof(*sa));
	if (v6) {
		sa->in6.sin6_family = AF_INET6;
		return inet_pton(AF_INET6, tmp, &sa->in6.sin6_addr) == 1 ? 0 : -1;
	}
	sa->in.sin_family = AF_INET;
	return inet_pton(AF_INET, tmp, &sa->in.sin_addr) == 1 ? 0 : -1;
}

static int parse_addr(const char *addr, union admin_sockaddr *sa, unsigned *port, struct udfb_err *err)
{
	const char *host = addr, *colon;
	size_t hlen;
	int v6 = addr[0] == '[';
	if (v6) {
		const char *close = strchr(addr, ']');
		if (!close || close[1] != ':')
			return udfb_err_set(err, UDFB_E_INVALID, "admin listen %s: expected [IPv6]:PORT", addr);
		host = addr + 1;
		hlen = (size_t)(close - host);
		colon = close + 1;
	} else {
		colon = strrchr(addr, ':');
		if (!colon)
			return udfb_err_set(err, UDFB_E_INVALID, "admin listen %s: expected HOST:PORT", addr);
		hlen = (size_t)(colon - addr);
	}
	if (parse_port(colon + 1, port) < 0)
		return udfb_err_set(err, UDFB_E_INVALID, "admin listen %s: port must be a number 0..65535", addr);
	if (parse_host(host, hlen, v6, sa) < 0)
		return udfb_err_set(err, UDFB_E_INVALID, "admin listen %s: host must be a numeric %s", addr,
				    v6 ? "IPv6 address" : "IPv4 address or [IPv6]");
	if (v6)
		sa->in6.sin6_port = htons((uint16_t)*port);
	else
		sa->in.sin_port = htons((uint16_t)*port);
	return 0;
}

/* ---- requests ---- */

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type, char *body, size_t len,
			     enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
	if (!r) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	/* Probes and scrapes describe this instant; a cache in between would lie. */
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	enum MHD_Result rc = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result reply_text(struct MHD_Connection *conn, unsigned status, const char *text)
{
	/* The literals outlive every response, so MHD may point at them. */
	return reply(conn, status, TEXT_PLAIN, (char *)text, strlen(text), MHD_RESPMEM_PERSISTENT);
}

static enum MHD_Result serve_metrics(struct MHD_Connection *conn, struct udfb_metrics *m)
{
	struct udfb_buf b;
	udfb_buf_init(&b, METRICS_MAX_BYTES);
	if (udfb_metrics_render(m, &b) < 0) {
		udfb_buf_free(&b);
		udfb_error("admin: metrics exposition exceeds %d bytes", METRICS_MAX_BYTES);
		return reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "metrics too large\n");
	}
	size_t len;
	char *body = udfb_buf_steal(&b, &len);
	return reply(conn, MHD_HTTP_OK, PROMETHEUS_TEXT, body, len, MHD_RESPMEM_MUST_FREE);
}

enum route { ROUTE_NONE, ROUTE_HEALTHZ, ROUTE_READYZ, ROUTE_METRICS };

static enum route find_route(const char *url)
{
	if (strcmp(url, "/healthz") == 0)
		return ROUTE_HEALTHZ;
	if (strcmp(url, "/readyz") == 0)
		return ROUTE_READYZ;
	if (strcmp(url, "/metrics") == 0)
		return ROUTE_METRICS;
	return ROUTE_NONE;
}

/* Answered on the first call, right after the headers: no route takes a
 * body, and a response queued before a body is read makes MHD close the
 * connection instead of reading it.  MHD leaves the body out for HEAD. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	(void)version, (void)upload_data, (void)upload_data_size, (void)con_cls;
	struct udfb_admin *a = cls;
	enum route r = find_route(url);
	if (r == ROUTE_NONE)
		return reply_text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
	switch (r) {
	case ROUTE_HEALTHZ: return reply_text(conn, MHD_HTTP_OK, "ok\n");
	case ROUTE_READYZ:
		/* ready() runs on MHD's thread: it must be thread-safe and quick. */
		if (!a->ready || a->ready(a->ctx))
			return reply_text(conn, MHD_HTTP_OK, "ready\n");
		return reply_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "not ready\n");
	default: return serve_metrics(conn, a->metrics);
	}
}

/* ---- daemon ---- */

/* MHD's lines end in '\n' and sometimes '.'; an error message is one line. */
static void trim(char *s)
{
	size_t n = strlen(s);
	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == '.' || s[n - 1] == ' '))
		s[--n] = '\0';
}

/* During start the first line is kept as the reason for a failure; after
 * that MHD only reports client misbehaviour (resets, timeouts), which is
 * debug noise rather than a service problem. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct udfb_admin *a = cls;
	if (atomic_load(&a->starting)) {
		if (!a->start_why[0]) {
			vsnprintf(a->start_why, sizeof(a->start_why), fmt, ap);
			trim(a->start_why);
		}
		return;
	}
	if (UDFB_LOG_DEBUG < udfb_log_threshold)
		return;
	char line[256];
	vsnprintf(line, sizeof(line), fmt, ap);
	trim(line);
	udfb_debug("admin: %s", line);
}

static struct MHD_Daemon *start_daemon(struct udfb_admin *a, union admin_sockaddr *sa, unsigned port)
{
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG | MHD_USE_ITC;
	if (sa->sa.sa_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* The logger goes first so that no option parsing is reported to stderr. */
	return MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, a, MHD_OPTION_EXTERNAL_LOGGER,
				on_mhd_log, a, MHD_OPTION_SOCK_ADDR, &sa->sa, MHD_OPTION_CONNECTION_LIMIT,
				(unsigned)ADMIN_MAX_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT,
				(unsigned)ADMIN_TIMEOUT_SECONDS, MHD_OPTION_END);
}

/* ready may be NULL: a process with nothing to wait for is ready once up. */
int udfb_admin_start(struct udfb_admin **out, const char *addr, struct udfb_metrics *m, int (*ready)(void *ctx),
		     void *ctx, struct udfb_err *err)
{
	assert(out && addr && m && err);
	union admin_sockaddr sa;
	unsigned port = 0;
	if (parse_addr(addr, &sa, &port, err) < 0)
		return -1;
	struct udfb_admin *a = udfb_calloc(1, sizeof(*a));
	a->metrics = m;
	a->ready = ready;
	a->ctx = ctx;
	atomic_init(&a->starting, 1);
	a->daemon = start_daemon(a, &sa, port);
	atomic_store(&a->starting, 0);
	if (!a->daemon) {
		udfb_err_set(err, UDFB_E_UNAVAILABLE, "admin listen %s: %s", addr,
			     a->start_why[0] ? a->start_why : "cannot start the HTTP server");
		free(a);
		return -1;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(a->daemon, MHD_DAEMON_INFO_BIND_PORT);
	a->port = info && info->port ? info->port : (int)port;
	udfb_info("admin: listening on %s (port %d)", addr, a->port);
	*out = a;
	return 0;
}

int udfb_admin_port(const struct udfb_admin *a)
{
	assert(a);
	return a->port;
}

void udfb_admin_stop(struct udfb_admin *a)
{
	if (!a)
		return;
	MHD_stop_daemon(a->daemon);
	free(a);
}
