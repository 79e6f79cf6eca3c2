/* udf-builder prebuild INPUT... --base REF --dest REF [-j N] [--report FILE]
 * [--dry-run] [--shard I/N]: build many requests against one store; a live
 * progress bar on a terminal, one line per request otherwise; a summary and
 * an optional JSON report; exit 1 if any failed. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "builder/batch.h"
#include "cmd/cli.h"
#include "common/jsonout.h"
#include "image/ocilayout.h"
#include "cache/store.h"

struct progress {
	size_t total, hits, built, failed;
	double t0;
	int tty;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_done(const struct udfb_batch_item *it, size_t finished, void *ctx)
{
	struct progress *p = ctx;
	p->failed += it->failed;
	p->hits += !it->failed && it->cached;
	p->built += !it->failed && !it->cached;
	if (!p->tty) {
		if (it->failed)
			fprintf(stderr, "failed %6.2fs %s: %s\n", it->seconds, it->name, it->error);
		else
			fprintf(stderr, "%-6s %6.2fs %s %s\n", it->cached ? "cached" : "built", it->seconds, it->key,
				it->name);
		return;
	}
	double spent = now_s() - p->t0, eta = finished ? spent / (double)finished * (double)(p->total - finished) : 0;
	int width = 30, fill = p->total ? (int)(width * finished / p->total) : width;
	fprintf(stderr, "\r[%.*s%*s] %zu/%zu  hits %zu  built %zu  failed %zu  ETA %ds ", fill,
		"==============================", width - fill, "", finished, p->total, p->hits, p->built, p->failed,
		(int)(eta + 0.5));
	if (finished == p->total)
		fputc('\n', stderr);
}

static int write_report(const char *path, const struct udfb_batch *b, const struct progress *p, double secs,
			struct udfb_err *err)
{
	json_t *items = json_array();
	for (size_t k = 0; k < b->n; k++) {
		const struct udfb_batch_item *it = &b->items[k];
		json_t *o = udfb_json_must(json_pack("{s:s,s:s,s:b,s:f}", "name", it->name, "key", it->key, "cached",
						     it->cached, "duration_s", it->seconds));
		json_object_set_new(o, "manifest_digest", it->digest[0] ? json_string(it->digest) : json_null());
		json_object_set_new(o, "image", it->image ? json_string(it->image) : json_null());
		json_object_set_new(o, "error", it->error ? udfb_json_text(it->error) : json_null());
		json_array_append_new(items, o);
	}
	json_t *r =
		udfb_json_must(json_pack("{s:o,s:{s:I,s:I,s:I,s:I,s:f}}", "requests", items, "summary", "total",
					 (json_int_t)p->total, "cached", (json_int_t)p->hits, "built",
					 (json_int_t)p->built, "failed", (json_int_t)p->failed, "duration_s", secs));
	int rc = json_dump_file(r, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(r);
	return rc < 0 ? udfb_err_set(err, UDFB_E_INTERNAL, "--report %s: cannot write it", path) : 0;
}

static int parse_shard(const char *s, size_t *i, size_t *n, struct udfb_err *err)
{
	unsigned long a, b;
	char tail;
	if (!s)
		return 0; /* every input */
	if (sscanf(s, "%lu/%lu%c", &a, &b, &tail) != 2 || b == 0 || a >= b)
		return udfb_err_set(err, UDFB_E_INVALID, "--shard '%s': expected I/N with 0 <= I < N", s);
	*i = a, *n = b;
	return 0;
}

static void dry_run(const struct udfb_batch *b)
{
	for (size_t k = 0; k < b->n; k++)
		if (b->items[k].failed)
			printf("error %s: %s\n", b->items[k].name, b->items[k].error);
		else
			printf("%s %s\n", b->items[k].key, b->items[k].name);
}

static int prebuild(struct udfb_cli_common *c, struct udfb_err *err)
{
	size_t si = 0, sn = 1;
	int jobs = c->jobs ? atoi(c->jobs) : 2;
	if (!c->base || (!c->dest && !c->dry_run))
		return udfb_err_set(err, UDFB_E_INVALID, "prebuild: %s is required", c->base ? "--dest" : "--base");
	if (jobs < 1 || jobs > 256)
		return udfb_err_set(err, UDFB_E_INVALID, "--jobs: '%s' is not a number from 1 to 256", c->jobs);
	if (parse_shard(c->shard, &si, &sn, err) < 0)
		return -1;
	struct udfb_batch b;
	if (udfb_batch_load(&b, c->positionals, (size_t)c->n_positionals, err) < 0)
		return -1;
	udfb_batch_shard(&b, si, sn);
	struct udfb_base base = { 0 };
	char *store = c->store ? NULL : udfb_store_default_dir();
	int rc = udfb_base_resolve(&base, c->base, c->platform, NULL, err);
	struct udfb_build_opts o = { .store_dir = c->store ? c->store : store,
				     .base = c->base,
				     .dest = c->dest,
				     .salt = c->salt,
				     .platform = c->platform,
				     .fetch = &c->fetch,
				     .packages = &c->packages,
				     .base_resolved = &base };
	struct progress p = { .total = b.n, .t0 = now_s(), .tty = isatty(STDERR_FILENO) };
	if (rc == 0 && c->dry_run) {
		udfb_batch_keys(&b, &o, err);
		dry_run(&b);
	} else if (rc == 0) {
		/* index.json is derived at the end of the batch, and every
		 * 10 s during a long one so readers see its progress. */
		rc = udfb_oci_autosync_start(2000, 10000, err);
		if (rc == 0)
			udfb_batch_run(&b, &o, jobs, on_done, &p);
		if (rc == 0)
			rc = udfb_oci_autosync_stop(err);
		double secs = now_s() - p.t0;
		fprintf(stderr, "%zu requests: %zu cached, %zu built, %zu failed in %.1f s\n", p.total, p.hits, p.built,
			p.failed, secs);
		if (rc == 0 && c->report)
			rc = write_report(c->report, &b, &p, secs, err);
		if (rc == 0 && p.failed)
			rc = 1;
	}
	udfb_base_free(&base);
	free(store);
	udfb_batch_free(&b);
	return rc;
}

int udfb_cmd_prebuild(int argc, char **argv)
{
	struct udfb_err err = UDFB_ERR_INIT;
	struct udfb_cli_common c;
	int rc = udfb_cli_parse(
		&c, argc, argv,
		"store,base,dest,salt,platform,imports-allow,index-url,refresh-packages,jobs,report,shard,dry-run", -1,
		&err);
	if (rc == 0)
		rc = prebuild(&c, &err);
	udfb_cli_free(&c);
	return rc < 0 ? udfb_cli_fail(&err) : rc;
}
