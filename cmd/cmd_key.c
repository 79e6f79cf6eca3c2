/* udf-builder key REQUEST.json [--base REF] [--store DIR] [--imports-allow
 * LIST]: print the cache key.  Without a base the key is computed for an
 * unpinned base (docs/cache-key.md).  A Databend script's imports carry no
 * tag: each is named by one first-byte GET (recorded in the store's import
 * cache, as a build would), so their URLs must still be valid. */
#include <stdio.h>

#include "builder/build.h"
#include "cache/store.h"
#include "common/cleanup.h"
#include "cmd/cli.h"

static int key(const struct udfb_cli_common *c, struct udfb_err *err)
{
	struct udfb_request req;
	if (udfb_request_load(&req, c->positional, err) < 0)
		return -1;
	struct udfb_base base = { 0 };
	cleanup_free char *store = c->store ? NULL : udfb_store_default_dir();
	struct udfb_build_opts o = { .store_dir = c->store ? c->store : store,
				     .salt = c->salt,
				     .platform = c->platform,
				     .fetch = &c->fetch,
				     .packages = &c->packages };
	char k[UDFB_DIGEST_LEN + 1];
	int rc = c->base ? udfb_base_resolve(&base, c->base, c->platform, err) : 0;
	if (rc == 0)
		rc = udfb_request_identify(&req, &o, err);
	if (rc == 0)
		rc = udfb_build_key(k, &req, c->base ? base.image.manifest_digest : NULL, &o, err);
	if (rc == 0)
		printf("%s\n", k);
	udfb_base_free(&base);
	udfb_request_free(&req);
	return rc;
}

int udfb_cmd_key(int argc, char **argv)
{
	struct udfb_err err = UDFB_ERR_INIT;
	struct udfb_cli_common c;
	int rc = udfb_cli_parse(&c, argc, argv, "base,salt,platform,store,imports-allow", 1, &err);
	if (rc == 0)
		rc = key(&c, &err);
	udfb_cli_free(&c);
	return rc < 0 ? udfb_cli_fail(&err) : 0;
}
