/* The abort-on-OOM allocation wrappers: see alloc.h and docs/errors.md. */
#include "common/alloc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

_Noreturn void udfb_oom(void)
{
	/* No stdio, no malloc: write(2) works when the heap does not. */
	static const char msg[] = "udf-builder: out of memory\n";
	ssize_t w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
	(void)w;
	abort();
}

void *udfb_malloc(size_t n)
{
	void *p = malloc(n ? n : 1); /* malloc(0) may return NULL on success */
	if (!p)
		udfb_oom();
	return p;
}

void *udfb_calloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1); /* calloc checks n * size itself */
	if (!p)
		udfb_oom();
	return p;
}

void *udfb_realloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1); /* realloc(p, 0) would free p */
	if (!q)
		udfb_oom();
	return q;
}

void *udfb_reallocarray(void *p, size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size)
		udfb_oom(); /* a size nothing can hold: the caller's bound failed */
	return udfb_realloc(p, n * size);
}

char *udfb_strdup(const char *s)
{
	char *d = strdup(s);
	if (!d)
		udfb_oom();
	return d;
}

char *udfb_strndup(const char *s, size_t n)
{
	char *d = strndup(s, n);
	if (!d)
		udfb_oom();
	return d;
}

char *udfb_vasprintf(const char *fmt, va_list ap)
{
	char *s = NULL;
	if (vasprintf(&s, fmt, ap) < 0)
		udfb_oom(); /* vasprintf fails only when it cannot allocate */
	return s;
}

char *udfb_asprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = udfb_vasprintf(fmt, ap);
	va_end(ap);
	return s;
}
