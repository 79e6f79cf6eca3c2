/* Databend's script, read line by line against its templates: see script.h.
 *
 * The script (templates udf_cloud_script.sh.tpl and friends):
 *   #!/usr/bin/env bash | set -euo pipefail | WORKDIR=/app | mkdir -p "$WORKDIR"
 *   | cd "$WORKDIR" | "" | PACKAGES ("" or the pip line) | IMPORTS ("" or the
 *   block: mkdir, the imports.json here-document, the downloader, "", "") | ""
 *   | the udf.py here-document | the server.py here-document | exec python ...
 * Here-documents end at the marker named on their `cat <<'M'` line; Databend
 * picks M, M_1, M_2, ... as the first that the content does not contain. */
#include "builder/script.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "python/pep508.h"
#include "builder/request.h"
#include "common/text.h"

extern const unsigned char udfb_tpl_db_stub_start[], udfb_tpl_db_stub_end[];
extern const unsigned char udfb_tpl_db_downloader_start[], udfb_tpl_db_downloader_end[];

#define PIP_PREFIX "python -m pip install --no-cache-dir "
#define SHOWN 96 /* characters of a differing line that an error shows */

struct cur {
	const char *p, *end;
	size_t line; /* 1-based number of the line last taken */
	const char *l; /* that line, without its newline */
	size_t n;
	int eof;
	int *shape; /* set to 1 when the text differs from the template's shape */
};

/* Take the next line; 0 at the end of the text (a last line without a
 * newline is a line too, and is then caught as a difference). */
static int take(struct cur *c)
{
	if (c->p >= c->end) {
		c->eof = 1;
		c->l = "";
		c->n = 0;
		return 0;
	}
	const char *nl = memchr(c->p, '\n', (size_t)(c->end - c->p));
	c->l = c->p;
	c->n = nl ? (size_t)(nl - c->p) : (size_t)(c->end - c->p);
	c->p = nl ? nl + 1 : c->end;
	c->line++;
	return 1;
}

/* A line as an error may show it: at most SHOWN characters, nothing after a
 * '?' (a presigned URL's signature), control bytes as '?'. */
static void shown(char out[SHOWN + 8], const char *l, size_t n)
{
	size_t k = 0;
	for (; k < n && k < SHOWN; k++) {
		if (l[k] == '?') {
			memcpy(out + k, "?...", 4);
			k += 4;
			break;
		}
		out[k] = (unsigned char)l[k] < 0x20 || l[k] == 0x7f ? '?' : l[k];
	}
	if (k == SHOWN && n > SHOWN) {
		memcpy(out + k, "...", 3);
		k += 3;
	}
	out[k] = '\0';
}

static int differs(const struct cur *c, const char *expected, struct udfb_err *err)
{
	char got[SHOWN + 8], want[SHOWN + 8];
	if (c->shape)
		*c->shape = 1;
	shown(want, expected, strlen(expected));
	if (c->eof)
		return udfb_err_set(err, UDFB_E_INVALID,
				    "script: ends before line %zu ('%s') of Databend's template; this service knows "
				    "the template of %s",
				    c->line + 1, want, UDFB_SCRIPT_TEMPLATE_VERSION);
	shown(got, c->l, c->n);
	return udfb_err_set(
		err, UDFB_E_INVALID,
		"script: line %zu is '%s', Databend's template has '%s' there; this service knows the template of %s",
		c->line, got, want, UDFB_SCRIPT_TEMPLATE_VERSION);
}

static int is(const struct cur *c, const char *s)
{
	return !c->eof && c->n == strlen(s) && memcmp(c->l, s, c->n) == 0;
}

static int expect(struct cur *c, const char *s, struct udfb_err *err)
{
	take(c);
	return is(c, s) ? 0 : differs(c, s, err);
}

/* ---- here-documents ---- */

/* "cat <<'M' > PATH" with M = base or base_<digits>; the marker into m. */
static int heredoc_open(struct cur *c, const char *base, const char *path, char *m, size_t msize, struct udfb_err *err)
{
	char want[128];
	snprintf(want, sizeof(want), "cat <<'%s' > %s", base, path);
	take(c);
	size_t bl = strlen(base), pl = strlen(path);
	if (c->eof || c->n < 7 + bl + 4 + pl || memcmp(c->l, "cat <<'", 7) || memcmp(c->l + 7, base, bl))
		return differs(c, want, err);
	const char *p = c->l + 7 + bl, *e = c->l + c->n;
	if (*p == '_') {
		const char *d = ++p;
		while (p < e && *p >= '0' && *p <= '9')
			p++;
		if (p == d || p - d > 9)
			return differs(c, want, err);
	}
	if ((size_t)(e - p) != 4 + pl || memcmp(p, "' > ", 4) || memcmp(p + 4, path, pl))
		return differs(c, want, err);
	size_t ml = (size_t)(p - (c->l + 7));
	if (ml >= msize)
		return differs(c, want, err);
	memcpy(m, c->l + 7, ml);
	m[ml] = '\0';
	return 0;
}

/* The body up to the line that is the marker; the start line of the
 * body into *first (for messages).  The body keeps every line's newline. */
static int heredoc_body(struct cur *c, const char *m, const char **body, size_t *len, struct udfb_err *err)
{
	const char *start = c->p;
	size_t open_line = c->line;
	for (;;) {
		const char *before = c->p;
		if (!take(c))
			return udfb_err_set(err, UDFB_E_INVALID,
					    "script: the here-document opened on line %zu never ends (no line '%s')",
					    open_line, m);
		if (is(c, m)) {
			*body = start;
			*len = (size_t)(before - start);
			break;
		}
	}
	/* Databend chose the first marker the content does not contain. */
	if (memmem(*body, *len, m, strlen(m)))
		return udfb_err_set(err, UDFB_E_INVALID,
				    "script: the here-document opened on line %zu contains its own marker '%s' "
				    "(Databend would have chosen another)",
				    open_line, m);
	return 0;
}

/* ---- packages ---- */

static int shell_special(char ch)
{
	return strchr(";&|$`'\"(){}\\#", ch) != NULL || (unsigned char)ch <= 0x20 || ch == 0x7f;
}

static int add_package(struct udfb_script *s, const char *w, size_t n, struct udfb_err *err)
{
	char *word = udfb_strndup(w, n);
	for (size_t k = 0; k < n; k++)
		if (shell_special(word[k])) {
			udfb_err_set(err, UDFB_E_INVALID,
				     "script packages: '%.128s' is not a package requirement ('%c' is shell syntax: "
				     "refused, never run)",
				     word, (unsigned char)word[k] < 0x20 ? '?' : word[k]);
			free(word);
			return -1;
		}
	struct udfb_requirement r;
	if (udfb_req_parse(&r, word, err) < 0) {
		udfb_err_wrap(err, "script packages: '%.128s'", word);
		free(word);
		return -1;
	}
	udfb_req_free(&r);
	if (s->n_packages >= UDFB_MAX_PACKAGES) {
		free(word);
		return udfb_err_set(err, UDFB_E_INVALID, "script packages: more than %d", UDFB_MAX_PACKAGES);
	}
	s->packages = udfb_realloc(s->packages, (s->n_packages + 2) * sizeof(char *));
	s->packages[s->n_packages++] = word;
	s->packages[s->n_packages] = NULL;
	return 0;
}

/* Databend joins the trimmed requirements with one space, unquoted: read
 * the words back as the requirements the user wrote, and refuse any word
 * that is not one (a shell word that pip would not get as written). */
static int parse_packages(struct udfb_script *s, const struct cur *c, struct udfb_err *err)
{
	const char *p = c->l + strlen(PIP_PREFIX), *e = c->l + c->n;
	if (p == e)
		return udfb_err_set(err, UDFB_E_INVALID, "script: line %zu installs no package", c->line);
	while (p < e) {
		const char *sp = memchr(p, ' ', (size_t)(e - p));
		const char *we = sp ? sp : e;
		if (we == p)
			return udfb_err_set(err, UDFB_E_INVALID,
					    "script packages: two spaces in a row on line %zu (Databend writes one)",
					    c->line);
		if (add_package(s, p, (size_t)(we - p), err) < 0)
			return -1;
		p = sp ? sp + 1 : e;
		if (sp && p == e)
			return udfb_err_set(err, UDFB_E_INVALID, "script packages: line %zu ends with a space",
					    c->line);
	}
	return 0;
}

/* ---- imports ---- */

static int header_ok(const char *name, const char *value)
{
	if (!*name)
		return 0;
	for (const char *p = name; *p; p++)
		if (!(strchr("!#$%&'*+-.^_`|~", *p) || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= 'A' && *p <= 'Z')))
			return 0;
	for (const unsigned char *p = (const unsigned char *)value; *p; p++)
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
			return 0;
	return 1;
}

static int import_headers(struct udfb_script_import *im, json_t *h, size_t k, struct udfb_err *err)
{
	if (!h || json_is_null(h))
		return 0;
	if (!json_is_object(h) || json_object_size(h) > UDFB_SCRIPT_MAX_HEADERS)
		return udfb_err_set(err, UDFB_E_INVALID,
				    "script imports[%zu] ('%s').headers: must be an object of at most %d strings", k,
				    im->location, UDFB_SCRIPT_MAX_HEADERS);
	im->headers = udfb_calloc(json_object_size(h) + 1, sizeof(char *));
	const char *name;
	json_t *v;
	json_object_foreach(h, name, v) {
		if (!json_is_string(v) || !header_ok(name, json_string_value(v)) || json_string_length(v) > 4096)
			return udfb_err_set(err, UDFB_E_INVALID,
					    "script imports[%zu] ('%s').headers.%.64s: not a valid HTTP header", k,
					    im->location, name);
		im->headers[im->n_headers++] = udfb_asprintf("%s: %s", name, json_string_value(v));
	}
	return 0;
}

static int import_entry(struct udfb_script_import *im, json_t *o, size_t k, struct udfb_err *err)
{
	if (!json_is_object(o))
		return udfb_err_set(err, UDFB_E_INVALID, "script imports[%zu]: must be an object", k);
	const char *key;
	json_t *v;
	json_object_foreach(o, key, v) {
		if (strcmp(key, "location") && strcmp(key, "url") && strcmp(key, "headers"))
			return udfb_err_set(err, UDFB_E_INVALID,
					    "script imports[%zu].%.64s: not in Databend's template", k, key);
	}
	json_t *loc = json_object_get(o, "location"), *url = json_object_get(o, "url");
	if (!json_is_string(loc) || json_string_length(loc) == 0 || json_string_length(loc) > UDFB_LOCATION_MAX_LEN ||
	    memchr(json_string_value(loc), '\0', json_string_length(loc)))
		return udfb_err_set(err, UDFB_E_INVALID,
				    "script imports[%zu].location: must be a string of 1 to %d bytes", k,
				    UDFB_LOCATION_MAX_LEN);
	im->location = udfb_strdup(json_string_value(loc));
	if (!json_is_string(url) || json_string_length(url) > UDFB_URL_MAX_LEN)
		return udfb_err_set(err, UDFB_E_INVALID,
				    "script imports[%zu] ('%s').url: must be a string of at most %d bytes", k,
				    im->location, UDFB_URL_MAX_LEN);
	im->url = udfb_strdup(json_string_value(url));
	return import_headers(im, json_object_get(o, "headers"), k, err);
}

static int parse_imports_json(struct udfb_script *s, const char *text, size_t len, size_t line, struct udfb_err *err)
{
	json_error_t je;
	json_t *a = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!a || !json_is_array(a)) {
		json_decref(a);
		return udfb_err_set(err, UDFB_E_INVALID,
				    "script: line %zu (/app/imports.json) is not a JSON array of imports", line);
	}
	if (json_array_size(a) == 0 || json_array_size(a) > UDFB_MAX_IMPORTS) {
		json_decref(a);
		return udfb_err_set(err, UDFB_E_INVALID,
				    "script: /app/imports.json holds %zu imports (1 to %d expected)",
				    json_array_size(a), UDFB_MAX_IMPORTS);
	}
	s->imports = udfb_calloc(json_array_size(a) + 1, sizeof(*s->imports));
	int rc = 0;
	for (size_t k = 0; rc == 0 && k < json_array_size(a); k++) {
		s->n_imports = k + 1;
		rc = import_entry(&s->imports[k], json_array_get(a, k), k, err);
	}
	json_decref(a);
	return rc;
}

/* The fixed lines of a template text, compared one by one. */
static int expect_text(struct cur *c, const unsigned char *t, const unsigned char *te, struct udfb_err *err)
{
	char want[SHOWN + 8];
	while (t < te) {
		const unsigned char *nl = memchr(t, '\n', (size_t)(te - t));
		size_t n = nl ? (size_t)(nl - t) : (size_t)(te - t);
		take(c);
		if (c->eof || c->n != n || memcmp(c->l, t, n)) {
			snprintf(want, sizeof(want), "%.*s", (int)(n < SHOWN ? n : SHOWN), (const char *)t);
			return differs(c, want, err);
		}
		t = nl ? nl + 1 : te;
	}
	return 0;
}

static int parse_imports(struct udfb_script *s, struct cur *c, struct udfb_err *err)
{
	char m[32];
	const char *body;
	size_t len;
	if (heredoc_open(c, "UDF_IMPORTS", "/app/imports.json", m, sizeof(m), err) < 0)
		return -1;
	size_t line = c->line + 1;
	if (heredoc_body(c, m, &body, &len, err) < 0)
		return -1;
	if (len == 0 || memchr(body, '\n', len - 1))
		return udfb_err_set(err, UDFB_E_INVALID,
				    "script: /app/imports.json (line %zu) must be one line of JSON", line);
	if (parse_imports_json(s, body, len - 1, line, err) < 0)
		return -1;
	if (expect_text(c, udfb_tpl_db_downloader_start, udfb_tpl_db_downloader_end, err) < 0)
		return -1;
	/* The block ends with an empty line, and its placeholder line too. */
	return expect(c, "", err) < 0 ? -1 : expect(c, "", err);
}

/* ---- the stub ---- */

/* A Python double-quoted string with only \\ and \" escaped (Databend's
 * rendering); advances *p past it. */
static char *py_string(const char **p, const char *e)
{
	const char *q = *p;
	if (q >= e || *q != '"')
		return NULL;
	struct udfb_buf b;
	udfb_buf_init(&b, UDFB_TYPE_MAX_LEN + 1);
	for (q++; q < e && *q != '"'; q++) {
		if (*q == '\\') {
			if (++q >= e || (*q != '\\' && *q != '"'))
				break;
		}
		if (udfb_buf_add(&b, q, 1) < 0)
			break;
	}
	if (q >= e || *q != '"') {
		udfb_buf_free(&b);
		return NULL;
	}
	*p = q + 1;
	udfb_buf_addstr(&b, "");
	return udfb_buf_steal(&b, NULL);
}

static int lit(const char **p, const char *e, const char *s)
{
	size_t n = strlen(s);
	if ((size_t)(e - *p) < n || memcmp(*p, s, n))
		return 0;
	*p += n;
	return 1;
}

/* `    return udf_decorator(name="H", input_types=["T", ...], result_type="R")(func)` */
static int decorator_line(struct udfb_script *s, const char *p, const char *e)
{
	if (!lit(&p, e, "    return udf_decorator(name=") || !(s->handler = py_string(&p, e)) ||
	    !lit(&p, e, ", input_types=["))
		return 0;
	s->input_types = udfb_calloc(1, sizeof(char *));
	while (!lit(&p, e, "]")) {
		if (s->n_input_types && !lit(&p, e, ", "))
			return 0;
		if (s->n_input_types >= UDFB_MAX_TYPES)
			return 0;
		char *t = py_string(&p, e);
		if (!t)
			return 0;
		s->input_types = udfb_realloc(s->input_types, (s->n_input_types + 2) * sizeof(char *));
		s->input_types[s->n_input_types++] = t;
		s->input_types[s->n_input_types] = NULL;
	}
	return lit(&p, e, ", result_type=") && (s->result_type = py_string(&p, e)) && lit(&p, e, ")(func)") && p == e;
}

/* `    func = getattr(udf, "H")`, H the decorator's name. */
static int getattr_line(const struct udfb_script *s, const char *p, const char *e)
{
	char *h = NULL;
	int ok = lit(&p, e, "    func = getattr(udf, ") && (h = py_string(&p, e)) && lit(&p, e, ")") && p == e &&
		 s->handler && strcmp(h, s->handler) == 0;
	free(h);
	return ok;
}

/* The stub is the template with the handler and types filled in: every
 * other line must be the template's. */
static int check_stub(struct udfb_script *s, size_t first_line, struct udfb_err *err)
{
	struct cur c = { .p = s->stub, .end = s->stub + s->stub_len, .line = first_line - 1, .shape = &s->shape };
	const unsigned char *t = udfb_tpl_db_stub_start, *te = udfb_tpl_db_stub_end;
	char want[SHOWN + 8];
	while (t < te) {
		const unsigned char *nl = memchr(t, '\n', (size_t)(te - t));
		size_t n = nl ? (size_t)(nl - t) : (size_t)(te - t);
		take(&c);
		int ok;
		if (memmem(t, n, "{HANDLER}", 9))
			ok = !c.eof && (memmem(t, n, "udf_decorator", 13) ? decorator_line(s, c.l, c.l + c.n)
									  : getattr_line(s, c.l, c.l + c.n));
		else
			ok = !c.eof && c.n == n && memcmp(c.l, t, n) == 0;
		if (!ok) {
			snprintf(want, sizeof(want), "%.*s", (int)(n < SHOWN ? n : SHOWN), (const char *)t);
			return differs(&c, want, err);
		}
		t = nl ? nl + 1 : te;
	}
	if (take(&c))
		return differs(&c, "(the end of the stub)", err);
	return 0;
}

/* ---- the whole script ---- */

static int heredoc_copy(struct cur *c, const char *base, const char *path, char **out, size_t *len, size_t *first_line,
			struct udfb_err *err)
{
	char m[32];
	const char *body;
	if (heredoc_open(c, base, path, m, sizeof(m), err) < 0)
		return -1;
	*first_line = c->line + 1;
	if (heredoc_body(c, m, &body, len, err) < 0)
		return -1;
	*out = udfb_malloc(*len + 1);
	memcpy(*out, body, *len);
	(*out)[*len] = '\0';
	return 0;
}

static int parse_lines(struct udfb_script *s, struct cur *c, struct udfb_err *err)
{
	static const char *const head[] = { "#!/usr/bin/env bash",   "set -euo pipefail", "WORKDIR=/app",
					    "mkdir -p \"$WORKDIR\"", "cd \"$WORKDIR\"",	  "" };
	for (size_t k = 0; k < sizeof(head) / sizeof(*head); k++)
		if (expect(c, head[k], err) < 0)
			return -1;
	take(c);
	if (!c->eof && c->n >= strlen(PIP_PREFIX) && memcmp(c->l, PIP_PREFIX, strlen(PIP_PREFIX)) == 0) {
		if (parse_packages(s, c, err) < 0)
			return -1;
	} else if (!is(c, "")) {
		return differs(c, PIP_PREFIX "...' or '", err);
	}
	take(c);
	if (is(c, "mkdir -p /app/imports")) {
		if (parse_imports(s, c, err) < 0)
			return -1;
	} else if (!is(c, "")) {
		return differs(c, "mkdir -p /app/imports' or '", err);
	}
	if (expect(c, "", err) < 0)
		return -1;
	size_t first;
	if (heredoc_copy(c, "UDF_CODE", "/app/udf.py", &s->code, &s->code_len, &first, err) < 0)
		return -1;
	if (s->code_len == 0 || s->code[s->code_len - 1] != '\n')
		return udfb_err_set(err, UDFB_E_INVALID, "script: the UDF code (line %zu) is empty", first);
	s->code[--s->code_len] = '\0';
	if (s->code_len > UDFB_CODE_MAX_BYTES)
		return udfb_err_set(err, UDFB_E_INVALID, "script: the UDF code is larger than %u bytes",
				    UDFB_CODE_MAX_BYTES);
	if (heredoc_copy(c, "UDF_SERVER", "/app/server.py", &s->stub, &s->stub_len, &first, err) < 0 ||
	    check_stub(s, first, err) < 0)
		return -1;
	if (expect(c, "exec python /app/server.py", err) < 0)
		return -1;
	if (c->p[-1] != '\n' || take(c))
		return differs(c, "(the end of the script)", err);
	return 0;
}

int udfb_script_parse(struct udfb_script *out, const char *text, size_t len, struct udfb_err *err)
{
	memset(out, 0, sizeof(*out));
	if (len > UDFB_SCRIPT_MAX_BYTES)
		return udfb_err_set(err, UDFB_E_INVALID, "script: larger than %u bytes", UDFB_SCRIPT_MAX_BYTES);
	if (len == 0)
		return udfb_err_set(err, UDFB_E_INVALID, "script: empty");
	if (udfb_text_check(text, len, UDFB_SCRIPT_MAX_BYTES, "script", err) < 0)
		return -1; /* not UTF-8, or a NUL: Databend's script is a Rust String */
	struct cur c = { .p = text, .end = text + len, .shape = &out->shape };
	if (parse_lines(out, &c, err) < 0) {
		int shape = out->shape;
		udfb_script_free(out);
		memset(out, 0, sizeof(*out));
		out->shape = shape;
		return -1;
	}
	return 0;
}

/* Words after "pip install" that are not options must be requirements, as
 * in the template's own pip line. */
static int check_pip_words(const char *p, const char *e, size_t line, struct udfb_err *err)
{
	struct udfb_script scratch = { 0 };
	int rc = 0;
	while (rc == 0 && p < e) {
		while (p < e && *p == ' ')
			p++;
		const char *we = p;
		while (we < e && *we != ' ')
			we++;
		if (we > p && *p != '-')
			rc = add_package(&scratch, p, (size_t)(we - p), err);
		p = we;
	}
	udfb_script_free(&scratch);
	return rc < 0 ? udfb_err_wrap(err, "script line %zu", line) : 0;
}

int udfb_script_check_run(const char *text, size_t len, struct udfb_err *err)
{
	if (len > UDFB_SCRIPT_MAX_BYTES)
		return udfb_err_set(err, UDFB_E_INVALID, "script: larger than %u bytes", UDFB_SCRIPT_MAX_BYTES);
	if (len == 0)
		return udfb_err_set(err, UDFB_E_INVALID, "script: empty");
	if (udfb_text_check(text, len, UDFB_SCRIPT_MAX_BYTES, "script", err) < 0)
		return -1;
	struct cur c = { .p = text, .end = text + len };
	while (take(&c)) {
		const char *l = c.l, *e = c.l + c.n;
		while (l < e && (*l == ' ' || *l == '\t'))
			l++;
		/* A here-document's body (the UDF's code) is not a pip line. */
		const char *at = memmem(l, (size_t)(e - l), "pip install ", 12);
		if (at && (l == at || memmem(l, (size_t)(at - l), "python", 6) == l))
			if (check_pip_words(at + 12, e, c.line, err) < 0)
				return -1;
	}
	return 0;
}

void udfb_script_free(struct udfb_script *s)
{
	if (!s)
		return;
	for (size_t k = 0; k < s->n_packages; k++)
		free(s->packages[k]);
	free(s->packages);
	for (size_t k = 0; k < s->n_imports; k++) {
		free(s->imports[k].location);
		free(s->imports[k].url);
		for (size_t j = 0; j < s->imports[k].n_headers; j++)
			free(s->imports[k].headers[j]);
		free(s->imports[k].headers);
	}
	free(s->imports);
	free(s->code);
	free(s->stub);
	free(s->handler);
	for (size_t k = 0; k < s->n_input_types; k++)
		free(s->input_types[k]);
	free(s->input_types);
	free(s->result_type);
	memset(s, 0, sizeof(*s));
}

char *udfb_script_spec_json(const struct udfb_script *s, size_t *len)
{
	json_t *types = json_array(), *imports = json_array(), *packages = json_array();
	for (size_t k = 0; k < s->n_input_types; k++)
		json_array_append_new(types, json_string(s->input_types[k]));
	for (size_t k = 0; k < s->n_imports; k++)
		json_array_append_new(imports, json_string(s->imports[k].location));
	for (size_t k = 0; k < s->n_packages; k++)
		json_array_append_new(packages, json_string(s->packages[k]));
	json_t *j = json_pack("{s:i,s:s,s:s,s:s,s:o,s:s,s:o,s:o,s:s%}", "version", 1, "kind", "udf", "language",
			      "python", "handler", s->handler, "input_types", types, "result_type", s->result_type,
			      "imports", imports, "packages", packages, "code", s->code, s->code_len);
	char *text = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(j);
	if (text && len)
		*len = strlen(text);
	return text;
}
