/* udf-builder-serve: the ApplyUdfResource service's executable, the only
 * one linked with gRPC and libmicrohttpd.  `udf-builder serve ARGS` runs
 * it in its place (cmd/cli.c); it takes the same arguments, with or
 * without the leading `serve`, so either name may be the entry point. */
#include <stdio.h>
#include <string.h>

#include "cmd/cli.h"
#include "common/version.h"

int main(int argc, char **argv)
{
	udfb_cli_start();
	if (argc >= 2 && (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0)) {
		printf("udf-builder %s\n", UDFB_VERSION);
		return 0;
	}
	/* udfb_cmd_serve reads its options from argv[1]. */
	if (argc >= 2 && strcmp(argv[1], "serve") == 0)
		return udfb_cmd_serve(argc - 1, argv + 1);
	return udfb_cmd_serve(argc, argv);
}
