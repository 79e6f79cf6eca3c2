/* Layers: the same entries give the same bytes whatever the order they were
 * added in; the tar read back has what ../shared/docs/images.md demands (sorted,
 * explicit parents, mtime 0, root-owned, fixed modes, no pax time records). */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <locale.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>
#include <zlib.h>

#include "check.h"
#include "tmpfiles.h"
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

/* libarchive reads name back from the layer at path with this content. */
static void check_tar_file(const char *path, const char *name, const unsigned char *want, size_t n)
{
	struct archive *a = archive_read_new();
	archive_read_support_filter_gzip(a);
	archive_read_support_format_tar(a);
	archive_read_open_filename(a, path, 10240);
	struct archive_entry *e;
	int ok = 0, entries = 0;
	static unsigned char got[1 << 18];
	while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
		entries++;
		if (strcmp(archive_entry_pathname(e), name) != 0)
			continue;
		size_t have = 0;
		la_ssize_t k;
		while ((k = archive_read_data(a, got + have, sizeof(got) - have)) > 0)
			have += (size_t)k;
		ok = k == 0 && have == n && memcmp(got, want, n) == 0;
	}
	int end = entries == 6;
	archive_read_free(a);
	CHECK(ok && end, "libarchive reads %s back from the spliced layer (%d entries)", name, entries);
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

/* All gzip members of path inflated (zlib, a fresh window per member), or
 * NULL when any of them is bad. */
static unsigned char *gunzip_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	static unsigned char in[1 << 22];
	size_t n = fread(in, 1, sizeof(in), f);
	fclose(f);
	size_t cap = 1 << 22, got = 0;
	unsigned char *out = malloc(cap);
	z_stream z = { 0 };
	if (inflateInit2(&z, 16 + 15) != Z_OK)
		return NULL;
	z.next_in = in;
	z.avail_in = (uInt)n;
	int rc = Z_OK, members = 0;
	while (z.avail_in > 0) {
		z.next_out = out + got;
		z.avail_out = (uInt)(cap - got);
		rc = inflate(&z, Z_NO_FLUSH);
		got = cap - z.avail_out;
		if (rc == Z_STREAM_END) {
			members++;
			inflateReset(&z);
		} else if (rc != Z_OK) {
			break;
		}
	}
	inflateEnd(&z);
	*len = got;
	if (rc != Z_STREAM_END || members < 2) {
		free(out);
		return NULL;
	}
	return out;
}

static int spliced_layer(struct udfb_layer *out, const char *tmp, const char *file, const char *raw, long long raw_len,
			 uint32_t crc, int diff_id_first)
{
	struct udfb_err err = UDFB_ERR_INIT;
	struct udfb_layer_writer *w;
	udfb_layer_writer_new(&w);
	udfb_layer_writer_set_level(w, 1);
	udfb_layer_add_bytes(w, "app/a.txt", "a\n", 2, 0, &err);
	udfb_layer_add_file_range(w, "app/before.bin", file, 10, 700, 0, &err);
	if (raw) {
		struct udfb_layer_splice sp = { raw, 3, raw_len, crc };
		udfb_layer_add_file_spliced(w, "app/big.bin", file, 0, 100000, 1, &sp, &err);
		udfb_layer_add_file_spliced(w, "app/big2.bin", file, 0, 100000, 0, &sp, &err);
	} else {
		udfb_layer_add_file_range(w, "app/big.bin", file, 0, 100000, 1, &err);
		udfb_layer_add_file_range(w, "app/big2.bin", file, 0, 100000, 0, &err);
	}
	udfb_layer_add_bytes(w, "app/z.txt", "z\n", 2, 0, &err);
	char diff_id[UDFB_DIGEST_LEN + 1];
	if (diff_id_first && udfb_layer_diff_id(diff_id, w, &err) < 0)
		printf("# %s\n", err.msg);
	int rc = udfb_layer_write(out, w, tmp, &err);
	if (rc < 0)
		printf("# %s\n", err.msg);
	udfb_err_clear(&err);
	return rc;
}

/* A spliced file: the same tar (diff_id) as the plain range, the stream's
 * bytes verbatim in the blob, every member valid, the same bytes twice. */
static void check_splice(const char *tmp, const char *file)
{
	static unsigned char content[100000], comp[120000];
	FILE *f = fopen(file, "rb");
	size_t n = fread(content, 1, sizeof(content), f);
	fclose(f);
	z_stream z = { 0 };
	deflateInit2(&z, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
	z.next_in = content;
	z.avail_in = (uInt)n;
	z.next_out = comp + 3; /* at an offset: the splice reads a range */
	z.avail_out = sizeof(comp) - 3;
	deflate(&z, Z_FINISH);
	long long clen = (long long)z.total_out;
	deflateEnd(&z);
	uint32_t crc = (uint32_t)crc32(0, content, (uInt)n);
	char *raw = udfb_path_join(tmp, "raw.bin");
	f = fopen(raw, "wb");
	fwrite(comp, 1, (size_t)clen + 3, f);
	fclose(f);
	struct udfb_layer plain, s1, s2, s3;
	CHECK(spliced_layer(&plain, tmp, file, NULL, 0, 0, 0) == 0 &&
		      spliced_layer(&s1, tmp, file, raw, clen, crc, 0) == 0 &&
		      spliced_layer(&s2, tmp, file, raw, clen, crc, 0) == 0 &&
		      spliced_layer(&s3, tmp, file, raw, clen, crc, 1) == 0,
	      "layers with and without spliced files written");
	CHECK(strcmp(s1.digest, s3.digest) == 0 && strcmp(s1.diff_id, s3.diff_id) == 0,
	      "its diff_id asked first (a small tar kept), the same blob");
	CHECK(strcmp(plain.diff_id, s1.diff_id) == 0, "a spliced file leaves the tar as it was (diff_id %s)",
	      s1.diff_id);
	CHECK(strcmp(plain.digest, s1.digest) != 0, "and changes the blob");
	CHECK(strcmp(s1.digest, s2.digest) == 0 && s1.size == s2.size, "spliced twice, the same blob");
	size_t len = 0;
	unsigned char *tar = gunzip_all(s1.path, &len);
	char got[UDFB_DIGEST_LEN + 1] = "";
	if (tar)
		udfb_sha256_digest(tar, len, got);
	CHECK(tar && strcmp(got, s1.diff_id) == 0, "zlib inflates every member to the tar of the diff_id");
	free(tar);
	unsigned char *blob = malloc((size_t)s1.size);
	f = fopen(s1.path, "rb");
	size_t bn = fread(blob, 1, (size_t)s1.size, f);
	fclose(f);
	CHECK(bn == (size_t)s1.size && memmem(blob, bn, comp + 3, (size_t)clen) != NULL,
	      "the blob holds the deflate stream as it was given");
	free(blob);
	check_tar_file(s1.path, "app/big.bin", content, n);
	udfb_layer_clear(&plain);
	udfb_layer_clear(&s1);
	udfb_layer_clear(&s2);
	udfb_layer_clear(&s3);
	free(raw);
}

/* A layer of a few MiB: its blob goes out through the writer thread in
 * many buffers; spliced from memory or from files, the same bytes, and
 * the digest and size describe the file written. */
static void check_big(const char *tmp, const char *file)
{
	enum { BIG = 5 << 19 }; /* 2.5 MiB: the tar stays within gunzip_all's 4 MiB */
	unsigned char *noise = malloc(BIG);
	unsigned x = 7;
	for (size_t k = 0; k < BIG; k++) {
		x = x * 1103515245u + 12345u;
		noise[k] = (unsigned char)(x >> 16);
	}
	static unsigned char content[100000], comp[120000];
	FILE *f = fopen(file, "rb");
	size_t n = fread(content, 1, sizeof(content), f);
	fclose(f);
	z_stream z = { 0 };
	deflateInit2(&z, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
	z.next_in = content;
	z.avail_in = (uInt)n;
	z.next_out = comp;
	z.avail_out = sizeof(comp);
	deflate(&z, Z_FINISH);
	size_t clen = z.total_out;
	deflateEnd(&z);
	uint32_t crc = (uint32_t)crc32(0, content, (uInt)n);
	char *raw = udfb_path_join(tmp, "raw-big.bin");
	f = fopen(raw, "wb");
	fwrite(comp, 1, clen, f);
	fclose(f);
	struct udfb_layer l[2];
	struct udfb_err err = UDFB_ERR_INIT;
	for (int mem = 0; mem < 2; mem++) {
		struct udfb_layer_writer *w;
		udfb_layer_writer_new(&w);
		udfb_layer_writer_set_level(w, 1);
		udfb_layer_add_bytes(w, "app/noise.bin", noise, BIG, 0, &err);
		for (int k = 0; k < 10; k++) {
			char name[32];
			snprintf(name, sizeof(name), "app/s%02d.bin", k);
			struct udfb_layer_splice sp = { raw, 0, (long long)clen, crc };
			if (mem)
				udfb_layer_add_bytes_spliced(w, name, content, n, 0, comp, clen, crc, &err);
			else
				udfb_layer_add_file_spliced(w, name, file, 0, (long long)n, 0, &sp, &err);
		}
		CHECK(udfb_layer_write(&l[mem], w, tmp, &err) == 0, "a %lld-byte layer written (%s)",
		      (long long)l[mem].size, mem ? "spliced from memory" : "spliced from files");
		udfb_err_clear(&err);
	}
	CHECK(strcmp(l[0].digest, l[1].digest) == 0 && strcmp(l[0].diff_id, l[1].diff_id) == 0 &&
		      l[0].size == l[1].size,
	      "  the same bytes from memory as from files");
	char got[UDFB_DIGEST_LEN + 1];
	long long size = 0;
	udfb_sha256_file(got, &size, l[1].path, &err);
	CHECK(strcmp(got, l[1].digest) == 0 && size == l[1].size && size > (2 << 20),
	      "  digest and size describe the file written");
	size_t len = 0;
	unsigned char *tar = gunzip_all(l[1].path, &len);
	if (tar)
		udfb_sha256_digest(tar, len, got);
	CHECK(tar && strcmp(got, l[1].diff_id) == 0, "  and it inflates to the tar of the diff_id");
	free(tar);
	udfb_layer_clear(&l[0]);
	udfb_layer_clear(&l[1]);
	free(raw);
	free(noise);
}

/* A blob whose write fails half-way (a full disk, here a file size limit:
 * EFBIG) fails the layer with the write's error, from the writer thread,
 * and leaves no file behind: in a file compressed here, and in a member
 * spliced from a deflate stream. */
static void check_write_error(const char *tmp)
{
	enum { BIG = 2 << 20, COPIES = 4 };
	unsigned char *noise = malloc(BIG), *comp = malloc(BIG + BIG / 8);
	unsigned x = 11;
	for (size_t k = 0; k < BIG; k++)
		noise[k] = (unsigned char)((x = x * 1103515245u + 12345u) >> 16);
	z_stream z = { 0 };
	deflateInit2(&z, 1, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
	z.next_in = noise;
	z.avail_in = BIG;
	z.next_out = comp;
	z.avail_out = BIG + BIG / 8;
	deflate(&z, Z_FINISH);
	size_t clen = z.total_out;
	deflateEnd(&z);
	uint32_t crc = (uint32_t)crc32(0, noise, BIG);
	for (int spliced = 0; spliced < 2; spliced++) {
		struct udfb_layer_writer *w;
		udfb_layer_writer_new(&w);
		udfb_layer_writer_set_level(w, 1);
		struct udfb_err err = UDFB_ERR_INIT;
		for (int k = 0; k < COPIES; k++) {
			char name[32];
			snprintf(name, sizeof(name), "app/n%d.bin", k);
			if (spliced)
				udfb_layer_add_bytes_spliced(w, name, noise, BIG, 0, comp, clen, crc, &err);
			else
				udfb_layer_add_bytes(w, name, noise, BIG, 0, &err);
		}
		struct rlimit old, small = { 1 << 20, 1 << 20 };
		getrlimit(RLIMIT_FSIZE, &old);
		signal(SIGXFSZ, SIG_IGN);
		setrlimit(RLIMIT_FSIZE, &small);
		struct udfb_layer l = { 0 };
		int before = count_temporaries(tmp);
		int rc = udfb_layer_write(&l, w, tmp, &err);
		setrlimit(RLIMIT_FSIZE, &old);
		signal(SIGXFSZ, SIG_DFL);
		CHECK(rc < 0 && err.msg && strstr(err.msg, "write layer") && strstr(err.msg, strerror(EFBIG)) &&
			      !l.path && count_temporaries(tmp) == before,
		      "a blob's write failing half-way (%s) fails the layer with its error: %s",
		      spliced ? "spliced members" : "compressed here", err.msg ? err.msg : "(none)");
		udfb_err_clear(&err);
	}
	free(noise);
	free(comp);
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
	check_splice(tmp, file);
	check_big(tmp, file);
	check_write_error(tmp);
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
	free(file);
	udfb_rm_rf(tmp);
	return check_done();
}
