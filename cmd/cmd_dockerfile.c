/* udf-builder dockerfile REQUEST.json --base REF --out DIR: write the
 * Dockerfile and its build context.  Imports come through the store's
 * import cache, as for a build. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "builder/build.h"
#include "cmd/cli.h"
#include "builder/context.h"
#include "builder/dockerfile.h"
#include "common/fsutil.h"
#include "cache/store.h"

const struct udfb_cli_spec udfb_cli_dockerfile_spec = {
	"dockerfile",
	"REQUEST.json",
	"write a Dockerfile and its build context (--base, --out)",
	1,
	(const char *const[]){ "config", "store", "base", "out", "platform", "imports-allow", NULL },
};

static int write_context(struct udfb_cli_common *c, const struct udfb_request *req, const char *from,
			 struct udfb_err *err)
{
	struct udfb_store *st = NULL;
	int rc = udfb_store_open(&st, udfb_cli_store(c), err);
	if (rc < 0)
		return -1;
	char *tmp = udfb_path_join(st->tmp, "build-XXXXXX");
	if (!mkdtemp(tmp))
		rc = udfb_err_sys(err, errno, "create a temporary directory in %s", st->tmp);
	struct udfb_context ctx;
	struct udfb_context_opts co = { .fetch = &c->cfg.fetch, .cache = st, .tmpdir = tmp };
	if (rc == 0 && (rc = udfb_context_prepare(&ctx, req, &co, err)) == 0) {
		rc = udfb_dockerfile_write(c->out, from, req, &ctx, err);
		udfb_context_free(&ctx);
	}
	udfb_rm_rf(tmp);
	free(tmp);
	udfb_store_close(st);
	return rc;
}

static int dockerfile(struct udfb_cli_common *c, struct udfb_err *err)
{
	int have_base = c->base || c->cfg.n_bases;
	if (!have_base || !c->out)
		return udfb_err_set(err, UDFB_E_INVALID, "dockerfile: %s is required", have_base ? "--out" : "--base");
	struct udfb_request req;
	char *ref = NULL;
	if (udfb_request_load(&req, c->positional, err) < 0)
		return -1;
	if (req.stub) { /* its image runs Databend's stub behind guard.py: not what Dockerfile.in describes */
		udfb_request_free(&req);
		return udfb_err_set(err, UDFB_E_UNSUPPORTED,
				    "dockerfile: %s is a Databend script request, built natively only "
				    "(udf-builder build)",
				    c->positional);
	}
	struct udfb_base base = { 0 };
	int rc = udfb_cli_base_ref(c, req.spec.runtime_version, &ref, err);
	if (rc == 0)
		rc = udfb_base_resolve(&base, ref, c->cfg.platform, NULL, err);
	if (rc == 0)
		rc = write_context(c, &req, base.from, err);
	udfb_base_free(&base);
	udfb_request_free(&req);
	free(ref);
	return rc;
}

int udfb_cmd_dockerfile(int argc, char **argv)
{
	return udfb_cli_run(&udfb_cli_dockerfile_spec, argc, argv, dockerfile);
}
