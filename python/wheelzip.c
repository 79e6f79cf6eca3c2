/* Reading wheels with libarchive: the seekable zip reader, so entries come
 * from the central directory as Python's zipfile (and so pip) sees them,
 * never from local headers a crafted file could make disagree. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "python/wheel.h"
#include "python/wheel_internal.h"

#define WZIP_BLOCK (64u << 10)

int udfb_wzip_map(struct udfb_wmap *m, const char *path, int populate, struct udfb_err *err)
{
	memset(m, 0, sizeof(*m));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return udfb_err_sys(err, e, "wheel '%s': open", path);
	}
	if (!S_ISREG(st.st_mode) || st.st_size < 22) {
		close(fd);
		return udfb_err_set(err, UDFB_E_INVALID, "wheel '%s': not a zip file (too short)", path);
	}
	void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE | (populate ? MAP_POPULATE : 0), fd, 0);
	int e = errno;
	close(fd);
	if (p == MAP_FAILED)
		return udfb_err_sys(err, e, "wheel '%s': mmap", path);
	m->p = p;
	m->len = (size_t)st.st_size;
	return 0;
}

void udfb_wzip_unmap(struct udfb_wmap *m)
{
	if (m->p)
		munmap(m->p, m->len);
	m->p = NULL;
}

int udfb_wzip_open(struct udfb_wzip *z, const char *path, struct udfb_err *err)
{
	memset(z, 0, sizeof(*z));
	z->path = path;
	/* libarchive converts names through the thread's locale. */
	z->utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	if (z->utf8 == (locale_t)0)
		return udfb_err_set(err, UDFB_E_INTERNAL, "wheel '%s': the C.UTF-8 locale is not available", path);
	z->old = uselocale(z->utf8);
	z->a = archive_read_new();
	if (!z->a)
		abort();
	archive_read_support_format_zip_seekable(z->a);
	/* From memory: the seekable reader's reads and seeks of every local
	 * header are then copies, not system calls (two per entry). */
	if (udfb_wzip_map(&z->map, path, 0, err) < 0) {
		udfb_wzip_close(z);
		return -1;
	}
	if (archive_read_open_memory(z->a, z->map.p, z->map.len) != ARCHIVE_OK) {
		udfb_err_set(err, UDFB_E_INVALID, "wheel '%s': %s", path, archive_error_string(z->a));
		udfb_wzip_close(z);
		return -1;
	}
	return 0;
}

void udfb_wzip_close(struct udfb_wzip *z)
{
	if (z->a)
		archive_read_free(z->a);
	z->a = NULL;
	udfb_wzip_unmap(&z->map);
	if (z->utf8 != (locale_t)0) {
		uselocale(z->old);
		freelocale(z->utf8);
		z->utf8 = (locale_t)0;
	}
}

/* Length of the UTF-8 sequence at s (at most n bytes), 0 when invalid:
 * no overlong forms, no surrogates, nothing past U+10FFFF. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	if (s[0] < 0x80)
		return 1;
	size_t len = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
	if (len == 0 || s[0] > 0xf4 || len > n)
		return 0;
	for (size_t k = 1; k < len; k++)
		if ((s[k] & 0xc0) != 0x80)
			return 0;
	if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0) || (s[0] == 0xf0 && s[1] < 0x90) ||
	    (s[0] == 0xf4 && s[1] >= 0x90))
		return 0;
	return len;
}

static int name_bad(const char *wheel, const char *name, const char *why, struct udfb_err *err)
{
	return udfb_err_set(err, UDFB_E_INVALID, "wheel '%s': entry '%.300s': %s", wheel, name, why);
}

int udfb_wheel_check_name(const char *wheel, const char *name, int *is_dir, struct udfb_err *err)
{
	size_t n = strlen(name);
	if (n == 0)
		return name_bad(wheel, name, "empty name", err);
	if (n > WHEEL_MAX_NAME)
		return name_bad(wheel, name, "name too long", err);
	for (size_t k = 0; k < n;) {
		unsigned char c = (unsigned char)name[k];
		size_t len = utf8_len((const unsigned char *)name + k, n - k);
		if (len == 0)
			return name_bad(wheel, "?", "name is not UTF-8", err);
		if (c < 0x20 || c == 0x7f)
			return name_bad(wheel, "?", "control character in the name", err);
		if (c == '\\')
			return name_bad(wheel, name, "backslash in the name", err);
		k += len;
	}
	if (name[0] == '/')
		return name_bad(wheel, name, "absolute path", err);
	*is_dir = name[n - 1] == '/';
	size_t end = n - (size_t)*is_dir;
	for (size_t start = 0; start <= end;) {
		const char *slash = memchr(name + start, '/', end - start);
		size_t seg = slash ? (size_t)(slash - name) - start : end - start;
		if (seg == 0)
			return name_bad(wheel, name, "empty path segment", err);
		if ((seg == 1 && name[start] == '.') || (seg == 2 && name[start] == '.' && name[start + 1] == '.'))
			return name_bad(wheel, name, "'.' or '..' path segment", err);
		/* In an image layer such a name deletes files below it. */
		if (seg >= 4 && memcmp(name + start, ".wh.", 4) == 0)
			return name_bad(wheel, name, "a name starting with '.wh.' is an OCI whiteout", err);
		if (seg > 255)
			return name_bad(wheel, name, "a path segment longer than 255 bytes", err);
		start += seg + 1;
	}
	return 0;
}

size_t udfb_wheel_distinfo_len(const char *name)
{
	const char *slash = strchr(name, '/');
	size_t n = slash ? (size_t)(slash - name) : 0;
	static const char suffix[] = ".dist-info";
	if (n <= sizeof(suffix) - 1 || memcmp(name + n - (sizeof(suffix) - 1), suffix, sizeof(suffix) - 1) != 0)
		return 0;
	return n;
}

int udfb_wzip_next(struct udfb_wzip *z, struct archive_entry **e, const char **name, int *is_dir, struct udfb_err *err)
{
	int rc = archive_read_next_header(z->a, e);
	if (rc == ARCHIVE_EOF)
		return 0;
	if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN)
		return udfb_err_set(err, UDFB_E_INVALID, "wheel '%s': %s", z->path, archive_error_string(z->a));
	if (++z->n_entries > UDFB_WHEEL_MAX_FILES)
		return udfb_err_set(err, UDFB_E_INVALID, "wheel '%s': more than %d entries", z->path,
				    UDFB_WHEEL_MAX_FILES);
	*name = archive_entry_pathname(*e);
	if (!*name)
		return udfb_err_set(err, UDFB_E_INVALID, "wheel '%s': entry %zu has no usable name", z->path,
				    z->n_entries);
	if (udfb_wheel_check_name(z->path, *name, is_dir, err) < 0)
		return -1;
	mode_t type = archive_entry_filetype(*e);
	if (archive_entry_hardlink(*e) || archive_entry_symlink(*e) || (type != AE_IFREG && type != AE_IFDIR) ||
	    (type == AE_IFREG && *is_dir))
		return name_bad(z->path, *name, "not a regular file or directory (links and devices are refused)", err);
	if (type == AE_IFDIR)
		*is_dir = 1;
	return 1;
}

int udfb_wzip_read_small(struct udfb_wzip *z, char **out, size_t *len, size_t max, const char *name,
			 struct udfb_err *err)
{
	struct udfb_buf b;
	udfb_buf_init(&b, max);
	char chunk[WZIP_BLOCK];
	for (;;) {
		la_ssize_t n = archive_read_data(z->a, chunk, sizeof(chunk));
		if (n < 0) {
			udfb_buf_free(&b);
			return udfb_err_set(err, UDFB_E_INVALID, "wheel '%s': entry '%s': %s", z->path, name,
					    archive_error_string(z->a));
		}
		if (n == 0)
			break;
		if (udfb_buf_add(&b, chunk, (size_t)n) < 0) {
			udfb_buf_free(&b);
			return udfb_err_set(err, UDFB_E_INVALID, "wheel '%s': entry '%s': larger than %zu bytes",
					    z->path, name, max);
		}
	}
	*out = udfb_buf_steal(&b, len);
	return 0;
}

/* The single top-level .dist-info directory, as pip finds it. */
int udfb_wheel_note_distinfo(const char *wheel, char **distinfo, const char *name, size_t n, struct udfb_err *err)
{
	if (!*distinfo) {
		*distinfo = udfb_strndup(name, n);
		return 0;
	}
	if (strlen(*distinfo) != n || memcmp(*distinfo, name, n) != 0)
		return udfb_err_set(err, UDFB_E_INVALID, "wheel '%s': several .dist-info directories ('%s', '%.*s')",
				    wheel, *distinfo, (int)n, name);
	return 0;
}

static int find_metadata(struct udfb_wzip *z, char **text, size_t *len, struct udfb_err *err)
{
	char *distinfo = NULL;
	int rc;
	struct archive_entry *e;
	const char *name;
	int is_dir;
	while ((rc = udfb_wzip_next(z, &e, &name, &is_dir, err)) == 1) {
		size_t n = udfb_wheel_distinfo_len(name);
		if (n == 0)
			continue;
		if ((rc = udfb_wheel_note_distinfo(z->path, &distinfo, name, n, err)) < 0)
			break;
		if (!is_dir && !*text && strcmp(name + n, "/METADATA") == 0 &&
		    (rc = udfb_wzip_read_small(z, text, len, UDFB_METADATA_MAX_BYTES, name, err)) < 0)
			break;
	}
	if (rc == 0 && !distinfo)
		rc = udfb_err_set(err, UDFB_E_INVALID, "wheel '%s': no .dist-info directory", z->path);
	else if (rc == 0 && !*text)
		rc = udfb_err_set(err, UDFB_E_INVALID, "wheel '%s': no %s/METADATA", z->path, distinfo);
	free(distinfo);
	return rc;
}

int udfb_wheel_read_metadata(char **text, size_t *len, const char *path, struct udfb_err *err)
{
	struct udfb_wzip z;
	if (udfb_wzip_open(&z, path, err) < 0)
		return -1;
	*text = NULL;
	*len = 0;
	int rc = find_metadata(&z, text, len, err);
	udfb_wzip_close(&z);
	if (rc < 0) {
		free(*text);
		*text = NULL;
	}
	return rc;
}
