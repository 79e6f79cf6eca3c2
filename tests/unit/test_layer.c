/* Layers: the same entries give the same bytes whatever the order they were
 * added in; the tar read back has what ../shared/docs/images.md demands (sorted,
 * explicit parents, mtime 0, root-owned, fixed modes, no pax time records). */
#include <archive.h>
#include <archive_entry.h>
#include <locale.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "common/fsutil.h"
#include "image/layer.h"

/* mode 1: the diff_id first (the writer keeps the small tar for the
 * write); mode 2: the same, then one more file (the kept tar is stale). */
static int build_mode(struct udfb_layer *out, const char *tmp, int reversed, const char *file, int mode)
{
	struct udfb_err err = UDFB_ERR_INIT;
	struct udfb_layer_writer *w;
	udfb_layer_writer_new(&w);
	const char *names[] = { "app/z.txt", "app/imports/h\xc3\xa9llo.py", "app/a.txt" };
	for (int k = 0; k < 3; k++) {
		const char *n = names[reversed ? 2 - k : k];
		udfb_layer_add_bytes(w, n, n, strlen(n), 0, &err);
	}
	if (mode != 2)
		udfb_layer_add_file(w, "app/imports/big.bin", file, 100000, 0, &err);
	char diff_id[UDFB_DIGEST_LEN + 1];
	if (mode && udfb_layer_diff_id(diff_id, w, &err) < 0)
		printf("# %s\n", err.msg);
	if (mode == 2)
		udfb_layer_add_file(w, "app/imports/big.bin", file, 100000, 0, &err);
	int rc = udfb_layer_write(out, w, tmp, &err);
	if (rc == 0 && mode == 1 && strcmp(diff_id, out->diff_id) != 0)
		rc = -1, printf("# diff_id pass %s, write %s\n", diff_id, out->diff_id);
	if (rc < 0)
		printf("# %s\n", err.msg);
	udfb_err_clear(&err);
	return rc;
}

static int build(struct udfb_layer *out, const char *tmp, int reversed, const char *file)
{
	return build_mode(out, tmp, reversed, file, 0);
}

static void check_tar(const char *path)
{
	struct archive *a = archive_read_new();
	archive_read_support_filter_gzip(a);
	archive_read_support_format_tar(a);
	CHECK(archive_read_open_filename(a, path, 10240) == ARCHIVE_OK, "layer reads back as tar+gzip");
	struct archive_entry *e;
	const char *want[] = {
		"app/", "app/a.txt", "app/imports/", "app/imports/big.bin", "app/imports/h\xc3\xa9llo.py", "app/z.txt"
	};
	int k = 0, ok = 1;
	while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
		const char *p = archive_entry_pathname_utf8(e);
		if (k >= 6 || !p || strcmp(p, want[k]) != 0)
			ok = 0, printf("# entry %d: %s\n", k, p ? p : "?");
		int dir = archive_entry_filetype(e) == AE_IFDIR;
		if (archive_entry_mtime(e) != 0 || archive_entry_uid(e) != 0 || archive_entry_gid(e) != 0 ||
		    (archive_entry_perm(e) != (dir ? 0755 : 0644)) || archive_entry_atime_is_set(e) ||
		    archive_entry_ctime_is_set(e))
			ok = 0, printf("# entry %s has a varying field\n", p);
		k++;
	}
	CHECK(ok && k == 6, "entries sorted, parents explicit, mtime 0, uid/gid 0, modes fixed, no atime/ctime");
	archive_read_free(a);
}

/* add_file's executable flag gives 0755, as add_bytes's does. */
static void check_exec(const char *tmp, const char *file)
{
	struct udfb_err err = UDFB_ERR_INIT;
	struct udfb_layer_writer *w;
	udfb_layer_writer_new(&w);
	udfb_layer_add_file(w, "bin/tool", file, 100000, 1, &err);
	udfb_layer_add_file(w, "lib/data", file, 100000, 0, &err);
	udfb_layer_add_file_range(w, "lib/range", file, 99990, 5, 1, &err);
	udfb_layer_add_symlink(w, "app", "/tmp/app", &err);
	struct udfb_layer l;
	CHECK(udfb_layer_write(&l, w, tmp, &err) == 0, "layer with an executable file written");
	struct archive *a = archive_read_new();
	archive_read_support_filter_gzip(a);
	archive_read_support_format_tar(a);
	archive_read_open_filename(a, l.path, 10240);
	struct archive_entry *e;
	int tool = 0, data = 0, range_ok = 0, link = 0;
	while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
		if (strcmp(archive_entry_pathname(e), "app") == 0)
			link = archive_entry_filetype(e) == AE_IFLNK && archive_entry_symlink(e) &&
			       strcmp(archive_entry_symlink(e), "/tmp/app") == 0 && archive_entry_uid(e) == 0 &&
			       archive_entry_mtime(e) == 0;
		if (strcmp(archive_entry_pathname(e), "lib/range") == 0) {
			unsigned char got[8];
			range_ok = archive_entry_size(e) == 5 && archive_read_data(a, got, 8) == 5 &&
				   archive_entry_perm(e) == 0755;
			for (int i = 0; i < 5; i++)
				range_ok &= got[i] == (((99990 + i) * 7919) & 0xff);
		}
		if (strcmp(archive_entry_pathname(e), "bin/tool") == 0)
			tool = archive_entry_perm(e);
		if (strcmp(archive_entry_pathname(e), "lib/data") == 0)
			data = archive_entry_perm(e);
	}
	archive_read_free(a);
	CHECK(tool == 0755 && data == 0644, "add_file: executable 0755, other 0644 (got %o, %o)", tool, data);
	CHECK(link, "add_symlink: a symbolic link to its target, root-owned, mtime 0");
	CHECK(range_ok, "add_file_range: the bytes at the offset");
	udfb_layer_clear(&l);
	udfb_err_clear(&err);
}

int main(void)
{
	setlocale(LC_ALL, "C.UTF-8"); /* for the reader below; the writer needs none */
	char tmp[] = "/tmp/udfb-layer-XXXXXX";
	if (!mkdtemp(tmp))
		return 1;
	char *file = udfb_path_join(tmp, "src.bin");
	FILE *f = fopen(file, "w");
	for (int i = 0; i < 100000; i++)
		fputc((i * 7919) & 0xff, f);
	fclose(f);
	struct udfb_layer a, b;
	CHECK(build(&a, tmp, 0, file) == 0 && build(&b, tmp, 1, file) == 0, "two layers written");
	CHECK(strcmp(a.digest, b.digest) == 0 && strcmp(a.diff_id, b.diff_id) == 0 && a.size == b.size,
	      "insertion order does not change the bytes");
	char got[UDFB_DIGEST_LEN + 1];
	long long size = 0;
	struct udfb_err err = UDFB_ERR_INIT;
	udfb_sha256_file(got, &size, a.path, &err);
	CHECK(strcmp(got, a.digest) == 0 && size == a.size, "digest and size describe the file written");
	check_tar(a.path);
	for (int mode = 1; mode <= 2; mode++) {
		struct udfb_layer c;
		CHECK(build_mode(&c, tmp, mode == 2, file, mode) == 0 && strcmp(a.digest, c.digest) == 0 &&
			      strcmp(a.diff_id, c.diff_id) == 0 && a.size == c.size,
		      mode == 1 ? "a layer written after its diff_id (from the kept tar) has the same bytes"
				: "a file added after the diff_id is in the layer written");
		udfb_layer_clear(&c);
	}
	struct udfb_layer_writer *w;
	udfb_layer_writer_new(&w);
	CHECK(udfb_layer_add_bytes(w, "app/../etc/passwd", "x", 1, 0, &err) < 0, "a '..' component is refused");
	udfb_err_clear(&err);
	CHECK(udfb_layer_add_bytes(w, "/etc/passwd", "x", 1, 0, &err) < 0, "an absolute path is refused");
	udfb_err_clear(&err);
	CHECK(udfb_layer_add_bytes(w, "app/f", "x", 1, 0, &err) == 0 && udfb_layer_contains(w, "app/f") == 1 &&
		      udfb_layer_contains(w, "app") == 2 && !udfb_layer_contains(w, "app/g"),
	      "contains sees files and parents");
	CHECK(udfb_layer_add_bytes(w, "app/f/g", "x", 1, 0, &err) < 0, "a file cannot be a parent directory");
	udfb_err_clear(&err);
	udfb_layer_writer_free(w);
	check_exec(tmp, file);
	udfb_layer_clear(&a);
	udfb_layer_clear(&b);
	unlink(file);
	free(file);
	rmdir(tmp);
	return check_done();
}
