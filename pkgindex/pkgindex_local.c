/* A local directory as a package index: its wheels and sdists, flat (no
 * recursion), hashed when listed so that they are named by content like
 * an index's files. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/fsutil.h"
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

static int add_file(struct udfb_pkglist *l, const char *dir, const char *filename, struct udfb_err *err)
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
	char digest[UDFB_DIGEST_LEN + 1];
	if (udfb_sha256_file(digest, &f->size, path, err) < 0)
		return -1;
	memcpy(f->sha256, udfb_digest_hex(digest), 65);
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

int udfb_pkgindex_list_dir(struct udfb_pkgproject *out, const char *dir, const char *name, struct udfb_err *err)
{
	memset(out, 0, sizeof(*out));
	DIR *d = opendir(dir);
	if (!d)
		return udfb_err_sys(err, errno, "index directory %s", dir);
	struct udfb_pkglist l = { out, 0 };
	int rc = 0;
	struct dirent *e;
	while (rc == 0 && (e = readdir(d)))
		if (e->d_name[0] != '.' && udfb_pkgfile_name_ok(e->d_name) && belongs(e->d_name, name))
			rc = add_file(&l, dir, e->d_name, err);
	closedir(d);
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
