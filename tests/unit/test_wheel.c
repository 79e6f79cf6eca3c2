/* Wheels: METADATA out of a wheel, and installs into a layer laid out as
 * `pip install --target` lays them out.  Wheels are built here with
 * libarchive's zip writer; the layer is written and read back. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <locale.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "tmpfiles.h"
#include "common/arena.h"
#include "common/fsutil.h"
#include "common/hash.h"
#include "image/layer.h"
#include "python/wheel.h"

#define SYMLINK 01 /* flags of a test file */
#define DIR_ENTRY 02

struct wf {
	const char *name;
	const char *data; /* NULL: "" */
	int mode; /* 0: 0644 */
	int flags;
	size_t len; /* 0: strlen(data) */
};

/* RECORD variants. */
struct rec {
	int none; /* no RECORD at all */
	const char *omit; /* leave this file out */
	const char *corrupt; /* give this file a wrong hash */
	const char *badsize; /* ...or a wrong size */
};

static char tmp[] = "/tmp/udfb-wheel-XXXXXX";
/* make_wheel stores every other entry (method 0) instead of deflating it. */
static int store_every_other;

/* pip's RECORD hash, computed independently of the library's encoder:
 * OpenSSL's base64, made urlsafe, padding dropped. */
static void record_hash(char out[64], const void *data, size_t len)
{
	unsigned char md[32];
	unsigned int n;
	EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
	unsigned char b64[64];
	EVP_EncodeBlock(b64, md, 32);
	size_t k = 0;
	for (; b64[k] && b64[k] != '='; k++)
		out[k] = b64[k] == '+' ? '-' : b64[k] == '/' ? '_' : (char)b64[k];
	out[k] = '\0';
}

static size_t wf_len(const struct wf *f)
{
	return f->len ? f->len : f->data ? strlen(f->data) : 0;
}

static void zip_add(struct archive *a, const char *name, const void *data, size_t len, int mode, int flags)
{
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, name);
	if (flags & SYMLINK) {
		archive_entry_set_filetype(e, AE_IFLNK);
		archive_entry_set_symlink(e, (const char *)data);
		archive_entry_set_perm(e, 0777);
		archive_entry_set_size(e, 0);
	} else if (flags & DIR_ENTRY) {
		archive_entry_set_filetype(e, AE_IFDIR);
		archive_entry_set_perm(e, 0755);
		archive_entry_set_size(e, 0);
	} else {
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, mode ? mode : 0644);
		archive_entry_set_size(e, (la_int64_t)len);
	}
	archive_entry_set_mtime(e, 1700000000, 0);
	archive_write_header(a, e);
	if (!(flags & (SYMLINK | DIR_ENTRY)) && len)
		archive_write_data(a, data, len);
	archive_entry_free(e);
}

/* Build tmp/filename from files, with a RECORD as r says (written last,
 * in distinfo, as bdist_wheel does).  Returns the malloc'd path. */
static char *make_wheel(const char *filename, const char *distinfo, const struct wf *files, size_t n,
			const struct rec *r)
{
	char *path = udfb_path_join(tmp, filename);
	struct archive *a = archive_write_new();
	archive_write_set_format_zip(a);
	archive_write_zip_set_compression_deflate(a);
	archive_write_open_filename(a, path);
	size_t cap = 4096 + n * 200;
	char *record = calloc(1, cap);
	for (size_t k = 0; k < n; k++) {
		const struct wf *f = &files[k];
		if (store_every_other)
			(k % 2 ? archive_write_zip_set_compression_store
			       : archive_write_zip_set_compression_deflate)(a);
		zip_add(a, f->name, f->data ? f->data : "", wf_len(f), f->mode, f->flags);
		if (f->flags || (r->omit && !strcmp(r->omit, f->name)))
			continue;
		char h[64];
		record_hash(h, f->data ? f->data : "", wf_len(f));
		if (r->corrupt && !strcmp(r->corrupt, f->name))
			h[0] = h[0] == 'A' ? 'B' : 'A';
		size_t len = wf_len(f) + (r->badsize && !strcmp(r->badsize, f->name) ? 1 : 0);
		if (strchr(f->name, ',')) { /* csv quoting, quotes doubled */
			char q[512];
			size_t o = 0;
			for (const char *c = f->name; *c && o < sizeof(q) - 2; c++) {
				if (*c == '"')
					q[o++] = '"';
				q[o++] = *c;
			}
			q[o] = '\0';
			snprintf(record + strlen(record), cap - strlen(record), "\"%s\",sha256=%s,%zu\n", q, h, len);
		} else {
			snprintf(record + strlen(record), cap - strlen(record), "%s,sha256=%s,%zu\n", f->name, h, len);
		}
	}
	if (!r->none) {
		char name[256];
		snprintf(name, sizeof(name), "%s/RECORD", distinfo);
		snprintf(record + strlen(record), cap - strlen(record), "%s,,\n", name);
		zip_add(a, name, record, strlen(record), 0644, 0);
	}
	free(record);
	archive_write_close(a);
	archive_write_free(a);
	return path;
}

/* ---- the layer read back ---- */

struct lentry {
	char *path;
	int mode;
	int dir;
	char *data;
	size_t len;
};

struct lay {
	struct lentry v[4096];
	size_t n;
};

static void read_layer(struct lay *l, const char *path)
{
	l->n = 0;
	struct archive *a = archive_read_new();
	archive_read_support_filter_gzip(a);
	archive_read_support_format_tar(a);
	archive_read_open_filename(a, path, 65536);
	struct archive_entry *e;
	while (archive_read_next_header(a, &e) == ARCHIVE_OK && l->n < 4096) {
		struct lentry *x = &l->v[l->n++];
		x->path = strdup(archive_entry_pathname(e));
		x->mode = archive_entry_perm(e);
		x->dir = archive_entry_filetype(e) == AE_IFDIR;
		x->len = (size_t)archive_entry_size(e);
		x->data = malloc(x->len + 1);
		la_ssize_t got = archive_read_data(a, x->data, x->len);
		x->data[got > 0 ? got : 0] = '\0';
	}
	archive_read_free(a);
}

static void free_layer(struct lay *l)
{
	for (size_t k = 0; k < l->n; k++) {
		free(l->v[k].path);
		free(l->v[k].data);
	}
	l->n = 0;
}

static const struct lentry *lget(const struct lay *l, const char *path)
{
	for (size_t k = 0; k < l->n; k++)
		if (!strcmp(l->v[k].path, path))
			return &l->v[k];
	return NULL;
}

static const struct udfb_wheel_install_opts opts = {
	.target = "app/packages", .python = "/usr/bin/env python3", .tmpdir = tmp, .installer = "udf-builder"
};

/* Install path into a fresh layer, write it and read it back. */
static int install(struct lay *l, const char *path, struct udfb_err *err)
{
	struct udfb_layer_writer *w;
	udfb_layer_writer_new(&w);
	if (udfb_wheel_install(w, path, &opts, err) < 0) {
		udfb_layer_writer_free(w);
		return -1;
	}
	struct udfb_layer layer;
	if (udfb_layer_write(&layer, w, tmp, err) < 0)
		return -1;
	read_layer(l, layer.path);
	udfb_layer_clear(&layer);
	return 0;
}

/* ---- the full install ---- */

#define DI "demo_pkg-1.0.dist-info"
#define DA "demo_pkg-1.0.data"
#define T "app/packages/"

static const char entry_points[] = "[console_scripts]\n"
				   "democli = demo_pkg.cli:main.run [extra1, extra2]\n"
				   "# a comment\n"
				   "\n"
				   "[gui_scripts]\n"
				   "demogui=demo_pkg.gui:start\n"
				   "[pytest11]\n"
				   "whatever at all\n";

static const struct wf demo[] = {
	{ "demo_pkg/", NULL, 0, DIR_ENTRY },
	{ "demo_pkg/__init__.py", "print('hi')\n" },
	{ "demo_pkg/tool.sh", "#!/bin/sh\necho tool\n", 0755 },
	{ "demo_pkg/sub/data,with \"comma\".txt", "odd name\n" },
	{ "demo_pkg/__pycache__/__init__.cpython-312.pyc", "\x55\x0d\x0d\x0a" },
	{ "demo_pkg/old.pyc", "\x55\x0d\x0d\x0a" },
	{ "demo_pkg/h\xc3\xa9llo.py", "# utf-8 name\n" },
	{ DA "/scripts/run", "#!python\nprint(1)\n" },
	{ DA "/scripts/runw", "#!pythonw -u\r\nprint(2)\n" },
	{ DA "/scripts/short", "#!pyt" },
	{ DA "/scripts/plain", "#!/bin/sh\necho plain\n", 0644 },
	{ DA "/scripts/democli", "#!python\n# setuptools' wrapper\n" },
	{ DA "/scripts/democli-script.py", "# setuptools' wrapper\n" },
	{ DA "/headers/demo.h", "#define DEMO 1\n" },
	{ DA "/data/share/demo/x.txt", "data file\n" },
	{ DA "/purelib/extra_mod.py", "X = 1\n" },
	{ DA "/platlib/plat_mod.py", "Y = 2\n" },
	{ DI "/METADATA", "Metadata-Version: 2.1\nName: demo-pkg\nVersion: 1.0\nRequires-Dist: six\n\nbody\n" },
	{ DI "/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n" },
	{ DI "/entry_points.txt", entry_points },
	{ DI "/INSTALLER", "pip\n" },
};
#define N_DEMO (sizeof(demo) / sizeof(*demo))

static const char *const want_files[] = {
	T "bin/democli",
	T "bin/demogui",
	T "bin/plain",
	T "bin/run",
	T "bin/runw",
	T "bin/short",
	T DI "/INSTALLER",
	T DI "/METADATA",
	T DI "/RECORD",
	T DI "/WHEEL",
	T DI "/entry_points.txt",
	T "demo_pkg/__init__.py",
	T "demo_pkg/h\xc3\xa9llo.py",
	T "demo_pkg/sub/data,with \"comma\".txt",
	T "demo_pkg/tool.sh",
	T "extra_mod.py",
	T "include/python/demo_pkg/demo.h",
	T "plat_mod.py",
	T "share/demo/x.txt",
};
#define N_WANT (sizeof(want_files) / sizeof(*want_files))

static void check_layout(const struct lay *l)
{
	size_t files = 0, ok = 1;
	for (size_t k = 0; k < l->n; k++)
		if (!l->v[k].dir)
			files++;
	for (size_t k = 0; k < N_WANT; k++)
		if (!lget(l, want_files[k]))
			ok = 0, printf("# missing %s\n", want_files[k]);
	for (size_t k = 0; k < l->n; k++)
		if (!l->v[k].dir && files != N_WANT)
			printf("# have %s\n", l->v[k].path);
	CHECK(ok && files == N_WANT, "every file where pip --target puts it, nothing else (%zu files)", files);
	CHECK(!lget(l, T "demo_pkg/__pycache__/") && !lget(l, T "demo_pkg/old.pyc"), "no .pyc, no __pycache__");
	const struct lentry *e;
	e = lget(l, T "bin/run");
	CHECK(e && e->mode == 0755 && !strcmp(e->data, "#!/usr/bin/env python3\nprint(1)\n"),
	      "#!python rewritten, 0755");
	e = lget(l, T "bin/runw");
	CHECK(e && !strcmp(e->data, "#!/usr/bin/env python3\nprint(2)\n"), "#!pythonw line replaced whole (CRLF too)");
	e = lget(l, T "bin/short");
	CHECK(e && !strcmp(e->data, "#!pyt"), "a script shorter than '#!python' unchanged");
	e = lget(l, T "bin/plain");
	CHECK(e && e->mode == 0755 && !strcmp(e->data, "#!/bin/sh\necho plain\n"), "other shebangs kept; scripts 0755");
	e = lget(l, T "demo_pkg/tool.sh");
	CHECK(e && e->mode == 0755, "the zip's executable bit kept");
	e = lget(l, T "demo_pkg/__init__.py");
	CHECK(e && e->mode == 0644 && !strcmp(e->data, "print('hi')\n"), "plain file 0644, content");
	e = lget(l, T "include/python/demo_pkg/demo.h");
	CHECK(e && !strcmp(e->data, "#define DEMO 1\n"), "headers under include/python/<project>/");
	e = lget(l, T DI "/INSTALLER");
	CHECK(e && e->mode == 0644 && !strcmp(e->data, "udf-builder\n"), "INSTALLER replaced");
	e = lget(l, T "bin/democli");
	CHECK(e && e->mode == 0755 &&
		      !strcmp(e->data, "#!/usr/bin/env python3\n"
				       "# -*- coding: utf-8 -*-\n"
				       "import re\n"
				       "import sys\n"
				       "from demo_pkg.cli import main\n"
				       "if __name__ == '__main__':\n"
				       "    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n"
				       "    sys.exit(main.run())\n"),
	      "console script in pip's form (setuptools' wrappers replaced)");
	if (e)
		printf("# %s", e->data);
	e = lget(l, T "bin/demogui");
	CHECK(e && strstr(e->data, "from demo_pkg.gui import start\n") && strstr(e->data, "sys.exit(start())"),
	      "gui script");
}

/* Every RECORD row names an installed file with its hash and size, every
 * installed file has a row, rows sorted, RECORD's own row empty. */
static void check_record(const struct lay *l)
{
	const struct lentry *rec = lget(l, T DI "/RECORD");
	if (!rec) {
		CHECK(0, "RECORD installed");
		return;
	}
	printf("# RECORD:\n# %s", rec->data);
	int ok = 1, sorted = 1, rows = 0;
	char prev[1024] = "";
	char *copy = strdup(rec->data);
	for (char *line = copy, *next; line && *line; line = next) {
		next = strstr(line, "\r\n");
		if (!next) {
			ok = 0;
			break;
		}
		*next = '\0';
		next += 2;
		rows++;
		char path[1024];
		char *fields = line;
		if (line[0] == '"') { /* the quoted name of the test */
			char *q = strstr(line + 1, "\",");
			snprintf(path, sizeof(path), "%.*s", (int)(q - line - 1), line + 1);
			for (char *d = strstr(path, "\"\""); d; d = strstr(d + 1, "\"\""))
				memmove(d, d + 1, strlen(d));
			fields = q + 1;
		} else {
			char *c = strchr(line, ',');
			snprintf(path, sizeof(path), "%.*s", (int)(c - line), line);
			fields = c;
		}
		if (strcmp(prev, path) >= 0)
			sorted = 0;
		snprintf(prev, sizeof(prev), "%s", path);
		char full[1100];
		snprintf(full, sizeof(full), T "%s", path);
		const struct lentry *e = lget(l, full);
		if (!e) {
			ok = 0, printf("# RECORD names %s, not installed\n", path);
			continue;
		}
		char want[200], h[64];
		record_hash(h, e->data, e->len);
		if (e == rec)
			snprintf(want, sizeof(want), ",,");
		else
			snprintf(want, sizeof(want), ",sha256=%s,%zu", h, e->len);
		if (strcmp(fields, want) != 0)
			ok = 0, printf("# %s: %s, want %s\n", path, fields, want);
	}
	free(copy);
	CHECK(ok && rows == (int)N_WANT, "RECORD rows: hashes and sizes of the installed bytes (%d rows)", rows);
	CHECK(sorted, "RECORD sorted bytewise");
	CHECK(strstr(rec->data, "\"demo_pkg/sub/data,with \"\"comma\"\".txt\",sha256=") != NULL,
	      "CSV quoting as Python's");
	CHECK(strstr(rec->data, "bin/democli,sha256=") && strstr(rec->data, DI "/INSTALLER,sha256=") &&
		      strstr(rec->data, DI "/RECORD,,\r\n"),
	      "scripts as bin/name, INSTALLER hashed, RECORD unhashed");
}

static void test_install(void)
{
	struct rec r = { 0 };
	char *path = make_wheel("demo_pkg-1.0-py3-none-any.whl", DI, demo, N_DEMO, &r);
	struct udfb_err err = UDFB_ERR_INIT;
	char *text = NULL;
	size_t len = 0;
	CHECK(udfb_wheel_read_metadata(&text, &len, path, &err) == 0 && text && strstr(text, "Name: demo-pkg\n"),
	      "METADATA read from the wheel");
	struct udfb_pkgmeta m;
	CHECK(text && udfb_pkgmeta_parse(&m, text, len, &err) == 0 && !strcmp(m.version, "1.0"), "and parsed");
	if (text)
		udfb_pkgmeta_free(&m);
	free(text);
	struct lay *l = calloc(1, sizeof(*l));
	int rc = install(l, path, &err);
	CHECK(rc == 0, "demo wheel installs (%s)", err.msg ? err.msg : "ok");
	udfb_err_clear(&err);
	check_layout(l);
	check_record(l);
	free_layer(l);
	/* Known answer for the encoding: python -c 'base64.urlsafe_b64encode(sha256(b"hello\n"))'. */
	char h[64];
	record_hash(h, "hello\n", 6);
	CHECK_STR(h, "WJG1tSLV3whtD_CxEPvZ0hu0_HFjrzTQgoai6Eb2vgM", "test's RECORD hash matches Python's");
	/* Two wheels with one file in a layer: refused, naming it. */
	struct udfb_layer_writer *w;
	udfb_layer_writer_new(&w);
	CHECK(udfb_wheel_install(w, path, &opts, &err) == 0, "first install into a shared layer");
	udfb_err_clear(&err);
	CHECK(udfb_wheel_install(w, path, &opts, &err) < 0 && err.cat == UDFB_E_INVALID &&
		      strstr(err.msg, "already in the layer"),
	      "a second wheel with the same files is refused (%s)", err.msg);
	udfb_err_clear(&err);
	udfb_layer_writer_free(w);
	udfb_layer_writer_new(&w);
	udfb_layer_add_bytes(w, T "demo_pkg", "x", 1, 0, &err);
	CHECK(udfb_wheel_install(w, path, &opts, &err) < 0 && err.cat == UDFB_E_INVALID && strstr(err.msg, "is a file"),
	      "a file of the layer where the wheel needs a directory: refused (%s)", err.msg);
	CHECK(!udfb_layer_contains(w, T "bin"), "  and the layer is untouched");
	udfb_err_clear(&err);
	udfb_layer_writer_free(w);
	free(l);
	free(path);
}

/* ---- refusals ---- */

static const struct wf base_files[] = {
	{ "ok/__init__.py", "" },
	{ "ok-1.0.dist-info/METADATA", "Name: ok\nVersion: 1.0\n" },
	{ "ok-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\n" },
};

/* Temporary files the installs left in tmp. */
static int leftovers(void)
{
	return count_temporaries(tmp);
}

/* The base wheel plus extra, refused with a message holding want. */
static void refused(const char *what, const struct wf *extra, size_t n_extra, const struct rec *r, const char *want)
{
	struct wf files[16];
	size_t n = 0;
	for (size_t k = 0; k < 3; k++)
		files[n++] = base_files[k];
	for (size_t k = 0; k < n_extra; k++) {
		/* An extra with a base file's name replaces it. */
		size_t j = 0;
		while (j < 3 && strcmp(files[j].name, extra[k].name))
			j++;
		if (j < 3 && !(extra[k].flags & 0x100))
			files[j] = extra[k];
		else
			files[n++] = extra[k];
	}
	struct rec none = { 0 };
	char *path = make_wheel("ok-1.0-py3-none-any.whl", "ok-1.0.dist-info", files, n, r ? r : &none);
	struct udfb_err err = UDFB_ERR_INIT;
	struct udfb_layer_writer *w;
	udfb_layer_writer_new(&w);
	int before = leftovers();
	int rc = udfb_wheel_install(w, path, &opts, &err);
	CHECK(rc < 0 && err.cat == UDFB_E_INVALID && strstr(err.msg, want) && strstr(err.msg, path), "refused: %s (%s)",
	      what, err.msg ? err.msg : "accepted");
	CHECK(!udfb_layer_contains(w, "app") && leftovers() == before, "  and the layer is untouched, no file left");
	udfb_err_clear(&err);
	udfb_layer_writer_free(w);
	unlink(path);
	free(path);
}

static void test_refusals(void)
{
	struct wf f;
	f = (struct wf){ "../evil", "x" };
	refused("'..' entry", &f, 1, NULL, "'..'");
	f = (struct wf){ "ok/../../evil", "x" };
	refused("'..' inside", &f, 1, NULL, "'..'");
	f = (struct wf){ "/abs", "x" };
	refused("absolute entry", &f, 1, NULL, "absolute");
	f = (struct wf){ "ok//x", "x" };
	refused("empty segment", &f, 1, NULL, "empty");
	/* libarchive reads a name with backslashes and no slash as a Windows
	 * archiver's ("a\\b" is "a/b", then checked like any name); with a
	 * slash, the backslash is refused. */
	f = (struct wf){ "ok/x\\y.py", "x" };
	refused("backslash", &f, 1, NULL, "backslash");
	f = (struct wf){ "ok/link", "/etc/passwd", 0, SYMLINK };
	refused("symlink entry", &f, 1, NULL, "not a regular file");
	/* Issue 18: OCI whiteouts would delete the files of the image below. */
	f = (struct wf){ "ok/.wh.__init__.py", "x" };
	refused("a '.wh.' name (an OCI whiteout)", &f, 1, NULL, "whiteout");
	f = (struct wf){ "ok/.wh..wh..opq", "" };
	refused("an opaque whiteout", &f, 1, NULL, "whiteout");
	f = (struct wf){ "ok-1.0.data/purelib/.wh.ok", "" };
	refused("a whiteout through .data", &f, 1, NULL, "whiteout");
	char long_name[300] = "ok/";
	memset(long_name + 3, 'a', 256);
	f = (struct wf){ long_name, "x" };
	refused("a file name over 255 bytes", &f, 1, NULL, "255 bytes");
	struct rec omit = { .omit = "ok/__init__.py" };
	refused("file missing from RECORD", NULL, 0, &omit, "not listed in RECORD");
	struct rec corrupt = { .corrupt = "ok/__init__.py" };
	refused("wrong hash", NULL, 0, &corrupt, "sha256 differs");
	struct rec badsize = { .badsize = "ok-1.0.dist-info/METADATA" };
	refused("wrong size", NULL, 0, &badsize, "RECORD");
	struct rec norecord = { .none = 1 };
	refused("no RECORD", NULL, 0, &norecord, "RECORD");
	f = (struct wf){ "ok-1.0.dist-info/WHEEL", "Wheel-Version: 2.0\n" };
	refused("Wheel-Version 2.0", &f, 1, NULL, "Wheel-Version 2.0");
	f = (struct wf){ "ok-1.0.dist-info/WHEEL", "Generator: x\n" };
	refused("WHEEL without Wheel-Version", &f, 1, NULL, "Wheel-Version");
	f = (struct wf){ "ok/__init__.py", "again", 0, 0x100 };
	refused("duplicate entry", &f, 1, NULL, "twice");
	struct wf two[] = { { "ok-1.0.data/purelib/ok/__init__.py", "" } };
	refused("two entries, one destination", two, 1, NULL, "twice");
	struct wf fd[] = { { "ok/__init__.py/x", "" } };
	refused("a file and a directory", fd, 1, NULL, "both a file and a directory");
	struct wf gen[] = { { "ok-1.0.data/data/bin/tool", "" },
			    { "ok-1.0.dist-info/entry_points.txt", "[console_scripts]\ntool = ok:main\n" } };
	refused("a file where a console script goes", gen, 2, NULL, "twice");
	f = (struct wf){ "ok-1.0.data/lib/x.py", "" };
	refused("unknown .data scheme", &f, 1, NULL, "scheme");
	f = (struct wf){ "ok-1.0.data/x.py", "" };
	refused("file directly in .data", &f, 1, NULL, ".data");
	f = (struct wf){ "other-1.0.dist-info/METADATA", "" };
	refused("two .dist-info directories", &f, 1, NULL, "several .dist-info");
	const char *bad_eps[] = { "[console_scripts]\na/b = ok:main\n",
				  "[console_scripts]\n../x = ok:main\n",
				  "[console_scripts]\nx = ok\n",
				  "[console_scripts]\nx = ok:main()\n",
				  "[console_scripts]\nx = ok:1main\n",
				  "[console_scripts]\nx = ok:main [a\n",
				  "[console_scripts]\nx\n",
				  "[gui_scripts]\nx = ok:a\nx = ok:b\n",
				  "[console_scripts]\n = ok:main\n",
				  "[console_scripts]\nx = import os:main\n" };
	for (size_t k = 0; k < sizeof(bad_eps) / sizeof(*bad_eps); k++) {
		f = (struct wf){ "ok-1.0.dist-info/entry_points.txt", bad_eps[k] };
		char what[128];
		snprintf(what, sizeof(what), "entry_points.txt %zu", k);
		refused(what, &f, 1, NULL, "entry_points.txt");
	}
	/* Not a zip, a truncated one, a missing file. */
	struct udfb_err err = UDFB_ERR_INIT;
	char *junk = udfb_path_join(tmp, "junk.whl");
	FILE *jf = fopen(junk, "w");
	fputs("PK\x03\x04 not really", jf);
	fclose(jf);
	struct udfb_layer_writer *w;
	udfb_layer_writer_new(&w);
	CHECK(udfb_wheel_install(w, junk, &opts, &err) < 0 && err.cat == UDFB_E_INVALID, "junk refused (%s)", err.msg);
	udfb_err_clear(&err);
	char *text;
	size_t len;
	CHECK(udfb_wheel_read_metadata(&text, &len, junk, &err) < 0, "no METADATA from junk");
	udfb_err_clear(&err);
	udfb_layer_writer_free(w);
	unlink(junk);
	free(junk);
	struct udfb_wheel_install_opts o = opts;
	o.target = "../escape";
	udfb_layer_writer_new(&w);
	CHECK(udfb_wheel_install(w, "/nonexistent.whl", &o, &err) < 0 && strstr(err.msg, "target"),
	      "bad target refused");
	udfb_err_clear(&err);
	udfb_layer_writer_free(w);
}

/* Issue 18: 4 MiB of zeros zip to a few KiB; a build's budget of bytes
 * unpacked stops them, whatever the ratio, and says which setting. */
static void test_unpacked_budget(void)
{
	size_t big = 4u << 20;
	char *zeros = calloc(1, big);
	struct wf files[] = { base_files[0], base_files[1], base_files[2], { "ok/zeros.bin", zeros, 0, 0, big } };
	struct rec none = { 0 };
	char *path = make_wheel("ok-1.0-py3-none-any.whl", "ok-1.0.dist-info", files, 4, &none);
	struct udfb_err err = UDFB_ERR_INIT;
	struct udfb_wheel_install_opts o = opts;
	long long got = -1;
	o.max_unpacked = 1 << 20;
	o.unpacked = &got;
	struct udfb_layer_writer *w;
	udfb_layer_writer_new(&w);
	CHECK(udfb_wheel_install(w, path, &o, &err) < 0 && err.cat == UDFB_E_INVALID &&
		      strstr(err.msg, "packages-max-unpacked") && strstr(err.msg, "1048576"),
	      "a wheel unpacking past the budget is refused (%s)", err.msg ? err.msg : "accepted");
	udfb_err_clear(&err);
	CHECK(!udfb_layer_contains(w, "app"), "  and the layer is untouched");
	udfb_layer_writer_free(w);
	o.max_unpacked = 8 << 20;
	udfb_layer_writer_new(&w);
	CHECK(udfb_wheel_install(w, path, &o, &err) == 0 && got >= (long long)big && got < (long long)big + 1024,
	      "within the budget it installs, and says how much it unpacked (%lld)", got);
	udfb_err_clear(&err);
	udfb_layer_writer_free(w);
	/* Issue 18: and a time budget (packages-max-unpack-ms): a deadline
	 * already past stops the unpacking at its first block, naming the
	 * setting; one in the future lets it through. */
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	long long now = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	o.deadline_ms = now - 1;
	udfb_layer_writer_new(&w);
	CHECK(udfb_wheel_install(w, path, &o, &err) < 0 && err.cat == UDFB_E_INVALID &&
		      strstr(err.msg, "packages-max-unpack-ms") && strstr(err.msg, "took too long"),
	      "a wheel unpacking past its time is refused (%s)", err.msg ? err.msg : "accepted");
	udfb_err_clear(&err);
	CHECK(!udfb_layer_contains(w, "app"), "  and the layer is untouched");
	udfb_layer_writer_free(w);
	o.deadline_ms = now + 60000;
	udfb_layer_writer_new(&w);
	CHECK(udfb_wheel_install(w, path, &o, &err) == 0, "within its time it installs (%s)", err.msg ? err.msg : "ok");
	udfb_err_clear(&err);
	udfb_layer_writer_free(w);
	unlink(path);
	free(path);
	free(zeros);
}

/* A wheel's METADATA without its RECORD checks (read_metadata is for the
 * resolver): the single .dist-info directory. */
static void test_read_metadata(void)
{
	struct rec r = { .none = 1 };
	struct wf two[] = { { "a-1.0.dist-info/METADATA", "Name: a\nVersion: 1.0\n" },
			    { "b-1.0.dist-info/METADATA", "Name: b\nVersion: 1.0\n" } };
	char *path = make_wheel("a-1.0-py3-none-any.whl", "a-1.0.dist-info", two, 2, &r);
	struct udfb_err err = UDFB_ERR_INIT;
	char *text = NULL;
	size_t len;
	CHECK(udfb_wheel_read_metadata(&text, &len, path, &err) < 0 && strstr(err.msg, "several"),
	      "two .dist-info directories: no METADATA");
	udfb_err_clear(&err);
	free(path);
	struct wf none[] = { { "a/__init__.py", "" }, { "a-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\n" } };
	path = make_wheel("a-1.0-py3-none-any.whl", "a-1.0.dist-info", none, 2, &r);
	CHECK(udfb_wheel_read_metadata(&text, &len, path, &err) < 0 && strstr(err.msg, "METADATA"), "no METADATA");
	udfb_err_clear(&err);
	free(path);
}

/* The packs in memory or in files: the same layer, byte for byte. */
static int layer_with(const char *path, long long mem_pack_max, long long mem_pack_min, struct udfb_layer *out,
		      int *files)
{
	struct udfb_wheel_install_opts o = opts;
	o.mem_pack_max = mem_pack_max;
	o.mem_pack_min = mem_pack_min;
	struct udfb_err err = UDFB_ERR_INIT;
	struct udfb_layer_writer *w;
	udfb_layer_writer_new(&w);
	int before = leftovers();
	if (udfb_wheel_install(w, path, &o, &err) < 0) {
		printf("# %s\n", err.msg);
		udfb_err_clear(&err);
		udfb_layer_writer_free(w);
		return -1;
	}
	/* The packs are the only .tmp- files an install makes. */
	*files = leftovers() - before;
	int rc = udfb_layer_write(out, w, tmp, &err);
	udfb_err_clear(&err);
	return rc;
}

/* The wheel's size plus its files' declared sizes: the memory packs' measure. */
static long long mem_need(const char *path)
{
	struct stat st;
	long long n = stat(path, &st) == 0 ? (long long)st.st_size : 0;
	struct archive *a = archive_read_new();
	archive_read_support_format_zip_seekable(a);
	archive_read_open_filename(a, path, 65536);
	struct archive_entry *e;
	while (archive_read_next_header(a, &e) == ARCHIVE_OK)
		if (archive_entry_filetype(e) == AE_IFREG)
			n += archive_entry_size(e);
	archive_read_free(a);
	return n;
}

/* The mem_pack cases with one wheel: each the same layer as with files
 * (*first keeps that one). */
static void mem_pack_cases(const char *path, const char *what, struct udfb_layer *first)
{
	long long need = mem_need(path);
	/* The test's wheel is small: a minimum of -1 lets it into memory. */
	struct {
		long long max, min;
		int want_files;
		const char *what;
	} cases[] = { { -1, -1, 2, "never in memory" },
		      { 0, -1, 0, "the default limit" },
		      { need, -1, 0, "a limit the wheel just fits" },
		      { need - 1, -1, 2, "a limit one byte short" },
		      { 0, 0, 2, "a wheel under the default minimum (8 MiB)" },
		      { 0, need, 0, "a minimum the wheel just reaches" },
		      { 0, need + 1, 2, "a minimum one byte above it" } };
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		struct udfb_layer l = { 0 };
		int packs = -1;
		int rc = layer_with(path, cases[k].max, cases[k].min, &l, &packs);
		CHECK(rc == 0 && packs == cases[k].want_files, "%s: packs for %s: %s (%d pack files)", what,
		      cases[k].what, cases[k].want_files ? "files" : "memory", packs);
		if (k == 0) {
			*first = l;
			continue;
		}
		CHECK(rc == 0 && !strcmp(l.digest, first->digest) && !strcmp(l.diff_id, first->diff_id) &&
			      l.size == first->size,
		      "  the same layer as with files (%s)", l.digest);
		udfb_layer_clear(&l);
	}
}

/* One budget for every wheel's packs in memory, across writers: a wheel
 * that would pass it goes to files, and what a freed writer held comes
 * back. */
static void test_mem_budget(const char *path)
{
	long long need = mem_need(path);
	struct udfb_membudget budget = { 0, need + need / 2 };
	struct udfb_wheel_install_opts o = opts;
	o.mem_pack_min = -1;
	o.mem_budget = &budget;
	struct udfb_layer_writer *w[3];
	int files[3];
	struct udfb_err err = UDFB_ERR_INIT;
	for (int k = 0; k < 3; k++) {
		if (k == 2) { /* the first writer gone: its charge back */
			udfb_layer_writer_free(w[0]);
			w[0] = NULL;
		}
		udfb_layer_writer_new(&w[k]);
		int before = leftovers();
		int rc = udfb_wheel_install(w[k], path, &o, &err);
		files[k] = rc == 0 ? leftovers() - before : -1;
		udfb_err_clear(&err);
	}
	long long held = budget.used;
	for (int k = 1; k < 3; k++)
		udfb_layer_writer_free(w[k]);
	CHECK(files[0] == 0 && files[1] == 2 && files[2] == 0 && held == need && budget.used == 0,
	      "one memory budget for all writers: the first wheel in memory, the second past the budget in files, "
	      "a third in memory once the first writer is freed (%d, %d, %d pack files; %lld of %lld held, %lld "
	      "after)",
	      files[0], files[1], files[2], held, budget.max, (long long)budget.used);
}

static void test_mem_pack(void)
{
	/* The demo's scripts and entry points, and files big enough to splice. */
	enum { BIG = 6 };
	static struct wf files[N_DEMO + BIG];
	static char names[BIG][64];
	memcpy(files, demo, sizeof(demo));
	char *text = malloc(BIG * 40000);
	for (size_t k = 0; k < BIG * 40000; k++)
		text[k] = (char)("abcdefgh \n"[(k * 7 + k / 13) % 10]);
	for (int k = 0; k < BIG; k++) {
		snprintf(names[k], sizeof(names[k]), "demo_pkg/data%d.txt", k);
		files[N_DEMO + k] = (struct wf){ names[k], text + k * 40000, 0, 0, 1000 + (size_t)k * 7000 };
	}
	struct rec r = { 0 };
	char *path = make_wheel("demo_pkg-1.0-py3-none-any.whl", DI, files, N_DEMO + BIG, &r);
	long long need = mem_need(path);
	struct udfb_layer first = { 0 }, mixed = { 0 };
	mem_pack_cases(path, "deflated", &first);
	/* Stored entries are installed from where the zip holds them (in
	 * memory, from the wheel's mapping): the same files, so the same tar. */
	store_every_other = 1;
	char *dir = udfb_path_join(tmp, "mixed");
	mkdir(dir, 0755);
	free(dir);
	char *path_mixed = make_wheel("mixed/demo_pkg-1.0-py3-none-any.whl", DI, files, N_DEMO + BIG, &r);
	store_every_other = 0;
	mem_pack_cases(path_mixed, "every other entry stored", &mixed);
	CHECK(mixed.path && !strcmp(mixed.diff_id, first.diff_id) && mem_need(path_mixed) > need + 20000,
	      "  the same tar as the deflated wheel's (%s), from a wheel %lld bytes larger", mixed.diff_id,
	      mem_need(path_mixed) - need);
	udfb_layer_clear(&mixed);
	free(path_mixed);
	test_mem_budget(path);
	/* One limit for a layer's wheels: a second wheel into the same writer
	 * goes to files once the first holds most of it. */
	static const struct wf other[] = { { "other_pkg/__init__.py", "x = 1\n" },
					   { "other_pkg-1.0.dist-info/METADATA", "Name: other-pkg\nVersion: 1.0\n" },
					   { "other_pkg-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\n" } };
	char *path2 = make_wheel("other_pkg-1.0-py3-none-any.whl", "other_pkg-1.0.dist-info", other, 3, &r);
	struct udfb_wheel_install_opts o = opts;
	o.mem_pack_max = need;
	o.mem_pack_min = -1;
	struct udfb_layer_writer *w;
	udfb_layer_writer_new(&w);
	struct udfb_err err = UDFB_ERR_INIT;
	int before = leftovers();
	int rc = udfb_wheel_install(w, path, &o, &err);
	int mid = leftovers();
	long long kept = (long long)udfb_layer_writer_kept(w);
	o.mem_pack_max = kept + mem_need(path2) - 1;
	rc = rc == 0 ? udfb_wheel_install(w, path2, &o, &err) : rc;
	CHECK(rc == 0 && mid == before && kept > 0 && leftovers() == mid + 2,
	      "two wheels, one writer: the first in memory (%lld bytes), the second one byte past the shared limit in "
	      "files (%s)",
	      kept, err.msg ? err.msg : "ok");
	udfb_err_clear(&err);
	udfb_layer_writer_free(w);
	free(path2);
	struct lay *lay = calloc(1, sizeof(*lay));
	read_layer(lay, first.path);
	const struct lentry *e = lget(lay, T "demo_pkg/data5.txt");
	CHECK(e && e->len == 36000 && !memcmp(e->data, text + 5 * 40000, 36000), "  a spliced file reads back");
	e = lget(lay, T "bin/run");
	CHECK(e && e->mode == 0755 && !strcmp(e->data, "#!/usr/bin/env python3\nprint(1)\n"),
	      "  a rewritten script too");
	free_layer(lay);
	free(lay);
	udfb_layer_clear(&first);
	free(text);
	free(path);
}

/* 1,000+ files, 20 MiB: the install alone, then the layer. */
static void test_speed(void)
{
	enum { N = 1200 };
	static struct wf files[N + 3];
	static char names[N][64];
	size_t per = (20u << 20) / N;
	char *blob = malloc(per * N);
	unsigned x = 12345;
	for (size_t k = 0; k < per * N; k++) {
		x = x * 1103515245u + 12345u;
		blob[k] = (char)("abcdefghijklmnopqrstuvwxyz \n"[(x >> 16) % 28]);
	}
	for (int k = 0; k < N; k++) {
		snprintf(names[k], sizeof(names[k]), "big/m%02d/file%04d.py", k % 50, k);
		files[k] = (struct wf){ names[k], blob + (size_t)k * per, 0, 0, per };
	}
	files[N] = (struct wf){ "big-1.0.dist-info/METADATA", "Name: big\nVersion: 1.0\n" };
	files[N + 1] = (struct wf){ "big-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\n" };
	struct rec r = { 0 };
	char *path = make_wheel("big-1.0-py3-none-any.whl", "big-1.0.dist-info", files, N + 2, &r);
	struct udfb_err err = UDFB_ERR_INIT;
	struct udfb_layer_writer *w;
	udfb_layer_writer_new(&w);
	struct timespec a, b, c;
	clock_gettime(CLOCK_MONOTONIC, &a);
	int rc = udfb_wheel_install(w, path, &opts, &err);
	clock_gettime(CLOCK_MONOTONIC, &b);
	struct udfb_layer layer = { 0 };
	if (rc == 0)
		rc = udfb_layer_write(&layer, w, tmp, &err);
	else
		udfb_layer_writer_free(w);
	clock_gettime(CLOCK_MONOTONIC, &c);
	double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
	double lms = (double)(c.tv_sec - b.tv_sec) * 1e3 + (double)(c.tv_nsec - b.tv_nsec) / 1e6;
	printf("# %d files, %zu MiB: install %.1f ms, layer write %.1f ms\n", N, per * N >> 20, ms, lms);
	/* Generous: sanitizer builds are several times slower. */
	CHECK(rc == 0 && ms < 5000, "1,200-file 20 MiB wheel installed (%s)", err.msg ? err.msg : "ok");
	udfb_err_clear(&err);
	udfb_layer_clear(&layer);
	free(blob);
	free(path);
}

int main(void)
{
	setlocale(LC_ALL, "C.UTF-8");
	if (!mkdtemp(tmp))
		return 1;
	test_install();
	test_refusals();
	test_unpacked_budget();
	test_read_metadata();
	test_mem_pack();
	test_speed();
	udfb_rm_rf(tmp);
	return check_done();
}
