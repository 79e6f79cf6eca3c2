/* udf-builder build REQUEST.json --base REF --dest REF: build natively and
 * print {"key","manifest_digest","image","layers","cached"} on stdout.
 * With --config FILE the base is the service's for the request's runtime,
 * and the destination, when not given, the service's (oci:<store>/images). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "builder/build.h"
#include "cmd/cli.h"
#include "common/jsonout.h"
#include "image/ocilayout.h"
#include "cache/store.h"

static void print_result(const struct udfb_build_result *r)
{
	json_t *j = udfb_json_must(json_pack("{s:s,s:s,s:s,s:O,s:b,s:I}", "key", r->key, "manifest_digest",
					     r->manifest_digest, "image", r->image, "layers", r->layers, "cached",
					     r->cached, "packages_installed", (json_int_t)r->package_installs));
	char *s = udfb_json_dumps_must(j, JSON_COMPACT);
	printf("%s\n", s);
	free(s);
	json_decref(j);
}

const struct udfb_cli_spec udfb_cli_build_spec = {
	"build",
	"REQUEST.json",
	"build the image natively, print a JSON result",
	1,
	(const char *const[]){ "config", "store", "base", "dest", "salt", "platform", "imports-allow", "index-url",
			       "refresh-packages", NULL },
};

static int build(struct udfb_cli_common *c, struct udfb_err *err)
{
	int have_base = c->base || c->cfg.n_bases;
	if (!have_base || !udfb_cli_dest(c))
		return udfb_err_set(err, UDFB_E_INVALID, "build: %s is required", have_base ? "--dest" : "--base");
	struct udfb_request req;
	char *ref = NULL;
	if (udfb_request_load(&req, c->positional, err) < 0)
		return -1;
	int rc = udfb_cli_base_ref(c, req.spec.runtime_version, &ref, err);
	struct udfb_build_opts o = { .store_dir = udfb_cli_store(c),
				     .base = ref,
				     .dest = c->cfg.dest,
				     .salt = c->cfg.salt,
				     .platform = c->cfg.platform,
				     .fetch = &c->cfg.fetch,
				     .packages = &c->cfg.packages,
				     .tenant = udfb_cli_tenant(c, &req) };
	struct udfb_build_result r;
	if (rc == 0)
		rc = udfb_build(&r, &req, &o, err);
	/* A build is a batch of one: its tag goes into index.json now. */
	if (rc == 0 && udfb_oci_sync_all(err) < 0) {
		udfb_build_result_free(&r);
		rc = -1;
	}
	udfb_request_free(&req);
	free(ref);
	if (rc == 0) {
		print_result(&r);
		udfb_build_result_free(&r);
	}
	return rc;
}

int udfb_cmd_build(int argc, char **argv)
{
	return udfb_cli_run(&udfb_cli_build_spec, argc, argv, build);
}
