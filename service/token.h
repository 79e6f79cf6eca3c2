/* The x-authorization tokens handed to Databend with an endpoint, and the
 * keys sandboxes check them with.  A token proves that this service handed
 * out the endpoint for that tenant's UDF, until it expires; tokens and keys
 * are never logged.
 *
 *   sandbox key  hex HMAC-SHA256(secret, "udfb-sandbox-key-v2\n<len>:<tenant>\n<len>:<key>")
 *   token        "v2.<expires>.<hex HMAC-SHA256(sandbox key as its 64 hex bytes, "udfb-token-v2\n<expires>")>"
 *
 * <expires> is Unix time in seconds, in decimal.  A sandbox holds its own
 * sandbox key (one per configured secret, for rotations), never a secret:
 * what runs in it can mint tokens for itself only.  The messages are
 * length-prefixed so that no (tenant, key) pair collides with another. */
#ifndef UDFB_TOKEN_H
#define UDFB_TOKEN_H

#include <stddef.h>

#define UDFB_SANDBOX_KEY_LEN 64
#define UDFB_TOKEN_MAX 96 /* "v2." + up to 20 digits + "." + 64 hex, NUL */

void udfb_token_sandbox_key(char out[UDFB_SANDBOX_KEY_LEN + 1], const char *secret, size_t secret_len,
			    const char *tenant, const char *key);
/* A token for the sandbox of (tenant, key), good until expires. */
void udfb_token_mint(char out[UDFB_TOKEN_MAX], const char *secret, size_t secret_len, const char *tenant,
		     const char *key, long long expires);
/* 1 when token is one of sandbox_key's and has not expired at now (with
 * skew_s seconds of leeway for clocks that disagree); else 0.  What the
 * stub (templates/server.py) does, for tests and tools. */
int udfb_token_check(const char *token, const char *sandbox_key, long long now, long long skew_s);

#endif
