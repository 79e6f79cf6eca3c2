/* The second pass of udfb_wheel_install: the files streamed from the zip,
 * hashed on the way and checked against RECORD, into one pack file under
 * o->tmpdir (creating a thousand small files costs far more than writing
 * their bytes); then the files pip generates (scripts, INSTALLER, RECORD).
 * Nothing is fsynced: the pack lives until the layer is written, and the
 * layer is what gets synced. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/fsutil.h"
#include "python/wheel.h"
#include "python/wheel_internal.h"

#define PACK_BUF (256u << 10)

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t k = write(fd, c, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -1;
		c += k;
		n -= (size_t)k;
	}
	return 0;
}

static void pack_flush(struct udfb_winst *in)
{
	if (in->wlen && !in->write_errno && write_all(in->pack_fd, in->wbuf, in->wlen) < 0)
		in->write_errno = errno;
	in->wlen = 0;
}

static void pack_write(struct udfb_winst *in, const void *p, size_t n)
{
	in->pack_len += (long long)n;
	if (in->wlen + n > PACK_BUF)
		pack_flush(in);
	if (n >= PACK_BUF) {
		if (!in->write_errno && write_all(in->pack_fd, p, n) < 0)
			in->write_errno = errno;
		return;
	}
	memcpy(in->wbuf + in->wlen, p, n);
	in->wlen += n;
}

/* The installed bytes of one file: into the pack, and through h when they
 * differ from the zip's (a rewritten script). */
struct out {
	struct udfb_winst *in;
	struct udfb_sha256 *h;
	long long n;
};

static void emit(struct out *o, const void *p, size_t n)
{
	if (!n)
		return;
	if (o->h)
		udfb_sha256_update(o->h, p, n);
	o->n += (long long)n;
	pack_write(o->in, p, n);
}

/* pip's fix_script: a first line starting "#!python" (also "#!pythonw")
 * becomes "#!<python>\n"; the rest is copied. */
struct shebang {
	const char *python;
	char head[8];
	size_t n_head;
	int decided, skipping;
};

static void shebang_feed(struct shebang *s, struct out *o, const char *p, size_t n)
{
	while (n) {
		if (!s->decided) {
			size_t take = sizeof(s->head) - s->n_head < n ? sizeof(s->head) - s->n_head : n;
			memcpy(s->head + s->n_head, p, take);
			s->n_head += take, p += take, n -= take;
			if (s->n_head < sizeof(s->head))
				return;
			s->decided = 1;
			if (memcmp(s->head, "#!python", 8) == 0) {
				s->skipping = 1;
				emit(o, "#!", 2);
				emit(o, s->python, strlen(s->python));
				emit(o, "\n", 1);
			} else {
				emit(o, s->head, s->n_head);
			}
			continue;
		}
		if (s->skipping) {
			const char *nl = memchr(p, '\n', n);
			if (!nl)
				return;
			s->skipping = 0;
			n -= (size_t)(nl + 1 - p);
			p = nl + 1;
			continue;
		}
		emit(o, p, n);
		return;
	}
}

static void shebang_end(struct shebang *s, struct out *o)
{
	if (!s->decided)
		emit(o, s->head, s->n_head); /* shorter than "#!python" */
}

static int bad_entry(struct udfb_winst *in, const struct udfb_wfile *f, const char *why, struct udfb_err *err)
{
	return udfb_err_set(err, UDFB_E_INVALID, "wheel '%s': entry '%.300s': %s", in->path, f->zipname, why);
}

/* A bomb of many small files, or of one that inflates slowly, costs time
 * before it costs bytes: the clock is read once per block (tens of
 * nanoseconds against inflating 64 KiB). */
static int too_late(struct udfb_winst *in, const struct udfb_wfile *f, struct udfb_err *err)
{
	if (!in->o->deadline_ms)
		return 0;
	if (udfb_now_ms() < in->o->deadline_ms)
		return 0;
	return udfb_err_set(err, UDFB_E_INVALID,
			    "wheel '%s': unpacking took too long at entry '%.300s' (packages-max-unpack-ms, for all "
			    "wheels of a build)",
			    in->path, f->zipname);
}

/* Read the current entry's bytes through h (the zip's bytes) into o. */
static int pump(struct udfb_winst *in, struct udfb_wzip *z, struct udfb_wfile *f, struct out *o, struct udfb_sha256 *h,
		long long limit, long long *got, struct udfb_err *err)
{
	struct shebang sb = { .python = in->o->python };
	for (;;) {
		if (too_late(in, f, err) < 0)
			return -1;
		const void *buf;
		size_t size;
		la_int64_t offset;
		int rc = archive_read_data_block(z->a, &buf, &size, &offset);
		if (rc == ARCHIVE_EOF)
			break;
		if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN)
			return bad_entry(in, f, archive_error_string(z->a), err);
		if (offset != *got)
			return bad_entry(in, f, "data with holes", err);
		if ((long long)size > limit - *got)
			return bad_entry(in, f, "larger than RECORD says (or the unpacked limit)", err);
		*got += (long long)size;
		udfb_sha256_update(h, buf, size);
		if (f->script)
			shebang_feed(&sb, o, buf, size);
		else
			emit(o, buf, size);
	}
	if (f->script)
		shebang_end(&sb, o);
	return 0;
}

/* Hash and size of the zip's bytes against RECORD's row. */
static int verify(struct udfb_winst *in, const struct udfb_wfile *f, const char *digest, long long size,
		  struct udfb_err *err)
{
	const struct udfb_record_row *row = udfb_record_find(&in->record, f->zipname);
	if (!row || (f->exempt && !row->hash[0]))
		return 0;
	char b64[WHEEL_B64_SHA256_LEN + 1];
	udfb_record_b64(b64, digest);
	if (strncmp(row->hash, "sha256=", 7) != 0)
		return bad_entry(in, f, "RECORD's hash is not sha256", err);
	if (strcmp(row->hash + 7, b64) != 0)
		return bad_entry(in, f, "sha256 differs from RECORD", err);
	if (row->size >= 0 && row->size != size)
		return bad_entry(in, f, "size differs from RECORD", err);
	return 0;
}

static int extract_one(struct udfb_winst *in, struct udfb_wzip *z, struct udfb_wfile *f, struct udfb_err *err)
{
	const struct udfb_record_row *row = udfb_record_find(&in->record, f->zipname);
	long long budget = in->limit - in->total;
	long long limit = row && row->size >= 0 && row->size < budget ? row->size : budget;
	struct udfb_sha256 *h = udfb_sha256_new();
	struct out o = { .in = in, .h = f->script ? udfb_sha256_new() : NULL };
	f->offset = in->pack_len;
	long long got = 0;
	int rc = pump(in, z, f, &o, h, limit, &got, err);
	in->total += got;
	char digest[UDFB_DIGEST_LEN + 1], out_digest[UDFB_DIGEST_LEN + 1];
	udfb_sha256_final(h, digest);
	if (o.h)
		udfb_sha256_final(o.h, out_digest);
	if (rc < 0 || verify(in, f, digest, got, err) < 0)
		return -1;
	f->out_size = o.n;
	udfb_record_b64(f->b64, o.h ? out_digest : digest);
	return 0;
}

static int extract_all(struct udfb_winst *in, struct udfb_wzip *z, struct udfb_err *err)
{
	struct archive_entry *e;
	const char *name;
	int is_dir, rc;
	size_t k = 0;
	while ((rc = udfb_wzip_next(z, &e, &name, &is_dir, err)) == 1) {
		if (is_dir)
			continue;
		/* The file changed under us if the names no longer line up. */
		if (k >= in->n_files || strcmp(in->files[k].zipname, name) != 0)
			return udfb_err_set(err, UDFB_E_INVALID, "wheel '%s': changed while being read", in->path);
		struct udfb_wfile *f = &in->files[k++];
		if (f->dest && extract_one(in, z, f, err) < 0)
			return -1;
	}
	if (rc == 0 && k != in->n_files)
		return udfb_err_set(err, UDFB_E_INVALID, "wheel '%s': changed while being read", in->path);
	return rc;
}

int udfb_wheel_extract(struct udfb_winst *in, struct udfb_err *err)
{
	if (udfb_mktemp(&in->pack, &in->pack_fd, in->o->tmpdir, err) < 0)
		return -1;
	in->wbuf = udfb_malloc(PACK_BUF);
	struct udfb_wzip z;
	if (udfb_wzip_open(&z, in->path, err) < 0)
		return -1;
	int rc = extract_all(in, &z, err);
	udfb_wzip_close(&z);
	return rc;
}

/* ---- generated files ---- */

static void write_gen(struct udfb_winst *in, struct udfb_wfile *g, const char *data, size_t len)
{
	g->offset = in->pack_len;
	pack_write(in, data, len);
	char digest[UDFB_DIGEST_LEN + 1];
	udfb_sha256_digest(data, len, digest);
	udfb_record_b64(g->b64, digest);
	g->out_size = (long long)len;
}

static int cmp_row(const void *a, const void *b)
{
	return strcmp((*(const struct udfb_wfile *const *)a)->dest, (*(const struct udfb_wfile *const *)b)->dest);
}

/* RECORD for the installed paths, sorted bytewise (pip sorts too). */
static int write_record(struct udfb_winst *in, struct udfb_wfile *record, struct udfb_err *err)
{
	size_t n = 0;
	const struct udfb_wfile **rows = udfb_malloc((in->n_files + in->n_gen) * sizeof(*rows));
	for (size_t k = 0; k < in->n_files; k++)
		if (in->files[k].dest)
			rows[n++] = &in->files[k];
	for (size_t k = 0; k < in->n_gen; k++)
		rows[n++] = &in->gen[k];
	qsort(rows, n, sizeof(*rows), cmp_row);
	struct udfb_buf b;
	/* 100,000 rows of 2 KiB quoted names at most. */
	udfb_buf_init(&b, 256u << 20);
	int rc = 0;
	for (size_t k = 0; k < n && rc == 0; k++)
		rc = udfb_record_add_row(&b, rows[k]->dest, rows[k] == record ? NULL : rows[k]->b64, rows[k]->out_size);
	free(rows);
	if (rc < 0)
		rc = udfb_err_set(err, UDFB_E_INVALID, "wheel '%s': RECORD too large", in->path);
	else
		write_gen(in, record, b.data ? b.data : "", b.len);
	udfb_buf_free(&b);
	return rc;
}

int udfb_wheel_generate(struct udfb_winst *in, struct udfb_err *err)
{
	/* add_gen's order in wheel.c: INSTALLER, one per entry point, RECORD. */
	struct udfb_buf b;
	udfb_buf_init(&b, 1u << 16);
	int rc = 0;
	if (udfb_buf_printf(&b, "%s\n", in->o->installer) < 0)
		rc = udfb_err_set(err, UDFB_E_INVALID, "INSTALLER: too long");
	else
		write_gen(in, &in->gen[0], b.data, b.len);
	for (size_t k = 0; rc == 0 && k < in->eps.n; k++) {
		udfb_buf_reset(&b);
		if (udfb_entry_point_script(&b, &in->eps.v[k], in->o->python) < 0)
			rc = udfb_err_set(err, UDFB_E_INVALID, "script '%s': too long", in->eps.v[k].name);
		else
			write_gen(in, &in->gen[1 + k], b.data, b.len);
	}
	udfb_buf_free(&b);
	if (rc == 0)
		rc = write_record(in, &in->gen[in->n_gen - 1], err);
	pack_flush(in);
	if (rc == 0 && in->write_errno)
		rc = udfb_err_sys(err, in->write_errno, "write %s", in->pack);
	return rc;
}
