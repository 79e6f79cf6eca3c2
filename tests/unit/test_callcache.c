/* Bounded memory (issue 18): every table of the service that grows with
 * distinct calls stays at max_cached_calls entries, least recently used out,
 * and the heap stays flat while 10,000 distinct calls go by:
 * - fingerprints: 10,000 byte forms of one spec (white space), each a hit
 *   on the same ready (tenant, key) that remembered its bytes;
 * - scripts: one Databend script from 10,000 tenants (the memo is by
 *   tenant and script);
 * - flights: 300 tenants' (tenant, key) entries, each a failed build.
 * Before, each distinct call added about 380 bytes that were never freed.
 * Uses the real service core with the template scheduler and the tests'
 * tiny base image (UDFB_TEST_TINY_BASE). */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "common/buf.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "service/metrics.h"
#include "service/service.h"

#define MAX_CACHED 100
#define CALLS 10000

static char hot[1024]; /* a form of acme's spec, asked again all along */

/* The ASan allocator keeps its own books; glibc's otherwise. */
size_t __sanitizer_get_current_allocated_bytes(void) __attribute__((weak));

static long long heap_bytes(void)
{
	if (__sanitizer_get_current_allocated_bytes)
		return (long long)__sanitizer_get_current_allocated_bytes();
	struct mallinfo2 mi = mallinfo2();
	return (long long)mi.uordblks;
}

static long long metric(struct udfb_service *s, const char *name)
{
	struct udfb_buf b;
	udfb_buf_init(&b, 1 << 20);
	udfb_metrics_render(udfb_service_metrics(s), &b);
	const char *p = strstr(b.data, name);
	long long v = p ? atoll(p + strlen(name)) : -1;
	udfb_buf_free(&b);
	return v;
}

/* The spec with its 14 separators written as a space or a newline by the
 * bits of n: 16,384 byte forms of one request. */
static void spec_form(char *out, size_t size, unsigned n)
{
	const char *sep[14];
	for (int k = 0; k < 14; k++)
		sep[k] = n >> k & 1 ? "\n" : " ";
	snprintf(out, size,
		 "{%s\"version\":%s1,%s\"kind\":%s\"udf\",%s\"language\":%s\"python\",%s\"handler\":%s\"f\",%s"
		 "\"input_types\":%s[],%s\"result_type\":%s\"INT\",%s\"runtime_version\":\"3\",\"code\":"
		 "\"def f():\\n    return 1\\n\"%s}",
		 sep[0], sep[1], sep[2], sep[3], sep[4], sep[5], sep[6], sep[7], sep[8], sep[9], sep[10], sep[11],
		 sep[12], sep[13]);
}

static int apply(struct udfb_service *s, const char *tenant, const char *spec, const struct udfb_import *im, size_t n,
		 struct udfb_err *err)
{
	struct udfb_call_meta meta = { .tenant = tenant };
	struct udfb_apply_out out = { 0 };
	struct udfb_prepared *p = NULL;
	int rc = udfb_service_repeat(s, &meta, spec, strlen(spec), im, n, &out);
	if (rc == 0 && (rc = udfb_service_prepare(s, &p, &meta, spec, strlen(spec), im, n, err)) == 0) {
		if (udfb_service_lookup(s, p, &out))
			udfb_prepared_free(p);
		else
			rc = udfb_service_complete(s, p, udfb_now_ms() + 20000, &out, err);
	}
	udfb_apply_out_clear(&out);
	return rc < 0 ? -1 : 0;
}

static void fingerprints(struct udfb_service *s)
{
	char spec[1024];
	struct udfb_err err = UDFB_ERR_INIT;
	spec_form(spec, sizeof(spec), 0);
	CHECK(apply(s, "acme", spec, NULL, 0, &err) == 0, "the spec builds (%s)", err.msg ? err.msg : "ok");
	long long warm = 0, failed = 0;
	for (unsigned i = 1; i <= CALLS; i++) {
		spec_form(spec, sizeof(spec), i);
		failed += apply(s, "acme", spec, NULL, 0, &err) < 0;
		udfb_err_clear(&err);
		if (i == 3 * MAX_CACHED)
			warm = heap_bytes();
	}
	long long grown = heap_bytes() - warm;
	CHECK(failed == 0, "%d distinct byte forms answered (%lld failed)", CALLS, failed);
	CHECK(metric(s, "udfb_cached_entries{table=\"fingerprints\"} ") == MAX_CACHED, "fingerprints: %lld entries",
	      metric(s, "udfb_cached_entries{table=\"fingerprints\"} "));
	CHECK(metric(s, "udfb_cached_evictions_total{table=\"fingerprints\"} ") >= CALLS - MAX_CACHED,
	      "fingerprints: the least recently used went");
	CHECK(grown < 256 * 1024, "heap after warm-up: %+lld bytes over %d calls (unbounded: ~3 MiB)", grown,
	      CALLS - 3 * MAX_CACHED);
	/* The table still answers: the newest form is a hit from memory. */
	struct udfb_call_meta meta = { .tenant = "acme" };
	struct udfb_apply_out out = { 0 };
	CHECK(udfb_service_repeat(s, &meta, spec, strlen(spec), NULL, 0, &out) == 1,
	      "a recent form repeats from memory");
	udfb_apply_out_clear(&out);
	memcpy(hot, spec, sizeof(hot));
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *b = calloc(1, 1 << 16);
	*len = fread(b, 1, (1 << 16) - 1, f);
	fclose(f);
	return b;
}

static void scripts(struct udfb_service *s)
{
	size_t len = 0;
	char *script = read_file("tests/fuzz/corpus/script/add_one_helper.apply_resource.sh", &len);
	CHECK(script != NULL, "the script fixture");
	if (!script)
		return;
	long long warm = 0, parsed = 0;
	for (int i = 0; i < CALLS; i++) {
		char tenant[32];
		snprintf(tenant, sizeof(tenant), "t%d", i);
		struct udfb_call_meta meta = { .tenant = tenant };
		struct udfb_script_call *c = NULL;
		struct udfb_apply_out hit = { 0 };
		struct udfb_err err = UDFB_ERR_INIT;
		parsed += udfb_service_script_begin(s, &c, &meta, NULL, script, len, &hit, &err) == 0;
		udfb_script_call_free(c);
		udfb_apply_out_clear(&hit);
		udfb_err_clear(&err);
		if (i == 3 * MAX_CACHED)
			warm = heap_bytes();
	}
	long long grown = heap_bytes() - warm;
	CHECK(parsed == CALLS, "the script from %d tenants parsed (%lld)", CALLS, parsed);
	CHECK(metric(s, "udfb_cached_entries{table=\"scripts\"} ") == MAX_CACHED, "scripts: %lld entries",
	      metric(s, "udfb_cached_entries{table=\"scripts\"} "));
	CHECK(grown < 256 * 1024, "heap after warm-up: %+lld bytes", grown);
	free(script);
}

static void flights(struct udfb_service *s)
{
	/* An import on a guarded address: a deterministic failure, remembered. */
	const char *bad =
		"{\"version\":1,\"kind\":\"udf\",\"language\":\"python\",\"handler\":\"g\",\"input_types\":[],"
		"\"result_type\":\"INT\",\"imports\":[\"@s/x.py\"],\"runtime_version\":\"3\",\"code\":\"def "
		"g():\\n    return 1\\n\"}";
	struct udfb_import im = { "@s/x.py", "http://169.254.169.254/x.py", "t1" };
	int refused = 0, repeats = 0;
	struct udfb_call_meta acme = { .tenant = "acme" };
	for (int i = 0; i < 3 * MAX_CACHED; i++) {
		char tenant[32];
		snprintf(tenant, sizeof(tenant), "f%d", i);
		struct udfb_err err = UDFB_ERR_INIT;
		refused += apply(s, tenant, bad, &im, 1, &err) < 0 && err.cat == UDFB_E_INVALID;
		udfb_err_clear(&err);
		/* A flight used through its fingerprints is in use: it stays. */
		struct udfb_apply_out out = { 0 };
		repeats += udfb_service_repeat(s, &acme, hot, strlen(hot), NULL, 0, &out);
		udfb_apply_out_clear(&out);
	}
	CHECK(refused == 3 * MAX_CACHED, "%d failed builds (%d)", 3 * MAX_CACHED, refused);
	CHECK(repeats == 3 * MAX_CACHED, "a flight in use through its fingerprint stays meanwhile (%d of %d)", repeats,
	      3 * MAX_CACHED);
	CHECK(metric(s, "udfb_cached_entries{table=\"flights\"} ") <= MAX_CACHED, "flights: %lld entries",
	      metric(s, "udfb_cached_entries{table=\"flights\"} "));
}

int main(void)
{
	const char *base = getenv("UDFB_TEST_TINY_BASE");
	if (!base) {
		printf("# UDFB_TEST_TINY_BASE is not set (tests/run.sh sets it)\n");
		return 77;
	}
	udfb_log_init(UDFB_LOG_ERROR, 0); /* 300 failed builds say so at warn */
	char dir[] = "/tmp/udfb-callcache-XXXXXX";
	if (!mkdtemp(dir))
		return 1;
	struct udfb_config cfg;
	struct udfb_err err = UDFB_ERR_INIT;
	udfb_config_defaults(&cfg);
	char *store = udfb_path_join(dir, "store");
	char max[16];
	snprintf(max, sizeof(max), "%d", MAX_CACHED);
	udfb_config_set(&cfg, "store", store, &err);
	udfb_config_set(&cfg, "base-image", base, &err);
	udfb_config_set(&cfg, "token-secret", "0123456789abcdef-test", &err);
	udfb_config_set(&cfg, "scheduler", "template", &err);
	CHECK(udfb_config_set(&cfg, "max-cached-calls", max, &err) == 0, "max-cached-calls %s", max);
	struct udfb_service *s;
	CHECK(udfb_service_new(&s, &cfg, &err) == 0, "service starts (%s)", err.msg ? err.msg : "ok");
	fingerprints(s);
	scripts(s);
	flights(s);
	udfb_service_free(s);
	udfb_config_free(&cfg);
	free(store);
	udfb_rm_rf(dir);
	return check_done();
}
