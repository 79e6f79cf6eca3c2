/* pgzip: the bytes never depend on the thread count or on how the input is
 * cut into writes, and zlib reads every member back. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "check.h"
#include "image/pgzip.h"

struct out {
	unsigned char *p;
	size_t n;
};

static int collect(void *ctx, const void *p, size_t n)
{
	struct out *o = ctx;
	o->p = realloc(o->p, o->n + n);
	memcpy(o->p + o->n, p, n);
	o->n += n;
	return 0;
}

static struct out run(const unsigned char *in, size_t n, int threads, size_t step)
{
	struct out o = { 0 };
	struct udfb_pgzip *z = NULL;
	int rc = udfb_pgzip_new(&z, 6, threads, collect, &o);
	for (size_t off = 0; rc == 0 && off < n; off += step)
		rc = udfb_pgzip_write(z, in + off, n - off < step ? n - off : step);
	if (rc == 0)
		rc = udfb_pgzip_finish(z);
	udfb_pgzip_free(z);
	if (rc < 0) {
		free(o.p);
		o.p = NULL;
	}
	return o;
}

/* Inflate every member (zlib's gzip mode stops at each member's end). */
static int inflate_all(const struct out *o, unsigned char **res, size_t *len)
{
	size_t cap = 1 << 20, used = 0, off = 0;
	unsigned char *buf = malloc(cap);
	while (off < o->n) {
		z_stream s = { 0 };
		if (inflateInit2(&s, 16 + 15) != Z_OK)
			return -1;
		s.next_in = o->p + off;
		s.avail_in = (uInt)(o->n - off);
		int rc;
		do {
			if (cap - used < 65536)
				buf = realloc(buf, cap *= 2);
			s.next_out = buf + used;
			s.avail_out = (uInt)(cap - used);
			rc = inflate(&s, Z_NO_FLUSH);
			used = cap - s.avail_out;
		} while (rc == Z_OK);
		off = o->n - s.avail_in;
		inflateEnd(&s);
		if (rc != Z_STREAM_END)
			return -1;
	}
	*res = buf;
	*len = used;
	return 0;
}

int main(void)
{
	size_t n = 3 * UDFB_PGZIP_CHUNK + 12345;
	unsigned char *in = malloc(n);
	unsigned x = 12345;
	for (size_t k = 0; k < n; k++) {
		x = x * 1103515245u + 12345u;
		in[k] = (k / 4096) % 2 ? (unsigned char)(x >> 24) : (unsigned char)"udf-builder "[k % 12];
	}
	struct out one = run(in, n, 1, n), three = run(in, n, 3, 65536), odd = run(in, n, 2, 7777);
	CHECK(one.p && three.p && odd.p, "compressed with 1, 2 and 3 threads");
	CHECK(one.n == three.n && memcmp(one.p, three.p, one.n) == 0, "1 thread and 3 threads: the same bytes");
	CHECK(one.n == odd.n && memcmp(one.p, odd.p, one.n) == 0, "writes of odd sizes: the same bytes");
	unsigned char *back = NULL;
	size_t len = 0;
	CHECK(inflate_all(&one, &back, &len) == 0 && len == n && memcmp(back, in, n) == 0,
	      "zlib reads the members back to the input (%zu bytes)", len);
	free(back);
	struct out empty = run(in, 0, 2, 1);
	back = NULL;
	CHECK(empty.p && inflate_all(&empty, &back, &len) == 0 && len == 0, "an empty input is one valid member");
	struct out exact = run(in, 2 * UDFB_PGZIP_CHUNK, 2, UDFB_PGZIP_CHUNK);
	free(back);
	back = NULL;
	CHECK(exact.p && inflate_all(&exact, &back, &len) == 0 && len == 2 * UDFB_PGZIP_CHUNK,
	      "an input of whole chunks ends without an empty member");
	free(back);
	free(one.p);
	free(three.p);
	free(odd.p);
	free(empty.p);
	free(exact.p);
	free(in);
	return check_done();
}
