/* PEP 508 environment markers: see marker.h.  A recursive-descent parser
 * that evaluates as it parses: no tree to build, and a marker is short, so
 * it is parsed once per value of `extra`.  Every comparison is evaluated,
 * none short-circuited, so an undefined one is an error wherever it is (as
 * in Python's packaging). */
#include "python/marker.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/alloc.h"
#include "common/cleanup.h"
#include "python/pep508.h"
#include "python/pyver.h"

#define MARKER_MAX_LEN 4096
#define MARKER_MAX_DEPTH 32

enum mvar {
	V_PYTHON_VERSION,
	V_PYTHON_FULL_VERSION,
	V_OS_NAME,
	V_SYS_PLATFORM,
	V_PLATFORM_RELEASE,
	V_PLATFORM_SYSTEM,
	V_PLATFORM_VERSION,
	V_PLATFORM_MACHINE,
	V_PLATFORM_PYTHON_IMPLEMENTATION,
	V_IMPLEMENTATION_NAME,
	V_IMPLEMENTATION_VERSION,
	V_EXTRA,
	V_NONE, /* a quoted string */
};

/* PEP 508's names, and the legacy spellings packaging still accepts. */
static const struct {
	const char *name;
	enum mvar var;
} var_names[] = {
	{ "python_version", V_PYTHON_VERSION },
	{ "python_full_version", V_PYTHON_FULL_VERSION },
	{ "os_name", V_OS_NAME },
	{ "os.name", V_OS_NAME },
	{ "sys_platform", V_SYS_PLATFORM },
	{ "sys.platform", V_SYS_PLATFORM },
	{ "platform_release", V_PLATFORM_RELEASE },
	{ "platform_system", V_PLATFORM_SYSTEM },
	{ "platform_version", V_PLATFORM_VERSION },
	{ "platform.version", V_PLATFORM_VERSION },
	{ "platform_machine", V_PLATFORM_MACHINE },
	{ "platform.machine", V_PLATFORM_MACHINE },
	{ "platform_python_implementation", V_PLATFORM_PYTHON_IMPLEMENTATION },
	{ "platform.python_implementation", V_PLATFORM_PYTHON_IMPLEMENTATION },
	{ "python_implementation", V_PLATFORM_PYTHON_IMPLEMENTATION },
	{ "implementation_name", V_IMPLEMENTATION_NAME },
	{ "implementation_version", V_IMPLEMENTATION_VERSION },
	{ "extra", V_EXTRA },
};

enum mop { M_ARBITRARY, M_COMPATIBLE, M_EQ, M_NE, M_LE, M_GE, M_LT, M_GT, M_IN, M_NOT_IN };

/* Longest first; the text is what a version specifier starts with. */
static const char *const op_texts[] = {
	[M_ARBITRARY] = "===", [M_COMPATIBLE] = "~=", [M_EQ] = "==", [M_NE] = "!=",
	[M_LE] = "<=",	       [M_GE] = ">=",	      [M_LT] = "<",  [M_GT] = ">",
};

struct mparse {
	const char *s;
	size_t i;
	const struct udfb_pyenv *env;
	const char *extra;
	struct udfb_err *err;
};

/* One side of a comparison: a variable, or a quoted string (span of s). */
struct mvalue {
	enum mvar var;
	size_t start, len;
};

static int fail(struct mparse *p, const char *what)
{
	if (p->err->msg)
		return -1;
	return udfb_err_set(p->err, UDFB_E_INVALID, "%s at offset %zu of marker", what, p->i);
}

static void skip_ws(struct mparse *p)
{
	while (p->s[p->i] == ' ' || p->s[p->i] == '\t')
		p->i++;
}

static int is_word_char(char c)
{
	return isalnum((unsigned char)c) || c == '_';
}

/* kw at p->i, not followed by a letter, digit or '_'; consumed when there. */
static int take_keyword(struct mparse *p, const char *kw)
{
	size_t n = strlen(kw);
	if (strncmp(p->s + p->i, kw, n) != 0 || is_word_char(p->s[p->i + n]))
		return 0;
	p->i += n;
	return 1;
}

static int parse_value(struct mparse *p, struct mvalue *v)
{
	char q = p->s[p->i];
	if (q == '"' || q == '\'') {
		v->var = V_NONE;
		v->start = ++p->i;
		while (p->s[p->i] && p->s[p->i] != q) {
			/* Not in PEP 508's string characters, and Python would
			 * read it as an escape: refuse rather than guess. */
			if (p->s[p->i] == '\\')
				return fail(p, "backslash in a marker string");
			p->i++;
		}
		if (!p->s[p->i])
			return fail(p, "unterminated string");
		v->len = p->i++ - v->start;
		return 0;
	}
	for (size_t k = 0; k < sizeof(var_names) / sizeof(var_names[0]); k++) {
		if (take_keyword(p, var_names[k].name)) {
			v->var = var_names[k].var;
			return 0;
		}
	}
	return fail(p, "expected a marker variable or a quoted string");
}

static int parse_op(struct mparse *p, enum mop *op)
{
	for (int k = M_ARBITRARY; k <= M_GT; k++) {
		size_t n = strlen(op_texts[k]);
		if (strncmp(p->s + p->i, op_texts[k], n) == 0) {
			p->i += n;
			*op = (enum mop)k;
			return 0;
		}
	}
	if (take_keyword(p, "in")) {
		*op = M_IN;
		return 0;
	}
	if (take_keyword(p, "not")) {
		size_t at = p->i;
		skip_ws(p);
		if (p->i > at && take_keyword(p, "in")) {
			*op = M_NOT_IN;
			return 0;
		}
	}
	return fail(p, "expected a marker operator");
}

static const char *var_value(const struct mparse *p, enum mvar var)
{
	const struct udfb_pyenv *e = p->env;
	switch (var) {
	case V_PYTHON_VERSION: return e->python_version;
	case V_PYTHON_FULL_VERSION:
	case V_IMPLEMENTATION_VERSION: return e->python_full_version;
	case V_OS_NAME: return "posix";
	case V_SYS_PLATFORM: return "linux";
	case V_PLATFORM_RELEASE: return e->platform_release;
	case V_PLATFORM_SYSTEM: return "Linux";
	case V_PLATFORM_VERSION: return e->platform_version;
	case V_PLATFORM_MACHINE: return e->platform_machine;
	case V_PLATFORM_PYTHON_IMPLEMENTATION: return "CPython";
	case V_IMPLEMENTATION_NAME: return "cpython";
	case V_EXTRA: return p->extra;
	case V_NONE: break;
	}
	return "";
}

/* The value as a string of its own; extra names PEP 503-normalised (PEP
 * 685), both sides, when the comparison is about `extra`. */
static char *value_text(const struct mparse *p, const struct mvalue *v, int is_extra)
{
	char *s = v->var == V_NONE ? udfb_strndup(p->s + v->start, v->len) : udfb_strdup(var_value(p, v->var));
	if (!is_extra)
		return s;
	char *norm = NULL;
	udfb_pep503_normalize(&norm, s);
	free(s);
	return norm;
}

/* PEP 440 comparison when "op r" is one valid specifier and l a version:
 * *out set and 1 returned; 0 when it is not a version comparison. */
static int compare_versions(const char *l, enum mop op, const char *r, int *out)
{
	if (op == M_IN || op == M_NOT_IN || strchr(r, ','))
		return 0; /* a set of clauses is not one specifier */
	char text[MARKER_MAX_LEN + 4];
	snprintf(text, sizeof(text), "%s%s", op_texts[op], r);
	struct udfb_pyspec *spec = NULL;
	struct udfb_pyver v;
	struct udfb_err e = UDFB_ERR_INIT;
	int ok = udfb_pyspec_parse(&spec, text, &e) == 0 && udfb_pyver_parse(&v, l, &e) == 0;
	if (ok)
		*out = udfb_pyspec_contains(spec, &v, 1);
	udfb_pyspec_free(spec);
	udfb_err_clear(&e);
	return ok;
}

static int compare_strings(struct mparse *p, const char *l, enum mop op, const char *r, int *out)
{
	int c = strcmp(l, r);
	switch (op) {
	case M_EQ: *out = c == 0; return 0;
	case M_NE: *out = c != 0; return 0;
	case M_LE: *out = c <= 0; return 0;
	case M_GE: *out = c >= 0; return 0;
	case M_LT: *out = c < 0; return 0;
	case M_GT: *out = c > 0; return 0;
	case M_IN: *out = strstr(r, l) != NULL; return 0;
	case M_NOT_IN: *out = strstr(r, l) == NULL; return 0;
	case M_ARBITRARY:
		/* Arbitrary equality is string equality anyway (packaging
		 * would fail on a non-version here; nothing is gained by it). */
		*out = strcasecmp(l, r) == 0;
		return 0;
	case M_COMPATIBLE: break;
	}
	return fail(p, "'~=' compares versions only");
}

/* value op value */
static int parse_comparison(struct mparse *p, int *out)
{
	struct mvalue l, r;
	enum mop op = M_EQ;
	if (parse_value(p, &l) < 0)
		return -1;
	skip_ws(p);
	if (parse_op(p, &op) < 0)
		return -1;
	skip_ws(p);
	if (parse_value(p, &r) < 0)
		return -1;
	if (l.var == V_NONE && r.var == V_NONE)
		return fail(p, "a marker comparison needs a variable");
	/* As packaging: the variable on the left decides, else the right one. */
	int is_extra = (l.var != V_NONE ? l.var : r.var) == V_EXTRA;
	cleanup_free char *ls = value_text(p, &l, is_extra);
	cleanup_free char *rs = value_text(p, &r, is_extra);
	if (compare_versions(ls, op, rs, out))
		return 0;
	return compare_strings(p, ls, op, rs, out);
}

static int parse_or(struct mparse *p, int depth, int *out);

/* '(' or-expression ')' | comparison, with blanks around. */
static int parse_atom(struct mparse *p, int depth, int *out)
{
	skip_ws(p);
	if (p->s[p->i] == '(') {
		if (depth >= MARKER_MAX_DEPTH)
			return fail(p, "marker nested too deeply");
		p->i++;
		if (parse_or(p, depth + 1, out) < 0)
			return -1;
		if (p->s[p->i] != ')')
			return fail(p, "expected ')'");
		p->i++;
	} else if (parse_comparison(p, out) < 0) {
		return -1;
	}
	skip_ws(p);
	return 0;
}

static int parse_and(struct mparse *p, int depth, int *out)
{
	if (parse_atom(p, depth, out) < 0)
		return -1;
	while (take_keyword(p, "and")) {
		int b;
		if (parse_atom(p, depth, &b) < 0)
			return -1;
		*out = *out && b;
	}
	return 0;
}

static int parse_or(struct mparse *p, int depth, int *out)
{
	if (parse_and(p, depth, out) < 0)
		return -1;
	while (take_keyword(p, "or")) {
		int b;
		if (parse_and(p, depth, &b) < 0)
			return -1;
		*out = *out || b;
	}
	return 0;
}

static int eval_once(const char *marker, const struct udfb_pyenv *env, const char *extra, struct udfb_err *err)
{
	struct mparse p = { .s = marker, .env = env, .extra = extra, .err = err };
	int v;
	if (parse_or(&p, 0, &v) < 0)
		return -1;
	if (p.s[p.i] != '\0')
		return fail(&p, "unexpected text");
	return v;
}

static int check_chars(const char *m, struct udfb_err *err)
{
	size_t n = strlen(m);
	if (n > MARKER_MAX_LEN)
		return udfb_err_set(err, UDFB_E_INVALID, "marker longer than %d bytes", MARKER_MAX_LEN);
	for (size_t k = 0; k < n; k++)
		if (((unsigned char)m[k] < 0x20 && m[k] != '\t') || m[k] == 0x7f)
			return udfb_err_set(err, UDFB_E_INVALID, "marker holds a control byte at offset %zu", k);
	return 0;
}

int udfb_marker_eval(const char *marker, const struct udfb_pyenv *env, char *const *extras, size_t n_extras,
		     struct udfb_err *err)
{
	if (check_chars(marker, err) < 0)
		return -1;
	int v = eval_once(marker, env, "", err);
	for (size_t k = 0; v == 0 && k < n_extras; k++)
		v = eval_once(marker, env, extras[k], err);
	return v;
}

/* Copy into a fixed field, truncating: the fields are far longer than any
 * real value. */
static void set_field(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src ? src : "");
}

void udfb_pyenv_init(struct udfb_pyenv *e, const char *python_full, const char *machine)
{
	memset(e, 0, sizeof(*e));
	const char *full = python_full ? python_full : "";
	/* python_version is major.minor: up to the second dot. */
	const char *dot = strchr(full, '.');
	const char *dot2 = dot ? strchr(dot + 1, '.') : NULL;
	size_t n = dot2 ? (size_t)(dot2 - full) : strlen(full);
	if (n >= sizeof(e->python_version))
		n = sizeof(e->python_version) - 1;
	memcpy(e->python_version, full, n);
	e->python_version[n] = '\0';
	snprintf(e->python_full_version, sizeof(e->python_full_version), "%.24s%s", full, dot && !dot2 ? ".0" : "");
	set_field(e->platform_machine, sizeof(e->platform_machine), machine);
}
