/* PEP 440 versions: validation and normalisation of the public version
 * scheme with its permitted alternative spellings, plus local versions.
 *   [v][N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local]
 * Separators '.', '-', '_' are permitted around pre/post/dev segments, an
 * implicit number is 0, and "alpha/beta/c/pre/preview/rev/r" are synonyms. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "pep508.h"

struct vparse {
	const char *s;
	size_t i;
	struct udfb_buf out;
};

static int is_sep(char c)
{
	return c == '.' || c == '-' || c == '_';
}

/* Copy a run of digits without leading zeros ("007" -> "7"). */
static int take_number(struct vparse *p)
{
	size_t start = p->i;
	while (isdigit((unsigned char)p->s[p->i]))
		p->i++;
	if (p->i == start || p->i - start > 20)
		return -1;
	size_t j = start;
	while (j + 1 < p->i && p->s[j] == '0')
		j++;
	return udfb_buf_add(&p->out, p->s + j, p->i - j);
}

static int match_word(struct vparse *p, const char *const *words)
{
	for (int k = 0; words[k]; k++) {
		size_t n = strlen(words[k]);
		if (strncasecmp(p->s + p->i, words[k], n) == 0) {
			p->i += n;
			return k;
		}
	}
	return -1;
}

/* Optional separator, optional number (implicit 0). */
static int take_implicit_number(struct vparse *p)
{
	size_t save = p->i;
	if (is_sep(p->s[p->i]))
		p->i++;
	if (isdigit((unsigned char)p->s[p->i]))
		return take_number(p);
	p->i = save;
	return udfb_buf_addstr(&p->out, "0");
}

static int parse_pre(struct vparse *p)
{
	static const char *const words[] = { "alpha", "beta", "preview", "pre", "rc", "a", "b", "c", NULL };
	static const char *const canon[] = { "a", "b", "rc", "rc", "rc", "a", "b", "rc" };
	size_t save = p->i;
	if (is_sep(p->s[p->i]))
		p->i++;
	int k = match_word(p, words);
	if (k < 0) {
		p->i = save;
		return 0;
	}
	udfb_buf_addstr(&p->out, canon[k]);
	return take_implicit_number(p);
}

static int parse_post(struct vparse *p)
{
	static const char *const words[] = { "post", "rev", "r", NULL };
	size_t save = p->i;
	/* "1.0-1" is an implicit post release. */
	if (p->s[p->i] == '-' && isdigit((unsigned char)p->s[p->i + 1])) {
		p->i++;
		udfb_buf_addstr(&p->out, ".post");
		return take_number(p);
	}
	if (is_sep(p->s[p->i]))
		p->i++;
	if (match_word(p, words) < 0) {
		p->i = save;
		return 0;
	}
	udfb_buf_addstr(&p->out, ".post");
	return take_implicit_number(p);
}

static int parse_dev(struct vparse *p)
{
	static const char *const words[] = { "dev", NULL };
	size_t save = p->i;
	if (is_sep(p->s[p->i]))
		p->i++;
	if (match_word(p, words) < 0) {
		p->i = save;
		return 0;
	}
	udfb_buf_addstr(&p->out, ".dev");
	return take_implicit_number(p);
}

/* Local version: alphanumeric segments separated by . - _, normalised to '.'. */
static int parse_local(struct vparse *p)
{
	if (p->s[p->i] != '+')
		return 0;
	p->i++;
	udfb_buf_addstr(&p->out, "+");
	int want_segment = 1;
	while (isalnum((unsigned char)p->s[p->i]) || is_sep(p->s[p->i])) {
		char c = p->s[p->i++];
		if (is_sep(c)) {
			if (want_segment)
				return -1;
			want_segment = 1;
			udfb_buf_addstr(&p->out, ".");
		} else {
			want_segment = 0;
			char l = (char)tolower((unsigned char)c);
			udfb_buf_add(&p->out, &l, 1);
		}
	}
	return want_segment ? -1 : 0;
}

static int parse_release(struct vparse *p, int allow_wildcard, int *wildcard)
{
	if (take_number(p) < 0)
		return -1;
	while (p->s[p->i] == '.' && isdigit((unsigned char)p->s[p->i + 1])) {
		p->i++;
		udfb_buf_addstr(&p->out, ".");
		if (take_number(p) < 0)
			return -1;
	}
	if (allow_wildcard && strcmp(p->s + p->i, ".*") == 0) {
		p->i += 2;
		udfb_buf_addstr(&p->out, ".*");
		*wildcard = 1;
	}
	return 0;
}

int udfb_pep440_normalize(char **out, const char *s, int allow_wildcard, struct udfb_err *err)
{
	struct vparse p = { .s = s, .i = 0 };
	udfb_buf_init(&p.out, strlen(s) * 4 + 64); /* normalising at most doubles a version */
	int wildcard = 0;
	if (p.s[0] == 'v' || p.s[0] == 'V')
		p.i++;
	/* Epoch: digits followed by '!'. */
	size_t d = p.i;
	while (isdigit((unsigned char)s[d]))
		d++;
	if (d > p.i && s[d] == '!') {
		if (take_number(&p) < 0)
			goto bad;
		p.i++;
		udfb_buf_addstr(&p.out, "!");
		if (p.out.len == 2 && p.out.data[0] == '0')
			udfb_buf_reset(&p.out); /* epoch 0 is the default */
	}
	if (parse_release(&p, allow_wildcard, &wildcard) < 0)
		goto bad;
	if (!wildcard && (parse_pre(&p) < 0 || parse_post(&p) < 0 || parse_dev(&p) < 0 ||
			  parse_local(&p) < 0))
		goto bad;
	if (s[p.i] != '\0')
		goto bad;
	*out = udfb_buf_steal(&p.out, NULL);
	return 0;
bad:
	udfb_buf_free(&p.out);
	return udfb_err_set(err, UDFB_E_INVALID, "'%.64s' is not a valid PEP 440 version", s);
}
