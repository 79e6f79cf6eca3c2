/* Distribution files and their metadata into the content cache
 * (cache_dir/sha256/<hex>): see pkgindex.h.  A file is checked against
 * the index's sha256 before it gets a name there, so a cached file is
 * trusted as it is. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "fetch/fetch.h"
#include "common/alloc.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "pkgindex/pkgindex_internal.h"
#include "python/wheel.h"

static char *blob_path(const char *cache_dir, const char *hex)
{
	return udfb_asprintf("%s/sha256/%s", cache_dir, hex);
}

static int cached(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

char *udfb_pkgindex_cached(const char *cache_dir, const char *sha256)
{
	char *p = blob_path(cache_dir, sha256);
	if (cached(p))
		return p;
	free(p);
	return NULL;
}

/* A local file copied into tmpdir while hashed: what gets cached is
 * exactly what was hashed, whatever happens to the original later. */
static int copy_local(struct udfb_fetched *out, const struct udfb_pkgindex *ix, const struct udfb_pkgfile *f,
		      struct udfb_err *err)
{
	cleanup_close int in = open(f->path, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return udfb_err_sys(err, errno, "%s: open %s", f->filename, f->path);
	struct udfb_hashcopy hc;
	long long max = ix->fetch->max_import_bytes;
	if (udfb_pkgindex_copy_hashed(&hc, in, f->path, ix->tmpdir, max, 1, err) < 0)
		return udfb_err_wrap(err, "%s", f->filename);
	if (hc.copy_errno == EFBIG)
		return udfb_err_set(err, UDFB_E_INVALID, "%s: larger than %lld bytes", f->filename, max);
	if (!hc.copy)
		return udfb_err_sys(err, hc.copy_errno, "%s: copy %s", f->filename, f->path);
	out->path = hc.copy;
	out->owned = 1;
	out->size = hc.size;
	memcpy(out->digest, hc.digest, sizeof(out->digest));
	int rc = udfb_fsync_fd(hc.fd, f->filename, err);
	close(hc.fd);
	return rc;
}

/* The copy made when the file was listed (pkgindex_local.c), hashed as
 * it was written, is the download: nothing read again.  It goes into the
 * cache when the index is freed (udfb_pkgindex_commit), synced then: its
 * writeback started when it was written, so by the end of a build the
 * sync costs next to nothing, where here it would wait for the disk.
 * 1 with *path, 0 when there is no such copy (or it is gone). */
static int listed_copy(char **path, struct udfb_pkgindex *ix, const struct udfb_pkgfile *f)
{
	if (!f->copy || strcmp(f->copy_sha256, f->sha256) != 0 || !cached(f->copy))
		return 0;
	size_t k = 0;
	while (k < ix->n_pending && strcmp(ix->pending[k].sha256, f->sha256) != 0)
		k++;
	if (k == ix->n_pending) {
		ix->pending = udfb_realloc(ix->pending, (ix->n_pending + 1) * sizeof(*ix->pending));
		ix->pending[k].copy = udfb_strdup(f->copy);
		memcpy(ix->pending[k].sha256, f->sha256, 65);
		ix->n_pending++;
	}
	*path = udfb_strdup(ix->pending[k].copy);
	return 1;
}

/* One pending copy synced and named in the cache; a failure costs the
 * cache an entry, not the build its wheel (which it has read by now). */
static void commit_one(const struct udfb_pkgindex *ix, const struct pkgpending *p)
{
	cleanup_free char *dst = blob_path(ix->cache_dir, p->sha256);
	struct udfb_err err = UDFB_ERR_INIT;
	cleanup_close int fd = open(p->copy, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || udfb_fsync_fd(fd, p->copy, &err) < 0 ||
	    (rename(p->copy, dst) < 0 && (errno != EXDEV || udfb_link_or_copy(p->copy, dst, &err) < 0)))
		udfb_warn("package cache: %s not kept: %s", p->sha256, err.msg ? err.msg : strerror(errno));
	udfb_err_clear(&err);
}

void udfb_pkgindex_commit(struct udfb_pkgindex *ix)
{
	for (size_t k = 0; k < ix->n_pending; k++) {
		commit_one(ix, &ix->pending[k]);
		free(ix->pending[k].copy);
	}
	free(ix->pending);
	ix->pending = NULL;
	ix->n_pending = 0;
}

static int get_file(struct udfb_fetched *out, const struct udfb_pkgindex *ix, const char *name, const char *url,
		    long long max_bytes, long long deadline_ms, struct udfb_err *err)
{
	struct udfb_fetch_item item = { .location = name, .url = url, .what = name };
	if (udfb_pkgindex_fetch(&item, ix, max_bytes, deadline_ms, err) < 0)
		return -1;
	*out = item.out;
	return 0;
}

/* Check what arrived, then give it its name in the cache. */
static int install(char **path, const struct udfb_pkgindex *ix, struct udfb_fetched *got, const char *name,
		   const char *want_sha256, long long want_size, struct udfb_err *err)
{
	const char *hex = udfb_digest_hex(got->digest);
	if (*want_sha256 && strcmp(want_sha256, hex) != 0)
		return udfb_err_set(err, UDFB_E_INVALID, "%s: sha256 mismatch (index says %s, got %s)", name,
				    want_sha256, hex);
	if (want_size >= 0 && want_size != got->size)
		return udfb_err_set(err, UDFB_E_INVALID, "%s: %lld bytes, the index says %lld", name, got->size,
				    want_size);
	cleanup_free char *dst = blob_path(ix->cache_dir, hex);
	/* tmpdir is meant to share the cache's file system; when it does not,
	 * a crash-safe copy does the rename's job. */
	if (rename(got->path, dst) < 0) {
		if (errno != EXDEV)
			return udfb_err_sys(err, errno, "%s: into the cache", name);
		if (udfb_link_or_copy(got->path, dst, err) < 0)
			return -1;
		unlink(got->path);
	}
	got->owned = 0;
	*path = udfb_steal(dst);
	return 0;
}

int udfb_pkgindex_download(char **path, struct udfb_pkgindex *ix, const struct udfb_pkgfile *f, long long deadline_ms,
			   struct udfb_err *err)
{
	if (!udfb_pkgfile_name_ok(f->filename))
		return udfb_err_set(err, UDFB_E_INVALID, "a distribution file without a usable name");
	if (*f->sha256) {
		cleanup_free char *hit = blob_path(ix->cache_dir, f->sha256);
		if (cached(hit)) {
			*path = udfb_steal(hit);
			return 0;
		}
	}
	if (f->path && listed_copy(path, ix, f))
		return 0;
	struct udfb_fetched got = { 0 };
	int rc;
	if (f->path)
		rc = copy_local(&got, ix, f, err);
	else if (f->url)
		rc = get_file(&got, ix, f->filename, f->url, 0, deadline_ms, err);
	else
		rc = udfb_err_set(err, UDFB_E_INVALID, "%s: neither a URL nor a path", f->filename);
	if (rc == 0)
		rc = install(path, ix, &got, f->filename, f->sha256, f->size, err);
	udfb_fetched_clear(&got);
	return rc;
}

/* ---- metadata ---- */

static int is_wheel(const char *filename)
{
	size_t n = strlen(filename);
	return n > 4 && strcmp(filename + n - 4, ".whl") == 0;
}

/* url + ".metadata" on the path: the query (a token, say) stays last. */
static char *metadata_url(const char *url)
{
	CURLU *u = curl_url();
	char *path = NULL, *out = NULL, *newpath = NULL;
	if (!u)
		abort();
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PATH, &path, 0) == CURLUE_OK) {
		newpath = udfb_asprintf("%s.metadata", path);
		if (curl_url_set(u, CURLUPART_PATH, newpath, 0) == CURLUE_OK)
			curl_url_get(u, CURLUPART_URL, &out, 0);
	}
	char *copy = out ? udfb_strdup(out) : NULL;
	curl_free(path);
	curl_free(out);
	free(newpath);
	curl_url_cleanup(u);
	return copy;
}

/* 1 when the index has no such file after all (404): the wheel still has
 * its METADATA. */
static int pep658(char **text, size_t *len, struct udfb_pkgindex *ix, const struct udfb_pkgfile *f,
		  long long deadline_ms, struct udfb_err *err)
{
	cleanup_free char *name = udfb_asprintf("%s.metadata", f->filename), *url = metadata_url(f->url), *path = NULL;
	if (*f->metadata_sha256) {
		cleanup_free char *hit = blob_path(ix->cache_dir, f->metadata_sha256);
		if (cached(hit))
			return udfb_read_file(text, len, hit, UDFB_METADATA_MAX_BYTES, err) < 0
				       ? udfb_err_wrap(err, "%s", name)
				       : 0;
	}
	if (!url)
		return udfb_err_set(err, UDFB_E_INVALID, "%s: no URL for it", name);
	struct udfb_fetch_item item = { .location = name, .url = url, .what = name };
	if (udfb_pkgindex_fetch(&item, ix, UDFB_METADATA_MAX_BYTES, deadline_ms, err) < 0) {
		if (item.http_status != 404)
			return -1;
		udfb_err_clear(err);
		return 1;
	}
	/* Cached only under a hash the index gave: nothing would look it up
	 * by one it did not. */
	int rc = *f->metadata_sha256 ? install(&path, ix, &item.out, name, f->metadata_sha256, -1, err) : 0;
	if (rc == 0 && udfb_read_file(text, len, path ? path : item.out.path, UDFB_METADATA_MAX_BYTES, err) < 0)
		rc = udfb_err_wrap(err, "%s", name);
	udfb_fetched_clear(&item.out);
	return rc;
}

int udfb_pkgindex_metadata(char **text, size_t *len, struct udfb_pkgindex *ix, const struct udfb_pkgfile *f,
			   long long deadline_ms, struct udfb_err *err)
{
	if (f->has_metadata && f->url) {
		int rc = pep658(text, len, ix, f, deadline_ms, err);
		if (rc <= 0)
			return rc;
	}
	if (!is_wheel(f->filename))
		return udfb_err_set(err, UDFB_E_UNSUPPORTED, "%s: not a wheel (its metadata needs a build)",
				    f->filename);
	cleanup_free char *path = NULL;
	if (udfb_pkgindex_download(&path, ix, f, deadline_ms, err) < 0)
		return -1;
	if (udfb_wheel_read_metadata(text, len, path, err) < 0)
		return udfb_err_wrap(err, "%s", f->filename);
	return 0;
}
