/* udf-builder cache verify [--store DIR]. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "store.h"

static int cache_verify(int argc, char **argv)
{
	struct udfb_err err = UDFB_ERR_INIT;
	struct udfb_cli_common c;
	if (udfb_cli_parse(&c, argc, argv, "store", 0, &err) < 0) {
		udfb_cli_free(&c);
		return udfb_cli_fail(&err);
	}
	char *dflt = c.store ? NULL : udfb_store_default_dir();
	struct udfb_store *st = NULL;
	int rc = udfb_store_open(&st, c.store ? c.store : dflt, &err);
	long problems = 0, blobs = 0, keys = 0;
	if (rc == 0)
		rc = udfb_store_verify(st, stdout, &problems, &blobs, &keys, &err);
	if (rc == 0)
		printf("%ld blobs, %ld keys checked in %s: %ld problem%s\n", blobs, keys, st->root, problems,
		       problems == 1 ? "" : "s");
	udfb_store_close(st);
	free(dflt);
	udfb_cli_free(&c);
	if (rc < 0)
		return udfb_cli_fail(&err);
	return problems ? 1 : 0;
}

int udfb_cmd_cache(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "verify") == 0)
		return cache_verify(argc - 1, argv + 1);
	fprintf(stderr, "udf-builder: cache: expected a subcommand: verify\n");
	return 2;
}
