/* PEP 440 versions and specifiers: see pyver.h.  The parser follows the
 * PEP's (and Python packaging's) version regex with a hand-written scanner;
 * normalised text is produced from the parsed struct, so there is one
 * parser for both (python/pep440.c normalises through it). */
#include "python/pyver.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/alloc.h"

/* A specifier set is a short list of clauses: Requires-Python or one
 * requirement's specifier.  Bounds the work spent on empty ",,,," runs. */
#define SPEC_MAX_LEN 4096

/* ---- versions ---- */

struct vscan {
	const char *s;
	size_t i, end; /* end: past the last non-blank byte */
	const char *why; /* set when the reason is more useful than "not valid" */
};

static int is_sep(char c)
{
	return c == '.' || c == '-' || c == '_';
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static int digit_at(const struct vscan *p, size_t i)
{
	return i < p->end && isdigit((unsigned char)p->s[i]);
}

/* One or more digits into *out; numbers past LLONG_MAX are refused rather
 * than wrapped (Python's are unbounded, no real version comes close). */
static int take_number(struct vscan *p, long long *out)
{
	if (!digit_at(p, p->i))
		return -1;
	long long n = 0;
	while (digit_at(p, p->i)) {
		int d = p->s[p->i++] - '0';
		if (n > (LLONG_MAX - d) / 10) {
			p->why = "holds a number that is too large";
			return -1;
		}
		n = n * 10 + d;
	}
	*out = n;
	return 0;
}

/* The first of words (in order, case-insensitive) that starts at p->i. */
static int take_word(struct vscan *p, const char *const *words)
{
	for (int k = 0; words[k]; k++) {
		size_t n = strlen(words[k]);
		if (p->i + n <= p->end && strncasecmp(p->s + p->i, words[k], n) == 0) {
			p->i += n;
			return k;
		}
	}
	return -1;
}

static void skip_sep(struct vscan *p)
{
	if (p->i < p->end && is_sep(p->s[p->i]))
		p->i++;
}

/* [sep] word [sep] [N]: the shape of pre, post and dev segments, the number
 * being 0 when absent.  Returns the word's index, -1 when there is none
 * (nothing consumed), -2 on a bad number. */
static int take_labelled(struct vscan *p, const char *const *words, long long *n)
{
	size_t save = p->i;
	skip_sep(p);
	int k = take_word(p, words);
	if (k < 0) {
		p->i = save;
		return -1;
	}
	skip_sep(p);
	*n = 0;
	if (digit_at(p, p->i) && take_number(p, n) < 0)
		return -2;
	return k;
}

static int scan_release(struct vscan *p, struct udfb_pyver *v)
{
	for (;;) {
		if (v->n_release == UDFB_PYVER_MAX_RELEASE) {
			p->why = "has too many release segments";
			return -1;
		}
		if (take_number(p, &v->release[v->n_release++]) < 0)
			return -1;
		if (p->i >= p->end || p->s[p->i] != '.' || !digit_at(p, p->i + 1))
			return 0;
		p->i++;
	}
}

static int scan_pre(struct vscan *p, struct udfb_pyver *v)
{
	static const char *const words[] = { "alpha", "a", "beta", "b", "preview", "pre", "c", "rc", NULL };
	static const char kinds[] = { 'a', 'a', 'b', 'b', 'c', 'c', 'c', 'c' };
	int k = take_labelled(p, words, &v->pre);
	if (k == -2)
		return -1;
	if (k >= 0)
		v->pre_kind = kinds[k];
	return 0;
}

static int scan_post(struct vscan *p, struct udfb_pyver *v)
{
	static const char *const words[] = { "post", "rev", "r", NULL };
	/* "1.0-1" is an implicit post release. */
	if (p->i < p->end && p->s[p->i] == '-' && digit_at(p, p->i + 1)) {
		p->i++;
		return take_number(p, &v->post);
	}
	return take_labelled(p, words, &v->post) == -2 ? -1 : 0;
}

static int scan_dev(struct vscan *p, struct udfb_pyver *v)
{
	static const char *const words[] = { "dev", NULL };
	return take_labelled(p, words, &v->dev) == -2 ? -1 : 0;
}

/* +seg(sep seg)*: lower-cased, separators become '.', and numeric segments
 * lose leading zeros (Python compares, and prints, them as integers). */
static int scan_local(struct vscan *p, struct udfb_pyver *v)
{
	if (p->i >= p->end || p->s[p->i] != '+')
		return 0;
	p->i++;
	size_t n = 0;
	for (;;) {
		size_t start = p->i;
		while (p->i < p->end && isalnum((unsigned char)p->s[p->i]))
			p->i++;
		if (p->i == start)
			return -1;
		size_t k = start;
		if (strspn(p->s + start, "0123456789") >= p->i - start)
			while (k + 1 < p->i && p->s[k] == '0')
				k++;
		for (; k < p->i; k++)
			v->local[n++] = (char)tolower((unsigned char)p->s[k]);
		if (p->i >= p->end || !is_sep(p->s[p->i]))
			break;
		v->local[n++] = '.';
		p->i++;
	}
	v->local[n] = '\0';
	return 0;
}

static int put(char *buf, size_t cap, size_t *n, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int put(char *buf, size_t cap, size_t *n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(buf + *n, cap - *n, fmt, ap);
	va_end(ap);
	if (k < 0 || (size_t)k >= cap - *n)
		return -1;
	*n += (size_t)k;
	return 0;
}

/* The normalised text, as Python's str(Version) prints it. */
static int format_text(struct udfb_pyver *v)
{
	char *t = v->text;
	size_t cap = sizeof(v->text), n = 0;
	int rc = 0;
	if (v->epoch)
		rc |= put(t, cap, &n, "%lld!", v->epoch);
	for (size_t k = 0; k < v->n_release; k++)
		rc |= put(t, cap, &n, "%s%lld", k ? "." : "", v->release[k]);
	if (v->pre_kind)
		rc |= put(t, cap, &n, "%s%lld", v->pre_kind == 'c' ? "rc" : v->pre_kind == 'b' ? "b" : "a", v->pre);
	if (v->post >= 0)
		rc |= put(t, cap, &n, ".post%lld", v->post);
	if (v->dev >= 0)
		rc |= put(t, cap, &n, ".dev%lld", v->dev);
	if (v->local[0])
		rc |= put(t, cap, &n, "+%s", v->local);
	return rc ? -1 : 0;
}

static int scan_version(struct vscan *p, struct udfb_pyver *v)
{
	if (p->i < p->end && (p->s[p->i] == 'v' || p->s[p->i] == 'V'))
		p->i++;
	size_t d = p->i;
	while (digit_at(p, d))
		d++;
	if (d > p->i && d < p->end && p->s[d] == '!') {
		if (take_number(p, &v->epoch) < 0)
			return -1;
		p->i++;
	}
	if (scan_release(p, v) < 0 || scan_pre(p, v) < 0 || scan_post(p, v) < 0 || scan_dev(p, v) < 0 ||
	    scan_local(p, v) < 0)
		return -1;
	return p->i == p->end ? 0 : -1;
}

int udfb_pyver_parse(struct udfb_pyver *out, const char *s, struct udfb_err *err)
{
	memset(out, 0, sizeof(*out));
	out->pre = out->post = out->dev = -1;
	size_t len = strlen(s);
	if (len > UDFB_PYVER_MAX_LEN)
		return udfb_err_set(err, UDFB_E_INVALID, "version longer than %d bytes", UDFB_PYVER_MAX_LEN);
	struct vscan p = { .s = s, .i = 0, .end = len };
	while (p.i < p.end && is_blank(s[p.i]))
		p.i++;
	while (p.end > p.i && is_blank(s[p.end - 1]))
		p.end--;
	if (scan_version(&p, out) < 0 || format_text(out) < 0)
		return udfb_err_set(err, UDFB_E_INVALID, "'%.64s' %s", s,
				    p.why ? p.why : "is not a valid PEP 440 version");
	return 0;
}

/* ---- ordering ---- */

static int cmp_ll(long long a, long long b)
{
	return (a > b) - (a < b);
}

/* Release segments with trailing zeros insignificant (1.0 == 1.0.0). */
static int cmp_release(const struct udfb_pyver *a, const struct udfb_pyver *b)
{
	size_t n = a->n_release > b->n_release ? a->n_release : b->n_release;
	for (size_t k = 0; k < n; k++) {
		int c = cmp_ll(k < a->n_release ? a->release[k] : 0, k < b->n_release ? b->release[k] : 0);
		if (c)
			return c;
	}
	return 0;
}

/* Epoch and release: what Python calls the base version. */
static int cmp_base(const struct udfb_pyver *a, const struct udfb_pyver *b)
{
	int c = cmp_ll(a->epoch, b->epoch);
	return c ? c : cmp_release(a, b);
}

/* Rank of the pre-release slot: a bare dev release (1.0.dev1) sorts before
 * every pre-release of its release, no pre-release sorts after them all. */
static int pre_rank(const struct udfb_pyver *v)
{
	if (!v->pre_kind)
		return v->post < 0 && v->dev >= 0 ? 0 : 4;
	return v->pre_kind == 'a' ? 1 : v->pre_kind == 'b' ? 2 : 3;
}

static int is_numeric(const char *s, size_t n)
{
	return strspn(s, "0123456789") >= n;
}

/* One local segment: numbers compare as numbers and above any alphanumeric
 * segment; alphanumeric ones compare as strings. */
static int cmp_local_segment(const char *a, size_t na, const char *b, size_t nb)
{
	int da = is_numeric(a, na), db = is_numeric(b, nb);
	if (da != db)
		return da - db;
	if (da) {
		/* Arbitrarily long: compare without leading zeros, by length first. */
		while (na > 1 && *a == '0')
			a++, na--;
		while (nb > 1 && *b == '0')
			b++, nb--;
		if (na != nb)
			return na < nb ? -1 : 1;
	}
	int c = memcmp(a, b, na < nb ? na : nb);
	if (c)
		return c < 0 ? -1 : 1;
	return cmp_ll((long long)na, (long long)nb);
}

/* No local label sorts first; then segment by segment, a prefix first. */
static int cmp_local(const char *a, const char *b)
{
	if (!*a || !*b)
		return (*a != '\0') - (*b != '\0');
	for (;;) {
		size_t na = strcspn(a, "."), nb = strcspn(b, ".");
		int c = cmp_local_segment(a, na, b, nb);
		if (c)
			return c;
		a += na;
		b += nb;
		if (!*a || !*b)
			return (*a != '\0') - (*b != '\0');
		a++;
		b++;
	}
}

static int cmp_public(const struct udfb_pyver *a, const struct udfb_pyver *b)
{
	int c = cmp_base(a, b);
	if (c)
		return c;
	if ((c = cmp_ll(pre_rank(a), pre_rank(b))))
		return c;
	if (a->pre_kind && (c = cmp_ll(a->pre, b->pre)))
		return c;
	if ((c = cmp_ll(a->post, b->post))) /* -1 (none) sorts first */
		return c;
	if ((a->dev < 0) != (b->dev < 0))
		return a->dev < 0 ? 1 : -1; /* no dev release sorts last */
	return cmp_ll(a->dev, b->dev);
}

int udfb_pyver_cmp(const struct udfb_pyver *a, const struct udfb_pyver *b)
{
	int c = cmp_public(a, b);
	return c ? c : cmp_local(a->local, b->local);
}

int udfb_pyver_is_prerelease(const struct udfb_pyver *v)
{
	return v->pre_kind != 0 || v->dev >= 0;
}

/* ---- specifiers ---- */

enum spec_op { OP_COMPATIBLE, OP_EQ, OP_NE, OP_LE, OP_GE, OP_LT, OP_GT, OP_ARBITRARY };

struct clause {
	enum spec_op op;
	int wildcard; /* ==V.* or !=V.* */
	struct udfb_pyver v; /* unused by === */
	char arbitrary[UDFB_PYVER_MAX_LEN + 1]; /* ===: the text as written */
};

struct udfb_pyspec {
	size_t n;
	struct clause c[UDFB_PYSPEC_MAX_CLAUSES];
};

static const struct {
	const char *text;
	enum spec_op op;
} spec_ops[] = {
	/* Longest first: "===" before "==". */
	{ "===", OP_ARBITRARY }, { "~=", OP_COMPATIBLE }, { "==", OP_EQ }, { "!=", OP_NE },
	{ "<=", OP_LE },	 { ">=", OP_GE },	  { "<", OP_LT },  { ">", OP_GT },
};

static int take_op(const char **s, enum spec_op *op)
{
	for (size_t k = 0; k < sizeof(spec_ops) / sizeof(spec_ops[0]); k++) {
		size_t n = strlen(spec_ops[k].text);
		if (strncmp(*s, spec_ops[k].text, n) == 0) {
			*s += n;
			*op = spec_ops[k].op;
			return 0;
		}
	}
	return -1;
}

static int bad_clause(struct udfb_err *err, const char *text, const char *why)
{
	return udfb_err_set(err, UDFB_E_INVALID, "'%.64s' is not a valid version specifier: %s", text, why);
}

/* ===: any text without blanks, ';' or ')' (packaging's rule), even "". */
static int parse_arbitrary(struct clause *c, const char *text, const char *v, struct udfb_err *err)
{
	if (v[strcspn(v, " \t\n\r\f\v;)")])
		return bad_clause(err, text, "'===' takes a single word");
	if (strlen(v) > UDFB_PYVER_MAX_LEN)
		return bad_clause(err, text, "version too long");
	strcpy(c->arbitrary, v);
	return 0;
}

/* The version of ==, !=, ~=, <=, >=, < and > with PEP 440's restrictions:
 * ".*" and local labels only with == and !=, ~= needs two release segments. */
static int parse_clause_version(struct clause *c, const char *text, const char *v, struct udfb_err *err)
{
	if (v[strcspn(v, " \t\n\r\f\v")])
		return bad_clause(err, text, "blank inside the version");
	char buf[UDFB_PYVER_MAX_LEN + 3];
	size_t n = strlen(v);
	if (n >= sizeof(buf))
		return bad_clause(err, text, "version too long");
	memcpy(buf, v, n + 1);
	if ((c->op == OP_EQ || c->op == OP_NE) && n >= 2 && strcmp(buf + n - 2, ".*") == 0) {
		c->wildcard = 1;
		buf[n - 2] = '\0';
	}
	struct udfb_err e = UDFB_ERR_INIT;
	int rc = udfb_pyver_parse(&c->v, buf, &e);
	udfb_err_clear(&e);
	if (rc < 0)
		return bad_clause(err, text, "not a PEP 440 version");
	const struct udfb_pyver *p = &c->v;
	if (c->wildcard && (p->pre_kind || p->post >= 0 || p->dev >= 0 || p->local[0]))
		return bad_clause(err, text, "'.*' follows only a release");
	if (p->local[0] && c->op != OP_EQ && c->op != OP_NE)
		return bad_clause(err, text, "a local version is only allowed with == and !=");
	if (c->op == OP_COMPATIBLE && p->n_release < 2)
		return bad_clause(err, text, "'~=' needs at least two release segments");
	return 0;
}

/* One clause, already stripped of surrounding blanks. */
static int parse_clause(struct clause *c, const char *text, struct udfb_err *err)
{
	const char *v = text;
	if (take_op(&v, &c->op) < 0)
		return bad_clause(err, text, "expected an operator");
	v += strspn(v, " \t\n\r\f\v");
	if (c->op == OP_ARBITRARY)
		return parse_arbitrary(c, text, v, err);
	return parse_clause_version(c, text, v, err);
}

static int add_clause(struct udfb_pyspec *s, const char *p, size_t n, struct udfb_err *err)
{
	while (n && is_blank(*p))
		p++, n--;
	while (n && is_blank(p[n - 1]))
		n--;
	if (n == 0)
		return 0; /* ">=1,,<2" and a trailing ',' are accepted, as by packaging */
	if (s->n == UDFB_PYSPEC_MAX_CLAUSES)
		return udfb_err_set(err, UDFB_E_INVALID, "version specifier with more than %d clauses",
				    UDFB_PYSPEC_MAX_CLAUSES);
	char text[SPEC_MAX_LEN + 1];
	memcpy(text, p, n);
	text[n] = '\0';
	return parse_clause(&s->c[s->n++], text, err);
}

int udfb_pyspec_parse(struct udfb_pyspec **out, const char *text, struct udfb_err *err)
{
	*out = NULL;
	if (strlen(text) > SPEC_MAX_LEN)
		return udfb_err_set(err, UDFB_E_INVALID, "version specifier longer than %d bytes", SPEC_MAX_LEN);
	struct udfb_pyspec *s = udfb_calloc(1, sizeof(*s));
	for (const char *p = text;;) {
		size_t n = strcspn(p, ",");
		if (add_clause(s, p, n, err) < 0) {
			free(s);
			return -1;
		}
		if (!p[n])
			break;
		p += n + 1;
	}
	*out = s;
	return 0;
}

void udfb_pyspec_free(struct udfb_pyspec *s)
{
	free(s);
}

/* v's first n release segments (zero-padded) equal spec's, in spec's epoch:
 * ==V.* and the prefix half of ~=. */
static int prefix_match(const struct udfb_pyver *v, const struct udfb_pyver *spec, size_t n)
{
	if (v->epoch != spec->epoch)
		return 0;
	for (size_t k = 0; k < n; k++)
		if ((k < v->n_release ? v->release[k] : 0) != spec->release[k])
			return 0;
	return 1;
}

/* ==V: without a local label in V, v's local label is ignored. */
static int holds_equal(const struct clause *c, const struct udfb_pyver *v)
{
	if (c->wildcard)
		return prefix_match(v, &c->v, c->v.n_release);
	return c->v.local[0] ? udfb_pyver_cmp(v, &c->v) == 0 : cmp_public(v, &c->v) == 0;
}

/* <V excludes pre-releases of V itself unless V is one. */
static int holds_less(const struct clause *c, const struct udfb_pyver *v)
{
	if (udfb_pyver_cmp(v, &c->v) >= 0)
		return 0;
	return udfb_pyver_is_prerelease(&c->v) || !udfb_pyver_is_prerelease(v) || cmp_base(v, &c->v) != 0;
}

/* >V excludes post-releases of V unless V is one, and local versions of V. */
static int holds_greater(const struct clause *c, const struct udfb_pyver *v)
{
	if (udfb_pyver_cmp(v, &c->v) <= 0)
		return 0;
	if (cmp_base(v, &c->v) != 0)
		return 1;
	if (c->v.post < 0 && v->post >= 0)
		return 0;
	return v->local[0] == '\0';
}

static int clause_holds(const struct clause *c, const struct udfb_pyver *v)
{
	switch (c->op) {
	case OP_COMPATIBLE: return cmp_public(v, &c->v) >= 0 && prefix_match(v, &c->v, c->v.n_release - 1);
	case OP_EQ: return holds_equal(c, v);
	case OP_NE: return !holds_equal(c, v);
	case OP_LE: return cmp_public(v, &c->v) <= 0;
	case OP_GE: return cmp_public(v, &c->v) >= 0;
	case OP_LT: return holds_less(c, v);
	case OP_GT: return holds_greater(c, v);
	case OP_ARBITRARY: return strcasecmp(v->text, c->arbitrary) == 0;
	}
	return 0;
}

int udfb_pyspec_contains(const struct udfb_pyspec *s, const struct udfb_pyver *v, int prereleases)
{
	if (!prereleases && udfb_pyver_is_prerelease(v))
		return 0;
	for (size_t k = 0; k < s->n; k++)
		if (!clause_holds(&s->c[k], v))
			return 0;
	return 1;
}

static int clause_wants_prereleases(const struct clause *c)
{
	switch (c->op) {
	case OP_COMPATIBLE:
	case OP_EQ:
	case OP_LE:
	case OP_GE: return udfb_pyver_is_prerelease(&c->v);
	case OP_ARBITRARY: {
		struct udfb_pyver v;
		struct udfb_err e = UDFB_ERR_INIT;
		int rc = udfb_pyver_parse(&v, c->arbitrary, &e);
		udfb_err_clear(&e);
		return rc == 0 && udfb_pyver_is_prerelease(&v);
	}
	default: return 0; /* as packaging: "!=2.0b1", "<2.0b1" do not ask for them */
	}
}

int udfb_pyspec_wants_prereleases(const struct udfb_pyspec *s)
{
	for (size_t k = 0; k < s->n; k++)
		if (clause_wants_prereleases(&s->c[k]))
			return 1;
	return 0;
}
