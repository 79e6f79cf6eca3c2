/* The one request path of the registry client: auth (a 401 is answered
 * once with the challenge's credentials), the https/http choice for
 * loopback and insecure hosts, and retries of idempotent steps with capped
 * exponential backoff.  Messages name the host and never the URL, whose
 * query may carry an upload's signed state. */
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/curlx.h"
#include "common/log.h"
#include "registry-client/registry_internal.h"
#include "registry-client/retry.h"

static char *call_url(struct udfb_registry *r, const char *path)
{
	if (strncmp(path, "http://", 7) == 0 || strncmp(path, "https://", 8) == 0)
		return udfb_strdup(path);
	pthread_mutex_lock(&r->mu);
	char *url = udfb_asprintf("%s%s", r->base_url, path);
	pthread_mutex_unlock(&r->mu);
	return url;
}

/* Our Authorization header goes to the registry only, never to a storage
 * host an upload Location points at. */
static int same_host(struct udfb_registry *r, const char *url)
{
	cleanup_free char *h = udfb_http_url_host(url);
	return h && strcasecmp(h, r->api_host) == 0;
}

static struct curl_slist *add_header(struct curl_slist *l, const char *name, const char *value)
{
	char line[512];
	snprintf(line, sizeof(line), "%s: %s", name, value);
	return curl_slist_append(l, line);
}

static void free_headers(struct curl_slist *l)
{
	for (struct curl_slist *h = l; h; h = h->next)
		OPENSSL_cleanse(h->data, strlen(h->data));
	curl_slist_free_all(l);
}

static int one_try(struct udfb_registry *r, CURL *h, const struct reg_call *c, struct udfb_http_resp *out,
		   struct udfb_err *err)
{
	cleanup_free char *url = call_url(r, c->path);
	char *auth = NULL;
	if (same_host(r, url) && udfb_auth_header(&r->auth, h, c->scope, &auth, err) < 0)
		return -1;
	struct curl_slist *hdrs = NULL;
	if (auth)
		hdrs = curl_slist_append(hdrs, auth);
	udfb_auth_free_line(auth);
	if (c->accept)
		hdrs = add_header(hdrs, "Accept", c->accept);
	if (c->content_type)
		hdrs = add_header(hdrs, "Content-Type", c->content_type);
	struct udfb_http_req req = { .method = c->method,
				     .url = url,
				     .headers = hdrs,
				     .body = c->body,
				     .resp = c->resp,
				     .sink = c->sink,
				     .sink_ctx = c->sink_ctx,
				     .follow = c->follow,
				     .tls = &r->tls };
	udfb_http_perform(h, &req, out);
	free_headers(hdrs);
	return 0;
}

/* A loopback or insecure host is tried over https first; a TLS handshake
 * answered in plain HTTP means the registry speaks only http. */
static int fell_back_to_http(struct udfb_registry *r, const struct udfb_http_resp *out)
{
	int changed = 0;
	pthread_mutex_lock(&r->mu);
	if (!r->scheme_known && out->status == 0 && out->rc == CURLE_SSL_CONNECT_ERROR) {
		free(r->base_url);
		r->base_url = udfb_asprintf("http://%s", r->api_host);
		udfb_debug("registry %s: no TLS there, using plain http", r->host);
		changed = 1;
	}
	if (out->status > 0 || changed)
		r->scheme_known = 1;
	pthread_mutex_unlock(&r->mu);
	return changed;
}

/* Before the first request to a loopback or insecure host: does it speak
 * TLS?  A ClientHello on a bare socket (scheme_probe.c) answers "no" without
 * OpenSSL; otherwise an unverified GET /v2/ answers it without loading the CA store
 * (tens of milliseconds in OpenSSL 3) for a registry that is plain http;
 * its answer is thrown away, and a TLS registry is then verified as usual.
 * A failure to connect leaves the question open for the next attempt. */
static void probe_scheme(struct udfb_registry *r, CURL *h)
{
	pthread_mutex_lock(&r->mu);
	int known = r->scheme_known;
	pthread_mutex_unlock(&r->mu);
	if (known)
		return;
	if (reg_probe_plain_http(r->api_host, 3000)) {
		udfb_debug("registry %s: answered a ClientHello in plain HTTP", r->host);
		struct udfb_http_resp plain = { .rc = CURLE_SSL_CONNECT_ERROR };
		fell_back_to_http(r, &plain);
		return;
	}
	cleanup_free char *url = udfb_asprintf("https://%s/v2/", r->api_host);
	struct udfb_tls tls = { .verify = 0 };
	struct udfb_http_req req = { .method = "GET", .url = url, .tls = &tls };
	struct udfb_http_resp out;
	udfb_http_perform(h, &req, &out);
	if (out.status > 0 || out.rc == CURLE_SSL_CONNECT_ERROR)
		fell_back_to_http(r, &out);
	udfb_http_resp_clear(&out);
}

static int conn_error(struct udfb_registry *r, const struct udfb_http_resp *out, int tries, struct udfb_err *err)
{
	const char *hint = "";
	if (out->rc == CURLE_PEER_FAILED_VERIFICATION || out->rc == CURLE_SSL_CACERT_BADFILE)
		hint = " (trust its CA with UDFB_REGISTRY_CA_BUNDLE)";
	return udfb_err_set(err, UDFB_E_UNAVAILABLE, "%s: %s%s%s", r->host, udfb_http_failure(out), hint,
			    tries > 1 ? " (gave up after retries)" : "");
}

/* A response (any status), as opposed to a broken connection.  A body cut
 * short by our own limit or sink still counts: the caller judges it. */
static int got_response(const struct udfb_http_resp *out)
{
	return out->status > 0 && (out->rc == CURLE_OK || out->too_big || out->sink_failed);
}

int reg_call(struct udfb_registry *r, const struct reg_call *c, struct udfb_http_resp *out, int *transient,
	     struct udfb_err *err)
{
	*transient = 0;
	CURL *h = reg_handle_get(r);
	int reauthed = 0, rc = 0;
	for (int attempt = 0;;) {
		probe_scheme(r, h);
		if ((rc = one_try(r, h, c, out, err)) < 0)
			break;
		if (fell_back_to_http(r, out)) {
			udfb_http_resp_clear(out);
			continue;
		}
		int answered = got_response(out);
		if (answered && out->status == 401 && out->www_authenticate && !reauthed &&
		    c->body.kind != UDFB_BODY_STREAM) {
			reauthed = 1;
			rc = udfb_auth_challenged(&r->auth, out->www_authenticate, c->scope, err);
			udfb_http_resp_clear(out);
			if (rc < 0)
				break;
			continue;
		}
		if (answered && !udfb_retry_status(out->status))
			break;
		*transient = 1;
		if (c->once || attempt >= r->retries) {
			if (!answered)
				rc = conn_error(r, out, attempt + 1, err), udfb_http_resp_clear(out);
			break;
		}
		long wait = udfb_retry_delay_ms(attempt, out->retry_after, time(NULL));
		udfb_info("registry %s: %s answered %ld; retry %d in %ld ms", r->host, c->method, out->status,
			  attempt + 1, wait);
		udfb_http_resp_clear(out);
		udfb_retry_sleep_ms(wait);
		attempt++;
	}
	reg_handle_put(r, h);
	return rc;
}

/* The shared map (udfb_http_status_cat) seen from a client of the
 * registry: a refused login is the service's credentials, not the
 * caller's request; any other refusal of a request we composed, or a
 * registry that does not speak the API (501, 505), is our bug. */
static enum udfb_errcat category(long status)
{
	if (status == 401 || status == 403)
		return UDFB_E_UNAVAILABLE;
	enum udfb_errcat cat = udfb_http_status_cat(status);
	if (cat == UDFB_E_INVALID || (cat == UDFB_E_UNAVAILABLE && !udfb_retry_status(status)))
		return UDFB_E_INTERNAL;
	return cat;
}

int reg_status_error(struct udfb_registry *r, const char *what, const struct udfb_http_resp *h, struct udfb_err *err)
{
	const struct udfb_buf *b = &h->err_body;
	json_t *j = b->len ? json_loadb(b->data, b->len, 0, NULL) : NULL;
	json_t *e0 = json_array_get(json_object_get(j, "errors"), 0);
	const char *code = json_string_value(json_object_get(e0, "code"));
	const char *msg = json_string_value(json_object_get(e0, "message"));
	char why[512] = "";
	if (h->status == 401 || h->status == 403)
		udfb_auth_describe(&r->auth, why, sizeof(why));
	if (code)
		udfb_err_set(err, category(h->status), "%s/%s: %.64s: %.200s%s", r->host, what, code, msg ? msg : "",
			     why);
	else
		udfb_err_set(err, category(h->status), "%s/%s: HTTP %ld%s", r->host, what, h->status, why);
	json_decref(j);
	return -1;
}
