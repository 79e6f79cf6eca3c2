/* Fair call queue: see callq.h.  The tenants with calls waiting form a
 * ring (a FIFO of tenants): take() serves the head tenant's oldest call and
 * moves that tenant to the tail when it has more.  A tenant's record lives
 * only while it has calls waiting, so memory follows the waiting calls, not
 * the number of tenants ever seen. */
#include "service/callq.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "service/service_internal.h"

struct item {
	void *v;
	struct item *next;
};

struct tenant_q {
	char *name;
	struct item *head, *tail;
	size_t n;
	struct tenant_q *ring_next;
};

struct udfb_callq {
	pthread_mutex_t mu;
	struct udfb_table *by_name; /* name -> struct tenant_q, while it has calls waiting */
	struct tenant_q *ring_head, *ring_tail;
	size_t max_waiting, waiting, tenants;
};

struct udfb_callq *udfb_callq_new(int max_waiting)
{
	struct udfb_callq *q = udfb_calloc(1, sizeof(*q));
	pthread_mutex_init(&q->mu, NULL);
	q->by_name = udfb_table_new();
	q->max_waiting = max_waiting > 0 ? (size_t)max_waiting : 1;
	return q;
}

static void ring_push(struct udfb_callq *q, struct tenant_q *t)
{
	t->ring_next = NULL;
	if (q->ring_tail)
		q->ring_tail->ring_next = t;
	else
		q->ring_head = t;
	q->ring_tail = t;
}

int udfb_callq_put(struct udfb_callq *q, const char *tenant, void *item, struct udfb_err *err)
{
	pthread_mutex_lock(&q->mu);
	void **slot = udfb_table_slot(q->by_name, tenant, 1);
	struct tenant_q *t = *slot;
	if (t && t->n >= q->max_waiting) {
		pthread_mutex_unlock(&q->mu);
		return udfb_err_set(
			err, UDFB_E_EXHAUSTED,
			"tenant %.128s: %zu calls already wait for a call worker (max_queued_calls); retry later",
			tenant, q->max_waiting);
	}
	if (!t) {
		t = udfb_calloc(1, sizeof(*t));
		t->name = udfb_strdup(tenant);
		*slot = t;
		ring_push(q, t);
		q->tenants++;
	}
	struct item *it = udfb_malloc(sizeof(*it));
	it->v = item;
	it->next = NULL;
	if (t->tail)
		t->tail->next = it;
	else
		t->head = it;
	t->tail = it;
	t->n++;
	q->waiting++;
	pthread_mutex_unlock(&q->mu);
	return 0;
}

void *udfb_callq_take(struct udfb_callq *q)
{
	pthread_mutex_lock(&q->mu);
	struct tenant_q *t = q->ring_head;
	if (!t) {
		pthread_mutex_unlock(&q->mu);
		return NULL;
	}
	q->ring_head = t->ring_next;
	if (!q->ring_head)
		q->ring_tail = NULL;
	struct item *it = t->head;
	t->head = it->next;
	if (!t->head)
		t->tail = NULL;
	t->n--;
	q->waiting--;
	if (t->n) {
		ring_push(q, t); /* its next call waits for every other tenant's turn */
	} else {
		void *gone = NULL;
		udfb_table_remove(q->by_name, t->name, &gone);
		free(t->name);
		free(t);
		q->tenants--;
	}
	pthread_mutex_unlock(&q->mu);
	void *v = it->v;
	free(it);
	return v;
}

size_t udfb_callq_waiting(struct udfb_callq *q)
{
	pthread_mutex_lock(&q->mu);
	size_t n = q->waiting;
	pthread_mutex_unlock(&q->mu);
	return n;
}

size_t udfb_callq_tenants(struct udfb_callq *q)
{
	pthread_mutex_lock(&q->mu);
	size_t n = q->tenants;
	pthread_mutex_unlock(&q->mu);
	return n;
}

void udfb_callq_free(struct udfb_callq *q)
{
	if (!q)
		return;
	while (udfb_callq_take(q))
		;
	udfb_table_free(q->by_name, NULL);
	pthread_mutex_destroy(&q->mu);
	free(q);
}
