/* File-system helpers: see fsutil.h. */
#include "common/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/cleanup.h"

char *udfb_path_join(const char *a, const char *b)
{
	return udfb_asprintf("%s/%s", a, b);
}

int udfb_exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

int udfb_read_file(char **out, size_t *len, const char *path, size_t max, struct udfb_err *err)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return udfb_err_set(err, UDFB_E_NOTFOUND, "%s: no such file", path);
		return udfb_err_sys(err, errno, "open %s", path);
	}
	struct udfb_buf b;
	udfb_buf_init(&b, max);
	char chunk[65536];
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			udfb_buf_free(&b);
			return udfb_err_sys(err, errno, "read %s", path);
		}
		if (n == 0)
			break;
		if (udfb_buf_add(&b, chunk, (size_t)n) < 0) {
			udfb_buf_free(&b);
			return udfb_err_set(err, UDFB_E_EXHAUSTED, "%s: larger than %zu bytes", path, max);
		}
	}
	*out = udfb_buf_steal(&b, len);
	return 0;
}

static char *dir_of(const char *path)
{
	char *tmp = udfb_strdup(path);
	char *d = udfb_strdup(dirname(tmp));
	free(tmp);
	return d;
}

int udfb_fsync_fd(int fd, const char *what, struct udfb_err *err)
{
	if (fsync(fd) < 0)
		return udfb_err_sys(err, errno, "fsync %s", what);
	return 0;
}

int udfb_fsync_dir(const char *dir, struct udfb_err *err)
{
	cleanup_close int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return udfb_err_sys(err, errno, "open %s", dir);
	return udfb_fsync_fd(fd, dir, err);
}

int udfb_mktemp(char **out, int *fd, const char *dir, struct udfb_err *err)
{
	char *tmpl = udfb_path_join(dir, ".tmp-XXXXXX");
	int f = mkostemp(tmpl, O_CLOEXEC);
	if (f < 0) {
		int e = errno;
		free(tmpl);
		return udfb_err_sys(err, e, "create temporary file in %s", dir);
	}
	/* Store files are read by other users (registries, runtimes): not 0600. */
	fchmod(f, 0644);
	*out = tmpl;
	*fd = f;
	return 0;
}

int udfb_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0) /* no progress, no error: a full device, as good as */
			errno = ENOSPC;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

enum { SYNC_DATA = 1, SYNC_DIR = 2 };

/* The bytes in a new temporary file beside path (*tmp, *fd): nothing is
 * left behind on an error. */
static int write_tmp(const char *path, const void *data, size_t len, char **tmp, int *fd, struct udfb_err *err)
{
	cleanup_free char *dir = dir_of(path);
	if (udfb_mktemp(tmp, fd, dir, err) < 0)
		return -1;
	if (udfb_write_all(*fd, data, len) < 0) {
		int e = errno;
		close(*fd);
		unlink(*tmp);
		free(*tmp);
		*tmp = NULL;
		*fd = -1;
		return udfb_err_sys(err, e, "write %s", path);
	}
	return 0;
}

static int write_file(const char *path, const void *data, size_t len, int sync, struct udfb_err *err)
{
	cleanup_free char *dir = dir_of(path);
	cleanup_free char *tmp = NULL;
	cleanup_close int fd = -1;
	if (write_tmp(path, data, len, &tmp, &fd, err) < 0)
		return -1;
	if (((sync & SYNC_DATA) && udfb_fsync_fd(fd, path, err) < 0) || rename(tmp, path) < 0) {
		if (!err->msg)
			udfb_err_sys(err, errno, "rename to %s", path);
		unlink(tmp);
		return -1;
	}
	return (sync & SYNC_DIR) ? udfb_fsync_dir(dir, err) : 0;
}

int udfb_write_file_atomic(const char *path, const void *data, size_t len, struct udfb_err *err)
{
	return write_file(path, data, len, SYNC_DATA | SYNC_DIR, err);
}

int udfb_write_file_nodirsync(const char *path, const void *data, size_t len, struct udfb_err *err)
{
	return write_file(path, data, len, SYNC_DATA, err);
}

int udfb_write_file_unsynced(const char *path, const void *data, size_t len, struct udfb_err *err)
{
	return write_file(path, data, len, 0, err);
}

void udfb_start_writeback(int fd)
{
	(void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
}

int udfb_fsync_fds(const int *fds, const char *const *what, size_t n, struct udfb_err *err)
{
	for (size_t k = 0; k < n; k++)
		udfb_start_writeback(fds[k]);
	for (size_t k = 0; k < n; k++)
		if (udfb_fsync_fd(fds[k], what[k], err) < 0)
			return -1;
	return 0;
}

void udfb_wgroup_init(struct udfb_wgroup *g)
{
	memset(g, 0, sizeof(*g));
}

static struct udfb_wgroup_file *wgroup_slot(struct udfb_wgroup *g)
{
	if (g->n == g->cap) {
		g->cap = g->cap ? 2 * g->cap : 8;
		g->v = udfb_realloc(g->v, g->cap * sizeof(*g->v));
	}
	struct udfb_wgroup_file *f = &g->v[g->n++];
	memset(f, 0, sizeof(*f));
	f->fd = -1;
	return f;
}

int udfb_wgroup_add_bytes(struct udfb_wgroup *g, const char *path, const void *data, size_t len, int keep,
			  struct udfb_err *err)
{
	char *tmp = NULL;
	int fd;
	if (write_tmp(path, data, len, &tmp, &fd, err) < 0)
		return -1;
	udfb_start_writeback(fd);
	struct udfb_wgroup_file *f = wgroup_slot(g);
	f->tmp = tmp, f->fd = fd, f->path = udfb_strdup(path), f->keep = keep;
	return 0;
}

int udfb_wgroup_add_tmp(struct udfb_wgroup *g, const char *tmp, const char *path, int keep, struct udfb_err *err)
{
	int fd = open(tmp, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		unlink(tmp);
		return udfb_err_sys(err, e, "open %s", tmp);
	}
	udfb_start_writeback(fd);
	struct udfb_wgroup_file *f = wgroup_slot(g);
	f->tmp = udfb_strdup(tmp), f->path = udfb_strdup(path), f->keep = keep, f->fd = fd;
	return 0;
}

/* Renames tmp to path unless path exists (then tmp goes): atomically where
 * the file system knows RENAME_NOREPLACE, so two writers of the same file
 * never replace what the other already uses. */
static int rename_keeping(const char *tmp, const char *path)
{
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno == EEXIST || ((errno == EINVAL || errno == ENOSYS) && udfb_exists(path))) {
		unlink(tmp);
		return 0;
	}
	if (errno == EINVAL || errno == ENOSYS)
		return rename(tmp, path);
	return -1;
}

int udfb_wgroup_commit(struct udfb_wgroup *g, struct udfb_err *err)
{
	for (size_t k = 0; k < g->n; k++)
		if (udfb_fsync_fd(g->v[k].fd, g->v[k].path, err) < 0)
			return -1;
	for (size_t k = 0; k < g->n; k++) {
		struct udfb_wgroup_file *f = &g->v[k];
		close(f->fd);
		f->fd = -1;
		if (f->keep ? rename_keeping(f->tmp, f->path) < 0 : rename(f->tmp, f->path) < 0)
			return udfb_err_sys(err, errno, "rename to %s", f->path);
		free(f->tmp);
		f->tmp = NULL;
	}
	return 0;
}

void udfb_wgroup_free(struct udfb_wgroup *g)
{
	for (size_t k = 0; k < g->n; k++) {
		struct udfb_wgroup_file *f = &g->v[k];
		if (f->fd >= 0)
			close(f->fd);
		if (f->tmp)
			unlink(f->tmp);
		free(f->tmp);
		free(f->path);
	}
	free(g->v);
	udfb_wgroup_init(g);
}

/* The whole path first: it usually exists, or only its last part is new
 * (one system call, not one per component, each a lookup from the root). */
int udfb_mkdir_p(const char *path, int mode, struct udfb_err *err)
{
	if (mkdir(path, (mode_t)mode) == 0 || errno == EEXIST)
		return 0;
	if (errno != ENOENT)
		return udfb_err_sys(err, errno, "mkdir %s", path);
	cleanup_free char *p = udfb_strdup(path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, (mode_t)mode) < 0 && errno != EEXIST)
			return udfb_err_sys(err, errno, "mkdir %s", p);
		*s = '/';
	}
	if (mkdir(p, (mode_t)mode) < 0 && errno != EEXIST)
		return udfb_err_sys(err, errno, "mkdir %s", p);
	return 0;
}

static int copy_fd(int in, int out)
{
	char buf[65536];
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return (int)n;
		if (udfb_write_all(out, buf, (size_t)n) < 0)
			return -1;
	}
}

/* A writer of the same content may rename a new inode over src while
 * link() holds the old one, whose last name is then gone: link fails with
 * ENOENT though src exists.  The new inode links as well, so try again. */
static int link_retrying(const char *src, const char *dst)
{
	for (int tries = 0;; tries++) {
		if (link(src, dst) == 0 || errno == EEXIST)
			return 0;
		int e = errno;
		if (e != ENOENT || tries == 8 || !udfb_exists(src))
			return errno = e, -1;
	}
}

int udfb_link_or_copy(const char *src, const char *dst, struct udfb_err *err)
{
	if (udfb_exists(dst) || link_retrying(src, dst) == 0)
		return 0;
	if (errno != EXDEV && errno != EPERM && errno != EMLINK)
		return udfb_err_sys(err, errno, "link %s to %s", src, dst);
	cleanup_close int in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return udfb_err_sys(err, errno, "open %s", src);
	cleanup_free char *dir = dir_of(dst);
	cleanup_free char *tmp = NULL;
	cleanup_close int out = -1;
	if (udfb_mktemp(&tmp, &out, dir, err) < 0)
		return -1;
	if (copy_fd(in, out) < 0 || fsync(out) < 0 || rename(tmp, dst) < 0) {
		int e = errno;
		unlink(tmp);
		return udfb_err_sys(err, e, "copy %s to %s", src, dst);
	}
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP || flag == FTW_D)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

void udfb_rm_rf(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}
