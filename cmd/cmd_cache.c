/* udf-builder cache ls|stat|gc|verify|sync-tags [--store DIR]: look after
 * the store (sync-tags: an OCI-layout destination's index.json). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd/cli.h"
#include "common/alloc.h"
#include "common/fsutil.h"
#include "cache/gc.h"
#include "cache/index.h"
#include "image/ocilayout.h"
#include "registry-client/ref.h"
#include "cache/store.h"

static void human(char *buf, size_t len, long long bytes)
{
	const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)bytes;
	int u = 0;
	while (v >= 1024 && u < 4)
		v /= 1024, u++;
	snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

static void age(char *buf, size_t len, uint32_t when)
{
	long s = (long)time(NULL) - (long)when;
	if (s < 0)
		s = 0;
	if (s < 120)
		snprintf(buf, len, "%lds ago", s);
	else if (s < 7200)
		snprintf(buf, len, "%ldm ago", s / 60);
	else if (s < 172800)
		snprintf(buf, len, "%ldh ago", s / 3600);
	else
		snprintf(buf, len, "%ldd ago", s / 86400);
}

static int cache_ls(struct udfb_store *st, struct udfb_err *err)
{
	struct udfb_store_entry *v;
	size_t n;
	if (udfb_store_entries(st, &v, &n, err) < 0)
		return -1;
	printf("%-8s %-23s %10s %10s %10s %6s  %s\n", "KIND", "KEY OR BLOB", "SIZE", "CREATED", "USED", "HITS",
	       "IMAGE OR IMPORT");
	for (size_t k = 0; k < n; k++) {
		char size[32], created[32], used[32];
		human(size, sizeof(size), v[k].bytes);
		age(created, sizeof(created), v[k].created);
		age(used, sizeof(used), v[k].last_used);
		printf("%-8s %-23.23s %10s %10s %10s %6u  %s\n", v[k].is_import ? "import" : "key", v[k].name, size,
		       v[k].is_import ? "-" : created, used, v[k].hits, v[k].is_import ? v[k].label : v[k].manifest);
	}
	udfb_store_entries_free(v, n);
	return 0;
}

static int cache_stat(struct udfb_store *st, struct udfb_err *err)
{
	long long bytes;
	long blobs;
	struct udfb_store_entry *v;
	size_t n, ix_bytes, slots, keys = 0;
	if (udfb_store_blob_bytes(st, &bytes, &blobs, err) < 0 || udfb_store_entries(st, &v, &n, err) < 0)
		return -1;
	for (size_t k = 0; k < n; k++)
		keys += !v[k].is_import;
	udfb_index_size(st->index, &ix_bytes, &slots);
	char size[32], ixs[32], newest[32] = "-", oldest[32] = "-";
	human(size, sizeof(size), bytes);
	human(ixs, sizeof(ixs), (long long)ix_bytes);
	if (n) {
		age(newest, sizeof(newest), v[0].last_used);
		age(oldest, sizeof(oldest), v[n - 1].last_used);
	}
	printf("store      %s\nkeys       %zu\nimports    %zu\nblobs      %ld (%s)\nindex      %s, %zu slots\n"
	       "last used  newest %s, oldest %s\n",
	       st->root, keys, n - keys, blobs, size, ixs, slots, newest, oldest);
	udfb_store_entries_free(v, n);
	return 0;
}

static int cache_gc(struct udfb_store *st, const char *max, struct udfb_err *err)
{
	char *end = NULL;
	long long limit = max ? strtoll(max, &end, 10) : 0;
	if (max && (!*max || *end || limit < 0))
		return udfb_err_set(err, UDFB_E_INVALID, "--max-bytes: '%s' is not a byte count", max);
	struct udfb_gc_report r;
	if (udfb_store_gc(st, limit, 1, &r, err) < 0)
		return -1;
	char before[32], after[32];
	human(before, sizeof(before), r.bytes_before);
	human(after, sizeof(after), r.bytes_after);
	printf("evicted %ld keys and %ld imports, swept %ld blobs: %s -> %s\n", r.keys_evicted, r.imports_evicted,
	       r.blobs_swept, before, after);
	if (r.wheels_removed)
		printf("removed %ld downloaded wheels (their layers stay)\n", r.wheels_removed);
	return 0;
}

static int cache_verify(struct udfb_store *st, struct udfb_err *err)
{
	long problems = 0, blobs = 0, keys = 0;
	if (udfb_store_verify(st, stdout, &problems, &blobs, &keys, err) < 0)
		return -1;
	printf("%ld blobs, %ld keys checked in %s: %ld problem%s\n", blobs, keys, st->root, problems,
	       problems == 1 ? "" : "s");
	return problems ? 1 : 0;
}

/* Derive index.json from the tag journal now (docs/store.md): the
 * store's images/ layout, or the one --dest names. */
static int cache_sync_tags(struct udfb_store *st, const char *dest, struct udfb_err *err)
{
	struct udfb_ref r = { 0 };
	if (dest && udfb_ref_parse(&r, dest, err) < 0)
		return udfb_err_wrap(err, "--dest");
	if (dest && r.kind != UDFB_REF_OCI) {
		udfb_ref_free(&r);
		return udfb_err_set(err, UDFB_E_INVALID, "--dest '%s': sync-tags needs an oci:DIR layout", dest);
	}
	char *dir = dest ? udfb_strdup(r.dir) : udfb_path_join(st->root, "images");
	if (dest)
		udfb_ref_free(&r);
	int rc = udfb_oci_sync(dir, err);
	if (rc == 0)
		printf("%s/index.json is current\n", dir);
	free(dir);
	return rc;
}

#define STORE_ONLY ((const char *const[]){ "config", "store", NULL })

const struct udfb_cli_spec udfb_cli_cache_specs[] = {
	{ "cache ls", "", "the store's entries (sizes, ages, hits)", 0, STORE_ONLY },
	{ "cache stat", "", "the store's totals", 0, STORE_ONLY },
	{ "cache gc", "", "evict least recently used entries, sweep blobs", 0,
	  (const char *const[]){ "config", "store", "max-bytes", NULL } },
	{ "cache verify", "", "re-hash the store and check its entries", 0, STORE_ONLY },
	{ "cache sync-tags", "", "write index.json from the tag journal now", 0,
	  (const char *const[]){ "config", "store", "dest", NULL } },
	{ NULL, NULL, NULL, 0, NULL },
};

int udfb_cmd_cache(int argc, char **argv)
{
	const char *sub = argc >= 2 ? argv[1] : "";
	const struct udfb_cli_spec *spec = udfb_cli_cache_specs;
	while (spec->name && strcmp(spec->name + 6, sub) != 0)
		spec++;
	if (!spec->name) {
		fprintf(stderr, "udf-builder: cache: expected ls, stat, gc, verify or sync-tags\n");
		return 2;
	}
	struct udfb_err err = UDFB_ERR_INIT;
	struct udfb_cli_common c;
	int rc = udfb_cli_parse(&c, spec, argc - 1, argv + 1, &err);
	struct udfb_store *st = NULL;
	if (rc == 0)
		rc = udfb_store_open(&st, udfb_cli_store(&c), &err);
	if (rc == 0)
		rc = !strcmp(sub, "ls")		 ? cache_ls(st, &err)
		     : !strcmp(sub, "stat")	 ? cache_stat(st, &err)
		     : !strcmp(sub, "gc")	 ? cache_gc(st, c.max_bytes, &err)
		     : !strcmp(sub, "sync-tags") ? cache_sync_tags(st, c.cfg.dest, &err)
						 : cache_verify(st, &err);
	else if (rc > 0)
		rc = 0; /* --help */
	udfb_store_close(st);
	udfb_cli_free(&c);
	return rc < 0 ? udfb_cli_fail(&err) : rc;
}
