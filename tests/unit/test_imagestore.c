/* The image store's OCI-layout backend and the typed manifest: blobs put
 * from files and from another store, a tag looked up, an image read by
 * tag and by digest into its parsed manifest, bad manifests refused with
 * the field named. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "common/fsutil.h"
#include "common/hash.h"
#include "image/manifest.h"
#include "image/store.h"
#include "registry-client/imagestore.h"

static char *write_tmp(const char *dir, const char *name, const char *text, char digest[UDFB_DIGEST_LEN + 1])
{
	char *p = NULL;
	if (asprintf(&p, "%s/%s", dir, name) < 0)
		abort();
	struct udfb_err err = UDFB_ERR_INIT;
	if (udfb_write_file_atomic(p, text, strlen(text), &err) < 0)
		abort();
	udfb_sha256_digest(text, strlen(text), digest);
	return p;
}

static void test_parse(void)
{
	const char *h = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	char *text = NULL;
	if (asprintf(&text,
		     "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
		     "\"config\":{\"mediaType\":\"c\",\"digest\":\"%s\",\"size\":5},"
		     "\"layers\":[{\"mediaType\":\"l\",\"digest\":\"%s\",\"size\":7,\"annotations\":{\"k\":\"v\"}}]}",
		     h, h) < 0)
		abort();
	struct udfb_manifest m;
	struct udfb_err err = UDFB_ERR_INIT;
	CHECK(udfb_manifest_parse(&m, text, strlen(text), "t", &err) == 0, "a manifest parses");
	CHECK(m.n_layers == 1 && m.layers[0].size == 7 && strcmp(m.layers[0].media_type, "l") == 0, "its layer");
	CHECK_STR(json_string_value(json_object_get(m.layers[0].annotations, "k")), "v", "its layer's annotations");
	CHECK(m.config.size == 5 && strcmp(m.config.digest, h) == 0, "its config descriptor");
	CHECK_STR(m.media_type, "application/vnd.oci.image.manifest.v1+json", "its media type");
	udfb_manifest_clear(&m);
	free(text);

	const char *bad[][2] = {
		{ "{\"config\":{\"mediaType\":\"c\",\"digest\":\"sha256:00\",\"size\":5},\"layers\":[]}",
		  "config.digest" },
		{ "{\"config\":{\"mediaType\":\"c\",\"digest\":\"sha256:"
		  "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\",\"size\":-5},\"layers\":[]}",
		  "config.size" },
		{ "{\"config\":{\"mediaType\":\"c\",\"digest\":\"sha256:"
		  "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\",\"size\":5}}",
		  "layers" },
		{ "{\"config\":{\"mediaType\":\"c\",\"digest\":\"sha256:"
		  "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\",\"size\":5},\"layers\":[{"
		  "\"size\":1}]}",
		  "layers[0].digest" },
		{ "[]", "not a JSON object" },
	};
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		int rc = udfb_manifest_parse(&m, bad[k][0], strlen(bad[k][0]), "t", &err);
		CHECK(rc < 0 && err.cat == UDFB_E_INVALID && strstr(err.msg, bad[k][1]),
		      "bad manifest %zu refused naming %s (%s)", k, bad[k][1], err.msg ? err.msg : "");
		udfb_err_clear(&err);
	}
}

static void test_oci(const char *root)
{
	struct udfb_err err = UDFB_ERR_INIT;
	char cfgd[UDFB_DIGEST_LEN + 1], layerd[UDFB_DIGEST_LEN + 1], md[UDFB_DIGEST_LEN + 1], got[UDFB_DIGEST_LEN + 1];
	char *cfg = write_tmp(root, "config", "{\"os\":\"linux\",\"architecture\":\"amd64\",\"rootfs\":{}}", cfgd);
	char *layer = write_tmp(root, "layer", "not really a tar", layerd);
	char *mtext = NULL;
	if (asprintf(&mtext,
		     "{\"schemaVersion\":2,\"mediaType\":\"application/"
		     "vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":"
		     "\"application/"
		     "vnd.oci.image.config.v1+json\",\"digest\":\"%s\",\"size\":%zu},\"layers\":[{\"mediaType\":"
		     "\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"%s\",\"size\":16}]}",
		     cfgd, strlen("{\"os\":\"linux\",\"architecture\":\"amd64\",\"rootfs\":{}}"), layerd) < 0)
		abort();
	udfb_sha256_digest(mtext, strlen(mtext), md);

	char *dir_a = NULL, *dir_b = NULL;
	if (asprintf(&dir_a, "%s/a", root) < 0 || asprintf(&dir_b, "%s/b", root) < 0)
		abort();
	struct udfb_image_store *a = udfb_image_store_oci(dir_a), *b = udfb_image_store_oci(dir_b);
	CHECK_STR(a->name + 4, dir_a, "the store is named oci:DIR");
	CHECK(a->ops->lookup(a, "t1", got, &err) < 0, "a layout not made yet: lookup fails");
	udfb_err_clear(&err);
	CHECK(a->ops->put_blob(a, cfgd, 0, cfg, NULL, &err) == 0 &&
		      a->ops->put_blob(a, layerd, 16, layer, NULL, &err) == 0,
	      "blobs put from files");
	CHECK(udfb_image_store_has_blob(a, layerd, &err) == 1 && udfb_image_store_has_blob(a, md, &err) == 0,
	      "has_blob");
	CHECK(a->ops->tag(a, "t1", mtext, strlen(mtext), "application/vnd.oci.image.manifest.v1+json", md, &err) == 0,
	      "the manifest tagged");
	CHECK(a->ops->lookup(a, "t1", got, &err) == 1 && strcmp(got, md) == 0, "lookup finds the tag's digest");
	CHECK(a->ops->lookup(a, "t2", got, &err) == 0, "lookup of another tag: 0");

	struct udfb_image im;
	CHECK(udfb_image_store_read(a, "t1", NULL, &im, &err) == 0, "read by tag (%s)", err.msg ? err.msg : "");
	CHECK(strcmp(im.manifest_digest, md) == 0 && strcmp(im.config_digest, cfgd) == 0, "its digests");
	CHECK(im.m.n_layers == 1 && strcmp(im.m.layers[0].digest, layerd) == 0 && im.m.layers[0].size == 16,
	      "its typed layers");
	CHECK_STR(im.platform.os, "linux", "its platform's os");
	CHECK_STR(im.platform.architecture, "amd64", "its platform's architecture");
	udfb_image_free(&im);
	CHECK(udfb_image_store_read(a, md, NULL, &im, &err) == 0 && im.m.n_layers == 1, "read by digest");
	udfb_image_free(&im);

	/* Another layout copies the blobs it lacks from a. */
	CHECK(b->ops->put_blob(b, layerd, 16, NULL, a, &err) == 0 && b->ops->put_blob(b, cfgd, 0, NULL, a, &err) == 0,
	      "blobs copied from another store");
	CHECK(b->ops->tag(b, "copy", mtext, strlen(mtext), "application/vnd.oci.image.manifest.v1+json", md, &err) == 0,
	      "tagged there");
	CHECK(udfb_image_store_read(b, "copy", NULL, &im, &err) == 0 && strcmp(im.manifest_digest, md) == 0,
	      "the copy reads back");
	udfb_image_free(&im);
	char *p = udfb_image_store_blob_path(b, layerd);
	CHECK(p && access(p, R_OK) == 0, "blob_path names the file");
	free(p);
	p = udfb_image_store_blob_path(b, "sha256:0000000000000000000000000000000000000000000000000000000000000000");
	CHECK(p == NULL, "blob_path of a missing blob: NULL");
	free(p);
	CHECK(b->ops->put_blob(b, "sha256:0000000000000000000000000000000000000000000000000000000000000000", 1, NULL,
			       NULL, &err) < 0,
	      "a blob from nowhere: refused");
	udfb_err_clear(&err);
	udfb_image_store_free(a);
	udfb_image_store_free(b);
	free(cfg), free(layer), free(mtext), free(dir_a), free(dir_b);
}

/* A caller's registry clients: one per host, shared by the stores opened
 * over them (no connection is made here). */
static void test_registries(void)
{
	struct udfb_err err = UDFB_ERR_INIT;
	struct udfb_registries *set = udfb_registries_new(NULL);
	struct udfb_registry *a = NULL, *a2 = NULL, *b = NULL;
	CHECK(udfb_registries_get(set, "127.0.0.1:5000", &a, &err) == 0 &&
		      udfb_registries_get(set, "127.0.0.1:5000", &a2, &err) == 0 && a == a2,
	      "one client per host");
	CHECK(udfb_registries_get(set, "127.0.0.1:5001", &b, &err) == 0 && b != a, "another host, another client");
	struct udfb_ref r;
	struct udfb_image_store *s = NULL;
	const char *repo = NULL;
	CHECK(udfb_ref_parse(&r, "docker://127.0.0.1:5000/udf/x:t", &err) == 0 &&
		      udfb_image_store_open(&s, &r, set, &err) == 0,
	      "a docker:// reference opens a store");
	CHECK(udfb_image_store_client(s, &repo) == a && strcmp(repo, "udf/x") == 0,
	      "over the set's client for its host");
	CHECK_STR(s->name, "docker://127.0.0.1:5000/udf/x", "named by its repository");
	CHECK(udfb_image_store_oci_dir(s) == NULL &&
		      udfb_image_store_blob_path(
			      s, "sha256:0000000000000000000000000000000000000000000000000000000000000000") == NULL,
	      "a registry store has no local blobs");
	udfb_image_store_free(s);
	udfb_ref_free(&r);
	CHECK(udfb_ref_parse(&r, "oci:/some/dir:t", &err) == 0 && udfb_image_store_open(&s, &r, set, &err) == 0,
	      "an oci: reference opens a store");
	CHECK_STR(udfb_image_store_oci_dir(s), "/some/dir", "over its directory");
	CHECK(udfb_image_store_client(s, NULL) == NULL, "with no registry client");
	udfb_image_store_free(s);
	udfb_ref_free(&r);
	udfb_registries_free(set);
}

/* The registry backend against a real registry (UDFB_TEST_REGISTRY,
 * "127.0.0.1:PORT": tests/integration/test_imagestore.sh starts one): the
 * image of layout a pushed blob by blob, tagged, read back, mounted into a
 * second repository and copied back into a layout. */
static void test_registry(const char *root, const char *host)
{
	struct udfb_err err = UDFB_ERR_INIT;
	char *dir_a = NULL, *dir_c = NULL;
	if (asprintf(&dir_a, "%s/a", root) < 0 || asprintf(&dir_c, "%s/c", root) < 0)
		abort();
	struct udfb_image_store *a = udfb_image_store_oci(dir_a), *c = udfb_image_store_oci(dir_c);
	struct udfb_registries *set = udfb_registries_new(NULL);
	struct udfb_registry *r = NULL;
	if (udfb_registries_get(set, host, &r, &err) < 0)
		abort();
	struct udfb_image_store *g = udfb_image_store_registry(r, "udfb/store-a");
	struct udfb_image_store *g2 = udfb_image_store_registry(r, "udfb/store-b");
	struct udfb_image src;
	CHECK(udfb_image_store_read(a, "t1", NULL, &src, &err) == 0, "the layout's image");
	const struct udfb_descriptor *blobs[] = { &src.m.config, &src.m.layers[0] };
	int ok = 1;
	for (int k = 0; k < 2; k++) {
		ok &= g->ops->has_blob(g, blobs[k]->digest, &err) == 0;
		ok &= g->ops->put_blob(g, blobs[k]->digest, blobs[k]->size, NULL, a, &err) == 0;
		ok &= g->ops->has_blob(g, blobs[k]->digest, &err) == 1;
	}
	CHECK(ok, "blobs absent, put from the layout, present (%s)", err.msg ? err.msg : "");
	udfb_err_clear(&err);
	CHECK(g->ops->tag(g, "t1", src.manifest, src.manifest_len, UDFB_MT_OCI_MANIFEST, src.manifest_digest, &err) ==
		      0,
	      "the manifest put and tagged");
	char got[UDFB_DIGEST_LEN + 1];
	CHECK(g->ops->lookup(g, "t1", got, &err) == 1 && strcmp(got, src.manifest_digest) == 0, "lookup finds it");
	CHECK(g->ops->lookup(g, "nope", got, &err) == 0, "lookup of a missing tag: 0");
	struct udfb_image im;
	CHECK(udfb_image_store_read(g, "t1", "linux/amd64", &im, &err) == 0 &&
		      strcmp(im.manifest_digest, src.manifest_digest) == 0 && im.m.n_layers == 1 &&
		      strcmp(im.m.layers[0].digest, src.m.layers[0].digest) == 0,
	      "read back by tag, its typed manifest the same (%s)", err.msg ? err.msg : "");
	udfb_image_free(&im);
	udfb_err_clear(&err);
	CHECK(udfb_image_store_read(g, src.manifest_digest, "linux/amd64", &im, &err) == 0 &&
		      strcmp(im.config_digest, src.config_digest) == 0,
	      "read back by digest");
	udfb_image_free(&im);
	udfb_err_clear(&err);
	/* Another repository of the same client: mounted, then tagged. */
	ok = 1;
	for (int k = 0; k < 2; k++)
		ok &= g2->ops->put_blob(g2, blobs[k]->digest, blobs[k]->size, NULL, g, &err) == 0;
	ok &= g2->ops->tag(g2, "t2", src.manifest, src.manifest_len, UDFB_MT_OCI_MANIFEST, src.manifest_digest, &err) ==
	      0;
	CHECK(ok && udfb_image_store_read(g2, "t2", "linux/amd64", &im, &err) == 0, "copied to another repository (%s)",
	      err.msg ? err.msg : "");
	udfb_image_free(&im);
	udfb_err_clear(&err);
	/* Back into a layout: each blob fetched (digest checked), then tagged. */
	ok = 1;
	for (int k = 0; k < 2; k++)
		ok &= c->ops->put_blob(c, blobs[k]->digest, blobs[k]->size, NULL, g2, &err) == 0;
	ok &= c->ops->tag(c, "back", src.manifest, src.manifest_len, UDFB_MT_OCI_MANIFEST, src.manifest_digest, &err) ==
	      0;
	CHECK(ok && udfb_image_store_read(c, "back", NULL, &im, &err) == 0 &&
		      strcmp(im.manifest_digest, src.manifest_digest) == 0,
	      "fetched back into a layout (%s)", err.msg ? err.msg : "");
	udfb_image_free(&im);
	udfb_err_clear(&err);
	char *text = NULL;
	size_t len = 0;
	CHECK(g2->ops->get_blob(g2, src.config_digest, 1 << 20, &text, &len, &err) == 0 && len == src.config_len &&
		      memcmp(text, src.config, len) == 0,
	      "a blob into memory");
	free(text);
	udfb_err_clear(&err);
	CHECK(g->ops->put_blob(g, "sha256:0000000000000000000000000000000000000000000000000000000000000000", 1, NULL,
			       NULL, &err) < 0 &&
		      err.cat == UDFB_E_NOTFOUND,
	      "a blob from nowhere: refused");
	udfb_err_clear(&err);
	udfb_image_free(&src);
	udfb_image_store_free(g), udfb_image_store_free(g2), udfb_image_store_free(a), udfb_image_store_free(c);
	udfb_registries_free(set);
	free(dir_a), free(dir_c);
}

int main(void)
{
	char root[] = "/tmp/udfb-test-imagestore-XXXXXX";
	if (!mkdtemp(root))
		return 1;
	test_parse();
	test_oci(root);
	test_registries();
	const char *host = getenv("UDFB_TEST_REGISTRY");
	if (host && *host)
		test_registry(root, host);
	udfb_rm_rf(root);
	return check_done();
}
