/* SHA-256 of a stream on a second thread, while this one reads and writes
 * it: a copy that names what it copied (a wheel from a directory index
 * into the content cache) takes the longer of the two instead of their sum
 * (22 MiB: 13 ms of hashing beside 10-15 of read and write here).
 *
 * The stream goes through the pipe's own buffers, each hashed in order
 * once filled; the caller may read a filled buffer (to write it out) until
 * it asks for the next one.  Below one buffer's worth nothing is started:
 * the bytes are hashed here. */
#ifndef UDFB_HASHPIPE_H
#define UDFB_HASHPIPE_H

#include <stddef.h>

#include "common/hash.h"

struct udfb_hashpipe;

struct udfb_hashpipe *udfb_hashpipe_new(void);
/* A buffer of udfb_hashpipe_bufsize() bytes to fill (waits while every
 * buffer is still being hashed). */
unsigned char *udfb_hashpipe_buf(struct udfb_hashpipe *p);
size_t udfb_hashpipe_bufsize(void);
/* The buffer from udfb_hashpipe_buf holds len bytes: hashed after those
 * before it. */
void udfb_hashpipe_push(struct udfb_hashpipe *p, size_t len);
/* The digest of everything pushed; frees p. */
void udfb_hashpipe_final(struct udfb_hashpipe *p, char out[UDFB_DIGEST_LEN + 1]);

#endif
