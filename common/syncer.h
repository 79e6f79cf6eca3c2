/* A file flushed to the disk while it is being written.
 *
 * Why: a build ends by syncing its blobs, and here an fsync costs about a
 * millisecond per MiB written since the last one, however long ago the
 * writeback was started (the virtual disk's flush), so a 22 MiB wheel
 * layer kept the build waiting 20-30 ms at its end.  Flushed in steps by a
 * thread of its own as the file grows, the flushes overlap the rest of the
 * work and the final fsync finds little left (a file written at 1.5 ms a
 * MiB: 2.5 ms instead of 23; see docs/packages.md for a layer).  The
 * thread starts at the first step: a small file never starts it.
 *
 * The final fsync stays the caller's.  A failed flush is kept and returned
 * by udfb_syncer_stop: the kernel reports a write error to one fsync only,
 * so the final one would not see it again. */
#ifndef UDFB_SYNCER_H
#define UDFB_SYNCER_H

#include <pthread.h>

struct udfb_syncer {
	int fd;
	long long step; /* bytes between flushes */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	long long written, asked; /* bytes written; flushed or being flushed */
	int started, stopping, errnum;
	pthread_t th;
};

/* fd: the file, open for writing until udfb_syncer_stop. */
void udfb_syncer_init(struct udfb_syncer *s, int fd, long long step);
/* n more bytes written to fd (by one thread, in order). */
void udfb_syncer_wrote(struct udfb_syncer *s, long long n);
/* Waits for the flush under way: 0, or the errno of a flush that failed. */
int udfb_syncer_stop(struct udfb_syncer *s);

#endif
