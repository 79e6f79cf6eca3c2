/* The import fetcher: see fetch.h and docs/imports.md. */
#include "fetch/fetch.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/curlx.h"
#include "common/fsutil.h"

enum xstate { X_WAITING, X_RUNNING, X_DONE, X_FAILED };

struct run;

struct xfer {
	struct udfb_fetch_item *item;
	struct run *run;
	CURL *easy;
	struct curl_slist *headers;
	char *name; /* how messages name the item */
	int fd;
	struct udfb_sha256 *hash;
	long long size;
	int attempt;
	long long not_before_ms;
	enum xstate state;
	int too_big, total_too_big, write_errno;
	char blocked[200]; /* why the guard refused a connection, "" if it did not */
	char errbuf[CURL_ERROR_SIZE];
};

struct run {
	const struct udfb_fetch_opts *o;
	long long deadline_ms;
	long long total_bytes;
	CURLM *multi;
	struct xfer *x;
	size_t n, running;
};

/* ---- callbacks ---- */

static size_t on_data(char *p, size_t sz, size_t n, void *ctx)
{
	struct xfer *x = ctx;
	size_t len = sz * n;
	if ((long long)len > x->run->o->max_import_bytes - x->size) {
		x->too_big = 1;
		return 0; /* aborts the transfer */
	}
	if ((long long)len > x->run->o->max_request_bytes - x->run->total_bytes) {
		x->total_too_big = 1;
		return 0;
	}
	if (udfb_write_all(x->fd, p, len) < 0) {
		x->write_errno = errno;
		return 0;
	}
	udfb_sha256_update(x->hash, p, len);
	x->size += (long long)len;
	x->run->total_bytes += (long long)len;
	return len;
}

static char *current_host(CURL *easy)
{
	char *url = NULL, *host = NULL;
	curl_easy_getinfo(easy, CURLINFO_EFFECTIVE_URL, &url);
	CURLU *u = curl_url();
	if (url && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK)
		curl_url_get(u, CURLUPART_HOST, &host, 0);
	curl_url_cleanup(u);
	return host;
}

/* Every connection, redirects included, passes here: the guard sees the
 * address actually connected to, whatever the name resolved to. */
static curl_socket_t on_open_socket(void *ctx, curlsocktype purpose, struct curl_sockaddr *addr)
{
	(void)purpose;
	struct xfer *x = ctx;
	char *host = current_host(x->easy);
	const char *why = udfb_netguard_check(x->run->o->guard, host, &addr->addr);
	curl_free(host);
	if (why) {
		char text[64];
		udfb_netguard_addr_text(&addr->addr, text, sizeof(text));
		snprintf(x->blocked, sizeof(x->blocked), "refused to connect to %s (%s; imports-allow opens it)", text,
			 why);
		return CURL_SOCKET_BAD;
	}
	return socket(addr->family, addr->socktype, addr->protocol);
}

/* ---- one transfer ---- */

static void setup(struct xfer *x)
{
	const struct udfb_fetch_opts *o = x->run->o;
	/* No proxy: it would hide the address connected to from the guard. */
	const struct udfb_curl_opts co = { .follow = 1,
					   .proxy = UDFB_PROXY_NONE,
					   .connect_timeout_ms = o->connect_timeout_ms,
					   .low_speed_time_s = o->low_speed_time_s,
					   .ca_bundle = o->ca_bundle };
	CURL *c = x->easy = udfb_curl_open(x->item->url, &co, x->errbuf);
	curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)o->max_import_bytes);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
	curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, x);
	curl_easy_setopt(c, CURLOPT_PRIVATE, x);
	if (x->item->accept) {
		char *h = udfb_asprintf("Accept: %s", x->item->accept);
		x->headers = curl_slist_append(x->headers, h);
		free(h);
	}
	for (const char *const *h = x->item->headers; h && *h; h++)
		x->headers = curl_slist_append(x->headers, *h);
	if (x->item->probe)
		curl_easy_setopt(c, CURLOPT_RANGE, "0-0");
	if (x->headers)
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, x->headers);
}

/* A fresh attempt: empty file, new hash, the deadline as the timeout. */
static int start(struct xfer *x, long long now, struct udfb_err *err)
{
	if (ftruncate(x->fd, 0) < 0 || lseek(x->fd, 0, SEEK_SET) < 0)
		return udfb_err_sys(err, errno, "%s: reset its temporary file", x->name);
	x->run->total_bytes -= x->size;
	x->size = 0;
	udfb_sha256_free(x->hash);
	x->hash = udfb_sha256_new();
	x->too_big = x->total_too_big = x->write_errno = 0;
	x->blocked[0] = '\0';
	x->attempt++;
	curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS,
			 (long)(x->run->deadline_ms - now > 1 ? x->run->deadline_ms - now : 1));
	curl_multi_add_handle(x->run->multi, x->easy);
	x->state = X_RUNNING;
	x->run->running++;
	return 0;
}

/* ---- outcome of an attempt ---- */

enum outcome { OK, RETRY, FAIL };

static int is_number(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

static enum outcome check_body(struct xfer *x, struct udfb_err *err)
{
	const char *loc = x->name;
	curl_off_t declared = -1;
	curl_easy_getinfo(x->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &declared);
	if (declared >= 0 && declared != x->size) {
		udfb_err_set(err, UDFB_E_UNAVAILABLE, "%s: got %lld bytes, Content-Length said %lld", loc, x->size,
			     (long long)declared);
		return RETRY;
	}
	/* Databend's tag is the object's length when it has no ETag. */
	if (x->item->tag && is_number(x->item->tag) && strtoll(x->item->tag, NULL, 10) != x->size) {
		udfb_err_set(err, UDFB_E_INVALID, "%s: got %lld bytes, its tag says %s", loc, x->size, x->item->tag);
		return FAIL;
	}
	return OK;
}

static enum outcome judge_http(struct xfer *x, struct udfb_err *err)
{
	long status = 0;
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
	x->item->http_status = status;
	const char *loc = x->name;
	x->item->out.whole = status == 200;
	if (status == 200 || (x->item->probe && status == 206))
		return check_body(x, err);
	if (x->item->probe && status == 416) /* an empty object has no byte 0 */
		return OK;
	enum udfb_errcat cat = udfb_http_status_cat(status);
	if (cat == UDFB_E_NOTFOUND) /* the request named an absent object: its fault, as any other 4xx */
		cat = UDFB_E_INVALID;
	else if (cat == UDFB_E_OK) /* a 2xx not asked for (204, an unasked 206) */
		cat = UDFB_E_UNAVAILABLE;
	udfb_err_set(err, cat, "%s: HTTP %ld", loc, status);
	return status == 408 || status == 429 || status >= 500 ? RETRY : FAIL;
}

static enum outcome judge(struct xfer *x, CURLcode rc, struct udfb_err *err)
{
	const struct udfb_fetch_opts *o = x->run->o;
	const char *loc = x->name;
	if (x->too_big || rc == CURLE_FILESIZE_EXCEEDED)
		return udfb_err_set(err, UDFB_E_INVALID, "%s: larger than %lld bytes", loc, o->max_import_bytes), FAIL;
	if (x->total_too_big)
		return udfb_err_set(err, UDFB_E_INVALID, "imports: more than %lld bytes in all (at '%s')",
				    o->max_request_bytes, x->item->location),
		       FAIL;
	if (x->write_errno)
		return udfb_err_sys(err, x->write_errno, "%s: write", loc), FAIL;
	if (x->blocked[0] && rc == CURLE_COULDNT_CONNECT)
		return udfb_err_set(err, UDFB_E_INVALID, "%s: %s", loc, x->blocked), FAIL;
	if (rc == CURLE_TOO_MANY_REDIRECTS)
		return udfb_err_set(err, UDFB_E_INVALID, "%s: more than 5 redirects", loc), FAIL;
	if (rc == CURLE_UNSUPPORTED_PROTOCOL)
		return udfb_err_set(err, UDFB_E_INVALID, "%s: redirected to a scheme other than http or https", loc),
		       FAIL;
	if (rc == CURLE_OPERATION_TIMEDOUT && udfb_now_ms() >= x->run->deadline_ms - 20)
		return udfb_err_set(err, UDFB_E_DEADLINE, "%s: not fetched before the deadline", loc), FAIL;
	if (rc == CURLE_OPERATION_TIMEDOUT) {
		udfb_err_set(err, UDFB_E_UNAVAILABLE,
			     "%s: stalled (under 1024 bytes/s for %ld s, or no connection in %ld ms)", loc,
			     o->low_speed_time_s, o->connect_timeout_ms);
		return RETRY;
	}
	if (rc != CURLE_OK) {
		/* The message names the failure, never the URL (udfb_curl_why redacts). */
		udfb_curl_err(err, rc, x->errbuf, "%s", loc);
		return udfb_curl_transient(rc) ? RETRY : FAIL;
	}
	return judge_http(x, err);
}

/* Capped exponential backoff, or the server's Retry-After when it asks. */
static long long backoff_ms(struct xfer *x)
{
	curl_off_t after = -1;
	curl_easy_getinfo(x->easy, CURLINFO_RETRY_AFTER, &after);
	if (after > 0)
		return after > 60 ? 60000 : (long long)after * 1000;
	long long ms = 200ll << (x->attempt - 1);
	return ms > 5000 ? 5000 : ms;
}

static void finish(struct xfer *x, CURLcode rc, long long now, struct udfb_err *err)
{
	curl_multi_remove_handle(x->run->multi, x->easy);
	x->run->running--;
	struct udfb_err e = UDFB_ERR_INIT;
	enum outcome out = judge(x, rc, &e);
	if (out == RETRY && x->attempt < x->run->o->attempts && now + backoff_ms(x) < x->run->deadline_ms) {
		x->not_before_ms = now + backoff_ms(x);
		x->state = X_WAITING;
		udfb_err_clear(&e);
		return;
	}
	if (out == OK) {
		x->state = X_DONE;
		return;
	}
	x->state = X_FAILED;
	if (out == RETRY && x->attempt > 1) {
		char *m = e.msg;
		enum udfb_errcat cat = e.cat;
		e.msg = NULL;
		udfb_err_set(&e, cat, "%s (after %d attempts)", m, x->attempt);
		free(m);
	}
	if (!err->msg)
		udfb_err_move(err, &e);
	udfb_err_clear(&e);
}

/* ---- the run ---- */

static int launch_ready(struct run *r, long long now, struct udfb_err *err)
{
	for (size_t k = 0; k < r->n && r->running < (size_t)r->o->parallel; k++)
		if (r->x[k].state == X_WAITING && r->x[k].not_before_ms <= now && start(&r->x[k], now, err) < 0)
			return -1;
	return 0;
}

static int pending(const struct run *r, long long *next_ms)
{
	int left = 0;
	*next_ms = 0;
	for (size_t k = 0; k < r->n; k++) {
		if (r->x[k].state == X_WAITING && (!*next_ms || r->x[k].not_before_ms < *next_ms))
			*next_ms = r->x[k].not_before_ms;
		left += r->x[k].state == X_WAITING || r->x[k].state == X_RUNNING;
	}
	return left;
}

static void reap(struct run *r, struct udfb_err *err)
{
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(r->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		struct xfer *x = NULL;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		finish(x, m->data.result, udfb_now_ms(), err);
	}
}

static const char *first_unfinished(const struct run *r)
{
	for (size_t k = 0; k < r->n; k++)
		if (r->x[k].state != X_DONE)
			return r->x[k].name;
	return "?";
}

static int loop(struct run *r, struct udfb_err *err)
{
	for (;;) {
		long long now = udfb_now_ms(), next = 0;
		if (launch_ready(r, now, err) < 0)
			return -1;
		int still = 0;
		curl_multi_perform(r->multi, &still);
		reap(r, err);
		if (err->msg) /* one import failed: the request fails, stop the rest */
			return -1;
		if (!pending(r, &next))
			return 0;
		if (udfb_now_ms() >= r->deadline_ms)
			return udfb_err_set(err, UDFB_E_DEADLINE, "%s: not fetched before the deadline",
					    first_unfinished(r));
		if (r->o->cancel && atomic_load(r->o->cancel))
			return udfb_err_set(err, UDFB_E_DEADLINE, "%s: not fetched: the call was cancelled",
					    first_unfinished(r));
		long long wait = next ? next - udfb_now_ms() : 100;
		wait = wait < 1 ? 1 : wait > 100 ? 100 : wait;
		curl_multi_poll(r->multi, NULL, 0, (int)wait, NULL);
	}
}

static int prepare(struct run *r, struct udfb_fetch_item *items, const char *dir, struct udfb_err *err)
{
	for (size_t k = 0; k < r->n; k++) {
		struct xfer *x = &r->x[k];
		x->item = &items[k];
		x->run = r;
		x->fd = -1;
		memset(&items[k].out, 0, sizeof(items[k].out));
		items[k].out.total_size = -1;
		items[k].http_status = 0;
		x->name = items[k].what ? udfb_strdup(items[k].what) : udfb_asprintf("import '%s'", items[k].location);
		if (udfb_mktemp(&items[k].out.path, &x->fd, dir, err) < 0)
			return -1;
		items[k].out.owned = 1;
		setup(x);
	}
	return 0;
}

/* The validators of the last response (after redirects): ETag,
 * Last-Modified, and the whole length a Content-Range states. */
static void note_validators(struct xfer *x)
{
	struct udfb_fetched *o = &x->item->out;
	char *etag = udfb_curl_header(x->easy, "ETag", sizeof(o->etag) - 1);
	char *modified = udfb_curl_header(x->easy, "Last-Modified", sizeof(o->last_modified) - 1);
	char *range = udfb_curl_header(x->easy, "Content-Range", 96);
	snprintf(o->etag, sizeof(o->etag), "%s", etag ? etag : "");
	snprintf(o->last_modified, sizeof(o->last_modified), "%s", modified ? modified : "");
	const char *slash = range ? strrchr(range, '/') : NULL;
	o->total_size = slash && slash[1] >= '0' && slash[1] <= '9' ? strtoll(slash + 1, NULL, 10) : -1;
	free(etag);
	free(modified);
	free(range);
}

/* What a caller choosing a parser (Content-Type) or resolving relative
 * links (the URL redirects led to) needs from the response. */
static void note_response(struct xfer *x)
{
	struct udfb_fetched *out = &x->item->out;
	char *type = NULL, *url = NULL;
	note_validators(x);
	long redirects = 0;
	curl_easy_getinfo(x->easy, CURLINFO_CONTENT_TYPE, &type);
	snprintf(out->content_type, sizeof(out->content_type), "%s", type ? type : "");
	curl_easy_getinfo(x->easy, CURLINFO_REDIRECT_COUNT, &redirects);
	curl_easy_getinfo(x->easy, CURLINFO_EFFECTIVE_URL, &url);
	if (redirects > 0 && url)
		out->final_url = udfb_strdup(url);
}

/* The fetched files are synced together (udfb_fsync_fds: their writes in
 * flight at once, not one file's after another's), then hashed and
 * described. */
static int conclude(struct run *r, struct udfb_err *err)
{
	int *fds = udfb_calloc(r->n, sizeof(*fds));
	const char **what = udfb_calloc(r->n, sizeof(*what));
	for (size_t k = 0; k < r->n; k++)
		fds[k] = r->x[k].fd, what[k] = r->x[k].item->location;
	int rc = udfb_fsync_fds(fds, what, r->n, err);
	free(fds);
	free(what);
	if (rc < 0)
		return -1;
	for (size_t k = 0; k < r->n; k++) {
		struct xfer *x = &r->x[k];
		udfb_sha256_final(x->hash, x->item->out.digest);
		x->hash = NULL;
		x->item->out.size = x->size;
		note_response(x);
	}
	return 0;
}

static void cleanup(struct run *r, int failed)
{
	for (size_t k = 0; k < r->n; k++) {
		struct xfer *x = &r->x[k];
		if (x->state == X_RUNNING)
			curl_multi_remove_handle(r->multi, x->easy);
		if (x->easy)
			curl_easy_cleanup(x->easy);
		if (x->fd >= 0)
			close(x->fd);
		udfb_sha256_free(x->hash);
		curl_slist_free_all(x->headers);
		free(x->name);
		if (failed)
			udfb_fetched_clear(&x->item->out);
	}
	curl_multi_cleanup(r->multi);
	free(r->x);
}

int udfb_fetch_all(struct udfb_fetch_item *items, size_t n, const struct udfb_fetch_opts *o, long long deadline_ms,
		   const char *dir, struct udfb_err *err)
{
	if (n == 0)
		return 0;
	if (udfb_curl_global_init(err) < 0)
		return -1;
	if ((long long)n > o->max_imports)
		return udfb_err_set(err, UDFB_E_INVALID, "imports: %zu to fetch, more than the limit of %d", n,
				    o->max_imports);
	long long own = udfb_now_ms() + o->timeout_ms;
	struct run r = { .o = o, .deadline_ms = deadline_ms && deadline_ms < own ? deadline_ms : own, .n = n };
	r.multi = curl_multi_init();
	r.x = udfb_calloc(n, sizeof(*r.x));
	int rc = prepare(&r, items, dir, err);
	if (rc == 0)
		rc = loop(&r, err);
	if (rc == 0)
		rc = conclude(&r, err);
	cleanup(&r, rc < 0);
	return rc;
}

void udfb_fetched_clear(struct udfb_fetched *f)
{
	if (f->path && f->owned)
		unlink(f->path);
	free(f->path);
	free(f->final_url);
	f->path = NULL;
	f->final_url = NULL;
	f->owned = 0;
}
