/* The queue of calls waiting for a call worker, fair between tenants (the
 * service's builds waiting for a build worker use it too).
 *
 * A plain FIFO lets one tenant that sends many slow calls (imports that
 * stall, builds that take minutes) push every other tenant's calls behind
 * its own: they wait for workers its calls hold until their deadlines.
 * Here each tenant has a FIFO of its own, and a worker takes the next call
 * round-robin over the tenants with calls waiting, so a tenant waits for at
 * most one call of each other tenant ahead of it.  A tenant may have at
 * most max_waiting calls waiting; past that a call is refused at once
 * (EXHAUSTED: RESOURCE_EXHAUSTED), so no tenant fills memory or the queue.
 * Thread-safe; the items are the caller's. */
#ifndef UDFB_CALLQ_H
#define UDFB_CALLQ_H

#include <stddef.h>

#include "common/err.h"

struct udfb_callq;

/* max_waiting: per tenant, at least 1. */
struct udfb_callq *udfb_callq_new(int max_waiting);
/* Queue item for tenant ("" when the call named none); -1 and EXHAUSTED
 * when that tenant already has max_waiting calls waiting. */
int udfb_callq_put(struct udfb_callq *q, const char *tenant, void *item, struct udfb_err *err);
/* The next item, round-robin over tenants; NULL when none waits. */
void *udfb_callq_take(struct udfb_callq *q);
/* Calls waiting, over all tenants; tenants with calls waiting. */
size_t udfb_callq_waiting(struct udfb_callq *q);
size_t udfb_callq_tenants(struct udfb_callq *q);
/* The queue must be empty. */
void udfb_callq_free(struct udfb_callq *q);

#endif
