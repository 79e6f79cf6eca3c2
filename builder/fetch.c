/* Import download over libcurl: see fetch.h. */
#include "fetch.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"

struct dl {
	int fd;
	struct udfb_sha256 *hash;
	long long size, max;
	int too_big, write_errno;
};

static size_t on_data(char *p, size_t sz, size_t n, void *ctx)
{
	struct dl *d = ctx;
	size_t len = sz * n;
	if ((long long)len > d->max - d->size) {
		d->too_big = 1;
		return 0; /* aborts the transfer */
	}
	for (size_t off = 0; off < len;) {
		ssize_t w = write(d->fd, p + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			d->write_errno = errno;
			return 0;
		}
		off += (size_t)w;
	}
	udfb_sha256_update(d->hash, p, len);
	d->size += (long long)len;
	return len;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int udfb_fetch_global_init(struct udfb_err *err)
{
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK)
		return udfb_err_set(err, UDFB_E_INTERNAL, "libcurl: %s", curl_easy_strerror(curl_init_rc));
	return 0;
}

static void setup(CURL *c, const char *url, struct dl *d)
{
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 30L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)d->max);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, d);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "udf-builder");
}

static int classify(CURL *c, CURLcode rc, const struct dl *d, const char *location, struct udfb_err *err)
{
	if (d->too_big || rc == CURLE_FILESIZE_EXCEEDED)
		return udfb_err_set(err, UDFB_E_INVALID, "import '%s': larger than %lld bytes", location, d->max);
	if (d->write_errno)
		return udfb_err_sys(err, d->write_errno, "import '%s': write", location);
	if (rc != CURLE_OK)
		/* curl_easy_strerror names the failure, never the URL. */
		return udfb_err_set(err, UDFB_E_UNAVAILABLE, "import '%s': %s", location, curl_easy_strerror(rc));
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 400 && status < 500)
		return udfb_err_set(err, UDFB_E_INVALID, "import '%s': HTTP %ld", location, status);
	if (status != 200)
		return udfb_err_set(err, UDFB_E_UNAVAILABLE, "import '%s': HTTP %ld", location, status);
	curl_off_t expected = -1;
	curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &expected);
	if (expected >= 0 && expected != d->size)
		return udfb_err_set(err, UDFB_E_UNAVAILABLE, "import '%s': got %lld bytes of %lld", location, d->size, (long long)expected);
	return 0;
}

int udfb_fetch_import(struct udfb_fetched *out, const char *location, const char *url, const char *dir,
		      long long max_bytes, struct udfb_err *err)
{
	memset(out, 0, sizeof(*out));
	if (udfb_fetch_global_init(err) < 0)
		return -1;
	struct dl d = { .fd = -1, .max = max_bytes };
	if (udfb_mktemp(&out->path, &d.fd, dir, err) < 0)
		return -1;
	d.hash = udfb_sha256_new();
	CURL *c = curl_easy_init();
	if (!c)
		abort();
	setup(c, url, &d);
	CURLcode rc = curl_easy_perform(c);
	int ret = classify(c, rc, &d, location, err);
	curl_easy_cleanup(c);
	if (ret == 0)
		ret = udfb_fsync_fd(d.fd, location, err);
	close(d.fd);
	if (ret == 0) {
		udfb_sha256_final(d.hash, out->digest);
		out->size = d.size;
	} else {
		udfb_sha256_free(d.hash);
		udfb_fetched_clear(out);
	}
	return ret;
}

void udfb_fetched_clear(struct udfb_fetched *f)
{
	if (f->path)
		unlink(f->path);
	free(f->path);
	f->path = NULL;
}
