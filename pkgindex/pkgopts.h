/* Settings of native package installs (docs/configuration.md):
 *   packages-index URL|DIR   repeatable; config "packages": {"index": [...]},
 *                            --index-url, UDFB_INDEX_URL (comma-separated)
 *   packages-glibc 2.36      manylinux level the runtime images provide
 *   packages-python 3.12     the runtime's Python when its base image does
 *                            not say (its PYTHON_VERSION) nor the spec
 *   packages-layer-budget 16 package layers per image before the smallest merge
 *   packages-max-unpacked 2147483648  bytes all wheels unpacked in one build
 *                            may write (a zip bomb's ratio has no other bound)
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
int udfb_pkg_opts_set(struct udfb_pkg_opts *o, const char *name, const char *value, struct udfb_err *err);
/* UDFB_INDEX_URL, UDFB_PACKAGES_GLIBC, UDFB_PACKAGES_PYTHON, UDFB_PACKAGES_LAYER_BUDGET,
 * UDFB_PACKAGES_MAX_UNPACKED. */
int udfb_pkg_opts_load_env(struct udfb_pkg_opts *o, struct udfb_err *err);
void udfb_pkg_opts_free(struct udfb_pkg_opts *o);
/* Forget the indexes set so far (a flag replacing the environment's list). */
void udfb_pkg_opts_clear_index(struct udfb_pkg_opts *o);

#endif
