/* Allocation that does not fail (docs/errors.md, rule 4).
 *
 * The service answers within a deadline: a process that ran out of memory
 * cannot answer well, and a path that "handles" NULL is one nobody tests.
 * So every heap allocation of the project goes through these wrappers, which
 * abort() with a one-line message on failure and never return NULL.  Sizes
 * that come from untrusted input are bounded before they get here (struct
 * udfb_buf, the per-field limits): an abort is a bug or a machine out of
 * memory, never a request's doing.  Free with free(). */
#ifndef UDFB_ALLOC_H
#define UDFB_ALLOC_H

#include <stdarg.h>
#include <stddef.h>

#define UDFB_ALLOC_ATTRS __attribute__((malloc, returns_nonnull, warn_unused_result))

void *udfb_malloc(size_t n) UDFB_ALLOC_ATTRS __attribute__((alloc_size(1)));
/* Zeroed; n * size is checked for overflow. */
void *udfb_calloc(size_t n, size_t size) UDFB_ALLOC_ATTRS __attribute__((alloc_size(1, 2)));
/* n == 0 keeps a valid (1-byte) block rather than freeing p. */
void *udfb_realloc(void *p, size_t n) __attribute__((returns_nonnull, warn_unused_result, alloc_size(2)));
/* realloc() for an array of n elements; n * size is checked for overflow. */
void *udfb_reallocarray(void *p, size_t n, size_t size)
	__attribute__((returns_nonnull, warn_unused_result, alloc_size(2, 3)));
char *udfb_strdup(const char *s) UDFB_ALLOC_ATTRS;
/* At most n bytes of s, NUL-terminated. */
char *udfb_strndup(const char *s, size_t n) UDFB_ALLOC_ATTRS;
/* The formatted string, newly allocated. */
char *udfb_asprintf(const char *fmt, ...) UDFB_ALLOC_ATTRS __attribute__((format(printf, 1, 2)));
char *udfb_vasprintf(const char *fmt, va_list ap) UDFB_ALLOC_ATTRS __attribute__((format(printf, 1, 0)));

/* Report an allocation failure and abort(): for the few places that get
 * memory from a library (jansson, libcurl) and must stop the same way. */
_Noreturn void udfb_oom(void);

#endif
