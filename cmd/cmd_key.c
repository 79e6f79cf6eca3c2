/* udf-builder key REQUEST.json [--base REF]: print the cache key.  Without a
 * base the key is computed for an unpinned base (docs/cache-key.md). */
#include <stdio.h>

#include "builder/build.h"
#include "cmd/cli.h"

static int key(const struct udfb_cli_common *c, struct udfb_err *err)
{
	struct udfb_request req;
	if (udfb_request_load(&req, c->positional, err) < 0)
		return -1;
	struct udfb_base base = { 0 };
	struct udfb_build_opts o = { .salt = c->salt, .platform = c->platform, .packages = &c->packages };
	char k[UDFB_DIGEST_LEN + 1];
	int rc = c->base ? udfb_base_resolve(&base, c->base, c->platform, NULL, err) : 0;
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
	int rc = udfb_cli_parse(&c, argc, argv, "base,salt,platform", 1, &err);
	if (rc == 0)
		rc = key(&c, &err);
	udfb_cli_free(&c);
	return rc < 0 ? udfb_cli_fail(&err) : 0;
}
