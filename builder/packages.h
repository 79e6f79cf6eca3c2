/* A UDF's Python packages in its image: the lock (stored with the cache
 * entry: resolved once per key, reused until refreshed) and one layer per
 * wheel, keyed by (wheel sha256, install scheme, layer format) so every
 * image using a wheel shares its blob; over the layer budget the smallest
 * wheels share one layer.  docs/packages.md. */
#ifndef UDFB_PACKAGES_H
#define UDFB_PACKAGES_H

#include <stddef.h>

#include "common/err.h"
#include "image/layer.h"
#include "pkgindex/resolve.h"

/* Where packages go in the image (on the stub's sys.path) and what their
 * scripts run with. */
#define UDFB_PACKAGES_DIR "app/packages"
#define UDFB_PACKAGES_PYTHON "/usr/bin/env python3"
#define UDFB_WHEEL_MAX_DOWNLOAD (2ll << 30) /* one wheel file */

struct udfb_fetch_opts;
struct udfb_pkg_opts;
struct udfb_store;

struct udfb_packages_in {
	char *const *reqs; /* canonical requirements */
	size_t n_reqs;
	const struct udfb_pkg_opts *opts;
	const struct udfb_fetch_opts *fetch;
	const char *python; /* the target's full version, "3.12.2" */
	const char *platform; /* "linux/amd64" */
	const char *key; /* the cache key the lock is kept under; NULL: none */
	struct udfb_store *st;
	const char *tmp; /* a private directory in the store's file system */
	long long deadline_ms;
};

struct udfb_packages {
	struct udfb_lock lock;
	char *lock_json; /* the bytes of /app/udf.lock */
	size_t lock_len;
	struct udfb_layer *layers; /* in the store; image order */
	char **created_by;
	size_t n_layers;
	int resolved; /* 0: the lock was a stored one */
	char reqs_key[UDFB_DIGEST_LEN + 1]; /* the requirement set's lock key */
	long installs; /* wheels unpacked now (0 when every layer was cached) */
};

int udfb_packages_prepare(struct udfb_packages *out, const struct udfb_packages_in *in, struct udfb_err *err);
/* Keep the lock as the key's, once the image is in the store. */
int udfb_packages_keep_lock(const struct udfb_packages *p, struct udfb_store *st, const char *key,
			    struct udfb_err *err);
void udfb_packages_free(struct udfb_packages *p);

/* The target Python: the base image's PYTHON_VERSION, else the spec's
 * runtime_version, else the packages-python setting.  malloc'd. */
struct udfb_image;
char *udfb_packages_python(const struct udfb_image *base, const char *runtime_version, const char *fallback);

#endif
