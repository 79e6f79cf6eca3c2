/* Parallel, deterministic gzip: the input is cut into fixed 1 MiB chunks,
 * each compressed by libdeflate into a gzip member of its own (RFC 1952
 * allows any number; Go's, zlib's, libarchive's and Python's readers read
 * them all, as they do eStargz layers).  Chunks are compressed on as many
 * threads as there are CPUs; the bytes depend on the input, the level and
 * libdeflate's version only, never on the thread count or timing. */
#ifndef UDFB_PGZIP_H
#define UDFB_PGZIP_H

#include <stddef.h>

#define UDFB_PGZIP_CHUNK (1u << 20)

/* Receives the compressed stream in order; non-zero stops the writer. */
typedef int (*udfb_pgzip_out)(void *ctx, const void *p, size_t n);

struct udfb_pgzip;

/* threads: chunks compressed at once (1: all on the caller's thread). */
int udfb_pgzip_new(struct udfb_pgzip **out, int level, int threads, udfb_pgzip_out fn, void *ctx);
int udfb_pgzip_write(struct udfb_pgzip *z, const void *p, size_t n);
/* Ends the member being filled (when anything is in it) and emits every
 * member not yet emitted: the caller may then emit bytes of its own
 * through the output function (a gzip member it made: a spliced wheel
 * entry, layer.c) before writing on.  The members' boundaries, and so the
 * bytes, depend on where the flushes are, never on the thread count. */
int udfb_pgzip_flush(struct udfb_pgzip *z);
/* Compresses what is left (an empty input still gives one member). */
int udfb_pgzip_finish(struct udfb_pgzip *z);
void udfb_pgzip_free(struct udfb_pgzip *z);
/* Threads worth using here: the online CPUs, at most 8. */
int udfb_pgzip_threads(void);

#endif
