/* What the package index's files share (pkgindex*.c only): building a
 * project's file list from untrusted pages, and URLs fit for messages. */
#ifndef UDFB_PKGINDEX_INTERNAL_H
#define UDFB_PKGINDEX_INTERNAL_H

#include <curl/curl.h>

#include "pkgindex/pkgindex.h"

/* The link href resolved against base (not changed): an absolute http or
 * https URL, its fragment cut off into *fragment (malloc'd, NULL when
 * none).  NULL when it cannot be resolved or has another scheme. */
char *udfb_url_resolve(CURLU *base, const char *href, char **fragment);

/* Control characters become '?': untrusted text quoted in a one-line
 * message stays one line. */
void udfb_text_oneline(char *s);

/* A file name an index may give: 1..255 bytes, no '/', '\\', control
 * characters or DEL, not "." or "..". */
int udfb_pkgfile_name_ok(const char *name);
/* hex: 64 hex digits in either case; writes them in lower case to out. */
int udfb_sha256_hex_parse(char out[65], const char *hex);

/* A project's files as a page is parsed: room grows on demand, within
 * UDFB_INDEX_MAX_FILES. */
struct udfb_pkglist {
	struct udfb_pkgproject *p;
	size_t cap;
};

/* A zeroed file at the end of the list (size -1), or NULL past the limit. */
struct udfb_pkgfile *udfb_pkglist_push(struct udfb_pkglist *l);
/* What both page parsers do first: *out an empty project, the page's
 * size within UDFB_INDEX_PAGE_MAX_BYTES, and *base its own URL, against
 * which its links resolve (the caller frees it with curl_url_cleanup). */
int udfb_pkgpage_begin(struct udfb_pkgproject *out, CURLU **base, const char *page_url, size_t len,
		       struct udfb_err *err);
/* Drop the last file (one that turned out malformed). */
void udfb_pkglist_pop(struct udfb_pkglist *l);
void udfb_pkgfile_clear(struct udfb_pkgfile *f);
void udfb_pkgfile_copy(struct udfb_pkgfile *dst, const struct udfb_pkgfile *src);

/* The files of a local directory for project name (PEP 503 normalised):
 * wheels and sdists whose name part normalises to it, hashed. */
/* A file read once, hashed (on a second thread) and copied into a new
 * temporary file of tmpdir (copy, fd: open, its writeback started) while
 * at most max_copy bytes came and the writes worked; else the copy is
 * removed (copy NULL) and copy_errno says why (EFBIG past max_copy).
 * With stop, reading ends there too (size, digest: of what was read).
 * -1 with err on a read error (naming path), nothing kept. */
struct udfb_hashcopy {
	char *copy;
	int fd, copy_errno;
	long long size;
	char digest[UDFB_DIGEST_LEN + 1];
};
int udfb_pkgindex_copy_hashed(struct udfb_hashcopy *hc, int in, const char *path, const char *tmpdir,
			      long long max_copy, int stop, struct udfb_err *err);
/* The copy closed and removed. */
void udfb_pkgindex_drop_copy(struct udfb_hashcopy *hc);
/* tmpdir: where each file is copied as it is hashed (files over max_copy
 * bytes are hashed only); NULL: hashed only. */
int udfb_pkgindex_list_dir(struct udfb_pkgproject *out, const char *dir, const char *name, const char *tmpdir,
			   long long max_copy, struct udfb_err *err);

struct pkgsource {
	char *url; /* an index URL (a secret), NULL for a directory */
	char *dir; /* a local directory, absolute */
	char *display; /* how messages name it: "https://host/path" or dir */
};

/* A project asked for before: its merged files, or that nobody has it. */
struct pkgknown {
	char *name;
	int found;
	struct udfb_pkgproject p;
};

struct udfb_pkgindex {
	struct pkgsource *src;
	size_t n_src;
	const struct udfb_fetch_opts *fetch;
	char *tmpdir, *cache_dir;
	struct pkgknown **known; /* pointers: what callers hold stays put */
	size_t n_known;
	/* Listed copies of local files handed out by downloads: synced and
	 * renamed into the cache by udfb_pkgindex_free (pkgindex_download.c). */
	struct pkgpending {
		char *copy;
		char sha256[65];
	} * pending;
	size_t n_pending;
};

/* The pending copies into the cache (udfb_pkgindex_free's first step). */
void udfb_pkgindex_commit(struct udfb_pkgindex *ix);

struct udfb_fetch_item;
/* One item through the import fetcher within max_bytes (0: the fetch
 * options' limit). */
int udfb_pkgindex_fetch(struct udfb_fetch_item *item, const struct udfb_pkgindex *ix, long long max_bytes,
			long long deadline_ms, struct udfb_err *err);

#endif
