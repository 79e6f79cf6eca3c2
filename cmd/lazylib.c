/* See lazylib.h. */
#include "cmd/lazylib.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

/* pthread_once takes no argument: the library being loaded is passed to
 * the once-function through this thread's variable. */
static _Thread_local struct udfb_lazylib *loading;

static void load(void)
{
	struct udfb_lazylib *l = loading;
	/* RTLD_NOW: a missing symbol shows here, not later on another path. */
	void *h = dlopen(l->soname, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		fprintf(stderr, "udf-builder: cannot load %s: %s\n", l->soname, dlerror());
		exit(1);
	}
	for (size_t k = 0; l->names[k]; k++) {
		l->syms[k] = dlsym(h, l->names[k]);
		if (!l->syms[k]) {
			fprintf(stderr, "udf-builder: %s has no %s\n", l->soname, l->names[k]);
			exit(1);
		}
	}
}

void *const *udfb_lazylib_syms(struct udfb_lazylib *l)
{
	loading = l;
	pthread_once(&l->once, load);
	return l->syms;
}
