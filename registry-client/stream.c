/* A blob copied from one registry to another without landing on disk: a
 * thread GETs it into a bounded ring buffer while the PATCH reads from the
 * ring, so memory stays at RING_BYTES whatever the blob's size.  The bytes
 * are hashed on the way and the closing PUT is sent only when they match
 * the digest (the registry checks it again). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/cleanup.h"
#include "registry-client/registry_internal.h"
#include "registry-client/retry.h"

#define RING_BYTES (1u << 20)

struct ring {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char *buf;
	size_t head, len;
	int eof, aborted;
};

static void ring_init(struct ring *q)
{
	memset(q, 0, sizeof(*q));
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv, NULL);
	q->buf = udfb_malloc(RING_BYTES);
}

static void ring_destroy(struct ring *q)
{
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->cv);
	free(q->buf);
}

/* The writer's end: blocks while full; -1 once the reader gave up. */
static int ring_write(const char *p, size_t n, void *ctx)
{
	struct ring *q = ctx;
	pthread_mutex_lock(&q->mu);
	while (n && !q->aborted) {
		while (q->len == RING_BYTES && !q->aborted)
			pthread_cond_wait(&q->cv, &q->mu);
		size_t tail = (q->head + q->len) % RING_BYTES;
		size_t room = RING_BYTES - q->len, run = RING_BYTES - tail;
		size_t k = n < room ? n : room;
		k = k < run ? k : run;
		memcpy(q->buf + tail, p, k);
		q->len += k;
		p += k;
		n -= k;
		pthread_cond_broadcast(&q->cv);
	}
	int rc = q->aborted ? -1 : 0;
	pthread_mutex_unlock(&q->mu);
	return rc;
}

/* The reader's end: blocks while empty; 0 at the end, -1 when aborted. */
static long ring_read(char *p, size_t n, void *ctx)
{
	struct ring *q = ctx;
	pthread_mutex_lock(&q->mu);
	while (q->len == 0 && !q->eof && !q->aborted)
		pthread_cond_wait(&q->cv, &q->mu);
	long got = -1;
	if (!q->aborted) {
		size_t run = RING_BYTES - q->head;
		size_t k = n < q->len ? n : q->len;
		k = k < run ? k : run;
		memcpy(p, q->buf + q->head, k);
		q->head = (q->head + k) % RING_BYTES;
		q->len -= k;
		got = (long)k;
		pthread_cond_broadcast(&q->cv);
	}
	pthread_mutex_unlock(&q->mu);
	return got;
}

static void ring_end(struct ring *q, int abort_it)
{
	pthread_mutex_lock(&q->mu);
	if (abort_it)
		q->aborted = 1;
	else
		q->eof = 1;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

struct source {
	const struct udfb_push_blob *b;
	struct ring ring;
	struct udfb_sha256 *hash;
	long long got;
	int transient;
	struct udfb_err err;
};

static int hashing_sink(const char *p, size_t n, void *ctx)
{
	struct source *s = ctx;
	udfb_sha256_update(s->hash, p, n);
	s->got += (long long)n;
	return ring_write(p, n, &s->ring);
}

static void *source_main(void *ctx)
{
	struct source *s = ctx;
	const struct udfb_push_blob *b = s->b;
	cleanup_free char *path = NULL, *scope = reg_scope(b->from_repo, "pull"), *what = NULL;
	path = udfb_asprintf("/v2/%s/blobs/%s", b->from_repo, b->digest);
	what = udfb_asprintf("%s@%s", b->from_repo, b->digest);
	struct reg_call c = { .method = "GET",
			      .path = path,
			      .scope = scope,
			      .follow = 1,
			      .once = 1,
			      .sink = hashing_sink,
			      .sink_ctx = s };
	struct udfb_http_resp h;
	char got[UDFB_DIGEST_LEN + 1];
	int rc = reg_call(b->from, &c, &h, &s->transient, &s->err);
	udfb_sha256_final(s->hash, got);
	s->hash = NULL;
	if (rc == 0 && h.sink_failed)
		rc = udfb_err_set(&s->err, UDFB_E_UNAVAILABLE, "%s/%s: the upload stopped reading", b->from->host,
				  what),
		s->transient = 1;
	else if (rc == 0 && h.status != 200)
		rc = reg_status_error(b->from, what, &h, &s->err);
	else if (rc == 0 && (s->got != b->size || strcmp(got, b->digest) != 0))
		rc = udfb_err_set(&s->err, UDFB_E_UNAVAILABLE, "%s/%s: got %lld bytes hashing to %s", b->from->host,
				  what, s->got, got);
	udfb_http_resp_clear(&h);
	ring_end(&s->ring, rc < 0);
	return NULL;
}

/* PATCH the stream into the upload; the new Location on success. */
static int patch(struct udfb_registry *r, const char *repo, struct source *s, const char *scope, const char *location,
		 char **next, int *transient, struct udfb_err *err)
{
	cleanup_free char *url = reg_resolve(r, location, NULL);
	if (!url)
		return udfb_err_set(err, UDFB_E_UNAVAILABLE, "%s/%s: the registry gave an unusable upload location",
				    r->host, repo);
	/* distribution 2.8 takes only application/octet-stream on PATCH. */
	struct reg_call c = {
		.method = "PATCH",
		.path = url,
		.scope = scope,
		.once = 1,
		.content_type = "application/octet-stream",
		.body = { .kind = UDFB_BODY_STREAM, .size = s->b->size, .read = ring_read, .read_ctx = &s->ring }
	};
	struct udfb_http_resp h;
	int rc = reg_call(r, &c, &h, transient, err);
	if (rc == 0 && h.status == 202 && h.location)
		*next = udfb_steal(h.location);
	else if (rc == 0) {
		*transient = h.status == 0 || udfb_retry_status(h.status) || h.status == 404;
		rc = h.status
			     ? reg_status_error(r, repo, &h, err)
			     : udfb_err_set(err, UDFB_E_UNAVAILABLE, "%s/%s: %s", r->host, repo, udfb_http_failure(&h));
	}
	udfb_http_resp_clear(&h);
	return rc;
}

static int close_upload(struct udfb_registry *r, const char *repo, const struct udfb_push_blob *b, const char *scope,
			const char *location, int *transient, struct udfb_err *err)
{
	cleanup_free char *extra = udfb_asprintf("digest=%s", b->digest);
	cleanup_free char *url = reg_resolve(r, location, extra);
	struct reg_call c = { .method = "PUT", .path = url, .scope = scope, .once = 1 };
	struct udfb_http_resp h;
	if (!url)
		return udfb_err_set(err, UDFB_E_UNAVAILABLE, "%s/%s: the registry gave an unusable upload location",
				    r->host, repo);
	if (reg_call(r, &c, &h, transient, err) < 0)
		return -1;
	int rc = 0;
	if (h.status != 201) {
		*transient = udfb_retry_status(h.status) || h.status == 404;
		rc = reg_status_error(r, repo, &h, err);
	}
	udfb_http_resp_clear(&h);
	return rc;
}

int reg_blob_stream(struct udfb_registry *r, const char *repo, const struct udfb_push_blob *b, const char *scope,
		    const char *location, int *transient, struct udfb_err *err)
{
	struct source s = { .b = b, .hash = udfb_sha256_new(), .err = UDFB_ERR_INIT };
	ring_init(&s.ring);
	pthread_t t;
	if (pthread_create(&t, NULL, source_main, &s) != 0)
		abort();
	cleanup_free char *next = NULL;
	int rc = patch(r, repo, &s, scope, location, &next, transient, err);
	/* Whatever happened, the source must not block on a full ring. */
	ring_end(&s.ring, 1);
	pthread_join(t, NULL);
	if (s.err.msg) {
		/* The source's failure explains a failed PATCH better than the PATCH. */
		udfb_err_clear(err);
		udfb_err_move(err, &s.err);
		*transient = s.transient;
		rc = -1;
	}
	if (rc == 0)
		rc = close_upload(r, repo, b, scope, next, transient, err);
	udfb_sha256_free(s.hash);
	ring_destroy(&s.ring);
	return rc;
}
