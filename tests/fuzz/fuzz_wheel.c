/* Fuzz target: the input as a wheel file: its METADATA read, then the
 * whole install into a layer, written when the install succeeds.  Every
 * failure must explain itself, and nothing may stay behind. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fsutil.h"
#include "image/layer.h"
#include "python/wheel.h"

static void explained(int rc, struct udfb_err *err)
{
	if (rc < 0 && (!err->msg || err->cat == UDFB_E_OK))
		abort();
	udfb_err_clear(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char dir[] = "/tmp/udfb-fuzz-wheel-XXXXXX";
	if (!mkdtemp(dir))
		abort();
	/* Not a wheel file name: the dist-info name alone names the project. */
	char *path = udfb_path_join(dir, "input.whl");
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
		abort();
	struct udfb_err err = UDFB_ERR_INIT;
	char *text = NULL;
	size_t len = 0;
	int rc = udfb_wheel_read_metadata(&text, &len, path, &err);
	if (rc == 0 && (!text || strlen(text) != len))
		abort();
	free(text);
	explained(rc, &err);

	struct udfb_layer_writer *w;
	udfb_layer_writer_new(&w);
	struct udfb_wheel_install_opts o = { "app/packages", "/usr/bin/env python3", dir, "udf-builder" };
	rc = udfb_wheel_install(w, path, &o, &err);
	if (rc == 0) {
		struct udfb_layer layer;
		if (udfb_layer_write(&layer, w, dir, &err) < 0)
			abort(); /* an installed wheel always makes a layer */
		udfb_layer_clear(&layer);
	} else {
		udfb_layer_writer_free(w);
	}
	explained(rc, &err);
	udfb_rm_rf(dir);
	free(path);
	return 0;
}
