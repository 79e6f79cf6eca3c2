/* The command-line front end: option parsing and output only; the work is
 * done by the library.  Each subcommand is one function in its own file. */
#ifndef UDFB_CLI_H
#define UDFB_CLI_H

#include "common/err.h"
#include "fetch/fetch.h"
#include "pkgindex/pkgopts.h"

struct udfb_cli_common {
	const char *store;
	const char *base;
	const char *dest;
	const char *out;
	const char *salt;
	const char *platform;
	const char *positional;
	const char *max_bytes; /* cache gc */
	const char *jobs, *report, *shard; /* prebuild */
	int dry_run;
	char **positionals; /* with want_positional < 0: every one */
	int n_positionals;
	struct udfb_fetch_opts fetch; /* UDFB_IMPORTS_* and --imports-allow */
	struct udfb_pkg_opts packages; /* UDFB_INDEX_URL, --index-url, --refresh-packages */
	const char *runtime, *packages_list; /* warm */
};

/* Parses argv (after the subcommand name) into c; `allowed` lists the long
 * options the subcommand takes ("store,base,dest").  want_positional: 1 for
 * exactly one (c->positional), 0 for none, -1 for one or more. */
int udfb_cli_parse(struct udfb_cli_common *c, int argc, char **argv, const char *allowed, int want_positional,
		   struct udfb_err *err);
void udfb_cli_free(struct udfb_cli_common *c);
/* Prints "udf-builder: <msg>" and returns the exit status for err. */
int udfb_cli_fail(struct udfb_err *err);

int udfb_cmd_key(int argc, char **argv);
int udfb_cmd_dockerfile(int argc, char **argv);
int udfb_cmd_build(int argc, char **argv);
int udfb_cmd_cache(int argc, char **argv);
int udfb_cmd_serve(int argc, char **argv);
int udfb_cmd_prebuild(int argc, char **argv);
int udfb_cmd_warm(int argc, char **argv);

#endif
