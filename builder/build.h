/* One build: request -> key -> store lookup -> layers, config, manifest ->
 * store -> destination.  The front ends (CLI, service, batch) call this. */
#ifndef UDFB_BUILD_H
#define UDFB_BUILD_H

#include <jansson.h>

#include "common/err.h"
#include "common/hash.h"
#include "image/image.h"
#include "builder/request.h"

struct udfb_base;
struct udfb_fetch_opts;
struct udfb_image_store;
struct udfb_registries;
struct udfb_pkg_opts;

struct udfb_build_opts {
	const char *store_dir;
	const char *base; /* image reference of the runtime base image */
	const char *dest; /* image reference to publish to */
	const char *salt; /* "" for none */
	const char *platform; /* "linux/amd64" */
	/* Already resolved (the service resolves its bases once); base is then
	 * only used in messages. */
	const struct udfb_base *base_resolved;
	const struct udfb_fetch_opts *fetch; /* import limits and guard */
	/* The tenant the image is for (the service's x-databend-tenant); NULL:
	 * the request's "tenant", else none.  It is part of the key and of the
	 * import cache's entries: two tenants never share an entry. */
	const char *tenant;
	long long deadline_ms; /* for fetching imports; 0: none */
	/* Package indexes and target settings; NULL: the defaults. */
	const struct udfb_pkg_opts *packages;
	/* The registry clients for the destination (and a base resolved here);
	 * NULL: the base's own. */
	struct udfb_registries *registries;
};

struct udfb_build_result {
	char key[UDFB_DIGEST_LEN + 1];
	char manifest_digest[UDFB_DIGEST_LEN + 1];
	char *image; /* "<dest>:<tag>@sha256:..." */
	json_t *layers; /* [{mediaType, digest, size, diff_id}] in manifest order */
	int cached;
	long long fetched_bytes, pushed_bytes; /* for the service's metrics */
	long package_installs; /* wheels unpacked by this build */
};

/* A resolved base image and the store its blobs are in. */
struct udfb_base {
	struct udfb_image image;
	struct udfb_image_store *store; /* its OCI layout or registry repository */
	struct udfb_registries *registries; /* the clients it was read with */
	int own_registries; /* made for it (none given): freed with it */
	char *from; /* the name a Dockerfile pulls it by, pinned by digest */
};

/* regs: the caller's registry clients; NULL: the base makes its own, which
 * builds on it then share (udfb_build_opts.registries). */
int udfb_base_resolve(struct udfb_base *out, const char *ref, const char *platform, struct udfb_registries *regs,
		      struct udfb_err *err);
void udfb_base_free(struct udfb_base *b);
/* *found = 1 when a file of the base's layers ends with one of names (a
 * NULL-terminated list, e.g. "/databend_udf/__init__.py"). */
int udfb_base_has_file(const struct udfb_base *b, const char *const *names, int *found, struct udfb_err *err);

const char *udfb_build_tenant(const struct udfb_request *req, const struct udfb_build_opts *o);
int udfb_build_key(char key[UDFB_DIGEST_LEN + 1], const struct udfb_request *req, const char *base_digest,
		   const struct udfb_build_opts *o, struct udfb_err *err);
/* A request from a Databend script (req->untagged): identify its imports by
 * their objects (script_imports.h: a first-byte GET each, downloads only of
 * what the store lacks) and tag each with its content digest, so the key
 * can be computed.  Nothing to do for other requests or when done. */
int udfb_request_identify(struct udfb_request *req, const struct udfb_build_opts *o, struct udfb_err *err);
int udfb_build(struct udfb_build_result *out, const struct udfb_request *req, const struct udfb_build_opts *o,
	       struct udfb_err *err);
/* Warm the caches for a set of packages: resolve them for the runtime's
 * base, make their layers and publish an image of the base, the package
 * layers and the lock (tagged by its own key), so the first UDF needing
 * them finds every layer built and pushed. */
int udfb_build_warm(struct udfb_build_result *out, char *const *reqs, size_t n, const char *runtime,
		    const struct udfb_build_opts *o, struct udfb_err *err);
void udfb_build_result_free(struct udfb_build_result *r);

/* Put the layer w describes into the store, compressing it only when no
 * blob of the store has its diff_id yet; frees w. */
struct udfb_layer;
struct udfb_layer_writer;
struct udfb_store;
int udfb_build_store_layer(struct udfb_layer *out, struct udfb_layer_writer *w, struct udfb_store *st, const char *tmp,
			   struct udfb_err *err);
/* The base and the one layer w describes (freed), with cmd run in workdir:
 * stored under key and published to o->dest, without a lookup first (a
 * Databend script run as-is, builder/run.h). */
int udfb_build_one_layer(struct udfb_build_result *out, const char *key, struct udfb_layer_writer *w,
			 const char *created_by, const char *const *cmd, const char *workdir,
			 const struct udfb_build_opts *o, struct udfb_err *err);

#endif
