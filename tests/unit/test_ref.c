/* Image references of the CLI contract. */
#include "check.h"
#include "registry-client/ref.h"

static void ok(const char *s, int kind, const char *a, const char *b, const char *tag, const char *digest)
{
	struct udfb_ref r;
	struct udfb_err err = UDFB_ERR_INIT;
	int rc = udfb_ref_parse(&r, s, &err);
	int good = rc == 0 && (int)r.kind == kind;
	if (good && kind == UDFB_REF_OCI)
		good = strcmp(r.dir, a) == 0;
	if (good && kind == UDFB_REF_DOCKER)
		good = strcmp(r.host, a) == 0 && strcmp(r.repo, b) == 0;
	good = good && (tag ? r.tag && strcmp(r.tag, tag) == 0 : !r.tag);
	good = good && (digest ? r.digest && strcmp(r.digest, digest) == 0 : !r.digest);
	CHECK(good, "parse '%s' (%s)", s, err.msg ? err.msg : "ok");
	if (rc == 0)
		udfb_ref_free(&r);
	udfb_err_clear(&err);
}

static void bad(const char *s)
{
	struct udfb_ref r;
	struct udfb_err err = UDFB_ERR_INIT;
	int rc = udfb_ref_parse(&r, s, &err);
	CHECK(rc < 0 && err.cat == UDFB_E_INVALID && strstr(err.msg, s), "reject '%s' naming it (%s)", s,
	      err.msg ? err.msg : "accepted");
	if (rc == 0)
		udfb_ref_free(&r);
	udfb_err_clear(&err);
}

int main(void)
{
	const char *d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	ok("oci:/tmp/x:python", UDFB_REF_OCI, "/tmp/x", NULL, "python", NULL);
	ok("oci:/tmp/x", UDFB_REF_OCI, "/tmp/x", NULL, NULL, NULL);
	ok("oci:rel/dir:v1.2", UDFB_REF_OCI, "rel/dir", NULL, "v1.2", NULL);
	ok("oci:/a:b/c", UDFB_REF_OCI, "/a:b/c", NULL, NULL, NULL);
	/* What a build reports for an OCI destination, as the service hands it on. */
	ok("oci:/s/images:t-1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", UDFB_REF_OCI,
	   "/s/images", NULL, "t-1", "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	ok("oci:/s/images@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", UDFB_REF_OCI,
	   "/s/images", NULL, NULL, "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	ok("oci:/s/a@b", UDFB_REF_OCI, "/s/a@b", NULL, NULL, NULL);
	ok("docker://127.0.0.1:5000/udf/base:3.12", UDFB_REF_DOCKER, "127.0.0.1:5000", "udf/base", "3.12", NULL);
	ok("docker://registry.example.com/a/b/c", UDFB_REF_DOCKER, "registry.example.com", "a/b/c", NULL, NULL);
	ok("docker://localhost:5000/x@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	   UDFB_REF_DOCKER, "localhost:5000", "x", NULL, d);
	bad("oci:");
	bad("docker://host");
	bad("docker://host/UPPER");
	bad("docker://host/a:bad tag");
	bad("docker://host/a@sha256:abc");
	bad("docker://host/a--b_");
	bad("registry/repo:tag");
	return check_done();
}
