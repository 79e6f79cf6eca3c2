/* Pushing one image: blobs first, up to PUSH_THREADS at once, each by the
 * cheapest way that works (already there, mounted from another repository
 * of the registry, uploaded from a file, streamed from another registry),
 * then the manifest, so the tag never names a manifest whose blobs are
 * missing.  A tag that already names the manifest costs one HEAD; when
 * the caller knows every blob is there, the manifest PUT is the only
 * request. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "registry-client/registry_internal.h"

#define PUSH_THREADS 4

struct push {
	struct udfb_registry *r;
	const char *repo, *scope;
	const struct udfb_push_blob **todo;
	size_t n, next;
	pthread_mutex_t mu;
	int failed;
	struct udfb_err err;
	struct udfb_push_stats *stats;
};

static void count(struct push *p, int *field, long long bytes)
{
	pthread_mutex_lock(&p->mu);
	(*field)++;
	p->stats->bytes_sent += bytes;
	pthread_mutex_unlock(&p->mu);
}

static int mountable(const struct push *p, const struct udfb_push_blob *b)
{
	return b->from == p->r && b->from_repo && strcmp(b->from_repo, p->repo) != 0;
}

static int push_blob(struct push *p, const struct udfb_push_blob *b, struct udfb_err *err)
{
	int have = b->known ? 1 : reg_blob_exists(p->r, p->repo, b->digest, p->scope, err);
	if (have != 0) {
		if (have > 0)
			count(p, &p->stats->present, 0);
		return have < 0 ? -1 : 0;
	}
	cleanup_free char *location = NULL;
	if (mountable(p, b)) {
		int m = reg_blob_mount(p->r, p->repo, b, p->scope, &location, err);
		if (m != 0) {
			if (m > 0)
				count(p, &p->stats->mounted, 0);
			return m < 0 ? -1 : 0;
		}
	}
	if (!b->path && !(b->from && b->from_repo))
		return udfb_err_set(err, UDFB_E_INTERNAL,
				    "blob %s: neither in the repository nor anywhere to copy it from", b->digest);
	long long sent = 0;
	if (reg_blob_upload(p->r, p->repo, b, p->scope, location, &sent, err) < 0)
		return -1;
	count(p, b->path ? &p->stats->uploaded : &p->stats->streamed, sent);
	udfb_debug("registry %s: %s %s (%lld bytes) to %s", p->r->host, b->path ? "uploaded" : "streamed", b->digest,
		   b->size, p->repo);
	return 0;
}

static void *worker(void *arg)
{
	struct push *p = arg;
	for (;;) {
		pthread_mutex_lock(&p->mu);
		const struct udfb_push_blob *b = !p->failed && p->next < p->n ? p->todo[p->next++] : NULL;
		pthread_mutex_unlock(&p->mu);
		if (!b)
			return NULL;
		struct udfb_err e = UDFB_ERR_INIT;
		if (push_blob(p, b, &e) == 0)
			continue;
		pthread_mutex_lock(&p->mu);
		if (!p->failed)
			udfb_err_move(&p->err, &e);
		p->failed = 1;
		pthread_mutex_unlock(&p->mu);
		udfb_err_clear(&e);
	}
}

/* Push scope, plus pull on every repository a blob is mounted from: one
 * token serves the whole push. */
static char *push_scope(struct udfb_registry *r, const char *repo, const struct udfb_push_blob *blobs, size_t n)
{
	struct udfb_buf s;
	udfb_buf_init(&s, 1u << 16);
	udfb_buf_printf(&s, "repository:%s:pull,push", repo);
	for (size_t k = 0; k < n; k++) {
		if (blobs[k].from != r || !blobs[k].from_repo || strcmp(blobs[k].from_repo, repo) == 0)
			continue;
		char item[600];
		snprintf(item, sizeof(item), "repository:%s:pull", blobs[k].from_repo);
		if (!strstr(s.data, item))
			udfb_buf_printf(&s, " %s", item);
	}
	return udfb_buf_steal(&s, NULL);
}

/* Each digest once, in manifest order; those the caller knows are there
 * are counted present and left out (a repeat push starts no thread). */
static size_t distinct(const struct udfb_push_blob **out, const struct udfb_push_blob *blobs, size_t n,
		       struct udfb_push_stats *stats)
{
	size_t m = 0;
	for (size_t k = 0; k < n; k++) {
		int dup = 0;
		for (size_t j = 0; j < k && !dup; j++)
			dup = strcmp(blobs[j].digest, blobs[k].digest) == 0;
		if (dup)
			continue;
		if (blobs[k].known)
			stats->present++;
		else
			out[m++] = &blobs[k];
	}
	return m;
}

static int push_blobs(struct push *p, struct udfb_err *err)
{
	pthread_t t[PUSH_THREADS];
	int started = 0;
	for (size_t k = 1; k < PUSH_THREADS && k < p->n; k++)
		if (pthread_create(&t[started], NULL, worker, p) == 0)
			started++;
	if (p->n)
		worker(p);
	for (int k = 0; k < started; k++)
		pthread_join(t[k], NULL);
	if (p->failed)
		udfb_err_move(err, &p->err);
	return p->failed ? -1 : 0;
}

int udfb_registry_push(struct udfb_registry *r, const char *repo, const char *tag, const struct udfb_push_blob *blobs,
		       size_t n, const char *manifest, size_t manifest_len, const char *media_type,
		       const char *manifest_digest, struct udfb_push_stats *stats, struct udfb_err *err)
{
	memset(stats, 0, sizeof(*stats));
	cleanup_free char *scope = push_scope(r, repo, blobs, n);
	cleanup_free const struct udfb_push_blob **todo = udfb_calloc(n + 1, sizeof(*todo));
	struct udfb_push_stats known = { 0 };
	size_t left = distinct(todo, blobs, n, &known);
	/* The HEAD saves blob requests when the tag is up to date.  With every
	 * blob known to be there it saves nothing: the manifest PUT alone,
	 * idempotent, costs one request where HEAD + PUT cost two. */
	char have[UDFB_DIGEST_LEN + 1];
	int found = tag && left ? reg_manifest_head(r, repo, tag, scope, have, err) : 0;
	if (found < 0)
		return -1;
	if (found && strcmp(have, manifest_digest) == 0) {
		stats->up_to_date = 1;
		return 0;
	}
	*stats = known;
	struct push p = {
		.r = r, .repo = repo, .scope = scope, .todo = todo, .n = left, .err = UDFB_ERR_INIT, .stats = stats
	};
	pthread_mutex_init(&p.mu, NULL);
	int rc = push_blobs(&p, err);
	pthread_mutex_destroy(&p.mu);
	if (rc == 0)
		rc = reg_manifest_put(r, repo, tag ? tag : manifest_digest, scope, manifest, manifest_len, media_type,
				      manifest_digest, err);
	return rc;
}
