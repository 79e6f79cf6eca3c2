/* Single flight: 32 threads asking for one (tenant, key) at once run one
 * build and get 32 identical answers; with a build that fails, 32 errors
 * and still one build.  Uses the real service core with the template
 * scheduler and the tests' tiny base image (UDFB_TEST_TINY_BASE). */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/buf.h"
#include "check.h"
#include "common/fsutil.h"
#include "service/metrics.h"
#include "service/service.h"

#define THREADS 32

struct call {
	struct udfb_service *s;
	const char *spec;
	const struct udfb_import *imports;
	size_t n_imports;
	struct udfb_apply_out out;
	struct udfb_err err;
	int rc;
};

static pthread_barrier_t start;

static void *caller(void *arg)
{
	struct call *c = arg;
	struct udfb_call_meta meta = { .tenant = "acme" };
	struct udfb_prepared *p = NULL;
	pthread_barrier_wait(&start);
	c->rc = udfb_service_prepare(c->s, &p, &meta, c->spec, strlen(c->spec), c->imports, c->n_imports, &c->err);
	if (c->rc == 0)
		c->rc = udfb_service_complete(c->s, p, udfb_now_ms() + 20000, &c->out, &c->err);
	return NULL;
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

static void storm(struct udfb_service *s, const char *spec, const struct udfb_import *im, size_t n, struct call *calls)
{
	pthread_t t[THREADS];
	pthread_barrier_init(&start, NULL, THREADS);
	for (int k = 0; k < THREADS; k++) {
		calls[k] = (struct call){ .s = s, .spec = spec, .imports = im, .n_imports = n, .err = UDFB_ERR_INIT };
		pthread_create(&t[k], NULL, caller, &calls[k]);
	}
	for (int k = 0; k < THREADS; k++)
		pthread_join(t[k], NULL);
	pthread_barrier_destroy(&start);
}

/* Tokens for one sandbox: equal, or (the calls straddling a second) the
 * same but for an expiry ("ID.EXP.SIG") a second apart. */
static int same_token(const char *a, const char *b)
{
	if (strcmp(a, b) == 0)
		return 1;
	const char *da = strchr(a, '.'), *db = strchr(b, '.');
	if (!da || !db || da - a != db - b || strncmp(a, b, (size_t)(da - a)) != 0)
		return 0;
	long ea = strtol(da + 1, NULL, 10), eb = strtol(db + 1, NULL, 10);
	return ea - eb <= 1 && eb - ea <= 1;
}

int main(void)
{
	const char *base = getenv("UDFB_TEST_TINY_BASE");
	if (!base) {
		printf("# UDFB_TEST_TINY_BASE is not set (tests/run.sh sets it)\n");
		return 77;
	}
	char dir[] = "/tmp/udfb-flight-XXXXXX";
	if (!mkdtemp(dir))
		return 1;
	struct udfb_config cfg;
	struct udfb_err err = UDFB_ERR_INIT;
	udfb_config_defaults(&cfg);
	char *store = udfb_path_join(dir, "store");
	udfb_config_set(&cfg, "store", store, &err);
	udfb_config_set(&cfg, "base-image", base, &err);
	udfb_config_set(&cfg, "token-secret", "0123456789abcdef-test", &err);
	udfb_config_set(&cfg, "build-workers", "4", &err);
	udfb_config_set(&cfg, "scheduler", "template", &err); /* the tiny base runs nothing */
	struct udfb_service *s;
	CHECK(udfb_service_new(&s, &cfg, &err) == 0, "service starts (%s)", err.msg ? err.msg : "ok");

	const char *spec =
		"{\"version\":1,\"kind\":\"udf\",\"language\":\"python\",\"handler\":\"f\",\"input_types\":[],"
		"\"result_type\":\"INT\",\"runtime_version\":\"3\",\"code\":\"def f():\\n    return 1\\n\"}";
	struct call calls[THREADS];
	storm(s, spec, NULL, 0, calls);
	int same = 1;
	for (int k = 0; k < THREADS; k++)
		same &= calls[k].rc == 0 && strcmp(calls[k].out.endpoint, calls[0].out.endpoint) == 0 &&
			same_token(calls[k].out.token, calls[0].out.token);
	CHECK(same, "32 identical answers");
	CHECK(metric(s, "udfb_builds_total{result=\"ok\"} ") == 1, "one build for 32 calls");
	for (int k = 0; k < THREADS; k++)
		udfb_apply_out_clear(&calls[k].out), udfb_err_clear(&calls[k].err);

	/* An import on a guarded address: a deterministic failure. */
	const char *bad =
		"{\"version\":1,\"kind\":\"udf\",\"language\":\"python\",\"handler\":\"g\",\"input_types\":[],"
		"\"result_type\":\"INT\",\"imports\":[\"@s/x.py\"],\"runtime_version\":\"3\",\"code\":\"def g():\\n    "
		"return 1\\n\"}";
	struct udfb_import im = { "@s/x.py", "http://169.254.169.254/x.py?sig=secret", "t1" };
	storm(s, bad, &im, 1, calls);
	int errors = 0;
	for (int k = 0; k < THREADS; k++)
		errors += calls[k].rc < 0 && calls[k].err.cat == UDFB_E_INVALID &&
			  strstr(calls[k].err.msg, "@s/x.py") && !strstr(calls[k].err.msg, "secret");
	CHECK(errors == THREADS, "32 errors naming the import (%d)", errors);
	CHECK(metric(s, "udfb_builds_total{result=\"error\"} ") == 1, "one failed build for 32 calls");
	for (int k = 0; k < THREADS; k++)
		udfb_apply_out_clear(&calls[k].out), udfb_err_clear(&calls[k].err);
	udfb_service_free(s);
	udfb_config_free(&cfg);
	free(store);
	udfb_rm_rf(dir);
	return check_done();
}
