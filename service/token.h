/* The x-authorization token handed to Databend with an endpoint and to the
 * sandbox serving it: HMAC-SHA256 over (tenant, key) under a server secret,
 * hex-encoded.  A token proves that this service handed out the endpoint for
 * that tenant's UDF; it is never logged. */
#ifndef UDFB_TOKEN_H
#define UDFB_TOKEN_H

#include <stddef.h>

#define UDFB_TOKEN_LEN 64

void udfb_token_derive(char out[UDFB_TOKEN_LEN + 1], const char *secret, size_t secret_len, const char *tenant,
		       const char *key);

#endif
