/* Versions that are part of every cache key (docs/cache-key.md). */
#ifndef UDFB_VERSION_H
#define UDFB_VERSION_H

#define UDFB_VERSION "0.1.0"
/* Bump when the bytes of a layer built from the same inputs change (tar
 * layout, compression level, zlib behaviour we rely on). */
/* 2: chunked parallel gzip (pgzip.h); 3: a wheel entry's deflate stream
 * spliced as a member of its own (gzsplice.h). */
#define UDFB_LAYER_FORMAT 3
#define UDFB_KEY_FORMAT "udf-builder-key/2"
#define UDFB_DEFAULT_PLATFORM "linux/amd64"

#endif
