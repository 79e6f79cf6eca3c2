/* Spliced gzip members: a wheel entry's deflate stream, as the wheel holds
 * it, made a gzip member of a layer without inflating and deflating it
 * again.  A zip entry of method 8 is a raw deflate stream (RFC 1951) that
 * ends with a final block; a gzip member (RFC 1952) is a 10-byte header,
 * such a stream, the CRC-32 and the length of what it inflates to.  The
 * caller vouches for the stream: it inflated exactly these bytes from an
 * empty window, to exactly the content it names (python/wheel_extract.c),
 * so any gzip reader, which starts each member with an empty window,
 * inflates the member to the same content. */
#ifndef UDFB_GZSPLICE_H
#define UDFB_GZSPLICE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* Receives the member in order; non-zero stops (as udfb_pgzip_out). */
typedef int (*udfb_gzsplice_out)(void *ctx, const void *p, size_t n);

/* Emits one member through fn: header, the len bytes at offset of fd (a
 * complete raw deflate stream), then crc32 and size (of the inflated
 * content) as the trailer.  -1 with err set when fd cannot be read or fn
 * fails (fn's own failure is reported as a write error of what). */
int udfb_gzsplice_member(udfb_gzsplice_out fn, void *ctx, int fd, long long offset, long long len, uint32_t crc32,
			 long long size, const char *what, struct udfb_err *err);
/* The same with the stream in memory: len bytes at p. */
int udfb_gzsplice_member_mem(udfb_gzsplice_out fn, void *ctx, const void *p, size_t len, uint32_t crc32, long long size,
			     const char *what, struct udfb_err *err);

#endif
