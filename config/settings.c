/* The settings engine: see settings.h.  It knows types, sources and
 * presentation; what a setting means lives in its row and setter. */
#include "config/settings.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/cleanup.h"

const struct udfb_setting *udfb_settings_find(const struct udfb_settings *s, const char *name)
{
	for (size_t k = 0; k < s->n; k++)
		if (strcmp(s->rows[k].name, name) == 0)
			return &s->rows[k];
	return NULL;
}

const struct udfb_setting *udfb_settings_find_key(const struct udfb_settings *s, const char *key)
{
	for (size_t k = 0; k < s->n; k++)
		if (s->rows[k].file && strcmp(s->rows[k].file, key) == 0)
			return &s->rows[k];
	return NULL;
}

static int number(const struct udfb_setting *r, const char *v, long long *out, struct udfb_err *err)
{
	char *end = NULL;
	long long n = strtoll(v, &end, 10);
	if (!*v || *end || n < r->lo || n > r->hi)
		return udfb_err_set(err, UDFB_E_INVALID, "'%s' is not a whole number from %lld to %lld", v, r->lo,
				    r->hi);
	*out = n;
	return 0;
}

int udfb_setting_set(const struct udfb_setting *r, void *obj, enum udfb_set_source src, const char *v,
		     struct udfb_err *err)
{
	char *slot = (char *)obj + r->off;
	long long n = 0;
	switch (r->type) {
	case UDFB_SET_STR:
		free(*(char **)slot);
		*(char **)slot = udfb_strdup(v);
		return 0;
	case UDFB_SET_SWITCH: *(int *)slot = 1; return 0;
	case UDFB_SET_FN: return r->set(obj, r, src, v, err);
	case UDFB_SET_JSON: return udfb_err_set(err, UDFB_E_INVALID, "set in the file only");
	default: break;
	}
	if (number(r, v, &n, err) < 0)
		return -1;
	if (r->type == UDFB_SET_INT)
		*(int *)slot = (int)n;
	else if (r->type == UDFB_SET_LONG)
		*(long *)slot = (long)n;
	else
		*(long long *)slot = n;
	return 0;
}

/* A list in the file: its items one by one, each named by its index. */
static int set_items(const struct udfb_setting *r, void *obj, json_t *v, const char *key, struct udfb_err *err)
{
	size_t k;
	json_t *item;
	json_array_foreach(v, k, item) {
		if (!json_is_string(item))
			return udfb_err_set(err, UDFB_E_INVALID, "%s[%zu]: must be a string", key, k);
		if (udfb_setting_set(r, obj, UDFB_SRC_FILE, json_string_value(item), err) < 0)
			return udfb_err_wrap(err, "%s[%zu]", key, k);
	}
	return 0;
}

static int set_json_value(const struct udfb_setting *r, void *obj, json_t *v, struct udfb_err *err)
{
	char num[32];
	if (r->set_json && (r->type == UDFB_SET_JSON || json_is_object(v)))
		return r->set_json(obj, v, err);
	if (json_is_string(v))
		return udfb_setting_set(r, obj, UDFB_SRC_FILE, json_string_value(v), err);
	if (json_is_integer(v) && r->type != UDFB_SET_SWITCH) {
		snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
		return udfb_setting_set(r, obj, UDFB_SRC_FILE, num, err);
	}
	if (json_is_boolean(v) && r->type == UDFB_SET_SWITCH) {
		*(int *)((char *)obj + r->off) = json_is_true(v);
		return 0;
	}
	return udfb_err_set(err, UDFB_E_INVALID, "unexpected value type");
}

int udfb_setting_set_json(const struct udfb_setting *r, void *obj, json_t *v, const char *key, struct udfb_err *err)
{
	if (json_is_array(v) && (r->flags & UDFB_SET_REPEAT) && !(r->set_json && r->type == UDFB_SET_JSON))
		return set_items(r, obj, v, key, err);
	return set_json_value(r, obj, v, err) < 0 ? udfb_err_wrap(err, "%s", key) : 0;
}

/* A list variable sets its row once per item. */
static int env_one(const struct udfb_setting *r, void *obj, const char *v, struct udfb_err *err)
{
	if (!r->split)
		return udfb_setting_set(r, obj, UDFB_SRC_ENV, v, err);
	char *copy = udfb_strdup(v), *save = NULL;
	int rc = 0;
	for (char *item = strtok_r(copy, r->split, &save); item && rc == 0; item = strtok_r(NULL, r->split, &save))
		rc = udfb_setting_set(r, obj, UDFB_SRC_ENV, item, err);
	free(copy);
	return rc;
}

int udfb_settings_load_env(const struct udfb_settings *s, void *obj, struct udfb_err *err)
{
	for (size_t k = 0; k < s->n; k++) {
		const struct udfb_setting *r = &s->rows[k];
		const char *v = r->env ? getenv(r->env) : NULL;
		if (v && *v && env_one(r, obj, v, err) < 0)
			return udfb_err_wrap(err, "%s", r->env);
	}
	return 0;
}

int udfb_settings_load_object(const struct udfb_settings *s, void *obj, json_t *o, const char *where,
			      struct udfb_err *err)
{
	const char *key;
	json_t *v;
	json_object_foreach(o, key, v) {
		const struct udfb_setting *r = udfb_settings_find_key(s, key);
		if (!r)
			return udfb_err_set(err, UDFB_E_INVALID, "%s.%s: unknown setting", where, key);
		cleanup_free char *path = udfb_asprintf("%s.%s", where, key);
		if (udfb_setting_set_json(r, obj, v, path, err) < 0)
			return -1;
	}
	return 0;
}

int udfb_setting_literal_default(const struct udfb_setting *r, char *buf, size_t n)
{
	const char *end = r->dflt && r->dflt[0] == '`' ? strchr(r->dflt + 1, '`') : NULL;
	if (!end || (end[1] && strncmp(end + 1, " (", 2) != 0) || memchr(r->dflt, '<', (size_t)(end - r->dflt)))
		return 0;
	int len = (int)(end - r->dflt - 1);
	snprintf(buf, n, "%.*s", len, r->dflt + 1);
	if (strcmp(buf, "\"\"") == 0)
		buf[0] = '\0';
	return 1;
}

void udfb_settings_defaults(const struct udfb_settings *s, void *obj)
{
	char v[256];
	struct udfb_err err = UDFB_ERR_INIT;
	for (size_t k = 0; k < s->n; k++)
		if (udfb_setting_literal_default(&s->rows[k], v, sizeof(v)) &&
		    udfb_setting_set(&s->rows[k], obj, UDFB_SRC_DEFAULT, v, &err) < 0)
			abort(); /* a table whose own default does not parse: caught by test_settings */
}

void udfb_settings_free(const struct udfb_settings *s, void *obj)
{
	for (size_t k = 0; k < s->n; k++)
		if (s->rows[k].type == UDFB_SET_STR) {
			char **slot = (char **)((char *)obj + s->rows[k].off);
			free(*slot);
			*slot = NULL;
		}
}

/* ---- flags ---- */

static int listed(const char *const *only, const char *name)
{
	if (!only)
		return 1;
	for (; *only; only++)
		if (strcmp(*only, name) == 0)
			return 1;
	return 0;
}

const char *udfb_settings_prescan(int argc, char **argv, const char *name)
{
	const char *found = NULL;
	size_t n = strlen(name);
	for (int k = 1; k < argc; k++) {
		const char *a = argv[k];
		if (strcmp(a, "--") == 0)
			break;
		if (strncmp(a, "--", 2) != 0 || strncmp(a + 2, name, n) != 0)
			continue;
		if (a[2 + n] == '=')
			found = a + 3 + n;
		else if (!a[2 + n] && k + 1 < argc)
			found = argv[++k];
	}
	return found;
}

struct flag {
	const struct udfb_setting *row;
	void *obj;
};

/* The getopt table of the listed rows; index k of opts is flags[k]. */
static size_t build_opts(const struct udfb_settings *const *secs, void *const *objs, size_t n_secs,
			 const char *const *only, struct option *opts, struct flag *flags, char *shorts, size_t max)
{
	size_t n = 0, ns = 0;
	for (size_t s = 0; s < n_secs; s++)
		for (size_t k = 0; k < secs[s]->n && n + 2 < max; k++) {
			const struct udfb_setting *r = &secs[s]->rows[k];
			if ((r->flags & UDFB_SET_NOFLAG) || r->type == UDFB_SET_JSON || !listed(only, r->name))
				continue;
			opts[n] =
				(struct option){ r->name, r->type == UDFB_SET_SWITCH ? no_argument : required_argument,
						 NULL, 0 };
			flags[n++] = (struct flag){ r, objs[s] };
			if (r->short_name && ns + 3 < 16) {
				shorts[ns++] = r->short_name;
				if (r->type != UDFB_SET_SWITCH)
					shorts[ns++] = ':';
			}
		}
	shorts[ns] = '\0';
	opts[n] = (struct option){ "help", no_argument, NULL, 'h' };
	opts[n + 1] = (struct option){ NULL, 0, NULL, 0 };
	return n;
}

int udfb_settings_parse_args(const struct udfb_settings *const *secs, void *const *objs, size_t n_secs,
			     const char *const *only, const char *cmd, int argc, char **argv, int *first,
			     struct udfb_err *err)
{
	struct option opts[128];
	struct flag flags[128];
	char shorts[16];
	size_t n = build_opts(secs, objs, n_secs, only, opts, flags, shorts, 128);
	optind = 1;
	opterr = 0;
	int ch, idx = -1;
	while ((ch = getopt_long(argc, argv, shorts, opts, &idx)) != -1) {
		if (ch == 'h' && idx >= 0 && (size_t)idx == n)
			return 1;
		if (ch != 0) /* a short flag: getopt does not set idx for it */
			for (idx = 0; (size_t)idx < n && flags[idx].row->short_name != ch; idx++)
				;
		if (ch == '?' || idx < 0 || (size_t)idx >= n)
			return udfb_err_set(err, UDFB_E_INVALID, "%s: unknown option '%s'", cmd, argv[optind - 1]);
		const struct udfb_setting *r = flags[idx].row;
		if (udfb_setting_set(r, flags[idx].obj, UDFB_SRC_FLAG, optarg ? optarg : "", err) < 0)
			return udfb_err_wrap(err, "--%s", r->name);
		idx = -1;
	}
	*first = optind;
	return 0;
}

/* ---- presentation ---- */

/* Text without markdown's backticks. */
static void plain(FILE *f, const char *s)
{
	for (; *s; s++)
		if (*s != '`')
			fputc(*s, f);
}

void udfb_setting_usage(FILE *f, const struct udfb_setting *r)
{
	char left[96];
	int n = snprintf(left, sizeof(left), "--%s%s%s", r->name, r->arg ? " " : "", r->arg ? r->arg : "");
	if (r->short_name)
		n = snprintf(left, sizeof(left), "-%c, --%s%s%s", r->short_name, r->name, r->arg ? " " : "",
			     r->arg ? r->arg : "");
	fprintf(f, "  %-26s", left);
	if (n > 26)
		fprintf(f, "\n  %-26s", "");
	plain(f, r->help);
	if (r->flags & UDFB_SET_REPEAT)
		fputs(", repeatable", f);
	if (r->dflt) {
		fputs(" (", f);
		plain(f, r->dflt);
		fputc(')', f);
	}
	if (r->env) {
		fprintf(f, "; %s", r->env);
	}
	fputc('\n', f);
}

void udfb_settings_usage(FILE *f, const struct udfb_settings *s, const char *const *only)
{
	for (size_t k = 0; k < s->n; k++) {
		const struct udfb_setting *r = &s->rows[k];
		if (!(r->flags & UDFB_SET_NOFLAG) && r->type != UDFB_SET_JSON && listed(only, r->name))
			udfb_setting_usage(f, r);
	}
}

void udfb_settings_markdown(FILE *f, const struct udfb_settings *s)
{
	if (s->options)
		fputs("| option | default | meaning |\n|---|---|---|\n", f);
	else
		fputs("| flag | file key | environment | default | meaning |\n|---|---|---|---|---|\n", f);
	for (size_t k = 0; k < s->n; k++) {
		const struct udfb_setting *r = &s->rows[k];
		const char *meaning = r->doc ? r->doc : r->help;
		const char *dflt = r->dflt ? r->dflt : "none";
		if (s->options) {
			fprintf(f, "| `%s` | %s | %s |\n", r->file, dflt, meaning);
			continue;
		}
		fputs("| ", f);
		if (!(r->flags & UDFB_SET_NOFLAG) && r->type != UDFB_SET_JSON)
			fprintf(f, "`--%s%s%s`%s", r->name, r->arg ? " " : "", r->arg ? r->arg : "",
				r->flags & UDFB_SET_REPEAT ? " (repeatable)" : "");
		fputs(" | ", f);
		if (r->file)
			fprintf(f, "`%s%s%s`", s->object ? s->object : "", s->object ? "." : "", r->file);
		fputs(" | ", f);
		if (r->env)
			fprintf(f, "`%s`%s", r->env, r->split ? " (a list)" : "");
		fprintf(f, " | %s | %s |\n", dflt, meaning);
	}
}
