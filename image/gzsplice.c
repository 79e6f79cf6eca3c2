/* Spliced gzip members: see gzsplice.h.  The header is fixed (no name, no
 * time, no extra field: nothing that depends on when or where), so the
 * member's bytes depend on the stream and its content alone. */
#include "image/gzsplice.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/alloc.h"

#define COPY_BUF (256u << 10)

static int head(udfb_gzsplice_out fn, void *ctx, const char *what, struct udfb_err *err)
{
	/* ID1 ID2, CM 8 (deflate), FLG 0, MTIME 0, XFL 0, OS 255 (unknown). */
	static const unsigned char h[10] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255 };
	if (fn(ctx, h, sizeof(h)))
		return udfb_err_set(err, UDFB_E_INTERNAL, "layer entry '%s': write failed", what);
	return 0;
}

/* CRC-32 and ISIZE (the size modulo 2^32), little-endian. */
static int tail(udfb_gzsplice_out fn, void *ctx, uint32_t crc32, long long size, const char *what, struct udfb_err *err)
{
	unsigned long long isize = (unsigned long long)size & 0xffffffffu;
	unsigned char t[8];
	for (int k = 0; k < 4; k++) {
		t[k] = (unsigned char)(crc32 >> (8 * k));
		t[4 + k] = (unsigned char)(isize >> (8 * k));
	}
	if (fn(ctx, t, sizeof(t)))
		return udfb_err_set(err, UDFB_E_INTERNAL, "layer entry '%s': write failed", what);
	return 0;
}

int udfb_gzsplice_member_mem(udfb_gzsplice_out fn, void *ctx, const void *p, size_t len, uint32_t crc32, long long size,
			     const char *what, struct udfb_err *err)
{
	if (head(fn, ctx, what, err) < 0)
		return -1;
	if (len && fn(ctx, p, len))
		return udfb_err_set(err, UDFB_E_INTERNAL, "layer entry '%s': write failed", what);
	return tail(fn, ctx, crc32, size, what, err);
}

int udfb_gzsplice_member(udfb_gzsplice_out fn, void *ctx, int fd, long long offset, long long len, uint32_t crc32,
			 long long size, const char *what, struct udfb_err *err)
{
	if (head(fn, ctx, what, err) < 0)
		return -1;
	size_t cap = len < COPY_BUF ? (size_t)len + 1 : COPY_BUF;
	unsigned char *buf = udfb_malloc(cap);
	int rc = 0;
	while (len > 0 && rc == 0) {
		ssize_t n = pread(fd, buf, len < (long long)cap ? (size_t)len : cap, offset);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			rc = udfb_err_sys(err, errno, "layer entry '%s': read its deflate stream", what);
		else if (n == 0)
			rc = udfb_err_set(err, UDFB_E_INTERNAL, "layer entry '%s': deflate stream shorter than noted",
					  what);
		else if (fn(ctx, buf, (size_t)n))
			rc = udfb_err_set(err, UDFB_E_INTERNAL, "layer entry '%s': write failed", what);
		else {
			offset += n;
			len -= n;
		}
	}
	free(buf);
	if (rc < 0)
		return rc;
	return tail(fn, ctx, crc32, size, what, err);
}
