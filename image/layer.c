/* Deterministic tar+gzip layers: see layer.h. */
#include "image/layer.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/arena.h"
#include "common/cleanup.h"
#include "common/fsutil.h"
#include "image/gzsplice.h"
#include "image/pgzip.h"
#include "common/strmap.h"
#include "common/syncer.h"

#define LAYER_GZIP_LEVEL 6 /* the default; part of UDFB_LAYER_FORMAT */
/* A tar up to this size is kept from the diff_id pass for the write: a
 * UDF's own layers (a few KB) are made by libarchive once, not twice. */
#define TAR_KEEP_MAX (1u << 20)

enum entry_kind { ENTRY_DIR, ENTRY_BYTES, ENTRY_FILE, ENTRY_SYMLINK };

struct entry {
	char *path; /* without trailing '/' */
	enum entry_kind kind;
	const void *data; /* ENTRY_BYTES: borrowed; ENTRY_SYMLINK: the target, borrowed */
	size_t len;
	char *src; /* ENTRY_FILE: size bytes at offset */
	long long offset, size;
	int executable;
	/* A splice (udfb_layer_add_file_spliced): the content's deflate stream
	 * is raw_len bytes at raw_offset of raw; NULL: none. */
	char *raw;
	long long raw_offset, raw_len;
	uint32_t crc;
	/* A splice from memory (udfb_layer_add_bytes_spliced): raw_len bytes,
	 * borrowed; NULL: none. */
	const void *raw_mem;
};

struct udfb_layer_writer {
	struct entry *v;
	size_t n, cap;
	int level; /* gzip level */
	/* path -> index in v: a wheel adds thousands of files, each looked
	 * up with its parents; rebuilt when v is sorted. */
	struct udfb_strmap index;
	/* The tar of the last udfb_layer_diff_id when small: dropped by any
	 * change to the entries. */
	unsigned char *tar;
	size_t tar_len;
	/* Arenas whose bytes entries borrow (udfb_layer_writer_keep). */
	struct udfb_arena *kept;
	size_t n_kept;
};

static void drop_tar(struct udfb_layer_writer *w)
{
	free(w->tar);
	w->tar = NULL;
	w->tar_len = 0;
}

void udfb_layer_writer_new(struct udfb_layer_writer **out)
{
	*out = udfb_calloc(1, sizeof(**out));
	(*out)->level = LAYER_GZIP_LEVEL;
	udfb_strmap_init(&(*out)->index);
}

void udfb_layer_writer_set_level(struct udfb_layer_writer *w, int level)
{
	w->level = level;
}

static int check_path(const char *path, struct udfb_err *err)
{
	/* Only our own code names paths, but a basename comes from a user:
	 * no absolute paths, no "." or ".." components, no empty ones. */
	if (!path[0] || path[0] == '/')
		return udfb_err_set(err, UDFB_E_INTERNAL, "layer entry '%s': not a relative path", path);
	const char *c = path;
	while (*c) {
		const char *e = strchr(c, '/');
		size_t n = e ? (size_t)(e - c) : strlen(c);
		if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return udfb_err_set(err, UDFB_E_INTERNAL, "layer entry '%s': bad path component", path);
		c += n + (e ? 1 : 0);
	}
	return 0;
}

static struct entry *push(struct udfb_layer_writer *w)
{
	drop_tar(w);
	if (w->n == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 16;
		w->v = udfb_realloc(w->v, w->cap * sizeof(*w->v));
	}
	struct entry *e = &w->v[w->n++];
	memset(e, 0, sizeof(*e));
	return e;
}

/* The entry named by the first len bytes of path, or NULL. */
static const struct entry *find_n(const struct udfb_layer_writer *w, const char *path, size_t len)
{
	size_t k;
	return udfb_strmap_getn(&w->index, path, len, &k) ? &w->v[k] : NULL;
}

static const struct entry *find(const struct udfb_layer_writer *w, const char *path)
{
	return find_n(w, path, strlen(path));
}

static struct entry *push_path(struct udfb_layer_writer *w, const char *path, size_t len)
{
	struct entry *e = push(w);
	e->path = udfb_strndup(path, len);
	udfb_strmap_put(&w->index, e->path, w->n - 1);
	return e;
}

static int add_parents(struct udfb_layer_writer *w, const char *path, struct udfb_err *err)
{
	for (const char *s = strchr(path, '/'); s; s = strchr(s + 1, '/')) {
		size_t len = (size_t)(s - path);
		const struct entry *p = find_n(w, path, len);
		/* A file cannot also be a directory: the tar would hold both. */
		if (p && p->kind != ENTRY_DIR)
			return udfb_err_set(err, UDFB_E_INTERNAL, "layer entry '%s': parent '%.*s' is a file", path,
					    (int)len, path);
		if (!p)
			push_path(w, path, len)->kind = ENTRY_DIR;
	}
	return 0;
}

static struct entry *new_entry(struct udfb_layer_writer *w, const char *path, struct udfb_err *err)
{
	if (check_path(path, err) < 0)
		return NULL;
	if (find(w, path)) {
		udfb_err_set(err, UDFB_E_INTERNAL, "layer entry '%s': added twice", path);
		return NULL;
	}
	if (add_parents(w, path, err) < 0)
		return NULL;
	return push_path(w, path, strlen(path));
}

int udfb_layer_contains(const struct udfb_layer_writer *w, const char *path)
{
	const struct entry *e = find(w, path);
	return !e ? 0 : e->kind == ENTRY_DIR ? 2 : 1;
}

int udfb_layer_add_bytes(struct udfb_layer_writer *w, const char *path, const void *data, size_t len, int executable,
			 struct udfb_err *err)
{
	struct entry *e = new_entry(w, path, err);
	if (!e)
		return -1;
	e->kind = ENTRY_BYTES;
	e->data = data;
	e->len = len;
	e->executable = executable;
	return 0;
}

int udfb_layer_add_file(struct udfb_layer_writer *w, const char *path, const char *src, long long size, int executable,
			struct udfb_err *err)
{
	return udfb_layer_add_file_range(w, path, src, 0, size, executable, err);
}

int udfb_layer_add_file_range(struct udfb_layer_writer *w, const char *path, const char *src, long long offset,
			      long long size, int executable, struct udfb_err *err)
{
	struct entry *e = new_entry(w, path, err);
	if (!e)
		return -1;
	e->kind = ENTRY_FILE;
	e->src = udfb_strdup(src);
	e->offset = offset;
	e->size = size;
	e->executable = executable;
	return 0;
}

int udfb_layer_add_file_spliced(struct udfb_layer_writer *w, const char *path, const char *src, long long offset,
				long long size, int executable, const struct udfb_layer_splice *sp,
				struct udfb_err *err)
{
	if (udfb_layer_add_file_range(w, path, src, offset, size, executable, err) < 0)
		return -1;
	struct entry *e = &w->v[w->n - 1];
	e->raw = udfb_strdup(sp->src);
	e->raw_offset = sp->offset;
	e->raw_len = sp->len;
	e->crc = sp->crc32;
	return 0;
}

int udfb_layer_add_bytes_spliced(struct udfb_layer_writer *w, const char *path, const void *data, size_t len,
				 int executable, const void *raw, size_t raw_len, uint32_t crc32, struct udfb_err *err)
{
	if (udfb_layer_add_bytes(w, path, data, len, executable, err) < 0)
		return -1;
	struct entry *e = &w->v[w->n - 1];
	e->raw_mem = raw;
	e->raw_len = (long long)raw_len;
	e->crc = crc32;
	return 0;
}

void udfb_layer_writer_keep(struct udfb_layer_writer *w, struct udfb_arena *a)
{
	w->kept = udfb_realloc(w->kept, (w->n_kept + 1) * sizeof(*w->kept));
	w->kept[w->n_kept++] = *a;
	memset(a, 0, sizeof(*a));
}

size_t udfb_layer_writer_kept(const struct udfb_layer_writer *w)
{
	size_t n = 0;
	for (size_t k = 0; k < w->n_kept; k++)
		n += w->kept[k].len;
	return n;
}

int udfb_layer_add_dir(struct udfb_layer_writer *w, const char *path, struct udfb_err *err)
{
	if (find(w, path))
		return 0;
	struct entry *e = new_entry(w, path, err);
	if (!e)
		return -1;
	e->kind = ENTRY_DIR;
	return 0;
}

int udfb_layer_add_symlink(struct udfb_layer_writer *w, const char *path, const char *target, struct udfb_err *err)
{
	struct entry *e = new_entry(w, path, err);
	if (!e)
		return -1;
	e->kind = ENTRY_SYMLINK;
	e->data = target;
	return 0;
}

void udfb_layer_writer_free(struct udfb_layer_writer *w)
{
	if (!w)
		return;
	for (size_t k = 0; k < w->n; k++) {
		free(w->v[k].path);
		free(w->v[k].src);
		free(w->v[k].raw);
	}
	free(w->v);
	udfb_strmap_free(&w->index);
	drop_tar(w);
	for (size_t k = 0; k < w->n_kept; k++)
		udfb_arena_free(&w->kept[k]);
	free(w->kept);
	free(w);
}

void udfb_layer_clear(struct udfb_layer *l)
{
	if (l->path)
		unlink(l->path);
	free(l->path);
	l->path = NULL;
}

/* ---- writing: tar -> sha256(diff_id) -> deflate -> sha256(digest) -> file ---- */

struct sink {
	int fd;
	struct udfb_pgzip *gz; /* NULL when only hashing */
	struct udfb_sha256 *tar_hash, *gz_hash;
	long long gz_size;
	int failed_errno;
	/* Hashing only: the tar kept while it fits in TAR_KEEP_MAX. */
	unsigned char *keep;
	size_t keep_len, keep_cap;
	int keep_over;
	/* Tar bytes still to come that a spliced member already holds: they
	 * are hashed (the diff_id) but not compressed again. */
	long long spliced_left;
	/* The blob's bytes on their way to fd, in buffers (a wheel's layer is
	 * thousands of small members, a tar header's, a spliced file's: one
	 * write each otherwise).  A full buffer is hashed (the digest) and
	 * written by a second thread while this one goes on with the tar's
	 * hash and compression: a big layer keeps both cores busy.  The one
	 * being filled is ob[produced % OBUFS]. */
	unsigned char *ob[4];
	size_t ob_len[4], olen;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned long long produced, consumed; /* buffers; under mu */
	int closing, started, out_errno; /* out_errno: the writer's */
	int out_failed; /* out_errno as the writer last published it; under mu */
	struct udfb_syncer sync;
	int sync_live;
	pthread_t th;
};

#define OBUFS 4
#define SYNC_STEP (2ll << 20)
#define OBUF_SIZE (256u << 10)

static void sink_keep(struct sink *s, const void *buf, size_t len)
{
	if (s->keep_over)
		return;
	if (s->keep_len + len > TAR_KEEP_MAX) {
		s->keep_over = 1;
		free(s->keep);
		s->keep = NULL;
		return;
	}
	if (s->keep_len + len > s->keep_cap) {
		size_t cap = s->keep_cap ? s->keep_cap : 16384;
		while (cap < s->keep_len + len)
			cap *= 2;
		s->keep = udfb_realloc(s->keep, cap);
		s->keep_cap = cap;
	}
	memcpy(s->keep + s->keep_len, buf, len);
	s->keep_len += len;
}

/* One buffer of the blob hashed and written (after a failed write, only
 * hashed: the error is reported at the end), and flushed to the disk
 * every SYNC_STEP bytes while the rest is made (common/syncer.h). */
static void out_buffer(struct sink *s, const unsigned char *b, size_t have)
{
	udfb_sha256_update(s->gz_hash, b, have);
	if (!s->out_errno && udfb_write_all(s->fd, b, have) < 0)
		s->out_errno = errno;
	if (s->sync_live)
		udfb_syncer_wrote(&s->sync, (long long)have);
}

/* The second thread: buffers in the order they were filled. */
static void *out_thread(void *arg)
{
	struct sink *s = arg;
	pthread_mutex_lock(&s->mu);
	for (;;) {
		while (s->consumed == s->produced && !s->closing)
			pthread_cond_wait(&s->cv, &s->mu);
		if (s->consumed == s->produced)
			break;
		size_t k = (size_t)(s->consumed % OBUFS);
		pthread_mutex_unlock(&s->mu);
		out_buffer(s, s->ob[k], s->ob_len[k]);
		pthread_mutex_lock(&s->mu);
		s->out_failed = s->out_errno;
		s->consumed++;
		pthread_cond_broadcast(&s->cv);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* The buffer being filled is done: to the thread (started with the first
 * full one: a small layer never starts it), or out here without one. */
static void submit(struct sink *s)
{
	size_t k = (size_t)(s->produced % OBUFS);
	s->ob_len[k] = s->olen;
	s->olen = 0;
	if (!s->started)
		s->started = pthread_create(&s->th, NULL, out_thread, s) == 0 ? 1 : -1;
	if (s->started < 0) {
		out_buffer(s, s->ob[k], s->ob_len[k]);
		return;
	}
	pthread_mutex_lock(&s->mu);
	s->produced++;
	pthread_cond_broadcast(&s->cv);
	while (s->produced - s->consumed >= OBUFS)
		pthread_cond_wait(&s->cv, &s->mu);
	/* A failed write (a full disk) stops the layer now, not after the
	 * rest of it is made and hashed for nothing. */
	if (s->out_failed && !s->failed_errno)
		s->failed_errno = s->out_failed;
	pthread_mutex_unlock(&s->mu);
}

static int sink_out(void *ctx, const void *p, size_t have)
{
	struct sink *s = ctx;
	const unsigned char *b = p;
	if (s->failed_errno)
		return -1;
	s->gz_size += (long long)have;
	while (have) {
		size_t k = (size_t)(s->produced % OBUFS);
		if (!s->ob[k])
			s->ob[k] = udfb_malloc(OBUF_SIZE);
		size_t n = OBUF_SIZE - s->olen < have ? OBUF_SIZE - s->olen : have;
		memcpy(s->ob[k] + s->olen, b, n);
		s->olen += n, b += n, have -= n;
		if (s->olen == OBUF_SIZE)
			submit(s);
	}
	return 0;
}

/* Every buffer out and the thread gone: the digest is complete. */
static void sink_stop(struct sink *s)
{
	if (s->started > 0) {
		pthread_mutex_lock(&s->mu);
		s->closing = 1;
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->th, NULL);
		s->started = -1; /* anything after is written here, in order */
	}
	if (s->out_errno && !s->failed_errno)
		s->failed_errno = s->out_errno;
}

/* The flushes done (the blob written): a failed one fails the layer. */
static void sink_stop_sync(struct sink *s)
{
	if (!s->sync_live)
		return;
	s->sync_live = 0;
	int e = udfb_syncer_stop(&s->sync);
	if (e && !s->failed_errno)
		s->failed_errno = e;
}

/* The last members out and the buffers written, before finish() syncs. */
static int sink_drain(struct sink *s, struct udfb_err *err)
{
	int rc = udfb_pgzip_finish(s->gz);
	if (s->olen) {
		if (s->started > 0) /* in order, after the thread's */
			sink_stop(s);
		s->started = -1;
		out_buffer(s, s->ob[s->produced % OBUFS], s->olen);
		s->olen = 0;
	}
	sink_stop(s);
	sink_stop_sync(s);
	if (rc < 0 || s->failed_errno)
		return s->failed_errno ? udfb_err_sys(err, s->failed_errno, "write layer")
				       : udfb_err_set(err, UDFB_E_INTERNAL, "write layer: zlib failed");
	return 0;
}

static la_ssize_t sink_write(struct archive *a, void *ctx, const void *buf, size_t len)
{
	(void)a;
	struct sink *s = ctx;
	if (s->failed_errno)
		return -1;
	udfb_sha256_update(s->tar_hash, buf, len);
	size_t skip = s->spliced_left < (long long)len ? (size_t)s->spliced_left : len;
	s->spliced_left -= (long long)skip;
	if (s->gz && len > skip && udfb_pgzip_write(s->gz, (const unsigned char *)buf + skip, len - skip) < 0)
		return -1;
	if (!s->gz)
		sink_keep(s, buf, len);
	return (la_ssize_t)len; /* without gz: hashing only, the diff_id */
}

static int sink_open(struct sink *s, int fd, int level)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->tar_hash = udfb_sha256_new();
	s->gz_hash = udfb_sha256_new();
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	if (fd < 0)
		return 0;
	udfb_syncer_init(&s->sync, fd, SYNC_STEP);
	s->sync_live = 1;
	/* The chunks are compressed in parallel, the bytes do not depend on it. */
	return udfb_pgzip_new(&s->gz, level, udfb_pgzip_threads(), sink_out, s);
}

static void sink_free(struct sink *s)
{
	sink_stop(s); /* after a failure: the threads may still run */
	sink_stop_sync(s);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	udfb_pgzip_free(s->gz);
	udfb_sha256_free(s->tar_hash);
	udfb_sha256_free(s->gz_hash);
	free(s->keep);
	for (size_t k = 0; k < OBUFS; k++)
		free(s->ob[k]);
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->path, ((const struct entry *)b)->path);
}

static struct archive_entry *make_header(struct archive *a, const struct entry *e)
{
	struct archive_entry *ae = archive_entry_new2(a);
	if (e->kind == ENTRY_DIR) {
		/* A trailing slash marks directories in tar, as docker and buildah write them. */
		cleanup_free char *p = udfb_asprintf("%s/", e->path);
		archive_entry_set_pathname_utf8(ae, p);
		archive_entry_set_filetype(ae, AE_IFDIR);
		archive_entry_set_perm(ae, 0755);
		archive_entry_set_size(ae, 0);
	} else if (e->kind == ENTRY_SYMLINK) {
		archive_entry_set_pathname_utf8(ae, e->path);
		archive_entry_set_filetype(ae, AE_IFLNK);
		archive_entry_set_perm(ae, 0777);
		archive_entry_set_symlink_utf8(ae, e->data);
		archive_entry_set_size(ae, 0);
	} else {
		archive_entry_set_pathname_utf8(ae, e->path);
		archive_entry_set_filetype(ae, AE_IFREG);
		archive_entry_set_perm(ae, e->executable ? 0755 : 0644);
		archive_entry_set_size(ae, e->kind == ENTRY_BYTES ? (la_int64_t)e->len : e->size);
	}
	archive_entry_set_uid(ae, 0);
	archive_entry_set_gid(ae, 0);
	archive_entry_set_uname(ae, "root");
	archive_entry_set_gname(ae, "root");
	archive_entry_set_mtime(ae, 0, 0);
	return ae;
}

/* The source file open now: a wheel's thousand files are ranges of one
 * pack file, opened once rather than once each. */
struct src_file {
	const char *path; /* borrowed from the entry */
	int fd;
};

static int src_open(struct src_file *f, const struct entry *e, const char *path, struct udfb_err *err)
{
	if (f->fd >= 0 && strcmp(f->path, path) == 0)
		return f->fd;
	if (f->fd >= 0)
		close(f->fd);
	f->path = path;
	f->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (f->fd < 0)
		return udfb_err_sys(err, errno, "layer entry '%s': open", e->path);
	return f->fd;
}

/* The entry's member as the wheel compressed it, before its content goes
 * through the tar (hashed only): what was buffered is emitted first. */
static int splice_entry(struct sink *s, const struct entry *e, struct src_file *raw, struct udfb_err *err)
{
	int fd = e->raw_mem ? -1 : src_open(raw, e, e->raw, err);
	if (!e->raw_mem && fd < 0)
		return -1;
	if (udfb_pgzip_flush(s->gz) < 0)
		return s->failed_errno ? udfb_err_sys(err, s->failed_errno, "write layer")
				       : udfb_err_set(err, UDFB_E_INTERNAL, "write layer: compression failed");
	long long size = e->kind == ENTRY_BYTES ? (long long)e->len : e->size;
	int rc = e->raw_mem
			 ? udfb_gzsplice_member_mem(sink_out, s, e->raw_mem, (size_t)e->raw_len, e->crc, size, e->path,
						    err)
			 : udfb_gzsplice_member(sink_out, s, fd, e->raw_offset, e->raw_len, e->crc, size, e->path, err);
	if (rc < 0 && s->failed_errno) { /* the blob's write failed, not the entry */
		udfb_err_clear(err);
		return udfb_err_sys(err, s->failed_errno, "write layer");
	}
	if (rc < 0)
		return -1;
	s->spliced_left = size;
	return 0;
}

static int write_file_data(struct archive *a, const struct entry *e, struct src_file *src, struct udfb_err *err)
{
	int fd = src_open(src, e, e->src, err);
	if (fd < 0)
		return -1;
	char buf[65536];
	long long left = e->size, off = e->offset;
	while (left > 0) {
		ssize_t n = pread(fd, buf, left < (long long)sizeof(buf) ? (size_t)left : sizeof(buf), off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return udfb_err_sys(err, errno, "layer entry '%s': read", e->path);
		if (n == 0)
			return udfb_err_set(err, UDFB_E_INTERNAL,
					    "layer entry '%s': file changed size while being written", e->path);
		if (archive_write_data(a, buf, (size_t)n) != n)
			return udfb_err_set(err, UDFB_E_INTERNAL, "layer entry '%s': %s", e->path,
					    archive_error_string(a));
		left -= n;
		off += n;
	}
	return 0;
}

static int write_entries(struct archive *a, struct udfb_layer_writer *w, struct sink *s, struct udfb_err *err)
{
	qsort(w->v, w->n, sizeof(*w->v), cmp_entry);
	udfb_strmap_reset(&w->index); /* the writer stays usable after udfb_layer_diff_id */
	for (size_t k = 0; k < w->n; k++)
		udfb_strmap_put(&w->index, w->v[k].path, k);
	struct src_file src = { .fd = -1 }, raw = { .fd = -1 };
	int rc = 0;
	for (size_t k = 0; k < w->n && rc == 0; k++) {
		const struct entry *e = &w->v[k];
		struct archive_entry *ae = make_header(a, e);
		int hrc = archive_write_header(a, ae);
		archive_entry_free(ae);
		if (hrc != ARCHIVE_OK)
			rc = udfb_err_set(err, UDFB_E_INTERNAL, "layer entry '%s': %s", e->path,
					  archive_error_string(a));
		else if (e->kind == ENTRY_BYTES && e->raw_mem && s->gz && splice_entry(s, e, &raw, err) < 0)
			rc = -1;
		else if (e->kind == ENTRY_BYTES && e->len &&
			 archive_write_data(a, e->data, e->len) != (la_ssize_t)e->len)
			rc = udfb_err_set(err, UDFB_E_INTERNAL, "layer entry '%s': %s", e->path,
					  archive_error_string(a));
		else if (e->kind == ENTRY_FILE && e->raw && s->gz && splice_entry(s, e, &raw, err) < 0)
			rc = -1;
		else if (e->kind == ENTRY_FILE && write_file_data(a, e, &src, err) < 0)
			rc = -1;
		else if (s->spliced_left != 0) /* the tar writer buffered after all */
			rc = udfb_err_set(err, UDFB_E_INTERNAL, "layer entry '%s': spliced bytes out of step", e->path);
	}
	if (src.fd >= 0)
		close(src.fd);
	if (raw.fd >= 0)
		close(raw.fd);
	return rc;
}

static struct archive *open_tar(struct sink *s)
{
	struct archive *a = archive_write_new();
	if (!a)
		abort();
	/* pax_restricted writes ustar unless a name needs pax, and never atime/ctime. */
	archive_write_set_format_pax_restricted(a);
	archive_write_set_format_option(a, "pax", "hdrcharset", "UTF-8");
	archive_write_add_filter_none(a);
	archive_write_set_bytes_in_last_block(a, 1);
	/* No blocking: every byte reaches the sink when written, so a splice
	 * knows which tar bytes are an entry's content (the tar is the same:
	 * the last block was never padded). */
	archive_write_set_bytes_per_block(a, 0);
	if (archive_write_open2(a, s, NULL, sink_write, NULL, NULL) != ARCHIVE_OK) {
		archive_write_free(a);
		return NULL;
	}
	return a;
}

static int finish(struct udfb_layer *out, struct sink *s, struct udfb_err *err)
{
	if (udfb_pgzip_finish(s->gz) < 0)
		return s->failed_errno ? udfb_err_sys(err, s->failed_errno, "write layer")
				       : udfb_err_set(err, UDFB_E_INTERNAL, "write layer: zlib failed");
	/* Not fsync'd here: whoever renames the file syncs it, a build's layers
	 * all at once (udfb_store_put_tmp_later); its writeback starts now. */
	udfb_start_writeback(s->fd);
	udfb_sha256_final(s->tar_hash, out->diff_id);
	udfb_sha256_final(s->gz_hash, out->digest);
	s->tar_hash = s->gz_hash = NULL;
	out->size = s->gz_size;
	return 0;
}

/* One pass of the tar through the sink. */
static int tar_pass(struct udfb_layer_writer *w, struct sink *s, struct udfb_err *err)
{
	struct archive *a = open_tar(s);
	if (!a)
		return udfb_err_set(err, UDFB_E_INTERNAL, "write layer: cannot open the tar writer");
	int rc = write_entries(a, w, s, err);
	if (rc < 0 && s->failed_errno) { /* the blob's write, not the entry, failed */
		udfb_err_clear(err);
		rc = udfb_err_sys(err, s->failed_errno, "write layer");
	}
	if (rc == 0 && archive_write_close(a) != ARCHIVE_OK)
		rc = s->failed_errno ? udfb_err_sys(err, s->failed_errno, "write layer")
				     : udfb_err_set(err, UDFB_E_INTERNAL, "write layer: %s", archive_error_string(a));
	archive_write_free(a);
	return rc;
}

static int layer_write(struct udfb_layer *out, struct udfb_layer_writer *w, const char *tmpdir, struct udfb_err *err)
{
	memset(out, 0, sizeof(*out));
	int fd = -1;
	if (udfb_mktemp(&out->path, &fd, tmpdir, err) < 0)
		return -1;
	struct sink s;
	int rc = sink_open(&s, fd, w->level) < 0 ? udfb_err_set(err, UDFB_E_INTERNAL, "write layer: zlib init failed")
						 : 0;
	if (rc == 0 && w->tar) /* the same bytes as a tar pass would make */
		rc = sink_write(NULL, &s, w->tar, w->tar_len) < 0
			     ? (s.failed_errno ? udfb_err_sys(err, s.failed_errno, "write layer")
					       : udfb_err_set(err, UDFB_E_INTERNAL, "write layer: compression failed"))
			     : 0;
	else if (rc == 0)
		rc = tar_pass(w, &s, err);
	if (rc == 0)
		rc = sink_drain(&s, err);
	if (rc == 0) /* finishing the gzip again there is a no-op */
		rc = finish(out, &s, err);
	sink_free(&s);
	close(fd);
	if (rc < 0)
		udfb_layer_clear(out);
	return rc;
}

static int diff_id_only(char out[UDFB_DIGEST_LEN + 1], struct udfb_layer_writer *w, struct udfb_err *err)
{
	struct sink s;
	int rc = sink_open(&s, -1, w->level) < 0 ? udfb_err_set(err, UDFB_E_INTERNAL, "write layer: zlib init failed")
						 : 0;
	if (rc == 0)
		rc = tar_pass(w, &s, err);
	if (rc == 0) {
		udfb_sha256_final(s.tar_hash, out);
		s.tar_hash = NULL;
	}
	int spliced = 0;
	for (size_t k = 0; k < w->n && !spliced; k++)
		spliced = w->v[k].raw != NULL || w->v[k].raw_mem != NULL;
	/* A spliced entry's member comes from its stream, not from the tar:
	 * such a layer is written by a tar pass, never from a kept tar. */
	if (rc == 0 && !s.keep_over && !spliced) {
		/* tar_pass sorted the entries (dropping any kept tar): keep this one. */
		drop_tar(w);
		w->tar = s.keep ? s.keep : udfb_malloc(1);
		w->tar_len = s.keep_len;
		s.keep = NULL;
	}
	sink_free(&s);
	return rc;
}

/* libarchive converts names through the current locale (and crashes on a
 * name the locale cannot hold).  Layers are written in C.UTF-8 on this
 * thread whatever the process's locale, so no byte depends on LANG. */
static locale_t enter_utf8(locale_t *old, struct udfb_err *err)
{
	locale_t utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	if (utf8 == (locale_t)0) {
		udfb_err_set(err, UDFB_E_INTERNAL, "write layer: the C.UTF-8 locale is not available");
		return utf8;
	}
	*old = uselocale(utf8);
	return utf8;
}

static void leave_utf8(locale_t utf8, locale_t old)
{
	uselocale(old);
	freelocale(utf8);
}

int udfb_layer_write(struct udfb_layer *out, struct udfb_layer_writer *w, const char *tmpdir, struct udfb_err *err)
{
	locale_t old, utf8 = enter_utf8(&old, err);
	int rc = -1;
	if (utf8 != (locale_t)0) {
		rc = layer_write(out, w, tmpdir, err);
		leave_utf8(utf8, old);
	}
	udfb_layer_writer_free(w);
	return rc;
}

int udfb_layer_diff_id(char out[UDFB_DIGEST_LEN + 1], struct udfb_layer_writer *w, struct udfb_err *err)
{
	locale_t old, utf8 = enter_utf8(&old, err);
	if (utf8 == (locale_t)0)
		return -1;
	int rc = diff_id_only(out, w, err);
	leave_utf8(utf8, old);
	return rc;
}
