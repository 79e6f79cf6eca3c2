/* Registry authentication: the WWW-Authenticate challenge (a parser of
 * untrusted bytes, fuzzed by tests/fuzz/fuzz_auth.c), credentials and where
 * they come from, and the Bearer token flow with a per-scope token cache.
 * Passwords and tokens live only in these structs and in the Authorization
 * header handed to libcurl: nothing here logs or puts them in a message. */
#ifndef UDFB_AUTH_H
#define UDFB_AUTH_H

#include <curl/curl.h>
#include <pthread.h>

#include "common/err.h"
#include "registry-client/http.h"

#define UDFB_AUTH_TOKEN_MAX_BYTES (1u << 20)
#define UDFB_AUTH_TOKENS 16 /* cached tokens per registry */

enum udfb_auth_scheme { UDFB_AUTH_NONE, UDFB_AUTH_BASIC, UDFB_AUTH_BEARER };

struct udfb_auth_challenge {
	enum udfb_auth_scheme scheme;
	char *realm;
	char *service;
	char *scope; /* space-separated scopes, as the registry sent them */
	char *error; /* e.g. "insufficient_scope" */
};

/* Parse a WWW-Authenticate value: one challenge or several, separated by
 * commas (commas also occur inside quoted scopes).  Bearer is preferred to
 * Basic; other schemes are skipped.  INVALID when the value is malformed,
 * UNSUPPORTED when it offers neither Basic nor Bearer (with a realm). */
int udfb_auth_parse_challenge(struct udfb_auth_challenge *out, const char *value, struct udfb_err *err);
void udfb_auth_challenge_clear(struct udfb_auth_challenge *c);

struct udfb_cred {
	char *username;
	char *password;
	char *identity_token; /* an OAuth2 refresh token (docker's identitytoken) */
	char *source; /* where they came from, for messages: a path or a helper */
};

void udfb_cred_clear(struct udfb_cred *c);

/* A place credentials come from: docker's config.json (dockercfg.h), the
 * service configuration, a test. */
struct udfb_cred_source {
	const char *name;
	/* 1 and *out when it has credentials for host, 0 when not, -1 on error. */
	int (*lookup)(const struct udfb_cred_source *s, const char *host, struct udfb_cred *out, struct udfb_err *err);
	void *impl;
};

/* The auth state of one registry, shared by the threads pushing to it. */
struct udfb_auth {
	pthread_mutex_t mu;
	char *host;
	const struct udfb_cred_source *src;
	int cred_state; /* 0 not looked up, 1 found, -1 none */
	struct udfb_cred cred;
	struct udfb_auth_challenge ch;
	struct udfb_tls tls;
	/* The rules for the token server's host, which the registry names. */
	enum udfb_host_policy (*policy)(const char *host, void *ctx);
	void *policy_ctx;
	struct auth_token {
		char *scope;
		char *value;
		long long expires_ms; /* CLOCK_MONOTONIC */
	} tokens[UDFB_AUTH_TOKENS];
};

void udfb_auth_init(struct udfb_auth *a, const char *host, const struct udfb_cred_source *src,
		    const struct udfb_tls *tls);
void udfb_auth_destroy(struct udfb_auth *a);
/* The Authorization header line for a request needing scope (space-separated
 * "repository:NAME:ACTIONS" items), or *out NULL when none is needed yet.
 * Fetches a token on c when the registry asked for Bearer and none is
 * cached for scope. */
int udfb_auth_header(struct udfb_auth *a, CURL *c, const char *scope, char **out, struct udfb_err *err);
/* A request got 401 with this WWW-Authenticate: remember the challenge and
 * drop the token cached for scope.  Fails when no retry can help (no
 * credentials for Basic, an unknown scheme). */
int udfb_auth_challenged(struct udfb_auth *a, const char *www_authenticate, const char *scope, struct udfb_err *err);
/* " (credentials from SOURCE)" or " (no credentials for HOST)", for messages. */
const char *udfb_auth_describe(struct udfb_auth *a, char *buf, size_t n);

/* Wipe and free a header line from udfb_auth_header. */
void udfb_auth_free_line(char *line);
/* "Basic base64(user:pass)" (malloc'd). */
char *udfb_auth_basic(const char *user, const char *pass);

#endif
