/* Settings of native package installs: indexes (URLs or directories), the
 * glibc and Python the runtime images provide, the layer budget and the
 * bytes wheels may unpack to.  Their flags, file keys and UDFB_* variables
 * are the rows of config/config.c's "packages" table (docs/configuration.md).
 * The index hosts are opened in a guard of their own: an operator naming an
 * index on a private network opens that host to package downloads only,
 * never to imports. */
#ifndef UDFB_PKGOPTS_H
#define UDFB_PKGOPTS_H

#include <stddef.h>

#include "common/err.h"

struct udfb_netguard;

#define UDFB_PKG_DEFAULT_GLIBC_MAJOR 2
#define UDFB_PKG_DEFAULT_GLIBC_MINOR 36 /* Debian 12, the base images' distribution */
#define UDFB_PKG_DEFAULT_PYTHON "3.12"
#define UDFB_PKG_DEFAULT_MAX_UNPACKED (2ll << 30)
/* Two minutes: a large legitimate set (torch) unpacks in well under one. */
#define UDFB_PKG_DEFAULT_MAX_UNPACK_MS 120000ll

struct udfb_pkg_opts {
	char **index; /* URLs or directories, in order */
	size_t n_index;
	int glibc_major, glibc_minor;
	char *python; /* "3.12" */
	int layer_budget; /* >= 1 */
	long long max_unpacked; /* bytes unpacked from wheels per build, >= 1 */
	long long max_unpack_ms; /* time spent unpacking wheels per build, >= 1 */
	int refresh; /* resolve again, ignoring a stored lock (--refresh-packages) */
	struct udfb_netguard *guard; /* owned */
};

void udfb_pkg_opts_defaults(struct udfb_pkg_opts *o);
/* The values that are more than a number (config/config.c holds the rows
 * naming them): an index URL or directory, a glibc version like 2.36, a
 * Python version like 3.12. */
int udfb_pkg_opts_add_index(struct udfb_pkg_opts *o, const char *v, struct udfb_err *err);
int udfb_pkg_opts_set_glibc(struct udfb_pkg_opts *o, const char *v, struct udfb_err *err);
int udfb_pkg_opts_set_python(struct udfb_pkg_opts *o, const char *v, struct udfb_err *err);
void udfb_pkg_opts_free(struct udfb_pkg_opts *o);
/* Forget the indexes set so far (a flag replacing the environment's list). */
void udfb_pkg_opts_clear_index(struct udfb_pkg_opts *o);

#endif
