/* Layer unpacking: see unpack.h.
 *
 * The service runs as root, so a careless unpack is a host compromise: an
 * entry `a -> /etc` followed by `a/passwd` would write the host's file.  Every
 * directory on the way to an entry is therefore opened with O_NOFOLLOW from a
 * descriptor of the layer's root (a symlink or a non-directory on the way is
 * an error), and every file is created with O_EXCL|O_NOFOLLOW. */
#include "scheduler/unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/hash.h"

#define WH_PREFIX ".wh."
#define WH_OPAQUE ".wh..wh..opq"
#define READ_CHUNK (256u << 10)
#define MAX_ENTRIES 4000000L

struct reader {
	int fd;
	struct udfb_sha256 *h;
	char *buf;
};

struct unpacker {
	const char *layer; /* for messages: the digest or the file */
	int root;
	char *cached_dir; /* the parent directory last resolved, and its fd */
	int cached_fd;
	struct udfb_unpack_stats *st;
};

static la_ssize_t read_cb(struct archive *a, void *ctx, const void **out)
{
	(void)a;
	struct reader *r = ctx;
	ssize_t n;
	do
		n = read(r->fd, r->buf, READ_CHUNK);
	while (n < 0 && errno == EINTR);
	if (n > 0 && r->h)
		udfb_sha256_update(r->h, r->buf, (size_t)n);
	*out = r->buf;
	return n;
}

/* Bytes after the tar's end (padding, the gzip trailer) count for the digest. */
static int drain(struct reader *r)
{
	for (;;) {
		ssize_t n = read(r->fd, r->buf, READ_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -1 : 0;
		if (r->h)
			udfb_sha256_update(r->h, r->buf, (size_t)n);
	}
}

/* "./a//b/./c/" -> "a/b/c"; NULL for "..", an over-long or empty-after-all name. */
static char *clean_path(const char *in)
{
	size_t n = strlen(in);
	if (n >= 4096)
		return NULL;
	char *out = udfb_malloc(n + 1);
	size_t o = 0;
	for (const char *p = in; *p;) {
		while (*p == '/')
			p++;
		const char *s = p;
		while (*p && *p != '/')
			p++;
		size_t len = (size_t)(p - s);
		if (len == 0 || (len == 1 && s[0] == '.'))
			continue;
		if (len == 2 && s[0] == '.' && s[1] == '.') {
			free(out);
			return NULL;
		}
		if (o)
			out[o++] = '/';
		memcpy(out + o, s, len);
		o += len;
	}
	out[o] = '\0';
	return out;
}

static void uncache(struct unpacker *u)
{
	if (u->cached_fd >= 0)
		close(u->cached_fd);
	u->cached_fd = -1;
	free(u->cached_dir);
	u->cached_dir = NULL;
}

/* The directory dir (relative, clean) beneath the root, created when create
 * is set.  The fd stays owned by the unpacker. */
static int open_dir(struct unpacker *u, const char *dir, int create, int *out, struct udfb_err *err)
{
	if (!*dir) {
		*out = u->root;
		return 0;
	}
	if (u->cached_dir && strcmp(u->cached_dir, dir) == 0) {
		*out = u->cached_fd;
		return 0;
	}
	uncache(u);
	int cur = dup(u->root);
	cleanup_free char *copy = udfb_strdup(dir);
	for (char *save = NULL, *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		int fd = openat(cur, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 && errno == ENOENT && create && mkdirat(cur, c, 0755) == 0)
			fd = openat(cur, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int e = errno;
		close(cur);
		if (fd < 0) {
			if (e == ELOOP || e == ENOTDIR)
				return udfb_err_set(err, UDFB_E_INVALID,
						    "layer %s: '%s' goes through a symlink or a file", u->layer, dir);
			return udfb_err_sys(err, e, "layer %s: directory '%s'", u->layer, dir);
		}
		cur = fd;
	}
	u->cached_dir = udfb_strdup(dir);
	u->cached_fd = cur;
	*out = cur;
	return 0;
}

/* Split a clean path into its parent's fd and its last component. */
static int locate(struct unpacker *u, char *path, int create, int *dirfd, const char **name, struct udfb_err *err)
{
	char *slash = strrchr(path, '/');
	if (!slash) {
		*name = path;
		return open_dir(u, "", create, dirfd, err);
	}
	*slash = '\0';
	*name = slash + 1;
	int rc = open_dir(u, path, create, dirfd, err);
	*slash = '/';
	return rc;
}

/* Make room for a new non-directory entry: an earlier one of the same name
 * goes (an empty directory too; a full one is an error). */
static int clear_name(struct unpacker *u, int dirfd, const char *name, const char *path, struct udfb_err *err)
{
	if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	/* dirfd may be the cached parent: it stays valid (and open) here. */
	if (errno == EISDIR) {
		if (unlinkat(dirfd, name, AT_REMOVEDIR) == 0)
			return 0;
	}
	return udfb_err_sys(err, errno, "layer %s: replace '%s'", u->layer, path);
}

static mode_t safe_mode(struct archive_entry *e)
{
	return archive_entry_perm(e) & 01777; /* no setuid, no setgid */
}

static void entry_times(struct archive_entry *e, struct timespec ts[2])
{
	ts[0].tv_sec = ts[1].tv_sec = archive_entry_mtime(e);
	ts[0].tv_nsec = ts[1].tv_nsec = archive_entry_mtime_nsec(e);
}

static int write_data(struct unpacker *u, struct archive *a, int fd, const char *path, struct udfb_err *err)
{
	const void *buf;
	size_t size;
	la_int64_t off;
	int r;
	while ((r = archive_read_data_block(a, &buf, &size, &off)) == ARCHIVE_OK) {
		for (size_t done = 0; done < size;) {
			ssize_t n = pwrite(fd, (const char *)buf + done, size - done, off + (off_t)done);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return udfb_err_sys(err, errno, "layer %s: write '%s'", u->layer, path);
			done += (size_t)n;
		}
		u->st->bytes += (long long)size;
	}
	if (r != ARCHIVE_EOF)
		return udfb_err_set(err, UDFB_E_INVALID, "layer %s: '%s': %s", u->layer, path, archive_error_string(a));
	return 0;
}

static int put_file(struct unpacker *u, struct archive *a, struct archive_entry *e, int dirfd, const char *name,
		    const char *path, struct udfb_err *err)
{
	if (clear_name(u, dirfd, name, path, err) < 0)
		return -1;
	cleanup_close int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return udfb_err_sys(err, errno, "layer %s: create '%s'", u->layer, path);
	if (write_data(u, a, fd, path, err) < 0)
		return -1;
	struct timespec ts[2];
	entry_times(e, ts);
	/* chown first: it would clear mode bits set before it. */
	if (ftruncate(fd, archive_entry_size(e)) < 0 || fchown(fd, archive_entry_uid(e), archive_entry_gid(e)) < 0 ||
	    fchmod(fd, safe_mode(e)) < 0 || futimens(fd, ts) < 0)
		return udfb_err_sys(err, errno, "layer %s: '%s'", u->layer, path);
	return 0;
}

static int put_dir(struct unpacker *u, struct archive_entry *e, int dirfd, const char *name, const char *path,
		   struct udfb_err *err)
{
	struct stat st;
	if (mkdirat(dirfd, name, 0700) < 0) {
		if (errno != EEXIST || fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return udfb_err_sys(err, errno, "layer %s: mkdir '%s'", u->layer, path);
		if (!S_ISDIR(st.st_mode) &&
		    (clear_name(u, dirfd, name, path, err) < 0 || mkdirat(dirfd, name, 0700) < 0))
			return err->msg ? -1 : udfb_err_sys(err, errno, "layer %s: mkdir '%s'", u->layer, path);
	}
	if (fchownat(dirfd, name, archive_entry_uid(e), archive_entry_gid(e), AT_SYMLINK_NOFOLLOW) < 0 ||
	    fchmodat(dirfd, name, safe_mode(e), 0) < 0)
		return udfb_err_sys(err, errno, "layer %s: '%s'", u->layer, path);
	return 0;
}

static int put_symlink(struct unpacker *u, struct archive_entry *e, int dirfd, const char *name, const char *path,
		       struct udfb_err *err)
{
	const char *target = archive_entry_symlink(e);
	if (!target)
		return udfb_err_set(err, UDFB_E_INVALID, "layer %s: symlink '%s' has no target", u->layer, path);
	/* The target is read inside the sandbox's root; nothing here follows it. */
	struct timespec ts[2];
	entry_times(e, ts);
	if (clear_name(u, dirfd, name, path, err) < 0)
		return -1;
	if (symlinkat(target, dirfd, name) < 0 ||
	    fchownat(dirfd, name, archive_entry_uid(e), archive_entry_gid(e), AT_SYMLINK_NOFOLLOW) < 0 ||
	    utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return udfb_err_sys(err, errno, "layer %s: symlink '%s'", u->layer, path);
	return 0;
}

static int put_hardlink(struct unpacker *u, struct archive_entry *e, int dirfd, const char *name, const char *path,
			struct udfb_err *err)
{
	cleanup_free char *target = clean_path(archive_entry_hardlink(e));
	if (!target || !*target)
		return udfb_err_set(err, UDFB_E_INVALID, "layer %s: hard link '%s' has a bad target", u->layer, path);
	if (clear_name(u, dirfd, name, path, err) < 0)
		return -1;
	/* Resolving the target may replace the cached directory: hold ours. */
	cleanup_close int mine = dup(dirfd);
	int tdir;
	const char *tname;
	if (locate(u, target, 0, &tdir, &tname, err) < 0)
		return udfb_err_wrap(err, "hard link '%s'", path);
	if (linkat(tdir, tname, mine, name, 0) < 0)
		return udfb_err_sys(err, errno, "layer %s: hard link '%s' to '%s' (in this layer)", u->layer, path,
				    target);
	return 0;
}

static int put_whiteout(struct unpacker *u, int dirfd, const char *name, const char *path, struct udfb_err *err)
{
	if (strcmp(name, WH_OPAQUE) == 0) {
		if (fsetxattr(dirfd, "trusted.overlay.opaque", "y", 1, 0) < 0)
			return udfb_err_sys(err, errno, "layer %s: opaque directory '%s'", u->layer, path);
		u->st->whiteouts++;
		return 0;
	}
	const char *hidden = name + strlen(WH_PREFIX);
	if (strncmp(hidden, WH_PREFIX, strlen(WH_PREFIX)) == 0)
		return 0; /* AUFS bookkeeping (.wh..wh.plnk and the like) */
	if (!*hidden || strcmp(hidden, ".") == 0 || strcmp(hidden, "..") == 0)
		return udfb_err_set(err, UDFB_E_INVALID, "layer %s: bad whiteout '%s'", u->layer, path);
	if (clear_name(u, dirfd, hidden, path, err) < 0)
		return -1;
	if (mknodat(dirfd, hidden, S_IFCHR | 0, makedev(0, 0)) < 0)
		return udfb_err_sys(err, errno, "layer %s: whiteout '%s'", u->layer, path);
	u->st->whiteouts++;
	return 0;
}

static int put_entry(struct unpacker *u, struct archive *a, struct archive_entry *e, struct udfb_err *err)
{
	const char *raw = archive_entry_pathname(e);
	cleanup_free char *path = raw ? clean_path(raw) : NULL;
	if (!path)
		return udfb_err_set(err, UDFB_E_INVALID, "layer %s: entry '%.200s' leaves the root", u->layer,
				    raw ? raw : "(no name)");
	if (!*path)
		return 0; /* the root itself: ours stays 0755 root:root */
	mode_t type = archive_entry_filetype(e);
	int is_dir = type == AE_IFDIR && !archive_entry_hardlink(e);
	int dirfd;
	const char *name;
	if (locate(u, path, 1, &dirfd, &name, err) < 0)
		return -1;
	if (strncmp(name, WH_PREFIX, strlen(WH_PREFIX)) == 0)
		return put_whiteout(u, dirfd, name, path, err);
	if (archive_entry_hardlink(e))
		return put_hardlink(u, e, dirfd, name, path, err);
	if (is_dir)
		return put_dir(u, e, dirfd, name, path, err);
	if (type == AE_IFREG)
		return put_file(u, a, e, dirfd, name, path, err);
	if (type == AE_IFLNK)
		return put_symlink(u, e, dirfd, name, path, err);
	u->st->skipped++; /* devices, FIFOs, sockets: never in a sandbox's root */
	return 0;
}

static int unpack_all(struct unpacker *u, struct archive *a, struct udfb_err *err)
{
	struct archive_entry *e;
	int r;
	while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
		if (++u->st->entries > MAX_ENTRIES)
			return udfb_err_set(err, UDFB_E_EXHAUSTED, "layer %s: more than %ld entries", u->layer,
					    MAX_ENTRIES);
		if (put_entry(u, a, e, err) < 0)
			return -1;
	}
	if (r != ARCHIVE_EOF)
		return udfb_err_set(err, UDFB_E_INVALID, "layer %s: not a readable tar: %s", u->layer,
				    archive_error_string(a));
	return 0;
}

int udfb_layer_unpack(const char *blob, const char *digest, const char *dir, struct udfb_unpack_stats *stats,
		      struct udfb_err *err)
{
	struct udfb_unpack_stats dummy = { 0 };
	struct unpacker u = {
		.layer = digest ? digest : blob, .root = -1, .cached_fd = -1, .st = stats ? stats : &dummy
	};
	memset(u.st, 0, sizeof(*u.st));
	struct reader r = { .fd = open(blob, O_RDONLY | O_CLOEXEC) };
	if (r.fd < 0)
		return udfb_err_sys(err, errno, "layer %s: open %s", u.layer, blob);
	u.root = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (u.root < 0) {
		close(r.fd);
		return udfb_err_sys(err, errno, "layer %s: open %s", u.layer, dir);
	}
	r.buf = udfb_malloc(READ_CHUNK);
	r.h = digest ? udfb_sha256_new() : NULL;
	struct archive *a = archive_read_new();
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	int rc = 0;
	if (archive_read_open(a, &r, NULL, read_cb, NULL) != ARCHIVE_OK)
		rc = udfb_err_set(err, UDFB_E_INVALID, "layer %s: %s", u.layer, archive_error_string(a));
	if (rc == 0)
		rc = unpack_all(&u, a, err);
	if (rc == 0 && drain(&r) < 0)
		rc = udfb_err_sys(err, errno, "layer %s: read %s", u.layer, blob);
	archive_read_free(a);
	if (r.h) {
		char got[UDFB_DIGEST_LEN + 1];
		udfb_sha256_final(r.h, got);
		if (rc == 0 && strcmp(got, digest) != 0)
			rc = udfb_err_set(err, UDFB_E_INTERNAL, "layer %s: %s is corrupt (its content hashes to %s)",
					  digest, blob, got);
	}
	uncache(&u);
	close(u.root);
	close(r.fd);
	free(r.buf);
	return rc;
}
