/* Fuzz target: a whole ApplyUdfResourceRequest, which reaches the spec
 * parser, the PEP 508/440 requirement parser, the PEP 723 block finder and
 * its TOML reader, and the cache key.  Two forms: the proto3-JSON request
 * (the CLI's), and, when the input starts like a protobuf message (0x0a,
 * field 1, or 0x12, field 2), the gRPC message as the front end takes it:
 * the wire check, protobuf-c, then the request from its parts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "builder/key.h"
#include "builder/request.h"
#include "proto/udf.pb-c.h"

static void keyed(struct udfb_request *r)
{
	char key[UDFB_DIGEST_LEN + 1];
	struct udfb_err err = UDFB_ERR_INIT;
	struct udfb_key_inputs in = { r, NULL, "linux/amd64", "" };
	if (udfb_key_compute(key, NULL, &in, &err) < 0)
		abort(); /* a parsed request always has a key */
	udfb_request_free(r);
}

static void from_message(const uint8_t *data, size_t size, struct udfb_err *err)
{
	if (udfb_request_check_wire(data, size, err) < 0)
		return;
	Udfproto__ApplyUdfResourceRequest *m = udfproto__apply_udf_resource_request__unpack(NULL, size, data);
	if (!m)
		return;
	struct udfb_import *ims = calloc(m->n_imports + 1, sizeof(*ims));
	for (size_t k = 0; k < m->n_imports; k++)
		ims[k] = (struct udfb_import){ m->imports[k]->location, m->imports[k]->url, m->imports[k]->tag };
	struct udfb_request r;
	if (udfb_request_from_parts(&r, m->spec, strlen(m->spec), ims, m->n_imports, err) == 0)
		keyed(&r);
	else if (!err->msg || err->cat == UDFB_E_OK)
		abort(); /* every failure explains itself */
	free(ims);
	udfproto__apply_udf_resource_request__free_unpacked(m, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct udfb_err err = UDFB_ERR_INIT;
	if (size && (data[0] == 0x0a || data[0] == 0x12)) {
		from_message(data, size, &err);
	} else {
		struct udfb_request r;
		if (udfb_request_parse_json(&r, (const char *)data, size, &err) == 0)
			keyed(&r);
		else if (!err.msg || err.cat == UDFB_E_OK)
			abort();
	}
	udfb_err_clear(&err);
	return 0;
}
