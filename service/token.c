/* Tokens and sandbox keys: see token.h.  Every cache-hit call mints one
 * (two HMACs), so the HMACs run on a SHA-256 fetched once per process and
 * an HMAC_CTX per thread: the one-shot HMAC() fetches "HMAC" and "SHA256"
 * from the providers at every call (about 3 us each here).  OpenSSL 3
 * deprecates HMAC_CTX but keeps it for the 3.x series (as common/hash.c's
 * SHA256_*). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "service/token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256_md;

static void sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (!sha256_md)
		abort();
}

/* The thread's HMAC_CTX (its allocations reused), freed with the thread. */
static pthread_key_t ctx_key;
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;

static void ctx_free(void *p)
{
	HMAC_CTX_free(p);
}

static void ctx_key_make(void)
{
	if (pthread_key_create(&ctx_key, ctx_free) != 0)
		abort();
}

static HMAC_CTX *thread_ctx(void)
{
	pthread_once(&ctx_once, ctx_key_make);
	HMAC_CTX *h = pthread_getspecific(ctx_key);
	if (!h) {
		h = HMAC_CTX_new();
		if (!h || pthread_setspecific(ctx_key, h) != 0)
			abort();
	}
	return h;
}

static void hmac_hex(char out[65], const void *key, size_t key_len, const void *msg, size_t msg_len)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char mac[32];
	unsigned int n = 0;
	pthread_once(&sha256_once, sha256_fetch);
	HMAC_CTX *h = thread_ctx();
	if (HMAC_Init_ex(h, key, (int)key_len, sha256_md, NULL) != 1 || HMAC_Update(h, msg, msg_len) != 1 ||
	    HMAC_Final(h, mac, &n) != 1 || n != 32)
		abort();
	for (int k = 0; k < 32; k++) {
		out[2 * k] = hex[mac[k] >> 4];
		out[2 * k + 1] = hex[mac[k] & 15];
	}
	out[64] = 0;
	OPENSSL_cleanse(mac, sizeof(mac));
	HMAC_CTX_reset(h); /* no key-derived state stays in the thread's context */
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
