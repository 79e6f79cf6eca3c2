/* A reader for the TOML of a PEP 723 block.  It understands every TOML
 * value form well enough to skip it (strings of all four kinds, arrays,
 * inline tables, scalars, tables and arrays of tables) and keeps only two
 * top-level keys: "dependencies" (array of strings) and "requires-python"
 * (string).  Anything malformed is an error with its line number. */
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "python/pep723.h"

#define TOML_MAX_DEPTH 32

struct tp {
	const char *s;
	size_t n, i;
	int line;
	struct udfb_err *err;
};

static int peek(struct tp *p)
{
	return p->i < p->n ? (unsigned char)p->s[p->i] : -1;
}

static int starts(struct tp *p, const char *lit)
{
	size_t k = strlen(lit);
	return p->n - p->i >= k && memcmp(p->s + p->i, lit, k) == 0;
}

static int fail(struct tp *p, const char *what)
{
	if (p->err->msg)
		return -1;
	return udfb_err_set(p->err, UDFB_E_INVALID, "TOML line %d: %s", p->line, what);
}

static void skip_ws(struct tp *p)
{
	while (peek(p) == ' ' || peek(p) == '\t')
		p->i++;
}

static void skip_comment(struct tp *p)
{
	if (peek(p) == '#')
		while (peek(p) != -1 && peek(p) != '\n')
			p->i++;
}

/* Whitespace, newlines and comments (inside arrays). */
static void skip_space(struct tp *p)
{
	for (;;) {
		skip_ws(p);
		skip_comment(p);
		if (peek(p) == '\r' || peek(p) == '\n') {
			p->line += peek(p) == '\n';
			p->i++;
		} else {
			return;
		}
	}
}

static int end_of_line(struct tp *p)
{
	skip_ws(p);
	skip_comment(p);
	if (peek(p) == '\r')
		p->i++;
	if (peek(p) == -1)
		return 0;
	if (peek(p) != '\n')
		return fail(p, "expected the end of the line");
	p->i++;
	p->line++;
	return 0;
}

static void put_utf8(struct udfb_buf *b, unsigned long cp)
{
	unsigned char u[4];
	size_t n;
	if (cp < 0x80) {
		u[0] = (unsigned char)cp, n = 1;
	} else if (cp < 0x800) {
		u[0] = (unsigned char)(0xC0 | (cp >> 6)), u[1] = (unsigned char)(0x80 | (cp & 0x3F)), n = 2;
	} else if (cp < 0x10000) {
		u[0] = (unsigned char)(0xE0 | (cp >> 12)), u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		u[2] = (unsigned char)(0x80 | (cp & 0x3F)), n = 3;
	} else {
		u[0] = (unsigned char)(0xF0 | (cp >> 18)), u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
		u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F)), u[3] = (unsigned char)(0x80 | (cp & 0x3F)), n = 4;
	}
	if (b)
		udfb_buf_add(b, u, n);
}

static int parse_escape(struct tp *p, struct udfb_buf *b)
{
	static const char from[] = "btnfr\"\\", to[] = "\b\t\n\f\r\"\\";
	int c = peek(p);
	p->i++;
	const char *k = c > 0 ? strchr(from, c) : NULL;
	if (k && *k) {
		if (b)
			udfb_buf_add(b, &to[k - from], 1);
		return 0;
	}
	if (c != 'u' && c != 'U')
		return fail(p, "bad escape in string");
	size_t digits = c == 'u' ? 4 : 8;
	if (p->n - p->i < digits)
		return fail(p, "short unicode escape");
	unsigned long cp = 0;
	for (size_t d = 0; d < digits; d++) {
		char h = p->s[p->i++];
		int v = h >= '0' && h <= '9'   ? h - '0'
			: h >= 'a' && h <= 'f' ? h - 'a' + 10
			: h >= 'A' && h <= 'F' ? h - 'A' + 10
					       : -1;
		if (v < 0)
			return fail(p, "bad unicode escape");
		cp = cp * 16 + (unsigned long)v;
	}
	if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return fail(p, "unicode escape out of range");
	put_utf8(b, cp);
	return 0;
}

/* Any of the four string forms; the decoded text goes to b when non-NULL. */
static int parse_string(struct tp *p, struct udfb_buf *b)
{
	char q = (char)peek(p);
	int multi = starts(p, q == '"' ? "\"\"\"" : "'''");
	p->i += multi ? 3 : 1;
	if (multi && peek(p) == '\n')
		p->i++, p->line++; /* a newline right after the opening is trimmed */
	for (;;) {
		int c = peek(p);
		if (c == -1 || (!multi && c == '\n'))
			return fail(p, "unterminated string");
		if (c == q && (!multi || starts(p, q == '"' ? "\"\"\"" : "'''"))) {
			p->i += multi ? 3 : 1;
			return 0;
		}
		if (c == '\\' && q == '"') {
			p->i++;
			if (multi && (peek(p) == '\n' || peek(p) == ' ' || peek(p) == '\t' || peek(p) == '\r')) {
				skip_space(p); /* line-ending backslash */
				continue;
			}
			if (parse_escape(p, b) < 0)
				return -1;
			continue;
		}
		p->line += c == '\n';
		char ch = (char)c;
		if (b && udfb_buf_add(b, &ch, 1) < 0)
			return fail(p, "string too long");
		p->i++;
	}
}

static int skip_value(struct tp *p, int depth);

static int parse_key(struct tp *p, struct udfb_buf *key)
{
	for (;;) {
		skip_ws(p);
		int c = peek(p);
		if (c == '"' || c == '\'') {
			if (parse_string(p, key) < 0)
				return -1;
		} else {
			size_t start = p->i;
			while ((c = peek(p)) != -1 && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
						       (c >= '0' && c <= '9') || c == '_' || c == '-'))
				p->i++;
			if (p->i == start)
				return fail(p, "expected a key");
			udfb_buf_add(key, p->s + start, p->i - start);
		}
		skip_ws(p);
		if (peek(p) != '.')
			return 0;
		p->i++;
		udfb_buf_add(key, ".", 1);
	}
}

static int skip_array(struct tp *p, int depth)
{
	p->i++;
	for (;;) {
		skip_space(p);
		if (peek(p) == ']') {
			p->i++;
			return 0;
		}
		if (skip_value(p, depth + 1) < 0)
			return -1;
		skip_space(p);
		if (peek(p) == ',')
			p->i++;
		else if (peek(p) != ']')
			return fail(p, "expected ',' or ']' in array");
	}
}

static int skip_inline_table(struct tp *p, int depth)
{
	p->i++;
	skip_ws(p);
	if (peek(p) == '}') {
		p->i++;
		return 0;
	}
	for (;;) {
		struct udfb_buf key;
		udfb_buf_init(&key, 4096);
		int rc = parse_key(p, &key);
		udfb_buf_free(&key);
		if (rc < 0)
			return -1;
		if (peek(p) != '=')
			return fail(p, "expected '=' in inline table");
		p->i++;
		skip_ws(p);
		if (skip_value(p, depth + 1) < 0)
			return -1;
		skip_ws(p);
		if (peek(p) == '}') {
			p->i++;
			return 0;
		}
		if (peek(p) != ',')
			return fail(p, "expected ',' or '}' in inline table");
		p->i++;
	}
}

static int skip_value(struct tp *p, int depth)
{
	if (depth > TOML_MAX_DEPTH)
		return fail(p, "values nested too deeply");
	int c = peek(p);
	if (c == '"' || c == '\'')
		return parse_string(p, NULL);
	if (c == '[')
		return skip_array(p, depth);
	if (c == '{')
		return skip_inline_table(p, depth);
	size_t start = p->i;
	while ((c = peek(p)) != -1 && !strchr(" \t\r\n,]}#", c))
		p->i++;
	return p->i == start ? fail(p, "expected a value") : 0;
}

static int take_string(struct tp *p, char **out)
{
	if (peek(p) != '"' && peek(p) != '\'')
		return fail(p, "expected a string");
	struct udfb_buf b;
	udfb_buf_init(&b, 64 * 1024);
	if (parse_string(p, &b) < 0) {
		udfb_buf_free(&b);
		return -1;
	}
	*out = udfb_buf_steal(&b, NULL);
	return 0;
}

static int take_deps(struct tp *p, struct udfb_pep723 *out)
{
	if (out->dependencies)
		return fail(p, "'dependencies' given twice");
	out->dependencies = udfb_calloc(1, sizeof(char *));
	if (peek(p) != '[')
		return fail(p, "'dependencies' must be an array of strings");
	p->i++;
	for (;;) {
		skip_space(p);
		if (peek(p) == ']') {
			p->i++;
			return 0;
		}
		if (out->n_dependencies >= UDFB_PEP723_MAX_DEPS)
			return fail(p, "too many dependencies");
		char *d = NULL;
		if (take_string(p, &d) < 0)
			return -1;
		out->dependencies = udfb_realloc(out->dependencies, (out->n_dependencies + 1) * sizeof(char *));
		out->dependencies[out->n_dependencies++] = d;
		skip_space(p);
		if (peek(p) == ',')
			p->i++;
		else if (peek(p) != ']')
			return fail(p, "expected ',' or ']' in 'dependencies'");
	}
}

static int table_header(struct tp *p)
{
	int dbl = starts(p, "[[");
	p->i += dbl ? 2 : 1;
	struct udfb_buf key;
	udfb_buf_init(&key, 4096);
	int rc = parse_key(p, &key);
	udfb_buf_free(&key);
	if (rc < 0)
		return -1;
	if (!starts(p, dbl ? "]]" : "]"))
		return fail(p, "bad table header");
	p->i += dbl ? 2 : 1;
	return end_of_line(p);
}

static int key_value(struct tp *p, int top, struct udfb_pep723 *out)
{
	struct udfb_buf key;
	udfb_buf_init(&key, 4096);
	int rc = parse_key(p, &key);
	if (rc == 0 && peek(p) != '=')
		rc = fail(p, "expected '='");
	if (rc == 0) {
		p->i++;
		skip_ws(p);
		const char *k = key.data ? key.data : "";
		if (top && strcmp(k, "dependencies") == 0)
			rc = take_deps(p, out);
		else if (top && strcmp(k, "requires-python") == 0)
			rc = out->requires_python ? fail(p, "'requires-python' given twice")
						  : take_string(p, &out->requires_python);
		else
			rc = skip_value(p, 0);
	}
	udfb_buf_free(&key);
	return rc < 0 ? -1 : end_of_line(p);
}

int udfb_toml_script_fields(struct udfb_pep723 *out, const char *toml, size_t len, struct udfb_err *err)
{
	struct tp p = { .s = toml, .n = len, .i = 0, .line = 1, .err = err };
	int top = 1;
	for (;;) {
		skip_space(&p);
		if (peek(&p) == -1)
			return 0;
		if (peek(&p) == '[') {
			top = 0; /* keys after a table header are not top-level */
			if (table_header(&p) < 0)
				return -1;
		} else if (key_value(&p, top, out) < 0) {
			return -1;
		}
	}
}
