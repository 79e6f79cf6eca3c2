/* The registry client's core: settings, the TLS and plain-http rules, a
 * small pool of libcurl handles (each keeps its connections alive), and the
 * one request path with auth and retries.  See registry.h and
 * docs/registry.md. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/cleanup.h"
#include "common/curlx.h"
#include "registry-client/dockercfg.h"
#include "common/alloc.h"
#include "common/log.h"
#include "registry-client/registry_internal.h"
#include "registry-client/retry.h"

void udfb_registry_opts_from_env(struct udfb_registry_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->ca_bundle = getenv("UDFB_REGISTRY_CA_BUNDLE");
	if (o->ca_bundle && !*o->ca_bundle)
		o->ca_bundle = NULL;
	o->insecure = getenv("UDFB_REGISTRY_INSECURE");
	const char *n = getenv("UDFB_REGISTRY_RETRIES");
	o->retries = n && *n ? atoi(n) : -1;
}

static enum udfb_host_policy policy_of(const char *host, void *ctx)
{
	const struct udfb_registry *r = ctx;
	char key[300];
	snprintf(key, sizeof(key), ",%s,", host);
	if (r->insecure && strcasestr(r->insecure, key))
		return UDFB_HOST_INSECURE;
	return udfb_http_host_is_loopback(host) ? UDFB_HOST_LOOPBACK : UDFB_HOST_SECURE;
}

static char *insecure_list(const char *s)
{
	struct udfb_buf b;
	udfb_buf_init(&b, 1u << 16);
	udfb_buf_addstr(&b, ",");
	for (const char *p = s ? s : ""; *p; p++)
		if (*p != ' ' && *p != '\t')
			udfb_buf_add(&b, p, 1);
	udfb_buf_addstr(&b, ",");
	return udfb_buf_steal(&b, NULL);
}

int udfb_registry_open(struct udfb_registry **out, const char *host, const struct udfb_registry_opts *o,
		       struct udfb_err *err)
{
	if (udfb_curl_global_init(err) < 0)
		return -1;
	struct udfb_registry *r = udfb_calloc(1, sizeof(*r));
	r->host = udfb_strdup(host);
	/* Docker Hub's API is not served where its name points. */
	r->api_host = udfb_strdup(strcasecmp(host, "docker.io") == 0 ? "registry-1.docker.io" : host);
	r->insecure = insecure_list(o->insecure);
	r->ca_bundle = o->ca_bundle ? udfb_strdup(o->ca_bundle) : NULL;
	r->retries = o->retries < 0 ? UDFB_RETRY_DEFAULT : o->retries;
	r->policy = policy_of(r->api_host, r);
	r->tls = (struct udfb_tls){ .ca_bundle = r->ca_bundle, .verify = r->policy != UDFB_HOST_INSECURE };
	r->scheme_known = r->policy == UDFB_HOST_SECURE;
	r->base_url = udfb_asprintf("https://%s", r->api_host);
	pthread_mutex_init(&r->mu, NULL);
	udfb_auth_init(&r->auth, host, o->creds ? o->creds : &udfb_dockercfg_source, &r->tls);
	r->auth.policy = policy_of;
	r->auth.policy_ctx = r;
	*out = r;
	return 0;
}

void udfb_registry_free(struct udfb_registry *r)
{
	if (!r)
		return;
	for (int k = 0; k < r->n_idle; k++)
		curl_easy_cleanup(r->idle[k]);
	udfb_auth_destroy(&r->auth);
	pthread_mutex_destroy(&r->mu);
	free(r->host);
	free(r->api_host);
	free(r->base_url);
	free(r->insecure);
	free(r->ca_bundle);
	free(r);
}

const char *udfb_registry_host(const struct udfb_registry *r)
{
	return r->host;
}

struct udfb_registries {
	pthread_mutex_t mu;
	struct udfb_registry_opts opts;
	struct udfb_registry **v;
	size_t n;
};

struct udfb_registries *udfb_registries_new(const struct udfb_registry_opts *o)
{
	struct udfb_registries *set = udfb_calloc(1, sizeof(*set));
	pthread_mutex_init(&set->mu, NULL);
	if (o)
		set->opts = *o;
	else
		udfb_registry_opts_from_env(&set->opts);
	return set;
}

int udfb_registries_get(struct udfb_registries *set, const char *host, struct udfb_registry **out, struct udfb_err *err)
{
	pthread_mutex_lock(&set->mu);
	size_t k = 0;
	while (k < set->n && strcmp(set->v[k]->host, host) != 0)
		k++;
	int rc = 0;
	if (k == set->n) {
		struct udfb_registry *r;
		rc = udfb_registry_open(&r, host, &set->opts, err);
		if (rc == 0) {
			set->v = udfb_reallocarray(set->v, set->n + 1, sizeof(*set->v));
			set->v[set->n++] = r;
		}
	}
	if (rc == 0)
		*out = set->v[k];
	pthread_mutex_unlock(&set->mu);
	return rc;
}

void udfb_registries_free(struct udfb_registries *set)
{
	if (!set)
		return;
	for (size_t k = 0; k < set->n; k++)
		udfb_registry_free(set->v[k]);
	free(set->v);
	pthread_mutex_destroy(&set->mu);
	free(set);
}

CURL *reg_handle_get(struct udfb_registry *r)
{
	pthread_mutex_lock(&r->mu);
	CURL *c = r->n_idle ? r->idle[--r->n_idle] : NULL;
	pthread_mutex_unlock(&r->mu);
	if (!c && !(c = curl_easy_init()))
		abort();
	return c;
}

void reg_handle_put(struct udfb_registry *r, CURL *c)
{
	pthread_mutex_lock(&r->mu);
	if (r->n_idle < REG_IDLE_HANDLES) {
		r->idle[r->n_idle++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&r->mu);
	if (c)
		curl_easy_cleanup(c);
}

char *reg_scope(const char *repo, const char *actions)
{
	return udfb_asprintf("repository:%s:%s", repo, actions);
}

char *reg_resolve(struct udfb_registry *r, const char *location, const char *extra)
{
	CURLU *u = curl_url();
	char *url = NULL, *out = NULL;
	pthread_mutex_lock(&r->mu);
	curl_url_set(u, CURLUPART_URL, r->base_url, 0);
	pthread_mutex_unlock(&r->mu);
	if (curl_url_set(u, CURLUPART_URL, location, 0) == CURLUE_OK &&
	    (!extra || curl_url_set(u, CURLUPART_QUERY, extra, CURLU_APPENDQUERY) == CURLUE_OK) &&
	    curl_url_get(u, CURLUPART_URL, &url, 0) == CURLUE_OK)
		out = udfb_strdup(url);
	curl_free(url);
	curl_url_cleanup(u);
	return out;
}
