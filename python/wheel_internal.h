/* Pieces shared by the wheel files (wheelname.c, pytags.c, pkgmeta.c,
 * wheelzip.c, record.c, entrypoints.c, wheel.c); not part of wheel.h. */
#ifndef UDFB_WHEEL_INTERNAL_H
#define UDFB_WHEEL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <zip.h>

#include "common/arena.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/hash.h"
#include "common/strmap.h"
#include "python/wheel.h"

#define WHEEL_MAX_NAME 1024 /* bytes of one entry name */
#define WHEEL_MAX_WHEEL_FILE (64u << 10) /* .dist-info/WHEEL */
#define WHEEL_MAX_RECORD (64u << 20) /* .dist-info/RECORD: 100,000 rows of long paths */
#define WHEEL_MAX_ENTRY_POINTS (1u << 20)
#define WHEEL_MAX_SCRIPTS 10000 /* console and GUI scripts of one wheel */
#define WHEEL_B64_SHA256_LEN 43 /* urlsafe base64 of 32 bytes, no padding */
/* A deflate stream shorter than this is not spliced: its member's 18
 * bytes and the break in the glue's compression would cost more than
 * compressing it again.  Part of UDFB_LAYER_FORMAT. */
#define WHEEL_SPLICE_MIN 512

/* RFC 822 headers of text up to the first blank line, continuation lines
 * joined: fn gets each header's name and unfolded, trimmed value (both
 * NUL-terminated).  what names the file in errors.  A non-zero return of
 * fn stops the walk and is returned (fn sets err). */
typedef int (*udfb_header_fn)(void *ctx, const char *name, const char *value, struct udfb_err *err);
int udfb_headers_each(const char *text, size_t len, const char *what, udfb_header_fn fn, void *ctx,
		      struct udfb_err *err);

/* A wheel mapped into memory (read only, private): ours, in the content
 * cache or a temporary directory, not changed while read. */
struct udfb_wmap {
	void *p;
	size_t len;
};

/* A libzip source over a mapped wheel (m) that notes where each read
 * begins: libzip reads an entry's stored bytes (ZIP_FL_COMPRESSED) from
 * the file at their place, so the byte it reads first is where they are in
 * the mapping, and they can be used there rather than copied (a wheel's
 * worth of fresh memory costs more than inflating it, see common/arena.h).
 * The extractor inflates and checks them there like any copy: a place
 * misjudged could only fail those checks. */
struct udfb_wsrc {
	const unsigned char *p;
	zip_uint64_t len, pos, last;
	zip_error_t error;
};
zip_source_t *udfb_wsrc_new(struct udfb_wsrc *s, const struct udfb_wmap *m, zip_error_t *ze);
/* The comp stored bytes of the entry zf (opened with ZIP_FL_COMPRESSED,
 * nothing read yet) in the mapping; NULL when libzip did not read them
 * from a place inside it. */
const unsigned char *udfb_wsrc_stored(struct udfb_wsrc *s, zip_file_t *zf, zip_uint64_t comp);

/* A wheel opened with libzip from its central directory, as Python's
 * zipfile (and so pip) sees it: entry names are the bytes the zip holds,
 * whatever the process's locale.  Only the entries read are looked at
 * past the central directory (the extract pass reads every one). */
struct udfb_wzip {
	zip_t *z;
	struct udfb_wmap map;
	struct udfb_wsrc src; /* libzip reads through it */
	const char *path;
	zip_int64_t n, next; /* entries; the next one */
};

/* One entry as the zip's central directory gives it. */
struct udfb_wentry {
	zip_uint64_t index;
	const char *name; /* checked (udfb_wheel_check_name); libzip's */
	long long size; /* what it inflates to, as declared */
	unsigned perm; /* the unix permission bits (0644 or 0755 when none) */
	int is_dir;
};

int udfb_wzip_open(struct udfb_wzip *z, const char *path, struct udfb_err *err);
/* Every page of the mapping read in now (an advice), for a reader of all
 * of it: a fault a page costs more than reading it. */
void udfb_wzip_populate(struct udfb_wzip *z);
void udfb_wzip_close(struct udfb_wzip *z);
/* 1 with the next entry, a regular file or a directory, 0 at the end, -1
 * on errors (and past UDFB_WHEEL_MAX_FILES entries). */
int udfb_wzip_next(struct udfb_wzip *z, struct udfb_wentry *e, struct udfb_err *err);
/* The data of entry e, at most max bytes (NUL-terminated). */
int udfb_wzip_read_small(struct udfb_wzip *z, const struct udfb_wentry *e, char **out, size_t *len, size_t max,
			 struct udfb_err *err);

/* Entry names: UTF-8, no control characters or backslashes, relative, no
 * empty, '.' or '..' segments, at most WHEEL_MAX_NAME bytes.  A trailing
 * '/' marks a directory (*is_dir), and only then is allowed. */
int udfb_wheel_check_name(const char *wheel, const char *name, int *is_dir, struct udfb_err *err);
/* The top-level "X.dist-info" directory a name is under, or 0. */
size_t udfb_wheel_distinfo_len(const char *name);

/* "sha256=" value of RECORD: urlsafe base64 without padding of the raw
 * digest behind a "sha256:<hex>" string. */
void udfb_record_b64(char out[WHEEL_B64_SHA256_LEN + 1], const char digest[UDFB_DIGEST_LEN + 1]);

/* RECORD rows of a wheel, by path. */
struct udfb_record_row {
	char *path;
	char *hash; /* "" when empty */
	long long size; /* -1 when empty */
};
struct udfb_record {
	struct udfb_record_row *rows;
	size_t n;
	struct udfb_strmap index; /* path -> row */
};
int udfb_record_parse(struct udfb_record *r, const char *text, size_t len, const char *wheel, struct udfb_err *err);
const struct udfb_record_row *udfb_record_find(const struct udfb_record *r, const char *path);
void udfb_record_free(struct udfb_record *r);
/* One CSV row as Python's csv writer makes it (quoted when needed, \r\n). */
int udfb_record_add_row(struct udfb_buf *b, const char *path, const char *b64, long long size);

/* entry_points.txt: the [console_scripts] and [gui_scripts] sections. */
struct udfb_entry_point {
	char *name; /* the script's file name */
	char *module; /* "pkg.cli" */
	char *attr; /* "main" or "Cls.method" */
};
struct udfb_entry_points {
	struct udfb_entry_point *v;
	size_t n;
	struct udfb_strmap names;
};
int udfb_entry_points_parse(struct udfb_entry_points *out, const char *text, size_t len, const char *wheel,
			    struct udfb_err *err);
void udfb_entry_points_free(struct udfb_entry_points *ep);
/* 1 when a file of .data/scripts/ with this base name is a wrapper that
 * setuptools made for an entry point (pip skips those: it makes its own). */
int udfb_entry_points_wraps(const struct udfb_entry_points *ep, const char *base);
/* The script pip's ScriptMaker writes for ep, run by python. */
int udfb_entry_point_script(struct udfb_buf *b, const struct udfb_entry_point *ep, const char *python);

/* udfb_wheel_install's state, shared by wheel.c (checks and plan) and
 * wheel_extract.c (streaming the files out, generated files). */
struct udfb_wfile {
	char *zipname;
	char *dest; /* relative to the target; NULL: not installed */
	long long size; /* declared by the zip */
	int exec; /* an executable bit in the zip's unix mode */
	int script; /* .data/scripts/: shebang rewritten, 0755 */
	int exempt; /* RECORD's signatures: no hash required */
	long long offset, out_size; /* the installed bytes in the pack */
	/* Not NULL: the installed bytes are here instead (packs in memory: a
	 * file inflated in place, or stored in the wheel's mapping). */
	const unsigned char *data;
	/* raw_len > 0: the zip's deflate stream of the content, checked to
	 * inflate to it, is raw_len bytes at raw_offset of the raw pack; the
	 * layer splices it (image/gzsplice.h).  crc: of the content. */
	long long raw_offset, raw_len;
	uint32_t crc;
	char b64[WHEEL_B64_SHA256_LEN + 1]; /* of the installed bytes */
};

struct udfb_winst {
	const char *path; /* the wheel, for messages */
	const struct udfb_wheel_install_opts *o;
	struct udfb_wfile *files; /* zip order, directories left out */
	size_t n_files;
	struct udfb_wfile *gen; /* scripts, INSTALLER, RECORD */
	size_t n_gen;
	struct udfb_strmap by_zip, by_dest;
	char *distinfo, *project;
	char *wheel_txt, *record_txt, *ep_txt;
	size_t wheel_len, record_len, ep_len;
	struct udfb_record record;
	struct udfb_entry_points eps;
	/* mem: the packs in memory, when the wheel and its files fit in the
	 * options' mem_pack_max; else files.  In memory, the pack is an arena
	 * and the raw pack is the wheel's mapping (the stored bytes where they
	 * are), both taken by the layer writer. */
	int mem;
	struct udfb_arena pack_mem, wheel_mem;
	struct udfb_wzip zip; /* the wheel, open from the scan to the extract's end */
	struct udfb_wsrc *src; /* zip's, while extracting */
	long long declared; /* the files' sizes as the zip declares them */
	long long kept; /* memory the layer writer holds already (other wheels' packs) */
	size_t file_len; /* the wheel file's bytes */
	/* Every installed file's bytes, one after another, in one file under
	 * o->tmpdir: the layer takes ranges of it. */
	char *pack;
	int pack_fd;
	long long pack_len;
	char *wbuf; /* write buffer of the pack */
	size_t wlen;
	int write_errno;
	/* The deflate streams the layer splices, one after another. */
	char *raw;
	int raw_fd;
	long long raw_len;
	int raw_errno;
	/* The buffer of an entry read streamed (streamed(), wheel_extract.c). */
	unsigned char *rawbuf;
	size_t rawcap;
	struct libdeflate_decompressor *inflater;
	long long total; /* bytes unpacked */
	long long limit; /* on total: the options' max_unpacked or UDFB_WHEEL_MAX_UNPACKED */
};

int udfb_wheel_extract(struct udfb_winst *in, struct udfb_err *err);
int udfb_wheel_generate(struct udfb_winst *in, struct udfb_err *err);
/* One more name in the single top-level .dist-info directory (wheelzip.c). */
int udfb_wheel_note_distinfo(const char *wheel, char **distinfo, const char *name, size_t n, struct udfb_err *err);

#endif
