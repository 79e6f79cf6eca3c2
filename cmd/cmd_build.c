/* udf-builder build REQUEST.json --base REF --dest REF: build natively and
 * print {"key","manifest_digest","image","layers","cached"} on stdout. */
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

static int build(const struct udfb_cli_common *c, struct udfb_err *err)
{
	if (!c->base || !c->dest)
		return udfb_err_set(err, UDFB_E_INVALID, "build: %s is required", c->base ? "--dest" : "--base");
	struct udfb_request req;
	if (udfb_request_load(&req, c->positional, err) < 0)
		return -1;
	char *store = c->store ? NULL : udfb_store_default_dir();
	struct udfb_build_opts o = { .store_dir = c->store ? c->store : store,
				     .base = c->base,
				     .dest = c->dest,
				     .salt = c->salt,
				     .platform = c->platform,
				     .fetch = &c->fetch,
				     .packages = &c->packages };
	struct udfb_build_result r;
	int rc = udfb_build(&r, &req, &o, err);
	/* A build is a batch of one: its tag goes into index.json now. */
	if (rc == 0 && udfb_oci_sync_all(err) < 0) {
		udfb_build_result_free(&r);
		rc = -1;
	}
	udfb_request_free(&req);
	free(store);
	if (rc == 0) {
		print_result(&r);
		udfb_build_result_free(&r);
	}
	return rc;
}

int udfb_cmd_build(int argc, char **argv)
{
	struct udfb_err err = UDFB_ERR_INIT;
	struct udfb_cli_common c;
	int rc = udfb_cli_parse(&c, argc, argv,
				"store,base,dest,salt,platform,imports-allow,index-url,refresh-packages", 1, &err);
	if (rc == 0)
		rc = build(&c, &err);
	udfb_cli_free(&c);
	return rc < 0 ? udfb_cli_fail(&err) : 0;
}
