/* Credentials, Basic and the Bearer token flow: see auth.h.  The token
 * endpoint ("realm") is named by the registry, so it gets the same TLS
 * rules as a registry: https, unless its host is loopback or listed as
 * insecure.  One mutex per registry makes concurrent pushes share one token
 * fetch instead of racing several. */
#include "registry-client/auth.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/clock.h"
#include "registry-client/retry.h"

#define DEFAULT_EXPIRES_S 60 /* the distribution token spec's default */

void udfb_cred_clear(struct udfb_cred *c)
{
	/* Secrets are wiped before their memory goes back to the allocator. */
	char *secrets[] = { c->password, c->identity_token };
	for (int k = 0; k < 2; k++)
		if (secrets[k])
			OPENSSL_cleanse(secrets[k], strlen(secrets[k]));
	free(c->username);
	free(c->password);
	free(c->identity_token);
	free(c->source);
	memset(c, 0, sizeof(*c));
}

char *udfb_auth_basic(const char *user, const char *pass)
{
	size_t n = strlen(user) + 1 + strlen(pass);
	char *plain = udfb_malloc(n + 1);
	char *out = udfb_malloc(6 + 4 * ((n + 2) / 3) + 1);
	snprintf(plain, n + 1, "%s:%s", user, pass);
	memcpy(out, "Basic ", 6);
	EVP_EncodeBlock((unsigned char *)out + 6, (const unsigned char *)plain, (int)n);
	OPENSSL_cleanse(plain, n);
	free(plain);
	return out;
}

void udfb_auth_init(struct udfb_auth *a, const char *host, const struct udfb_cred_source *src,
		    const struct udfb_tls *tls)
{
	memset(a, 0, sizeof(*a));
	pthread_mutex_init(&a->mu, NULL);
	a->host = udfb_strdup(host);
	a->src = src;
	a->tls = *tls;
}

static void token_clear(struct auth_token *t)
{
	if (t->value)
		OPENSSL_cleanse(t->value, strlen(t->value));
	free(t->scope);
	free(t->value);
	memset(t, 0, sizeof(*t));
}

void udfb_auth_destroy(struct udfb_auth *a)
{
	for (int k = 0; k < UDFB_AUTH_TOKENS; k++)
		token_clear(&a->tokens[k]);
	udfb_cred_clear(&a->cred);
	udfb_auth_challenge_clear(&a->ch);
	free(a->host);
	pthread_mutex_destroy(&a->mu);
}

const char *udfb_auth_describe(struct udfb_auth *a, char *buf, size_t n)
{
	if (a->cred_state == 1)
		snprintf(buf, n, " (credentials from %s)", a->cred.source ? a->cred.source : "configuration");
	else
		snprintf(buf, n, " (no credentials for %s)", a->host);
	return buf;
}

static int load_cred(struct udfb_auth *a, struct udfb_err *err)
{
	if (a->cred_state != 0 || !a->src)
		return 0;
	int found = a->src->lookup(a->src, a->host, &a->cred, err);
	if (found < 0)
		return udfb_err_wrap(err, "credentials for %s", a->host);
	a->cred_state = found ? 1 : -1;
	return 0;
}

static struct auth_token *token_find(struct udfb_auth *a, const char *scope)
{
	for (int k = 0; k < UDFB_AUTH_TOKENS; k++)
		if (a->tokens[k].scope && strcmp(a->tokens[k].scope, scope) == 0)
			return &a->tokens[k];
	return NULL;
}

/* A free slot, else the one expiring first. */
static struct auth_token *token_slot(struct udfb_auth *a)
{
	struct auth_token *t = &a->tokens[0];
	for (int k = 0; k < UDFB_AUTH_TOKENS; k++) {
		if (!a->tokens[k].scope)
			return &a->tokens[k];
		if (a->tokens[k].expires_ms < t->expires_ms)
			t = &a->tokens[k];
	}
	token_clear(t);
	return t;
}

/* Scopes asked for plus the challenge's own, each once (at most 16). */
static size_t scope_list(char **out, size_t max, char *mine, char *theirs)
{
	size_t n = 0;
	char *lists[] = { mine, theirs }, *save = NULL;
	for (int k = 0; k < 2; k++) {
		for (char *s = lists[k] ? strtok_r(lists[k], " ", &save) : NULL; s && n < max;
		     s = strtok_r(NULL, " ", &save)) {
			int dup = 0;
			for (size_t j = 0; j < n; j++)
				dup |= strcmp(out[j], s) == 0;
			if (!dup)
				out[n++] = s;
		}
	}
	return n;
}

/* "service=S&scope=A&scope=B" for a GET; the OAuth2 form joins scopes with
 * spaces: "service=S&scope=A%20B". */
static char *token_query(CURL *c, const struct udfb_auth_challenge *ch, const char *scope, int form)
{
	struct udfb_buf q;
	udfb_buf_init(&q, 1u << 20);
	cleanup_free char *mine = udfb_strdup(scope ? scope : ""), *theirs = udfb_strdup(ch->scope ? ch->scope : "");
	char *scopes[16];
	size_t n = scope_list(scopes, 16, mine, theirs);
	char *e = curl_easy_escape(c, ch->service ? ch->service : "", 0);
	udfb_buf_printf(&q, "service=%s", e);
	curl_free(e);
	for (size_t k = 0; k < n; k++) {
		e = curl_easy_escape(c, scopes[k], 0);
		udfb_buf_printf(&q, "%s%s", form && k ? "%20" : "&scope=", e);
		curl_free(e);
	}
	return udfb_buf_steal(&q, NULL);
}

static int realm_rules(struct udfb_auth *a, struct udfb_tls *tls, struct udfb_err *err)
{
	const char *realm = a->ch.realm;
	cleanup_free char *host = udfb_http_url_host(realm);
	int https = strncasecmp(realm, "https://", 8) == 0, http = strncasecmp(realm, "http://", 7) == 0;
	enum udfb_host_policy p = host && a->policy ? a->policy(host, a->policy_ctx) : UDFB_HOST_SECURE;
	if (!host || !(https || http))
		return udfb_err_set(err, UDFB_E_UNAVAILABLE, "%s: its token server is not an http(s) URL", a->host);
	if (http && p == UDFB_HOST_SECURE)
		return udfb_err_set(
			err, UDFB_E_UNAVAILABLE,
			"%s: its token server %s is plain http; list it in UDFB_REGISTRY_INSECURE to allow that",
			a->host, host);
	*tls = a->tls;
	tls->verify = p != UDFB_HOST_INSECURE;
	return 0;
}

/* The token and its lifetime from the token server's JSON. */
static int parse_token(struct auth_token *t, const struct udfb_buf *body, const char *realm_host, struct udfb_err *err)
{
	json_t *j = json_loadb(body->data ? body->data : "", body->len, 0, NULL);
	const char *v = json_string_value(json_object_get(j, "token"));
	if (!v || !*v)
		v = json_string_value(json_object_get(j, "access_token"));
	int good = v && *v;
	for (const char *p = v; good && *p; p++)
		good = *p > 0x20 && *p < 0x7f; /* it goes into a header line */
	if (!good) {
		json_decref(j);
		return udfb_err_set(err, UDFB_E_UNAVAILABLE, "token server %s: no usable token in its answer",
				    realm_host);
	}
	json_int_t exp = json_integer_value(json_object_get(j, "expires_in"));
	if (exp <= 0 || exp > 86400)
		exp = DEFAULT_EXPIRES_S;
	/* Renew a little early so a token never expires in flight. */
	long long margin = exp > 20 ? 10000 : exp * 500;
	t->value = udfb_strdup(v);
	t->expires_ms = udfb_now_ms() + exp * 1000 - margin;
	json_decref(j);
	return 0;
}

static void token_request(struct udfb_auth *a, CURL *c, const char *scope, struct udfb_http_req *req, char **url,
			  char **body)
{
	int refresh = a->cred_state == 1 && a->cred.identity_token;
	cleanup_free char *q = token_query(c, &a->ch, scope, refresh);
	const char *realm = a->ch.realm;
	if (refresh) {
		char *rt = curl_easy_escape(c, a->cred.identity_token, 0);
		*body = udfb_asprintf("grant_type=refresh_token&client_id=udf-builder&%s&refresh_token=%s", q, rt);
		OPENSSL_cleanse(rt, strlen(rt));
		curl_free(rt);
		*url = udfb_strdup(realm);
		req->method = "POST";
		req->body = (struct udfb_http_body){ .kind = UDFB_BODY_MEM,
						     .data = *body,
						     .size = (long long)strlen(*body) };
		req->headers = curl_slist_append(req->headers, "Content-Type: application/x-www-form-urlencoded");
	} else {
		*url = udfb_asprintf("%s%c%s", realm, strchr(realm, '?') ? '&' : '?', q);
		req->method = "GET";
		if (a->cred_state == 1 && a->cred.username && a->cred.password) {
			cleanup_free char *basic = udfb_auth_basic(a->cred.username, a->cred.password);
			cleanup_free char *line = udfb_asprintf("Authorization: %s", basic);
			req->headers = curl_slist_append(req->headers, line);
			OPENSSL_cleanse(line, strlen(line));
			OPENSSL_cleanse(basic, strlen(basic));
		}
	}
	req->url = *url;
}

static void free_request(struct udfb_http_req *req, char *url, char *body)
{
	for (struct curl_slist *h = req->headers; h; h = h->next)
		OPENSSL_cleanse(h->data, strlen(h->data));
	curl_slist_free_all(req->headers);
	if (body)
		OPENSSL_cleanse(body, strlen(body));
	free(body);
	free(url);
}

static int token_status(struct udfb_auth *a, const struct udfb_http_resp *r, const char *rhost, struct udfb_err *err)
{
	char why[512];
	if (r->status == 0)
		return udfb_err_set(err, UDFB_E_UNAVAILABLE, "token server %s: %s", rhost, udfb_http_failure(r));
	return udfb_err_set(err, UDFB_E_UNAVAILABLE, "token server %s for %s: HTTP %ld%s", rhost, a->host, r->status,
			    udfb_auth_describe(a, why, sizeof(why)));
}

static int fetch_token(struct udfb_auth *a, CURL *c, const char *scope, struct auth_token *t, struct udfb_err *err)
{
	struct udfb_tls tls;
	if (realm_rules(a, &tls, err) < 0)
		return -1;
	cleanup_free char *rhost = udfb_http_url_host(a->ch.realm);
	struct udfb_buf body;
	udfb_buf_init(&body, UDFB_AUTH_TOKEN_MAX_BYTES);
	int rc = -1;
	for (int attempt = 0;; attempt++) {
		struct udfb_http_req req = { .tls = &tls, .resp = &body };
		char *url = NULL, *form = NULL;
		token_request(a, c, scope, &req, &url, &form);
		struct udfb_http_resp r;
		udfb_http_perform(c, &req, &r);
		free_request(&req, url, form);
		int transient = r.status == 0 || udfb_retry_status(r.status);
		if (r.status == 200 && r.rc == CURLE_OK)
			rc = parse_token(t, &body, rhost, err);
		else if (!transient || attempt >= UDFB_RETRY_DEFAULT)
			rc = r.too_big
				     ? udfb_err_set(err, UDFB_E_UNAVAILABLE, "token server %s: answer too large", rhost)
				     : token_status(a, &r, rhost, err);
		long wait = transient ? udfb_retry_delay_ms(attempt, r.retry_after, time(NULL)) : 0;
		udfb_http_resp_clear(&r);
		if (rc == 0 || err->msg)
			break;
		udfb_retry_sleep_ms(wait);
	}
	if (body.data)
		OPENSSL_cleanse(body.data, body.len);
	udfb_buf_free(&body);
	if (rc == 0)
		t->scope = udfb_strdup(scope);
	return rc;
}

static char *header_line(const char *scheme_value)
{
	return udfb_asprintf("Authorization: %s", scheme_value);
}

static int bearer_header(struct udfb_auth *a, CURL *c, const char *scope, char **out, struct udfb_err *err)
{
	struct auth_token *t = token_find(a, scope);
	if (t && t->expires_ms <= udfb_now_ms()) {
		token_clear(t);
		t = NULL;
	}
	if (!t) {
		struct auth_token fresh = { 0 };
		if (fetch_token(a, c, scope, &fresh, err) < 0)
			return -1;
		t = token_slot(a);
		*t = fresh;
	}
	cleanup_free char *v = udfb_asprintf("Bearer %s", t->value);
	*out = header_line(v);
	OPENSSL_cleanse(v, strlen(v));
	return 0;
}

int udfb_auth_header(struct udfb_auth *a, CURL *c, const char *scope, char **out, struct udfb_err *err)
{
	*out = NULL;
	pthread_mutex_lock(&a->mu);
	int rc = 0;
	if (a->ch.scheme != UDFB_AUTH_NONE)
		rc = load_cred(a, err);
	if (rc == 0 && a->ch.scheme == UDFB_AUTH_BASIC && a->cred_state == 1 && a->cred.username && a->cred.password) {
		cleanup_free char *b = udfb_auth_basic(a->cred.username, a->cred.password);
		*out = header_line(b);
		OPENSSL_cleanse(b, strlen(b));
	} else if (rc == 0 && a->ch.scheme == UDFB_AUTH_BEARER) {
		rc = bearer_header(a, c, scope ? scope : "", out, err);
	}
	pthread_mutex_unlock(&a->mu);
	return rc;
}

int udfb_auth_challenged(struct udfb_auth *a, const char *www_authenticate, const char *scope, struct udfb_err *err)
{
	struct udfb_auth_challenge ch;
	if (udfb_auth_parse_challenge(&ch, www_authenticate, err) < 0)
		return udfb_err_wrap(err, "%s", a->host);
	pthread_mutex_lock(&a->mu);
	udfb_auth_challenge_clear(&a->ch);
	a->ch = ch;
	struct auth_token *t = token_find(a, scope ? scope : "");
	if (t)
		token_clear(t);
	int rc = load_cred(a, err);
	char why[512];
	if (rc == 0 && ch.scheme == UDFB_AUTH_BASIC && a->cred_state != 1)
		rc = udfb_err_set(err, UDFB_E_UNAVAILABLE,
				  "%s: UNAUTHORIZED: the registry wants a user name and password%s", a->host,
				  udfb_auth_describe(a, why, sizeof(why)));
	pthread_mutex_unlock(&a->mu);
	return rc;
}

void udfb_auth_free_line(char *line)
{
	if (line)
		OPENSSL_cleanse(line, strlen(line));
	free(line);
}
