/* udf-builder key REQUEST.json [--base REF] [--config FILE] [--store DIR]
 * [--imports-allow LIST]: print the cache key.  With --config the base is
 * the one the service takes for the request's runtime, and salt, platform,
 * package settings and default tenant are the service's.  Without a base
 * the key is computed for an unpinned base (docs/cache-key.md).  A Databend
 * script's imports carry no tag: each is named by one first-byte GET
 * (recorded in the store's import cache, as a build would), so their URLs
 * must still be valid. */
#include <stdio.h>
#include <stdlib.h>

#include "builder/build.h"
#include "cmd/cli.h"

const struct udfb_cli_spec udfb_cli_key_spec = {
	"key",
	"REQUEST.json",
	"print the cache key",
	1,
	(const char *const[]){ "config", "base", "salt", "platform", "store", "imports-allow", NULL },
};

static int key(struct udfb_cli_common *c, struct udfb_err *err)
{
	struct udfb_request req;
	if (udfb_request_load(&req, c->positional, err) < 0)
		return -1;
	struct udfb_base base = { 0 };
	struct udfb_build_opts o = { .store_dir = udfb_cli_store(c),
				     .salt = c->cfg.salt,
				     .platform = c->cfg.platform,
				     .fetch = &c->cfg.fetch,
				     .packages = &c->cfg.packages,
				     .tenant = udfb_cli_tenant(c, &req) };
	char k[UDFB_DIGEST_LEN + 1], *ref = NULL;
	int rc = udfb_cli_base_ref(c, req.spec.runtime_version, &ref, err);
	if (rc == 0 && ref)
		rc = udfb_base_resolve(&base, ref, c->cfg.platform, NULL, err);
	if (rc == 0)
		rc = udfb_request_identify(&req, &o, err);
	if (rc == 0)
		rc = udfb_build_key(k, &req, ref ? base.image.manifest_digest : NULL, &o, err);
	if (rc == 0)
		printf("%s\n", k);
	free(ref);
	udfb_base_free(&base);
	udfb_request_free(&req);
	return rc;
}

int udfb_cmd_key(int argc, char **argv)
{
	return udfb_cli_run(&udfb_cli_key_spec, argc, argv, key);
}
