/* The CPU cost of a Databend script on the service's paths, per call, with a
 * fresh signature in every import URL (as every query brings): parse alone;
 * parse and the fingerprint of the fast path (what cache-hit calls do); parse
 * and the full cache key of the slow path (spec, requirements, key JSON).
 * A call repeating a script seen before (same bytes but for the URLs) is not
 * parsed at all: the service hashes the script without its URL values
 * (service/script_call.c); "hash_us" is a SHA-256 over the whole script, its
 * cost.  Usage: script_bench SCRIPT N.  Prints "bytes hash_us parse_us
 * fingerprint_us key_us" (medians over N). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "builder/build.h"
#include "common/alloc.h"
#include "common/fsutil.h"
#include "common/hash.h"
#include "builder/request.h"
#include "builder/script.h"

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* A new signature each call: every X-Amz-Signature's 64 hex digits change. */
static void resign(char *s, long round)
{
	for (char *p = s; (p = strstr(p, "X-Amz-Signature=")); p += 16)
		snprintf(p + 16, 17, "%016lx", (unsigned long)round * 2654435761ul), p[32] = '0';
}

static void part(struct udfb_sha256 *h, const void *p, size_t n)
{
	unsigned long long len = n;
	udfb_sha256_update(h, &len, sizeof(len));
	udfb_sha256_update(h, p, n);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: script_bench SCRIPT N\n");
		return 2;
	}
	char *text = NULL;
	size_t len = 0;
	struct udfb_err err = UDFB_ERR_INIT;
	if (udfb_read_file(&text, &len, argv[1], 1 << 24, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	long n = atol(argv[2]);
	double *t[4];
	for (int k = 0; k < 4; k++)
		t[k] = udfb_calloc((size_t)n, sizeof(double));
	for (long i = 0; i < n; i++) {
		resign(text, i);
		struct udfb_script s;
		char whole[UDFB_DIGEST_LEN + 1];
		double th = now_us();
		udfb_sha256_digest(text, len, whole);
		t[3][i] = now_us() - th;
		double t0 = now_us();
		if (udfb_script_parse(&s, text, len, &err) < 0) {
			fprintf(stderr, "%s\n", err.msg);
			return 1;
		}
		double t1 = now_us();
		struct udfb_sha256 *h = udfb_sha256_new(); /* as service/script_call.c's fingerprint */
		part(h, "bench", 5);
		part(h, s.code, s.code_len);
		part(h, s.stub, s.stub_len);
		for (size_t k = 0; k < s.n_packages; k++)
			part(h, s.packages[k], strlen(s.packages[k]));
		for (size_t k = 0; k < s.n_imports; k++) {
			part(h, s.imports[k].location, strlen(s.imports[k].location));
			part(h, "sha256:0", 8);
		}
		char fp[UDFB_DIGEST_LEN + 1];
		udfb_sha256_final(h, fp);
		double t2 = now_us();
		size_t sl = 0;
		char *spec = udfb_script_spec_json(&s, &sl);
		struct udfb_import *ims = udfb_calloc(s.n_imports + 1, sizeof(*ims));
		for (size_t k = 0; k < s.n_imports; k++)
			ims[k] = (struct udfb_import){ s.imports[k].location, s.imports[k].url, "sha256:0",
						       s.imports[k].headers };
		struct udfb_request r;
		char key[UDFB_DIGEST_LEN + 1];
		struct udfb_build_opts o = { .platform = "linux/amd64", .salt = "", .tenant = "bench" };
		if (udfb_request_from_parts(&r, spec, sl, ims, s.n_imports, &err) < 0 ||
		    (r.stub = udfb_strdup(s.stub), r.stub_len = s.stub_len,
		     udfb_build_key(key, &r, "sha256:0000000000000000000000000000000000000000000000000000000000000000",
				    &o, &err)) < 0) {
			fprintf(stderr, "%s\n", err.msg);
			return 1;
		}
		double t3 = now_us();
		t[0][i] = t1 - t0;
		t[1][i] = t2 - t0;
		t[2][i] = (t1 - t0) + (t3 - t2);
		udfb_request_free(&r);
		free(ims);
		free(spec);
		udfb_script_free(&s);
	}
	for (int k = 0; k < 4; k++)
		qsort(t[k], (size_t)n, sizeof(double), cmp);
	printf("%zu %.1f %.1f %.1f %.1f\n", len, t[3][n / 2], t[0][n / 2], t[1][n / 2], t[2][n / 2]);
	return 0;
}
