/* Core metadata (METADATA, PKG-INFO): RFC 822 headers as Python's email
 * parser (compat32) reads them: names case-insensitive, continuation lines
 * joined, the body after the first blank line ignored. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "python/wheel.h"
#include "python/wheel_internal.h"

#define HEADERS_MAX_COUNT 10000
#define HEADERS_MAX_LINE (1u << 20)

static int is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* name ":" with name of printable ASCII but ':' (email's headerRE); the
 * length of name, or 0 when the line is no header. */
static size_t header_name_len(const char *line, size_t n)
{
	size_t k = 0;
	while (k < n && line[k] > ' ' && line[k] < 127 && line[k] != ':')
		k++;
	return k > 0 && k < n && line[k] == ':' ? k : 0;
}

struct hstate {
	const char *what;
	udfb_header_fn fn;
	void *ctx;
	struct udfb_buf name, value;
	int open;
	size_t count;
};

static int flush(struct hstate *h, struct udfb_err *err)
{
	if (!h->open)
		return 0;
	h->open = 0;
	char *v = h->value.data ? h->value.data : "";
	size_t n = h->value.len;
	while (n && is_ws(v[n - 1]))
		v[--n] = '\0';
	while (is_ws(*v))
		v++;
	return h->fn(h->ctx, h->name.data, v, err);
}

static int one_line(struct hstate *h, const char *line, size_t n, struct udfb_err *err)
{
	if (n > HEADERS_MAX_LINE)
		return udfb_err_set(err, UDFB_E_INVALID, "%s: a header line is longer than %u bytes", h->what,
				    HEADERS_MAX_LINE);
	if (memchr(line, '\0', n))
		return udfb_err_set(err, UDFB_E_INVALID, "%s: NUL byte in a header", h->what);
	if (line[0] == ' ' || line[0] == '\t') {
		/* A continuation before any header is a defect email ignores. */
		if (h->open && udfb_buf_add(&h->value, line, n) < 0)
			return udfb_err_set(err, UDFB_E_INVALID, "%s: header too long", h->what);
		return 0;
	}
	size_t nl = header_name_len(line, n);
	if (nl == 0)
		return 1; /* not a header: email takes the body to start here */
	if (flush(h, err) != 0)
		return -1;
	if (++h->count > HEADERS_MAX_COUNT)
		return udfb_err_set(err, UDFB_E_INVALID, "%s: more than %d headers", h->what, HEADERS_MAX_COUNT);
	udfb_buf_reset(&h->name);
	udfb_buf_reset(&h->value);
	if (udfb_buf_add(&h->name, line, nl) < 0 || udfb_buf_add(&h->value, line + nl + 1, n - nl - 1) < 0)
		return udfb_err_set(err, UDFB_E_INVALID, "%s: header too long", h->what);
	h->open = 1;
	return 0;
}

int udfb_headers_each(const char *text, size_t len, const char *what, udfb_header_fn fn, void *ctx,
		      struct udfb_err *err)
{
	struct hstate h = { .what = what, .fn = fn, .ctx = ctx };
	udfb_buf_init(&h.name, HEADERS_MAX_LINE);
	udfb_buf_init(&h.value, len + 1);
	int rc = 0;
	for (size_t off = 0; off < len && rc == 0;) {
		const char *nl = memchr(text + off, '\n', len - off);
		size_t end = nl ? (size_t)(nl - text) : len;
		size_t n = end - off;
		if (n && text[off + n - 1] == '\r')
			n--;
		if (n == 0)
			break; /* the blank line before the body */
		rc = one_line(&h, text + off, n, err);
		off = end + 1;
	}
	if (rc >= 0)
		rc = flush(&h, err);
	udfb_buf_free(&h.name);
	udfb_buf_free(&h.value);
	return rc < 0 ? -1 : rc;
}

static void push(char ***v, size_t *n, const char *s)
{
	/* Capacity doubles at powers of two. */
	if ((*n & (*n - 1)) == 0)
		*v = udfb_realloc(*v, (*n ? *n * 2 : 1) * sizeof(**v));
	(*v)[(*n)++] = udfb_strdup(s);
}

static int take_field(void *ctx, const char *name, const char *value, struct udfb_err *err)
{
	(void)err;
	struct udfb_pkgmeta *m = ctx;
	/* email's get() answers the first of repeated headers. */
	if (strcasecmp(name, "Name") == 0 && !m->name)
		m->name = udfb_strdup(value);
	else if (strcasecmp(name, "Version") == 0 && !m->version)
		m->version = udfb_strdup(value);
	else if (strcasecmp(name, "Requires-Python") == 0 && !m->requires_python)
		m->requires_python = udfb_strdup(value);
	else if (strcasecmp(name, "Requires-Dist") == 0)
		push(&m->requires_dist, &m->n_requires_dist, value);
	else if (strcasecmp(name, "Provides-Extra") == 0)
		push(&m->provides_extra, &m->n_provides_extra, value);
	return 0;
}

int udfb_pkgmeta_parse(struct udfb_pkgmeta *out, const char *text, size_t len, struct udfb_err *err)
{
	memset(out, 0, sizeof(*out));
	if (len > UDFB_METADATA_MAX_BYTES)
		return udfb_err_set(err, UDFB_E_INVALID, "metadata: larger than %u bytes", UDFB_METADATA_MAX_BYTES);
	if (udfb_headers_each(text, len, "metadata", take_field, out, err) < 0)
		goto fail;
	if (!out->name || !out->name[0]) {
		udfb_err_set(err, UDFB_E_INVALID, "metadata: no Name");
		goto fail;
	}
	if (!out->version || !out->version[0]) {
		udfb_err_set(err, UDFB_E_INVALID, "metadata: no Version (project '%.100s')", out->name);
		goto fail;
	}
	return 0;
fail:
	udfb_pkgmeta_free(out);
	return -1;
}

static void free_list(char **v, size_t n)
{
	for (size_t k = 0; k < n; k++)
		free(v[k]);
	free(v);
}

void udfb_pkgmeta_free(struct udfb_pkgmeta *m)
{
	free(m->name);
	free(m->version);
	free(m->requires_python);
	free_list(m->requires_dist, m->n_requires_dist);
	free_list(m->provides_extra, m->n_provides_extra);
	memset(m, 0, sizeof(*m));
}
