/* udf-builder: dispatch to a subcommand. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cli.h"
#include "common/log.h"
#include "common/version.h"

static const char usage[] =
	"usage: udf-builder COMMAND [OPTIONS]\n"
	"\n"
	"  key REQUEST.json [--base REF]                 print the cache key\n"
	"  dockerfile REQUEST.json --base REF --out DIR  write a Dockerfile and its build context\n"
	"  build REQUEST.json --base REF --dest REF [--store DIR] [--index-url URL]... [--refresh-packages]\n"
	"                                                build the image natively, print a JSON result\n"
	"  prebuild INPUT... --base REF --dest REF [-j N] [--report FILE] [--dry-run] [--shard I/N]\n"
	"                                                build many requests (files, dirs, .jsonl)\n"
	"  warm --runtime 3.12 --packages \"numpy pandas==2.2.*\" --base REF --dest REF [--index-url URL]...\n"
	"                                                build and publish package layers without a UDF\n"
	"  cache ls|stat [--store DIR]                   the store's entries (sizes, ages, hits), its totals\n"
	"  cache gc [--max-bytes N] [--store DIR]        evict least recently used entries, sweep blobs\n"
	"  cache verify [--store DIR]                    re-hash the store and check its entries\n"
	"  cache sync-tags [--dest oci:DIR] [--store DIR]  write index.json from the tag journal now\n"
	"  serve [--listen ADDR] [--base-image RT=REF]...  the ApplyUdfResource gRPC service (serve --help)\n"
	"  version                                       print the version\n"
	"\n"
	"REF is oci:DIR[:TAG] or docker://HOST[:PORT]/REPO[:TAG|@sha256:HEX].\n"
	"Exit status: 0 success, 2 invalid input, 1 anything else. See docs/cli.md.\n";

int main(int argc, char **argv)
{
	enum udfb_log_level level = UDFB_LOG_WARN;
	const char *lv = getenv("UDFB_LOG_LEVEL");
	if (lv && udfb_log_parse_level(lv, &level) < 0)
		fprintf(stderr, "udf-builder: UDFB_LOG_LEVEL: unknown level '%s', using warn\n", lv);
	udfb_log_init(level, -1);
	/* Without TZ, glibc stats /etc/localtime at every mktime(): libarchive
	 * calls it for each zip entry's time (7,000 stats for a 1,200-file
	 * wheel).  Naming the same zone explicitly reads it once.  Set here,
	 * before any thread exists. */
	if (!getenv("TZ"))
		setenv("TZ", ":/etc/localtime", 0);
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
		fputs(usage, argc < 2 ? stderr : stdout);
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
		return udfb_cmd_serve(argc - 1, argv + 1);
	if (strcmp(cmd, "cache") == 0)
		return udfb_cmd_cache(argc - 1, argv + 1);
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
		printf("udf-builder %s\n", UDFB_VERSION);
		return 0;
	}
	fprintf(stderr, "udf-builder: unknown command '%s'\n%s", cmd, usage);
	return 2;
}
