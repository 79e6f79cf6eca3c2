/* libmicrohttpd, loaded when first used: only `serve` starts the admin
 * endpoint, and libmicrohttpd brings GnuTLS, p11-kit, nettle, gmp and more,
 * whose dynamic linking every CLI run paid before main() (see
 * curl_lazy.c).  These definitions, with the names and prototypes of
 * <microhttpd.h>, open libmicrohttpd.so.12 on the first call and forward. */
#include <dlfcn.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define LIBMHD "libmicrohttpd.so.12"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static void *lib;

static void open_lib(void)
{
	lib = dlopen(LIBMHD, RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		fprintf(stderr, "udf-builder: cannot load %s: %s\n", LIBMHD, dlerror());
		abort();
	}
}

static void *sym(const char *name)
{
	pthread_once(&once, open_lib);
	void *p = dlsym(lib, name);
	if (!p) {
		fprintf(stderr, "udf-builder: %s lacks %s\n", LIBMHD, name);
		abort();
	}
	return p;
}

#define LOOKUP(type, name) static type volatile fn; if (!fn) fn = (type)sym(name)

struct MHD_Daemon *MHD_start_daemon(unsigned int flags, uint16_t port, MHD_AcceptPolicyCallback apc, void *apc_cls,
				    MHD_AccessHandlerCallback dh, void *dh_cls, ...)
{
	typedef struct MHD_Daemon *(*start_va)(unsigned int, uint16_t, MHD_AcceptPolicyCallback, void *,
					       MHD_AccessHandlerCallback, void *, va_list);
	LOOKUP(start_va, "MHD_start_daemon_va");
	va_list ap;
	va_start(ap, dh_cls);
	struct MHD_Daemon *d = fn(flags, port, apc, apc_cls, dh, dh_cls, ap);
	va_end(ap);
	return d;
}

void MHD_stop_daemon(struct MHD_Daemon *daemon)
{
	typedef void (*stop)(struct MHD_Daemon *);
	LOOKUP(stop, "MHD_stop_daemon");
	fn(daemon);
}

/* The info types we ask for take no further argument; one pointer is passed
 * on in case a caller gives one. */
const union MHD_DaemonInfo *MHD_get_daemon_info(struct MHD_Daemon *daemon, enum MHD_DaemonInfoType type, ...)
{
	typedef const union MHD_DaemonInfo *(*info)(struct MHD_Daemon *, enum MHD_DaemonInfoType, ...);
	LOOKUP(info, "MHD_get_daemon_info");
	return fn(daemon, type, NULL);
}

enum MHD_Result MHD_queue_response(struct MHD_Connection *c, unsigned int status, struct MHD_Response *r)
{
	typedef enum MHD_Result (*queue)(struct MHD_Connection *, unsigned int, struct MHD_Response *);
	LOOKUP(queue, "MHD_queue_response");
	return fn(c, status, r);
}

struct MHD_Response *MHD_create_response_from_buffer(size_t size, void *buffer, enum MHD_ResponseMemoryMode mode)
{
	typedef struct MHD_Response *(*create)(size_t, void *, enum MHD_ResponseMemoryMode);
	LOOKUP(create, "MHD_create_response_from_buffer");
	return fn(size, buffer, mode);
}

void MHD_destroy_response(struct MHD_Response *r)
{
	typedef void (*destroy)(struct MHD_Response *);
	LOOKUP(destroy, "MHD_destroy_response");
	fn(r);
}

enum MHD_Result MHD_add_response_header(struct MHD_Response *r, const char *header, const char *content)
{
	typedef enum MHD_Result (*add)(struct MHD_Response *, const char *, const char *);
	LOOKUP(add, "MHD_add_response_header");
	return fn(r, header, content);
}
