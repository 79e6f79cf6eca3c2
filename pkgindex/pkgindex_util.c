/* Pieces the package index's parsers and fetchers share: see
 * pkgindex_internal.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/alloc.h"
#include "pkgindex/pkgindex_internal.h"

char *udfb_url_display(const char *url)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *out = NULL;
	if (!u)
		abort();
	if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
		curl_url_get(u, CURLUPART_PORT, &port, 0); /* NULL: the scheme's default */
		curl_url_get(u, CURLUPART_PATH, &path, 0);
		/* Only what names the index: userinfo, query and fragment may
		 * each carry a token. */
		out = udfb_asprintf("%s://%s%s%s%s", scheme, host, port ? ":" : "", port ? port : "",
				    path && strcmp(path, "/") != 0 ? path : "");
	}
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_url_cleanup(u);
	return out ? out : udfb_strdup("(unparsable URL)");
}

char *udfb_url_resolve(CURLU *base, const char *href, char **fragment)
{
	*fragment = NULL;
	CURLU *u = curl_url_dup(base);
	char *scheme = NULL, *frag = NULL, *url = NULL, *out = NULL;
	if (!u)
		abort();
	if (!*href || curl_url_set(u, CURLUPART_URL, href, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK)
		goto out;
	/* A page may link anywhere; the fetcher speaks only these. */
	if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0)
		goto out;
	if (curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0) == CURLUE_OK)
		curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0);
	if (curl_url_get(u, CURLUPART_URL, &url, 0) != CURLUE_OK)
		goto out;
	out = udfb_strdup(url);
	if (frag)
		*fragment = udfb_strdup(frag);
out:
	curl_free(scheme);
	curl_free(frag);
	curl_free(url);
	curl_url_cleanup(u);
	return out;
}

void udfb_text_oneline(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

int udfb_pkgfile_name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > 255 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return 0;
	for (const unsigned char *c = (const unsigned char *)name; *c; c++)
		if (*c < 0x20 || *c == 0x7f || *c == '/' || *c == '\\')
			return 0;
	return 1;
}

int udfb_sha256_hex_parse(char out[65], const char *hex)
{
	if (strlen(hex) != 64)
		return -1;
	for (int k = 0; k < 64; k++) {
		char c = hex[k];
		if (c >= 'A' && c <= 'F')
			c = (char)(c - 'A' + 'a');
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return -1;
		out[k] = c;
	}
	out[64] = '\0';
	return 0;
}

struct udfb_pkgfile *udfb_pkglist_push(struct udfb_pkglist *l)
{
	struct udfb_pkgproject *p = l->p;
	if (p->n_files >= UDFB_INDEX_MAX_FILES)
		return NULL;
	if (p->n_files == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct udfb_pkgfile *f = udfb_realloc(p->files, cap * sizeof(*f));
		p->files = f;
		l->cap = cap;
	}
	struct udfb_pkgfile *f = &p->files[p->n_files++];
	memset(f, 0, sizeof(*f));
	f->size = -1;
	return f;
}

int udfb_pkgpage_begin(struct udfb_pkgproject *out, CURLU **base, const char *page_url, size_t len,
		       struct udfb_err *err)
{
	memset(out, 0, sizeof(*out));
	*base = NULL;
	if (len > UDFB_INDEX_PAGE_MAX_BYTES)
		return udfb_err_set(err, UDFB_E_EXHAUSTED, "larger than %u bytes", UDFB_INDEX_PAGE_MAX_BYTES);
	CURLU *u = curl_url();
	if (!u)
		abort();
	if (curl_url_set(u, CURLUPART_URL, page_url, 0) != CURLUE_OK) {
		curl_url_cleanup(u);
		return udfb_err_set(err, UDFB_E_INVALID, "the page's own URL cannot be parsed");
	}
	*base = u;
	return 0;
}

void udfb_pkglist_pop(struct udfb_pkglist *l)
{
	udfb_pkgfile_clear(&l->p->files[--l->p->n_files]);
}

void udfb_pkgfile_clear(struct udfb_pkgfile *f)
{
	free(f->filename);
	free(f->url);
	free(f->path);
	free(f->requires_python);
	if (f->copy)
		unlink(f->copy); /* ENOENT once the cache has it */
	free(f->copy);
	memset(f, 0, sizeof(*f));
}

static char *dup_or_null(const char *s)
{
	return s ? udfb_strdup(s) : NULL;
}

void udfb_pkgfile_copy(struct udfb_pkgfile *dst, const struct udfb_pkgfile *src)
{
	*dst = *src;
	dst->filename = dup_or_null(src->filename);
	dst->url = dup_or_null(src->url);
	dst->path = dup_or_null(src->path);
	dst->requires_python = dup_or_null(src->requires_python);
	dst->copy = NULL; /* the original owns it */
	dst->copy_sha256[0] = '\0';
}

void udfb_pkgproject_free(struct udfb_pkgproject *p)
{
	if (!p)
		return;
	for (size_t k = 0; k < p->n_files; k++)
		udfb_pkgfile_clear(&p->files[k]);
	free(p->files);
	p->files = NULL;
	p->n_files = 0;
}
