/* Package indexes: the PEP 691 JSON simple API, falling back to the PEP 503
 * HTML page, or a local directory of distribution files.  A project's files
 * come from every configured source in order (the first source naming a
 * file name wins), with their sha256, requires-python, yanked flag (PEP
 * 592) and PEP 658 metadata.  Every page and file goes through the import
 * fetcher (fetch.h): bounded, retrying, behind the SSRF guard.  Index URLs
 * may carry credentials (https://user:token@host/simple): they never reach
 * an error, a log line or a lock; messages name a page "index page for
 * <project> at https://host/path" (no userinfo, query or fragment) and a
 * file by its file name.
 *
 * One udfb_pkgindex serves one build at a time (it remembers pages without
 * locks); builds in parallel each open their own over the shared cache. */
#ifndef UDFB_PKGINDEX_H
#define UDFB_PKGINDEX_H

#include <stddef.h>

#include "common/err.h"
#include "common/hash.h"

#define UDFB_INDEX_PAGE_MAX_BYTES (16u << 20)
#define UDFB_INDEX_MAX_FILES 20000 /* files of one project */

struct udfb_pkgfile {
	char *filename; /* as the index names it: 1-255 bytes, no '/', '\\' or control characters */
	char *url; /* absolute http(s), no fragment; NULL for a local directory's file */
	char *path; /* a local directory's file; NULL otherwise */
	char sha256[65]; /* lower-case hex; "" when the index gives none */
	char *requires_python; /* NULL when absent */
	int yanked; /* PEP 592 */
	int has_metadata; /* PEP 658/714: url + ".metadata" exists */
	char metadata_sha256[65]; /* "" when not given */
	long long size; /* -1 when unknown */
	/* A local directory's file as copied when listed (under the index's
	 * tmpdir, ours: nobody else writes it) and the sha256 the copy has;
	 * NULL when not copied.  Removed by udfb_pkgfile_clear unless the
	 * download moved it into the cache. */
	char *copy;
	char copy_sha256[65];
};

struct udfb_pkgproject {
	struct udfb_pkgfile *files;
	size_t n_files;
};

void udfb_pkgproject_free(struct udfb_pkgproject *p);

/* Parse a project page fetched from page_url (relative links resolve
 * against it, and keep its userinfo as browsers do).  Pure functions over
 * untrusted bytes (fuzzed): a file entry or anchor that cannot be used (a
 * bad name, no http(s) link, a sha256 that is not 64 hex digits) is left
 * out; only a page that is no page at all fails (JSON: UDFB_E_INVALID, or
 * UDFB_E_UNSUPPORTED for an api-version other than 1.x), as does one over
 * UDFB_INDEX_PAGE_MAX_BYTES or UDFB_INDEX_MAX_FILES (UDFB_E_EXHAUSTED).
 * Messages carry no context: the caller names the page. */
int udfb_pkgindex_parse_json(struct udfb_pkgproject *out, const char *page_url, const char *body, size_t len,
			     struct udfb_err *err);
int udfb_pkgindex_parse_html(struct udfb_pkgproject *out, const char *page_url, const char *body, size_t len,
			     struct udfb_err *err);

/* An index URL as messages, logs and lock keys name it:
 * "https://host[:port]/path", no userinfo, query or fragment (any may hold
 * a token).  malloc'd; "(unparsable URL)" when it is not one. */
char *udfb_url_display(const char *url);

struct udfb_fetch_opts;
struct udfb_pkgindex;

/* sources: index URLs ("https://pypi.org/simple") or local directories
 * (a path, or file:///path; made absolute here).  A directory holds flat
 * wheels and sdists (.whl, .tar.gz, .zip), hashed when listed, as they
 * are copied into tmpdir (up to fetch->max_import_bytes each); its files
 * have path set, url NULL and has_metadata 0.  fetch: limits and guard
 * (not owned, must outlive ix; the caller allows the index hosts in its
 * guard); pages are held to UDFB_INDEX_PAGE_MAX_BYTES, .metadata files to
 * UDFB_METADATA_MAX_BYTES, distribution files to fetch->max_import_bytes.
 * tmpdir: downloads land there first (best on cache_dir's file system, so
 * that a rename puts them in the cache).  cache_dir: the content cache,
 * cache_dir/sha256/<hex> (created when missing). */
int udfb_pkgindex_new(struct udfb_pkgindex **out, char *const *sources, size_t n, const struct udfb_fetch_opts *fetch,
		      const char *tmpdir, const char *cache_dir, struct udfb_err *err);
void udfb_pkgindex_free(struct udfb_pkgindex *ix);

/* Every file of project name (normalised here as PEP 503 says; letters,
 * digits and "-_." only) from every source in order, a file name that two
 * sources list taken from the first.  Each page is fetched once per
 * udfb_pkgindex (remembered, as is a project nobody has; a failure is
 * not); *out stays valid until udfb_pkgindex_free.  An index answering 404
 * or 410 does not know the project; a project no source knows is
 * UDFB_E_NOTFOUND naming it.  Any other failure of any source fails the
 * call: a later source must not stand in for an earlier one unnoticed. */
int udfb_pkgindex_project(const struct udfb_pkgproject **out, struct udfb_pkgindex *ix, const char *name,
			  long long deadline_ms, struct udfb_err *err);
/* The file, from the content cache or downloaded into it, its sha256
 * (and size, when given) checked (a file without one is hashed and cached under what it hashed
 * to).  A cached file is not hashed again.  A local directory's file is
 * copied into the cache too (hashed as it is copied), so what the path
 * holds cannot change afterwards: the copy made when it was listed is the
 * path, synced and renamed into the cache by udfb_pkgindex_free (that
 * path is valid until then; a copy made here is cached at once).  A mismatch is UDFB_E_INVALID
 * "<file name>: sha256 mismatch (index says X, got Y)".  *path is malloc'd
 * and stays valid while the cache does. */
int udfb_pkgindex_download(char **path, struct udfb_pkgindex *ix, const struct udfb_pkgfile *f, long long deadline_ms,
			   struct udfb_err *err);
/* The cached file with that sha256 (hex) in cache_dir, or NULL: a locked
 * wheel needs no index when it is there.  malloc'd. */
char *udfb_pkgindex_cached(const char *cache_dir, const char *sha256);
/* The core metadata of a wheel: the PEP 658 file when offered (hash
 * checked; cached when the index gave its hash; a 404 falls back), else
 * the METADATA inside the downloaded wheel.  An sdist without PEP 658
 * metadata is UDFB_E_UNSUPPORTED.  *text is malloc'd, NUL-terminated (not
 * counted in *len). */
int udfb_pkgindex_metadata(char **text, size_t *len, struct udfb_pkgindex *ix, const struct udfb_pkgfile *f,
			   long long deadline_ms, struct udfb_err *err);

#endif
