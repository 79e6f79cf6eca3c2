/* The admin port and the metrics it serves: the exposition's shape, the
 * routes and status codes over real HTTP (libcurl against a server on an
 * ephemeral loopback port), and start errors that name the address. */
#include "check.h"
#include "service/admin.h"
#include "service/metrics.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

struct resp {
	long status;
	char type[128];
	struct udfb_buf headers;
	struct udfb_buf body;
};

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
	return udfb_buf_add(ud, p, size * n) == 0 ? size * n : 0;
}

static int fetch_at(const char *host, const char *method, int port, const char *path, struct resp *r)
{
	char url[128];
	snprintf(url, sizeof(url), "http://%s:%d%s", host, port, path);
	memset(r, 0, sizeof(*r));
	udfb_buf_init(&r->headers, 64 * 1024);
	udfb_buf_init(&r->body, 1024 * 1024);
	CURL *c = curl_easy_init();
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*"); /* a CI proxy must not answer for loopback */
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &r->headers);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	else if (strcmp(method, "POST") == 0)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "x=1");
	else if (strcmp(method, "GET") != 0)
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	CURLcode rc = curl_easy_perform(c);
	char *type = NULL;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &type);
	snprintf(r->type, sizeof(r->type), "%s", type ? type : "");
	curl_easy_cleanup(c);
	if (rc != CURLE_OK)
		printf("# %s %s: %s\n", method, url, curl_easy_strerror(rc));
	return rc == CURLE_OK ? 0 : -1;
}

static int fetch(const char *method, int port, const char *path, struct resp *r)
{
	return fetch_at("127.0.0.1", method, port, path, r);
}

static void resp_free(struct resp *r)
{
	udfb_buf_free(&r->headers);
	udfb_buf_free(&r->body);
}

static const char *body(struct resp *r)
{
	return r->body.data ? r->body.data : "";
}

/* The value of the sample whose name-and-labels is exactly series, or -1. */
static long long sample(const char *text, const char *series)
{
	size_t n = strlen(series);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return strtoll(p + n + 1, NULL, 10);
	return -1;
}

static int has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, line, n) == 0 && (p[n] == '\n' || p[n] == '\0'))
			return 1;
	return 0;
}

/* One sample line belongs to the family its last # TYPE declared. */
static int sample_ok(const char *line, size_t len, const char *family, const char *type)
{
	size_t f = strlen(family);
	if (!*family || len <= f || strncmp(line, family, f) != 0)
		return 0;
	const char *rest = line + f;
	if (strcmp(type, "histogram") == 0) {
		if (strncmp(rest, "_bucket{le=\"", 12) == 0)
			rest = strchr(rest, '}') + 1;
		else if (strncmp(rest, "_sum", 4) == 0 || strncmp(rest, "_count", 6) == 0)
			rest = strchr(rest, ' ');
	} else if (*rest == '{') {
		rest = strchr(rest, '}') + 1;
	}
	if (!rest || *rest != ' ')
		return 0;
	char *end;
	strtod(rest + 1, &end);
	return end == line + len && end > rest + 1;
}

/* Text format 0.0.4 as a scraper reads it: HELP then TYPE per family, and
 * every sample under the family it names with a parseable value. */
static int exposition_ok(const char *text, int *families)
{
	char family[128] = "", type[32] = "", help[128] = "";
	*families = 0;
	for (const char *p = text; *p;) {
		const char *nl = strchr(p, '\n');
		if (!nl)
			return 0; /* the format requires a final newline */
		size_t len = (size_t)(nl - p);
		if (strncmp(p, "# HELP ", 7) == 0) {
			sscanf(p + 7, "%127s", help);
		} else if (strncmp(p, "# TYPE ", 7) == 0) {
			if (sscanf(p + 7, "%127s %31s", family, type) != 2 || strcmp(family, help) != 0)
				return 0;
			(*families)++;
		} else if (!sample_ok(p, len, family, type)) {
			printf("#   bad line: %.*s\n", (int)len, p);
			return 0;
		}
		p = nl + 1;
	}
	return 1;
}

/* Buckets never decrease, +Inf equals _count, and _count is what was observed. */
static void check_histogram(const char *text, const char *name, long long want)
{
	const char *p = text;
	long long prev = 0, v = 0;
	int mono = 1;
	char series[128];
	snprintf(series, sizeof(series), "%s_bucket{le=\"", name);
	while ((p = strstr(p, series))) {
		v = strtoll(strchr(p, ' ') + 1, NULL, 10);
		mono = mono && v >= prev;
		prev = v;
		p++;
	}
	snprintf(series, sizeof(series), "%s_count", name);
	long long count = sample(text, series);
	snprintf(series, sizeof(series), "%s_bucket{le=\"+Inf\"}", name);
	long long inf = sample(text, series);
	CHECK(mono, "%s buckets are cumulative", name);
	CHECK(count == want && inf == count, "%s: _count %lld = +Inf %lld = %lld observations", name, count, inf, want);
}

static void fill(struct udfb_metrics *m)
{
	udfb_metrics_call(m, 0, 0.0003);
	udfb_metrics_call(m, 0, 0.3);
	udfb_metrics_call(m, 3, 0.002);
	udfb_metrics_call(m, 99, 1);
	udfb_metrics_call(m, -1, -5); /* a clock step backwards is zero, not a negative sum */
	udfb_metrics_cache(m, 1);
	udfb_metrics_cache(m, 0);
	udfb_metrics_cache(m, 0);
	udfb_metrics_build_done(m, 12.5, 1);
	udfb_metrics_build_done(m, 400, 0);
	udfb_metrics_builds_in_flight(m, 2);
	udfb_metrics_builds_in_flight(m, -1);
	udfb_metrics_bytes_fetched(m, 1000);
	udfb_metrics_bytes_fetched(m, -7);
	udfb_metrics_bytes_pushed(m, 1LL << 40);
	udfb_metrics_sandboxes(m, "ready", 3);
	udfb_metrics_sandboxes(m, "starting", 1);
	udfb_metrics_sandboxes(m, "starting", 2);
	udfb_metrics_sandboxes(m, "bogus\"} 1\n", 9);
	udfb_metrics_rpc(m, UDFB_RPC_CREATE_WORKER, 0);
	udfb_metrics_rpc(m, UDFB_RPC_CREATE_WORKER, 0);
	udfb_metrics_rpc(m, (enum udfb_rpc)99, 12);
	udfb_metrics_client_version(m, 2, 1);
	udfb_metrics_client_version(m, 1, 0);
	udfb_metrics_client_version(m, 7, 1);
	udfb_metrics_import_requests(m, 3);
	udfb_metrics_workers(m, "local", 2, 1);
	udfb_metrics_quota_levels(m, 7, 3);
	udfb_metrics_build_refused(m, 1);
	udfb_metrics_build_refused(m, 1);
	udfb_metrics_build_refused(m, 0);
	udfb_metrics_worker_refused(m);
}

static void check_exposition(const char *t)
{
	int families;
	/* 14, and issue 18's: udfb_cached_entries, udfb_cached_evictions_total,
	 * udfb_calls_waiting, udfb_calls_refused_total, udfb_builds_pending,
	 * udfb_builds_refused_total, udfb_worker_records_max,
	 * udfb_workers_refused_total. */
	CHECK(exposition_ok(t, &families) && families == 22, "exposition parses: %d families", families);
	CHECK(sample(t, "udfb_builds_pending") == 7 && sample(t, "udfb_worker_records_max") == 3, "the quota gauges");
	CHECK(sample(t, "udfb_builds_refused_total{limit=\"max_queued_builds\"}") == 2 &&
		      sample(t, "udfb_builds_refused_total{limit=\"max_queued_builds_total\"}") == 1 &&
		      sample(t, "udfb_workers_refused_total") == 1,
	      "the quota refusals by limit");
	CHECK(sample(t, "udfb_cached_entries{table=\"fingerprints\"}") == 0 && sample(t, "udfb_calls_waiting") == 0,
	      "the call tables' sizes and the waiting calls");
	CHECK(sample(t, "udfb_workers{backend=\"local\",state=\"active\"}") == 2 &&
		      sample(t, "udfb_workers{backend=\"local\",state=\"suspended\"}") == 1,
	      "udfb_workers by backend and state");
	CHECK(sample(t, "udfb_calls_total{code=\"OK\"}") == 2, "udfb_calls_total{code=\"OK\"} 2");
	CHECK(sample(t, "udfb_calls_total{code=\"INVALID_ARGUMENT\"}") == 1, "INVALID_ARGUMENT 1");
	CHECK(sample(t, "udfb_calls_total{code=\"UNKNOWN\"}") == 2, "codes out of range count as UNKNOWN");
	CHECK(sample(t, "udfb_calls_total{code=\"UNAUTHENTICATED\"}") == 0, "all 17 codes present");
	CHECK(sample(t, "udfb_call_duration_seconds_bucket{le=\"0.0005\"}") == 2, "le=0.0005: 0.0003, 0");
	CHECK(sample(t, "udfb_call_duration_seconds_bucket{le=\"0.002\"}") == 3, "le is inclusive: 0.002");
	CHECK(sample(t, "udfb_call_duration_seconds_bucket{le=\"0.25\"}") == 3, "le=0.25 still 3");
	CHECK(sample(t, "udfb_call_duration_seconds_bucket{le=\"0.5\"}") == 4, "le=0.5 holds 0.3");
	CHECK(has_line(t, "udfb_call_duration_seconds_sum 1.302300000"), "call duration sum exact");
	check_histogram(t, "udfb_call_duration_seconds", 5);
	CHECK(sample(t, "udfb_cache_lookups_total{result=\"hit\"}") == 1, "cache hit 1");
	CHECK(sample(t, "udfb_cache_lookups_total{result=\"miss\"}") == 2, "cache miss 2");
	CHECK(sample(t, "udfb_builds_total{result=\"ok\"}") == 1, "builds ok 1");
	CHECK(sample(t, "udfb_builds_total{result=\"error\"}") == 1, "builds error 1");
	CHECK(sample(t, "udfb_build_duration_seconds_bucket{le=\"30\"}") == 1, "build le=30 holds 12.5");
	CHECK(sample(t, "udfb_build_duration_seconds_bucket{le=\"300\"}") == 1, "400 s is past le=300");
	CHECK(has_line(t, "udfb_build_duration_seconds_sum 412.500000000"), "build duration sum exact");
	check_histogram(t, "udfb_build_duration_seconds", 2);
	CHECK(sample(t, "udfb_builds_in_flight") == 1, "builds in flight 1");
	CHECK(sample(t, "udfb_fetched_bytes_total") == 1000, "fetched bytes ignore a negative count");
	CHECK(sample(t, "udfb_pushed_bytes_total") == 1LL << 40, "pushed bytes 1 TiB");
	CHECK(sample(t, "udfb_sandboxes{state=\"starting\"}") == 2, "sandbox gauge is set, not added");
	CHECK(sample(t, "udfb_sandboxes{state=\"ready\"}") == 3, "sandboxes ready 3");
	CHECK(sample(t, "udfb_sandboxes{state=\"stopped\"}") == 0, "sandboxes stopped 0");
	CHECK(!strstr(t, "bogus"), "an unknown sandbox state never becomes a label");
	CHECK(sample(t, "udfb_rpc_calls_total{rpc=\"CreateWorker\",code=\"OK\"}") == 2, "calls by RPC");
	CHECK(sample(t, "udfb_rpc_calls_total{rpc=\"unimplemented\",code=\"UNIMPLEMENTED\"}") == 1,
	      "an RPC out of range counts as unimplemented");
	CHECK(sample(t, "udfb_client_versions_total{marker=\"worker_client_version\",value=\"v1\"}") == 1, "marker v1");
	CHECK(sample(t, "udfb_client_versions_total{marker=\"resource_client_version\",value=\"other\"}") == 1,
	      "marker with another value");
	CHECK(sample(t, "udfb_client_versions_total{marker=\"none\",value=\"v1\"}") == 1,
	      "a marker out of range is none");
	CHECK(sample(t, "udfb_import_requests_total") == 3, "import requests");
}

static void test_render(void)
{
	struct udfb_metrics *m;
	udfb_metrics_new(&m);
	fill(m);
	struct udfb_buf b;
	udfb_buf_init(&b, 1024 * 1024);
	udfb_buf_addstr(&b, "prefix\n");
	CHECK(udfb_metrics_render(m, &b) == 0, "render");
	CHECK(strncmp(b.data, "prefix\n# HELP udfb_calls_total ", 31) == 0, "render appends");
	check_exposition(b.data + 7);
	udfb_buf_free(&b);

	udfb_buf_init(&b, 200);
	udfb_buf_addstr(&b, "keep");
	CHECK(udfb_metrics_render(m, &b) == -1 && strcmp(b.data, "keep") == 0, "over the limit: -1, buffer unchanged");
	udfb_buf_free(&b);
	udfb_metrics_free(m);
}

#define THREADS 4
#define PER_THREAD 20000

static void *hammer(void *arg)
{
	for (int i = 0; i < PER_THREAD; i++) {
		udfb_metrics_call(arg, i % 17, 0.001 * (i % 7));
		udfb_metrics_builds_in_flight(arg, 1);
		udfb_metrics_builds_in_flight(arg, -1);
	}
	return NULL;
}

static void test_concurrent(void)
{
	struct udfb_metrics *m;
	udfb_metrics_new(&m);
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, hammer, m);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	struct udfb_buf b;
	udfb_buf_init(&b, 1024 * 1024);
	udfb_metrics_render(m, &b);
	check_histogram(b.data, "udfb_call_duration_seconds", THREADS * PER_THREAD);
	CHECK(sample(b.data, "udfb_builds_in_flight") == 0, "in-flight gauge 0 after concurrent +1/-1");
	udfb_buf_free(&b);
	udfb_metrics_free(m);
}

static int ready_cb(void *ctx)
{
	return atomic_load((atomic_int *)ctx);
}

static void check_get(int port, const char *path, long status, const char *text)
{
	struct resp r;
	int rc = fetch("GET", port, path, &r);
	CHECK(rc == 0 && r.status == status, "GET %s: %ld", path, r.status);
	CHECK_STR(body(&r), text, "GET %s body", path);
	CHECK_STR(r.type, "text/plain; charset=utf-8", "GET %s content type", path);
	resp_free(&r);
}

static void test_metrics_route(int port)
{
	struct resp r;
	int rc = fetch("GET", port, "/metrics", &r);
	CHECK(rc == 0 && r.status == 200, "GET /metrics: %ld", r.status);
	CHECK_STR(r.type, "text/plain; version=0.0.4; charset=utf-8", "/metrics content type");
	check_exposition(body(&r));
	resp_free(&r);
	rc = fetch("HEAD", port, "/metrics", &r);
	CHECK(rc == 0 && r.status == 200 && r.body.len == 0, "HEAD /metrics: %ld, no body", r.status);
	resp_free(&r);
}

static void test_http(void)
{
	struct udfb_metrics *m;
	udfb_metrics_new(&m);
	atomic_int ready;
	atomic_init(&ready, 0);
	struct udfb_admin *a = NULL;
	struct udfb_err err = UDFB_ERR_INIT;
	int rc = udfb_admin_start(&a, "127.0.0.1:0", m, ready_cb, &ready, &err);
	CHECK(rc == 0, "start on 127.0.0.1:0 (%s)", err.msg ? err.msg : "ok");
	if (rc < 0) {
		udfb_err_clear(&err);
		udfb_metrics_free(m);
		return;
	}
	int port = udfb_admin_port(a);
	CHECK(port > 0 && port < 65536, "bound port read back: %d", port);
	fill(m);
	check_get(port, "/healthz", 200, "ok\n");
	check_get(port, "/readyz", 503, "not ready\n");
	atomic_store(&ready, 1);
	check_get(port, "/readyz", 200, "ready\n");
	check_get(port, "/nope", 404, "not found\n");
	check_get(port, "/healthz/", 404, "not found\n");
	test_metrics_route(port);

	struct resp r;
	rc = fetch("HEAD", port, "/healthz", &r);
	CHECK(rc == 0 && r.status == 200 && r.body.len == 0, "HEAD /healthz: %ld, no body", r.status);
	resp_free(&r);
	rc = fetch("POST", port, "/metrics", &r);
	CHECK(rc == 0 && r.status == 405, "POST /metrics: %ld", r.status);
	CHECK(r.headers.data && strstr(r.headers.data, "Allow: GET, HEAD"), "405 names the allowed methods");
	resp_free(&r);
	rc = fetch("DELETE", port, "/healthz", &r);
	CHECK(rc == 0 && r.status == 405, "DELETE /healthz: %ld", r.status);
	resp_free(&r);

	/* The port is taken now: a second server must fail, naming the address. */
	char addr[64];
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	struct udfb_admin *b = NULL;
	rc = udfb_admin_start(&b, addr, m, NULL, NULL, &err);
	int named = err.msg && strncmp(err.msg, "admin listen ", 13) == 0 && strstr(err.msg, addr);
	CHECK(rc == -1 && err.cat == UDFB_E_UNAVAILABLE && named, "port in use: %s", err.msg ? err.msg : "started");
	udfb_err_clear(&err);
	udfb_admin_stop(b);
	udfb_admin_stop(a);
	udfb_metrics_free(m);
}

static void bad_addr(const char *addr)
{
	struct udfb_metrics *m;
	udfb_metrics_new(&m);
	struct udfb_admin *a = NULL;
	struct udfb_err err = UDFB_ERR_INIT;
	char want[128];
	snprintf(want, sizeof(want), "admin listen %s: ", addr);
	int rc = udfb_admin_start(&a, addr, m, NULL, NULL, &err);
	CHECK(rc == -1 && err.cat == UDFB_E_INVALID && err.msg && strncmp(err.msg, want, strlen(want)) == 0,
	      "reject '%s' (%s)", addr, err.msg ? err.msg : "started");
	udfb_err_clear(&err);
	udfb_admin_stop(a);
	udfb_metrics_free(m);
}

/* A host without IPv6 loopback may refuse [::1]; the address still parses. */
static void test_ipv6(void)
{
	struct udfb_metrics *m;
	udfb_metrics_new(&m);
	struct udfb_admin *a = NULL;
	struct udfb_err err = UDFB_ERR_INIT;
	int rc = udfb_admin_start(&a, "[::1]:0", m, NULL, NULL, &err);
	CHECK(rc == 0 || err.cat == UDFB_E_UNAVAILABLE, "[::1]:0 (%s)", err.msg ? err.msg : "started");
	udfb_err_clear(&err);
	if (rc == 0) {
		struct resp r;
		rc = fetch_at("[::1]", "GET", udfb_admin_port(a), "/healthz", &r);
		CHECK(rc == 0 && r.status == 200 && strcmp(body(&r), "ok\n") == 0, "GET [::1]/healthz: %ld", r.status);
		resp_free(&r);
		rc = fetch("GET", udfb_admin_port(a), "/healthz", &r);
		CHECK(rc == -1, "[::1] is not also listening on 127.0.0.1");
		resp_free(&r);
	}
	udfb_admin_stop(a);
	udfb_metrics_free(m);
}

int main(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	test_render();
	test_concurrent();
	test_http();
	test_ipv6();
	bad_addr("nonsense");
	bad_addr("127.0.0.1:99999");
	bad_addr("127.0.0.1:");
	bad_addr("127.0.0.1:+80");
	bad_addr("localhost:9090");
	bad_addr("::1:9090");
	bad_addr("[::1]9090");
	bad_addr("[::1:9090");
	bad_addr(":9090");
	bad_addr("256.0.0.1:80");
	curl_global_cleanup();
	return check_done();
}
