/* Scope-bound cleanup (crun style): a variable declared with one of these
 * macros is released when it goes out of scope.  Hand ownership out with
 * udfb_steal().  A function uses these or one `goto out`, never both. */
#ifndef UDFB_CLEANUP_H
#define UDFB_CLEANUP_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static inline void udfb_freep(void *p)
{
	free(*(void **)p);
}

static inline void udfb_closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}

static inline void udfb_fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}

#define cleanup_free __attribute__((cleanup(udfb_freep)))
#define cleanup_close __attribute__((cleanup(udfb_closep)))
#define cleanup_fclose __attribute__((cleanup(udfb_fclosep)))

/* Take the value out of a cleanup variable so it is not released. */
#define udfb_steal(p)                   \
	({                              \
		__typeof__(p) _v = (p); \
		(p) = NULL;             \
		_v;                     \
	})

#endif
