/* The command-line front end: option parsing and output only; the work is
 * done by the library.  Each subcommand is one function in its own file and
 * declares its options as a spec (as libgit2's cli_opt_spec): the rows it
 * takes, by name, from the CLI's settings table (cli.c) and the service's
 * "imports" and "packages" tables, so a flag, its variable and its help are
 * written once.  Every command takes --config FILE (the service's file), so
 * it keys a request as the service does: its base images per runtime, salt,
 * platform, package settings and default tenant. */
#ifndef UDFB_CLI_H
#define UDFB_CLI_H

#include <stdio.h>

#include "builder/request.h"
#include "common/err.h"
#include "config/config.h"

struct udfb_cli_common {
	struct udfb_config cfg; /* first: the service's rows write into it */
	char *config; /* --config FILE, UDFB_CONFIG */
	char *base; /* --base REF: one base for every request */
	char *out;
	char *max_bytes; /* cache gc */
	char *jobs, *report, *shard; /* prebuild */
	char *runtime, *packages_list; /* warm */
	int dry_run;
	const char *positional;
	char **positionals; /* with positional < 0: every one */
	int n_positionals;
};

struct udfb_cli_spec {
	const char *name; /* "key", "cache gc" */
	const char *args; /* "REQUEST.json" for the usage line */
	const char *summary; /* one line */
	int positional; /* 1: exactly one, 0: none, -1: one or more, -2: any */
	const char *const *opts; /* row names, NULL-terminated */
};

extern const struct udfb_settings udfb_settings_cli;

/* Parses argv (after the subcommand name): defaults, --config FILE (or
 * UDFB_CONFIG), the variables, then the flags spec lists.  Returns 1 when
 * --help printed the command's usage (exit 0), 0, or -1. */
int udfb_cli_parse(struct udfb_cli_common *c, const struct udfb_cli_spec *spec, int argc, char **argv,
		   struct udfb_err *err);
void udfb_cli_free(struct udfb_cli_common *c);
/* "  key REQUEST.json [OPTIONS]   summary" and, with options, one line each. */
void udfb_cli_usage(FILE *f, const struct udfb_cli_spec *spec, int options);
/* What both executables do first in main(): the log level from
 * UDFB_LOG_LEVEL, and TZ (see cli.c).  Before any thread exists. */
void udfb_cli_start(void);
/* `udf-builder serve ARGS`: replaces the process by udf-builder-serve, the
 * executable beside this one (UDFB_SERVE_BIN overrides the path), with the
 * same arguments.  Returns only on failure, with the exit status. */
int udfb_cli_exec_serve(int argc, char **argv);
/* Prints "udf-builder: <msg>" and returns the exit status for err. */
int udfb_cli_fail(struct udfb_err *err);
/* A command's whole run: parse argv by spec, run fn, free.  The exit
 * status: udfb_cli_fail's for an error, 0 after --help, else fn's (0, or 1
 * when some items of a batch failed). */
int udfb_cli_run(const struct udfb_cli_spec *spec, int argc, char **argv,
		 int (*fn)(struct udfb_cli_common *c, struct udfb_err *err));

/* The base for a request's runtime_version, as the service picks it:
 * --base when given; else the config's base for that runtime (composed
 * with its runtime_packages when the config has them); else *ref = NULL
 * (no base known).  A runtime the config has no base for is INVALID, as
 * the service answers it. */
int udfb_cli_base_ref(struct udfb_cli_common *c, const char *runtime_version, char **ref, struct udfb_err *err);
/* The tenant the service would key a request with: the request's own,
 * else the config's default tenant (NULL: none). */
const char *udfb_cli_tenant(const struct udfb_cli_common *c, const struct udfb_request *req);
/* The store (--store, UDFB_STORE, the file's, else the default), kept in cfg. */
const char *udfb_cli_store(struct udfb_cli_common *c);
/* --dest, UDFB_DEST, the file's; with --config and none of those, where
 * the service publishes (oci:<store>/images); else NULL. */
const char *udfb_cli_dest(struct udfb_cli_common *c);

/* Each command's spec, in its own file. */
extern const struct udfb_cli_spec udfb_cli_key_spec, udfb_cli_dockerfile_spec, udfb_cli_build_spec,
	udfb_cli_prebuild_spec, udfb_cli_warm_spec, udfb_cli_cache_specs[];

int udfb_cmd_key(int argc, char **argv);
int udfb_cmd_dockerfile(int argc, char **argv);
int udfb_cmd_build(int argc, char **argv);
int udfb_cmd_cache(int argc, char **argv);
int udfb_cmd_serve(int argc, char **argv);
int udfb_cmd_prebuild(int argc, char **argv);
int udfb_cmd_warm(int argc, char **argv);
int udfb_cmd_settings(int argc, char **argv);

#endif
