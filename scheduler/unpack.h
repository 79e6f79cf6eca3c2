/* Unpacking one image layer (a tar, gzip'd or not) into a directory in the
 * form overlayfs reads as a lower layer: a whiteout `.wh.NAME` becomes the
 * character device 0/0 NAME, `.wh..wh..opq` becomes the xattr
 * trusted.overlay.opaque=y on its directory.  Every path is resolved beneath
 * the directory without following a symlink, so no entry can write outside
 * it; device nodes, FIFOs and sockets are skipped, setuid and setgid bits
 * dropped, extended attributes of the tar ignored.  The blob is hashed as it
 * is read and must match its digest. */
#ifndef UDFB_UNPACK_H
#define UDFB_UNPACK_H

#include "common/err.h"

struct udfb_unpack_stats {
	long entries;
	long whiteouts;
	long skipped; /* devices, FIFOs, sockets */
	long long bytes;
};

/* blob: the layer file; digest: what it must hash to ("sha256:..."), NULL
 * to skip the check; dir: an existing empty directory. */
int udfb_layer_unpack(const char *blob, const char *digest, const char *dir, struct udfb_unpack_stats *stats,
		      struct udfb_err *err);

#endif
