/* Package indexes: sources, the per-build memory of project pages, and
 * the fetch of one page.  See pkgindex.h; parsers in pkgindex_json.c and
 * pkgindex_html.c, downloads in pkgindex_download.c. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "common/buf.h"
#include "common/cleanup.h"
#include "fetch/fetch.h"
#include "common/alloc.h"
#include "common/fsutil.h"
#include "python/pep508.h"
#include "pkgindex/pkgindex_internal.h"

#define ACCEPT "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"
#define NAME_MAX_LEN 200

/* ---- sources ---- */

static int has_scheme(const char *s, const char *scheme)
{
	size_t n = strlen(scheme);
	return strncasecmp(s, scheme, n) == 0 && s[n] == ':';
}

static int local_dir(struct pkgsource *src, const char *path, struct udfb_err *err)
{
	char *real = realpath(path, NULL);
	struct stat st;
	if (!real || stat(real, &st) < 0 || !S_ISDIR(st.st_mode)) {
		int e = real ? ENOTDIR : errno;
		free(real);
		return udfb_err_sys(err, e, "index directory %s", path);
	}
	/* Fixed now: a later chdir must not change what the source means. */
	src->dir = real;
	src->display = udfb_strdup(real);
	return 0;
}

/* file:///path (or file://localhost/path), percent-decoded. */
static int file_url(struct pkgsource *src, const char *url, size_t k, struct udfb_err *err)
{
	CURLU *u = curl_url();
	char *host = NULL, *path = NULL;
	int rc = -1;
	if (!u)
		abort();
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PATH, &path, CURLU_URLDECODE) != CURLUE_OK)
		udfb_err_set(err, UDFB_E_INVALID, "package index %zu: not a file URL", k + 1);
	else if (curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && *host && strcasecmp(host, "localhost") != 0)
		udfb_err_set(err, UDFB_E_UNSUPPORTED, "package index %zu: a file URL of another host", k + 1);
	else
		rc = local_dir(src, path, err);
	curl_free(host);
	curl_free(path);
	curl_url_cleanup(u);
	return rc;
}

static int index_url(struct pkgsource *src, const char *url, size_t k, struct udfb_err *err)
{
	CURLU *u = curl_url();
	if (!u)
		abort();
	CURLUcode rc = curl_url_set(u, CURLUPART_URL, url, 0);
	curl_url_cleanup(u);
	/* The URL itself may hold a token: name it by position only. */
	if (rc != CURLUE_OK)
		return udfb_err_set(err, UDFB_E_INVALID, "package index %zu: not a URL", k + 1);
	src->url = udfb_strdup(url);
	src->display = udfb_url_display(url);
	return 0;
}

static int add_source(struct pkgsource *src, const char *s, size_t k, struct udfb_err *err)
{
	if (has_scheme(s, "http") || has_scheme(s, "https"))
		return index_url(src, s, k, err);
	if (has_scheme(s, "file"))
		return file_url(src, s, k, err);
	if (strstr(s, "://"))
		return udfb_err_set(err, UDFB_E_UNSUPPORTED,
				    "package index %zu: only http, https and file URLs or directories", k + 1);
	return local_dir(src, s, err);
}

int udfb_pkgindex_new(struct udfb_pkgindex **out, char *const *sources, size_t n, const struct udfb_fetch_opts *fetch,
		      const char *tmpdir, const char *cache_dir, struct udfb_err *err)
{
	struct udfb_pkgindex *ix = udfb_calloc(1, sizeof(*ix));
	ix->src = udfb_calloc(n + 1, sizeof(*ix->src));
	ix->fetch = fetch;
	ix->tmpdir = udfb_strdup(tmpdir);
	ix->cache_dir = udfb_strdup(cache_dir);
	int rc = 0;
	for (size_t k = 0; k < n && rc == 0; k++, ix->n_src++)
		rc = add_source(&ix->src[k], sources[k], k, err);
	cleanup_free char *blobs = udfb_path_join(cache_dir, "sha256");
	if (rc == 0)
		rc = udfb_mkdir_p(blobs, 0755, err);
	if (rc < 0) {
		udfb_pkgindex_free(ix);
		return -1;
	}
	*out = ix;
	return 0;
}

void udfb_pkgindex_free(struct udfb_pkgindex *ix)
{
	if (!ix)
		return;
	udfb_pkgindex_commit(ix);
	for (size_t k = 0; k < ix->n_src; k++) {
		free(ix->src[k].url);
		free(ix->src[k].dir);
		free(ix->src[k].display);
	}
	for (size_t k = 0; k < ix->n_known; k++) {
		free(ix->known[k]->name);
		udfb_pkgproject_free(&ix->known[k]->p);
		free(ix->known[k]);
	}
	free(ix->known);
	free(ix->src);
	free(ix->tmpdir);
	free(ix->cache_dir);
	free(ix);
}

/* ---- one fetch ---- */

int udfb_pkgindex_fetch(struct udfb_fetch_item *item, const struct udfb_pkgindex *ix, long long max_bytes,
			long long deadline_ms, struct udfb_err *err)
{
	/* A shallow copy: the guard stays the caller's (and is not freed). */
	struct udfb_fetch_opts o = *ix->fetch;
	if (max_bytes > 0 && max_bytes < o.max_import_bytes)
		o.max_import_bytes = max_bytes;
	o.max_imports = 1;
	return udfb_fetch_all(item, 1, &o, deadline_ms, ix->tmpdir, err);
}

/* <index>/<name>/, the index URL's query (a token, say) kept. */
static char *page_url(const char *index, const char *name)
{
	CURLU *u = curl_url();
	char *path = NULL, *url = NULL, *newpath = NULL;
	if (!u || curl_url_set(u, CURLUPART_URL, index, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK)
		abort(); /* checked by udfb_pkgindex_new */
	size_t n = strlen(path);
	newpath = udfb_asprintf("%s%s%s/", path, n && path[n - 1] == '/' ? "" : "/", name);
	if (curl_url_set(u, CURLUPART_PATH, newpath, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_URL, &url, 0) != CURLUE_OK)
		abort(); /* a normalised name adds only [a-z0-9-] */
	char *out = udfb_strdup(url);
	curl_free(path);
	curl_free(url);
	free(newpath);
	curl_url_cleanup(u);
	return out;
}

static int media_is(const char *ctype, const char *want)
{
	size_t n = strlen(want);
	return strncasecmp(ctype, want, n) == 0 && (ctype[n] == '\0' || ctype[n] == ';' || ctype[n] == ' ');
}

/* By Content-Type (what the Accept header negotiated), else by the first
 * byte: a static server may label a page anything. */
static int page_is_json(const char *ctype, const char *body)
{
	while (*ctype == ' ')
		ctype++;
	const char *semi = strchr(ctype, ';');
	size_t n = semi ? (size_t)(semi - ctype) : strlen(ctype);
	while (n && ctype[n - 1] == ' ')
		n--;
	if (media_is(ctype, "application/json") || (n > 5 && strncasecmp(ctype + n - 5, "+json", 5) == 0))
		return 1;
	if (media_is(ctype, "text/html") || media_is(ctype, "application/xhtml+xml") ||
	    (n > 5 && strncasecmp(ctype + n - 5, "+html", 5) == 0))
		return 0;
	while (isspace((unsigned char)*body))
		body++;
	return *body == '{';
}

static int parse_page(struct udfb_pkgproject *out, const struct udfb_fetch_item *item, struct udfb_err *err)
{
	cleanup_free char *body = NULL;
	size_t len = 0;
	if (udfb_read_file(&body, &len, item->out.path, UDFB_INDEX_PAGE_MAX_BYTES, err) < 0)
		return -1;
	/* Relative links resolve against where redirects led. */
	const char *base = item->out.final_url ? item->out.final_url : item->url;
	if (page_is_json(item->out.content_type, body))
		return udfb_pkgindex_parse_json(out, base, body, len, err);
	return udfb_pkgindex_parse_html(out, base, body, len, err);
}

/* *known = 0 when the index has no such project (404, 410). */
static int fetch_page(struct udfb_pkgproject *out, int *known, struct udfb_pkgindex *ix, const struct pkgsource *s,
		      const char *name, long long deadline_ms, struct udfb_err *err)
{
	cleanup_free char *url = page_url(s->url, name);
	cleanup_free char *what = udfb_asprintf("index page for %s at %s", name, s->display);
	struct udfb_fetch_item item = { .location = what, .url = url, .accept = ACCEPT, .what = what };
	*known = 1;
	memset(out, 0, sizeof(*out));
	if (udfb_pkgindex_fetch(&item, ix, UDFB_INDEX_PAGE_MAX_BYTES, deadline_ms, err) < 0) {
		if (item.http_status != 404 && item.http_status != 410)
			return -1;
		udfb_err_clear(err);
		*known = 0;
		return 0;
	}
	int rc = parse_page(out, &item, err);
	udfb_fetched_clear(&item.out);
	return rc < 0 ? udfb_err_wrap(err, "%s", what) : 0;
}

/* ---- a project from every source ---- */

struct ranked {
	struct udfb_pkgfile f;
	size_t seq;
};

static int cmp_name_seq(const void *a, const void *b)
{
	const struct ranked *x = a, *y = b;
	int c = strcmp(x->f.filename, y->f.filename);
	return c ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

static int cmp_seq(const void *a, const void *b)
{
	const struct ranked *x = a, *y = b;
	return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Files in source order, each file name once: the first source wins. */
static void merge(struct udfb_pkgproject *out, struct udfb_pkgproject *parts, size_t n)
{
	size_t total = 0, m = 0;
	for (size_t k = 0; k < n; k++)
		total += parts[k].n_files;
	struct ranked *r = udfb_calloc(total + 1, sizeof(*r));
	for (size_t k = 0; k < n; k++)
		for (size_t j = 0; j < parts[k].n_files; j++, m++)
			r[m] = (struct ranked){ parts[k].files[j], m };
	qsort(r, total, sizeof(*r), cmp_name_seq);
	m = 0;
	for (size_t k = 0; k < total; k++) {
		if (m && strcmp(r[m - 1].f.filename, r[k].f.filename) == 0)
			udfb_pkgfile_clear(&r[k].f);
		else
			r[m++] = r[k];
	}
	qsort(r, m, sizeof(*r), cmp_seq);
	out->files = udfb_calloc(m + 1, sizeof(*out->files));
	for (size_t k = 0; k < m; k++)
		out->files[k] = r[k].f;
	out->n_files = m;
	free(r);
	for (size_t k = 0; k < n; k++) {
		free(parts[k].files); /* their strings moved to out */
		parts[k].files = NULL;
		parts[k].n_files = 0;
	}
}

static int from_source(struct udfb_pkgproject *out, int *known, struct udfb_pkgindex *ix, const struct pkgsource *s,
		       const char *name, long long deadline_ms, struct udfb_err *err)
{
	if (s->url)
		return fetch_page(out, known, ix, s, name, deadline_ms, err);
	if (udfb_pkgindex_list_dir(out, s->dir, name, ix->tmpdir, ix->fetch->max_import_bytes, err) < 0)
		return -1;
	*known = out->n_files > 0;
	return 0;
}

static int collect(struct pkgknown *kn, struct udfb_pkgindex *ix, long long deadline_ms, struct udfb_err *err)
{
	struct udfb_pkgproject *parts = udfb_calloc(ix->n_src + 1, sizeof(*parts));
	int rc = 0;
	for (size_t k = 0; k < ix->n_src && rc == 0; k++) {
		int known = 0;
		rc = from_source(&parts[k], &known, ix, &ix->src[k], kn->name, deadline_ms, err);
		kn->found |= known;
	}
	if (rc == 0)
		merge(&kn->p, parts, ix->n_src);
	/* Each source is within the limit; mirrors of one another merge back
	 * under it. */
	if (rc == 0 && kn->p.n_files > UDFB_INDEX_MAX_FILES) {
		udfb_pkgproject_free(&kn->p);
		rc = udfb_err_set(err, UDFB_E_EXHAUSTED, "%s: more than %d files on the package indexes", kn->name,
				  UDFB_INDEX_MAX_FILES);
	}
	for (size_t k = 0; k < ix->n_src; k++)
		udfb_pkgproject_free(&parts[k]);
	free(parts);
	return rc;
}

static int check_name(char **norm, const char *name, struct udfb_err *err)
{
	size_t n = strlen(name);
	int ok = n > 0 && n <= NAME_MAX_LEN;
	for (const char *c = name; ok && *c; c++)
		ok = isalnum((unsigned char)*c) || *c == '-' || *c == '_' || *c == '.';
	if (!ok) {
		cleanup_free char *shown = udfb_strndup(name, 64);
		udfb_text_oneline(shown);
		return udfb_err_set(err, UDFB_E_INVALID, "'%s' is not a project name", shown);
	}
	/* Normalised, a name is [a-z0-9-]: it cannot leave <index>/<name>/. */
	udfb_pep503_normalize(norm, name);
	return 0;
}

static int not_found(const struct udfb_pkgindex *ix, const char *name, struct udfb_err *err)
{
	struct udfb_buf b;
	udfb_buf_init(&b, 4096);
	for (size_t k = 0; k < ix->n_src; k++)
		udfb_buf_printf(&b, "%s%s", k ? ", " : "", ix->src[k].display);
	int rc = udfb_err_set(err, UDFB_E_NOTFOUND, "%s: no such project on the package indexes (%s)", name,
			      b.data ? b.data : "none configured");
	udfb_buf_free(&b);
	return rc;
}

int udfb_pkgindex_project(const struct udfb_pkgproject **out, struct udfb_pkgindex *ix, const char *name,
			  long long deadline_ms, struct udfb_err *err)
{
	cleanup_free char *norm = NULL;
	if (check_name(&norm, name, err) < 0)
		return -1;
	for (size_t k = 0; k < ix->n_known; k++) {
		if (strcmp(ix->known[k]->name, norm) != 0)
			continue;
		if (!ix->known[k]->found)
			return not_found(ix, norm, err);
		*out = &ix->known[k]->p;
		return 0;
	}
	struct pkgknown *kn = udfb_calloc(1, sizeof(*kn));
	kn->name = udfb_steal(norm);
	if (collect(kn, ix, deadline_ms, err) < 0) {
		/* Not remembered: a failure may pass, a retry may fetch. */
		free(kn->name);
		free(kn);
		return -1;
	}
	struct pkgknown **grown = udfb_realloc(ix->known, (ix->n_known + 1) * sizeof(*grown));
	ix->known = grown;
	ix->known[ix->n_known++] = kn;
	if (!kn->found)
		return not_found(ix, kn->name, err);
	*out = &kn->p;
	return 0;
}
