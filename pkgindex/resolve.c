/* The package resolver: see resolve.h.  Chronological backtracking: the
 * requirements wait in a FIFO queue (top-level ones first, so a UDF's own
 * pins are chosen before what its dependencies allow); a project meeting
 * its first requirement gets a choice point trying its candidates newest
 * first; a later requirement a chosen version does not meet fails that
 * branch.  Each requirement carries the chain that led to it, for the
 * message when every branch fails. */
#include "pkgindex/resolve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "python/pep508.h"
#include "pkgindex/pkgindex.h"

struct dep {
	struct udfb_requirement req;
	struct udfb_pyspec *spec;
};

struct cand {
	struct udfb_pyver v;
	const struct udfb_pkgfile *file; /* best non-yanked wheel */
	const struct udfb_pkgfile *yanked_file; /* best yanked wheel */
	int rank, yanked_rank;
	struct dep *deps; /* NULL until loaded */
	size_t n_deps;
};

struct project {
	char *name;
	struct cand *c; /* newest first */
	size_t n;
	size_t n_files, n_sdists;
	const char *some_sdist;
};

struct preq {
	const struct dep *dep;
	const char *via; /* the chain that led here, ending in this requirement */
};

struct pin {
	struct project *p;
	struct cand *c;
	char *const *extras;
	size_t n_extras;
	const char *via; /* of the requirement that chose it */
};

struct rs {
	const struct udfb_resolve_opts *o;
	struct project **projects;
	size_t n_projects;
	struct pin *pins;
	size_t n_pins;
	struct preq *queue;
	size_t qhead, qlen, qcap;
	void **arena; /* strings and arrays kept until the end */
	size_t n_arena;
	struct dep *roots;
	size_t n_roots;
	long steps;
	char *failure; /* the first dead end met, for the final message */
	struct udfb_err *err;
};

static void *keep(struct rs *s, void *p)
{
	s->arena = udfb_realloc(s->arena, (s->n_arena + 1) * sizeof(*s->arena));
	s->arena[s->n_arena++] = p;
	return p;
}

static void note_failure(struct rs *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note_failure(struct rs *s, const char *fmt, ...)
{
	if (s->failure)
		return;
	va_list ap;
	va_start(ap, fmt);
	s->failure = udfb_vasprintf(fmt, ap);
	va_end(ap);
}

/* ---- candidates ---- */

static int cmp_cand_desc(const void *a, const void *b)
{
	return udfb_pyver_cmp(&((const struct cand *)b)->v, &((const struct cand *)a)->v);
}

static int python_ok(const struct rs *s, const struct udfb_pkgfile *f)
{
	if (!f->requires_python)
		return 1;
	struct udfb_pyspec *sp = NULL;
	struct udfb_pyver py;
	struct udfb_err e = UDFB_ERR_INIT;
	int ok = udfb_pyspec_parse(&sp, f->requires_python, &e) == 0 &&
		 udfb_pyver_parse(&py, s->o->env->python_full_version, &e) == 0 && udfb_pyspec_contains(sp, &py, 1);
	udfb_err_clear(&e); /* a requires-python that does not parse: the file is skipped, as pip does */
	udfb_pyspec_free(sp);
	return ok;
}

static struct cand *cand_for(struct project *p, const struct udfb_pyver *v)
{
	for (size_t k = 0; k < p->n; k++)
		if (udfb_pyver_cmp(&p->c[k].v, v) == 0)
			return &p->c[k];
	p->c = udfb_realloc(p->c, (p->n + 1) * sizeof(*p->c));
	struct cand *c = memset(&p->c[p->n++], 0, sizeof(*c));
	c->v = *v;
	return c;
}

static int better(const struct udfb_pkgfile *cur, int cur_rank, const struct udfb_pkgfile *f, int rank)
{
	return !cur || rank < cur_rank || (rank == cur_rank && strcmp(f->filename, cur->filename) < 0);
}

static void add_file(struct rs *s, struct project *p, const struct udfb_pkgfile *f)
{
	size_t len = strlen(f->filename);
	if (len < 4 || strcmp(f->filename + len - 4, ".whl") != 0) {
		p->n_sdists++;
		p->some_sdist = f->filename;
		return;
	}
	struct udfb_wheelname w;
	struct udfb_err e = UDFB_ERR_INIT;
	struct udfb_pyver v;
	if (udfb_wheelname_parse(&w, f->filename, &e) < 0) {
		udfb_debug("%s: skipped: %s", p->name, e.msg);
		udfb_err_clear(&e);
		return;
	}
	int rank = strcmp(w.name, p->name) == 0 ? udfb_pytags_rank(s->o->tags, &w) : -1;
	if (rank >= 0 && python_ok(s, f) && udfb_pyver_parse(&v, w.version, &e) == 0) {
		struct cand *c = cand_for(p, &v);
		if (!f->yanked && better(c->file, c->rank, f, rank)) {
			c->file = f;
			c->rank = rank;
		} else if (f->yanked && better(c->yanked_file, c->yanked_rank, f, rank)) {
			c->yanked_file = f;
			c->yanked_rank = rank;
		}
	}
	udfb_err_clear(&e);
	udfb_wheelname_free(&w);
}

static int get_project(struct project **out, struct rs *s, const char *name)
{
	for (size_t k = 0; k < s->n_projects; k++)
		if (strcmp(s->projects[k]->name, name) == 0)
			return *out = s->projects[k], 0;
	const struct udfb_pkgproject *files = NULL;
	if (udfb_pkgindex_project(&files, s->o->index, name, s->o->deadline_ms, s->err) < 0)
		return -1;
	struct project *p = udfb_calloc(1, sizeof(*p));
	p->name = udfb_strdup(name);
	p->n_files = files->n_files;
	for (size_t k = 0; k < files->n_files; k++)
		add_file(s, p, &files->files[k]);
	if (p->n)
		qsort(p->c, p->n, sizeof(*p->c), cmp_cand_desc);
	s->projects = udfb_realloc(s->projects, (s->n_projects + 1) * sizeof(*s->projects));
	s->projects[s->n_projects++] = p;
	*out = p;
	return 0;
}

/* ---- dependencies ---- */

static int dep_parse(struct dep *d, const char *text, struct udfb_err *err)
{
	memset(d, 0, sizeof(*d));
	if (udfb_req_parse(&d->req, text, err) < 0)
		return -1;
	if (udfb_pyspec_parse(&d->spec, d->req.specifier, err) < 0) {
		udfb_req_free(&d->req);
		return -1;
	}
	return 0;
}

static void deps_free(struct dep *d, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		udfb_req_free(&d[k].req);
		udfb_pyspec_free(d[k].spec);
	}
	free(d);
}

/* The metadata must describe the file chosen: a wheel whose METADATA names
 * another project or version is refused rather than trusted. */
static int check_meta(const struct udfb_pkgmeta *m, const struct project *p, const struct cand *c, struct udfb_err *err)
{
	cleanup_free char *name = NULL;
	udfb_pep503_normalize(&name, m->name);
	struct udfb_pyver v;
	if (strcmp(name, p->name) != 0 || udfb_pyver_parse(&v, m->version, err) < 0 || udfb_pyver_cmp(&v, &c->v) != 0) {
		udfb_err_clear(err);
		return udfb_err_set(err, UDFB_E_INVALID, "%s %s: its metadata names %s %s", p->name, c->v.text, m->name,
				    m->version);
	}
	return 0;
}

static int load_deps(struct rs *s, struct project *p, struct cand *c, const struct udfb_pkgfile *f)
{
	if (c->deps)
		return 0;
	cleanup_free char *text = NULL;
	size_t len = 0;
	struct udfb_pkgmeta m;
	if (udfb_pkgindex_metadata(&text, &len, s->o->index, f, s->o->deadline_ms, s->err) < 0)
		return -1;
	if (udfb_pkgmeta_parse(&m, text, len, s->err) < 0)
		return udfb_err_wrap(s->err, "%s %s: METADATA", p->name, c->v.text);
	int rc = check_meta(&m, p, c, s->err);
	c->deps = udfb_calloc(m.n_requires_dist + 1, sizeof(*c->deps));
	for (size_t k = 0; rc == 0 && k < m.n_requires_dist; k++) {
		rc = dep_parse(&c->deps[k], m.requires_dist[k], s->err);
		if (rc < 0)
			udfb_err_wrap(s->err, "%s %s: Requires-Dist '%s'", p->name, c->v.text, m.requires_dist[k]);
		else
			c->n_deps++;
	}
	udfb_pkgmeta_free(&m);
	return rc;
}

static int push(struct rs *s, const struct dep *d, const char *via)
{
	if (s->qlen == s->qcap) {
		s->qcap = s->qcap ? s->qcap * 2 : 64;
		s->queue = udfb_realloc(s->queue, s->qcap * sizeof(*s->queue));
	}
	s->queue[s->qlen++] = (struct preq){ .dep = d, .via = via };
	return 0;
}

/* Queue the dependencies of a chosen version whose markers hold for the
 * extras asked of it. */
static int push_deps(struct rs *s, const struct pin *pin)
{
	for (size_t k = 0; k < pin->c->n_deps; k++) {
		const struct dep *d = &pin->c->deps[k];
		int on = d->req.marker ? udfb_marker_eval(d->req.marker, s->o->env, pin->extras, pin->n_extras, s->err)
				       : 1;
		if (on < 0)
			return udfb_err_wrap(s->err, "%s %s: Requires-Dist '%s'", pin->p->name, pin->c->v.text,
					     d->req.canonical);
		if (!on)
			continue;
		char *via = udfb_asprintf("%s -> %s %s requires %s", pin->via, pin->p->name, pin->c->v.text,
					  d->req.canonical);
		push(s, d, keep(s, via));
	}
	return 0;
}

/* ---- search ---- */

static struct pin *find_pin(struct rs *s, const char *name)
{
	for (size_t k = 0; k < s->n_pins; k++)
		if (strcmp(s->pins[k].p->name, name) == 0)
			return &s->pins[k];
	return NULL;
}

static int has_extra(char *const *v, size_t n, const char *e)
{
	for (size_t k = 0; k < n; k++)
		if (strcmp(v[k], e) == 0)
			return 1;
	return 0;
}

/* A requirement met by an earlier choice: the version must satisfy it, and
 * extras it adds bring their dependencies in. */
static int check_pinned(struct rs *s, struct pin *pin, const struct preq *q)
{
	if (!udfb_pyspec_contains(q->dep->spec, &pin->c->v, 1)) {
		note_failure(s, "%s %s was chosen for [%s], but [%s] needs %s%s", pin->p->name, pin->c->v.text,
			     pin->via, q->via, pin->p->name, q->dep->req.specifier);
		return 0;
	}
	size_t extra = 0;
	for (size_t k = 0; k < q->dep->req.n_extras; k++)
		extra += !has_extra(pin->extras, pin->n_extras, q->dep->req.extras[k]);
	if (!extra)
		return 1;
	char **all = keep(s, udfb_calloc(pin->n_extras + extra, sizeof(char *)));
	memcpy(all, pin->extras, pin->n_extras * sizeof(char *));
	size_t n = pin->n_extras;
	for (size_t k = 0; k < q->dep->req.n_extras; k++)
		if (!has_extra(all, n, q->dep->req.extras[k]))
			all[n++] = q->dep->req.extras[k];
	pin->extras = all;
	pin->n_extras = n;
	return push_deps(s, pin) < 0 ? -1 : 1;
}

/* PEP 592: a yanked file is taken only by a requirement pinning its
 * version exactly. */
static int pins_exactly(const struct dep *d)
{
	const char *s = d->req.specifier;
	return (strncmp(s, "==", 2) == 0 || strncmp(s, "===", 3) == 0) && !strchr(s, ',') && !strstr(s, ".*");
}

static const struct udfb_pkgfile *usable_file(const struct cand *c, const struct dep *d)
{
	return c->file ? c->file : pins_exactly(d) ? c->yanked_file : NULL;
}

/* The versions q allows, newest first: pre-releases only when the
 * specifier names one or nothing else matches (as pip does). */
static size_t matching(struct cand **out, const struct project *p, const struct dep *d)
{
	size_t n = 0, finals = 0;
	for (size_t k = 0; k < p->n; k++)
		if (usable_file(&p->c[k], d) && udfb_pyspec_contains(d->spec, &p->c[k].v, 1)) {
			out[n++] = &p->c[k];
			finals += !udfb_pyver_is_prerelease(&p->c[k].v);
		}
	if (finals == 0 || finals == n || udfb_pyspec_wants_prereleases(d->spec))
		return n;
	size_t m = 0;
	for (size_t k = 0; k < n; k++)
		if (!udfb_pyver_is_prerelease(&out[k]->v))
			out[m++] = out[k];
	return m;
}

static void note_no_candidate(struct rs *s, const struct project *p, const struct preq *q)
{
	if (p->n == 0 && p->n_sdists && p->n_sdists == p->n_files) {
		note_failure(s, "%s: only source distributions (%s); udf-builder installs wheels only [%s]", p->name,
			     p->some_sdist, q->via);
	} else if (p->n == 0) {
		cleanup_free char *tags = udfb_pytags_describe(s->o->tags);
		note_failure(s, "%s: none of its %zu files is a wheel for this runtime (looked for %s) [%s]", p->name,
			     p->n_files, tags, q->via);
	} else {
		char have[256] = "";
		for (size_t k = 0; k < p->n && strlen(have) < 200; k++)
			snprintf(have + strlen(have), sizeof(have) - strlen(have), "%s%s", k ? ", " : "",
				 p->c[k].v.text);
		note_failure(s, "%s: no version matches %s%s (versions with a wheel for this runtime: %s) [%s]",
			     p->name, p->name, q->dep->req.specifier, have, q->via);
	}
}

static int solve(struct rs *s);

static int try_cand(struct rs *s, struct project *p, struct cand *c, const struct preq *q)
{
	if (++s->steps > UDFB_RESOLVE_MAX_STEPS)
		return udfb_err_set(s->err, UDFB_E_EXHAUSTED, "gave up after trying %d candidates (at %s)",
				    UDFB_RESOLVE_MAX_STEPS, q->via);
	if (s->n_pins >= UDFB_RESOLVE_MAX_PACKAGES)
		return udfb_err_set(s->err, UDFB_E_EXHAUSTED, "more than %d packages", UDFB_RESOLVE_MAX_PACKAGES);
	if (load_deps(s, p, c, usable_file(c, q->dep)) < 0)
		return -1;
	struct pin *pin = &s->pins[s->n_pins++];
	*pin = (struct pin){
		.p = p, .c = c, .extras = q->dep->req.extras, .n_extras = q->dep->req.n_extras, .via = q->via
	};
	udfb_debug("resolve: try %s %s for %s", p->name, c->v.text, q->via);
	if (push_deps(s, pin) < 0)
		return -1;
	return solve(s);
}

static int choose(struct rs *s, const struct preq *q)
{
	struct project *p = NULL;
	if (get_project(&p, s, q->dep->req.name) < 0)
		return udfb_err_wrap(s->err, "%s", q->via);
	struct cand **cs = udfb_calloc(p->n + 1, sizeof(*cs));
	size_t n = matching(cs, p, q->dep);
	if (n == 0)
		note_no_candidate(s, p, q);
	/* Backtracking restores the pins (extras included) and the queue. */
	size_t n_pins = s->n_pins, qhead = s->qhead, qlen = s->qlen;
	struct pin *saved = udfb_malloc((n_pins + 1) * sizeof(*saved));
	memcpy(saved, s->pins, n_pins * sizeof(*saved));
	int rc = 0;
	for (size_t k = 0; k < n && rc == 0; k++) {
		rc = try_cand(s, p, cs[k], q);
		if (rc == 0) {
			memcpy(s->pins, saved, n_pins * sizeof(*saved));
			s->n_pins = n_pins;
			s->qhead = qhead;
			s->qlen = qlen;
		}
	}
	free(saved);
	free(cs);
	return rc;
}

/* 1: every queued requirement is met; 0: a dead end; -1: an error. */
static int solve(struct rs *s)
{
	while (s->qhead < s->qlen) {
		const struct preq q = s->queue[s->qhead++];
		struct pin *pin = find_pin(s, q.dep->req.name);
		if (!pin)
			return choose(s, &q);
		int rc = check_pinned(s, pin, &q);
		if (rc <= 0)
			return rc;
	}
	return 1;
}

/* ---- entry points ---- */

static int cmp_lock_pkg(const void *a, const void *b)
{
	return strcmp(((const struct udfb_lock_pkg *)a)->name, ((const struct udfb_lock_pkg *)b)->name);
}

static void make_lock(struct udfb_lock *out, const struct rs *s)
{
	out->pkgs = udfb_calloc(s->n_pins + 1, sizeof(*out->pkgs));
	out->n = s->n_pins;
	for (size_t k = 0; k < s->n_pins; k++) {
		const struct pin *p = &s->pins[k];
		const struct udfb_pkgfile *f = p->c->file ? p->c->file : p->c->yanked_file;
		struct udfb_lock_pkg *l = &out->pkgs[k];
		l->name = udfb_strdup(p->p->name);
		l->version = udfb_strdup(p->c->v.text);
		l->filename = udfb_strdup(f->filename);
		memcpy(l->sha256, f->sha256, sizeof(l->sha256));
		l->size = f->size;
	}
	qsort(out->pkgs, out->n, sizeof(*out->pkgs), cmp_lock_pkg);
}

static int add_roots(struct rs *s, char *const *reqs, size_t n)
{
	s->roots = udfb_calloc(n + 1, sizeof(*s->roots));
	for (size_t k = 0; k < n; k++) {
		if (dep_parse(&s->roots[k], reqs[k], s->err) < 0)
			return udfb_err_wrap(s->err, "'%s'", reqs[k]);
		s->n_roots++;
		const struct udfb_requirement *r = &s->roots[k].req;
		int on = r->marker ? udfb_marker_eval(r->marker, s->o->env, NULL, 0, s->err) : 1;
		if (on < 0)
			return udfb_err_wrap(s->err, "'%s'", reqs[k]);
		if (on)
			push(s, &s->roots[k], r->canonical);
	}
	return 0;
}

static void rs_free(struct rs *s)
{
	for (size_t k = 0; k < s->n_projects; k++) {
		struct project *p = s->projects[k];
		for (size_t j = 0; j < p->n; j++)
			deps_free(p->c[j].deps, p->c[j].n_deps);
		free(p->c);
		free(p->name);
		free(p);
	}
	free(s->projects);
	for (size_t k = 0; k < s->n_arena; k++)
		free(s->arena[k]);
	free(s->arena);
	free(s->pins);
	free(s->queue);
	deps_free(s->roots, s->n_roots);
	free(s->failure);
}

int udfb_resolve(struct udfb_lock *out, char *const *reqs, size_t n, const struct udfb_resolve_opts *o,
		 struct udfb_err *err)
{
	memset(out, 0, sizeof(*out));
	struct rs s = { .o = o, .err = err };
	s.pins = udfb_calloc(UDFB_RESOLVE_MAX_PACKAGES + 1, sizeof(*s.pins));
	int rc = add_roots(&s, reqs, n) < 0 ? -1 : solve(&s);
	if (rc == 0)
		udfb_err_set(err, UDFB_E_INVALID, "cannot resolve: %s", s.failure ? s.failure : "no solution");
	if (rc > 0)
		make_lock(out, &s);
	udfb_info("resolve: %zu requirements -> %zu packages after %ld candidates%s", n, out->n, s.steps,
		  rc > 0 ? "" : " (failed)");
	rs_free(&s);
	return rc > 0 ? 0 : -1;
}

void udfb_lock_free(struct udfb_lock *l)
{
	for (size_t k = 0; k < l->n; k++) {
		free(l->pkgs[k].name);
		free(l->pkgs[k].version);
		free(l->pkgs[k].filename);
	}
	free(l->pkgs);
	memset(l, 0, sizeof(*l));
}
