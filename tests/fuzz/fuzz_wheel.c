/* Fuzz target: the input as a wheel file: its METADATA read, then the
 * whole install into a layer, written when the install succeeds.  Every
 * failure must explain itself, and nothing may stay behind.  A layer
 * written must inflate (every gzip member, spliced deflate streams of the
 * wheel's among them) to exactly the tar its diff_id names.  Each input is
 * installed twice, its packs in files and in memory (the stored bytes used
 * where the mapped wheel holds them): both fail, or both make the same
 * layer. */
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

/* The install and its layer; packs in memory when mem (any size), else
 * in files.  0 with the layer's digest, or -1. */
static int install(const char *path, const char *dir, int mem, char digest[UDFB_DIGEST_LEN + 1])
{
	struct udfb_err err = UDFB_ERR_INIT;
	struct udfb_layer_writer *w;
	udfb_layer_writer_new(&w);
	struct udfb_wheel_install_opts o = { "app/packages", "/usr/bin/env python3", dir, "udf-builder" };
	o.mem_pack_max = mem ? 0 : -1;
	o.mem_pack_min = -1;
	int rc = udfb_wheel_install(w, path, &o, &err);
	if (rc == 0) {
		struct udfb_layer layer;
		if (udfb_layer_write(&layer, w, dir, &err) < 0)
			abort(); /* an installed wheel always makes a layer */
		check_inflates_to(layer.path, layer.diff_id);
		memcpy(digest, layer.digest, UDFB_DIGEST_LEN + 1);
		udfb_layer_clear(&layer);
	} else {
		udfb_layer_writer_free(w);
	}
	explained(rc, &err);
	return rc;
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

	char digest[2][UDFB_DIGEST_LEN + 1] = { "", "" };
	int ok[2];
	for (int mem = 0; mem < 2; mem++)
		ok[mem] = install(path, dir, mem, digest[mem]) == 0;
	if (ok[0] != ok[1] || strcmp(digest[0], digest[1]) != 0)
		abort();
	udfb_rm_rf(dir);
	free(path);
	return 0;
}
