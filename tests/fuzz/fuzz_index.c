/* Fuzz target: a package index's project page.  The first byte picks the
 * parser (even: PEP 691 JSON, odd: PEP 503 HTML), the rest is the page,
 * read as if fetched from a fixed URL with credentials.  Every file that
 * comes out must be one the rest of the builder can use safely. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pkgindex/pkgindex.h"

#define SECRET "S3CR3T"
#define PAGE_URL "https://user:" SECRET "@index.example/simple/numpy/?key=" SECRET

static int hex64(const char *s)
{
	if (!*s)
		return 1;
	if (strlen(s) != 64)
		return 0;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return 0;
	return 1;
}

static void check_file(const struct udfb_pkgfile *f)
{
	size_t n = strlen(f->filename);
	if (n == 0 || n > 255 || strchr(f->filename, '/') || !f->url || f->path)
		abort();
	if (strncmp(f->url, "http://", 7) != 0 && strncmp(f->url, "https://", 8) != 0)
		abort();
	if (strchr(f->url, '#') || !hex64(f->sha256) || !hex64(f->metadata_sha256))
		abort();
	if (f->metadata_sha256[0] && !f->has_metadata)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	struct udfb_pkgproject p;
	struct udfb_err err = UDFB_ERR_INIT;
	const char *body = (const char *)data + 1;
	int rc = data[0] % 2 == 0 ? udfb_pkgindex_parse_json(&p, PAGE_URL, body, size - 1, &err)
				  : udfb_pkgindex_parse_html(&p, PAGE_URL, body, size - 1, &err);
	if (rc == 0) {
		if (p.n_files > UDFB_INDEX_MAX_FILES)
			abort();
		for (size_t k = 0; k < p.n_files; k++)
			check_file(&p.files[k]);
		udfb_pkgproject_free(&p);
	} else if (!err.msg || err.cat == UDFB_E_OK || strchr(err.msg, '\n')) {
		abort(); /* every failure explains itself on one line */
	} else if (strstr(err.msg, SECRET) && !memmem(data, size, SECRET, strlen(SECRET))) {
		abort(); /* the page URL's secret stays out of messages */
	}
	udfb_err_clear(&err);
	return 0;
}
