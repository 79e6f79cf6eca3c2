/* SHA-256 (OpenSSL) and the "sha256:<hex>" digest strings of the OCI specs. */
#ifndef UDFB_HASH_H
#define UDFB_HASH_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

#define UDFB_DIGEST_LEN 71 /* "sha256:" + 64 hex */

struct udfb_sha256;

struct udfb_sha256 *udfb_sha256_new(void);
void udfb_sha256_update(struct udfb_sha256 *h, const void *p, size_t n);
/* Writes "sha256:<hex>" (UDFB_DIGEST_LEN + 1 bytes) and frees h. */
void udfb_sha256_final(struct udfb_sha256 *h, char out[UDFB_DIGEST_LEN + 1]);
void udfb_sha256_free(struct udfb_sha256 *h);

void udfb_sha256_digest(const void *p, size_t n, char out[UDFB_DIGEST_LEN + 1]);
int udfb_sha256_file(char out[UDFB_DIGEST_LEN + 1], long long *size, const char *path, struct udfb_err *err);

/* True for exactly "sha256:" followed by 64 lower-case hex digits. */
bool udfb_digest_valid(const char *s);
/* The hex part of a valid digest. */
const char *udfb_digest_hex(const char *digest);

#endif
