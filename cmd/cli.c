/* Option handling of the CLI: see cli.h.  The CLI's own rows are below;
 * the service's "imports" and "packages" rows are shared with serve, and
 * --config FILE reads the service's file into c->cfg first. */
#include "cmd/cli.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache/store.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/version.h"
#include "service/runtime_base.h"

#define CLI(field) offsetof(struct udfb_cli_common, field)
#define STR(n, env, arg, field, dflt, help)                                                                 \
	{                                                                                                   \
		n, NULL, env, NULL, arg, UDFB_SET_STR, 0, 0, 0, CLI(field), NULL, NULL, dflt, help, NULL, 0 \
	}
#define SWITCH(n, field, help)                                                                                   \
	{                                                                                                        \
		n, NULL, NULL, NULL, NULL, UDFB_SET_SWITCH, 0, 0, 0, CLI(field), NULL, NULL, NULL, help, NULL, 0 \
	}

static const struct udfb_setting cli_rows[] = {
	STR("config", "UDFB_CONFIG", "FILE", config, NULL,
	    "the service's settings file: base images per runtime, salt, platform, packages, store"),
	STR("store", "UDFB_STORE", "DIR", cfg.store,
	    "`/var/lib/udf-builder/store` as root, else `~/.cache/udf-builder/store`", "the local store"),
	STR("base", "UDFB_BASE", "REF", base, "the config's base for the request's runtime",
	    "the runtime base image, for every request"),
	STR("dest", "UDFB_DEST", "REF", cfg.dest, "with --config: `oci:<store>/images`, as the service",
	    "where images are published"),
	STR("out", NULL, "DIR", out, NULL, "the directory to write"),
	STR("salt", "UDFB_KEY_SALT", "S", cfg.salt, "`\"\"`", "cache-key salt"),
	STR("platform", "UDFB_PLATFORM", "OS/ARCH", cfg.platform, "`" UDFB_DEFAULT_PLATFORM "`",
	    "the platform of the base and the image"),
	STR("max-bytes", "UDFB_STORE_MAX_BYTES", "N", max_bytes, NULL, "evict until the store holds at most N bytes"),
	{ "jobs", NULL, NULL, NULL, "N", UDFB_SET_STR, 0, 0, 0, CLI(jobs), NULL, NULL, "`2`", "builds at once", NULL,
	  'j' },
	STR("report", NULL, "FILE", report, NULL, "write a JSON report"),
	STR("shard", NULL, "I/N", shard, NULL, "keep inputs I, I+N, I+2N... (0 <= I < N)"),
	SWITCH("dry-run", dry_run, "print the keys, build nothing"),
	STR("runtime", NULL, "RUNTIME", runtime, NULL, "the Python version (3.12) when the base does not name it"),
	STR("packages", NULL, "REQS", packages_list, NULL, "whitespace-separated requirements"),
	SWITCH("refresh-packages", cfg.packages.refresh, "resolve the requirements again, ignoring a stored lock"),
};

const struct udfb_settings udfb_settings_cli = UDFB_SETTINGS("command line", NULL, cli_rows, 0);

static const struct udfb_settings *const sections[] = { &udfb_settings_cli, &udfb_settings_imports,
							&udfb_settings_packages };
#define N_SECTIONS (sizeof(sections) / sizeof(*sections))

static int positionals(struct udfb_cli_common *c, const struct udfb_cli_spec *spec, int argc, char **argv, int first,
		       struct udfb_err *err)
{
	if (spec->positional < 0) {
		if (spec->positional == -1 && first >= argc)
			return udfb_err_set(err, UDFB_E_INVALID, "%s: missing INPUT", argv[0]);
		c->positionals = argv + first;
		c->n_positionals = argc - first;
		return 0;
	}
	if (spec->positional) {
		if (first >= argc)
			return udfb_err_set(err, UDFB_E_INVALID, "%s: missing REQUEST.json", argv[0]);
		c->positional = argv[first++];
	}
	if (first < argc)
		return udfb_err_set(err, UDFB_E_INVALID, "%s: unexpected argument '%s'", argv[0], argv[first]);
	return 0;
}

int udfb_cli_parse(struct udfb_cli_common *c, const struct udfb_cli_spec *spec, int argc, char **argv,
		   struct udfb_err *err)
{
	memset(c, 0, sizeof(*c));
	udfb_config_defaults(&c->cfg);
	const char *file = udfb_settings_prescan(argc, argv, "config");
	if (!file)
		file = getenv("UDFB_CONFIG");
	if (file && *file && udfb_config_load_file(&c->cfg, file, err) < 0)
		return -1;
	for (size_t k = 0; k < N_SECTIONS; k++)
		if (udfb_settings_load_env(sections[k], c, err) < 0)
			return -1;
	void *const objs[] = { c, c, c };
	int first = 0;
	int rc = udfb_settings_parse_args(sections, objs, N_SECTIONS, spec->opts, argv[0], argc, argv, &first, err);
	if (rc == 1) {
		udfb_cli_usage(stdout, spec, 1);
		return 1;
	}
	return rc < 0 ? -1 : positionals(c, spec, argc, argv, first, err);
}

void udfb_cli_free(struct udfb_cli_common *c)
{
	udfb_settings_free(&udfb_settings_cli, c);
	udfb_config_free(&c->cfg);
}

void udfb_cli_usage(FILE *f, const struct udfb_cli_spec *spec, int options)
{
	char left[96];
	snprintf(left, sizeof(left), "%s%s%s [OPTIONS]", spec->name, *spec->args ? " " : "", spec->args);
	fprintf(f, options ? "usage: udf-builder %s\n  %s\n" : "  %-38s %s\n", left, spec->summary);
	for (const char *const *o = spec->opts; options && *o; o++)
		for (size_t k = 0; k < N_SECTIONS; k++) {
			const struct udfb_setting *r = udfb_settings_find(sections[k], *o);
			if (r) {
				udfb_setting_usage(f, r);
				break;
			}
		}
}

void udfb_cli_start(void)
{
	enum udfb_log_level level = UDFB_LOG_WARN;
	const char *lv = getenv("UDFB_LOG_LEVEL");
	if (lv && udfb_log_parse_level(lv, &level) < 0)
		fprintf(stderr, "udf-builder: UDFB_LOG_LEVEL: unknown level '%s', using warn\n", lv);
	udfb_log_init(level, -1);
	/* Without TZ, glibc stats /etc/localtime at every mktime(): libarchive
	 * calls it for each zip entry's time (7,000 stats for a 1,200-file
	 * wheel).  Naming the same zone explicitly reads it once. */
	if (!getenv("TZ"))
		setenv("TZ", ":/etc/localtime", 0);
}

/* The service is its own executable so that no CLI process loads gRPC and
 * libmicrohttpd (docs/architecture.md, "Two executables").  It is looked
 * for beside the running binary, as `make` and the Dockerfile install
 * them; exec keeps the pid, so a PID 1 `udf-builder serve` stays PID 1. */
int udfb_cli_exec_serve(int argc, char **argv)
{
	char path[PATH_MAX];
	const char *env = getenv("UDFB_SERVE_BIN");
	if (env && *env) {
		if (snprintf(path, sizeof path, "%s", env) >= (int)sizeof path) {
			fputs("udf-builder: UDFB_SERVE_BIN: path too long\n", stderr);
			return 2;
		}
	} else {
		ssize_t n = readlink("/proc/self/exe", path, sizeof path - sizeof "udf-builder-serve");
		if (n <= 0) {
			fprintf(stderr, "udf-builder: serve: cannot find this executable: %s\n", strerror(errno));
			return 1;
		}
		path[n] = 0;
		char *slash = strrchr(path, '/');
		strcpy(slash ? slash + 1 : path, "udf-builder-serve");
	}
	char **args = udfb_calloc((size_t)argc + 1, sizeof *args);
	args[0] = path;
	for (int i = 1; i < argc; i++)
		args[i] = argv[i];
	execv(path, args);
	fprintf(stderr, "udf-builder: serve: cannot run %s: %s (install it beside udf-builder)\n", path,
		strerror(errno));
	free(args);
	return 1;
}

int udfb_cli_fail(struct udfb_err *err)
{
	fprintf(stderr, "udf-builder: %s\n", err->msg ? err->msg : "unknown error");
	int code = udfb_errcat_exit_code(err->cat);
	udfb_err_clear(err);
	return code;
}

int udfb_cli_run(const struct udfb_cli_spec *spec, int argc, char **argv,
		 int (*fn)(struct udfb_cli_common *c, struct udfb_err *err))
{
	struct udfb_err err = UDFB_ERR_INIT;
	struct udfb_cli_common c;
	int rc = udfb_cli_parse(&c, spec, argc, argv, &err);
	if (rc == 0)
		rc = fn(&c, &err);
	else if (rc > 0)
		rc = 0; /* --help */
	udfb_cli_free(&c);
	return rc < 0 ? udfb_cli_fail(&err) : rc;
}

const char *udfb_cli_store(struct udfb_cli_common *c)
{
	if (!c->cfg.store)
		c->cfg.store = udfb_store_default_dir();
	return c->cfg.store;
}

const char *udfb_cli_tenant(const struct udfb_cli_common *c, const struct udfb_request *req)
{
	return req->tenant ? req->tenant : c->cfg.default_tenant;
}

/* As the service answers a runtime it has no base for. */
static int unsupported(const struct udfb_config *cfg, const char *want, struct udfb_err *err)
{
	struct udfb_buf b;
	udfb_buf_init(&b, 4096);
	for (size_t k = 0; k < cfg->n_bases; k++)
		udfb_buf_printf(&b, "%s%s", k ? ", " : "", cfg->bases[k].runtime);
	udfb_err_set(err, UDFB_E_INVALID, "spec.runtime_version: '%s' is not supported here (supported: %s)", want,
		     b.len ? b.data : "none configured");
	udfb_buf_free(&b);
	return -1;
}

int udfb_cli_base_ref(struct udfb_cli_common *c, const char *runtime_version, char **ref, struct udfb_err *err)
{
	*ref = NULL;
	if (c->base) {
		*ref = udfb_strdup(c->base);
		return 0;
	}
	if (!c->cfg.n_bases)
		return 0;
	const struct udfb_runtime_base *rb = udfb_config_base_for(&c->cfg, runtime_version);
	if (!rb)
		return unsupported(&c->cfg, runtime_version, err);
	udfb_cli_store(c);
	if (udfb_runtime_compose(ref, rb->runtime, rb->ref, &c->cfg, err) < 0)
		return udfb_err_wrap(err, "runtime %s", rb->runtime);
	if (!*ref)
		*ref = udfb_strdup(rb->ref);
	return 0;
}

const char *udfb_cli_dest(struct udfb_cli_common *c)
{
	if (!c->cfg.dest && c->config)
		c->cfg.dest = udfb_asprintf("oci:%s/images", udfb_cli_store(c));
	return c->cfg.dest;
}
