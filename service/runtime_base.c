/* A runtime base plus the operator's runtime packages: see runtime_base.h.
 *
 * The packages are resolved by the project's own resolver from the
 * configured indexes and installed one layer per wheel (the `warm` build,
 * builder/build.c), published beside the UDF images in the store.  The
 * warm key covers the base digest, the requirements and the package
 * settings, so a restart finds the composed base in the store at once. */
#include "service/runtime_base.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "builder/build.h"
#include "common/clock.h"
#include "common/log.h"
#include "python/pep508.h"

int udfb_runtime_compose(char **out, const char *runtime, const char *base_ref, const struct udfb_config *cfg,
			 struct udfb_err *err)
{
	*out = NULL;
	if (!cfg->runtime_packages || !*cfg->runtime_packages)
		return 0;
	char **reqs = NULL;
	size_t n = 0;
	/* Separated by spaces or commas. */
	int rc = udfb_req_list_parse(&reqs, &n, cfg->runtime_packages, " ,\t\n", err);
	if (rc < 0)
		udfb_err_wrap(err, "runtime_packages");
	char *dest = udfb_asprintf("oci:%s/runtimes", cfg->store);
	if (rc == 0 && n > 0) {
		udfb_info("runtime %s: composing base %s with the runtime packages %s (resolved from the package "
			  "indexes, one layer per wheel)",
			  runtime, base_ref, cfg->runtime_packages);
		long long t0 = udfb_now_ms();
		struct udfb_build_opts o = { .store_dir = cfg->store,
					     .base = base_ref,
					     .dest = dest,
					     .salt = cfg->salt,
					     .platform = cfg->platform,
					     .fetch = &cfg->fetch,
					     .packages = &cfg->packages };
		struct udfb_build_result r;
		if (udfb_build_warm(&r, reqs, n, runtime, &o, err) == 0) {
			udfb_info("runtime %s: base composed with %s in %lld ms (%s, %d wheels installed): %s", runtime,
				  cfg->runtime_packages, udfb_now_ms() - t0, r.cached ? "found in the store" : "built",
				  (int)r.package_installs, r.image);
			/* By its tag (made from the warm key, so it never moves): the
			 * base resolver reads an OCI layout by tag. */
			*out = udfb_strdup(r.image);
			char *at = strrchr(*out, '@');
			if (at)
				*at = '\0';
			udfb_build_result_free(&r);
		} else {
			/* No index answered, or it lacks a package: the plain base
			 * serves what it can, and check_runtime says what it lacks. */
			udfb_warn("runtime %s: runtime packages %s not installed: %s; using the base as it is", runtime,
				  cfg->runtime_packages, err->msg);
			udfb_err_clear(err);
		}
	}
	udfb_req_list_free(reqs, n);
	free(dest);
	return rc;
}
