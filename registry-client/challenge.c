/* WWW-Authenticate parsing (RFC 9110 11.6.1): see auth.h.  The value comes
 * from whatever answers on the registry's address, so every byte is
 * untrusted: the lexer walks it once, copies only what it keeps, and a
 * malformed value is an error, never a guess. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "registry-client/auth.h"
#include "common/alloc.h"
#include "common/buf.h"

#define PARAM_MAX (8u << 10)

struct lex {
	const char *p;
};

static int is_tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

static void skip_ows(struct lex *l)
{
	while (*l->p == ' ' || *l->p == '\t')
		l->p++;
}

static char *read_token(struct lex *l)
{
	const char *s = l->p;
	while (is_tchar(*l->p))
		l->p++;
	return l->p > s ? udfb_strndup(s, (size_t)(l->p - s)) : NULL;
}

/* quoted-string with backslash escapes; NULL when unterminated or too long. */
static char *read_quoted(struct lex *l)
{
	struct udfb_buf b;
	udfb_buf_init(&b, PARAM_MAX);
	l->p++; /* the opening quote */
	while (*l->p && *l->p != '"') {
		if (*l->p == '\\' && l->p[1])
			l->p++;
		if (udfb_buf_add(&b, l->p, 1) < 0)
			break;
		l->p++;
	}
	if (*l->p != '"') {
		udfb_buf_free(&b);
		return NULL;
	}
	l->p++;
	return udfb_buf_steal(&b, NULL);
}

/* An unquoted value: a token, or token68 ('/' and '=' allowed) as some
 * servers send.  May be empty. */
static char *read_bare(struct lex *l)
{
	const char *s = l->p;
	while (is_tchar(*l->p) || *l->p == '/' || *l->p == '=')
		l->p++;
	return udfb_strndup(s, (size_t)(l->p - s));
}

static void set_param(struct udfb_auth_challenge *c, const char *name, char *value)
{
	char **slot = NULL;
	if (strcasecmp(name, "realm") == 0)
		slot = &c->realm;
	else if (strcasecmp(name, "service") == 0)
		slot = &c->service;
	else if (strcasecmp(name, "scope") == 0)
		slot = &c->scope;
	else if (strcasecmp(name, "error") == 0)
		slot = &c->error;
	/* A parameter named twice keeps its first value (RFC 9110 forbids it). */
	if (slot && !*slot)
		*slot = value;
	else
		free(value);
}

static enum udfb_auth_scheme scheme_of(const char *name)
{
	if (strcasecmp(name, "Bearer") == 0)
		return UDFB_AUTH_BEARER;
	if (strcasecmp(name, "Basic") == 0)
		return UDFB_AUTH_BASIC;
	return UDFB_AUTH_NONE;
}

/* Keep cur as the answer if it beats best: Bearer (with a realm) over Basic. */
static void settle(struct udfb_auth_challenge *best, struct udfb_auth_challenge *cur)
{
	int usable = cur->scheme == UDFB_AUTH_BASIC || (cur->scheme == UDFB_AUTH_BEARER && cur->realm && cur->realm[0]);
	if (usable && cur->scheme > best->scheme) {
		udfb_auth_challenge_clear(best);
		*best = *cur;
	} else {
		udfb_auth_challenge_clear(cur);
	}
	memset(cur, 0, sizeof(*cur));
}

static int param(struct lex *l, struct udfb_auth_challenge *cur, char *name)
{
	l->p++; /* '=' */
	skip_ows(l);
	char *value = *l->p == '"' ? read_quoted(l) : read_bare(l);
	if (!value)
		return -1;
	set_param(cur, name, value);
	return 0;
}

static int parse(struct lex *l, struct udfb_auth_challenge *best, struct udfb_auth_challenge *cur, int *started)
{
	for (;;) {
		while (*l->p == ' ' || *l->p == '\t' || *l->p == ',')
			l->p++;
		if (!*l->p)
			return 0;
		char *name = read_token(l);
		if (!name)
			return -1;
		skip_ows(l);
		if (*l->p == '=' && *started) {
			int rc = param(l, cur, name);
			free(name);
			if (rc < 0)
				return -1;
		} else if (*l->p == '=') {
			free(name);
			return -1; /* a parameter before any scheme */
		} else {
			if (*started)
				settle(best, cur);
			cur->scheme = scheme_of(name);
			*started = 1;
			free(name);
		}
		skip_ows(l);
		if (*l->p && *l->p != ',' && !is_tchar(*l->p))
			return -1;
	}
}

int udfb_auth_parse_challenge(struct udfb_auth_challenge *out, const char *value, struct udfb_err *err)
{
	memset(out, 0, sizeof(*out));
	struct udfb_auth_challenge cur = { 0 };
	struct lex l = { value ? value : "" };
	int started = 0;
	if (parse(&l, out, &cur, &started) < 0) {
		udfb_auth_challenge_clear(&cur);
		udfb_auth_challenge_clear(out);
		return udfb_err_set(err, UDFB_E_INVALID, "malformed WWW-Authenticate header");
	}
	if (started)
		settle(out, &cur);
	if (out->scheme == UDFB_AUTH_NONE)
		return udfb_err_set(err, UDFB_E_UNSUPPORTED,
				    "the registry asks for an authentication scheme other than Basic or Bearer");
	return 0;
}

void udfb_auth_challenge_clear(struct udfb_auth_challenge *c)
{
	free(c->realm);
	free(c->service);
	free(c->scope);
	free(c->error);
	memset(c, 0, sizeof(*c));
}
