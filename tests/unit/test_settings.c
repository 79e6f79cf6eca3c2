/* The settings engine (config/settings.h): types and ranges, the order of
 * sources and lists replaced whole, variables split into lists, file
 * objects and arrays, flags limited to a command's spec, --help, and every
 * table's shown default equal to the default the code sets. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "config/config.h"
#include "config/settings.h"
#include "scheduler/k8s.h"
#include "scheduler/local.h"

struct demo {
	char *name;
	int n;
	long long big;
	int on;
	char *list; /* items joined by '|', cleared when a later source sets it */
	int list_src;
};

static int add_item(void *obj, const struct udfb_setting *r, enum udfb_set_source src, const char *v,
		    struct udfb_err *err)
{
	struct demo *d = obj;
	(void)r, (void)err;
	if (d->list_src < (int)src) {
		free(d->list);
		d->list = NULL;
	}
	d->list_src = (int)src;
	char *s = NULL;
	if (asprintf(&s, "%s%s%s", d->list ? d->list : "", d->list ? "|" : "", v) < 0)
		abort();
	free(d->list);
	d->list = s;
	return 0;
}

#define OFF(f) offsetof(struct demo, f)
static const struct udfb_setting rows[] = {
	{ "name", "name", "UDFB_TEST_NAME", NULL, "S", UDFB_SET_STR, 0, 0, 0, OFF(name), NULL, NULL, "`x`", "a name",
	  NULL, 0 },
	{ "count", "count", "UDFB_TEST_COUNT", NULL, "N", UDFB_SET_INT, 0, 1, 10, OFF(n), NULL, NULL, "`1`", "a count",
	  NULL, 'c' },
	{ "big", "big", NULL, NULL, "N", UDFB_SET_LLONG, 0, 0, 1ll << 40, OFF(big), NULL, NULL, NULL, "a big one", NULL,
	  0 },
	{ "on", "on", NULL, NULL, NULL, UDFB_SET_SWITCH, 0, 0, 0, OFF(on), NULL, NULL, NULL, "a switch", NULL, 0 },
	{ "item", "items", "UDFB_TEST_ITEMS", ", ", "V", UDFB_SET_FN, UDFB_SET_REPEAT, 0, 0, 0, add_item, NULL, NULL,
	  "an item", NULL, 0 },
};
static const struct udfb_settings demo_settings = UDFB_SETTINGS("demo", "demo", rows, 0);

static void test_types(void)
{
	struct demo d = { 0 };
	struct udfb_err err = UDFB_ERR_INIT;
	CHECK(udfb_setting_set(&rows[1], &d, UDFB_SRC_FLAG, "7", &err) == 0 && d.n == 7, "an int in range is set");
	CHECK(udfb_setting_set(&rows[1], &d, UDFB_SRC_FLAG, "11", &err) < 0 && err.cat == UDFB_E_INVALID &&
		      strcmp(err.msg, "'11' is not a whole number from 1 to 10") == 0,
	      "out of range: the value and the range; the caller names the setting (%s)", err.msg);
	udfb_err_clear(&err);
	CHECK(udfb_setting_set(&rows[1], &d, UDFB_SRC_FLAG, "", &err) < 0 && d.n == 7, "empty is not a number");
	udfb_err_clear(&err);
	CHECK(udfb_setting_set(&rows[1], &d, UDFB_SRC_FLAG, "3x", &err) < 0, "trailing bytes are refused");
	udfb_err_clear(&err);
	CHECK(udfb_setting_set(&rows[2], &d, UDFB_SRC_FLAG, "1099511627776", &err) == 0 && d.big == 1ll << 40,
	      "a long long up to its bound");
	CHECK(udfb_setting_set(&rows[0], &d, UDFB_SRC_FLAG, "a", &err) == 0 &&
		      udfb_setting_set(&rows[0], &d, UDFB_SRC_FLAG, "b", &err) == 0 && strcmp(d.name, "b") == 0,
	      "a string is replaced");
	udfb_settings_free(&demo_settings, &d);
	CHECK(d.name == NULL, "free clears strings");
	free(d.list);
}

static void test_sources(void)
{
	struct demo d = { 0 };
	struct udfb_err err = UDFB_ERR_INIT;
	json_t *o = json_pack("{s:s,s:i,s:[s,s],s:b}", "name", "file", "count", 2, "items", "f1", "f2", "on", 1);
	CHECK(udfb_settings_load_object(&demo_settings, &d, o, "demo", &err) == 0, "a file object loads (%s)",
	      err.msg ? err.msg : "ok");
	CHECK(d.n == 2 && d.on && strcmp(d.list, "f1|f2") == 0, "integers, booleans and arrays from the file");
	json_decref(o);
	setenv("UDFB_TEST_ITEMS", "e1, e2,e3", 1);
	setenv("UDFB_TEST_COUNT", "", 1);
	CHECK(udfb_settings_load_env(&demo_settings, &d, &err) == 0, "the environment loads");
	CHECK(strcmp(d.list, "e1|e2|e3") == 0, "a list variable is split, and replaces the file's list (%s)", d.list);
	CHECK(d.n == 2, "an empty variable is ignored");
	setenv("UDFB_TEST_COUNT", "99", 1);
	CHECK(udfb_settings_load_env(&demo_settings, &d, &err) < 0 &&
		      strcmp(err.msg, "UDFB_TEST_COUNT: '99' is not a whole number from 1 to 10") == 0,
	      "a bad variable is named (%s)", err.msg);
	udfb_err_clear(&err);
	unsetenv("UDFB_TEST_COUNT");
	unsetenv("UDFB_TEST_ITEMS");
	o = json_pack("{s:s}", "nope", "1");
	CHECK(udfb_settings_load_object(&demo_settings, &d, o, "demo", &err) < 0 &&
		      strcmp(err.msg, "demo.nope: unknown setting") == 0,
	      "an unknown file key is refused (%s)", err.msg);
	udfb_err_clear(&err);
	json_decref(o);
	o = json_pack("{s:{}}", "count");
	CHECK(udfb_settings_load_object(&demo_settings, &d, o, "demo", &err) < 0 && strstr(err.msg, "count"),
	      "a value of the wrong type is named (%s)", err.msg);
	udfb_err_clear(&err);
	json_decref(o);
	udfb_settings_free(&demo_settings, &d);
	free(d.list);
}

static void test_flags(void)
{
	struct demo d = { 0 };
	struct udfb_err err = UDFB_ERR_INIT;
	char *argv[] = { "demo", "--item", "a", "in1", "-c", "4", "--on", "--item=b", "in2", NULL };
	int argc = 9, first = 0;
	const struct udfb_settings *secs[] = { &demo_settings };
	void *objs[] = { &d };
	d.list_src = UDFB_SRC_ENV;
	d.list = strdup("env");
	CHECK(udfb_settings_parse_args(secs, objs, 1, NULL, "demo", argc, argv, &first, &err) == 0, "flags parse (%s)",
	      err.msg ? err.msg : "ok");
	CHECK(d.n == 4 && d.on && strcmp(d.list, "a|b") == 0,
	      "short, switch and repeated flags; the flags' list "
	      "replaces the environment's (%s)",
	      d.list);
	CHECK(first == 7 && strcmp(argv[first], "in1") == 0 && strcmp(argv[first + 1], "in2") == 0,
	      "positionals come last");
	char *argv2[] = { "demo", "--big", "5", NULL };
	const char *const only[] = { "count", NULL };
	CHECK(udfb_settings_parse_args(secs, objs, 1, only, "demo", 3, argv2, &first, &err) < 0 &&
		      strcmp(err.msg, "demo: unknown option '--big'") == 0,
	      "a flag the command's spec lacks is unknown (%s)", err.msg);
	udfb_err_clear(&err);
	char *argv3[] = { "demo", "--count", "0", NULL };
	CHECK(udfb_settings_parse_args(secs, objs, 1, NULL, "demo", 3, argv3, &first, &err) < 0 &&
		      strcmp(err.msg, "--count: '0' is not a whole number from 1 to 10") == 0,
	      "a bad flag value names the flag, once (%s)", err.msg);
	udfb_err_clear(&err);
	char *argv4[] = { "demo", "--help", NULL };
	CHECK(udfb_settings_parse_args(secs, objs, 1, NULL, "demo", 2, argv4, &first, &err) == 1, "--help is said");
	char *argv5[] = { "demo", "--config", "a.json", "--config=b.json", "--", "--config", "c", NULL };
	CHECK_STR(udfb_settings_prescan(7, argv5, "config"), "b.json", "the last --config before -- is found first");
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	udfb_settings_usage(f, &demo_settings, NULL);
	udfb_settings_markdown(f, &demo_settings);
	fclose(f);
	CHECK(strstr(text, "  -c, --count N") && strstr(text, "a count (1); UDFB_TEST_COUNT") &&
		      strstr(text, "--item V") && strstr(text, "repeatable"),
	      "--help lines come from the rows:\n%s", text);
	CHECK(strstr(text, "| `--count N` | `demo.count` | `UDFB_TEST_COUNT` | `1` | a count |") &&
		      strstr(text, "`UDFB_TEST_ITEMS` (a list)"),
	      "and the docs' table rows");
	free(text);
	udfb_settings_free(&demo_settings, &d);
	free(d.list);
}

/* A row whose default is shown as one literal ("`32`", "`runsc`", maybe
 * with a gloss in parentheses) holds that value after the defaults: set
 * from the row itself (service, local, kubernetes), or by the lower module
 * that owns the struct (imports, packages), so the docs cannot drift. */
static int shown_default_ok(const struct udfb_setting *r, const void *obj, int *checked)
{
	char want[256], got[256];
	if (!udfb_setting_literal_default(r, want, sizeof(want)))
		return 1; /* prose ("as root, else ...") or derived ("<store>/images"): set by the code */
	const char *slot = (const char *)obj + r->off;
	switch (r->type) {
	case UDFB_SET_STR:
		snprintf(got, sizeof(got), "%s", *(char *const *)slot ? *(char *const *)slot : "(null)");
		break;
	case UDFB_SET_INT: snprintf(got, sizeof(got), "%d", *(const int *)slot); break;
	case UDFB_SET_LONG: snprintf(got, sizeof(got), "%ld", *(const long *)slot); break;
	case UDFB_SET_LLONG: snprintf(got, sizeof(got), "%lld", *(const long long *)slot); break;
	default: return 1;
	}
	(*checked)++;
	return strcmp(want, got) == 0 || (fprintf(stderr, "# %s: shown %s, set %s\n", r->name, want, got), 0);
}

static void check_defaults(const struct udfb_settings *s, const void *obj)
{
	int bad = 0, checked = 0;
	for (size_t k = 0; k < s->n; k++)
		bad += !shown_default_ok(&s->rows[k], obj, &checked);
	CHECK(bad == 0 && checked > 0, "%s: %d shown defaults are the defaults set", s->name, checked);
}

static void test_defaults(void)
{
	struct udfb_config c;
	struct udfb_err err = UDFB_ERR_INIT;
	udfb_config_defaults(&c);
	check_defaults(&udfb_settings_service, &c);
	check_defaults(&udfb_settings_imports, &c);
	check_defaults(&udfb_settings_packages, &c);
	CHECK(c.deadline_mode == UDFB_DEADLINE_FAIL && c.call_workers == 32 && c.token_ttl_s == 3600 && !c.store &&
		      c.n_bases == 0,
	      "service: the mode from its row, nothing where the default is prose");
	udfb_config_free(&c);
	json_t *none = json_object();
	struct k8s_opts k;
	CHECK(k8s_opts_parse(&k, none, &err) == 0, "kubernetes options parse");
	check_defaults(&udfb_settings_k8s, &k);
	CHECK(k.start_timeout_ms == 60000 && k.poll_ms == 500 && k.idle_ms == 600000 && k.reap_interval_ms == 10000 &&
		      k.request_timeout_ms == 10000 && !k.api_server && !k.kubeconfig,
	      "kubernetes: the numbers' defaults, none for the API server");
	k8s_opts_free(&k);
	struct udfb_local_opts l;
	CHECK(udfb_local_opts_parse(&l, none, "/tmp/store", &err) == 0, "local options parse (%s)",
	      err.msg ? err.msg : "ok");
	check_defaults(&udfb_settings_local, &l);
	CHECK(l.memory == 1ll << 30 && l.cpu_millis == 1000 && l.tmp_size == 64ll << 20 && l.log_max == 64ll << 20 &&
		      l.seccomp == 1 && l.keep_on_exit == 0 && l.network == UDFB_LOCAL_NET_NAMESPACE &&
		      l.cgroups_mode == UDFB_LOCAL_CG_AUTO && l.port_min == 20000 && l.port_max == 29999 &&
		      l.start_timeout_ms == 10000 && l.idle_ms == 600000 && l.reap_interval_ms == 1000 &&
		      l.max_per_tenant == 16 && l.max_total == 64 && l.pids == 256 && l.nofile == 1024 &&
		      l.nproc == 4096 && l.max_connections == 1024 && strcmp(l.runtime, "") == 0 &&
		      strcmp(l.advertise_address, "") == 0 && strcmp(l.state_dir, "/tmp/store/sandboxes") == 0,
	      "local: sizes, CPUs, modes and numbers from the rows' defaults; runtime and paths from the code");
	udfb_local_opts_free(&l);
	json_decref(none);
}

int main(void)
{
	test_types();
	test_sources();
	test_flags();
	test_defaults();
	return check_done();
}
