/* udf-builder warm --runtime 3.12 --packages "numpy pandas==2.2.*" --base REF
 * --dest REF: resolve and build the package layers without a UDF and
 * publish them (as an image of the base, the layers and the lock), so the
 * first UDF needing them finds them built.  Prints the build result. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build.h"
#include "cli.h"
#include "jsonout.h"
#include "ocilayout.h"
#include "pep508.h"
#include "store.h"

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Whitespace-separated requirements, canonical, sorted, unique: two
 * spellings of one list warm one image. */
static int parse_list(char ***out, size_t *n, const char *list, struct udfb_err *err)
{
	char *copy = strdup(list), *save = NULL;
	char **v = calloc(strlen(list) / 2 + 2, sizeof(char *));
	size_t k = 0;
	int rc = 0;
	for (char *item = strtok_r(copy, " \t\n", &save); item && rc == 0; item = strtok_r(NULL, " \t\n", &save)) {
		struct udfb_requirement r;
		if ((rc = udfb_req_parse(&r, item, err)) < 0) {
			udfb_err_wrap(err, "--packages: '%s'", item);
			break;
		}
		v[k++] = strdup(r.canonical);
		udfb_req_free(&r);
	}
	free(copy);
	if (rc == 0 && k == 0)
		rc = udfb_err_set(err, UDFB_E_INVALID, "--packages: no requirement given");
	qsort(v, k, sizeof(*v), cmp_str);
	size_t u = 0;
	for (size_t j = 0; j < k; j++) {
		if (u && strcmp(v[u - 1], v[j]) == 0)
			free(v[j]);
		else
			v[u++] = v[j];
	}
	*out = v;
	*n = u;
	return rc;
}

static int warm(const struct udfb_cli_common *c, struct udfb_err *err)
{
	if (!c->base || !c->dest || !c->packages_list || !c->runtime)
		return udfb_err_set(err, UDFB_E_INVALID, "warm: %s is required",
				    !c->packages_list ? "--packages" : !c->runtime ? "--runtime" : c->base ? "--dest" : "--base");
	char **reqs = NULL;
	size_t n = 0;
	int rc = parse_list(&reqs, &n, c->packages_list, err);
	char *store = c->store ? NULL : udfb_store_default_dir();
	struct udfb_build_opts o = { .store_dir = c->store ? c->store : store, .base = c->base, .dest = c->dest,
				     .salt = c->salt, .platform = c->platform, .fetch = &c->fetch, .packages = &c->packages };
	struct udfb_build_result r;
	if (rc == 0)
		rc = udfb_build_warm(&r, reqs, n, c->runtime, &o, err);
	if (rc == 0 && udfb_oci_sync_all(err) < 0) {
		udfb_build_result_free(&r);
		rc = -1;
	}
	if (rc == 0) {
		json_t *j = udfb_json_must(json_pack("{s:s,s:s,s:s,s:O,s:b,s:i}", "key", r.key, "manifest_digest", r.manifest_digest, "image",
				      r.image, "layers", r.layers, "cached", r.cached, "installed", (int)r.package_installs));
		char *text = udfb_json_dumps_must(j, JSON_COMPACT);
		printf("%s\n", text);
		free(text);
		json_decref(j);
		udfb_build_result_free(&r);
	}
	for (size_t k = 0; k < n; k++)
		free(reqs[k]);
	free(reqs);
	free(store);
	return rc;
}

int udfb_cmd_warm(int argc, char **argv)
{
	struct udfb_err err = UDFB_ERR_INIT;
	struct udfb_cli_common c;
	int rc = udfb_cli_parse(&c, argc, argv,
				"store,base,dest,platform,imports-allow,index-url,refresh-packages,runtime,packages", 0, &err);
	if (rc == 0)
		rc = warm(&c, &err);
	udfb_cli_free(&c);
	return rc < 0 ? udfb_cli_fail(&err) : 0;
}
