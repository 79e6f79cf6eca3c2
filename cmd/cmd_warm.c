/* udf-builder warm --runtime 3.12 --packages "numpy pandas==2.2.*" --base REF
 * --dest REF: resolve and build the package layers without a UDF and
 * publish them (as an image of the base, the layers and the lock), so the
 * first UDF needing them finds them built.  Prints the build result.
 *
 * udf-builder warm --runtime 3.12 --base REF --dest REF INPUT...: the same for
 * the requirements of each request in the inputs (request files, directories,
 * JSON lines: ApplyUdfResource, or Databend's ApplyResource / CreateWorker
 * as released nodes send them), one warm image per distinct set. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builder/batch.h"
#include "builder/build.h"
#include "cmd/cli.h"
#include "common/jsonout.h"
#include "image/ocilayout.h"
#include "python/pep508.h"
#include "common/buf.h"
#include "builder/request.h"
#include "cache/store.h"

const struct udfb_cli_spec udfb_cli_warm_spec = {
	"warm",
	"[INPUT...]",
	"build and publish package layers without a UDF (--runtime, --packages or INPUTs)",
	-2,
	(const char *const[]){ "config", "store", "base", "dest", "platform", "imports-allow", "index-url",
			       "refresh-packages", "runtime", "packages", NULL },
};

/* Whitespace-separated requirements, canonical, sorted, unique: two
 * spellings of one list warm one image. */
static int parse_list(char ***out, size_t *n, const char *list, struct udfb_err *err)
{
	int rc = udfb_req_list_parse(out, n, list, " \t\n", err);
	if (rc < 0)
		return udfb_err_wrap(err, "--packages");
	if (*n == 0)
		return udfb_err_set(err, UDFB_E_INVALID, "--packages: no requirement given");
	return 0;
}

static int warm_one(const struct udfb_cli_common *c, char **reqs, size_t n, const char *from, struct udfb_err *err)
{
	struct udfb_build_opts o = { .store_dir = c->cfg.store,
				     .base = c->base,
				     .dest = c->cfg.dest,
				     .salt = c->cfg.salt,
				     .platform = c->cfg.platform,
				     .fetch = &c->cfg.fetch,
				     .packages = &c->cfg.packages };
	struct udfb_build_result r;
	int rc = udfb_build_warm(&r, reqs, n, c->runtime, &o, err);
	if (rc == 0 && udfb_oci_sync_all(err) < 0) {
		udfb_build_result_free(&r);
		rc = -1;
	}
	if (rc == 0) {
		json_t *j = udfb_json_must(json_pack("{s:s,s:s,s:s,s:O,s:b,s:i}", "key", r.key, "manifest_digest",
						     r.manifest_digest, "image", r.image, "layers", r.layers, "cached",
						     r.cached, "installed", (int)r.package_installs));
		if (from)
			json_object_set_new(j, "from", json_string(from));
		char *text = udfb_json_dumps_must(j, JSON_COMPACT);
		printf("%s\n", text);
		fflush(stdout);
		free(text);
		json_decref(j);
		udfb_build_result_free(&r);
	} else if (from) {
		udfb_err_wrap(err, "%s", from);
	}
	return rc;
}

/* The requirement sets of the inputs' requests (the merged, canonical set a
 * build of each would resolve), each warmed once. */
static int warm_inputs(const struct udfb_cli_common *c, struct udfb_err *err)
{
	struct udfb_batch b;
	if (udfb_batch_load(&b, c->positionals, c->n_positionals, err) < 0)
		return -1;
	json_t *seen = json_object();
	int rc = 0, failed = 0;
	for (size_t k = 0; k < b.n && rc == 0; k++) {
		struct udfb_request req;
		struct udfb_err e = UDFB_ERR_INIT;
		if (udfb_request_parse_json(&req, b.items[k].json, b.items[k].len, &e) < 0) {
			fprintf(stderr, "udf-builder: %s: %s\n", b.items[k].name, e.msg);
			udfb_err_clear(&e);
			failed++;
			continue;
		}
		struct udfb_buf set;
		udfb_buf_init(&set, 1 << 20);
		for (size_t j = 0; j < req.n_requirements; j++)
			udfb_buf_printf(&set, "%s\n", req.requirements[j]);
		if (req.n_requirements && !json_object_get(seen, set.data)) {
			json_object_set_new(seen, set.data, json_true());
			if (warm_one(c, req.requirements, req.n_requirements, b.items[k].name, &e) < 0) {
				fprintf(stderr, "udf-builder: %s\n", e.msg);
				udfb_err_clear(&e);
				failed++;
			}
		}
		udfb_buf_free(&set);
		udfb_request_free(&req);
	}
	json_decref(seen);
	udfb_batch_free(&b);
	if (rc == 0 && failed)
		rc = udfb_err_set(err, UDFB_E_INVALID, "warm: %d input(s) failed (above)", failed);
	return rc;
}

static int warm(struct udfb_cli_common *c, struct udfb_err *err)
{
	int inputs = c->n_positionals > 0;
	udfb_cli_store(c);
	udfb_cli_dest(c);
	/* With --config: the base the service gives that runtime. */
	if (c->runtime && !c->base && udfb_cli_base_ref(c, c->runtime, &c->base, err) < 0)
		return -1;
	if (!c->base || !c->cfg.dest || !c->runtime || (!c->packages_list && !inputs))
		return udfb_err_set(err, UDFB_E_INVALID, "warm: %s is required",
				    !c->runtime	   ? "--runtime"
				    : !c->base	   ? "--base"
				    : !c->cfg.dest ? "--dest"
						   : "--packages or an INPUT");
	if (c->packages_list && inputs)
		return udfb_err_set(err, UDFB_E_INVALID, "warm: --packages or INPUT files, not both");
	if (inputs)
		return warm_inputs(c, err);
	char **reqs = NULL;
	size_t n = 0;
	int rc = parse_list(&reqs, &n, c->packages_list, err);
	if (rc == 0)
		rc = warm_one(c, reqs, n, NULL, err);
	udfb_req_list_free(reqs, n);
	return rc;
}

int udfb_cmd_warm(int argc, char **argv)
{
	return udfb_cli_run(&udfb_cli_warm_spec, argc, argv, warm);
}
