/* Worker pool: see pool.h. */
#include "common/pool.h"

#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"

struct job {
	void (*fn)(void *);
	void *arg;
	struct job *next;
};

struct udfb_pool {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	struct job *head, *tail;
	size_t queued;
	int stopping;
	int n;
	pthread_t *threads;
};

static void *worker(void *arg)
{
	struct udfb_pool *p = arg;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->head && !p->stopping)
			pthread_cond_wait(&p->cond, &p->mu);
		struct job *j = p->head;
		if (!j)
			break; /* stopping and drained */
		p->head = j->next;
		if (!p->head)
			p->tail = NULL;
		p->queued--;
		pthread_mutex_unlock(&p->mu);
		j->fn(j->arg);
		free(j);
		pthread_mutex_lock(&p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

struct udfb_pool *udfb_pool_new(int threads, const char *name)
{
	struct udfb_pool *p = udfb_calloc(1, sizeof(*p));
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->n = threads > 0 ? threads : 1;
	p->threads = udfb_calloc((size_t)p->n, sizeof(pthread_t));
	for (int k = 0; k < p->n; k++) {
		if (pthread_create(&p->threads[k], NULL, worker, p) != 0)
			abort();
		char tname[32]; /* the kernel keeps 15 bytes of it */
		snprintf(tname, sizeof(tname), "%.10s-%d", name, k % 1000);
		tname[15] = '\0';
		pthread_setname_np(p->threads[k], tname);
	}
	return p;
}

int udfb_pool_submit(struct udfb_pool *p, void (*fn)(void *arg), void *arg)
{
	struct job *j = udfb_malloc(sizeof(*j));
	j->fn = fn;
	j->arg = arg;
	j->next = NULL;
	pthread_mutex_lock(&p->mu);
	if (p->stopping) {
		pthread_mutex_unlock(&p->mu);
		free(j);
		return -1;
	}
	if (p->tail)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	p->queued++;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->mu);
	return 0;
}

size_t udfb_pool_queued(struct udfb_pool *p)
{
	pthread_mutex_lock(&p->mu);
	size_t n = p->queued;
	pthread_mutex_unlock(&p->mu);
	return n;
}

void udfb_pool_free(struct udfb_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = 1;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->mu);
	for (int k = 0; k < p->n; k++)
		pthread_join(p->threads[k], NULL);
	free(p->threads);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cond);
	free(p);
}
