/* Shared option handling of the CLI: see cli.h.  Every stateful setting has
 * one environment variable beside its option (UDFB_STORE, UDFB_BASE,
 * UDFB_DEST, UDFB_KEY_SALT, UDFB_PLATFORM); the option wins. */
#include "cmd/cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/version.h"

static int allowed_has(const char *allowed, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = allowed; (p = strstr(p, name)); p += n)
		if ((p == allowed || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
			return 1;
	return 0;
}

static const char *env_or(const char *name, const char *fallback)
{
	const char *v = getenv(name);
	return v && *v ? v : fallback;
}

int udfb_cli_parse(struct udfb_cli_common *c, int argc, char **argv, const char *allowed, int want_positional,
		   struct udfb_err *err)
{
	static const struct option opts[] = {
		{ "store", required_argument, NULL, 's' },
		{ "base", required_argument, NULL, 'b' },
		{ "dest", required_argument, NULL, 'd' },
		{ "out", required_argument, NULL, 'o' },
		{ "salt", required_argument, NULL, 'k' },
		{ "platform", required_argument, NULL, 'p' },
		{ "imports-allow", required_argument, NULL, 'a' },
		{ "max-bytes", required_argument, NULL, 'm' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "report", required_argument, NULL, 'r' },
		{ "shard", required_argument, NULL, 'h' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "index-url", required_argument, NULL, 'i' },
		{ "refresh-packages", no_argument, NULL, 'f' },
		{ "runtime", required_argument, NULL, 't' },
		{ "packages", required_argument, NULL, 'P' },
		{ NULL, 0, NULL, 0 },
	};
	memset(c, 0, sizeof(*c));
	c->store = env_or("UDFB_STORE", NULL);
	c->base = env_or("UDFB_BASE", NULL);
	c->dest = env_or("UDFB_DEST", NULL);
	c->salt = env_or("UDFB_KEY_SALT", "");
	c->platform = env_or("UDFB_PLATFORM", UDFB_DEFAULT_PLATFORM);
	c->max_bytes = env_or("UDFB_STORE_MAX_BYTES", NULL);
	udfb_fetch_opts_defaults(&c->fetch);
	udfb_pkg_opts_defaults(&c->packages);
	if (udfb_fetch_opts_load_env(&c->fetch, err) < 0 || udfb_pkg_opts_load_env(&c->packages, err) < 0)
		return -1;
	int env_index = 1; /* the first --index-url replaces UDFB_INDEX_URL's list */
	optind = 1;
	opterr = 0;
	int ch, idx = 0;
	while ((ch = getopt_long(argc, argv, allowed_has(allowed, "jobs") ? "j:" : "", opts, &idx)) != -1) {
		if (ch == 'j') /* -j N is --jobs N: getopt does not set idx for it */
			for (idx = 0; opts[idx].val != 'j'; idx++)
				;
		if (ch == '?' || !allowed_has(allowed, opts[idx].name))
			return udfb_err_set(err, UDFB_E_INVALID, "%s: unknown option '%s'", argv[0], argv[optind - 1]);
		if (ch == 'n') {
			c->dry_run = 1;
			idx = 0;
			continue;
		}
		if (ch == 'f') {
			c->packages.refresh = 1;
			idx = 0;
			continue;
		}
		if (ch == 'i') {
			if (env_index)
				udfb_pkg_opts_clear_index(&c->packages);
			env_index = 0;
			if (udfb_pkg_opts_set(&c->packages, "packages-index", optarg, err) < 0)
				return udfb_err_wrap(err, "--index-url");
			idx = 0;
			continue;
		}
		if (ch == 'a') {
			if (udfb_fetch_opts_set(&c->fetch, "imports-allow", optarg, err) < 0)
				return udfb_err_wrap(err, "--imports-allow");
			continue;
		}
		const char **slot[] = {
			['s'] = &c->store,  ['b'] = &c->base,	  ['d'] = &c->dest,	 ['o'] = &c->out,
			['k'] = &c->salt,   ['p'] = &c->platform, ['m'] = &c->max_bytes, ['j'] = &c->jobs,
			['r'] = &c->report, ['h'] = &c->shard,	  ['t'] = &c->runtime,	 ['P'] = &c->packages_list
		};
		*slot[ch] = optarg;
		idx = 0;
	}
	if (want_positional == -2) { /* optional inputs */
		c->positionals = argv + optind;
		c->n_positionals = argc - optind;
		optind = argc;
	} else if (want_positional < 0) {
		if (optind >= argc)
			return udfb_err_set(err, UDFB_E_INVALID, "%s: missing INPUT", argv[0]);
		c->positionals = argv + optind;
		c->n_positionals = argc - optind;
		optind = argc;
	} else if (want_positional) {
		if (optind >= argc)
			return udfb_err_set(err, UDFB_E_INVALID, "%s: missing REQUEST.json", argv[0]);
		c->positional = argv[optind++];
	}
	if (optind < argc)
		return udfb_err_set(err, UDFB_E_INVALID, "%s: unexpected argument '%s'", argv[0], argv[optind]);
	return 0;
}

void udfb_cli_free(struct udfb_cli_common *c)
{
	udfb_fetch_opts_free(&c->fetch);
	udfb_pkg_opts_free(&c->packages);
}

int udfb_cli_fail(struct udfb_err *err)
{
	fprintf(stderr, "udf-builder: %s\n", err->msg ? err->msg : "unknown error");
	int code = udfb_errcat_exit_code(err->cat);
	udfb_err_clear(err);
	return code;
}
