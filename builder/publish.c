/* Publishing to a registry, and the blobs of a docker:// base: see
 * publish.h.  A docker:// base pushed to the same registry is mounted, to
 * another registry streamed across; its layers never touch the disk unless
 * the destination is an OCI layout, which must hold every blob. */
#include "builder/publish.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "image/ocilayout.h"
#include "registry-client/imagestore.h"
#include "registry-client/registry.h"

/* A registry destination: its store's client and repository. */
struct reg_dest {
	struct udfb_registry *reg;
	const char *host, *repo;
};

static int reg_dest_of(struct reg_dest *out, const struct udfb_image_store *s)
{
	out->reg = udfb_image_store_client(s, &out->repo);
	out->host = out->reg ? udfb_registry_host(out->reg) : NULL;
	return out->reg != NULL;
}

/* Where one blob of our manifest comes from: the store, the base's
 * layout, else the base's registry (mounted or streamed from there). */
static int blob_source(struct udfb_push_blob *b, char **path, struct udfb_store *st, const struct udfb_base *base,
		       struct udfb_err *err)
{
	if (udfb_store_has_blob(st, b->digest))
		*path = udfb_store_blob_path(st, b->digest);
	else if (!(*path = udfb_image_store_blob_path(base->store, b->digest)) &&
		 !(b->from = udfb_image_store_client(base->store, &b->from_repo)))
		return udfb_err_set(err, UDFB_E_INTERNAL, "store: blob %s is missing", b->digest);
	b->path = *path;
	return 0;
}

static size_t collect(struct udfb_push_blob *out, const struct udfb_manifest *m)
{
	size_t n = 0;
	out[n++] = (struct udfb_push_blob){ m->config.digest, m->config.size };
	for (size_t k = 0; k < m->n_layers; k++)
		out[n++] = (struct udfb_push_blob){ m->layers[k].digest, m->layers[k].size };
	return n;
}

static int push(struct udfb_registry *reg, const struct reg_dest *dest, const char *tag, struct udfb_push_blob *blobs,
		size_t n, const struct udfb_image *img, long long *pushed, struct udfb_err *err)
{
	const char *mt = img->m.media_type, *digest = img->manifest_digest;
	struct udfb_push_stats s;
	if (udfb_registry_push(reg, dest->repo, tag, blobs, n, img->manifest, img->manifest_len,
			       mt ? mt : UDFB_MT_OCI_MANIFEST, digest, &s, err) < 0)
		return -1;
	udfb_info("pushed %s/%s:%s@%s: %s; blobs present %d, mounted %d, uploaded %d, streamed %d, %lld bytes sent",
		  dest->host, dest->repo, tag, digest, s.up_to_date ? "tag already current" : "manifest put", s.present,
		  s.mounted, s.uploaded, s.streamed, s.bytes_sent);
	*pushed = s.bytes_sent;
	return 0;
}

/* ---- what the store knows it pushed ----
 *
 * A repeat push of an image whose blobs are all in the repository spent
 * most of its time asking for each (a HEAD per blob).  The store keeps,
 * per registry repository, the blobs it has pushed there or found there
 * (DIR/pushed/<sha256 of "host/repo">, one digest a line, appended); those
 * are not asked for again.  A registry that lost one (deleted by its
 * operator) refuses the manifest: the record is then dropped and the push
 * done again with every HEAD. */

#define PUSHED_MAX (16u << 20)

static char *pushed_path(const struct udfb_store *st, const struct reg_dest *dest)
{
	char name[UDFB_DIGEST_LEN + 1];
	cleanup_free char *where = udfb_asprintf("%s/%s", dest->host, dest->repo);
	udfb_sha256_digest(where, strlen(where), name);
	return udfb_asprintf("%s/pushed/%s", st->root, udfb_digest_hex(name));
}

/* Marks the blobs the record names; returns how many. */
static size_t mark_known(struct udfb_push_blob *blobs, size_t n, const char *path)
{
	cleanup_free char *text = NULL;
	size_t len = 0, marked = 0;
	struct udfb_err err = UDFB_ERR_INIT;
	if (!udfb_exists(path) || udfb_read_file(&text, &len, path, PUSHED_MAX, &err) < 0) {
		udfb_err_clear(&err);
		return 0;
	}
	for (size_t k = 0; k < n; k++) {
		size_t dl = strlen(blobs[k].digest);
		for (const char *p = text; p && (p = memmem(p, len - (size_t)(p - text), blobs[k].digest, dl)); p += dl)
			if ((p == text || p[-1] == '\n') && (size_t)(p - text) + dl < len && p[dl] == '\n') {
				blobs[k].known = 1;
				marked++;
				break;
			}
	}
	return marked;
}

/* Appends the blobs not yet recorded: a lost or torn line costs a HEAD. */
static void note_pushed(const struct udfb_push_blob *blobs, size_t n, const char *path)
{
	struct udfb_buf b;
	udfb_buf_init(&b, 1u << 20);
	for (size_t k = 0; k < n; k++)
		if (!blobs[k].known)
			udfb_buf_printf(&b, "%s\n", blobs[k].digest);
	cleanup_free char *dir = udfb_strdup(path);
	*strrchr(dir, '/') = '\0';
	struct udfb_err err = UDFB_ERR_INIT;
	int fd = b.len && udfb_mkdir_p(dir, 0755, &err) == 0
			 ? open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)
			 : -1;
	if (fd >= 0) {
		if (write(fd, b.data, b.len) != (ssize_t)b.len)
			udfb_debug("%s: not recorded", path);
		close(fd);
	}
	udfb_err_clear(&err);
	udfb_buf_free(&b);
}

static int publish_docker(const struct reg_dest *dest, const char *tag, struct udfb_store *st,
			  const struct udfb_base *base, const struct udfb_image *img, long long *pushed_bytes,
			  struct udfb_err *err)
{
	struct udfb_registry *reg = dest->reg;
	size_t max = img->m.n_layers + 1;
	struct udfb_push_blob *blobs = udfb_calloc(max, sizeof(*blobs));
	char **paths = udfb_calloc(max, sizeof(*paths));
	size_t n = collect(blobs, &img->m); /* digests checked by the parse */
	int rc = 0;
	for (size_t k = 0; rc == 0 && k < n; k++)
		rc = blob_source(&blobs[k], &paths[k], st, base, err);
	cleanup_free char *record = pushed_path(st, dest);
	size_t known = rc == 0 ? mark_known(blobs, n, record) : 0;
	if (rc == 0)
		rc = push(reg, dest, tag, blobs, n, img, pushed_bytes, err);
	if (rc < 0 && known) {
		/* The registry may have lost a blob we remembered: ask for each. */
		udfb_info("push to %s/%s failed with %zu blobs taken as present (%s): pushing again, asking for each",
			  dest->host, dest->repo, known, err->msg);
		udfb_err_clear(err);
		unlink(record);
		for (size_t k = 0; k < n; k++)
			blobs[k].known = 0;
		rc = push(reg, dest, tag, blobs, n, img, pushed_bytes, err);
	}
	if (rc == 0)
		note_pushed(blobs, n, record);
	for (size_t k = 0; k < max; k++)
		free(paths[k]);
	free(paths);
	free(blobs);
	return rc;
}

/* Into an OCI layout (or any store that is not a registry): every blob
 * from the store, else from the base's store (a registry base's layers are
 * fetched: a layout holds every blob), the manifest last, then its tag. */
static int publish_blobs(struct udfb_image_store *dest, const char *tag, struct udfb_store *st,
			 const struct udfb_base *base, const struct udfb_image *img, struct udfb_err *err)
{
	for (size_t k = 0; k <= img->m.n_layers; k++) {
		const struct udfb_descriptor *d = k < img->m.n_layers ? &img->m.layers[k] : &img->m.config;
		cleanup_free char *src =
			udfb_store_has_blob(st, d->digest) ? udfb_store_blob_path(st, d->digest) : NULL;
		if (dest->ops->put_blob(dest, d->digest, d->size, src, src ? NULL : base->store, err) < 0)
			return udfb_err_wrap(err, "%s %s", k < img->m.n_layers ? "layer" : "config", d->digest);
	}
	cleanup_free char *msrc = udfb_store_blob_path(st, img->manifest_digest);
	if (dest->ops->put_blob(dest, img->manifest_digest, (long long)img->manifest_len, msrc, NULL, err) < 0)
		return -1;
	return dest->ops->tag(dest, tag, img->manifest, img->manifest_len, UDFB_MT_OCI_MANIFEST, img->manifest_digest,
			      err);
}

int udfb_publish(struct udfb_image_store *dest, const char *tag, struct udfb_store *st, const struct udfb_base *base,
		 const struct udfb_image *img, long long *pushed_bytes, struct udfb_err *err)
{
	struct reg_dest rd;
	if (reg_dest_of(&rd, dest))
		return publish_docker(&rd, tag, st, base, img, pushed_bytes, err);
	return publish_blobs(dest, tag, st, base, img, err);
}

int udfb_publish_note_remote(struct udfb_store *st, const struct udfb_base *base, struct udfb_err *err)
{
	const char *source = base->store->name; /* docker://HOST/REPO */
	for (size_t k = 0; k < base->image.m.n_layers; k++)
		if (udfb_store_put_remote(st, base->image.m.layers[k].digest, source, err) < 0)
			return -1;
	return 0;
}

/* ---- the registry as the shared cache ---- */

static int adopt_manifest(struct udfb_store *st, struct udfb_registry *reg, const struct reg_dest *dest,
			  const char *mtext, size_t mlen, const char *digest, const char *source, struct udfb_err *err)
{
	char put[UDFB_DIGEST_LEN + 1];
	struct udfb_manifest m;
	if (udfb_manifest_parse(&m, mtext, mlen, digest, err) < 0)
		return udfb_err_wrap(err, "%s", source);
	const char *cfg = m.config.digest;
	int rc = 0;
	if (!udfb_store_has_blob(st, cfg)) {
		char *ctext = NULL;
		size_t clen = 0;
		rc = udfb_registry_blob_get(reg, dest->repo, cfg, UDFB_CONFIG_MAX_BYTES, &ctext, &clen, err);
		if (rc == 0)
			rc = udfb_store_put_bytes(st, ctext, clen, put, err);
		free(ctext);
	}
	for (size_t k = 0; rc == 0 && k < m.n_layers; k++)
		if (!udfb_store_has_blob(st, m.layers[k].digest))
			rc = udfb_store_put_remote(st, m.layers[k].digest, source, err);
	/* The manifest last: whatever names a blob finds it accounted for. */
	if (rc == 0)
		rc = udfb_store_put_bytes(st, mtext, mlen, put, err);
	udfb_manifest_clear(&m);
	return rc;
}

int udfb_publish_lookup(char manifest[UDFB_DIGEST_LEN + 1], struct udfb_image_store *dest_store, const char *tag,
			struct udfb_store *st, struct udfb_err *err)
{
	struct reg_dest rd, *dest = &rd;
	if (!reg_dest_of(&rd, dest_store))
		return 0;
	char digest[UDFB_DIGEST_LEN + 1];
	int found = dest_store->ops->lookup(dest_store, tag, digest, err);
	if (found <= 0)
		return found;
	char *mtext = NULL, *mt = NULL;
	size_t mlen = 0;
	const char *source = dest_store->name; /* docker://HOST/REPO */
	int rc = udfb_registry_manifest_get(rd.reg, dest->repo, digest, &mtext, &mlen, &mt, digest, err);
	if (rc == 0 && (!mt || strcmp(mt, UDFB_MT_OCI_MANIFEST) != 0))
		rc = udfb_err_set(err, UDFB_E_INVALID, "%s:%s: not an image this builder made", source, tag);
	if (rc == 0)
		rc = adopt_manifest(st, rd.reg, dest, mtext, mlen, digest, source, err);
	if (rc == 0)
		memcpy(manifest, digest, UDFB_DIGEST_LEN + 1);
	free(mtext), free(mt);
	return rc < 0 ? -1 : 1;
}
