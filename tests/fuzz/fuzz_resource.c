/* Fuzz target: the messages of proto/resource.proto as the gRPC front end
 * receives them (the first byte picks ApplyResourceRequest,
 * CreateWorkerRequest, AlterWorkerRequest, DropWorkerRequest or
 * ListWorkersRequest; the rest is the wire bytes), and a script inside
 * through the parser into a request, as the service makes it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "builder/request.h"
#include "proto/resource.pb-c.h"
#include "builder/script.h"

static void script(const char *text)
{
	struct udfb_script s;
	struct udfb_err err = UDFB_ERR_INIT;
	if (udfb_script_parse(&s, text, strlen(text), &err) == 0) {
		size_t len = 0;
		char *spec = udfb_script_spec_json(&s, &len);
		struct udfb_import *ims = calloc(s.n_imports + 1, sizeof(*ims));
		for (size_t k = 0; k < s.n_imports; k++)
			ims[k] = (struct udfb_import){ s.imports[k].location, s.imports[k].url, "sha256:0",
						       s.imports[k].headers };
		struct udfb_request r;
		if (udfb_request_from_parts(&r, spec, len, ims, s.n_imports, &err) == 0)
			udfb_request_free(&r);
		free(ims);
		free(spec);
		udfb_script_free(&s);
	} else if (!err.msg) {
		abort();
	}
	udfb_err_clear(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const uint8_t *p = data + 1;
	size_t n = size - 1;
	switch (data[0] % 5) {
	case 0: {
		Resourceproto__ApplyResourceRequest *m = resourceproto__apply_resource_request__unpack(NULL, n, p);
		if (m) {
			script(m->script);
			resourceproto__apply_resource_request__free_unpacked(m, NULL);
		}
		break;
	}
	case 1: {
		Resourceproto__CreateWorkerRequest *m = resourceproto__create_worker_request__unpack(NULL, n, p);
		if (m) {
			for (size_t k = 0; k < m->n_tags; k++)
				if (!m->tags[k]->key || !m->tags[k]->value)
					abort(); /* the front end reads every entry's key and value */
			script(m->script);
			resourceproto__create_worker_request__free_unpacked(m, NULL);
		}
		break;
	}
	case 2: {
		Resourceproto__AlterWorkerRequest *m = resourceproto__alter_worker_request__unpack(NULL, n, p);
		if (m)
			resourceproto__alter_worker_request__free_unpacked(m, NULL);
		break;
	}
	case 3: {
		Resourceproto__DropWorkerRequest *m = resourceproto__drop_worker_request__unpack(NULL, n, p);
		if (m)
			resourceproto__drop_worker_request__free_unpacked(m, NULL);
		break;
	}
	default: {
		Resourceproto__ListWorkersRequest *m = resourceproto__list_workers_request__unpack(NULL, n, p);
		if (m)
			resourceproto__list_workers_request__free_unpacked(m, NULL);
		break;
	}
	}
	return 0;
}
