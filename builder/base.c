/* Resolving the runtime base image: its manifest and config only (its
 * layers are referenced, never unpacked or re-packed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build.h"
#include "ocilayout.h"
#include "ref.h"

/* The name a Dockerfile's FROM uses for an image that is only an OCI layout
 * here: the layout's tag under localhost/, the name buildah and podman give
 * an image they pull from a layout (tests pull it that way). */
static char *from_name(const struct udfb_ref *r, const char *digest)
{
	char *s = NULL;
	int n = r->kind == UDFB_REF_DOCKER ? asprintf(&s, "%s/%s@%s", r->host, r->repo, digest)
					   : asprintf(&s, "localhost/%s@%s", r->tag ? r->tag : "udf-base", digest);
	if (n < 0)
		abort();
	return s;
}

int udfb_base_resolve(struct udfb_base *out, const char *ref, const char *platform, struct udfb_err *err)
{
	memset(out, 0, sizeof(*out));
	struct udfb_ref r;
	if (udfb_ref_parse(&r, ref, err) < 0)
		return udfb_err_wrap(err, "--base");
	int rc = 0;
	if (r.kind == UDFB_REF_OCI) {
		rc = udfb_oci_read_image(&out->image, r.dir, r.tag, platform, err);
		if (rc == 0) {
			out->blob_dir = strdup(r.dir);
			out->from = from_name(&r, out->image.manifest_digest);
		} else {
			udfb_err_wrap(err, "base image %s", ref);
		}
	} else {
		rc = udfb_err_set(err, UDFB_E_UNSUPPORTED, "base image %s: registry references need the registry client (not in this build); use oci:DIR[:TAG]", ref);
	}
	udfb_ref_free(&r);
	return rc;
}

void udfb_base_free(struct udfb_base *b)
{
	if (!b)
		return;
	udfb_image_free(&b->image);
	free(b->blob_dir);
	free(b->from);
	memset(b, 0, sizeof(*b));
}
