/* The registry backend of the image store (image/store.h): one repository
 * of a registry, over a client its caller holds (a struct
 * udfb_registries), and the one place a reference becomes a store. */
#include "registry-client/imagestore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/cleanup.h"
#include "registry-client/registry_internal.h"

struct reg_store {
	struct udfb_image_store pub;
	struct udfb_registry *r; /* not owned */
	char *repo;
};

static struct reg_store *reg_of(struct udfb_image_store *s)
{
	return (struct reg_store *)s;
}

static int reg_read_image(struct udfb_image_store *s, const char *ref, const char *platform, struct udfb_image *out,
			  struct udfb_err *err)
{
	struct reg_store *g = reg_of(s);
	return udfb_registry_read_image(out, g->r, g->repo, ref ? ref : "latest", platform, err);
}

static int reg_lookup(struct udfb_image_store *s, const char *tag, char digest[UDFB_DIGEST_LEN + 1],
		      struct udfb_err *err)
{
	return udfb_registry_manifest_head(reg_of(s)->r, reg_of(s)->repo, tag, digest, err);
}

static int reg_has_blob(struct udfb_image_store *s, const char *digest, struct udfb_err *err)
{
	return udfb_registry_blob_exists(reg_of(s)->r, reg_of(s)->repo, digest, err);
}

static int reg_get_blob(struct udfb_image_store *s, const char *digest, size_t max, char **out, size_t *len,
			struct udfb_err *err)
{
	return udfb_registry_blob_get(reg_of(s)->r, reg_of(s)->repo, digest, max, out, len, err);
}

static int reg_fetch_blob(struct udfb_image_store *s, const char *digest, const char *path, struct udfb_err *err)
{
	return udfb_registry_blob_fetch(reg_of(s)->r, reg_of(s)->repo, digest, path, err);
}

/* One blob: present, mounted from a repository of the same client,
 * uploaded from its file or streamed from its store. */
static int reg_put_blob(struct udfb_image_store *s, const char *digest, long long size, const char *path,
			struct udfb_image_store *from, struct udfb_err *err)
{
	struct reg_store *g = reg_of(s);
	cleanup_free char *local = !path && from && from->ops != s->ops ? from->ops->blob_path(from, digest) : NULL;
	struct udfb_push_blob b = { .digest = digest, .size = size, .path = path ? path : local };
	if (!b.path && from && from->ops == s->ops) {
		b.from = reg_of(from)->r;
		b.from_repo = reg_of(from)->repo;
	} else if (!b.path) {
		return udfb_err_set(err, UDFB_E_NOTFOUND, "%s: blob %s: no file or registry to copy it from", s->name,
				    digest);
	}
	cleanup_free char *scope =
		udfb_asprintf("repository:%s:pull,push%s%s%s", g->repo, b.from_repo ? " repository:" : "",
			      b.from_repo ? b.from_repo : "", b.from_repo ? ":pull" : "");
	int have = reg_blob_exists(g->r, g->repo, digest, scope, err);
	if (have != 0)
		return have < 0 ? -1 : 0;
	cleanup_free char *location = NULL;
	if (b.from == g->r && strcmp(b.from_repo, g->repo) != 0) {
		int m = reg_blob_mount(g->r, g->repo, &b, scope, &location, err);
		if (m != 0)
			return m < 0 ? -1 : 0;
	}
	long long sent = 0;
	return reg_blob_upload(g->r, g->repo, &b, scope, location, &sent, err);
}

static int reg_tag(struct udfb_image_store *s, const char *tag, const char *manifest, size_t len,
		   const char *media_type, const char *digest, struct udfb_err *err)
{
	return udfb_registry_manifest_put(reg_of(s)->r, reg_of(s)->repo, tag, manifest, len, media_type, digest, err);
}

static char *reg_blob_path(struct udfb_image_store *s, const char *digest)
{
	(void)s, (void)digest;
	return NULL; /* never on this machine */
}

static void reg_free(struct udfb_image_store *s)
{
	free(reg_of(s)->repo);
	free(s->name);
	free(s);
}

static const struct udfb_image_store_ops reg_ops = {
	.kind = "registry",
	.read_image = reg_read_image,
	.lookup = reg_lookup,
	.has_blob = reg_has_blob,
	.get_blob = reg_get_blob,
	.fetch_blob = reg_fetch_blob,
	.put_blob = reg_put_blob,
	.tag = reg_tag,
	.blob_path = reg_blob_path,
	.free = reg_free,
};

struct udfb_image_store *udfb_image_store_registry(struct udfb_registry *r, const char *repo)
{
	struct reg_store *s = udfb_calloc(1, sizeof(*s));
	s->repo = udfb_strdup(repo);
	s->pub.name = udfb_asprintf("docker://%s/%s", r->host, repo);
	s->r = r;
	s->pub.ops = &reg_ops;
	return &s->pub;
}

struct udfb_registry *udfb_image_store_client(const struct udfb_image_store *s, const char **repo)
{
	if (!s || s->ops != &reg_ops)
		return NULL;
	const struct reg_store *g = (const struct reg_store *)s;
	if (repo)
		*repo = g->repo;
	return g->r;
}

int udfb_image_store_open(struct udfb_image_store **out, const struct udfb_ref *ref, struct udfb_registries *regs,
			  struct udfb_err *err)
{
	if (ref->kind == UDFB_REF_OCI) {
		*out = udfb_image_store_oci(ref->dir);
		return 0;
	}
	struct udfb_registry *r;
	if (udfb_registries_get(regs, ref->host, &r, err) < 0)
		return -1;
	*out = udfb_image_store_registry(r, ref->repo);
	return 0;
}
