/* PEP 508 requirement parser: see pep508.h.  Recursive descent over the
 * grammar of the PEP; the output is the canonical text, built as we go. */
#include "python/pep508.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <stdint.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/cleanup.h"

struct rparse {
	const char *s;
	size_t i;
	struct udfb_err *err;
};

static void skip_ws(struct rparse *p)
{
	while (p->s[p->i] == ' ' || p->s[p->i] == '\t')
		p->i++;
}

static int fail(struct rparse *p, const char *what)
{
	if (p->err->msg)
		return -1;
	return udfb_err_set(p->err, UDFB_E_INVALID, "%s at offset %zu", what, p->i);
}

void udfb_pep503_normalize(char **out, const char *name)
{
	struct udfb_buf b;
	udfb_buf_init(&b, strlen(name) + 1);
	for (const char *c = name; *c; c++) {
		if (*c == '-' || *c == '_' || *c == '.') {
			while (c[1] == '-' || c[1] == '_' || c[1] == '.')
				c++;
			udfb_buf_add(&b, "-", 1);
		} else {
			char l = (char)tolower((unsigned char)*c);
			udfb_buf_add(&b, &l, 1);
		}
	}
	*out = udfb_buf_steal(&b, NULL);
}

/* identifier = letterOrDigit ( (letterOrDigit | - _ .)* letterOrDigit )? */
static char *parse_identifier(struct rparse *p)
{
	size_t start = p->i;
	while (isalnum((unsigned char)p->s[p->i]) || p->s[p->i] == '-' || p->s[p->i] == '_' || p->s[p->i] == '.')
		p->i++;
	size_t n = p->i - start;
	if (n == 0 || !isalnum((unsigned char)p->s[start]) || !isalnum((unsigned char)p->s[p->i - 1])) {
		p->i = start;
		fail(p, "expected a name");
		return NULL;
	}
	cleanup_free char *raw = udfb_strndup(p->s + start, n);
	char *norm = NULL;
	udfb_pep503_normalize(&norm, raw);
	return norm;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sort and drop duplicates in place; returns the new count. */
static size_t sort_unique(char **v, size_t n)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_str);
	size_t k = 1;
	for (size_t i = 1; i < n; i++) {
		if (strcmp(v[i], v[k - 1]) == 0)
			free(v[i]);
		else
			v[k++] = v[i];
	}
	return k;
}

static int parse_extras(struct rparse *p, struct udfb_requirement *r)
{
	if (p->s[p->i] != '[')
		return 0;
	p->i++;
	skip_ws(p);
	while (p->s[p->i] != ']') {
		if (r->n_extras >= 64)
			return fail(p, "too many extras");
		char *e = parse_identifier(p);
		if (!e)
			return -1;
		r->extras = udfb_realloc(r->extras, (r->n_extras + 1) * sizeof(char *));
		r->extras[r->n_extras++] = e;
		skip_ws(p);
		if (p->s[p->i] == ',') {
			p->i++;
			skip_ws(p);
		} else if (p->s[p->i] != ']') {
			return fail(p, "expected ',' or ']' in extras");
		}
	}
	p->i++;
	r->n_extras = sort_unique(r->extras, r->n_extras);
	return 0;
}

static const char *const version_ops[] = { "===", "==", "!=", "<=", ">=", "~=", "<", ">", NULL };

static const char *match_op(struct rparse *p, const char *const *ops)
{
	for (int k = 0; ops[k]; k++) {
		size_t n = strlen(ops[k]);
		if (strncmp(p->s + p->i, ops[k], n) == 0) {
			p->i += n;
			return ops[k];
		}
	}
	return NULL;
}

/* Rules of PEP 440 on which versions each operator takes. */
static int check_clause(struct rparse *p, const char *op, const char *v)
{
	int wildcard = strstr(v, ".*") != NULL;
	int local = strchr(v, '+') != NULL;
	int eq = strcmp(op, "==") == 0 || strcmp(op, "!=") == 0;
	if (wildcard && (!eq || local))
		return fail(p, "a '.*' version is only allowed with == and !=");
	if (local && !eq)
		return fail(p, "a local version is only allowed with == and !=");
	if (strcmp(op, "~=") == 0 && !strchr(v, '.'))
		return fail(p, "'~=' needs a version with at least two release segments");
	return 0;
}

static int parse_clause(struct rparse *p, char **out)
{
	const char *op = match_op(p, version_ops);
	if (!op)
		return fail(p, "expected a version operator");
	skip_ws(p);
	size_t start = p->i;
	while (isalnum((unsigned char)p->s[p->i]) || (p->s[p->i] && strchr("-_.*+!", p->s[p->i])))
		p->i++;
	if (p->i == start)
		return fail(p, "expected a version");
	cleanup_free char *raw = udfb_strndup(p->s + start, p->i - start);
	cleanup_free char *norm = NULL;
	if (strcmp(op, "===") == 0) {
		norm = udfb_steal(raw); /* arbitrary equality compares the string as is */
	} else {
		int allow_wild = strcmp(op, "==") == 0 || strcmp(op, "!=") == 0;
		if (udfb_pep440_normalize(&norm, raw, allow_wild, p->err) < 0)
			return -1;
		if (check_clause(p, op, norm) < 0)
			return -1;
	}
	size_t n = strlen(op) + strlen(norm) + 1;
	*out = udfb_malloc(n);
	strcpy(*out, op);
	strcat(*out, norm);
	return 0;
}

static int parse_specifier(struct rparse *p, struct udfb_requirement *r)
{
	char *clauses[32];
	size_t n = 0;
	int paren = p->s[p->i] == '(';
	if (paren) {
		p->i++;
		skip_ws(p);
	}
	int rc = 0;
	if (p->s[p->i] && strchr("=!<>~", p->s[p->i])) {
		for (;;) {
			if (n == 32) {
				rc = fail(p, "too many version clauses");
				break;
			}
			if ((rc = parse_clause(p, &clauses[n])) < 0)
				break;
			n++;
			skip_ws(p);
			if (p->s[p->i] != ',')
				break;
			p->i++;
			skip_ws(p);
		}
	}
	if (rc == 0 && paren && p->s[p->i++] != ')')
		rc = fail(p, "expected ')' after version specifier");
	n = rc == 0 ? sort_unique(clauses, n) : n;
	struct udfb_buf b;
	udfb_buf_init(&b, UDFB_REQ_MAX_LEN * 2);
	for (size_t k = 0; k < n; k++) {
		if (rc == 0)
			udfb_buf_printf(&b, "%s%s", k ? "," : "", clauses[k]);
		free(clauses[k]);
	}
	r->specifier = udfb_buf_steal(&b, NULL);
	return rc;
}

/* ---- markers ---- */

static const char *const marker_vars[] = { "python_version",
					   "python_full_version",
					   "os_name",
					   "sys_platform",
					   "platform_release",
					   "platform_system",
					   "platform_version",
					   "platform_machine",
					   "platform_python_implementation",
					   "implementation_name",
					   "implementation_version",
					   "extra",
					   NULL };

static const char *const marker_ops[] = { "===", "==", "!=", "<=", ">=", "~=", "<", ">", NULL };

static int parse_marker_or(struct rparse *p, struct udfb_buf *b, int depth);

static int parse_marker_value(struct rparse *p, struct udfb_buf *b)
{
	char q = p->s[p->i];
	if (q == '"' || q == '\'') {
		size_t start = ++p->i;
		while (p->s[p->i] && p->s[p->i] != q)
			p->i++;
		if (!p->s[p->i])
			return fail(p, "unterminated string in marker");
		size_t n = p->i - start;
		p->i++;
		/* Canonical quoting: double quotes unless the value holds one. */
		char cq = memchr(p->s + start, '"', n) ? '\'' : '"';
		udfb_buf_add(b, &cq, 1);
		udfb_buf_add(b, p->s + start, n);
		return udfb_buf_add(b, &cq, 1);
	}
	for (int k = 0; marker_vars[k]; k++) {
		size_t n = strlen(marker_vars[k]);
		if (strncmp(p->s + p->i, marker_vars[k], n) == 0 && !isalnum((unsigned char)p->s[p->i + n]) &&
		    p->s[p->i + n] != '_') {
			p->i += n;
			return udfb_buf_addstr(b, marker_vars[k]);
		}
	}
	return fail(p, "expected a marker variable or a quoted string");
}

static int parse_marker_op(struct rparse *p, struct udfb_buf *b)
{
	const char *op = match_op(p, marker_ops);
	if (op)
		return udfb_buf_printf(b, " %s ", op);
	if (strncmp(p->s + p->i, "in", 2) == 0 && !isalnum((unsigned char)p->s[p->i + 2])) {
		p->i += 2;
		return udfb_buf_addstr(b, " in ");
	}
	if (strncmp(p->s + p->i, "not", 3) == 0) {
		size_t save = p->i;
		p->i += 3;
		skip_ws(p);
		if (strncmp(p->s + p->i, "in", 2) == 0 && !isalnum((unsigned char)p->s[p->i + 2])) {
			p->i += 2;
			return udfb_buf_addstr(b, " not in ");
		}
		p->i = save;
	}
	return fail(p, "expected a marker operator");
}

static int parse_marker_atom(struct rparse *p, struct udfb_buf *b, int depth)
{
	skip_ws(p);
	if (p->s[p->i] == '(') {
		if (depth > 16)
			return fail(p, "marker nested too deeply");
		p->i++;
		udfb_buf_addstr(b, "(");
		if (parse_marker_or(p, b, depth + 1) < 0)
			return -1;
		skip_ws(p);
		if (p->s[p->i] != ')')
			return fail(p, "expected ')' in marker");
		p->i++;
		return udfb_buf_addstr(b, ")");
	}
	if (parse_marker_value(p, b) < 0)
		return -1;
	skip_ws(p);
	if (parse_marker_op(p, b) < 0)
		return -1;
	skip_ws(p);
	return parse_marker_value(p, b);
}

static int match_keyword(struct rparse *p, const char *kw)
{
	size_t save = p->i;
	skip_ws(p);
	size_t n = strlen(kw);
	if (strncmp(p->s + p->i, kw, n) == 0 && !isalnum((unsigned char)p->s[p->i + n]) && p->s[p->i + n] != '_') {
		p->i += n;
		return 1;
	}
	p->i = save;
	return 0;
}

static int parse_marker_and(struct rparse *p, struct udfb_buf *b, int depth)
{
	if (parse_marker_atom(p, b, depth) < 0)
		return -1;
	while (match_keyword(p, "and")) {
		udfb_buf_addstr(b, " and ");
		if (parse_marker_atom(p, b, depth) < 0)
			return -1;
	}
	return 0;
}

static int parse_marker_or(struct rparse *p, struct udfb_buf *b, int depth)
{
	if (parse_marker_and(p, b, depth) < 0)
		return -1;
	while (match_keyword(p, "or")) {
		udfb_buf_addstr(b, " or ");
		if (parse_marker_and(p, b, depth) < 0)
			return -1;
	}
	return 0;
}

static int parse_marker(struct rparse *p, struct udfb_requirement *r)
{
	struct udfb_buf b;
	udfb_buf_init(&b, UDFB_REQ_MAX_LEN * 2);
	int rc = parse_marker_or(p, &b, 0);
	if (rc == 0 && b.len == 0)
		rc = fail(p, "empty marker");
	r->marker = udfb_buf_steal(&b, NULL);
	return rc;
}

/* ---- requirement ---- */

static void build_canonical(struct udfb_requirement *r)
{
	struct udfb_buf b;
	udfb_buf_init(&b, SIZE_MAX / 2);
	udfb_buf_addstr(&b, r->name);
	for (size_t k = 0; k < r->n_extras; k++)
		udfb_buf_printf(&b, "%s%s", k ? "," : "[", r->extras[k]);
	if (r->n_extras)
		udfb_buf_addstr(&b, "]");
	udfb_buf_addstr(&b, r->specifier);
	if (r->marker)
		udfb_buf_printf(&b, "; %s", r->marker);
	r->canonical = udfb_buf_steal(&b, NULL);
}

static int check_chars(const char *s, struct udfb_err *err)
{
	size_t n = strlen(s);
	if (n == 0)
		return udfb_err_set(err, UDFB_E_INVALID, "empty requirement");
	if (n > UDFB_REQ_MAX_LEN)
		return udfb_err_set(err, UDFB_E_INVALID, "requirement longer than %d bytes", UDFB_REQ_MAX_LEN);
	for (const unsigned char *c = (const unsigned char *)s; *c; c++)
		if (*c < 0x20 || *c >= 0x7f)
			return udfb_err_set(err, UDFB_E_INVALID,
					    "requirement holds a control or non-ASCII byte at offset %zu",
					    (size_t)(c - (const unsigned char *)s));
	return 0;
}

static int parse_requirement(struct rparse *p, struct udfb_requirement *r)
{
	skip_ws(p);
	if (!(r->name = parse_identifier(p)))
		return -1;
	skip_ws(p);
	if (parse_extras(p, r) < 0)
		return -1;
	skip_ws(p);
	if (p->s[p->i] == '@')
		return fail(p, "direct URL references are not supported; name a version instead");
	if (parse_specifier(p, r) < 0)
		return -1;
	skip_ws(p);
	if (p->s[p->i] == ';') {
		p->i++;
		if (parse_marker(p, r) < 0)
			return -1;
		skip_ws(p);
	}
	if (p->s[p->i] != '\0')
		return fail(p, "unexpected text");
	return 0;
}

int udfb_req_parse(struct udfb_requirement *out, const char *s, struct udfb_err *err)
{
	memset(out, 0, sizeof(*out));
	if (check_chars(s, err) < 0)
		return -1;
	struct rparse p = { .s = s, .i = 0, .err = err };
	if (parse_requirement(&p, out) < 0) {
		udfb_req_free(out);
		return -1;
	}
	build_canonical(out);
	return 0;
}

void udfb_req_free(struct udfb_requirement *r)
{
	if (!r)
		return;
	free(r->name);
	for (size_t k = 0; k < r->n_extras; k++)
		free(r->extras[k]);
	free(r->extras);
	free(r->specifier);
	free(r->marker);
	free(r->canonical);
	memset(r, 0, sizeof(*r));
}

int udfb_req_list_parse(char ***out, size_t *n, const char *text, const char *seps, struct udfb_err *err)
{
	cleanup_free char *copy = udfb_strdup(text);
	char *save = NULL, **v = udfb_calloc(strlen(text) / 2 + 2, sizeof(char *));
	size_t k = 0;
	int rc = 0;
	for (char *item = strtok_r(copy, seps, &save); item; item = strtok_r(NULL, seps, &save)) {
		struct udfb_requirement r;
		if ((rc = udfb_req_parse(&r, item, err)) < 0) {
			udfb_err_wrap(err, "'%s'", item);
			break;
		}
		v[k++] = udfb_strdup(r.canonical);
		udfb_req_free(&r);
	}
	*out = v;
	*n = sort_unique(v, k);
	return rc;
}

void udfb_req_list_free(char **v, size_t n)
{
	for (size_t k = 0; k < n; k++)
		free(v[k]);
	free(v);
}
