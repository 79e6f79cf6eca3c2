/* A growable byte buffer that carries its own limit (curl's dynbuf idea):
 * every buffer fed by untrusted bytes is one of these, so no input can grow
 * memory past what its owner allowed. */
#ifndef UDFB_BUF_H
#define UDFB_BUF_H

#include <stddef.h>

struct udfb_buf {
	char *data; /* always NUL-terminated when non-NULL */
	size_t len;
	size_t cap;
	size_t max; /* hard limit on len */
};

void udfb_buf_init(struct udfb_buf *b, size_t max);
/* Returns -1 (and changes nothing) when the limit would be passed. */
int udfb_buf_add(struct udfb_buf *b, const void *p, size_t n);
int udfb_buf_addstr(struct udfb_buf *b, const char *s);
int udfb_buf_printf(struct udfb_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void udfb_buf_reset(struct udfb_buf *b);
void udfb_buf_free(struct udfb_buf *b);
/* Hand the bytes to the caller (free() them); the buffer is left empty. */
char *udfb_buf_steal(struct udfb_buf *b, size_t *len);

#endif
