/* Hashing on a second thread: see hashpipe.h. */
#include "common/hashpipe.h"

#include <pthread.h>
#include <stdlib.h>

#include "common/alloc.h"

#define BUFS 4
#define BUF_SIZE (256u << 10)

struct udfb_hashpipe {
	struct udfb_sha256 *h;
	unsigned char *buf[BUFS];
	size_t len[BUFS];
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned long long pushed, hashed; /* buffers; under mu */
	int started, closing;
	pthread_t th;
};

size_t udfb_hashpipe_bufsize(void)
{
	return BUF_SIZE;
}

struct udfb_hashpipe *udfb_hashpipe_new(void)
{
	struct udfb_hashpipe *p = udfb_calloc(1, sizeof(*p));
	p->h = udfb_sha256_new();
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	return p;
}

static void *hasher(void *arg)
{
	struct udfb_hashpipe *p = arg;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (p->hashed == p->pushed && !p->closing)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->hashed == p->pushed)
			break;
		size_t k = (size_t)(p->hashed % BUFS);
		pthread_mutex_unlock(&p->mu);
		udfb_sha256_update(p->h, p->buf[k], p->len[k]);
		pthread_mutex_lock(&p->mu);
		p->hashed++;
		pthread_cond_broadcast(&p->cv);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

unsigned char *udfb_hashpipe_buf(struct udfb_hashpipe *p)
{
	size_t k = (size_t)(p->pushed % BUFS);
	if (p->started > 0) {
		pthread_mutex_lock(&p->mu);
		while (p->pushed - p->hashed >= BUFS)
			pthread_cond_wait(&p->cv, &p->mu);
		pthread_mutex_unlock(&p->mu);
	}
	if (!p->buf[k])
		p->buf[k] = udfb_malloc(BUF_SIZE);
	return p->buf[k];
}

/* What was pushed and not hashed, hashed here (no thread). */
static void hash_pending(struct udfb_hashpipe *p)
{
	for (; p->hashed < p->pushed; p->hashed++)
		udfb_sha256_update(p->h, p->buf[p->hashed % BUFS], p->len[p->hashed % BUFS]);
}

void udfb_hashpipe_push(struct udfb_hashpipe *p, size_t len)
{
	p->len[p->pushed % BUFS] = len;
	/* A second buffer: a stream worth a thread (tens of microseconds). */
	if (p->started == 0 && p->pushed == 1)
		p->started = pthread_create(&p->th, NULL, hasher, p) == 0 ? 1 : -1;
	pthread_mutex_lock(&p->mu);
	p->pushed++;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	if (p->started < 0)
		hash_pending(p);
}

void udfb_hashpipe_final(struct udfb_hashpipe *p, char out[UDFB_DIGEST_LEN + 1])
{
	if (p->started > 0) {
		pthread_mutex_lock(&p->mu);
		p->closing = 1;
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mu);
		pthread_join(p->th, NULL);
	}
	hash_pending(p);
	udfb_sha256_final(p->h, out);
	for (size_t k = 0; k < BUFS; k++)
		free(p->buf[k]);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
}
