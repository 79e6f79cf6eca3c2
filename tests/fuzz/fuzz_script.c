/* Fuzz target: a Databend script (ApplyResource/CreateWorker `script`),
 * through the template recogniser, the PEP 508 parser of its packages, the
 * imports JSON, and on to the request the service builds from it; and the
 * script_mode = run path (builder/run.h): the content checks before a run,
 * the key's text without query strings, the imports' URLs and their hosts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "builder/request.h"
#include "builder/run.h"
#include "builder/script.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct udfb_script s;
	struct udfb_err err = UDFB_ERR_INIT;
	if (udfb_script_parse(&s, (const char *)data, size, &err) == 0) {
		if (!s.code || !s.stub || !s.handler || !s.result_type)
			abort(); /* a parsed script has every part */
		size_t len = 0;
		char *spec = udfb_script_spec_json(&s, &len);
		if (!spec)
			abort();
		struct udfb_import *ims = calloc(s.n_imports + 1, sizeof(*ims));
		for (size_t k = 0; k < s.n_imports; k++)
			ims[k] = (struct udfb_import){ s.imports[k].location, s.imports[k].url, "" };
		struct udfb_request r;
		if (udfb_request_from_parts(&r, spec, len, ims, s.n_imports, &err) == 0)
			udfb_request_free(&r);
		else if (!err.msg)
			abort();
		udfb_err_clear(&err);
		free(ims);
		free(spec);
		udfb_script_free(&s);
	} else if (!err.msg || err.cat != UDFB_E_INVALID) {
		abort(); /* every refusal explains itself, as INVALID_ARGUMENT */
	}
	udfb_err_clear(&err);
	if (udfb_script_check_run((const char *)data, size, &err) < 0 && (!err.msg || err.cat != UDFB_E_INVALID))
		abort();
	udfb_err_clear(&err);
	size_t ulen = 0, n = 0;
	char *u = udfb_run_unsigned((const char *)data, size, &ulen);
	if (ulen > size || strlen(u) > ulen)
		abort(); /* only ever shorter */
	free(u);
	char **urls = udfb_run_import_urls((const char *)data, size, &n);
	for (size_t k = 0; k < n; k++) {
		char *host = NULL;
		int port = 0;
		if (udfb_run_host_port(urls[k], &host, &port, &err) == 0 && (!host || port < 1 || port > 65535))
			abort();
		free(host);
		udfb_err_clear(&err);
	}
	udfb_run_urls_free(urls);
	return 0;
}
