/* Libraries the CLI loads on first use, not at start.
 *
 * Debian's libcurl brings 30 shared libraries (TLS, Kerberos, LDAP, RTMP,
 * SSH), libxml2 brings ICU and libstdc++, libzip the shared libcrypto;
 * mapping and relocating them was most of a short command's run
 * (udf-builder version: 26 ms with them, 4.4 ms without, on a machine where
 * a page fault costs ~40 us).  Most commands never talk HTTP, read an HTML
 * index or unpack a wheel, so cmd/lazy_curl.c, cmd/lazy_xml.c and
 * cmd/lazy_zip.c define the functions the library calls under their own
 * names and resolve the real ones with dlopen() on the first call.  Only the
 * CLI links them; udf-builder-serve and the tests link the libraries as
 * usual (docs/architecture.md, "Two executables"). */
#ifndef UDFB_CMD_LAZYLIB_H
#define UDFB_CMD_LAZYLIB_H

#include <pthread.h>

struct udfb_lazylib {
	const char *soname; /* "libcurl.so.4": the ABI we were built against */
	const char *const *names; /* the symbols to resolve, NULL-terminated */
	void **syms; /* filled in the order of names */
	pthread_once_t once;
};

/* Loads l once (any thread, any number of times) and returns its symbols.
 * A library that cannot be loaded or lacks a symbol ends the process with
 * a one-line message and exit status 1, as the dynamic loader would have
 * refused to start it. */
void *const *udfb_lazylib_syms(struct udfb_lazylib *l);

/* A library's table is an X-macro list of (return type, name, parameters,
 * arguments), one for functions returning a value, one for void ones.
 * These make, from it, the symbol's index (UDFB_LAZY_ENUM), its name
 * (UDFB_LAZY_NAME) and the forwarder that defines the function under its
 * own name; the forwarders call through the file's struct udfb_lazylib,
 * which must be named lazy_lib. */
#define UDFB_LAZY_ENUM(ret, name, params, args) UDFB_LAZY_##name,
#define UDFB_LAZY_NAME(ret, name, params, args) #name,
#define UDFB_LAZY_FN(ret, name, params) ((ret(*) params)udfb_lazylib_syms(&lazy_lib)[UDFB_LAZY_##name])
#define UDFB_LAZY_FORWARD(ret, name, params, args)           \
	ret name params                                      \
	{                                                    \
		return UDFB_LAZY_FN(ret, name, params) args; \
	}
#define UDFB_LAZY_FORWARD_VOID(ret, name, params, args) \
	ret name params                                 \
	{                                               \
		UDFB_LAZY_FN(ret, name, params) args;   \
	}

#endif
