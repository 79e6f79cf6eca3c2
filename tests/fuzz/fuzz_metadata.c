/* Fuzz target: the text parsers of wheels on one input: core metadata,
 * the input as a wheel file name (ranked against a target's tags), RECORD
 * and entry_points.txt.  Every failure must explain itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "python/wheel.h"
#include "python/wheel_internal.h"

static void explained(int rc, struct udfb_err *err)
{
	if (rc < 0 && (!err->msg || err->cat == UDFB_E_OK))
		abort();
	udfb_err_clear(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct udfb_err err = UDFB_ERR_INIT;
	struct udfb_pkgmeta m;
	int rc = udfb_pkgmeta_parse(&m, text, size, &err);
	if (rc == 0) {
		if (!m.name[0] || !m.version[0])
			abort(); /* both are required */
		udfb_pkgmeta_free(&m);
	}
	explained(rc, &err);

	char *s = malloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';
	struct udfb_wheelname w;
	rc = udfb_wheelname_parse(&w, s, &err);
	if (rc == 0) {
		static struct udfb_pytags *tags;
		struct udfb_pytarget t = { 3, 12, 2, 36, "x86_64" };
		if (!tags && udfb_pytags_new(&tags, &t, &err) < 0)
			abort();
		int r = udfb_pytags_rank(tags, &w);
		if (r < -1 || r >= 987)
			abort();
		udfb_wheelname_free(&w);
	}
	explained(rc, &err);
	free(s);

	struct udfb_record rec;
	rc = udfb_record_parse(&rec, text, size, "fuzz", &err);
	if (rc == 0)
		udfb_record_free(&rec);
	explained(rc, &err);
	struct udfb_entry_points ep;
	rc = udfb_entry_points_parse(&ep, text, size, "fuzz", &err);
	if (rc == 0) {
		struct udfb_buf b;
		udfb_buf_init(&b, 1u << 20);
		for (size_t k = 0; k < ep.n; k++) {
			if (strchr(ep.v[k].name, '/') || udfb_entry_point_script(&b, &ep.v[k], "/usr/bin/python3") < 0)
				abort();
			udfb_buf_reset(&b);
		}
		udfb_buf_free(&b);
		udfb_entry_points_free(&ep);
	}
	explained(rc, &err);
	return 0;
}
