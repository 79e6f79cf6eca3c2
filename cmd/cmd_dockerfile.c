/* udf-builder dockerfile REQUEST.json --base REF --out DIR: write the
 * Dockerfile and its build context (imports fetched into DIR/imports). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "build.h"
#include "cli.h"
#include "context.h"
#include "dockerfile.h"
#include "fsutil.h"

static int write_context(const struct udfb_cli_common *c, const struct udfb_request *req, const char *from,
			 struct udfb_err *err)
{
	if (udfb_mkdir_p(c->out, 0755, err) < 0)
		return -1;
	/* Imports are fetched next to the output so the context is one tree. */
	char *tmp = udfb_path_join(c->out, ".udfb-fetch-XXXXXX");
	if (!mkdtemp(tmp)) {
		udfb_err_sys(err, errno, "create a temporary directory in %s", c->out);
		free(tmp);
		return -1;
	}
	struct udfb_context ctx;
	int rc = udfb_context_prepare(&ctx, req, tmp, err);
	if (rc == 0) {
		rc = udfb_dockerfile_write(c->out, from, req, &ctx, err);
		udfb_context_free(&ctx);
	}
	udfb_rm_rf(tmp);
	free(tmp);
	return rc;
}

int udfb_cmd_dockerfile(int argc, char **argv)
{
	struct udfb_err err = UDFB_ERR_INIT;
	struct udfb_cli_common c;
	if (udfb_cli_parse(&c, argc, argv, "base,out,platform", 1, &err) < 0)
		return udfb_cli_fail(&err);
	if (!c.base || !c.out) {
		udfb_err_set(&err, UDFB_E_INVALID, "dockerfile: %s is required", c.base ? "--out" : "--base");
		return udfb_cli_fail(&err);
	}
	struct udfb_request req;
	if (udfb_request_load(&req, c.positional, &err) < 0)
		return udfb_cli_fail(&err);
	struct udfb_base base;
	int rc = udfb_base_resolve(&base, c.base, c.platform, &err);
	if (rc == 0)
		rc = write_context(&c, &req, base.from, &err);
	udfb_base_free(&base);
	udfb_request_free(&req);
	return rc < 0 ? udfb_cli_fail(&err) : 0;
}
