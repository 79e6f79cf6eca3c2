/* Tagging an OCI image layout in constant time: see ocilayout.h and
 * docs/store.md ("Tags of an OCI-layout destination").
 *
 * A tag is one line appended to DIR/.udfb-tags (the journal) under the
 * layout's lock: its cost does not depend on how many tags the layout
 * holds.  index.json, the only file skopeo, umoci and buildah read, is
 * derived from index.json plus the journal by udfb_oci_sync, once per
 * batch: at the end of a CLI command, after a quiet interval in the service
 * (udfb_oci_autosync_start), and on demand (`cache sync-tags`).  Between
 * two syncs a reader sees the previous index.json, whole and valid; our own
 * reader (udfb_oci_read_image) sees the journal too.  A record torn by a
 * crash fails its CRC and is skipped; replaying a record twice changes
 * nothing, so a sync that dies half-way is simply done again. */
#include "image/ocilayout.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/cleanup.h"
#include "common/clock.h"
#include "common/fsutil.h"
#include "common/jsonout.h"
#include "common/log.h"
#include "common/strmap.h"

#define JOURNAL ".udfb-tags"
#define JOURNAL_MAX (256u << 20)
#define INDEX_MAX (256u << 20)
#define REF_NAME "org.opencontainers.image.ref.name"
/* Above this many remembered tags the memo starts over (bounded memory). */
#define MEMO_MAX (1u << 18)

/* ---- records ---- */

static int charset_ok(const char *s, size_t n, const char *extra)
{
	for (size_t k = 0; k < n; k++) {
		char c = s[k];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr(extra, c)))
			return 0;
	}
	return n > 0;
}

static uint32_t crc_of(const char *s, size_t n)
{
	return (uint32_t)crc32(0, (const Bytef *)s, (uInt)n);
}

/* "t1 CRC DIGEST SIZE MEDIATYPE TAG": CRC (8 hex) covers what follows it. */
int udfb_oci_tag_record_parse(struct udfb_oci_tag_rec *out, const char *line, size_t len)
{
	if (len < 12 || len > UDFB_OCI_TAG_RECORD_MAX || memcmp(line, "t1 ", 3) != 0 || line[11] != ' ')
		return -1;
	char crc_hex[9];
	memcpy(crc_hex, line + 3, 8);
	crc_hex[8] = '\0';
	char *end = NULL;
	unsigned long crc = strtoul(crc_hex, &end, 16);
	if (*end || !charset_ok(crc_hex, 8, "") || crc != (unsigned long)crc_of(line + 12, len - 12))
		return -1;
	const char *f[4];
	size_t n[4], k = 0;
	for (const char *p = line + 12, *stop = line + len; k < 4 && p < stop; k++) {
		const char *sp = k < 3 ? memchr(p, ' ', (size_t)(stop - p)) : stop;
		if (!sp)
			return -1;
		f[k] = p, n[k] = (size_t)(sp - p);
		p = sp + 1;
	}
	if (k != 4 || n[0] != UDFB_DIGEST_LEN || n[1] > 19 || n[2] >= sizeof(out->media_type) ||
	    n[3] >= sizeof(out->tag) || !charset_ok(f[1], n[1], "") || !charset_ok(f[2], n[2], ".+-/") ||
	    !charset_ok(f[3], n[3], "_.-"))
		return -1;
	memcpy(out->digest, f[0], n[0]);
	out->digest[n[0]] = '\0';
	if (!udfb_digest_valid(out->digest))
		return -1;
	for (size_t j = 0; j < n[1]; j++)
		if (f[1][j] < '0' || f[1][j] > '9')
			return -1;
	out->size = strtoll(f[1], NULL, 10);
	memcpy(out->media_type, f[2], n[2]);
	out->media_type[n[2]] = '\0';
	memcpy(out->tag, f[3], n[3]);
	out->tag[n[3]] = '\0';
	return 0;
}

static int format_record(char *buf, size_t cap, const char *digest, long long size, const char *mt, const char *tag)
{
	char body[UDFB_OCI_TAG_RECORD_MAX];
	int n = snprintf(body, sizeof(body), "%s %lld %s %s", digest, size, mt, tag);
	if (n < 0 || (size_t)n >= sizeof(body))
		return -1;
	int m = snprintf(buf, cap, "t1 %08x %s\n", crc_of(body, (size_t)n), body);
	return m < 0 || (size_t)m >= cap ? -1 : m;
}

/* Calls fn for every well-formed record of the journal, in order. */
static long for_each_record(const char *text, size_t len, void (*fn)(const struct udfb_oci_tag_rec *, void *),
			    void *ctx)
{
	long bad = 0;
	for (const char *p = text, *end = text + len; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			break; /* a last line without its newline: torn, skipped */
		struct udfb_oci_tag_rec r;
		if (udfb_oci_tag_record_parse(&r, p, (size_t)(nl - p)) == 0)
			fn(&r, ctx);
		else
			bad++;
		p = nl + 1;
	}
	return bad;
}

/* ---- the lock and the journal ---- */

static int lock_layout(const char *dir, struct udfb_err *err)
{
	cleanup_free char *lock_path = udfb_path_join(dir, ".index.lock");
	int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0 || flock(fd, LOCK_EX) < 0) {
		udfb_err_sys(err, errno, "lock %s", lock_path);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd; /* closing it unlocks */
}

/* One append.  A line left torn by a crash is closed first, so it cannot
 * swallow the record that follows it. */
static int journal_append(const char *dir, const char *line, size_t len, struct udfb_err *err)
{
	cleanup_free char *path = udfb_path_join(dir, JOURNAL);
	cleanup_close int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	struct stat sb;
	char last = '\n';
	if (fd < 0 || fstat(fd, &sb) < 0)
		return udfb_err_sys(err, errno, "%s", path);
	if (sb.st_size > 0) {
		cleanup_close int rfd = open(path, O_RDONLY | O_CLOEXEC);
		if (rfd < 0 || pread(rfd, &last, 1, sb.st_size - 1) != 1)
			return udfb_err_sys(err, errno, "%s", path);
	}
	if ((last != '\n' && udfb_write_all(fd, "\n", 1) < 0) || udfb_write_all(fd, line, len) < 0)
		return udfb_err_sys(err, errno, "append to %s", path);
	return 0;
}

static int journal_read(char **text, size_t *len, const char *dir, struct udfb_err *err)
{
	cleanup_free char *path = udfb_path_join(dir, JOURNAL);
	*text = NULL, *len = 0;
	if (!udfb_exists(path))
		return 0;
	return udfb_read_file(text, len, path, JOURNAL_MAX, err);
}

/* ---- what this process tagged: the memo and the layouts to sync ---- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static struct udfb_strmap memo;
static char **memo_keys;
static size_t memo_n;
static char **dirty;
static size_t n_dirty;
static double first_dirty, last_tag;

static void memo_clear_locked(void)
{
	for (size_t k = 0; k < memo_n; k++)
		free(memo_keys[k]);
	free(memo_keys);
	memo_keys = NULL;
	memo_n = 0;
	udfb_strmap_free(&memo);
	udfb_strmap_init(&memo);
}

static void mark_dirty_locked(const char *dir)
{
	for (size_t k = 0; k < n_dirty; k++)
		if (strcmp(dirty[k], dir) == 0)
			return;
	if (!n_dirty)
		first_dirty = udfb_now_s();
	dirty = udfb_realloc(dirty, (n_dirty + 1) * sizeof(*dirty));
	dirty[n_dirty++] = udfb_strdup(dir);
}

/* The memo's key names the layout by its inode, so a layout removed and
 * made again is not mistaken for the old one. */
static char *memo_key(const char *dir, const char *digest, const char *tag)
{
	struct stat sb;
	if (stat(dir, &sb) < 0)
		return NULL;
	return udfb_asprintf("%llx:%llx\t%s\t%s", (unsigned long long)sb.st_dev, (unsigned long long)sb.st_ino, tag,
			     digest);
}

/* A tag ending in a cache key's 64 hex digits names that key's image
 * wherever it is written (docs/store.md), so a process that wrote it once
 * need not write it again.  Any other tag ("latest") may have been moved
 * by someone else: it is always written. */
static int key_tag(const char *tag)
{
	size_t n = strlen(tag);
	return n >= 64 && charset_ok(tag + n - 64, 64, "") && strspn(tag + n - 64, "0123456789abcdef") == 64;
}

int udfb_oci_tag(const char *dir, const char *digest, long long size, const char *media_type, const char *tag,
		 struct udfb_err *err)
{
	char line[UDFB_OCI_TAG_RECORD_MAX + 2];
	int n = format_record(line, sizeof(line), digest, size, media_type, tag);
	if (n < 0 || udfb_oci_tag_record_parse(&(struct udfb_oci_tag_rec){ 0 }, line, (size_t)n - 1) < 0)
		return udfb_err_set(err, UDFB_E_INVALID, "%s: cannot tag '%.140s'", dir, tag);
	cleanup_free char *mk = key_tag(tag) ? memo_key(dir, digest, tag) : NULL;
	pthread_mutex_lock(&mu);
	int known = mk && udfb_strmap_get(&memo, mk, NULL);
	pthread_mutex_unlock(&mu);
	if (known)
		return 0;
	int lock = lock_layout(dir, err);
	if (lock < 0)
		return -1;
	int rc = journal_append(dir, line, (size_t)n, err);
	close(lock);
	if (rc < 0)
		return -1;
	pthread_mutex_lock(&mu);
	if (mk) {
		if (memo_n >= MEMO_MAX)
			memo_clear_locked();
		memo_keys = udfb_realloc(memo_keys, (memo_n + 1) * sizeof(*memo_keys));
		memo_keys[memo_n++] = mk;
		udfb_strmap_put(&memo, mk, 0);
		mk = NULL;
	}
	mark_dirty_locked(dir);
	last_tag = udfb_now_s();
	pthread_cond_signal(&cond);
	pthread_mutex_unlock(&mu);
	return 0;
}

/* ---- deriving index.json ---- */

struct fold {
	json_t *manifests;
	struct udfb_strmap by_tag; /* tag -> position; keys borrowed from the JSON */
	long changed;
};

static void fold_one(const struct udfb_oci_tag_rec *r, void *ctx)
{
	struct fold *f = ctx;
	size_t at;
	if (udfb_strmap_get(&f->by_tag, r->tag, &at)) {
		json_t *d = json_array_get(f->manifests, at);
		const char *dg = json_string_value(json_object_get(d, "digest"));
		const char *mt = json_string_value(json_object_get(d, "mediaType"));
		if (dg && mt && strcmp(dg, r->digest) == 0 && strcmp(mt, r->media_type) == 0 &&
		    json_integer_value(json_object_get(d, "size")) == r->size)
			return;
		/* In place: the annotation's string, which by_tag borrows, stays. */
		json_object_set_new(d, "digest", json_string(r->digest));
		json_object_set_new(d, "mediaType", json_string(r->media_type));
		json_object_set_new(d, "size", json_integer(r->size));
		f->changed++;
		return;
	}
	json_t *d = udfb_json_must(json_pack("{s:s,s:s,s:I,s:{s:s}}", "mediaType", r->media_type, "digest", r->digest,
					     "size", (json_int_t)r->size, "annotations", REF_NAME, r->tag));
	json_array_append_new(f->manifests, d);
	udfb_strmap_put(&f->by_tag, json_string_value(json_object_get(json_object_get(d, "annotations"), REF_NAME)),
			json_array_size(f->manifests) - 1);
	f->changed++;
}

static json_t *load_index(const char *dir, struct udfb_err *err)
{
	cleanup_free char *path = udfb_path_join(dir, "index.json");
	if (!udfb_exists(path))
		return udfb_json_must(json_pack("{s:i,s:[]}", "schemaVersion", 2, "manifests"));
	cleanup_free char *text = NULL;
	size_t len = 0;
	if (udfb_read_file(&text, &len, path, INDEX_MAX, err) < 0)
		return NULL;
	json_error_t jerr;
	json_t *j = json_loadb(text, len, 0, &jerr);
	if (!j || !json_is_object(j)) {
		json_decref(j);
		udfb_err_set(err, UDFB_E_INVALID, "%s: not a JSON object: %s", path, j ? "" : jerr.text);
		return NULL;
	}
	if (!json_is_array(json_object_get(j, "manifests")))
		json_object_set_new(j, "manifests", json_array());
	return j;
}

/* ---- the record of what index.json lists (the fast path) ----
 *
 * Parsing and printing index.json is the whole cost of a derivation (about
 * 250 ms at 30,000 tags with jansson).  So beside every index.json it
 * writes, a derivation leaves DIR/.udfb-tags.known: a header naming that
 * index.json (inode, size, mtime) with the CRC and line count of the body,
 * then one line "TAG DIGEST SIZE MEDIATYPE" per tag it lists.  When the
 * header still matches the file, the next derivation reads these lines
 * instead of the JSON: journal records already current change nothing, and
 * new tags are spliced in before index.json's closing "]}" (we write
 * "manifests" last).  A retag, a damaged or stale record, an index.json
 * written by someone else: the full path, as before.  The record is never
 * fsync'd: its CRC and the header decide whether it can be trusted. */

#define KNOWN ".udfb-tags.known"

struct known {
	char *text; /* the body, lines NUL-terminated in place */
	unsigned crc; /* of the body */
	size_t body_off; /* where the body starts in the file */
	size_t body_len;
	struct udfb_strmap map; /* tag -> offset of "DIGEST SIZE MEDIATYPE" */
};

static void stat_line(char *buf, size_t n, const struct stat *sb)
{
	snprintf(buf, n, "%llx %llx %llx %lld.%09ld", (unsigned long long)sb->st_dev, (unsigned long long)sb->st_ino,
		 (unsigned long long)sb->st_size, (long long)sb->st_mtim.tv_sec, sb->st_mtim.tv_nsec);
}

/* 1 and *k filled when the record matches index.json as it is now. */
static int known_load(struct known *k, const char *dir)
{
	memset(k, 0, sizeof(*k));
	cleanup_free char *path = udfb_path_join(dir, KNOWN), *ipath = udfb_path_join(dir, "index.json");
	struct stat sb;
	struct udfb_err err = UDFB_ERR_INIT;
	size_t len = 0;
	if (stat(ipath, &sb) < 0 || !udfb_exists(path) || udfb_read_file(&k->text, &len, path, JOURNAL_MAX, &err) < 0) {
		udfb_err_clear(&err);
		free(k->text);
		k->text = NULL;
		return 0;
	}
	char want[160], got[160];
	unsigned crc = 0;
	unsigned long lines = 0;
	stat_line(want, sizeof(want), &sb);
	char *nl = memchr(k->text, '\n', len);
	int n = 0;
	if (nl && (size_t)(nl - k->text) < sizeof(got) && sscanf(k->text, "k1 %x %lu %n", &crc, &lines, &n) == 2 &&
	    n > 0) {
		memcpy(got, k->text + n, (size_t)(nl - k->text) - (size_t)n);
		got[nl - k->text - n] = '\0';
	} else {
		got[0] = '\0';
	}
	char *body = nl ? nl + 1 : NULL;
	size_t blen = body ? len - (size_t)(body - k->text) : 0;
	if (!body || strcmp(got, want) != 0 || crc != crc_of(body, blen)) {
		free(k->text);
		k->text = NULL;
		return 0;
	}
	k->crc = crc, k->body_off = (size_t)(body - k->text), k->body_len = blen;
	udfb_strmap_init(&k->map);
	unsigned long seen = 0;
	for (char *p = body, *end = body + blen; p < end; seen++) {
		char *e = memchr(p, '\n', (size_t)(end - p)), *sp = memchr(p, ' ', (size_t)(end - p));
		if (!e || !sp || sp > e)
			break;
		*e = '\0', *sp = '\0';
		udfb_strmap_put(&k->map, p, (size_t)(sp + 1 - k->text));
		p = e + 1;
	}
	if (seen != lines) {
		udfb_strmap_free(&k->map);
		free(k->text);
		k->text = NULL;
		return 0;
	}
	return 1;
}

static void known_free(struct known *k)
{
	if (k->text)
		udfb_strmap_free(&k->map);
	free(k->text);
}

/* Written after index.json is in place: temporary file and rename, no fsync. */
static void known_write(const char *dir, const char *body, size_t blen, unsigned long lines)
{
	cleanup_free char *path = udfb_path_join(dir, KNOWN), *ipath = udfb_path_join(dir, "index.json");
	cleanup_free char *tmp = NULL;
	struct stat sb;
	char st[160], head[256];
	int fd;
	struct udfb_err err = UDFB_ERR_INIT;
	if (stat(ipath, &sb) < 0 || udfb_mktemp(&tmp, &fd, dir, &err) < 0) {
		udfb_err_clear(&err);
		return;
	}
	stat_line(st, sizeof(st), &sb);
	int h = snprintf(head, sizeof(head), "k1 %08x %lu %s\n", crc_of(body, blen), lines, st);
	int ok = udfb_write_all(fd, head, (size_t)h) == 0 && udfb_write_all(fd, body, blen) == 0;
	close(fd);
	if (!ok || rename(tmp, path) < 0)
		unlink(tmp);
}

/* The record of an index.json just written by the full path. */
static void known_from_json(const char *dir, json_t *manifests)
{
	struct udfb_buf b;
	udfb_buf_init(&b, JOURNAL_MAX);
	struct udfb_strmap seen;
	udfb_strmap_init(&seen);
	unsigned long lines = 0;
	int failed = 0;
	size_t k;
	json_t *d;
	json_array_foreach(manifests, k, d) {
		const char *name = json_string_value(json_object_get(json_object_get(d, "annotations"), REF_NAME));
		const char *dg = json_string_value(json_object_get(d, "digest"));
		const char *mt = json_string_value(json_object_get(d, "mediaType"));
		if (!name || !dg || !mt || strchr(name, ' ') || strchr(name, '\n') || strchr(mt, ' ') ||
		    strchr(mt, '\n') || !udfb_strmap_put(&seen, name, 0))
			continue; /* the first of duplicates, as a reader picks */
		failed |= udfb_buf_printf(&b, "%s %s %lld %s\n", name, dg,
					  (long long)json_integer_value(json_object_get(d, "size")), mt) < 0;
		lines++;
	}
	if (!failed)
		known_write(dir, b.data ? b.data : "", b.len, lines);
	udfb_strmap_free(&seen);
	udfb_buf_free(&b);
}

#define ADDED ((size_t)1 << 62)

struct splice {
	struct known *k;
	struct udfb_buf json, lines;
	unsigned long added;
	int retag; /* a record the fast path cannot apply */
	int failed;
};

static void splice_one(const struct udfb_oci_tag_rec *r, void *ctx)
{
	struct splice *s = ctx;
	size_t at;
	char want[UDFB_OCI_TAG_RECORD_MAX];
	snprintf(want, sizeof(want), "%s %lld %s", r->digest, r->size, r->media_type);
	if (udfb_strmap_get(&s->k->map, r->tag, &at)) {
		const char *have = at >= ADDED ? s->lines.data + (at - ADDED) : s->k->text + at;
		s->retag |= strncmp(have, want, strlen(want)) != 0 ||
			    (have[strlen(want)] != '\0' && have[strlen(want)] != '\n');
		return;
	}
	s->failed |=
		udfb_buf_printf(&s->json,
				",{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%lld,\"annotations\":{\"" REF_NAME
				"\":\"%s\"}}",
				r->media_type, r->digest, r->size, r->tag) < 0;
	size_t off = s->lines.len + strlen(r->tag) + 1;
	s->failed |= udfb_buf_printf(&s->lines, "%s %s\n", r->tag, want) < 0;
	s->added++;
	/* A later record of the same tag in this journal compares with this
	 * one; the key is ours (a value from ADDED on marks it, freed by
	 * sync_fast). */
	char *key = udfb_strdup(r->tag);
	if (!udfb_strmap_put(&s->k->map, key, ADDED + off))
		free(key);
}

/* Into a temporary file of dir: head, then the bytes [off, off + n) of the
 * file src (copied by the kernel, so none of its pages is faulted into this
 * process), then tail; fsync'd when sync; renamed to path. */
static int splice_file(const char *dir, const char *path, const char *head, size_t hlen, const char *src, off_t off,
		       size_t n, const char *tail, size_t tlen, int sync, struct udfb_err *err)
{
	cleanup_free char *tmp = NULL;
	cleanup_close int in = open(src, O_RDONLY | O_CLOEXEC);
	int fd;
	if (in < 0)
		return udfb_err_sys(err, errno, "%s", src);
	if (udfb_mktemp(&tmp, &fd, dir, err) < 0)
		return -1;
	int ok = udfb_write_all(fd, head, hlen) == 0;
	while (ok && n > 0) {
		ssize_t c = copy_file_range(in, &off, fd, NULL, n, 0);
		if (c < 0 && errno == EINTR)
			continue;
		if (c <= 0) { /* no in-kernel copy here: through a buffer */
			char buf[1 << 16];
			ssize_t r = pread(in, buf, n < sizeof(buf) ? n : sizeof(buf), off);
			if (r <= 0 || udfb_write_all(fd, buf, (size_t)r) < 0) {
				ok = 0;
				break;
			}
			c = r, off += r;
		}
		n -= (size_t)c;
	}
	ok = ok && udfb_write_all(fd, tail, tlen) == 0;
	int rc = ok ? 0 : udfb_err_sys(err, errno ? errno : EIO, "write %s", path);
	if (rc == 0 && sync)
		rc = udfb_fsync_fd(fd, path, err);
	close(fd);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = udfb_err_sys(err, errno, "rename to %s", path);
	if (rc < 0)
		unlink(tmp);
	return rc == 0 && sync ? udfb_fsync_dir(dir, err) : rc;
}

/* 1 when the journal was applied by the fast path, 0 to take the full
 * path, -1 on an error writing. */
static int sync_fast(const char *dir, const char *journal, size_t jlen, long *applied, struct udfb_err *err)
{
	struct known k;
	if (!known_load(&k, dir))
		return 0;
	struct splice s = { .k = &k };
	udfb_buf_init(&s.json, INDEX_MAX);
	udfb_buf_init(&s.lines, JOURNAL_MAX);
	long bad = for_each_record(journal, jlen, splice_one, &s);
	int rc = 0;
	if (!s.retag && !bad && !s.failed && s.added) {
		cleanup_free char *ipath = udfb_path_join(dir, "index.json");
		char end[3] = { 0 };
		struct stat sb;
		cleanup_close int fd = open(ipath, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &sb) < 0 || sb.st_size < 3 || pread(fd, end, 3, sb.st_size - 3) != 3 ||
		    end[1] != ']' || end[2] != '}')
			s.retag = 1; /* not the shape we write: the full path */
		if (!s.retag) {
			int empty = end[0] == '[';
			s.failed |= udfb_buf_add(&s.json, "]}", 2) < 0;
			rc = s.failed ? 0
				      : splice_file(dir, ipath, "", 0, ipath, 0, (size_t)sb.st_size - 2,
						    s.json.data + empty, s.json.len - (size_t)empty, 1, err);
		}
		if (rc == 0 && !s.retag && !s.failed) {
			/* The record: a new header, the old body, the new lines. */
			cleanup_free char *kpath = udfb_path_join(dir, KNOWN);
			struct stat ib;
			char st[160], head[256];
			unsigned long lines = (unsigned long)k.map.n;
			unsigned crc =
				(unsigned)crc32_combine(k.crc, crc_of(s.lines.data, s.lines.len), (z_off_t)s.lines.len);
			struct udfb_err e = UDFB_ERR_INIT;
			if (stat(ipath, &ib) == 0) {
				stat_line(st, sizeof(st), &ib);
				int h = snprintf(head, sizeof(head), "k1 %08x %lu %s\n", crc, lines, st);
				if (splice_file(dir, kpath, head, (size_t)h, kpath, (off_t)k.body_off, k.body_len,
						s.lines.data, s.lines.len, 0, &e) < 0)
					unlink(kpath); /* the next derivation takes the full path */
			}
			udfb_err_clear(&e);
		}
	}
	int fast = rc < 0 ? -1 : (s.retag || bad || s.failed) ? 0 : 1;
	if (fast == 1)
		*applied = (long)s.added;
	/* Keys strdup'd for tags added here are marked by their values. */
	for (size_t i = 0; i < k.map.cap; i++)
		if (k.map.keys && k.map.keys[i] && k.map.vals[i] >= ADDED)
			free((char *)k.map.keys[i]);
	known_free(&k);
	udfb_buf_free(&s.json);
	udfb_buf_free(&s.lines);
	return fast;
}

static int write_index(const char *dir, json_t *index, struct udfb_err *err)
{
	/* "manifests" last, so the fast path can splice before the closing "]}". */
	json_t *ms = json_incref(json_object_get(index, "manifests"));
	json_object_del(index, "manifests");
	json_object_set_new(index, "manifests", ms);
	cleanup_free char *path = udfb_path_join(dir, "index.json");
	cleanup_free char *layout = udfb_path_join(dir, "oci-layout");
	char *out = udfb_json_dumps_must(index, JSON_COMPACT);
	/* A new layout's files are made here, at its first derivation, not
	 * when its first blob came (udfb_oci_init_blobs): index.json is written
	 * once, the derived one, with oci-layout beside it; both files' bytes
	 * synced together, then renamed (index.json first: a reader finds a
	 * layout whose oci-layout is there has its index.json), then the
	 * directory synced once. */
	const char *lt = "{\"imageLayoutVersion\":\"1.0.0\"}";
	struct udfb_wgroup g;
	udfb_wgroup_init(&g);
	int rc = udfb_wgroup_add_bytes(&g, path, out, strlen(out), 0, err);
	if (rc == 0 && !udfb_exists(layout))
		rc = udfb_wgroup_add_bytes(&g, layout, lt, strlen(lt), 1, err);
	if (rc == 0)
		rc = udfb_wgroup_commit(&g, err);
	udfb_wgroup_free(&g);
	free(out);
	if (rc == 0)
		rc = udfb_fsync_dir(dir, err);
	if (rc == 0)
		known_from_json(dir, ms);
	return rc;
}

static int sync_locked(const char *dir, long *applied, struct udfb_err *err)
{
	cleanup_free char *text = NULL;
	size_t len = 0;
	if (journal_read(&text, &len, dir, err) < 0)
		return -1;
	if (len == 0)
		return 0;
	int fast = sync_fast(dir, text, len, applied, err);
	if (fast < 0)
		return -1;
	cleanup_free char *jpath = udfb_path_join(dir, JOURNAL);
	if (fast == 0) {
		json_t *index = load_index(dir, err);
		if (!index)
			return -1;
		struct fold f = { .manifests = json_object_get(index, "manifests") };
		udfb_strmap_init(&f.by_tag);
		size_t k;
		json_t *d;
		json_array_foreach(f.manifests, k, d) {
			const char *name =
				json_string_value(json_object_get(json_object_get(d, "annotations"), REF_NAME));
			if (name)
				udfb_strmap_put(&f.by_tag, name, k); /* the first of duplicates, as a reader picks */
		}
		long bad = for_each_record(text, len, fold_one, &f);
		if (bad)
			udfb_warn("%s/%s: %ld damaged tag records skipped", dir, JOURNAL, bad);
		int rc = f.changed ? write_index(dir, index, err) : 0;
		if (rc == 0 && !f.changed)
			known_from_json(dir, f.manifests); /* so the next derivation takes the fast path */
		udfb_strmap_free(&f.by_tag);
		json_decref(index);
		if (rc < 0)
			return -1;
		*applied = f.changed;
	}
	/* index.json is on disk (fsync'd, renamed): the journal may go. */
	if (truncate(jpath, 0) < 0)
		return udfb_err_sys(err, errno, "truncate %s", jpath);
	return 0;
}

int udfb_oci_sync(const char *dir, struct udfb_err *err)
{
	int lock = lock_layout(dir, err);
	if (lock < 0)
		return -1;
	double t0 = udfb_now_s();
	long applied = 0;
	int rc = sync_locked(dir, &applied, err);
	close(lock);
	if (rc == 0 && applied)
		udfb_debug("%s: index.json written with %ld new tags in %.1f ms", dir, applied,
			   (udfb_now_s() - t0) * 1e3);
	return rc < 0 ? udfb_err_wrap(err, "OCI layout %s", dir) : 0;
}

int udfb_oci_sync_all(struct udfb_err *err)
{
	pthread_mutex_lock(&mu);
	char **dirs = dirty;
	size_t n = n_dirty;
	dirty = NULL, n_dirty = 0;
	pthread_mutex_unlock(&mu);
	int rc = 0;
	for (size_t k = 0; k < n; k++) {
		struct udfb_err e = UDFB_ERR_INIT;
		if (udfb_oci_sync(dirs[k], rc == 0 ? err : &e) < 0)
			rc = -1;
		udfb_err_clear(&e);
		free(dirs[k]);
	}
	free(dirs);
	return rc;
}

/* ---- the service: a sync after a quiet interval ---- */

static pthread_t syncer;
static int syncer_on, syncer_stop, quiet_ms_, max_ms_;

static void *syncer_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	while (!syncer_stop) {
		if (!n_dirty) {
			pthread_cond_wait(&cond, &mu);
			continue;
		}
		double now = udfb_now_s();
		double due = last_tag + quiet_ms_ / 1e3, cap = first_dirty + max_ms_ / 1e3;
		double at = due < cap ? due : cap;
		if (now < at) {
			struct timespec ts; /* cond's clock is the default, CLOCK_REALTIME */
			udfb_abstime(&ts, CLOCK_REALTIME, (long long)((at - now) * 1e3) + 1);
			pthread_cond_timedwait(&cond, &mu, &ts);
			continue;
		}
		pthread_mutex_unlock(&mu);
		struct udfb_err err = UDFB_ERR_INIT;
		if (udfb_oci_sync_all(&err) < 0)
			udfb_warn("tags: %s", err.msg);
		udfb_err_clear(&err);
		pthread_mutex_lock(&mu);
	}
	pthread_mutex_unlock(&mu);
	return NULL;
}

int udfb_oci_autosync_start(int quiet_ms, int max_ms, struct udfb_err *err)
{
	pthread_mutex_lock(&mu);
	int on = syncer_on;
	quiet_ms_ = quiet_ms, max_ms_ = max_ms, syncer_stop = 0;
	pthread_mutex_unlock(&mu);
	if (on)
		return 0;
	int e = pthread_create(&syncer, NULL, syncer_main, NULL);
	if (e)
		return udfb_err_sys(err, e, "start the tag syncer");
	syncer_on = 1;
	return 0;
}

int udfb_oci_autosync_stop(struct udfb_err *err)
{
	if (syncer_on) {
		pthread_mutex_lock(&mu);
		syncer_stop = 1;
		pthread_cond_broadcast(&cond);
		pthread_mutex_unlock(&mu);
		pthread_join(syncer, NULL);
		syncer_on = 0;
	}
	int rc = udfb_oci_sync_all(err);
	pthread_mutex_lock(&mu);
	memo_clear_locked();
	pthread_mutex_unlock(&mu);
	return rc;
}

/* ---- our own reader ---- */

struct find {
	const char *tag;
	struct udfb_oci_tag_rec last;
	int found;
};

static void find_one(const struct udfb_oci_tag_rec *r, void *ctx)
{
	struct find *f = ctx;
	if (strcmp(r->tag, f->tag) == 0)
		f->last = *r, f->found = 1;
}

json_t *udfb_oci_journal_descriptor(const char *dir, const char *tag)
{
	struct udfb_err err = UDFB_ERR_INIT;
	cleanup_free char *text = NULL;
	size_t len = 0;
	struct find f = { .tag = tag };
	if (journal_read(&text, &len, dir, &err) < 0) {
		udfb_err_clear(&err);
		return NULL; /* unreadable: index.json alone decides */
	}
	for_each_record(text, len, find_one, &f);
	if (!f.found)
		return NULL;
	return udfb_json_must(json_pack("{s:s,s:s,s:I,s:{s:s}}", "mediaType", f.last.media_type, "digest",
					f.last.digest, "size", (json_int_t)f.last.size, "annotations", REF_NAME,
					f.last.tag));
}
