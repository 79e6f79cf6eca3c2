/* Package indexes: the PEP 691 JSON simple API, falling back to the PEP 503
 * HTML page, or a local directory of distribution files.  A project's files
 * come from every configured source in order (the first source naming a
 * file name wins), with their sha256, requires-python, yanked flag (PEP
 * 592) and PEP 658 metadata.  Every page and file goes through the import
 * fetcher (fetch.h): bounded, retrying, behind the SSRF guard.  Index URLs
 * may carry credentials (https://user:token@host/simple): they never reach
 * an error, a log line or a lock. */
#ifndef UDFB_PKGINDEX_H
#define UDFB_PKGINDEX_H

#include <stddef.h>

#include "err.h"
#include "hash.h"

#define UDFB_INDEX_PAGE_MAX_BYTES (16u << 20)
#define UDFB_INDEX_MAX_FILES 20000 /* files of one project */

struct udfb_pkgfile {
	char *filename;        /* as the index names it (no '/') */
	char *url;             /* absolute; NULL for a local directory's file */
	char *path;            /* a local directory's file; NULL otherwise */
	char sha256[65];       /* lower-case hex; "" when the index gives none */
	char *requires_python; /* NULL when absent */
	int yanked;            /* PEP 592 */
	int has_metadata;      /* PEP 658/714: url + ".metadata" exists */
	char metadata_sha256[65]; /* "" when not given */
	long long size;        /* -1 when unknown */
};

struct udfb_pkgproject {
	struct udfb_pkgfile *files;
	size_t n_files;
};

void udfb_pkgproject_free(struct udfb_pkgproject *p);

/* Parse a project page fetched from page_url (relative links resolve
 * against it).  Pure functions over untrusted bytes (fuzzed). */
int udfb_pkgindex_parse_json(struct udfb_pkgproject *out, const char *page_url, const char *body, size_t len,
			     struct udfb_err *err);
int udfb_pkgindex_parse_html(struct udfb_pkgproject *out, const char *page_url, const char *body, size_t len,
			     struct udfb_err *err);

struct udfb_fetch_opts;
struct udfb_pkgindex;

/* sources: index URLs ("https://pypi.org/simple") or local directories
 * (a path, or file:///path).  fetch: limits and guard (not owned; the
 * caller allows the index hosts in its guard).  tmpdir: downloads land
 * there first.  cache_dir: the content cache of distribution files, by
 * sha256 (created when missing). */
int udfb_pkgindex_new(struct udfb_pkgindex **out, char *const *sources, size_t n, const struct udfb_fetch_opts *fetch,
		      const char *tmpdir, const char *cache_dir, struct udfb_err *err);
void udfb_pkgindex_free(struct udfb_pkgindex *ix);

/* Every file of project name (PEP 503 normalised) from every source, each
 * page fetched once per udfb_pkgindex (remembered).  A project no source
 * knows is UDFB_E_NOTFOUND naming it. */
int udfb_pkgindex_project(const struct udfb_pkgproject **out, struct udfb_pkgindex *ix, const char *name,
			  long long deadline_ms, struct udfb_err *err);
/* The file, from the content cache or downloaded into it, its sha256
 * checked (a file without one is hashed and cached under what it hashed
 * to).  *path is malloc'd and stays valid while the cache does. */
int udfb_pkgindex_download(char **path, struct udfb_pkgindex *ix, const struct udfb_pkgfile *f, long long deadline_ms,
			   struct udfb_err *err);
/* The core metadata of a wheel: the PEP 658 file when offered (hash
 * checked), else the METADATA inside the downloaded wheel. */
int udfb_pkgindex_metadata(char **text, size_t *len, struct udfb_pkgindex *ix, const struct udfb_pkgfile *f,
			   long long deadline_ms, struct udfb_err *err);

#endif
