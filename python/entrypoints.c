/* entry_points.txt (read as importlib.metadata reads it) and the scripts
 * pip's ScriptMaker (distlib) writes for console_scripts and gui_scripts. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/alloc.h"
#include "common/cleanup.h"
#include "python/wheel.h"
#include "python/wheel_internal.h"

#define EP_MAX_NAME 255

enum section { SEC_OTHER, SEC_CONSOLE, SEC_GUI };

static int ident_len(const char *s)
{
	if (!(isalpha((unsigned char)s[0]) || s[0] == '_'))
		return 0;
	int n = 1;
	while (isalnum((unsigned char)s[n]) || s[n] == '_')
		n++;
	return n;
}

/* ident ("." ident)*: its length, 0 when s does not start with one. */
static size_t dotted_len(const char *s)
{
	size_t n = 0;
	for (;;) {
		int k = ident_len(s + n);
		if (k == 0)
			return 0;
		n += (size_t)k;
		if (s[n] != '.')
			return n;
		n++;
	}
}

/* "module:attr.sub [extra, ...]" with nothing else around it. */
static int parse_value(struct udfb_entry_point *ep, const char *v)
{
	size_t m = dotted_len(v);
	if (m == 0 || v[m] != ':')
		return -1;
	size_t a = dotted_len(v + m + 1);
	if (a == 0)
		return -1;
	const char *rest = v + m + 1 + a;
	while (*rest == ' ' || *rest == '\t')
		rest++;
	if (*rest == '[') {
		size_t e = strspn(rest + 1, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.,= \t");
		if (rest[1 + e] != ']' || rest[2 + e] != '\0')
			return -1;
	} else if (*rest) {
		return -1;
	}
	ep->module = udfb_strndup(v, m);
	ep->attr = udfb_strndup(v + m + 1, a);
	return 0;
}

/* Script names become file names in bin/: a strict set, no '/'. */
static int name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > EP_MAX_NAME || !(isalnum((unsigned char)s[0]) || s[0] == '_'))
		return 0;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.+") == n;
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t' || *s == '\r')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

static int bad(const char *wheel, size_t line, const char *why, struct udfb_err *err)
{
	return udfb_err_set(err, UDFB_E_INVALID, "wheel '%s': entry_points.txt line %zu: %s", wheel, line, why);
}

static int add_entry(struct udfb_entry_points *out, char *line, const char *wheel, size_t no, struct udfb_err *err)
{
	char *eq = strchr(line, '=');
	if (!eq)
		return bad(wheel, no, "no '='", err);
	*eq = '\0';
	const char *name = trim(line), *value = trim(eq + 1);
	if (strchr(name, '/') || !name_ok(name))
		return bad(wheel, no, "invalid script name", err);
	if (out->n == WHEEL_MAX_SCRIPTS)
		return bad(wheel, no, "too many scripts", err);
	if ((out->n & (out->n - 1)) == 0)
		out->v = udfb_realloc(out->v, (out->n ? 2 * out->n : 1) * sizeof(*out->v));
	struct udfb_entry_point *ep = &out->v[out->n];
	memset(ep, 0, sizeof(*ep));
	if (parse_value(ep, value) < 0)
		return bad(wheel, no, "not 'module:object' (with optional [extras])", err);
	ep->name = udfb_strdup(name);
	out->n++;
	if (!udfb_strmap_put(&out->names, ep->name, out->n - 1))
		return bad(wheel, no, "a script name given twice", err);
	return 0;
}

static int parse_line(struct udfb_entry_points *out, char *line, enum section *sec, const char *wheel, size_t no,
		      struct udfb_err *err)
{
	line = trim(line);
	if (!line[0] || line[0] == '#')
		return 0;
	size_t n = strlen(line);
	if (line[0] == '[' && line[n - 1] == ']') {
		/* Python's value.strip('[]'). */
		while (*line == '[' || *line == ']')
			line++, n--;
		while (n && (line[n - 1] == '[' || line[n - 1] == ']'))
			n--;
		*sec = n == 15 && !strncmp(line, "console_scripts", n) ? SEC_CONSOLE
		       : n == 11 && !strncmp(line, "gui_scripts", n)   ? SEC_GUI
								       : SEC_OTHER;
		return 0;
	}
	return *sec == SEC_OTHER ? 0 : add_entry(out, line, wheel, no, err);
}

int udfb_entry_points_parse(struct udfb_entry_points *out, const char *text, size_t len, const char *wheel,
			    struct udfb_err *err)
{
	memset(out, 0, sizeof(*out));
	udfb_strmap_init(&out->names);
	if (memchr(text, '\0', len))
		return bad(wheel, 0, "NUL byte", err);
	cleanup_free char *copy = udfb_strndup(text, len);
	enum section sec = SEC_OTHER;
	size_t no = 0;
	int rc = 0;
	for (char *p = copy, *nl; rc == 0 && p; p = nl ? nl + 1 : NULL) {
		nl = strchr(p, '\n');
		if (nl)
			*nl = '\0';
		rc = parse_line(out, p, &sec, wheel, ++no, err);
	}
	if (rc < 0)
		udfb_entry_points_free(out);
	return rc;
}

void udfb_entry_points_free(struct udfb_entry_points *ep)
{
	for (size_t k = 0; k < ep->n; k++) {
		free(ep->v[k].name);
		free(ep->v[k].module);
		free(ep->v[k].attr);
	}
	free(ep->v);
	udfb_strmap_free(&ep->names);
	memset(ep, 0, sizeof(*ep));
}

int udfb_entry_points_wraps(const struct udfb_entry_points *ep, const char *base)
{
	size_t n = strlen(base);
	/* pip's is_entrypoint_wrapper: EP, EP.exe, EP-script.py, EP.pya. */
	if (n > 4 && (strcasecmp(base + n - 4, ".exe") == 0 || strcasecmp(base + n - 4, ".pya") == 0))
		n -= 4;
	else if (n > 10 && strcasecmp(base + n - 10, "-script.py") == 0)
		n -= 10;
	return udfb_strmap_getn(&ep->names, base, n, NULL);
}

int udfb_entry_point_script(struct udfb_buf *b, const struct udfb_entry_point *ep, const char *python)
{
	size_t first = strcspn(ep->attr, ".");
	return udfb_buf_printf(b,
			       "#!%s\n"
			       "# -*- coding: utf-8 -*-\n"
			       "import re\n"
			       "import sys\n"
			       "from %s import %.*s\n"
			       "if __name__ == '__main__':\n"
			       "    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n"
			       "    sys.exit(%s())\n",
			       python, ep->module, (int)first, ep->attr, ep->attr);
}
