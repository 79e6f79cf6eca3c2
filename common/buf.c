/* Bounded growable buffer: see buf.h. */
#include "common/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"

void udfb_buf_init(struct udfb_buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

static int grow(struct udfb_buf *b, size_t need)
{
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	if (cap > b->max + 1)
		cap = b->max + 1;
	char *p = udfb_realloc(b->data, cap);
	b->data = p;
	b->cap = cap;
	return 0;
}

int udfb_buf_add(struct udfb_buf *b, const void *p, size_t n)
{
	if (n > b->max - b->len)
		return -1;
	grow(b, b->len + n + 1);
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int udfb_buf_addstr(struct udfb_buf *b, const char *s)
{
	return udfb_buf_add(b, s, strlen(s));
}

int udfb_buf_printf(struct udfb_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n > b->max - b->len)
		return -1;
	grow(b, b->len + (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void udfb_buf_reset(struct udfb_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void udfb_buf_free(struct udfb_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

char *udfb_buf_steal(struct udfb_buf *b, size_t *len)
{
	if (!b->data)
		grow(b, 1), b->data[0] = '\0';
	char *p = b->data;
	if (len)
		*len = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}
