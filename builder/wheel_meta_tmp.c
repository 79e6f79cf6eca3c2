/* TEMPORARY: udfb_wheel_read_metadata for the package index until
 * builder/wheel.c lands; replaced by wheel.c on merge (delete this file
 * then).  It works for real so that the index's tests are real: the one
 * <name>.dist-info/METADATA of a wheel, read through libarchive, within
 * UDFB_METADATA_MAX_BYTES. */
#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "wheel.h"

static const char *why(struct archive *a)
{
	const char *s = archive_error_string(a);
	return s ? s : "unknown error";
}

/* "<dir>.dist-info/METADATA" at the top of the archive. */
static int is_metadata(const char *p)
{
	const char *slash = strchr(p, '/');
	if (!slash || strcmp(slash, "/METADATA") != 0 || slash - p <= 10)
		return 0;
	return strncmp(slash - 10, ".dist-info", 10) == 0;
}

static int read_entry(struct udfb_buf *b, struct archive *a, const char *path, struct udfb_err *err)
{
	char chunk[16384];
	for (;;) {
		la_ssize_t n = archive_read_data(a, chunk, sizeof(chunk));
		if (n < 0)
			return udfb_err_set(err, UDFB_E_INVALID, "%s: METADATA: %s", path, why(a));
		if (n == 0)
			return 0;
		if (udfb_buf_add(b, chunk, (size_t)n) < 0)
			return udfb_err_set(err, UDFB_E_INVALID, "%s: METADATA larger than %u bytes", path,
					    UDFB_METADATA_MAX_BYTES);
	}
}

static int scan(struct udfb_buf *b, struct archive *a, const char *path, struct udfb_err *err)
{
	struct archive_entry *e;
	int found = 0, rc;
	size_t entries = 0;
	while ((rc = archive_read_next_header(a, &e)) == ARCHIVE_OK || rc == ARCHIVE_WARN) {
		if (++entries > UDFB_WHEEL_MAX_FILES)
			return udfb_err_set(err, UDFB_E_INVALID, "%s: more than %d entries", path, UDFB_WHEEL_MAX_FILES);
		const char *name = archive_entry_pathname(e);
		if (!name || !is_metadata(name))
			continue;
		/* Two would leave it open which one describes the wheel. */
		if (found++)
			return udfb_err_set(err, UDFB_E_INVALID, "%s: more than one .dist-info/METADATA", path);
		if (read_entry(b, a, path, err) < 0)
			return -1;
	}
	if (rc != ARCHIVE_EOF)
		return udfb_err_set(err, UDFB_E_INVALID, "%s: not a readable zip (%s)", path, why(a));
	if (!found)
		return udfb_err_set(err, UDFB_E_INVALID, "%s: no .dist-info/METADATA", path);
	return 0;
}

int udfb_wheel_read_metadata(char **text, size_t *len, const char *path, struct udfb_err *err)
{
	struct archive *a = archive_read_new();
	if (!a)
		abort();
	/* The central directory, not local headers: it is what installers read. */
	archive_read_support_format_zip_seekable(a);
	struct udfb_buf b;
	udfb_buf_init(&b, UDFB_METADATA_MAX_BYTES);
	int rc;
	if (archive_read_open_filename(a, path, 65536) != ARCHIVE_OK)
		rc = udfb_err_set(err, UDFB_E_INVALID, "%s: not a readable zip (%s)", path, why(a));
	else
		rc = scan(&b, a, path, err);
	archive_read_free(a);
	if (rc < 0) {
		udfb_buf_free(&b);
		return -1;
	}
	if (!b.data && udfb_buf_add(&b, "", 0) < 0)
		abort();
	*text = udfb_buf_steal(&b, len);
	return 0;
}
