/* Fuzz target: the input as a wheel file: its METADATA read, then the
 * whole install into a layer, written when the install succeeds.  Every
 * failure must explain itself, and nothing may stay behind.  A layer
 * written must inflate (every gzip member, spliced deflate streams of the
 * wheel's among them) to exactly the tar its diff_id names. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "common/fsutil.h"
#include "image/layer.h"
#include "python/wheel.h"

/* sha256 of every member of the gzip file at path, inflated, == diff_id. */
static void check_inflates_to(const char *path, const char *diff_id)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		abort();
	z_stream z = { 0 };
	if (inflateInit2(&z, 16 + 15) != Z_OK)
		abort();
	struct udfb_sha256 *h = udfb_sha256_new();
	static unsigned char in[1 << 16], out[1 << 16];
	int rc = Z_OK;
	size_t n;
	while ((n = fread(in, 1, sizeof(in), f)) > 0) {
		z.next_in = in;
		z.avail_in = (uInt)n;
		while (z.avail_in > 0) {
			z.next_out = out;
			z.avail_out = sizeof(out);
			rc = inflate(&z, Z_NO_FLUSH);
			udfb_sha256_update(h, out, sizeof(out) - z.avail_out);
			if (rc == Z_STREAM_END)
				inflateReset(&z); /* the next member */
			else if (rc != Z_OK && rc != Z_BUF_ERROR)
				abort();
		}
	}
	fclose(f);
	inflateEnd(&z);
	char got[UDFB_DIGEST_LEN + 1];
	udfb_sha256_final(h, got);
	if (rc != Z_STREAM_END || strcmp(got, diff_id) != 0)
		abort();
}

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
		check_inflates_to(layer.path, layer.diff_id);
		udfb_layer_clear(&layer);
	} else {
		udfb_layer_writer_free(w);
	}
	explained(rc, &err);
	udfb_rm_rf(dir);
	free(path);
	return 0;
}
