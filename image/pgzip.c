/* Parallel deterministic gzip: see pgzip.h.  A ring of slots, one more
 * than there are threads: a full chunk is handed to a thread of its own at
 * once, and the caller goes on filling the next slot (making the tar,
 * hashing it) while earlier chunks compress.  Reusing a slot first waits
 * for it and emits its member: slots are reused in ring order, so members
 * come out in input order.  A slot's compressor and buffers are made when
 * it is first filled, sized to what it holds: a layer of a few kilobytes
 * (most of a UDF's) costs one small compressor, no thread and no 1 MiB
 * buffers. */
#include "image/pgzip.h"

#include <libdeflate.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"

#define MAX_THREADS 8

struct slot {
	struct libdeflate_compressor *c; /* one per slot: not shareable */
	unsigned char *in, *out;
	size_t in_len, in_cap, out_len, out_cap;
	pthread_t th;
	int busy; /* 1: compressing on th, 2: compressed here, not emitted */
};

struct udfb_pgzip {
	struct slot slots[MAX_THREADS + 1];
	int n_slots, cur, members, failed, level;
	udfb_pgzip_out fn;
	void *ctx;
};

int udfb_pgzip_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (int)n;
}

int udfb_pgzip_new(struct udfb_pgzip **out, int level, int threads, udfb_pgzip_out fn, void *ctx)
{
	struct udfb_pgzip *z = udfb_calloc(1, sizeof(*z));
	z->n_slots = (threads < 1 ? 1 : threads > MAX_THREADS ? MAX_THREADS : threads) + 1;
	z->fn = fn;
	z->ctx = ctx;
	z->level = level;
	*out = z;
	/* A compressor that cannot be had fails here, not half-way. */
	struct libdeflate_compressor *c = libdeflate_alloc_compressor(level);
	if (!c)
		return -1;
	z->slots[0].c = c;
	return 0;
}

/* Room for n more input bytes in s (at most a chunk in all). */
static void slot_reserve(struct slot *s, size_t n)
{
	if (s->in_len + n <= s->in_cap)
		return;
	size_t cap = s->in_cap ? s->in_cap : 16384;
	while (cap < s->in_len + n)
		cap *= 2;
	cap = cap > UDFB_PGZIP_CHUNK ? UDFB_PGZIP_CHUNK : cap;
	s->in = udfb_realloc(s->in, cap);
	s->in_cap = cap;
}

/* The compressor and the output room for s's input, before compressing. */
static int slot_prepare(struct udfb_pgzip *z, struct slot *s)
{
	if (!s->c && !(s->c = libdeflate_alloc_compressor(z->level)))
		return -1;
	size_t need = libdeflate_gzip_compress_bound(s->c, s->in_len);
	if (need > s->out_cap) {
		free(s->out);
		s->out = udfb_malloc(need);
		s->out_cap = need;
	}
	return 0;
}

static void *compress_slot(void *arg)
{
	struct slot *s = arg;
	/* 0 only when out_cap is too small, which the bound rules out. */
	s->out_len = libdeflate_gzip_compress(s->c, s->in, s->in_len, s->out, s->out_cap);
	return NULL;
}

/* Wait for slot s (if it holds a chunk) and emit its member. */
static int drain(struct udfb_pgzip *z, struct slot *s)
{
	if (!s->busy)
		return 0;
	if (s->busy == 1)
		pthread_join(s->th, NULL);
	s->busy = 0;
	s->in_len = 0;
	if (!z->failed && (s->out_len == 0 || z->fn(z->ctx, s->out, s->out_len)))
		z->failed = 1;
	z->members++;
	return z->failed ? -1 : 0;
}

/* Hand the current slot's chunk over and make the next slot current. */
static int submit(struct udfb_pgzip *z)
{
	struct slot *s = &z->slots[z->cur];
	if (slot_prepare(z, s) < 0) {
		z->failed = 1;
		return -1;
	}
	if (pthread_create(&s->th, NULL, compress_slot, s) == 0) {
		s->busy = 1;
	} else {
		compress_slot(s); /* no thread to be had: here, then */
		s->busy = 2;
	}
	z->cur = (z->cur + 1) % z->n_slots;
	return drain(z, &z->slots[z->cur]);
}

int udfb_pgzip_write(struct udfb_pgzip *z, const void *p, size_t n)
{
	const unsigned char *b = p;
	while (n > 0 && !z->failed) {
		struct slot *s = &z->slots[z->cur];
		size_t take = UDFB_PGZIP_CHUNK - s->in_len;
		take = take < n ? take : n;
		slot_reserve(s, take);
		memcpy(s->in + s->in_len, b, take);
		s->in_len += take;
		b += take;
		n -= take;
		if (s->in_len == UDFB_PGZIP_CHUNK && submit(z) < 0)
			return -1;
	}
	return z->failed ? -1 : 0;
}

int udfb_pgzip_finish(struct udfb_pgzip *z)
{
	/* The partial last chunk; an empty one only when nothing came at all
	 * (a gzip stream has at least one member). */
	int last = z->cur;
	int has_last = z->slots[last].in_len > 0;
	if (has_last || z->members == 0) {
		int pending = 0;
		for (int k = 0; k < z->n_slots; k++)
			pending += z->slots[k].busy != 0;
		if (has_last || pending == 0) {
			if (slot_prepare(z, &z->slots[last]) < 0)
				z->failed = 1;
			else
				compress_slot(&z->slots[last]);
			z->slots[last].busy = 2;
		}
	}
	/* Emit in ring order, starting after the last one. */
	for (int k = 1; k <= z->n_slots; k++)
		drain(z, &z->slots[(last + k) % z->n_slots]);
	return z->failed ? -1 : 0;
}

int udfb_pgzip_flush(struct udfb_pgzip *z)
{
	/* What is buffered is the glue before a splice: a tar header and the
	 * small files since the last one, compressed here rather than on a
	 * thread of its own (its start would cost more than the work). */
	int last = z->cur;
	struct slot *s = &z->slots[last];
	if (s->in_len > 0 && !z->failed) {
		if (slot_prepare(z, s) < 0) {
			z->failed = 1;
		} else {
			compress_slot(s);
			s->busy = 2;
		}
	}
	/* Oldest first: the slot after the current one, the current one last. */
	for (int k = 1; k <= z->n_slots; k++)
		drain(z, &z->slots[(last + k) % z->n_slots]);
	z->cur = (last + 1) % z->n_slots;
	return z->failed ? -1 : 0;
}

void udfb_pgzip_free(struct udfb_pgzip *z)
{
	if (!z)
		return;
	for (int k = 0; k < z->n_slots; k++)
		if (z->slots[k].busy == 1)
			pthread_join(z->slots[k].th, NULL); /* a writer given up on */
	for (int k = 0; k < z->n_slots; k++) {
		libdeflate_free_compressor(z->slots[k].c);
		free(z->slots[k].in);
		free(z->slots[k].out);
	}
	free(z);
}
