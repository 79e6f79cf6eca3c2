/* Deterministic layers (../shared/docs/images.md): entries sorted bytewise, parents
 * emitted explicitly, mtime 0, uid/gid 0, modes 0644/0755, pax_restricted
 * headers with UTF-8 names, gzip with no timestamp at a fixed level, in
 * 1 MiB chunks compressed in parallel (pgzip.h: the bytes never depend on
 * the thread count); a spliced file's content is a member of its own, the
 * deflate stream its wheel holds (gzsplice.h), and the chunks start again
 * after it.  One
 * pass yields both digests: the tar goes through sha256 (the diff_id) and
 * zlib, and the gzip stream through sha256 (the blob digest) to a file. */
#ifndef UDFB_LAYER_H
#define UDFB_LAYER_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/hash.h"

struct udfb_layer {
	char digest[UDFB_DIGEST_LEN + 1]; /* of the gzip blob */
	char diff_id[UDFB_DIGEST_LEN + 1]; /* of the uncompressed tar */
	long long size; /* of the gzip blob */
	char *path; /* temporary file holding the blob; malloc'd */
};

struct udfb_layer_writer;

void udfb_layer_writer_new(struct udfb_layer_writer **out);
/* gzip level of the blob (6 unless set): package layers, the big ones,
 * use 1.  Part of what the layer's bytes depend on. */
void udfb_layer_writer_set_level(struct udfb_layer_writer *w, int level);
/* Paths are relative ("app/udf.py"); parents are added as directories. */
int udfb_layer_add_bytes(struct udfb_layer_writer *w, const char *path, const void *data, size_t len, int executable,
			 struct udfb_err *err);
/* The file is read when the layer is written; executable gives mode 0755. */
int udfb_layer_add_file(struct udfb_layer_writer *w, const char *path, const char *src, long long size, int executable,
			struct udfb_err *err);
/* The size bytes at offset in src: many small files packed in one file
 * (a wheel's) cost one file creation instead of one each. */
int udfb_layer_add_file_range(struct udfb_layer_writer *w, const char *path, const char *src, long long offset,
			      long long size, int executable, struct udfb_err *err);
/* A range as above whose content the caller holds compressed too: the len
 * bytes at offset of src are a raw deflate stream (a wheel's entry) that
 * inflates, from an empty window, to exactly that content, whose CRC-32 is
 * crc32.  The blob then holds the stream itself as a gzip member of its
 * own (gzsplice.h) instead of compressing the content again; the tar, and
 * so the diff_id, is the same as udfb_layer_add_file_range's. */
struct udfb_layer_splice {
	const char *src; /* borrowed */
	long long offset, len;
	uint32_t crc32;
};
int udfb_layer_add_file_spliced(struct udfb_layer_writer *w, const char *path, const char *src, long long offset,
				long long size, int executable, const struct udfb_layer_splice *sp,
				struct udfb_err *err);
/* The same from memory: len bytes at data (borrowed until the layer is
 * written, see udfb_layer_writer_keep), and raw_len bytes at raw its raw
 * deflate stream (as above); the layer's bytes are those of the file
 * variants for the same content and stream. */
int udfb_layer_add_bytes_spliced(struct udfb_layer_writer *w, const char *path, const void *data, size_t len,
				 int executable, const void *raw, size_t raw_len, uint32_t crc32, struct udfb_err *err);
/* The writer takes the arena (its bytes borrowed by entries) and unmaps it
 * when freed; *a is left empty. */
struct udfb_arena;
void udfb_layer_writer_keep(struct udfb_layer_writer *w, struct udfb_arena *a);
/* The bytes in use of the arenas w keeps: what its entries hold in memory. */
size_t udfb_layer_writer_kept(const struct udfb_layer_writer *w);
int udfb_layer_add_dir(struct udfb_layer_writer *w, const char *path, struct udfb_err *err);
/* A symbolic link to target (borrowed until the layer is written). */
int udfb_layer_add_symlink(struct udfb_layer_writer *w, const char *path, const char *target, struct udfb_err *err);
/* 0 when path (no trailing '/') is not in the layer, 1 when it is a file,
 * 2 when it is a directory. */
int udfb_layer_contains(const struct udfb_layer_writer *w, const char *path);
/* The diff_id the layer will have, from one uncompressed pass (the writer
 * stays usable): the store maps it to a blob already compressed. */
int udfb_layer_diff_id(char out[UDFB_DIGEST_LEN + 1], struct udfb_layer_writer *w, struct udfb_err *err);
/* Write the layer into a temporary file in tmpdir and free the writer.
 * The file's bytes are not fsync'd (only their writeback is started): the
 * caller syncs before it renames the file anywhere it is trusted. */
int udfb_layer_write(struct udfb_layer *out, struct udfb_layer_writer *w, const char *tmpdir, struct udfb_err *err);
void udfb_layer_writer_free(struct udfb_layer_writer *w);
void udfb_layer_clear(struct udfb_layer *l);

#endif
