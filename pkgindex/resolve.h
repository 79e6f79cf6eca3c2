/* The package resolver: from a UDF's requirements to a lock, one wheel per
 * project.  Backtracking, newest compatible version first, following
 * Requires-Dist with extras and markers evaluated for the target runtime.
 * Candidates are wheels only (compatible tags, requires-python, not yanked
 * unless pinned with ==); a clash reports the chain of requirements that
 * led to it.  docs/packages.md. */
#ifndef UDFB_RESOLVE_H
#define UDFB_RESOLVE_H

#include <jansson.h>
#include <stddef.h>

#include "common/err.h"
#include "python/marker.h"
#include "python/pyver.h"
#include "python/wheel.h"

#define UDFB_LOCK_FORMAT "udf-builder-lock/1"
#define UDFB_RESOLVE_MAX_PACKAGES 256
#define UDFB_RESOLVE_MAX_STEPS 20000 /* candidates tried before giving up */

struct udfb_lock_pkg {
	char *name; /* PEP 503 normalised */
	char *version; /* PEP 440 normalised */
	char *filename; /* the wheel */
	char sha256[65];
	long long size; /* -1 when the index did not say */
};

/* Sorted by name. */
struct udfb_lock {
	struct udfb_lock_pkg *pkgs;
	size_t n;
};

struct udfb_pkgindex;

struct udfb_resolve_opts {
	const struct udfb_pyenv *env;
	const struct udfb_pytags *tags;
	struct udfb_pkgindex *index;
	long long deadline_ms;
};

/* reqs: canonical PEP 508 requirements (a request's merged list). */
int udfb_resolve(struct udfb_lock *out, char *const *reqs, size_t n, const struct udfb_resolve_opts *o,
		 struct udfb_err *err);
void udfb_lock_free(struct udfb_lock *l);

/* The lock as JSON (sorted keys: the same lock, the same bytes), and back.
 * target names the runtime it was resolved for ({"python", "glibc",
 * "platform"}); from_json checks the format and every field. */
char *udfb_lock_to_json(const struct udfb_lock *l, json_t *target, size_t *len);
int udfb_lock_from_json(struct udfb_lock *out, const char *text, size_t len, struct udfb_err *err);

#endif
