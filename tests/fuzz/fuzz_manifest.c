/* Fuzz target: an image manifest as a registry or a layout serves it
 * (image/manifest.h).  A manifest that parses has only valid digests and
 * sizes; a refused one says why on one line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct udfb_manifest m;
	struct udfb_err err = UDFB_ERR_INIT;
	if (udfb_manifest_parse(&m, (const char *)data, size, "fuzz", &err) == 0) {
		if (!udfb_digest_valid(m.config.digest) || m.config.size < 0 || !m.config.media_type)
			abort();
		for (size_t k = 0; k < m.n_layers; k++)
			if (!udfb_digest_valid(m.layers[k].digest) || m.layers[k].size < 0 || !m.layers[k].media_type ||
			    !json_is_object(m.layers[k].json))
				abort();
		udfb_manifest_clear(&m);
	} else if (!err.msg || err.cat != UDFB_E_INVALID || strchr(err.msg, '\n')) {
		abort();
	}
	udfb_err_clear(&err);
	return 0;
}
