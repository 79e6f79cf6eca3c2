/* A fixed pool of worker threads fed by a FIFO queue.  The gRPC front end
 * hands slow calls to one pool and the service runs builds on another, so
 * completion-queue threads never block on a build. */
#ifndef UDFB_POOL_H
#define UDFB_POOL_H

#include <stddef.h>

struct udfb_pool;

struct udfb_pool *udfb_pool_new(int threads, const char *name);
/* Queue fn(arg); returns -1 once the pool is shutting down. */
int udfb_pool_submit(struct udfb_pool *p, void (*fn)(void *arg), void *arg);
size_t udfb_pool_queued(struct udfb_pool *p);
/* Run what is queued, then join the threads and free the pool. */
void udfb_pool_free(struct udfb_pool *p);

#endif
