/* Resolving the runtime base image: its manifest and config only (its
 * layers are referenced, never unpacked or re-packed). */
#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builder/build.h"
#include "common/alloc.h"
#include "image/ocilayout.h"
#include "registry-client/ref.h"
#include "registry-client/imagestore.h"
#include "registry-client/registry.h"
#include "common/version.h"

/* The name a Dockerfile's FROM uses for an image that is only an OCI layout
 * here: the layout's tag under localhost/, the name buildah and podman give
 * an image they pull from a layout (tests pull it that way). */
static char *from_name(const struct udfb_ref *r, const char *digest)
{
	if (r->kind == UDFB_REF_DOCKER)
		return udfb_asprintf("%s/%s@%s", r->host, r->repo, digest);
	return udfb_asprintf("localhost/%s@%s", r->tag ? r->tag : "udf-base", digest);
}

/* The base's manifest (a tag resolved to a digest once, an index to the
 * platform's entry) and config, read from the store its reference names;
 * its layers stay there (a registry's are never downloaded). */
static int read_base(struct udfb_base *out, const struct udfb_ref *r, const char *platform, struct udfb_err *err)
{
	if (udfb_image_store_open(&out->store, r, out->registries, err) < 0)
		return -1;
	if (r->kind == UDFB_REF_OCI)
		return udfb_image_store_read(out->store, r->digest ? r->digest : r->tag, platform, &out->image, err);
	const char *want = r->digest ? r->digest : r->tag ? r->tag : "latest";
	return udfb_image_store_read(out->store, want, platform ? platform : UDFB_DEFAULT_PLATFORM, &out->image, err);
}

int udfb_base_resolve(struct udfb_base *out, const char *ref, const char *platform, struct udfb_registries *regs,
		      struct udfb_err *err)
{
	memset(out, 0, sizeof(*out));
	struct udfb_ref r;
	if (udfb_ref_parse(&r, ref, err) < 0)
		return udfb_err_wrap(err, "--base");
	out->own_registries = !regs;
	out->registries = regs ? regs : udfb_registries_new(NULL);
	int rc = read_base(out, &r, platform, err);
	if (rc == 0)
		out->from = from_name(&r, out->image.manifest_digest);
	else
		udfb_err_wrap(err, "base image %s", ref);
	udfb_ref_free(&r);
	if (rc < 0)
		udfb_base_free(out);
	return rc;
}

void udfb_base_free(struct udfb_base *b)
{
	if (!b)
		return;
	udfb_image_free(&b->image);
	udfb_image_store_free(b->store);
	if (b->own_registries)
		udfb_registries_free(b->registries);
	free(b->from);
	memset(b, 0, sizeof(*b));
}

/* Scan the base's layers (headers only) for a file whose name ends with
 * one of names: how the service tells, at start, whether the runtime it was
 * given can serve UDFs at all. */
static int layer_has(const char *path, const char *const *names, int *found, struct udfb_err *err)
{
	struct archive *a = archive_read_new();
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_zstd(a);
	archive_read_support_format_tar(a);
	if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK) {
		udfb_err_set(err, UDFB_E_INTERNAL, "base layer %s: %s", path, archive_error_string(a));
		archive_read_free(a);
		return -1;
	}
	struct archive_entry *e;
	while (!*found && archive_read_next_header(a, &e) == ARCHIVE_OK) {
		const char *p = archive_entry_pathname(e);
		size_t pn = p ? strlen(p) : 0;
		for (int k = 0; p && names[k]; k++) {
			size_t n = strlen(names[k]);
			if (pn >= n && strcmp(p + pn - n, names[k]) == 0)
				*found = 1;
		}
	}
	archive_read_free(a);
	return 0;
}

int udfb_base_has_file(const struct udfb_base *b, const char *const *names, int *found, struct udfb_err *err)
{
	*found = 0;
	const char *dir = udfb_image_store_oci_dir(b->store);
	if (!dir)
		return udfb_err_set(err, UDFB_E_UNSUPPORTED, "base image: its layers are in a registry, not read here");
	for (size_t k = 0; k < b->image.m.n_layers; k++) {
		const char *d = b->image.m.layers[k].digest;
		char *path = udfb_oci_blob_path(dir, d);
		int rc = layer_has(path, names, found, err);
		free(path);
		if (rc < 0 || *found)
			return rc;
	}
	return 0;
}
