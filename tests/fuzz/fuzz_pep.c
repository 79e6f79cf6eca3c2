/* Fuzz target: a requirement string (PEP 508/440) and the same bytes as UDF
 * code holding a PEP 723 block.  The first byte picks the parser. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "python/pep508.h"
#include "python/pep723.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	char *s = malloc(size);
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	struct udfb_err err = UDFB_ERR_INIT;
	if (data[0] & 1) {
		struct udfb_requirement r;
		if (udfb_req_parse(&r, s, &err) == 0) {
			/* The canonical form is a fixed point. */
			struct udfb_requirement again;
			struct udfb_err e2 = UDFB_ERR_INIT;
			if (udfb_req_parse(&again, r.canonical, &e2) < 0 || strcmp(again.canonical, r.canonical) != 0)
				abort();
			udfb_req_free(&again);
			udfb_req_free(&r);
		}
	} else {
		struct udfb_pep723 m;
		if (udfb_pep723_parse(&m, s, size - 1, &err) == 0)
			udfb_pep723_free(&m);
	}
	udfb_err_clear(&err);
	free(s);
	return 0;
}
