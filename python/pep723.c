/* Find the PEP 723 "script" block, following the reference regular
 * expression of the PEP:
 *   (?m)^# /// (?P<type>[a-zA-Z0-9-]+)$\s(?P<content>(^#(| .*)$\s)+)^# ///$
 * A block runs over consecutive comment lines and ends at the last "# ///"
 * among them; two script blocks are an error, as the PEP demands. */
#include "python/pep723.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

struct line {
	const char *p;
	size_t n;
};

static int next_line(const char *code, size_t len, size_t *pos, struct line *l)
{
	if (*pos >= len)
		return 0;
	const char *start = code + *pos;
	const char *nl = memchr(start, '\n', len - *pos);
	l->p = start;
	l->n = nl ? (size_t)(nl - start) : len - *pos;
	*pos += l->n + (nl ? 1 : 0);
	if (l->n && l->p[l->n - 1] == '\r')
		l->n--;
	return 1;
}

static int is_comment_line(const struct line *l)
{
	return l->n >= 1 && l->p[0] == '#' && (l->n == 1 || l->p[1] == ' ');
}

static int is_close(const struct line *l)
{
	return l->n == 5 && memcmp(l->p, "# ///", 5) == 0;
}

/* "# /// TYPE": returns the type length, 0 if not an opening line. */
static size_t open_type(const struct line *l, const char **type)
{
	if (l->n <= 6 || memcmp(l->p, "# /// ", 6) != 0)
		return 0;
	for (size_t k = 6; k < l->n; k++) {
		char c = l->p[k];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'))
			return 0;
	}
	*type = l->p + 6;
	return l->n - 6;
}

/* Collect the block body that starts after an opening line at *pos; on
 * success *pos moves past the closing line. */
static int take_block(const char *code, size_t len, size_t *pos, struct udfb_buf *body)
{
	size_t scan = *pos, close_end = 0, body_len_at_close = 0;
	int closed = 0;
	struct line l;
	while (next_line(code, len, &scan, &l) && is_comment_line(&l)) {
		if (is_close(&l)) {
			closed = 1;
			close_end = scan;
			body_len_at_close = body->len;
		}
		const char *text = l.n > 1 ? l.p + 2 : l.p + 1;
		size_t tn = l.n > 1 ? l.n - 2 : 0;
		if (udfb_buf_add(body, text, tn) < 0 || udfb_buf_add(body, "\n", 1) < 0)
			return -1;
	}
	if (!closed)
		return 0;
	body->len = body_len_at_close;
	body->data[body->len] = '\0';
	*pos = close_end;
	return 1;
}

int udfb_pep723_parse(struct udfb_pep723 *out, const char *code, size_t len, struct udfb_err *err)
{
	memset(out, 0, sizeof(*out));
	struct udfb_buf body;
	udfb_buf_init(&body, len + 1);
	size_t pos = 0;
	struct line l;
	int found = 0;
	while (next_line(code, len, &pos, &l)) {
		const char *type;
		size_t tn = open_type(&l, &type);
		if (!tn)
			continue;
		int is_script = tn == 6 && memcmp(type, "script", 6) == 0;
		struct udfb_buf *dst = &body, other;
		udfb_buf_init(&other, len + 1);
		if (!is_script)
			dst = &other;
		else if (found) {
			udfb_buf_free(&body);
			return udfb_err_set(err, UDFB_E_INVALID, "more than one '# /// script' block");
		}
		int rc = take_block(code, len, &pos, dst);
		udfb_buf_free(&other);
		if (rc < 0) {
			udfb_buf_free(&body);
			return udfb_err_set(err, UDFB_E_INVALID, "'# /// script' block too large");
		}
		if (rc == 0 && is_script) {
			udfb_buf_free(&body);
			return udfb_err_set(err, UDFB_E_INVALID, "'# /// script' block has no closing '# ///' line");
		}
		found |= is_script;
	}
	if (!found) {
		udfb_buf_free(&body);
		return 0;
	}
	out->present = 1;
	int rc = udfb_toml_script_fields(out, body.data ? body.data : "", body.len, err);
	udfb_buf_free(&body);
	if (rc < 0) {
		udfb_pep723_free(out);
		return udfb_err_wrap(err, "'# /// script' block");
	}
	return 0;
}

void udfb_pep723_free(struct udfb_pep723 *m)
{
	if (!m)
		return;
	for (size_t k = 0; k < m->n_dependencies; k++)
		free(m->dependencies[k]);
	free(m->dependencies);
	free(m->requires_python);
	memset(m, 0, sizeof(*m));
}
