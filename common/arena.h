/* Arenas: large buffers that grow without moving, for the bytes of a wheel
 * on their way into a layer (tens of MiB read, inflated and hashed once).
 *
 * Why not malloc: on this kind of machine a page fault costs microseconds
 * (a hypervisor's exit), and a 24 MiB buffer of 4 KiB pages is 6,000 of
 * them, more than inflating the bytes.  An arena reserves its whole limit
 * of address space up front (no memory until touched: MAP_NORESERVE),
 * aligned for transparent huge pages and advised to use them, so touching
 * it costs a fault per 2 MiB where the kernel allows it; and since it never
 * moves, pointers into it stay valid while it grows. */
#ifndef UDFB_ARENA_H
#define UDFB_ARENA_H

#include <stddef.h>

/* Memory that many arenas, on many threads, share a limit on: what an
 * arena is charged comes back when it is freed. */
struct udfb_membudget {
	_Atomic long long used;
	long long max;
};

struct udfb_arena {
	unsigned char *base; /* the bytes: NULL until udfb_arena_init */
	size_t len; /* bytes in use */
	size_t max; /* the limit: bytes reserved */
	void *map; /* what was mapped: max plus room to align base */
	size_t map_len;
	struct udfb_membudget *budget; /* charged, or NULL */
	long long charged;
};

/* Charge n bytes of budget b to a (which gives them back when freed):
 * 0, or -1 (nothing charged) when b would pass its max. */
int udfb_arena_charge(struct udfb_arena *a, struct udfb_membudget *b, long long n);

/* Reserve max bytes of address space; 0, or -1 (errno set) when mmap fails. */
int udfb_arena_init(struct udfb_arena *a, size_t max);
/* Room for n more bytes at the end: a pointer to them (len grows by n), or
 * NULL when the arena would pass its limit. */
void *udfb_arena_push(struct udfb_arena *a, size_t n);
/* Append n bytes; -1 when the arena would pass its limit. */
int udfb_arena_add(struct udfb_arena *a, const void *p, size_t n);
/* Empty again; the pages stay (no fault when filled again). */
void udfb_arena_reset(struct udfb_arena *a);
/* An arena over len bytes mapped elsewhere (a file's, read only): full,
 * and unmapped by udfb_arena_free like the others. */
void udfb_arena_adopt(struct udfb_arena *a, void *p, size_t len);
/* Unmap (a zeroed arena is fine). */
void udfb_arena_free(struct udfb_arena *a);

#endif
