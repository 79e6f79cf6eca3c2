/* Tokens and sandbox keys: see token.h. */
#include "service/token.h"

#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

static void hmac_hex(char out[65], const void *key, size_t key_len, const void *msg, size_t msg_len)
{
	unsigned char mac[32];
	unsigned int n = 0;
	if (!HMAC(EVP_sha256(), key, (int)key_len, msg, msg_len, mac, &n) || n != 32)
		abort();
	for (int k = 0; k < 32; k++)
		snprintf(out + 2 * k, 3, "%02x", mac[k]);
}

void udfb_token_sandbox_key(char out[UDFB_SANDBOX_KEY_LEN + 1], const char *secret, size_t secret_len,
			    const char *tenant, const char *key)
{
	struct udfb_buf msg;
	udfb_buf_init(&msg, 1 << 16);
	udfb_buf_printf(&msg, "udfb-sandbox-key-v2\n%zu:%s\n%zu:%s", strlen(tenant), tenant, strlen(key), key);
	hmac_hex(out, secret, secret_len, msg.data, msg.len);
	udfb_buf_free(&msg);
}

static void token_mac(char out[65], const char *sandbox_key, const char *expires, size_t n)
{
	char msg[64];
	int len = snprintf(msg, sizeof(msg), "udfb-token-v2\n%.*s", (int)n, expires);
	hmac_hex(out, sandbox_key, strlen(sandbox_key), msg, (size_t)len);
}

void udfb_token_mint(char out[UDFB_TOKEN_MAX], const char *secret, size_t secret_len, const char *tenant,
		     const char *key, long long expires)
{
	char sk[UDFB_SANDBOX_KEY_LEN + 1], exp[24], mac[65];
	udfb_token_sandbox_key(sk, secret, secret_len, tenant, key);
	int n = snprintf(exp, sizeof(exp), "%lld", expires);
	token_mac(mac, sk, exp, (size_t)n);
	snprintf(out, UDFB_TOKEN_MAX, "v2.%s.%s", exp, mac);
	OPENSSL_cleanse(sk, sizeof(sk));
}

int udfb_token_check(const char *token, const char *sandbox_key, long long now, long long skew_s)
{
	if (strncmp(token, "v2.", 3) != 0)
		return 0;
	const char *exp = token + 3, *dot = strchr(exp, '.');
	size_t n = dot ? (size_t)(dot - exp) : 0;
	if (n == 0 || n > 18 || strspn(exp, "0123456789") != n || strlen(dot + 1) != 64)
		return 0;
	char mac[65];
	token_mac(mac, sandbox_key, exp, n);
	if (CRYPTO_memcmp(mac, dot + 1, 64) != 0)
		return 0;
	return strtoll(exp, NULL, 10) + skew_s >= now;
}
