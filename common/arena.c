/* Arenas: see arena.h. */
#include "common/arena.h"

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#define HUGE_PAGE ((size_t)2 << 20)

int udfb_arena_init(struct udfb_arena *a, size_t max)
{
	memset(a, 0, sizeof(*a));
	if (max > SIZE_MAX / 2)
		return -1;
	size_t map_len = max + HUGE_PAGE;
	void *p = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	/* The start on a 2 MiB boundary: only whole aligned 2 MiB ranges can
	 * be huge pages.  The space before it is never touched (never memory)
	 * and is unmapped with the rest. */
	uintptr_t start = ((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
	a->base = (unsigned char *)start;
	a->max = max;
	a->map = p;
	a->map_len = map_len;
	/* Advice only: without THP the arena works the same, a page at a time. */
	if (max)
		madvise(a->base, max, MADV_HUGEPAGE);
	return 0;
}

void *udfb_arena_push(struct udfb_arena *a, size_t n)
{
	if (!a->base || n > a->max - a->len)
		return NULL;
	void *p = a->base + a->len;
	a->len += n;
	return p;
}

int udfb_arena_add(struct udfb_arena *a, const void *p, size_t n)
{
	void *d = udfb_arena_push(a, n);
	if (!d)
		return -1;
	if (n)
		memcpy(d, p, n);
	return 0;
}

void udfb_arena_reset(struct udfb_arena *a)
{
	a->len = 0;
}

int udfb_arena_charge(struct udfb_arena *a, struct udfb_membudget *b, long long n)
{
	long long used = atomic_load(&b->used);
	do {
		if (n > b->max - used)
			return -1;
	} while (!atomic_compare_exchange_weak(&b->used, &used, used + n));
	a->budget = b;
	a->charged = n;
	return 0;
}

void udfb_arena_adopt(struct udfb_arena *a, void *p, size_t len)
{
	memset(a, 0, sizeof(*a));
	a->base = p;
	a->len = a->max = len;
	a->map = p;
	a->map_len = len;
}

void udfb_arena_free(struct udfb_arena *a)
{
	if (a->map)
		munmap(a->map, a->map_len);
	if (a->budget)
		atomic_fetch_sub(&a->budget->used, a->charged);
	memset(a, 0, sizeof(*a));
}
