/* A local directory as a package index: its wheels and sdists, flat (no
 * recursion), hashed when listed so that they are named by content like
 * an index's files. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/hashpipe.h"
#include "python/pep508.h"
#include "pkgindex/pkgindex_internal.h"

static int ends_with(const char *s, size_t len, const char *suffix)
{
	size_t n = strlen(suffix);
	return len > n && strcmp(s + len - n, suffix) == 0;
}

/* The file name without its extension, or 0 when it is no distribution. */
static size_t stem_len(const char *name, int *wheel)
{
	size_t len = strlen(name);
	*wheel = ends_with(name, len, ".whl");
	if (*wheel)
		return len - 4;
	if (ends_with(name, len, ".tar.gz"))
		return len - 7;
	return ends_with(name, len, ".zip") ? len - 4 : 0;
}

static int prefix_is(const char *s, size_t n, const char *name)
{
	cleanup_free char *raw = udfb_strndup(s, n), *norm = NULL;
	udfb_pep503_normalize(&norm, raw);
	return strcmp(norm, name) == 0;
}

/* A wheel's name ends at its first '-' (PEP 427 escapes the rest); a
 * legacy sdist's name may hold '-' itself ("python-dateutil-2.8.2"), so
 * any '-' followed by a digit may end it, as pip reads --find-links. */
static int belongs(const char *filename, const char *name)
{
	int wheel;
	size_t n = stem_len(filename, &wheel);
	for (size_t k = 1; k < n; k++) {
		if (filename[k] != '-')
			continue;
		if (wheel)
			return prefix_is(filename, k, name);
		if (filename[k + 1] >= '0' && filename[k + 1] <= '9' && prefix_is(filename, k, name))
			return 1;
	}
	return 0;
}

int udfb_pkgindex_copy_hashed(struct udfb_hashcopy *hc, int in, const char *path, const char *tmpdir,
			      long long max_copy, int stop, struct udfb_err *err)
{
	memset(hc, 0, sizeof(*hc));
	hc->fd = -1;
	struct udfb_err e = UDFB_ERR_INIT;
	if (tmpdir && udfb_mktemp(&hc->copy, &hc->fd, tmpdir, &e) < 0) {
		hc->copy_errno = e.sys_errno ? e.sys_errno : EIO;
		udfb_err_clear(&e);
	}
	/* Hashed on a second thread while read and written here. */
	struct udfb_hashpipe *hp = udfb_hashpipe_new();
	int rc = 0;
	for (;;) {
		unsigned char *buf = udfb_hashpipe_buf(hp);
		ssize_t n = read(in, buf, udfb_hashpipe_bufsize());
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = udfb_err_sys(err, errno, "read %s", path);
			break;
		}
		if (n == 0)
			break;
		udfb_hashpipe_push(hp, (size_t)n);
		hc->size += n;
		if (hc->fd >= 0 && hc->size > max_copy)
			hc->copy_errno = EFBIG;
		else if (hc->fd >= 0 && udfb_write_all(hc->fd, buf, (size_t)n) < 0)
			hc->copy_errno = errno;
		if (hc->fd >= 0 && hc->copy_errno)
			udfb_pkgindex_drop_copy(hc);
		if (stop && hc->copy_errno)
			break;
	}
	udfb_hashpipe_final(hp, hc->digest);
	if (rc < 0)
		udfb_pkgindex_drop_copy(hc);
	else if (hc->fd >= 0)
		udfb_start_writeback(hc->fd);
	return rc;
}

void udfb_pkgindex_drop_copy(struct udfb_hashcopy *hc)
{
	if (hc->fd >= 0)
		close(hc->fd);
	hc->fd = -1;
	if (hc->copy)
		unlink(hc->copy);
	free(hc->copy);
	hc->copy = NULL;
}

/* Read path once: hashed, and copied into tmpdir while it is at most
 * max_copy bytes (the copy is what a download caches: no second read);
 * a file too large to download, or no room, is hashed only.  Its
 * writeback starts now, so that the sync before it is cached is short. */
static int hash_copy(struct udfb_pkgfile *f, const char *path, const char *tmpdir, long long max_copy,
		     struct udfb_err *err)
{
	cleanup_close int in = open(path, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return udfb_err_sys(err, errno, "open %s", path);
	struct udfb_hashcopy hc;
	if (udfb_pkgindex_copy_hashed(&hc, in, path, tmpdir, max_copy, 0, err) < 0)
		return -1;
	if (hc.fd >= 0)
		close(hc.fd);
	f->size = hc.size;
	memcpy(f->sha256, udfb_digest_hex(hc.digest), 65);
	f->copy = hc.copy;
	if (f->copy)
		memcpy(f->copy_sha256, f->sha256, 65);
	return 0;
}

static int add_file(struct udfb_pkglist *l, const char *dir, const char *filename, const char *tmpdir,
		    long long max_copy, struct udfb_err *err)
{
	cleanup_free char *path = udfb_path_join(dir, filename);
	struct stat st;
	/* Links are followed (a wheelhouse of symlinks is common); only what
	 * they lead to must be a regular file. */
	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return 0;
	struct udfb_pkgfile *f = udfb_pkglist_push(l);
	if (!f)
		return udfb_err_set(err, UDFB_E_EXHAUSTED, "%s: more than %d files", dir, UDFB_INDEX_MAX_FILES);
	if (hash_copy(f, path, tmpdir, max_copy, err) < 0)
		return -1;
	f->filename = udfb_strdup(filename);
	f->path = udfb_steal(path);
	if (!f->filename)
		abort();
	return 0;
}

static int cmp_file(const void *a, const void *b)
{
	return strcmp(((const struct udfb_pkgfile *)a)->filename, ((const struct udfb_pkgfile *)b)->filename);
}

int udfb_pkgindex_list_dir(struct udfb_pkgproject *out, const char *dir, const char *name, const char *tmpdir,
			   long long max_copy, struct udfb_err *err)
{
	memset(out, 0, sizeof(*out));
	DIR *d = opendir(dir);
	if (!d)
		return udfb_err_sys(err, errno, "index directory %s", dir);
	/* The project's file names first: a project of one file is copied
	 * while hashed (its download then needs no second read); of several,
	 * the resolver takes one, and copying them all would write every
	 * version and platform (gigabytes in a wheelhouse of large wheels) to
	 * use one: they are hashed only, and the one taken is copied when
	 * downloaded. */
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	while (n <= UDFB_INDEX_MAX_FILES && (e = readdir(d)))
		if (e->d_name[0] != '.' && udfb_pkgfile_name_ok(e->d_name) && belongs(e->d_name, name)) {
			if (n == cap) {
				cap = cap ? cap * 2 : 8;
				names = udfb_realloc(names, cap * sizeof(*names));
			}
			names[n++] = udfb_strdup(e->d_name);
		}
	closedir(d);
	struct udfb_pkglist l = { out, 0 };
	int rc = 0;
	for (size_t k = 0; k < n && rc == 0; k++)
		rc = add_file(&l, dir, names[k], n == 1 ? tmpdir : NULL, max_copy, err);
	for (size_t k = 0; k < n; k++)
		free(names[k]);
	free(names);
	if (rc < 0) {
		udfb_pkgproject_free(out);
		return -1;
	}
	/* readdir's order is the file system's: sort for the same list on
	 * every machine. */
	if (out->n_files)
		qsort(out->files, out->n_files, sizeof(*out->files), cmp_file);
	return 0;
}
