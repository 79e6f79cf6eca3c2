/* Inside the registry client: the client struct and the one request path
 * every step goes through (registry.c).  Not for other modules. */
#ifndef UDFB_REGISTRY_INTERNAL_H
#define UDFB_REGISTRY_INTERNAL_H

#include <curl/curl.h>
#include <pthread.h>

#include "registry-client/auth.h"
#include "registry-client/http.h"
#include "registry-client/registry.h"

#define REG_IDLE_HANDLES 8

struct udfb_registry {
	char *host; /* as the reference names it: "127.0.0.1:5000" */
	char *api_host; /* where its API answers (docker.io's differs) */
	char *base_url; /* "https://api_host" or, once known, "http://…" */
	enum udfb_host_policy policy;
	int scheme_known;
	struct udfb_tls tls;
	char *ca_bundle;
	char *insecure; /* ",host,host," for lookups */
	int retries;
	struct udfb_auth auth;
	pthread_mutex_t mu; /* idle handles and the scheme */
	CURL *idle[REG_IDLE_HANDLES];
	int n_idle;
};

/* 1 when api_host (a loopback or insecure registry) answers a TLS
 * ClientHello in plain HTTP, asked on a bare socket within timeout_ms;
 * 0 when it does not or cannot say (curl's probe then asks). */
int reg_probe_plain_http(const char *api_host, int timeout_ms);

struct reg_call {
	const char *method;
	const char *path; /* "/v2/…" or an absolute URL (an upload Location) */
	const char *scope; /* the token scope this step needs */
	const char *accept;
	const char *content_type;
	struct udfb_http_body body;
	struct udfb_buf *resp; /* 2xx body, bounded */
	udfb_http_sink sink;
	void *sink_ctx;
	int follow;
	int once; /* never retried: a stream, or a step with its own restart */
};

/* Runs the step with auth and retries.  0 when a final response came (any
 * status: the caller judges it); -1 with *err when none did.  *transient
 * says whether a later retry of the whole operation might succeed. */
int reg_call(struct udfb_registry *r, const struct reg_call *c, struct udfb_http_resp *out, int *transient,
	     struct udfb_err *err);
/* The registry's answer as one error line: "HOST/WHAT: CODE: message". */
int reg_status_error(struct udfb_registry *r, const char *what, const struct udfb_http_resp *h, struct udfb_err *err);
/* A libcurl handle from the client's pool (its connections stay open). */
CURL *reg_handle_get(struct udfb_registry *r);
void reg_handle_put(struct udfb_registry *r, CURL *c);
/* "repository:REPO:ACTIONS" */
char *reg_scope(const char *repo, const char *actions);
/* Absolute URL of an upload Location, relative ones resolved against the
 * registry; extra ("digest=…") appended to its query. */
char *reg_resolve(struct udfb_registry *r, const char *location, const char *extra);

/* Steps shared by manifest.c, blob.c and push.c, with the scope to ask for. */
int reg_manifest_head(struct udfb_registry *r, const char *repo, const char *ref, const char *scope,
		      char digest[UDFB_DIGEST_LEN + 1], struct udfb_err *err);
int reg_manifest_put(struct udfb_registry *r, const char *repo, const char *ref, const char *scope, const char *data,
		     size_t len, const char *media_type, const char *digest, struct udfb_err *err);
int reg_blob_exists(struct udfb_registry *r, const char *repo, const char *digest, const char *scope,
		    struct udfb_err *err);
/* 1 mounted; 0 not, and *location is the upload the registry opened instead. */
int reg_blob_mount(struct udfb_registry *r, const char *repo, const struct udfb_push_blob *b, const char *scope,
		   char **location, struct udfb_err *err);
/* Upload b (from its file, or streamed from its registry); location, when
 * given, is an upload already opened. */
int reg_blob_upload(struct udfb_registry *r, const char *repo, const struct udfb_push_blob *b, const char *scope,
		    char *location, long long *sent, struct udfb_err *err);
/* POST + streamed PATCH + PUT of a blob read from another registry. */
int reg_blob_stream(struct udfb_registry *r, const char *repo, const struct udfb_push_blob *b, const char *scope,
		    const char *location, int *transient, struct udfb_err *err);

#endif
