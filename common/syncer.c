/* Files flushed while written: see syncer.h. */
#include "common/syncer.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

void udfb_syncer_init(struct udfb_syncer *s, int fd, long long step)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->step = step;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
}

static void *flusher(void *arg)
{
	struct udfb_syncer *s = arg;
	pthread_mutex_lock(&s->mu);
	for (;;) {
		while (!s->stopping && s->written - s->asked < s->step)
			pthread_cond_wait(&s->cv, &s->mu);
		if (s->stopping)
			break;
		s->asked = s->written;
		pthread_mutex_unlock(&s->mu);
		int rc = fdatasync(s->fd);
		int e = errno;
		pthread_mutex_lock(&s->mu);
		if (rc < 0 && !s->errnum)
			s->errnum = e;
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

void udfb_syncer_wrote(struct udfb_syncer *s, long long n)
{
	pthread_mutex_lock(&s->mu);
	s->written += n;
	int due = s->written - s->asked >= s->step;
	if (due && !s->started)
		s->started = pthread_create(&s->th, NULL, flusher, s) == 0 ? 1 : -1;
	if (due)
		pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

int udfb_syncer_stop(struct udfb_syncer *s)
{
	pthread_mutex_lock(&s->mu);
	s->stopping = 1;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	if (s->started > 0)
		pthread_join(s->th, NULL);
	s->started = 0;
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	return s->errnum;
}
