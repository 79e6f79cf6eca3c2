/* Unpacking the configured bases in the background: see prefetch.h. */
#include "scheduler/prefetch.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "builder/build.h"
#include "scheduler/bundle.h"
#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/clock.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "image/store.h"

struct job {
	char *runtime, *ref;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_t thread;
static int started, running, stopping;
static size_t done_, total_, failed_;
static char *layers_dir_, *platform_;
static struct udfb_image_store *store_; /* the service's store: blobs of bases kept in a registry */
static struct job *jobs;
static size_t n_jobs;

static int should_stop(void)
{
	pthread_mutex_lock(&mu);
	int s = stopping;
	pthread_mutex_unlock(&mu);
	return s;
}

/* Where the layer's blob is: the base's own store (its layout), else the
 * service's store. */
static char *blob_of(const struct udfb_base *b, const char *digest)
{
	char *p = udfb_image_store_blob_path(b->store, digest);
	return p ? p : udfb_image_store_blob_path(store_, digest);
}

/* One layer, as a one-layer image, so progress is logged per layer and a
 * stop request is honoured between layers. */
static int unpack_layer(const struct udfb_base *b, const struct job *j, const char *digest, size_t k, size_t n)
{
	cleanup_free char *blob = blob_of(b, digest);
	if (!blob) {
		udfb_info("runtime %s: base layer %s is in a registry: unpacked when a UDF first needs it", j->runtime,
			  digest);
		return 0;
	}
	char layer[1][UDFB_DIGEST_LEN + 1];
	memcpy(layer[0], digest, UDFB_DIGEST_LEN + 1);
	char *blobs[1] = { blob };
	struct udfb_bundle_image im = { .n_layers = 1, .layers = layer, .blobs = blobs };
	struct udfb_err err = UDFB_ERR_INIT;
	double t0 = udfb_now_ms();
	int rc = udfb_layers_ensure(layers_dir_, &im, &err);
	if (rc < 0)
		udfb_error("runtime %s: base %s: layer %s could not be unpacked: %s", j->runtime, j->ref, digest,
			   err.msg);
	else
		udfb_info("runtime %s: base layer %zu/%zu %s ready in the layer cache (%.0f ms)", j->runtime, k + 1, n,
			  digest, udfb_now_ms() - t0);
	udfb_err_clear(&err);
	return rc;
}

/* Resolves every base first, so the total is known before the first unpack. */
static struct udfb_base *resolve_all(size_t *total)
{
	struct udfb_base *bs = udfb_calloc(n_jobs, sizeof(*bs));
	for (size_t k = 0; k < n_jobs; k++) {
		struct udfb_err err = UDFB_ERR_INIT;
		if (udfb_base_resolve(&bs[k], jobs[k].ref, platform_, NULL, &err) < 0) {
			udfb_error("runtime %s: base %s could not be read for unpacking: %s", jobs[k].runtime,
				   jobs[k].ref, err.msg);
			memset(&bs[k], 0, sizeof(bs[k]));
			pthread_mutex_lock(&mu);
			failed_++;
			pthread_mutex_unlock(&mu);
		}
		udfb_err_clear(&err);
		*total += bs[k].image.m.n_layers;
	}
	return bs;
}

static void prefetch_base(const struct udfb_base *b, const struct job *j)
{
	size_t n = b->image.m.n_layers;
	for (size_t k = 0; k < n && !should_stop(); k++) {
		int rc = unpack_layer(b, j, b->image.m.layers[k].digest, k, n);
		pthread_mutex_lock(&mu);
		done_ += rc == 0;
		failed_ += rc < 0;
		pthread_mutex_unlock(&mu);
	}
}

static void *prefetch_main(void *arg)
{
	(void)arg;
	double t0 = udfb_now_ms();
	size_t total = 0;
	struct udfb_base *bs = resolve_all(&total);
	pthread_mutex_lock(&mu);
	total_ = total;
	pthread_mutex_unlock(&mu);
	udfb_info("unpacking %zu configured bases (%zu layers) in the background", n_jobs, total);
	for (size_t k = 0; k < n_jobs && !should_stop(); k++)
		prefetch_base(&bs[k], &jobs[k]);
	for (size_t k = 0; k < n_jobs; k++)
		udfb_base_free(&bs[k]);
	free(bs);
	size_t done, failed;
	udfb_prefetch_progress(&done, &total, &failed);
	if (failed)
		udfb_error("configured bases: %zu unpacks failed (above), %zu of %zu layers ready; UDFs on those bases "
			   "will fail",
			   failed, done, total);
	else
		udfb_info("configured bases unpacked: %zu layers in %.0f ms", done, udfb_now_ms() - t0);
	pthread_mutex_lock(&mu);
	running = 0;
	pthread_mutex_unlock(&mu);
	return NULL;
}

int udfb_prefetch_start(const char *layers_dir, const struct udfb_config *cfg, struct udfb_err *err)
{
	pthread_mutex_lock(&mu);
	int already = started;
	started = running = 1;
	pthread_mutex_unlock(&mu);
	if (already || !cfg->n_bases) {
		pthread_mutex_lock(&mu);
		running = already ? running : 0;
		pthread_mutex_unlock(&mu);
		return 0;
	}
	layers_dir_ = udfb_strdup(layers_dir);
	store_ = udfb_image_store_oci(cfg->store);
	platform_ = udfb_strdup(cfg->platform ? cfg->platform : "linux/amd64");
	jobs = udfb_calloc(cfg->n_bases, sizeof(*jobs));
	for (size_t k = 0; k < cfg->n_bases; k++)
		jobs[n_jobs++] = (struct job){ udfb_strdup(cfg->bases[k].runtime), udfb_strdup(cfg->bases[k].ref) };
	int e = pthread_create(&thread, NULL, prefetch_main, NULL);
	if (e) {
		pthread_mutex_lock(&mu);
		running = 0;
		pthread_mutex_unlock(&mu);
		return udfb_err_sys(err, e, "start unpacking the bases");
	}
	return 0;
}

int udfb_prefetch_ready(void)
{
	pthread_mutex_lock(&mu);
	int r = !running;
	pthread_mutex_unlock(&mu);
	return r;
}

void udfb_prefetch_progress(size_t *done, size_t *total, size_t *failed)
{
	pthread_mutex_lock(&mu);
	*done = done_, *total = total_, *failed = failed_;
	pthread_mutex_unlock(&mu);
}

void udfb_prefetch_stop(void)
{
	pthread_mutex_lock(&mu);
	int joinable = started && n_jobs;
	stopping = 1;
	pthread_mutex_unlock(&mu);
	if (joinable)
		pthread_join(thread, NULL);
	for (size_t k = 0; k < n_jobs; k++)
		free(jobs[k].runtime), free(jobs[k].ref);
	free(jobs);
	free(layers_dir_), free(platform_);
	udfb_image_store_free(store_);
	jobs = NULL, n_jobs = 0, layers_dir_ = platform_ = NULL, store_ = NULL;
	pthread_mutex_lock(&mu);
	started = running = stopping = 0;
	pthread_mutex_unlock(&mu);
}
