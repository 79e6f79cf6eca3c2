/* Token derivation: see token.h.  The message is length-prefixed so that
 * no (tenant, key) pair can collide with another by shifting bytes. */
#include "token.h"

#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

void udfb_token_derive(char out[UDFB_TOKEN_LEN + 1], const char *secret, size_t secret_len, const char *tenant,
		       const char *key)
{
	struct udfb_buf msg;
	udfb_buf_init(&msg, 1 << 16);
	udfb_buf_printf(&msg, "udfb-token-v1\n%zu:%s\n%zu:%s", strlen(tenant), tenant, strlen(key), key);
	unsigned char mac[32];
	unsigned int n = 0;
	if (!HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)msg.data, msg.len, mac, &n) || n != 32)
		abort();
	udfb_buf_free(&msg);
	for (int k = 0; k < 32; k++)
		snprintf(out + 2 * k, 3, "%02x", mac[k]);
}
