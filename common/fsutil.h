/* File-system helpers: bounded reads, crash-safe writes (temporary file,
 * fsync, rename, fsync of the directory), directory creation. */
#ifndef UDFB_FSUTIL_H
#define UDFB_FSUTIL_H

#include <stddef.h>

#include "common/err.h"

/* Read a whole file, failing with UDFB_E_EXHAUSTED past max bytes.  *out is
 * NUL-terminated (not counted in *len); free() it. */
int udfb_read_file(char **out, size_t *len, const char *path, size_t max, struct udfb_err *err);
/* Write via DIR/.tmp-XXXXXX, fsync, rename over path, fsync DIR. */
int udfb_write_file_atomic(const char *path, const void *data, size_t len, struct udfb_err *err);
/* The same without the fsync of DIR: the rename becomes durable with the
 * next sync of DIR (the caller's, batched over many files). */
int udfb_write_file_nodirsync(const char *path, const void *data, size_t len, struct udfb_err *err);
/* The same without any fsync: for records a reader checks (a torn or lost
 * one reads as absent), never for what is trusted as written. */
int udfb_write_file_unsynced(const char *path, const void *data, size_t len, struct udfb_err *err);
int udfb_mkdir_p(const char *path, int mode, struct udfb_err *err);
/* Make an empty temporary file in dir; *out is its malloc'd path. */
int udfb_mktemp(char **out, int *fd, const char *dir, struct udfb_err *err);
/* Put src at dst atomically: a hard link when both are on one file system,
 * else a copy written crash-safely.  An existing dst is left alone (blobs are
 * named by content, so it is already right). */
int udfb_link_or_copy(const char *src, const char *dst, struct udfb_err *err);
int udfb_fsync_dir(const char *dir, struct udfb_err *err);
int udfb_fsync_fd(int fd, const char *what, struct udfb_err *err);
/* Remove a tree; errors are ignored (used on temporary directories). */
void udfb_rm_rf(const char *path);
char *udfb_path_join(const char *a, const char *b);
int udfb_exists(const char *path);

#endif
