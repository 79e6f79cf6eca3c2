/* Reading wheels with libzip: entries come from the central directory as
 * Python's zipfile (and so pip) sees them, never from local headers a
 * crafted file could make disagree; a local header is read only for an
 * entry whose data is read (so a scan of a thousand entries touches no
 * page of the file but the central directory's). */
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

/* Pages are not read in here: a scan touches only the central directory
 * (udfb_wzip_populate reads the rest in for the extract). */
static int wzip_map(struct udfb_wmap *m, const char *path, struct udfb_err *err)
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
	void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	int e = errno;
	close(fd);
	if (p == MAP_FAILED)
		return udfb_err_sys(err, e, "wheel '%s': mmap", path);
	m->p = p;
	m->len = (size_t)st.st_size;
	return 0;
}

static void wzip_unmap(struct udfb_wmap *m)
{
	if (m->p)
		munmap(m->p, m->len);
	m->p = NULL;
}

/* libzip's reads through a wheel source: copies out of the mapping, the
 * place of the last one noted. */
static zip_int64_t wsrc_cb(void *ud, void *data, zip_uint64_t len, zip_source_cmd_t cmd)
{
	struct udfb_wsrc *s = ud;
	switch (cmd) {
	case ZIP_SOURCE_OPEN: s->pos = 0; return 0;
	case ZIP_SOURCE_READ: {
		zip_uint64_t n = len < s->len - s->pos ? len : s->len - s->pos;
		if (n)
			memcpy(data, s->p + s->pos, n);
		s->last = s->pos;
		s->pos += n;
		return (zip_int64_t)n;
	}
	case ZIP_SOURCE_SEEK: {
		zip_int64_t to = zip_source_seek_compute_offset(s->pos, s->len, data, len, &s->error);
		if (to < 0)
			return -1;
		s->pos = (zip_uint64_t)to;
		return 0;
	}
	case ZIP_SOURCE_TELL: return (zip_int64_t)s->pos;
	case ZIP_SOURCE_STAT: {
		zip_stat_t *st = data;
		if (len < sizeof(*st)) {
			zip_error_set(&s->error, ZIP_ER_INVAL, 0);
			return -1;
		}
		zip_stat_init(st);
		st->size = st->comp_size = s->len;
		st->comp_method = ZIP_CM_STORE;
		st->encryption_method = ZIP_EM_NONE;
		st->valid = ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD | ZIP_STAT_ENCRYPTION_METHOD;
		return (zip_int64_t)sizeof(*st);
	}
	case ZIP_SOURCE_ERROR: return zip_error_to_data(&s->error, data, len);
	case ZIP_SOURCE_CLOSE:
	case ZIP_SOURCE_FREE: return 0;
	case ZIP_SOURCE_SUPPORTS: return ZIP_SOURCE_SUPPORTS_SEEKABLE;
	default: zip_error_set(&s->error, ZIP_ER_OPNOTSUPP, 0); return -1;
	}
}

zip_source_t *udfb_wsrc_new(struct udfb_wsrc *s, const struct udfb_wmap *m, zip_error_t *ze)
{
	memset(s, 0, sizeof(*s));
	s->p = m->p;
	s->len = m->len;
	zip_error_init(&s->error);
	return zip_source_function_create(wsrc_cb, s, ze);
}

const unsigned char *udfb_wsrc_stored(struct udfb_wsrc *s, zip_file_t *zf, zip_uint64_t comp)
{
	if (!comp)
		return s->p; /* nothing to read: any place will do */
	unsigned char first = 0;
	s->last = UINT64_MAX;
	if (zip_fread(zf, &first, 1) != 1 || s->last > s->len || comp > s->len - s->last || s->p[s->last] != first)
		return NULL;
	return s->p + s->last;
}

int udfb_wzip_open(struct udfb_wzip *z, const char *path, struct udfb_err *err)
{
	memset(z, 0, sizeof(*z));
	z->path = path;
	/* From memory: libzip's reads of the central directory and of an
	 * entry's local header are then copies, not system calls.  Not
	 * ZIP_CHECKCONS: it refuses zips written as a stream (sizes in a data
	 * descriptor after the data), which pip reads. */
	if (wzip_map(&z->map, path, err) < 0)
		return -1;
	zip_error_t ze;
	zip_error_init(&ze);
	zip_source_t *src = udfb_wsrc_new(&z->src, &z->map, &ze);
	z->z = src ? zip_open_from_source(src, ZIP_RDONLY, &ze) : NULL;
	if (!z->z) {
		udfb_err_set(err, UDFB_E_INVALID, "wheel '%s': %s", path, zip_error_strerror(&ze));
		if (src)
			zip_source_free(src);
		zip_error_fini(&ze);
		udfb_wzip_close(z);
		return -1;
	}
	zip_error_fini(&ze);
	z->n = zip_get_num_entries(z->z, 0);
	return 0;
}

void udfb_wzip_populate(struct udfb_wzip *z)
{
	if (z->map.p)
		(void)madvise(z->map.p, z->map.len, MADV_POPULATE_READ);
}

void udfb_wzip_close(struct udfb_wzip *z)
{
	if (z->z)
		zip_discard(z->z); /* frees the source */
	z->z = NULL;
	wzip_unmap(&z->map);
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

/* The entry's file type and permissions as libarchive's zip reader (and
 * so earlier versions of this file) read them: a unix "version made by"
 * gives the mode; MS-DOS, its directory bit; a name ending in '/' is a
 * directory whatever the attributes say of a regular file. */
static int entry_type(struct udfb_wzip *z, struct udfb_wentry *e, mode_t *type, struct udfb_err *err)
{
	zip_uint8_t opsys = 0;
	zip_uint32_t attr = 0;
	if (zip_file_get_external_attributes(z->z, e->index, 0, &opsys, &attr) < 0)
		return name_bad(z->path, e->name, zip_strerror(z->z), err);
	mode_t mode = opsys == ZIP_OPSYS_UNIX  ? (mode_t)(attr >> 16)
		      : opsys == ZIP_OPSYS_DOS ? ((attr & 0x10) ? S_IFDIR | 0775 : S_IFREG | 0664)
					       : 0;
	*type = mode & S_IFMT;
	e->perm = mode & 07777;
	if (*type == 0 && !e->perm)
		e->perm = e->is_dir ? 0755 : 0644;
	if (*type == 0 || (*type == S_IFREG && e->is_dir))
		*type = e->is_dir ? S_IFDIR : S_IFREG;
	return 0;
}

int udfb_wzip_next(struct udfb_wzip *z, struct udfb_wentry *e, struct udfb_err *err)
{
	if (z->next >= z->n)
		return 0;
	memset(e, 0, sizeof(*e));
	e->index = (zip_uint64_t)z->next++;
	if (z->next > UDFB_WHEEL_MAX_FILES)
		return udfb_err_set(err, UDFB_E_INVALID, "wheel '%s': more than %d entries", z->path,
				    UDFB_WHEEL_MAX_FILES);
	zip_stat_t st;
	zip_stat_init(&st);
	if (zip_stat_index(z->z, e->index, ZIP_FL_ENC_RAW, &st) < 0)
		return udfb_err_set(err, UDFB_E_INVALID, "wheel '%s': %s", z->path, zip_strerror(z->z));
	if (!(st.valid & ZIP_STAT_NAME) || !st.name)
		return udfb_err_set(err, UDFB_E_INVALID, "wheel '%s': entry %lld has no usable name", z->path,
				    (long long)z->next);
	e->name = st.name;
	e->size = (st.valid & ZIP_STAT_SIZE) && st.size <= (zip_uint64_t)UDFB_WHEEL_MAX_UNPACKED ? (long long)st.size
												 : -1;
	if (udfb_wheel_check_name(z->path, e->name, &e->is_dir, err) < 0)
		return -1;
	mode_t type = 0;
	if (entry_type(z, e, &type, err) < 0)
		return -1;
	if (type != S_IFREG && type != S_IFDIR)
		return name_bad(z->path, e->name, "not a regular file or directory (links and devices are refused)",
				err);
	if (type == S_IFDIR)
		e->is_dir = 1;
	return 1;
}

int udfb_wzip_read_small(struct udfb_wzip *z, const struct udfb_wentry *e, char **out, size_t *len, size_t max,
			 struct udfb_err *err)
{
	zip_file_t *zf = zip_fopen_index(z->z, e->index, 0);
	if (!zf)
		return udfb_err_set(err, UDFB_E_INVALID, "wheel '%s': entry '%s': %s", z->path, e->name,
				    zip_strerror(z->z));
	struct udfb_buf b;
	udfb_buf_init(&b, max);
	char chunk[WZIP_BLOCK];
	int rc = 0;
	for (;;) {
		zip_int64_t n = zip_fread(zf, chunk, sizeof(chunk));
		if (n < 0) {
			rc = udfb_err_set(err, UDFB_E_INVALID, "wheel '%s': entry '%s': %s", z->path, e->name,
					  zip_file_strerror(zf));
			break;
		}
		if (n == 0)
			break;
		if (udfb_buf_add(&b, chunk, (size_t)n) < 0) {
			rc = udfb_err_set(err, UDFB_E_INVALID, "wheel '%s': entry '%s': larger than %zu bytes", z->path,
					  e->name, max);
			break;
		}
	}
	zip_fclose(zf);
	if (rc < 0) {
		udfb_buf_free(&b);
		return rc;
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
	struct udfb_wentry e;
	while ((rc = udfb_wzip_next(z, &e, err)) == 1) {
		size_t n = udfb_wheel_distinfo_len(e.name);
		if (n == 0)
			continue;
		if ((rc = udfb_wheel_note_distinfo(z->path, &distinfo, e.name, n, err)) < 0)
			break;
		if (!e.is_dir && !*text && strcmp(e.name + n, "/METADATA") == 0 &&
		    (rc = udfb_wzip_read_small(z, &e, text, len, UDFB_METADATA_MAX_BYTES, err)) < 0)
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
