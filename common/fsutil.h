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

/* Grouped syncs.  Synced one after another, each small new file's fsync
 * waits for its own writes (and, on a journaled file system, its own
 * commit): the next file's data is not even on its way.  When the
 * writeback of all of them is started first and then each is fsync'd, the
 * writes are in flight together (and a journal's first commit carries the
 * others' metadata): 9 small files in 0.74-0.92 ms instead of 1.5-2.5 ms on
 * this machine's ext4, which has no journal (docs/benchmarks.md, issue 17).
 * Threads issuing the fsyncs at once did not pay here (2.5 ms for 9). */

/* Start writing fd's dirty pages back without waiting (sync_file_range):
 * an advice, the caller still fsyncs before trusting the bytes. */
void udfb_start_writeback(int fd);
/* All of len bytes to fd, through short writes and EINTR; -1 with errno
 * (ENOSPC for a write that made no progress). */
int udfb_write_all(int fd, const void *data, size_t len);
/* fsync every fd, after starting the writeback of all of them; what[k]
 * names fds[k] in an error. */
int udfb_fsync_fds(const int *fds, const char *const *what, size_t n, struct udfb_err *err);

/* Files made durable together: each added file is a temporary file beside
 * its final path, its writeback started; commit fsyncs them all (as
 * above), then renames each into place in the order they were added.  The
 * directories are not synced: the caller syncs them (or has an argument
 * why it need not). */
struct udfb_wgroup_file {
	char *tmp, *path;
	int fd;
	int keep; /* named by content: an existing path is left alone */
};
struct udfb_wgroup {
	struct udfb_wgroup_file *v;
	size_t n, cap;
};
void udfb_wgroup_init(struct udfb_wgroup *g);
/* The bytes into a new temporary file beside path; keep: an existing path
 * is left alone (renamed with RENAME_NOREPLACE where it can). */
int udfb_wgroup_add_bytes(struct udfb_wgroup *g, const char *path, const void *data, size_t len, int keep,
			  struct udfb_err *err);
/* A finished temporary file (taken over: renamed or removed by the group). */
int udfb_wgroup_add_tmp(struct udfb_wgroup *g, const char *tmp, const char *path, int keep, struct udfb_err *err);
/* fsync all, then rename all.  On an error nothing more is renamed. */
int udfb_wgroup_commit(struct udfb_wgroup *g, struct udfb_err *err);
/* Removes the temporary files not renamed, frees the group. */
void udfb_wgroup_free(struct udfb_wgroup *g);
/* Remove a tree; errors are ignored (used on temporary directories). */
void udfb_rm_rf(const char *path);
char *udfb_path_join(const char *a, const char *b);
int udfb_exists(const char *path);

#endif
