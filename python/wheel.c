/* Installing a wheel as `pip install --target T` would (see wheel.h).  Two
 * passes over the zip's central directory: the first checks every name,
 * type and size and reads WHEEL, RECORD and entry_points.txt, so a bad
 * wheel is refused before a byte is unpacked; the second (wheel_extract.c)
 * streams the files out, each checked against RECORD. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <libdeflate.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/fsutil.h"
#include "image/layer.h"
#include "python/pep508.h"
#include "python/wheel.h"
#include "python/wheel_internal.h"

static int refuse(struct udfb_winst *in, const char *entry, const char *why, struct udfb_err *err)
{
	return udfb_err_set(err, UDFB_E_INVALID, "wheel '%s': entry '%.300s': %s", in->path, entry, why);
}

/* Keep the dist-info files the plan needs, bounded. */
static int keep_distinfo_file(struct udfb_winst *in, struct udfb_wzip *z, const struct udfb_wentry *e, size_t dl,
			      struct udfb_err *err)
{
	const char *rest = e->name + dl + 1;
	if (strcmp(rest, "WHEEL") == 0 && !in->wheel_txt)
		return udfb_wzip_read_small(z, e, &in->wheel_txt, &in->wheel_len, WHEEL_MAX_WHEEL_FILE, err);
	if (strcmp(rest, "RECORD") == 0 && !in->record_txt)
		return udfb_wzip_read_small(z, e, &in->record_txt, &in->record_len, WHEEL_MAX_RECORD, err);
	if (strcmp(rest, "entry_points.txt") == 0 && !in->ep_txt)
		return udfb_wzip_read_small(z, e, &in->ep_txt, &in->ep_len, WHEEL_MAX_ENTRY_POINTS, err);
	return 0;
}

static int note_file(struct udfb_winst *in, const struct udfb_wentry *e, struct udfb_err *err)
{
	const char *name = e->name;
	if ((in->n_files & (in->n_files - 1)) == 0)
		in->files = udfb_realloc(in->files, (in->n_files ? 2 * in->n_files : 1) * sizeof(*in->files));
	struct udfb_wfile *f = &in->files[in->n_files++];
	memset(f, 0, sizeof(*f));
	f->zipname = udfb_strdup(name);
	f->size = e->size;
	/* pip: a regular file with any x bit in the zip's unix mode. */
	f->exec = (e->perm & 0111) != 0;
	if (!udfb_strmap_put(&in->by_zip, f->zipname, in->n_files - 1))
		return refuse(in, name, "listed twice in the zip", err);
	if (f->size < 0 || f->size > in->limit - in->total)
		return udfb_err_set(err, UDFB_E_INVALID, "wheel '%s': its files unpack to more than %lld bytes (%s)",
				    in->path, in->limit,
				    in->limit < UDFB_WHEEL_MAX_UNPACKED ? "what is left of packages-max-unpacked"
									: "the limit per wheel");
	in->total += f->size;
	in->declared += f->size;
	return 0;
}

/* The zip stays open for the extract pass: libzip reads a central
 * directory of a thousand entries in milliseconds. */
static int scan(struct udfb_winst *in, struct udfb_err *err)
{
	struct udfb_wzip *z = &in->zip;
	if (udfb_wzip_open(z, in->path, err) < 0)
		return -1;
	struct udfb_wentry e;
	int rc;
	while ((rc = udfb_wzip_next(z, &e, err)) == 1) {
		size_t dl = udfb_wheel_distinfo_len(e.name);
		if (dl && (rc = udfb_wheel_note_distinfo(in->path, &in->distinfo, e.name, dl, err)) < 0)
			break;
		if (e.is_dir)
			continue; /* pip makes directories for files only */
		if ((rc = note_file(in, &e, err)) < 0 || (dl && (rc = keep_distinfo_file(in, z, &e, dl, err)) < 0))
			break;
	}
	in->total = 0; /* counted again from the bytes themselves */
	return rc;
}

/* ---- WHEEL, the project name ---- */

static int take_wheel_version(void *ctx, const char *name, const char *value, struct udfb_err *err)
{
	(void)err;
	char **v = ctx;
	if (!*v && strcasecmp(name, "Wheel-Version") == 0)
		*v = udfb_strdup(value);
	return 0;
}

/* Wheel-Version "M.m": pip refuses a major version it does not know. */
static int check_wheel_file(struct udfb_winst *in, struct udfb_err *err)
{
	if (!in->wheel_txt)
		return udfb_err_set(err, UDFB_E_INVALID, "wheel '%s': no %s/WHEEL", in->path, in->distinfo);
	cleanup_free char *version = NULL;
	if (udfb_headers_each(in->wheel_txt, in->wheel_len, "WHEEL", take_wheel_version, &version, err) < 0)
		return udfb_err_wrap(err, "wheel '%s'", in->path);
	if (!version)
		return udfb_err_set(err, UDFB_E_INVALID, "wheel '%s': WHEEL has no Wheel-Version", in->path);
	const char *c = version;
	long major = 0;
	int ok = *c >= '0' && *c <= '9';
	for (; *c >= '0' && *c <= '9' && major < 1000; c++)
		major = major * 10 + (*c - '0');
	while (ok && *c == '.' && c[1] >= '0' && c[1] <= '9')
		for (c++; *c >= '0' && *c <= '9'; c++)
			;
	if (!ok || *c)
		return udfb_err_set(err, UDFB_E_INVALID, "wheel '%s': bad Wheel-Version '%.40s'", in->path, version);
	if (major >= 2)
		return udfb_err_set(err, UDFB_E_INVALID, "wheel '%s': Wheel-Version %.40s is not supported (1.x only)",
				    in->path, version);
	return 0;
}

/* "<name>-<version>.dist-info": the name names the headers directory.  When
 * the wheel's file name is one, both must name one project. */
static int find_project(struct udfb_winst *in, struct udfb_err *err)
{
	if (!in->distinfo)
		return udfb_err_set(err, UDFB_E_INVALID, "wheel '%s': no .dist-info directory", in->path);
	size_t n = strcspn(in->distinfo, "-");
	if (n == 0 || !in->distinfo[n] ||
	    strspn(in->distinfo, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._") < n ||
	    in->distinfo[0] == '.')
		return udfb_err_set(err, UDFB_E_INVALID, "wheel '%s': '%s' is not <name>-<version>.dist-info", in->path,
				    in->distinfo);
	in->project = udfb_strndup(in->distinfo, n);
	const char *base = strrchr(in->path, '/');
	base = base ? base + 1 : in->path;
	struct udfb_wheelname wn;
	struct udfb_err ignore = UDFB_ERR_INIT;
	if (udfb_wheelname_parse(&wn, base, &ignore) < 0) {
		udfb_err_clear(&ignore); /* a cache path, named by its hash */
		return 0;
	}
	cleanup_free char *norm = NULL;
	udfb_pep503_normalize(&norm, in->project);
	int same = strcmp(norm, wn.name) == 0;
	udfb_wheelname_free(&wn);
	if (!same)
		return udfb_err_set(err, UDFB_E_INVALID,
				    "wheel '%s': '%s' does not belong to the project the file name names", in->path,
				    in->distinfo);
	return 0;
}

/* ---- where each file goes ---- */

static int has_segment(const char *path, const char *seg)
{
	size_t n = strlen(seg);
	for (const char *p = path;;) {
		if (strncmp(p, seg, n) == 0 && (p[n] == '/' || p[n] == '\0'))
			return 1;
		p = strchr(p, '/');
		if (!p)
			return 0;
		p++;
	}
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

static char *join3(const char *a, const char *b, const char *c)
{
	return udfb_asprintf("%s%s%s", a, b, c);
}

/* <name>.data/<scheme>/<path>, pip's home scheme below the target. */
static int map_data(struct udfb_winst *in, struct udfb_wfile *f, const char *slash, struct udfb_err *err)
{
	const char *key = slash ? slash + 1 : NULL;
	const char *rest = key ? strchr(key, '/') : NULL;
	if (!rest)
		return refuse(in, f->zipname, ".data contents must be <scheme>/<path>", err);
	size_t kl = (size_t)(rest - key);
	rest++;
	if ((kl == 7 && !strncmp(key, "purelib", 7)) || (kl == 7 && !strncmp(key, "platlib", 7)) ||
	    (kl == 4 && !strncmp(key, "data", 4))) {
		f->dest = udfb_strdup(rest);
	} else if (kl == 7 && !strncmp(key, "scripts", 7)) {
		const char *base = strrchr(rest, '/');
		if (udfb_entry_points_wraps(&in->eps, base ? base + 1 : rest))
			return 0; /* setuptools' wrapper: pip writes its own script */
		f->dest = join3("bin/", rest, "");
		f->script = 1;
	} else if (kl == 7 && !strncmp(key, "headers", 7)) {
		cleanup_free char *dir = join3("include/python/", in->project, "/");
		f->dest = join3(dir, rest, "");
	} else {
		return refuse(in, f->zipname, "unknown .data scheme (purelib, platlib, scripts, headers, data)", err);
	}
	return 0;
}

static int map_file(struct udfb_winst *in, struct udfb_wfile *f, struct udfb_err *err)
{
	const char *name = f->zipname;
	/* Bytecode is the interpreter's business, not the wheel's. */
	if (ends_with(name, ".pyc") || has_segment(name, "__pycache__"))
		return 0;
	size_t dl = udfb_wheel_distinfo_len(name);
	if (dl) {
		const char *rest = name + dl + 1;
		if (strcmp(rest, "RECORD") == 0 || strcmp(rest, "INSTALLER") == 0)
			return 0; /* written anew */
		f->exempt = strncmp(rest, "RECORD.", 7) == 0 && (ends_with(rest, ".jws") || ends_with(rest, ".p7s"));
	}
	const char *slash = strchr(name, '/');
	size_t top = slash ? (size_t)(slash - name) : strlen(name);
	if (top > 5 && memcmp(name + top - 5, ".data", 5) == 0)
		return map_data(in, f, slash, err);
	f->dest = udfb_strdup(name);
	return 0;
}

static int check_record(struct udfb_winst *in, const struct udfb_wfile *f, struct udfb_err *err)
{
	const struct udfb_record_row *row = udfb_record_find(&in->record, f->zipname);
	if (f->exempt)
		return 0;
	if (!row)
		return refuse(in, f->zipname, "not listed in RECORD", err);
	if (row->size < 0 || strncmp(row->hash, "sha256=", 7) != 0)
		return refuse(in, f->zipname, "RECORD gives no sha256 and size for it", err);
	return 0;
}

static int claim_dest(struct udfb_winst *in, const char *dest, const char *what, struct udfb_layer_writer *w, size_t id,
		      struct udfb_err *err)
{
	if (!udfb_strmap_put(&in->by_dest, dest, id))
		return refuse(in, what, "installed twice (to the same path)", err);
	cleanup_free char *full = join3(in->o->target, "/", dest);
	if (udfb_layer_contains(w, full))
		return udfb_err_set(err, UDFB_E_INVALID, "wheel '%s': '%s' is already in the layer", in->path, full);
	/* Nor may a file of the layer be where this path needs a directory. */
	for (size_t k = 0; full[k]; k++) {
		if (full[k] != '/')
			continue;
		full[k] = '\0';
		int kind = udfb_layer_contains(w, full);
		full[k] = '/';
		if (kind == 1)
			return udfb_err_set(err, UDFB_E_INVALID,
					    "wheel '%s': '%.*s' is a file in the layer, '%s' needs a directory",
					    in->path, (int)k, full, dest);
		if (kind == 0)
			break; /* no deeper parent can be there */
	}
	return 0;
}

/* No installed path may be another's parent directory. */
static int check_parents(struct udfb_winst *in, const char *dest, struct udfb_err *err)
{
	for (const char *s = strchr(dest, '/'); s; s = strchr(s + 1, '/'))
		if (udfb_strmap_getn(&in->by_dest, dest, (size_t)(s - dest), NULL))
			return udfb_err_set(err, UDFB_E_INVALID, "wheel '%s': '%.*s' is both a file and a directory",
					    in->path, (int)(s - dest), dest);
	return 0;
}

static struct udfb_wfile *add_gen(struct udfb_winst *in, char *dest)
{
	in->gen = udfb_realloc(in->gen, (in->n_gen + 1) * sizeof(*in->gen));
	struct udfb_wfile *g = &in->gen[in->n_gen++];
	memset(g, 0, sizeof(*g));
	g->dest = dest;
	return g;
}

static int plan(struct udfb_winst *in, struct udfb_layer_writer *w, struct udfb_err *err)
{
	/* Generated paths first: the wheel's own files may not take them. */
	add_gen(in, join3(in->distinfo, "/INSTALLER", ""));
	for (size_t k = 0; k < in->eps.n; k++)
		add_gen(in, join3("bin/", in->eps.v[k].name, ""))->exec = 1;
	add_gen(in, join3(in->distinfo, "/RECORD", ""));
	for (size_t k = 0; k < in->n_gen; k++)
		if (claim_dest(in, in->gen[k].dest, in->gen[k].dest, w, k, err) < 0)
			return -1;
	for (size_t k = 0; k < in->n_files; k++) {
		struct udfb_wfile *f = &in->files[k];
		if (map_file(in, f, err) < 0)
			return -1;
		if (f->dest && (check_record(in, f, err) < 0 || claim_dest(in, f->dest, f->zipname, w, k, err) < 0))
			return -1;
	}
	for (size_t k = 0; k < in->n_files; k++)
		if (in->files[k].dest && check_parents(in, in->files[k].dest, err) < 0)
			return -1;
	for (size_t k = 0; k < in->n_gen; k++)
		if (check_parents(in, in->gen[k].dest, err) < 0)
			return -1;
	return 0;
}

/* ---- the whole install ---- */

static int check_opts(const struct udfb_wheel_install_opts *o, struct udfb_err *err)
{
	int dir;
	struct udfb_err e = UDFB_ERR_INIT;
	if (!o->python || !o->python[0] || !o->installer || !o->tmpdir)
		return udfb_err_set(err, UDFB_E_INVALID, "wheel install: python, installer and tmpdir are required");
	if (!o->target || udfb_wheel_check_name("(install target)", o->target, &dir, &e) < 0 || dir) {
		udfb_err_clear(&e);
		return udfb_err_set(err, UDFB_E_INVALID, "install target '%s': not a relative path",
				    o->target ? o->target : "");
	}
	for (const char *s = o->python; s && *s; s++)
		if ((unsigned char)*s < 0x20)
			return udfb_err_set(err, UDFB_E_INVALID, "script interpreter: control character");
	for (const char *s = o->installer; s && *s; s++)
		if ((unsigned char)*s < 0x20)
			return udfb_err_set(err, UDFB_E_INVALID, "INSTALLER: control character");
	return 0;
}

/* One file from the packs in memory (which w owns by now). */
static int add_mem(struct udfb_layer_writer *w, const char *full, const struct udfb_wfile *f, const unsigned char *pack,
		   const unsigned char *raw, struct udfb_err *err)
{
	int exec = f->exec || f->script;
	const unsigned char *data = f->data ? f->data : pack + f->offset;
	if (f->raw_len > 0)
		return udfb_layer_add_bytes_spliced(w, full, data, (size_t)f->out_size, exec, raw + f->raw_offset,
						    (size_t)f->raw_len, f->crc, err);
	return udfb_layer_add_bytes(w, full, data, (size_t)f->out_size, exec, err);
}

static int add_to_layer(struct udfb_winst *in, struct udfb_layer_writer *w, struct udfb_err *err)
{
	/* The layer borrows the packs' bytes: w owns them from here on, even
	 * when an add below fails. */
	const unsigned char *pack = in->pack_mem.base, *raw = in->wheel_mem.base;
	if (in->mem) {
		udfb_layer_writer_keep(w, &in->pack_mem);
		udfb_layer_writer_keep(w, &in->wheel_mem);
	}
	for (size_t pass = 0; pass < 2; pass++) {
		struct udfb_wfile *v = pass ? in->gen : in->files;
		size_t n = pass ? in->n_gen : in->n_files;
		for (size_t k = 0; k < n; k++) {
			if (!v[k].dest)
				continue;
			cleanup_free char *full = join3(in->o->target, "/", v[k].dest);
			if (in->mem) {
				if (add_mem(w, full, &v[k], pack, raw, err) < 0)
					return -1;
				continue;
			}
			struct udfb_layer_splice sp = { in->raw, v[k].raw_offset, v[k].raw_len, v[k].crc };
			int exec = v[k].exec || v[k].script;
			int rc = v[k].raw_len > 0 ? udfb_layer_add_file_spliced(w, full, in->pack, v[k].offset,
										v[k].out_size, exec, &sp, err)
						  : udfb_layer_add_file_range(w, full, in->pack, v[k].offset,
									      v[k].out_size, exec, err);
			if (rc < 0)
				return -1;
		}
	}
	return 0;
}

static int install(struct udfb_winst *in, struct udfb_layer_writer *w, int *added, struct udfb_err *err)
{
	if (scan(in, err) < 0 || find_project(in, err) < 0 || check_wheel_file(in, err) < 0)
		return -1;
	if (!in->record_txt)
		return udfb_err_set(err, UDFB_E_INVALID, "wheel '%s': no %s/RECORD", in->path, in->distinfo);
	if (udfb_record_parse(&in->record, in->record_txt, in->record_len, in->path, err) < 0)
		return -1;
	if (in->ep_txt && udfb_entry_points_parse(&in->eps, in->ep_txt, in->ep_len, in->path, err) < 0)
		return -1;
	if (plan(in, w, err) < 0 || udfb_wheel_extract(in, err) < 0 || udfb_wheel_generate(in, err) < 0)
		return -1;
	*added = 1;
	return add_to_layer(in, w, err);
}

static void free_files(struct udfb_wfile *v, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		free(v[k].zipname);
		free(v[k].dest);
	}
	free(v);
}

int udfb_wheel_install(struct udfb_layer_writer *w, const char *path, const struct udfb_wheel_install_opts *o,
		       struct udfb_err *err)
{
	if (check_opts(o, err) < 0)
		return -1;
	struct udfb_winst in = { .path = path, .o = o, .pack_fd = -1, .raw_fd = -1 };
	in.limit = o->max_unpacked > 0 && o->max_unpacked < UDFB_WHEEL_MAX_UNPACKED ? o->max_unpacked
										    : UDFB_WHEEL_MAX_UNPACKED;
	/* One limit for all the wheels of a layer (a group layer holds many). */
	in.kept = (long long)udfb_layer_writer_kept(w);
	udfb_strmap_init(&in.by_zip);
	udfb_strmap_init(&in.by_dest);
	udfb_strmap_init(&in.eps.names);
	int added = 0;
	int rc = install(&in, w, &added, err);
	if (o->unpacked)
		*o->unpacked = in.total;
	/* Until the layer names it, the pack is ours to remove. */
	if (in.pack_fd >= 0)
		close(in.pack_fd);
	if (in.raw_fd >= 0)
		close(in.raw_fd);
	if (rc < 0 && !added && in.pack)
		unlink(in.pack);
	if (rc < 0 && !added && in.raw)
		unlink(in.raw);
	udfb_wzip_close(&in.zip);
	free_files(in.files, in.n_files);
	free_files(in.gen, in.n_gen);
	udfb_strmap_free(&in.by_zip);
	udfb_strmap_free(&in.by_dest);
	udfb_record_free(&in.record);
	udfb_entry_points_free(&in.eps);
	free(in.distinfo);
	free(in.project);
	free(in.wheel_txt);
	free(in.record_txt);
	free(in.ep_txt);
	free(in.pack);
	free(in.raw);
	udfb_arena_free(&in.pack_mem);
	udfb_arena_free(&in.wheel_mem);
	free(in.wbuf);
	free(in.rawbuf);
	libdeflate_free_decompressor(in.inflater);
	return rc;
}
