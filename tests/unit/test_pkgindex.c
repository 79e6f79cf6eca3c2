/* Package indexes without a network: PEP 691 JSON and PEP 503 HTML pages
 * parsed (links resolved, hashes, yanked, requires-python, metadata, bad
 * and hostile pages), local directories listed, merged, downloaded into
 * the content cache and their wheels' METADATA read; messages never carry
 * an index URL's secrets. */
#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "check.h"
#include "tmpfiles.h"
#include "fetch/fetch.h"
#include "common/fsutil.h"
#include "pkgindex/pkgindex.h"
#include "pkgindex/pkgindex_internal.h"

#define PAGE "https://user:SECRET@host.example/simple/numpy/"
#define HEX_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HEX_B "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define HEX_B_UPPER "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"

static const struct udfb_pkgfile *find(const struct udfb_pkgproject *p, const char *name)
{
	for (size_t k = 0; k < p->n_files; k++)
		if (strcmp(p->files[k].filename, name) == 0)
			return &p->files[k];
	return NULL;
}

static const char *s_or(const char *s)
{
	return s ? s : "(null)";
}

static int no_secret(const struct udfb_err *e)
{
	return !e->msg || !strstr(e->msg, "SECRET");
}

/* ---- JSON ---- */

static const char json_page[] =
	"{\"meta\": {\"api-version\": \"1.1\"}, \"name\": \"numpy\", \"versions\": [\"1.0\", \"2.0\"], \"files\": ["
	"{\"filename\": \"numpy-1.0-py3-none-any.whl\", \"url\": \"../../packages/ab/numpy-1.0-py3-none-any.whl\","
	" \"hashes\": {\"sha256\": \"" HEX_B_UPPER "\", \"md5\": \"x\"}, \"requires-python\": \">=3.8\","
	" \"core-metadata\": {\"sha256\": \"" HEX_A "\"}, \"size\": 1234, \"yanked\": false},"
	"{\"filename\": \"numpy-1.0.tar.gz\", \"url\": \"https://files.example/p/numpy-1.0.tar.gz#sha256=ff\","
	" \"hashes\": {}, \"yanked\": \"broken build\", \"requires-python\": null},"
	"{\"filename\": \"numpy-2.0-py3-none-any.whl\", \"url\": \"/abs/numpy-2.0-py3-none-any.whl\","
	" \"hashes\": {\"sha256\": \"" HEX_A "\"}, \"yanked\": true, \"dist-info-metadata\": true},"
	"{\"filename\": \"numpy-2.1-py3-none-any.whl\", \"url\": \"numpy-2.1-py3-none-any.whl\","
	" \"hashes\": {\"sha256\": \"" HEX_A "\"}, \"core-metadata\": false, \"dist-info-metadata\": true},"
	"{\"filename\": \"numpy-2.2.tar.gz\", \"url\": \"x.tar.gz\", \"hashes\": {\"sha256\": \"" HEX_A "\"},"
	" \"core-metadata\": {\"sha256\": \"nothex\"}},"
	/* left out: */
	"{\"filename\": \"../evil.whl\", \"url\": \"x.whl\", \"hashes\": {}},"
	"{\"filename\": \"a\\u0001b.whl\", \"url\": \"x.whl\", \"hashes\": {}},"
	"{\"filename\": \"bad-hash.whl\", \"url\": \"x.whl\", \"hashes\": {\"sha256\": \"abc\"}},"
	"{\"filename\": \"no-url.whl\", \"hashes\": {}},"
	"{\"filename\": \"file-url.whl\", \"url\": \"file:///etc/passwd\", \"hashes\": {}},"
	"{\"filename\": \"js-url.whl\", \"url\": \"javascript:alert(1)\", \"hashes\": {}},"
	"{\"filename\": \"bad-yank.whl\", \"url\": \"x.whl\", \"hashes\": {}, \"yanked\": 3},"
	"{\"filename\": \"bad-rp.whl\", \"url\": \"x.whl\", \"hashes\": {}, \"requires-python\": 3},"
	"{\"filename\": \"bad-hashes.whl\", \"url\": \"x.whl\", \"hashes\": []},"
	"{\"filename\": 7, \"url\": \"x.whl\"}, \"not an object\", null"
	"]}";

static void test_json(void)
{
	struct udfb_pkgproject p;
	struct udfb_err err = UDFB_ERR_INIT;
	int rc = udfb_pkgindex_parse_json(&p, PAGE, json_page, strlen(json_page), &err);
	CHECK(rc == 0 && p.n_files == 5, "a PEP 691 page parses, malformed entries left out (%zu files; %s)", p.n_files,
	      s_or(err.msg));
	const struct udfb_pkgfile *a = find(&p, "numpy-1.0-py3-none-any.whl");
	CHECK(a != NULL, "the wheel is listed");
	if (!a)
		return;
	CHECK_STR(a->url, "https://user:SECRET@host.example/packages/ab/numpy-1.0-py3-none-any.whl",
		  "a relative URL resolves against the page, credentials kept for the same host");
	CHECK_STR(a->sha256, HEX_B, "the sha256 is read and lower-cased");
	CHECK_STR(a->requires_python, ">=3.8", "requires-python");
	CHECK(!a->yanked && a->has_metadata && strcmp(a->metadata_sha256, HEX_A) == 0 && a->size == 1234 && !a->path,
	      "yanked false, core-metadata with its sha256, size");
	const struct udfb_pkgfile *b = find(&p, "numpy-1.0.tar.gz");
	CHECK(b && strcmp(b->url, "https://files.example/p/numpy-1.0.tar.gz") == 0 && !b->sha256[0] && b->yanked &&
		      !b->requires_python && !b->has_metadata && b->size == -1,
	      "an absolute URL (fragment cut), no hash, a yank reason is yanked, null requires-python, no size");
	const struct udfb_pkgfile *c = find(&p, "numpy-2.0-py3-none-any.whl");
	CHECK(c && c->yanked && c->has_metadata && !c->metadata_sha256[0] &&
		      strcmp(c->url, "https://user:SECRET@host.example/abs/numpy-2.0-py3-none-any.whl") == 0,
	      "yanked true, the older dist-info-metadata: true, a path-absolute URL");
	const struct udfb_pkgfile *d = find(&p, "numpy-2.1-py3-none-any.whl");
	CHECK(d && !d->has_metadata, "core-metadata false wins over dist-info-metadata");
	const struct udfb_pkgfile *e = find(&p, "numpy-2.2.tar.gz");
	CHECK(e && e->has_metadata && !e->metadata_sha256[0], "an unreadable metadata hash is dropped, not trusted");
	CHECK(p.files[0].filename == a->filename, "files keep the page's order");
	udfb_pkgproject_free(&p);
}

static void json_fails(const char *what, const char *body, size_t len, enum udfb_errcat cat)
{
	struct udfb_pkgproject p;
	struct udfb_err err = UDFB_ERR_INIT;
	int rc = udfb_pkgindex_parse_json(&p, PAGE, body, len, &err);
	CHECK(rc < 0 && err.cat == cat && err.msg && !strchr(err.msg, '\n') && no_secret(&err) && !p.files,
	      "%s: %s (%s)", what, udfb_errcat_name(cat), s_or(err.msg));
	udfb_err_clear(&err);
}

static void test_json_bad(void)
{
	json_fails("not JSON", "{\"files\": [", 11, UDFB_E_INVALID);
	json_fails("a control character in the error stays on one line", "{\"files\n\": []}", 14, UDFB_E_INVALID);
	json_fails("no files array", "{\"meta\": {\"api-version\": \"1.0\"}}", 32, UDFB_E_INVALID);
	json_fails("a top-level array", "[]", 2, UDFB_E_INVALID);
	json_fails("api-version 2", "{\"meta\": {\"api-version\": \"2.0\"}, \"files\": []}", 45, UDFB_E_UNSUPPORTED);
	json_fails("duplicate keys", "{\"files\": [], \"files\": []}", 26, UDFB_E_INVALID);
	json_fails("an empty body", "", 0, UDFB_E_INVALID);
	const char *leaky = "{\"files\": [{\"url\": \"https://u:SECRET@h/x.whl?SECRET\" ]}";
	json_fails("the page's text near an error is not quoted (links may hold tokens)", leaky, strlen(leaky),
		   UDFB_E_INVALID);
	size_t big = UDFB_INDEX_PAGE_MAX_BYTES + 1;
	char *huge = malloc(big);
	memset(huge, ' ', big);
	json_fails("over the page limit", huge, big, UDFB_E_EXHAUSTED);
	free(huge);

	struct udfb_buf b;
	udfb_buf_init(&b, 64u << 20);
	udfb_buf_addstr(&b, "{\"files\": [");
	for (int k = 0; k <= UDFB_INDEX_MAX_FILES; k++)
		udfb_buf_printf(&b, "%s{\"filename\": \"f%d.whl\", \"url\": \"f.whl\", \"hashes\": {}}", k ? "," : "",
				k);
	udfb_buf_addstr(&b, "]}");
	json_fails("more files than the limit", b.data, b.len, UDFB_E_EXHAUSTED);
	udfb_buf_free(&b);

	struct udfb_pkgproject p;
	struct udfb_err err = UDFB_ERR_INIT;
	const char *ok = "{\"files\": [{\"filename\": \"x-1.whl\", \"url\": \"x.whl\", \"hashes\": {}}]}";
	CHECK(udfb_pkgindex_parse_json(&p, "not a url", ok, strlen(ok), &err) < 0 && err.cat == UDFB_E_INVALID,
	      "a page URL that is none is refused (%s)", s_or(err.msg));
	udfb_err_clear(&err);
	CHECK(udfb_pkgindex_parse_json(&p, PAGE, "{\"files\": []}", 13, &err) == 0 && p.n_files == 0,
	      "a project without files (and without meta) parses");
	udfb_pkgproject_free(&p);
}

/* ---- HTML ---- */

static const char html_page[] =
	"<!DOCTYPE html>\n<html><head><title>Links for numpy</title></head><body>\n<h1>Links for numpy</h1>\n"
	"<a href=\"../../packages/x/numpy-1.0-py3-none-any.whl#sha256=" HEX_B_UPPER "\" "
	"data-requires-python=\"&gt;=3.8,&lt;4\" data-core-metadata=\"sha256=" HEX_A
	"\">\n  numpy-1.0-py3-none-any.whl  </a><br/>\n"
	"<a href=\"https://files.example/numpy-1.0.tar.gz#md5=abcd\" data-yanked=\"\">numpy-1.0.tar.gz</a><br/>\n"
	"<A HREF=\"numpy-2.0-py3-none-any.whl#sha256=" HEX_A "\" data-yanked=\"bad &amp; broken\" "
	"data-dist-info-metadata=\"true\" data-requires-python=\"\">numpy-2.0-py3-none-any.whl</A>\n"
	"<a href=\"numpy-2.1.tar.gz\" data-core-metadata=\"false\">numpy-2.1&#46;tar.gz</a>\n"
	/* left out: */
	"<a href=\"x.whl#sha256=nothex\">bad-hash.whl</a>\n"
	"<a href=\"x.whl\">  </a>\n"
	"<a>no-href.whl</a>\n"
	"<a href=\"file:///etc/passwd\">file.whl</a>\n"
	"<a href=\"x.whl\">a/b.whl</a>\n"
	"<a name=\"anchor\">just-an-anchor</a>\n"
	/* tag soup: an unclosed anchor, stray tags, a missing </body> */
	"<p><b>bold<a href=\"https://other.example/numpy-3.0-py3-none-any.whl\">numpy-3.0-py3-none-any.whl</p>\n"
	"</i></html>";

static void test_html(void)
{
	struct udfb_pkgproject p;
	struct udfb_err err = UDFB_ERR_INIT;
	int rc = udfb_pkgindex_parse_html(&p, PAGE, html_page, strlen(html_page), &err);
	CHECK(rc == 0 && p.n_files == 5, "a PEP 503 page parses, unusable anchors left out (%zu files; %s)", p.n_files,
	      s_or(err.msg));
	const struct udfb_pkgfile *a = find(&p, "numpy-1.0-py3-none-any.whl");
	CHECK(a != NULL, "the anchor text, trimmed, is the file name");
	if (!a)
		return;
	CHECK_STR(a->url, "https://user:SECRET@host.example/packages/x/numpy-1.0-py3-none-any.whl",
		  "../../ resolves against the page, the fragment is cut");
	CHECK_STR(a->sha256, HEX_B, "the hash from #sha256=, lower-cased");
	CHECK_STR(a->requires_python, ">=3.8,<4", "entities in data-requires-python are decoded");
	CHECK(!a->yanked && a->has_metadata && strcmp(a->metadata_sha256, HEX_A) == 0 && a->size == -1,
	      "data-core-metadata=\"sha256=...\"");
	const struct udfb_pkgfile *b = find(&p, "numpy-1.0.tar.gz");
	CHECK(b && b->yanked && !b->sha256[0] && !b->has_metadata &&
		      !strcmp(b->url, "https://files.example/numpy-1.0.tar.gz"),
	      "data-yanked=\"\" is yanked; an md5 fragment gives no sha256");
	const struct udfb_pkgfile *c = find(&p, "numpy-2.0-py3-none-any.whl");
	CHECK(c && c->yanked && c->has_metadata && !c->metadata_sha256[0] && !c->requires_python &&
		      strcmp(c->sha256, HEX_A) == 0,
	      "upper-case tags, a yank reason, data-dist-info-metadata=\"true\", an empty requires-python is none");
	const struct udfb_pkgfile *d = find(&p, "numpy-2.1.tar.gz");
	CHECK(d && !d->has_metadata, "entities in the anchor text; data-core-metadata=\"false\"");
	CHECK(find(&p, "numpy-3.0-py3-none-any.whl") != NULL, "an anchor in tag soup is recovered");
	udfb_pkgproject_free(&p);

	const char *based = "<html><head><base href=\"https://mirror.example/files/\"></head>"
			    "<body><a href=\"n-1.0.tar.gz\">n-1.0.tar.gz</a></body></html>";
	rc = udfb_pkgindex_parse_html(&p, PAGE, based, strlen(based), &err);
	CHECK(rc == 0 && p.n_files == 1 && !strcmp(p.files[0].url, "https://mirror.example/files/n-1.0.tar.gz"),
	      "<base href> is what links resolve against");
	udfb_pkgproject_free(&p);
	CHECK(udfb_pkgindex_parse_html(&p, PAGE, "", 0, &err) == 0 && p.n_files == 0, "an empty page has no files");
	const char *binary = "\xff\xfe<a href=\"\x80x.whl\">\xc3(x-1.whl</a>\0<a href=x-2.whl>x-2.whl";
	CHECK(udfb_pkgindex_parse_html(&p, PAGE, binary, 44, &err) == 0,
	      "bytes that are not UTF-8 do not fail the page");
	udfb_pkgproject_free(&p);
	struct udfb_buf deep;
	udfb_buf_init(&deep, 1u << 20);
	for (int k = 0; k < 300; k++)
		udfb_buf_addstr(&deep, "<div>");
	udfb_buf_addstr(&deep, "<a href=\"d-1.whl\">d-1.whl</a>");
	CHECK(udfb_pkgindex_parse_html(&p, PAGE, deep.data, deep.len, &err) < 0 && err.cat == UDFB_E_INVALID,
	      "a page libxml2 stops reading fails rather than losing links (%s)", s_or(err.msg));
	udfb_err_clear(&err);
	udfb_buf_free(&deep);
	size_t big = UDFB_INDEX_PAGE_MAX_BYTES + 1;
	char *huge = calloc(1, big);
	CHECK(udfb_pkgindex_parse_html(&p, PAGE, huge, big, &err) < 0 && err.cat == UDFB_E_EXHAUSTED,
	      "over the page limit (%s)", s_or(err.msg));
	udfb_err_clear(&err);
	free(huge);
}

/* ---- helpers ---- */

static void test_helpers(void)
{
	char *d = udfb_url_display("https://user:SECRET@host.example:8443/simple/?token=SECRET#SECRET");
	CHECK_STR(d, "https://host.example:8443/simple/", "a URL for messages: no userinfo, query or fragment");
	free(d);
	d = udfb_url_display("http://[::1]/");
	CHECK_STR(d, "http://[::1]", "an IPv6 host, the root path left out");
	free(d);
	d = udfb_url_display("::nonsense SECRET");
	CHECK(d && !strstr(d, "SECRET"), "a URL that is none is not echoed (%s)", d);
	free(d);
	CHECK(udfb_pkgfile_name_ok("numpy-1.0.tar.gz") && !udfb_pkgfile_name_ok("..") && !udfb_pkgfile_name_ok("") &&
		      !udfb_pkgfile_name_ok("a\\b") && !udfb_pkgfile_name_ok("a\x7f"),
	      "file names: no separators, control characters, dots alone");
	char name[300];
	memset(name, 'x', 256);
	name[256] = '\0';
	CHECK(!udfb_pkgfile_name_ok(name) && (name[255] = '\0', udfb_pkgfile_name_ok(name)),
	      "file names: 255 bytes at most");
}

/* ---- local directories, the cache, metadata ---- */

static void write_text(const char *dir, const char *name, const char *text)
{
	char *p = udfb_path_join(dir, name);
	FILE *f = fopen(p, "w");
	fputs(text, f);
	fclose(f);
	free(p);
}

static void write_wheel(const char *dir, const char *name, const char *const *entries, int n)
{
	char *p = udfb_path_join(dir, name);
	struct archive *a = archive_write_new();
	archive_write_set_format_zip(a);
	archive_write_open_filename(a, p);
	for (int k = 0; k < n; k++) {
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, entries[2 * k]);
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, 0644);
		archive_entry_set_size(e, (la_int64_t)strlen(entries[2 * k + 1]));
		archive_write_header(a, e);
		archive_write_data(a, entries[2 * k + 1], strlen(entries[2 * k + 1]));
		archive_entry_free(e);
	}
	archive_write_close(a);
	archive_write_free(a);
	free(p);
}

static struct udfb_pkgindex *open_index(char **sources, size_t n, const struct udfb_fetch_opts *o, const char *tmp)
{
	struct udfb_pkgindex *ix = NULL;
	struct udfb_err err = UDFB_ERR_INIT;
	char *work = udfb_path_join(tmp, "work"), *cache = udfb_path_join(tmp, "cache");
	mkdir(work, 0755);
	if (udfb_pkgindex_new(&ix, sources, n, o, work, cache, &err) < 0)
		printf("# %s\n", err.msg);
	udfb_err_clear(&err);
	free(work);
	free(cache);
	return ix;
}

static void test_local(const char *tmp, const struct udfb_fetch_opts *o)
{
	char *one = udfb_path_join(tmp, "one"), *two = udfb_path_join(tmp, "two");
	mkdir(one, 0755);
	mkdir(two, 0755);
	static const char *const meta[] = { "numpy-1.0.dist-info/METADATA",
					    "Metadata-Version: 2.1\nName: numpy\nVersion: 1.0\n",
					    "numpy/__init__.py",
					    "",
					    "numpy-1.0.dist-info/RECORD",
					    "" };
	write_wheel(one, "numpy-1.0-py3-none-any.whl", meta, 3);
	write_text(one, "numpy-1.0.tar.gz", "sdist one");
	write_text(one, "NumPy_Extra-1.0.tar.gz", "another project");
	write_text(one, "python-dateutil-2.8.2.tar.gz", "legacy sdist");
	write_text(one, "README.txt", "not a distribution");
	write_text(one, ".numpy-0.1.tar.gz", "hidden");
	char *sub = udfb_path_join(one, "numpy-9.0-py3-none-any.whl");
	mkdir(sub, 0755);
	free(sub);
	write_text(two, "numpy-1.0.tar.gz", "sdist two");
	write_text(two, "numpy-2.0.zip", "zip sdist");
	static const char *const two_meta[] = { "a-1.dist-info/METADATA", "Name: a\n", "b-1.dist-info/METADATA",
						"Name: b\n" };
	write_wheel(two, "numpy-3.0-py3-none-any.whl", two_meta, 2);
	write_text(two, "numpy-4.0-py3-none-any.whl", "not a zip");

	char *file_url = NULL;
	if (asprintf(&file_url, "file://%s", two) < 0)
		abort();
	char *sources[] = { one, file_url };
	struct udfb_pkgindex *ix = open_index(sources, 2, o, tmp);
	CHECK(ix != NULL, "an index of a directory and a file:// URL opens");
	if (!ix)
		return;
	const struct udfb_pkgproject *p = NULL, *again = NULL;
	struct udfb_err err = UDFB_ERR_INIT;
	int rc = udfb_pkgindex_project(&p, ix, "NumPy", 0, &err);
	CHECK(rc == 0 && p->n_files == 5, "the project from both sources, by its normalised name (%zu; %s)",
	      rc == 0 ? p->n_files : 0, s_or(err.msg));
	if (rc < 0)
		return;
	const struct udfb_pkgfile *sd = find(p, "numpy-1.0.tar.gz"), *wh = find(p, "numpy-1.0-py3-none-any.whl");
	CHECK(sd && sd->path && strstr(sd->path, "/one/") && !sd->url && sd->size == 9 && strlen(sd->sha256) == 64,
	      "a file name in both: the first source wins; path, size, sha256 set, no URL");
	CHECK(wh && !wh->has_metadata && find(p, "numpy-2.0.zip") && !find(p, "NumPy_Extra-1.0.tar.gz") &&
		      !find(p, "numpy-9.0-py3-none-any.whl") && !find(p, ".numpy-0.1.tar.gz"),
	      "wheels, .tar.gz and .zip sdists; other projects, directories and hidden files are not listed");
	CHECK(strcmp(p->files[0].filename, "numpy-1.0-py3-none-any.whl") == 0 &&
		      strcmp(p->files[2].filename, "numpy-2.0.zip") == 0,
	      "files in source order, each directory sorted");
	CHECK(udfb_pkgindex_project(&again, ix, "numpy", 0, &err) == 0 && again == p, "a project is remembered");
	const struct udfb_pkgproject *du = NULL;
	CHECK(udfb_pkgindex_project(&du, ix, "Python_Dateutil", 0, &err) == 0 && du->n_files == 1,
	      "a legacy sdist whose name holds '-'");
	const struct udfb_pkgproject *dateutil = du;

	rc = udfb_pkgindex_project(&du, ix, "nosuch", 0, &err);
	CHECK(rc < 0 && err.cat == UDFB_E_NOTFOUND && strstr(err.msg, "nosuch") && strstr(err.msg, two),
	      "a project nobody has is NOTFOUND naming it and the sources (%s)", s_or(err.msg));
	udfb_err_clear(&err);
	rc = udfb_pkgindex_project(&du, ix, "nosuch", 0, &err);
	CHECK(rc < 0 && err.cat == UDFB_E_NOTFOUND, "and stays so");
	udfb_err_clear(&err);
	rc = udfb_pkgindex_project(&du, ix, "../etc", 0, &err);
	CHECK(rc < 0 && err.cat == UDFB_E_INVALID, "a name that is none is refused (%s)", s_or(err.msg));
	udfb_err_clear(&err);

	/* A project of several files: each hashed only; the one downloaded is
	 * copied then. */
	CHECK(sd && !sd->copy && wh && !wh->copy, "a project of several files: none copied when listed");
	char *path = NULL;
	char *want = NULL;
	if (asprintf(&want, "%s/cache/sha256/%s", tmp, sd->sha256) < 0)
		abort();
	char *text = NULL;
	size_t len = 0;
	rc = udfb_pkgindex_download(&path, ix, sd, 0, &err);
	CHECK(rc == 0 && strcmp(path, want) == 0 && udfb_read_file(&text, &len, path, 100, &err) == 0 &&
		      strcmp(text, "sdist one") == 0,
	      "  its download is copied into the content cache (%s)", s_or(err.msg));
	free(text);
	text = NULL;
	free(path);
	path = NULL;
	write_text(one, "numpy-1.0.tar.gz", "changed since");
	CHECK(udfb_pkgindex_download(&path, ix, sd, 0, &err) == 0 && strcmp(path, want) == 0,
	      "a cache hit needs no source");
	free(path);
	path = NULL;

	/* A project of one file: what was hashed when listed is what gets
	 * cached, the copy made then. */
	const struct udfb_pkgfile *dt = dateutil && dateutil->n_files == 1 ? &dateutil->files[0] : NULL;
	write_text(one, "python-dateutil-2.8.2.tar.gz", "changed after the listing");
	CHECK(dt && dt->copy && strcmp(dt->copy_sha256, dt->sha256) == 0, "a project of one file: copied as hashed");
	char *want_dt = NULL;
	if (!dt || asprintf(&want_dt, "%s/cache/sha256/%s", tmp, dt->sha256) < 0)
		abort();
	rc = udfb_pkgindex_download(&path, ix, dt, 0, &err);
	CHECK(rc == 0 && strcmp(path, dt->copy) == 0 && udfb_read_file(&text, &len, path, 100, &err) == 0 &&
		      strcmp(text, "legacy sdist") == 0,
	      "  its download is the copy made when it was listed (%s)", s_or(err.msg));
	free(text);
	text = NULL;
	struct stat st;
	CHECK(stat(want_dt, &st) < 0, "  not in the cache while the index is in use (its sync is left for the end)");
	udfb_pkgindex_commit(ix);
	CHECK(udfb_read_file(&text, &len, want_dt, 100, &err) == 0 && strcmp(text, "legacy sdist") == 0,
	      "  then in the content cache under its sha256, as listed (%s)", s_or(err.msg));
	free(text);
	free(path);
	free(want_dt);
	path = NULL;
	/* A file past the import limit when copied: refused, named, nothing
	 * left in the index's directory. */
	struct udfb_fetch_opts *fo = (struct udfb_fetch_opts *)o; /* the index holds o */
	long long saved = fo->max_import_bytes;
	fo->max_import_bytes = 3;
	char *work = udfb_path_join(tmp, "work");
	int before = count_temporaries(work);
	rc = udfb_pkgindex_download(&path, ix, find(p, "numpy-2.0.zip"), 0, &err);
	fo->max_import_bytes = saved;
	CHECK(rc < 0 && err.cat == UDFB_E_INVALID && strstr(err.msg, "numpy-2.0.zip: larger than 3 bytes") &&
		      count_temporaries(work) == before,
	      "a file larger than the import limit is refused, named, its copy removed (%s)", s_or(err.msg));
	udfb_err_clear(&err);
	free(work);
	struct udfb_pkgfile bad = *sd;
	memcpy(bad.sha256, HEX_A, 65);
	rc = udfb_pkgindex_download(&path, ix, &bad, 0, &err);
	CHECK(rc < 0 && err.cat == UDFB_E_INVALID &&
		      strstr(err.msg, "numpy-1.0.tar.gz: sha256 mismatch (index says " HEX_A),
	      "a file that does not hash to the index's sha256 is refused (%s)", s_or(err.msg));
	udfb_err_clear(&err);
	free(want);

	rc = udfb_pkgindex_metadata(&text, &len, ix, wh, 0, &err);
	CHECK(rc == 0 && len == strlen(meta[1]) && strcmp(text, meta[1]) == 0,
	      "a wheel's METADATA, read from the downloaded wheel (%s)", s_or(err.msg));
	free(text);
	rc = udfb_pkgindex_metadata(&text, &len, ix, sd, 0, &err);
	CHECK(rc < 0 && err.cat == UDFB_E_UNSUPPORTED, "an sdist has no metadata without a build (%s)", s_or(err.msg));
	udfb_err_clear(&err);
	rc = udfb_pkgindex_metadata(&text, &len, ix, find(p, "numpy-3.0-py3-none-any.whl"), 0, &err);
	CHECK(rc < 0 && err.cat == UDFB_E_INVALID && strstr(err.msg, "several .dist-info"),
	      "two .dist-info/METADATA are refused (%s)", s_or(err.msg));
	udfb_err_clear(&err);
	rc = udfb_pkgindex_metadata(&text, &len, ix, find(p, "numpy-4.0-py3-none-any.whl"), 0, &err);
	CHECK(rc < 0 && err.cat == UDFB_E_INVALID && strstr(err.msg, "numpy-4.0-py3-none-any.whl: "),
	      "a wheel that is no zip is refused, named (%s)", s_or(err.msg));
	udfb_err_clear(&err);
	udfb_pkgindex_free(ix);
	free(file_url);
	free(one);
	free(two);
}

static void test_sources(const char *tmp, const struct udfb_fetch_opts *o)
{
	struct udfb_pkgindex *ix = NULL;
	struct udfb_err err = UDFB_ERR_INIT;
	char *bad[] = { "https://user:SECRET@[nonsense/simple" };
	CHECK(udfb_pkgindex_new(&ix, bad, 1, o, tmp, tmp, &err) < 0 && err.cat == UDFB_E_INVALID && no_secret(&err),
	      "an index URL that is none is refused without echoing it (%s)", s_or(err.msg));
	udfb_err_clear(&err);
	char *ftp[] = { "ftp://user:SECRET@host/simple" };
	CHECK(udfb_pkgindex_new(&ix, ftp, 1, o, tmp, tmp, &err) < 0 && err.cat == UDFB_E_UNSUPPORTED && no_secret(&err),
	      "another scheme is refused (%s)", s_or(err.msg));
	udfb_err_clear(&err);
	char *missing[] = { "/nonexistent/wheels" };
	CHECK(udfb_pkgindex_new(&ix, missing, 1, o, tmp, tmp, &err) < 0 && strstr(err.msg, "/nonexistent/wheels"),
	      "a missing directory is named (%s)", s_or(err.msg));
	udfb_err_clear(&err);

	/* Loopback is refused by the default guard before any connection:
	 * the whole page path runs without a network, and the message names
	 * the page without the index's secrets. */
	char *index[] = { "https://user:SECRET@127.0.0.1:1/simple/?token=SECRET" };
	ix = open_index(index, 1, o, tmp);
	const struct udfb_pkgproject *p = NULL;
	int rc = ix ? udfb_pkgindex_project(&p, ix, "numpy", 0, &err) : -1;
	CHECK(rc < 0 && err.msg && strstr(err.msg, "index page for numpy at https://127.0.0.1:1/simple/: refused") &&
		      no_secret(&err),
	      "a page the guard refuses: named by project and index, no secrets (%s)", s_or(err.msg));
	udfb_err_clear(&err);
	struct udfb_pkgfile f = { .filename = "numpy-1.0.tar.gz",
				  .url = "https://u:SECRET@127.0.0.1:1/numpy-1.0.tar.gz?SECRET",
				  .size = -1,
				  .has_metadata = 1 };
	char *path = NULL;
	rc = ix ? udfb_pkgindex_download(&path, ix, &f, 0, &err) : -1;
	CHECK(rc < 0 && err.msg && strncmp(err.msg, "numpy-1.0.tar.gz: refused", 25) == 0 && no_secret(&err),
	      "a file is named by its file name (%s)", s_or(err.msg));
	udfb_err_clear(&err);
	char *text = NULL;
	size_t len = 0;
	rc = ix ? udfb_pkgindex_metadata(&text, &len, ix, &f, 0, &err) : -1;
	CHECK(rc < 0 && err.msg && strncmp(err.msg, "numpy-1.0.tar.gz.metadata: refused", 34) == 0 && no_secret(&err),
	      "a PEP 658 file is named by the file name (%s)", s_or(err.msg));
	udfb_err_clear(&err);
	udfb_pkgindex_free(ix);
}

int main(void)
{
	char tmp[] = "/tmp/udfb-pkgindex-XXXXXX";
	if (!mkdtemp(tmp))
		return 1;
	struct udfb_fetch_opts o;
	udfb_fetch_opts_defaults(&o);
	o.attempts = 1;
	test_helpers();
	test_json();
	test_json_bad();
	test_html();
	test_local(tmp, &o);
	test_sources(tmp, &o);
	udfb_fetch_opts_free(&o);
	udfb_rm_rf(tmp);
	return check_done();
}
