/* Fuzz target: a whole ApplyUdfResourceRequest in its proto3-JSON form,
 * which reaches the spec parser, the PEP 508/440 requirement parser, the
 * PEP 723 block finder and its TOML reader, and the cache key. */
#include <stdint.h>
#include <stdlib.h>

#include "key.h"
#include "request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct udfb_request r;
	struct udfb_err err = UDFB_ERR_INIT;
	if (udfb_request_parse_json(&r, (const char *)data, size, &err) == 0) {
		char key[UDFB_DIGEST_LEN + 1];
		struct udfb_key_inputs in = { &r, NULL, "linux/amd64", "" };
		if (udfb_key_compute(key, NULL, &in, &err) < 0)
			abort(); /* a parsed request always has a key */
		udfb_request_free(&r);
	} else if (!err.msg || err.cat == UDFB_E_OK) {
		abort(); /* every failure explains itself */
	}
	udfb_err_clear(&err);
	return 0;
}
