/* udf-builder: dispatch to a subcommand.  `serve` is udf-builder-serve
 * (cmd/serve_main.c), run in this process's place: the CLI is linked
 * without gRPC and libmicrohttpd, which only the service uses. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cli.h"
#include "common/version.h"

static void usage(FILE *f)
{
	const struct udfb_cli_spec *const specs[] = { &udfb_cli_key_spec, &udfb_cli_dockerfile_spec,
						      &udfb_cli_build_spec, &udfb_cli_prebuild_spec,
						      &udfb_cli_warm_spec };
	fputs("usage: udf-builder COMMAND [OPTIONS]   (udf-builder COMMAND --help: its options)\n\n", f);
	for (size_t k = 0; k < sizeof(specs) / sizeof(*specs); k++)
		udfb_cli_usage(f, specs[k], 0);
	for (const struct udfb_cli_spec *c = udfb_cli_cache_specs; c->name; c++)
		udfb_cli_usage(f, c, 0);
	fprintf(f, "  %-38s %s\n", "serve [OPTIONS]", "the ApplyUdfResource gRPC service (serve --help)");
	fprintf(f, "  %-38s %s\n", "settings [--markdown] [SECTION]",
		"every setting: flag, file key, variable, default");
	fprintf(f, "  %-38s %s\n", "version", "print the version");
	fputs("\nEvery command takes --config FILE, the service's settings file (docs/configuration.md).\n"
	      "REF is oci:DIR[:TAG] or docker://HOST[:PORT]/REPO[:TAG|@sha256:HEX].\n"
	      "Exit status: 0 success, 2 invalid input, 1 anything else. See docs/cli.md.\n",
	      f);
}

int main(int argc, char **argv)
{
	udfb_cli_start();
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "key") == 0)
		return udfb_cmd_key(argc - 1, argv + 1);
	if (strcmp(cmd, "dockerfile") == 0)
		return udfb_cmd_dockerfile(argc - 1, argv + 1);
	if (strcmp(cmd, "build") == 0)
		return udfb_cmd_build(argc - 1, argv + 1);
	if (strcmp(cmd, "prebuild") == 0)
		return udfb_cmd_prebuild(argc - 1, argv + 1);
	if (strcmp(cmd, "warm") == 0)
		return udfb_cmd_warm(argc - 1, argv + 1);
	if (strcmp(cmd, "serve") == 0)
		return udfb_cli_exec_serve(argc - 1, argv + 1);
	if (strcmp(cmd, "settings") == 0)
		return udfb_cmd_settings(argc - 1, argv + 1);
	if (strcmp(cmd, "cache") == 0)
		return udfb_cmd_cache(argc - 1, argv + 1);
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
		printf("udf-builder %s\n", UDFB_VERSION);
		return 0;
	}
	fprintf(stderr, "udf-builder: unknown command '%s'\n", cmd);
	usage(stderr);
	return 2;
}
