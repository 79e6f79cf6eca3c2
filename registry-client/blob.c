/* Blobs: existence, cross-repository mount, upload, download to a file.
 * An upload is POST (202 + Location) then one PUT ?digest= with the bytes,
 * or, for a blob streamed from another registry, POST + PATCH + PUT; when
 * any step after the POST fails in a way a retry may cure, the whole upload
 * restarts from a new POST (distribution cancels an upload whose digest
 * check fails, and a half-sent body cannot be rewound). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "registry-client/registry_internal.h"
#include "registry-client/retry.h"

static char *blob_path(const char *repo, const char *digest)
{
	return udfb_asprintf("/v2/%s/blobs/%s", repo, digest);
}

static char *what_of(const char *repo, const char *digest)
{
	return udfb_asprintf("%s@%s", repo, digest);
}

int reg_blob_exists(struct udfb_registry *r, const char *repo, const char *digest, const char *scope,
		    struct udfb_err *err)
{
	cleanup_free char *path = blob_path(repo, digest), *what = what_of(repo, digest);
	struct reg_call c = { .method = "HEAD", .path = path, .scope = scope };
	struct udfb_http_resp h;
	int transient;
	if (reg_call(r, &c, &h, &transient, err) < 0)
		return -1;
	/* A redirect to storage also says the blob is there. */
	int rc = h.status == 404					    ? 0
		 : (h.status == 200 || (h.status >= 300 && h.status < 400)) ? 1
									    : reg_status_error(r, what, &h, err);
	udfb_http_resp_clear(&h);
	return rc;
}

int udfb_registry_blob_exists(struct udfb_registry *r, const char *repo, const char *digest, struct udfb_err *err)
{
	cleanup_free char *scope = reg_scope(repo, "pull");
	return reg_blob_exists(r, repo, digest, scope, err);
}

/* POST to the uploads endpoint (with query, for a mount): the status and
 * the Location of an opened upload. */
static int post_upload(struct udfb_registry *r, const char *repo, const char *query, const char *scope, long *status,
		       char **location, int *transient, struct udfb_err *err)
{
	cleanup_free char *path = udfb_asprintf("/v2/%s/blobs/uploads/%s", repo, query ? query : "");
	struct reg_call c = { .method = "POST", .path = path, .scope = scope };
	struct udfb_http_resp h;
	if (reg_call(r, &c, &h, transient, err) < 0)
		return -1;
	int rc = 0;
	*status = h.status;
	if (h.status == 202 && h.location)
		*location = udfb_steal(h.location);
	else if (h.status != 201)
		rc = reg_status_error(r, repo, &h, err);
	udfb_http_resp_clear(&h);
	return rc;
}

int reg_blob_mount(struct udfb_registry *r, const char *repo, const struct udfb_push_blob *b, const char *scope,
		   char **location, struct udfb_err *err)
{
	cleanup_free char *query = udfb_asprintf("?mount=%s&from=%s", b->digest, b->from_repo);
	long status = 0;
	int transient;
	*location = NULL;
	if (post_upload(r, repo, query, scope, &status, location, &transient, err) < 0)
		return -1;
	return status == 201; /* 202 opened an ordinary upload instead */
}

static int put_file(struct udfb_registry *r, const char *repo, const struct udfb_push_blob *b, const char *scope,
		    const char *location, int fd, int *transient, struct udfb_err *err)
{
	cleanup_free char *extra = udfb_asprintf("digest=%s", b->digest), *what = what_of(repo, b->digest);
	cleanup_free char *url = reg_resolve(r, location, extra);
	if (!url)
		return udfb_err_set(err, UDFB_E_UNAVAILABLE, "%s/%s: the registry gave an unusable upload location",
				    r->host, repo);
	struct reg_call c = { .method = "PUT",
			      .path = url,
			      .scope = scope,
			      .once = 1,
			      .content_type = "application/octet-stream",
			      .body = { .kind = UDFB_BODY_FILE, .fd = fd, .size = b->size } };
	struct udfb_http_resp h;
	if (reg_call(r, &c, &h, transient, err) < 0)
		return -1;
	int rc = 0;
	if (h.status != 201) {
		*transient = udfb_retry_status(h.status) || h.status == 404; /* 404: the upload expired */
		rc = reg_status_error(r, what, &h, err);
	} else if (h.docker_digest && strcmp(h.docker_digest, b->digest) != 0) {
		rc = udfb_err_set(err, UDFB_E_INTERNAL, "%s/%s: the registry stored it as %s", r->host, what,
				  h.docker_digest);
	}
	udfb_http_resp_clear(&h);
	return rc;
}

static int upload_once(struct udfb_registry *r, const char *repo, const struct udfb_push_blob *b, const char *scope,
		       const char *given, int fd, int *transient, struct udfb_err *err)
{
	cleanup_free char *location = given ? udfb_strdup(given) : NULL;
	long status = 0;
	if (!location && post_upload(r, repo, NULL, scope, &status, &location, transient, err) < 0)
		return -1;
	if (!location)
		return udfb_err_set(err, UDFB_E_UNAVAILABLE, "%s/%s: upload opened without a Location", r->host, repo);
	if (fd >= 0)
		return put_file(r, repo, b, scope, location, fd, transient, err);
	return reg_blob_stream(r, repo, b, scope, location, transient, err);
}

int reg_blob_upload(struct udfb_registry *r, const char *repo, const struct udfb_push_blob *b, const char *scope,
		    char *location, long long *sent, struct udfb_err *err)
{
	cleanup_close int fd = -1;
	if (b->path && (fd = open(b->path, O_RDONLY | O_CLOEXEC)) < 0)
		return udfb_err_sys(err, errno, "blob %s: open %s", b->digest, b->path);
	for (int attempt = 0;; attempt++) {
		int transient = 0;
		if (upload_once(r, repo, b, scope, attempt == 0 ? location : NULL, fd, &transient, err) == 0) {
			*sent += b->size;
			return 0;
		}
		if (!transient || attempt >= r->retries)
			return -1;
		long wait = udfb_retry_delay_ms(attempt, NULL, time(NULL));
		udfb_info("registry %s: upload of %s failed (%s); restarting it in %ld ms", r->host, b->digest,
			  err->msg, wait);
		udfb_err_clear(err);
		udfb_retry_sleep_ms(wait);
	}
}

struct file_sink {
	int fd;
	struct udfb_sha256 *hash;
	long long size;
	int write_errno;
};

static int to_file(const char *p, size_t n, void *ctx)
{
	struct file_sink *s = ctx;
	if (udfb_write_all(s->fd, p, n) < 0) {
		s->write_errno = errno;
		return -1;
	}
	udfb_sha256_update(s->hash, p, n);
	s->size += (long long)n;
	return 0;
}

static int fetch_once(struct udfb_registry *r, const char *repo, const char *digest, int fd, int *transient,
		      struct udfb_err *err)
{
	cleanup_free char *path = blob_path(repo, digest), *what = what_of(repo, digest),
			  *scope = reg_scope(repo, "pull");
	if (ftruncate(fd, 0) < 0 || lseek(fd, 0, SEEK_SET) < 0)
		return udfb_err_sys(err, errno, "blob %s", digest);
	struct file_sink s = { .fd = fd, .hash = udfb_sha256_new() };
	struct reg_call c = {
		.method = "GET", .path = path, .scope = scope, .follow = 1, .once = 1, .sink = to_file, .sink_ctx = &s
	};
	struct udfb_http_resp h;
	char got[UDFB_DIGEST_LEN + 1];
	int rc = reg_call(r, &c, &h, transient, err);
	udfb_sha256_final(s.hash, got);
	if (rc == 0 && s.write_errno)
		rc = udfb_err_sys(err, s.write_errno, "blob %s: write", digest);
	else if (rc == 0 && h.status != 200)
		rc = reg_status_error(r, what, &h, err);
	else if (rc == 0 && strcmp(got, digest) != 0)
		rc = udfb_err_set(err, UDFB_E_UNAVAILABLE, "%s/%s: content hashes to %s", r->host, what, got);
	udfb_http_resp_clear(&h);
	return rc;
}

int udfb_registry_blob_fetch(struct udfb_registry *r, const char *repo, const char *digest, const char *path,
			     struct udfb_err *err)
{
	cleanup_close int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return udfb_err_sys(err, errno, "create %s", path);
	for (int attempt = 0;; attempt++) {
		int transient = 0;
		if (fetch_once(r, repo, digest, fd, &transient, err) == 0)
			return 0;
		if (!transient || attempt >= r->retries)
			return -1;
		udfb_err_clear(err);
		udfb_retry_sleep_ms(udfb_retry_delay_ms(attempt, NULL, time(NULL)));
	}
}
