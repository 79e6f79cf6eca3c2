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
#include "common/alloc.h"
#include "common/clock.h"
#include "common/jsonout.h"
#include "image/ocilayout.h"
#include "cache/store.h"

struct progress {
	size_t total, hits, built, failed;
	size_t offset; /* items finished in the groups before this one */
	double t0;
	int tty;
};

static void on_done(const struct udfb_batch_item *it, size_t finished, void *ctx)
{
	struct progress *p = ctx;
	finished += p->offset;
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
	double spent = udfb_now_s() - p->t0,
	       eta = finished ? spent / (double)finished * (double)(p->total - finished) : 0;
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

const struct udfb_cli_spec udfb_cli_prebuild_spec = {
	"prebuild",
	"INPUT...",
	"build many requests (files, dirs, .jsonl)",
	-1,
	(const char *const[]){ "config", "store", "base", "dest", "salt", "platform", "imports-allow", "index-url",
			       "refresh-packages", "jobs", "report", "shard", "dry-run", NULL },
};

/* The requests that share a base and a tenant rule: --base's, or the
 * config's base for their runtime; tenant from each request, or the
 * config's default tenant for those without one (as the service keys them). */
struct group {
	long base; /* index in cfg.bases; -1: --base */
	int dflt_tenant;
	struct udfb_batch sub; /* copies of the batch's items */
	size_t *idx; /* their places in the batch */
};

/* Which group an item goes to; -1 (failed, said in it->error) when the
 * config has no base for its runtime. */
static long group_of(struct udfb_cli_common *c, struct udfb_batch_item *it, int *dflt_tenant)
{
	struct udfb_request req;
	struct udfb_err e = UDFB_ERR_INIT;
	const char *rv = "";
	int parsed = udfb_request_parse_json(&req, it->json, it->len, &e) == 0;
	udfb_err_clear(&e); /* a request that does not parse fails in its build, saying why */
	if (parsed)
		rv = req.spec.runtime_version;
	*dflt_tenant = !it->tenant && (!parsed || !req.tenant) && c->cfg.default_tenant;
	long base = -1;
	if (!c->base) {
		const struct udfb_runtime_base *rb = udfb_config_base_for(&c->cfg, rv);
		char *ref = NULL;
		if (rb)
			base = rb - c->cfg.bases;
		else if (udfb_cli_base_ref(c, rv, &ref, &e) < 0) {
			it->failed = 1;
			it->error = udfb_strdup(e.msg);
			udfb_err_clear(&e);
			base = -2;
		}
		free(ref);
	}
	if (parsed)
		udfb_request_free(&req);
	return base;
}

static struct group *group_for(struct group *g, size_t *n, long base, int dflt_tenant, size_t cap)
{
	for (size_t k = 0; k < *n; k++)
		if (g[k].base == base && g[k].dflt_tenant == dflt_tenant)
			return &g[k];
	g[*n] = (struct group){ .base = base, .dflt_tenant = dflt_tenant };
	g[*n].sub.items = udfb_calloc(cap, sizeof(struct udfb_batch_item));
	g[*n].idx = udfb_calloc(cap, sizeof(size_t));
	return &g[(*n)++];
}

static size_t make_groups(struct udfb_cli_common *c, struct udfb_batch *b, struct group *g)
{
	size_t n = 0;
	for (size_t k = 0; k < b->n; k++) {
		int dflt = 0;
		long base = group_of(c, &b->items[k], &dflt);
		if (base == -2)
			continue;
		struct group *gr = group_for(g, &n, base, dflt, b->n);
		if (dflt && !b->items[k].tenant)
			b->items[k].tenant = udfb_strdup(c->cfg.default_tenant);
		gr->idx[gr->sub.n] = k;
		gr->sub.items[gr->sub.n++] = b->items[k];
	}
	return n;
}

/* One group: resolve its base, then keys only or builds. */
static int run_group(struct udfb_cli_common *c, struct group *g, struct progress *p, int jobs, struct udfb_err *err)
{
	char *ref = NULL;
	struct udfb_base base = { 0 };
	int rc = udfb_cli_base_ref(c, g->base >= 0 ? c->cfg.bases[g->base].runtime : "", &ref, err);
	if (rc == 0)
		rc = udfb_base_resolve(&base, ref, c->cfg.platform, NULL, err);
	struct udfb_build_opts o = { .store_dir = udfb_cli_store(c),
				     .base = ref,
				     .dest = c->cfg.dest,
				     .salt = c->cfg.salt,
				     .platform = c->cfg.platform,
				     .fetch = &c->cfg.fetch,
				     .packages = &c->cfg.packages,
				     .base_resolved = &base,
				     .tenant = g->dflt_tenant ? c->cfg.default_tenant : NULL };
	if (rc == 0 && c->dry_run)
		udfb_batch_keys(&g->sub, &o, err);
	else if (rc == 0)
		udfb_batch_run(&g->sub, &o, jobs, on_done, p);
	p->offset += g->sub.n;
	udfb_base_free(&base);
	free(ref);
	return rc;
}

/* Every group in turn; results go back to the batch's items in order. */
static int run_groups(struct udfb_cli_common *c, struct udfb_batch *b, struct progress *p, int jobs,
		      struct udfb_err *err)
{
	struct group *g = udfb_calloc(2 * (c->cfg.n_bases + 1), sizeof(*g));
	size_t n = make_groups(c, b, g);
	int rc = 0;
	for (size_t k = 0; k < n; k++) {
		if (rc == 0)
			rc = run_group(c, &g[k], p, jobs, err);
		for (size_t j = 0; j < g[k].sub.n; j++)
			b->items[g[k].idx[j]] = g[k].sub.items[j];
		free(g[k].sub.items);
		free(g[k].idx);
	}
	free(g);
	return rc;
}

static int prebuild(struct udfb_cli_common *c, struct udfb_err *err)
{
	size_t si = 0, sn = 1;
	int jobs = c->jobs ? atoi(c->jobs) : 2;
	int have_base = c->base || c->cfg.n_bases;
	if (!have_base || (!udfb_cli_dest(c) && !c->dry_run))
		return udfb_err_set(err, UDFB_E_INVALID, "prebuild: %s is required", have_base ? "--dest" : "--base");
	if (jobs < 1 || jobs > 256)
		return udfb_err_set(err, UDFB_E_INVALID, "--jobs: '%s' is not a number from 1 to 256", c->jobs);
	if (parse_shard(c->shard, &si, &sn, err) < 0)
		return -1;
	struct udfb_batch b;
	if (udfb_batch_load(&b, c->positionals, (size_t)c->n_positionals, err) < 0)
		return -1;
	udfb_batch_shard(&b, si, sn);
	struct progress p = { .total = b.n, .t0 = udfb_now_s(), .tty = isatty(STDERR_FILENO) };
	int rc = 0;
	if (c->dry_run) {
		rc = run_groups(c, &b, &p, jobs, err);
		if (rc == 0)
			dry_run(&b);
	} else {
		/* index.json is derived at the end of the batch, and every
		 * 10 s during a long one so readers see its progress. */
		rc = udfb_oci_autosync_start(2000, 10000, err);
		if (rc == 0) {
			rc = run_groups(c, &b, &p, jobs, err);
			struct udfb_err e = UDFB_ERR_INIT;
			int rs = udfb_oci_autosync_stop(rc == 0 ? err : &e);
			udfb_err_clear(&e);
			rc = rc < 0 ? rc : rs;
		}
		/* Those no group took (a runtime without a base) never ran:
		 * every item that ran took some time. */
		for (size_t k = 0; k < b.n; k++)
			if (b.items[k].failed && !b.items[k].seconds) {
				p.failed++;
				on_done(&b.items[k], 0, &(struct progress){ .tty = 0 });
			}
		double secs = udfb_now_s() - p.t0;
		fprintf(stderr, "%zu requests: %zu cached, %zu built, %zu failed in %.1f s\n", p.total, p.hits, p.built,
			p.failed, secs);
		if (rc == 0 && c->report)
			rc = write_report(c->report, &b, &p, secs, err);
		if (rc == 0 && p.failed)
			rc = 1;
	}
	udfb_batch_free(&b);
	return rc;
}

int udfb_cmd_prebuild(int argc, char **argv)
{
	return udfb_cli_run(&udfb_cli_prebuild_spec, argc, argv, prebuild);
}
