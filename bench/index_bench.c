/* Hit lookups in the store's key index at N keys: median and p99 latency
 * and resident memory per key.  Usage: index_bench N DIR.  Prints
 * "N median_us p99_us bytes_per_key insert_s". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/hash.h"
#include "cache/index.h"

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static long rss_bytes(void)
{
	long pages = 0, res = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f && fscanf(f, "%ld %ld", &pages, &res) != 2)
		res = 0;
	if (f)
		fclose(f);
	return res * sysconf(_SC_PAGESIZE);
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void key(char out[UDFB_DIGEST_LEN + 1], long i)
{
	char t[32];
	int n = snprintf(t, sizeof(t), "k%ld", i);
	udfb_sha256_digest(t, (size_t)n, out);
}

int main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	long n = atol(argv[1]);
	struct udfb_index *ix;
	struct udfb_err err = UDFB_ERR_INIT;
	if (udfb_index_open(&ix, argv[2], &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	double t0 = now_us();
	char k[UDFB_DIGEST_LEN + 1];
	for (long i = 0; i < n; i++) {
		key(k, i);
		if (udfb_index_put(ix, k, k, &err) < 0) {
			fprintf(stderr, "%s\n", err.msg);
			return 1;
		}
	}
	double insert_s = (now_us() - t0) / 1e6;
	/* A fresh handle, so resident memory counts what lookups touch. */
	udfb_index_close(ix);
	long before = rss_bytes();
	if (udfb_index_open(&ix, argv[2], &err) < 0)
		return 1;
	long m = n < 200000 ? 200000 : n;
	double *lat = udfb_malloc((size_t)m * sizeof(double));
	srand(1);
	for (long i = 0; i < m; i++) {
		key(k, i < n ? (i * 7919) % n : rand() % n);
		double a = now_us();
		int hit = udfb_index_get(ix, k, 0, NULL);
		lat[i] = now_us() - a;
		if (!hit)
			return 1;
	}
	long after = rss_bytes();
	qsort(lat, (size_t)m, sizeof(double), cmp);
	printf("%ld %.3f %.3f %.0f %.2f\n", n, lat[m / 2], lat[(long)(m * 0.99)], (double)(after - before) / (double)n,
	       insert_s);
	free(lat);
	udfb_index_close(ix);
	return 0;
}
