/* The second pass of udfb_wheel_install: the files read from the zip with
 * libzip (which gives an entry's stored bytes as they are), inflated here
 * with libdeflate, hashed and checked against RECORD, into one pack; each
 * checked deflate stream goes to a second pack, the raw one, for the layer
 * to splice instead of compressing the content again (image/gzsplice.h);
 * then the files pip generates (scripts, INSTALLER, RECORD).
 * The packs are in memory when the wheel and its declared files fit in
 * mem_pack_max, and the layer writer takes them: the raw pack is then the
 * wheel's mapping (each stream where the zip holds it), and a file's
 * content is inflated where it stays (a stored one is used where the zip
 * holds it), so no byte is copied and no memory touched but the inflated
 * content's (fresh memory costs more than inflating into it, see
 * common/arena.h).  The pack is an arena for the rest: rewritten scripts,
 * the generated files.  Above the limit the packs are two files under
 * o->tmpdir (creating a thousand small files costs far more than writing
 * their bytes), never fsynced: a pack lives until the layer is written,
 * and the layer is what gets synced. */
#include <errno.h>
#include <fcntl.h>
#include <libdeflate.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zip.h>

#include "common/clock.h"
#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/fsutil.h"
#include "python/wheel.h"
#include "python/wheel_internal.h"

#define PACK_BUF (256u << 10)
/* Entries up to this size (both sizes) are read and inflated whole, in
 * memory, and their deflate streams spliced; larger ones are streamed. */
#define MEM_MAX (64ll << 20)
#define STREAM_BLOCK (64u << 10)

static void pack_flush(struct udfb_winst *in)
{
	if (in->mem)
		return;
	if (in->wlen && !in->write_errno && udfb_write_all(in->pack_fd, in->wbuf, in->wlen) < 0)
		in->write_errno = errno;
	in->wlen = 0;
}

static void pack_write(struct udfb_winst *in, const void *p, size_t n)
{
	in->pack_len += (long long)n;
	if (in->mem) {
		/* Reserved for every declared byte and then some: never full. */
		if (udfb_arena_add(&in->pack_mem, p, n) < 0 && !in->write_errno)
			in->write_errno = EFBIG;
		return;
	}
	if (in->wlen + n > PACK_BUF)
		pack_flush(in);
	if (n >= PACK_BUF) {
		if (!in->write_errno && udfb_write_all(in->pack_fd, p, n) < 0)
			in->write_errno = errno;
		return;
	}
	memcpy(in->wbuf + in->wlen, p, n);
	in->wlen += n;
}

/* Where the next bytes written to the pack go.  In memory that is past
 * what was inflated in place too. */
static long long pack_end(const struct udfb_winst *in)
{
	return in->mem ? (long long)in->pack_mem.len : in->pack_len;
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

/* The file's checked content c (the zip's bytes) out to the pack, a
 * script's first line rewritten. */
static void install_bytes(struct udfb_winst *in, struct udfb_wfile *f, struct out *o, struct shebang *sb, const void *c,
			  size_t n)
{
	(void)in;
	if (f->script)
		shebang_feed(sb, o, c, n);
	else
		emit(o, c, n);
}

static void *grow(unsigned char **buf, size_t *cap, size_t need)
{
	if (need > *cap) {
		free(*buf);
		*cap = need;
		*buf = udfb_malloc(need);
	}
	return *buf;
}

/* Stored and deflated entries up to MEM_MAX are read whole and checked in
 * batches: their stored bytes read here in zip order (libzip is not to be
 * shared between threads), then inflated, CRC'd and hashed on both cores,
 * then, in zip order again, checked against the zip and RECORD and written
 * out.  So errors and the packs' bytes are the same as one at a time. */
struct task {
	struct udfb_wfile *f;
	zip_uint64_t idx;
	zip_stat_t st;
	const unsigned char *raw; /* the stored bytes, in the wheel's mapping */
	unsigned char *out; /* where a deflated entry inflates to */
	const unsigned char *content; /* NULL: not one to splice, read it streamed() */
	int stored_bad; /* method 0 with two different sizes */
	uint32_t crc;
	char digest[UDFB_DIGEST_LEN + 1];
};

struct batch {
	struct task *v;
	size_t n, cap;
	/* The contents that do not stay where they are inflated (packs in
	 * files, scripts), kept from batch to batch: fresh pages for every
	 * entry cost a fault each, more than inflating them. */
	struct udfb_arena out;
	long long bytes, sizes; /* held in memory; content sizes */
	_Atomic size_t next;
};

#define BATCH_BYTES (4ll << 20)
/* What a batch can hold: under BATCH_BYTES, then one entry up to MEM_MAX. */
#define BATCH_MAX ((size_t)(BATCH_BYTES + MEM_MAX + 2))

/* The entry's stored bytes (raw deflate for method 8): where they are. */
static int locate_raw(struct udfb_winst *in, zip_t *z, struct task *t, struct udfb_err *err)
{
	zip_file_t *zf = zip_fopen_index(z, t->idx, ZIP_FL_COMPRESSED);
	if (!zf)
		return bad_entry(in, t->f, zip_strerror(z), err);
	t->raw = udfb_wsrc_stored(in->src, zf, t->st.comp_size);
	zip_fclose(zf);
	return t->raw ? 0 : bad_entry(in, t->f, "its stored bytes are not inside the file", err);
}

/* Method 8: the stored bytes must hold exactly one deflate stream that
 * ends (final block) at the entry's last byte and inflates, from an empty
 * window, to exactly the size the zip says; only then may the layer splice
 * it (libdeflate refuses a distance reaching before the start).  When it
 * does not, content stays NULL: the entry is read again the way pip reads
 * it (streamed(): zlib, lenient about a missing final block or bytes after
 * it), checked against RECORD the same, and compressed again. */
static void compute(struct task *t, struct libdeflate_decompressor *d)
{
	size_t comp = (size_t)t->st.comp_size, size = (size_t)t->st.size;
	const unsigned char *raw = t->raw;
	unsigned char *out = t->out;
	if (t->st.comp_method == ZIP_CM_STORE) {
		t->stored_bad = comp != size;
		t->content = t->stored_bad ? NULL : raw;
	} else {
		size_t used = 0, made = 0;
		enum libdeflate_result r = libdeflate_deflate_decompress_ex(d, raw, comp, out, size, &used, &made);
		t->content = r == LIBDEFLATE_SUCCESS && made == size && used == comp ? out : NULL;
	}
	if (!t->content)
		return;
	t->crc = (uint32_t)libdeflate_crc32(0, t->content, size);
	udfb_sha256_digest(t->content, size, t->digest);
}

struct worker {
	struct batch *b;
	struct libdeflate_decompressor *d;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	for (size_t k; (k = w->b->next++) < w->b->n;)
		compute(&w->b->v[k], w->d);
	return NULL;
}

/* Where each deflated entry inflates to: its place in the pack when it
 * stays as inflated there (packs in memory, not a script), else the
 * batch's buffer. */
static int place_outputs(struct udfb_winst *in, struct batch *b)
{
	size_t stay = 0, tmp = 0;
	for (size_t k = 0; k < b->n; k++) {
		struct task *t = &b->v[k];
		if (t->st.comp_method == ZIP_CM_DEFLATE)
			*(in->mem && !t->f->script ? &stay : &tmp) += (size_t)t->st.size;
	}
	udfb_arena_reset(&b->out);
	unsigned char *p = udfb_arena_push(&b->out, tmp + 1), *q = stay ? udfb_arena_push(&in->pack_mem, stay) : NULL;
	if (!p || (stay && !q))
		return -1;
	for (size_t k = 0; k < b->n; k++) {
		struct task *t = &b->v[k];
		if (t->st.comp_method != ZIP_CM_DEFLATE)
			continue;
		unsigned char **at = in->mem && !t->f->script ? &q : &p;
		t->out = *at;
		*at += (size_t)t->st.size;
	}
	return 0;
}

static int compute_all(struct udfb_winst *in, struct batch *b, struct udfb_err *err)
{
	if (!in->inflater && !(in->inflater = libdeflate_alloc_decompressor()))
		return udfb_err_set(err, UDFB_E_INTERNAL, "wheel '%s': no memory for a decompressor", in->path);
	b->next = 0;
	if (place_outputs(in, b) < 0)
		return udfb_err_set(err, UDFB_E_INTERNAL, "wheel '%s': a batch larger than its buffer", in->path);
	struct worker me = { b, in->inflater }, other = { b, NULL };
	pthread_t th;
	/* A second core when there is work for it: a thread costs tens of
	 * microseconds, a MiB of inflating and hashing a millisecond. */
	int two = b->n > 1 && b->bytes >= (1 << 20) && sysconf(_SC_NPROCESSORS_ONLN) > 1 &&
		  (other.d = libdeflate_alloc_decompressor()) != NULL && pthread_create(&th, NULL, work, &other) == 0;
	work(&me);
	if (two)
		pthread_join(th, NULL);
	libdeflate_free_decompressor(other.d);
	return 0;
}

/* One checked entry of the batch out, in zip order. */
static int finish_task(struct udfb_winst *in, zip_t *z, struct task *t, struct out *o, struct udfb_err *err);

static void reset_batch(struct batch *b)
{
	b->n = 0;
	b->bytes = b->sizes = 0;
}

/* Any other method, or an entry too large for memory: libzip inflates it
 * (checking its CRC-32) and the layer compresses it again. */
static int streamed(struct udfb_winst *in, zip_t *z, zip_uint64_t idx, const zip_stat_t *st, struct udfb_wfile *f,
		    struct out *o, long long limit, struct udfb_err *err)
{
	zip_file_t *zf = zip_fopen_index(z, idx, 0);
	if (!zf)
		return bad_entry(in, f, zip_strerror(z), err);
	struct udfb_sha256 *h = udfb_sha256_new();
	struct shebang sb = { .python = in->o->python };
	unsigned char *buf = grow(&in->rawbuf, &in->rawcap, STREAM_BLOCK);
	long long got = 0;
	int rc = 0;
	for (;;) {
		if ((rc = too_late(in, f, err)) < 0)
			break;
		zip_int64_t n = zip_fread(zf, buf, STREAM_BLOCK);
		if (n < 0) {
			rc = bad_entry(in, f, zip_file_strerror(zf), err);
			break;
		}
		if (n == 0)
			break;
		if (n > limit - got) {
			rc = bad_entry(in, f, "larger than RECORD says (or the unpacked limit)", err);
			break;
		}
		got += n;
		udfb_sha256_update(h, buf, (size_t)n);
		install_bytes(in, f, o, &sb, buf, (size_t)n);
	}
	zip_fclose(zf);
	in->total += got;
	char digest[UDFB_DIGEST_LEN + 1];
	udfb_sha256_final(h, digest);
	if (rc == 0 && (zip_uint64_t)got != st->size)
		rc = bad_entry(in, f, "inflates to other than the size the zip says", err);
	if (rc < 0 || verify(in, f, digest, got, err) < 0)
		return -1;
	if (f->script)
		shebang_end(&sb, o);
	else
		udfb_record_b64(f->b64, digest);
	return 0;
}

/* The most the entry may inflate to: RECORD's size, or what is left of
 * the limit once pending (batched) entries are counted. */
static long long entry_limit(struct udfb_winst *in, const struct udfb_wfile *f, long long pending)
{
	const struct udfb_record_row *row = udfb_record_find(&in->record, f->zipname);
	long long budget = in->limit - in->total - pending;
	return row && row->size >= 0 && row->size < budget ? row->size : budget;
}

/* Out to the pack through o, by fn (a batch's task or a streamed entry). */
static int extract_out(struct udfb_winst *in, struct udfb_wfile *f,
		       int (*fn)(struct udfb_winst *, zip_t *, void *, struct out *, struct udfb_err *), zip_t *z,
		       void *arg, struct udfb_err *err)
{
	struct out o = { .in = in, .h = f->script ? udfb_sha256_new() : NULL };
	f->offset = pack_end(in);
	int rc = fn(in, z, arg, &o, err);
	char out_digest[UDFB_DIGEST_LEN + 1];
	if (o.h)
		udfb_sha256_final(o.h, out_digest);
	if (rc < 0)
		return -1;
	f->out_size = o.n;
	if (f->script)
		udfb_record_b64(f->b64, out_digest);
	return 0;
}

struct stream_arg {
	zip_uint64_t idx;
	const zip_stat_t *st;
	struct udfb_wfile *f;
};

static int stream_fn(struct udfb_winst *in, zip_t *z, void *arg, struct out *o, struct udfb_err *err)
{
	struct stream_arg *a = arg;
	return streamed(in, z, a->idx, a->st, a->f, o, entry_limit(in, a->f, 0), err);
}

static int task_fn(struct udfb_winst *in, zip_t *z, void *arg, struct out *o, struct udfb_err *err)
{
	return finish_task(in, z, arg, o, err);
}

static int finish_task(struct udfb_winst *in, zip_t *z, struct task *t, struct out *o, struct udfb_err *err)
{
	struct udfb_wfile *f = t->f;
	size_t comp = (size_t)t->st.comp_size, size = (size_t)t->st.size;
	if (too_late(in, f, err) < 0)
		return -1;
	if (t->stored_bad)
		return bad_entry(in, f, "stored, but its sizes differ", err);
	if (!t->content)
		return streamed(in, z, t->idx, &t->st, f, o, entry_limit(in, f, 0), err);
	if (t->crc != t->st.crc)
		return bad_entry(in, f, "CRC-32 differs from the zip's", err);
	in->total += (long long)size;
	if (verify(in, f, t->digest, (long long)size, err) < 0)
		return -1;
	if (in->mem && !f->script) { /* the bytes stay where they are */
		f->data = t->content;
		o->n = (long long)size;
	} else {
		struct shebang sb = { .python = in->o->python };
		install_bytes(in, f, o, &sb, t->content, size);
		if (f->script)
			shebang_end(&sb, o);
	}
	if (!f->script)
		udfb_record_b64(f->b64, t->digest);
	if (t->st.comp_method != ZIP_CM_DEFLATE || f->script || comp < WHEEL_SPLICE_MIN)
		return 0;
	f->raw_len = (long long)comp;
	f->crc = t->crc;
	if (in->mem) { /* the raw pack is the mapping */
		f->raw_offset = (long long)(t->raw - in->src->p);
		return 0;
	}
	f->raw_offset = in->raw_len;
	in->raw_len += (long long)comp;
	if (!in->raw_errno && udfb_write_all(in->raw_fd, t->raw, comp) < 0)
		in->raw_errno = errno;
	return 0;
}

static int flush_batch(struct udfb_winst *in, zip_t *z, struct batch *b, struct udfb_err *err)
{
	int rc = b->n ? compute_all(in, b, err) : 0;
	for (size_t k = 0; k < b->n && rc == 0; k++)
		rc = extract_out(in, b->v[k].f, task_fn, z, &b->v[k], err);
	reset_batch(b);
	return rc;
}

/* Checks before a byte is read, then into the batch or streamed now. */
static int extract_one(struct udfb_winst *in, zip_t *z, zip_uint64_t idx, const zip_stat_t *st, struct udfb_wfile *f,
		       struct batch *b, struct udfb_err *err)
{
	if (too_late(in, f, err) < 0)
		return -1;
	if (st->size > (zip_uint64_t)entry_limit(in, f, b->sizes))
		return bad_entry(in, f, "larger than RECORD says (or the unpacked limit)", err);
	if (st->encryption_method != ZIP_EM_NONE)
		return bad_entry(in, f, "encrypted", err);
	if ((st->comp_method != ZIP_CM_STORE && st->comp_method != ZIP_CM_DEFLATE) || st->size > MEM_MAX ||
	    st->comp_size > MEM_MAX) {
		struct stream_arg a = { idx, st, f };
		if (flush_batch(in, z, b, err) < 0)
			return -1;
		return extract_out(in, f, stream_fn, z, &a, err);
	}
	if (b->n == b->cap) {
		b->cap = b->cap ? 2 * b->cap : 64;
		b->v = udfb_realloc(b->v, b->cap * sizeof(*b->v));
	}
	struct task *t = &b->v[b->n++];
	memset(t, 0, sizeof(*t));
	t->f = f;
	t->idx = idx;
	t->st = *st;
	t->st.name = NULL; /* libzip's, not ours to keep */
	b->sizes += (long long)st->size;
	b->bytes += (long long)(st->size + st->comp_size);
	if (locate_raw(in, z, t, err) < 0)
		return -1;
	return b->bytes >= BATCH_BYTES ? flush_batch(in, z, b, err) : 0;
}

static int changed(struct udfb_winst *in, struct udfb_err *err)
{
	return udfb_err_set(err, UDFB_E_INVALID, "wheel '%s': changed while being read", in->path);
}

/* libzip's entries against the scan's (libarchive's): the same files, the
 * same sizes, each once, or the two readers disagree about the zip. */
static int extract_all(struct udfb_winst *in, zip_t *z, struct udfb_err *err)
{
	zip_int64_t n = zip_get_num_entries(z, 0);
	size_t seen = 0;
	unsigned long long stored = 0;
	unsigned char *mark = udfb_calloc(in->n_files + 1, 1);
	struct batch *b = udfb_calloc(1, sizeof(*b));
	int rc = 0;
	if (udfb_arena_init(&b->out, BATCH_MAX) < 0)
		rc = udfb_err_sys(err, errno, "wheel '%s': reserve memory", in->path);
	for (zip_int64_t i = 0; i < n && rc == 0; i++) {
		zip_stat_t st;
		zip_stat_init(&st);
		if (zip_stat_index(z, (zip_uint64_t)i, ZIP_FL_ENC_RAW, &st) < 0) {
			rc = udfb_err_set(err, UDFB_E_INVALID, "wheel '%s': %s", in->path, zip_strerror(z));
			break;
		}
		size_t len = st.name ? strlen(st.name) : 0, k;
		if (len && st.name[len - 1] == '/')
			continue;
		if (!st.name || !udfb_strmap_get(&in->by_zip, st.name, &k) || mark[k] ||
		    st.size != (zip_uint64_t)in->files[k].size) {
			rc = changed(in, err);
			break;
		}
		mark[k] = 1;
		seen++;
		/* Entries of a zip do not share bytes: ones that do (a bomb's trick,
		 * which Python's zipfile refuses too) would be read many times. */
		if ((stored += st.comp_size) > in->file_len) {
			rc = udfb_err_set(err, UDFB_E_INVALID,
					  "wheel '%s': entry '%.300s': entries overlap (their stored bytes add up to "
					  "more than the file)",
					  in->path, st.name);
			break;
		}
		if (in->files[k].dest)
			rc = extract_one(in, z, (zip_uint64_t)i, &st, &in->files[k], b, err);
	}
	if (rc == 0)
		rc = flush_batch(in, z, b, err);
	free(b->v);
	udfb_arena_free(&b->out);
	free(b);
	free(mark);
	if (rc == 0 && seen != in->n_files)
		return changed(in, err);
	return rc;
}

/* In memory when the wheel and its declared files fit the limit and the
 * address space can be had; else the two files. */
static struct udfb_membudget process_budget = { 0, UDFB_WHEEL_MEM_BUDGET };

static int open_packs(struct udfb_winst *in, size_t wheel_len, struct udfb_err *err)
{
	long long max = in->o->mem_pack_max ? in->o->mem_pack_max : UDFB_WHEEL_MEM_PACK_MAX;
	long long min = in->o->mem_pack_min ? in->o->mem_pack_min : UDFB_WHEEL_MEM_PACK_MIN;
	long long need = in->declared + (long long)wheel_len;
	in->file_len = wheel_len;
	if (max > 0 && in->declared <= max - in->kept - (long long)wheel_len && need >= min) {
		/* The files as declared, rewritten shebangs, the generated files
		 * (RECORD's 256 MiB at most, the scripts): address space only. */
		size_t slack = (in->n_files + 1) * (strlen(in->o->python) + 16) + ((size_t)1 << 30);
		in->mem = udfb_arena_init(&in->pack_mem, (size_t)in->declared + slack) == 0 &&
			  udfb_arena_charge(&in->pack_mem, in->o->mem_budget ? in->o->mem_budget : &process_budget,
					    need) == 0;
		if (in->mem)
			return 0;
		udfb_arena_free(&in->pack_mem);
	}
	if (udfb_mktemp(&in->pack, &in->pack_fd, in->o->tmpdir, err) < 0 ||
	    udfb_mktemp(&in->raw, &in->raw_fd, in->o->tmpdir, err) < 0)
		return -1;
	in->wbuf = udfb_malloc(PACK_BUF);
	return 0;
}

/* From the scan's zip and mapping (python/wheelzip.c: libzip reading the
 * mapping through a source that notes where).  Not ZIP_CHECKCONS there:
 * it refuses zips written as a stream (local headers without sizes, a
 * data descriptor after the data: libarchive's zip writer, so
 * test_wheel.c's fixtures), which pip reads; entries come from the central
 * directory, as pip's, and every byte is checked. */
int udfb_wheel_extract(struct udfb_winst *in, struct udfb_err *err)
{
	struct udfb_wzip *zip = &in->zip;
	if (open_packs(in, zip->map.len, err) < 0)
		return -1;
	udfb_wzip_populate(zip);
	in->src = &zip->src;
	int rc = extract_all(in, zip->z, err);
	in->src = NULL;
	if (in->mem) { /* the raw pack: the layer writer takes the mapping */
		udfb_arena_adopt(&in->wheel_mem, zip->map.p, zip->map.len);
		zip->map.p = NULL;
	}
	udfb_wzip_close(zip);
	if (rc == 0 && in->raw_errno)
		rc = udfb_err_sys(err, in->raw_errno, "write %s", in->raw);
	return rc;
}

/* ---- generated files ---- */

static void write_gen(struct udfb_winst *in, struct udfb_wfile *g, const char *data, size_t len)
{
	g->offset = pack_end(in);
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
		rc = udfb_err_sys(err, in->write_errno, "write %s", in->pack ? in->pack : "the memory pack");
	return rc;
}
