/* A client of the OCI distribution API (docs/registry.md): manifests and
 * blobs of one registry host, with auth (auth.h), retries (retry.h) and the
 * TLS rules of the settings.  One client is safe to share between threads;
 * it keeps its connections and tokens for its lifetime. */
#ifndef UDFB_REGISTRY_H
#define UDFB_REGISTRY_H

#include <stddef.h>

#include "registry-client/auth.h"
#include "common/err.h"
#include "common/hash.h"
#include "image/image.h"

#define UDFB_REGISTRY_ACCEPT                                                                    \
	"application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, " \
	"application/vnd.docker.distribution.manifest.v2+json, "                                \
	"application/vnd.docker.distribution.manifest.list.v2+json"

struct udfb_registry;

struct udfb_registry_opts {
	const char *ca_bundle; /* PEM file of CAs to trust instead of the system's */
	const char *insecure; /* "host[:port],..." allowed plain http and unverified TLS */
	int retries; /* retries of a step after its first try; < 0: default */
	const struct udfb_cred_source *creds; /* NULL: docker's config.json */
};

/* UDFB_REGISTRY_CA_BUNDLE, UDFB_REGISTRY_INSECURE, UDFB_REGISTRY_RETRIES;
 * the strings point into the environment. */
void udfb_registry_opts_from_env(struct udfb_registry_opts *o);

int udfb_registry_open(struct udfb_registry **out, const char *host, const struct udfb_registry_opts *o,
		       struct udfb_err *err);
void udfb_registry_free(struct udfb_registry *r);
/* A caller's clients, one per registry host, made on first use with the
 * settings given (NULL: the environment's; their strings and credential
 * source must outlive the set) and kept, with their connections and
 * tokens, until the set is freed.  No process-wide list: whoever builds
 * holds one (a resolved base its own, or the one it was given) and passes
 * it down, so a base and a destination on one registry share a client
 * (and blobs are mounted across its repositories).  Thread-safe. */
struct udfb_registries;
struct udfb_registries *udfb_registries_new(const struct udfb_registry_opts *o);
/* The client for host, made now or kept from before; not freed by the caller. */
int udfb_registries_get(struct udfb_registries *set, const char *host, struct udfb_registry **out,
			struct udfb_err *err);
void udfb_registries_free(struct udfb_registries *set);
const char *udfb_registry_host(const struct udfb_registry *r);

/* Manifests.  ref is a tag or a digest. */
/* 1 and its digest when ref exists, 0 when it does not. */
int udfb_registry_manifest_head(struct udfb_registry *r, const char *repo, const char *ref,
				char digest[UDFB_DIGEST_LEN + 1], struct udfb_err *err);
/* The exact bytes (bounded, checked against the digest asked for or the one
 * the registry names), their media type and digest. */
int udfb_registry_manifest_get(struct udfb_registry *r, const char *repo, const char *ref, char **out, size_t *len,
			       char **media_type, char digest[UDFB_DIGEST_LEN + 1], struct udfb_err *err);
/* PUT with Content-Type media_type; the registry's Docker-Content-Digest
 * must equal digest. */
int udfb_registry_manifest_put(struct udfb_registry *r, const char *repo, const char *ref, const char *data, size_t len,
			       const char *media_type, const char *digest, struct udfb_err *err);
/* Manifest and config of ref; an index resolves to platform ("os/arch"). */
int udfb_registry_read_image(struct udfb_image *out, struct udfb_registry *r, const char *repo, const char *ref,
			     const char *platform, struct udfb_err *err);

/* Blobs. */
/* 1 when repo has the blob, 0 when not. */
int udfb_registry_blob_exists(struct udfb_registry *r, const char *repo, const char *digest, struct udfb_err *err);
/* A small blob into memory (at most max bytes), digest checked. */
int udfb_registry_blob_get(struct udfb_registry *r, const char *repo, const char *digest, size_t max, char **out,
			   size_t *len, struct udfb_err *err);
/* A blob into the file path (created or truncated), digest checked. */
int udfb_registry_blob_fetch(struct udfb_registry *r, const char *repo, const char *digest, const char *path,
			     struct udfb_err *err);

/* Pushing one image: every blob (HEAD, then a cross-repository mount when
 * it lives in another repository of this registry, then an upload from its
 * file or streamed from its registry), up to 4 at once, then the manifest. */
struct udfb_push_blob {
	const char *digest;
	long long size;
	const char *path; /* a local file holding it, or NULL */
	struct udfb_registry *from; /* else the registry and repository to */
	const char *from_repo; /* read it from (mounted when from == r) */
	int known; /* the caller knows the repository has it: no HEAD */
};

struct udfb_push_stats {
	int present, mounted, uploaded, streamed;
	long long bytes_sent;
	int up_to_date; /* the tag already named this manifest: nothing sent */
};

int udfb_registry_push(struct udfb_registry *r, const char *repo, const char *tag, const struct udfb_push_blob *blobs,
		       size_t n, const char *manifest, size_t manifest_len, const char *media_type,
		       const char *manifest_digest, struct udfb_push_stats *stats, struct udfb_err *err);

#endif
