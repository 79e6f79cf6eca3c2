/* SHA-256 through OpenSSL's SHA256_* functions: see hash.h.  The EVP
 * interface would be the modern one, but its first use loads OpenSSL's
 * configuration and providers (5.3 million instructions, a tenth of a
 * whole build of a UDF, for one algorithm that never changes); the
 * SHA256_* functions are the same code (SHA-NI where the CPU has it)
 * without that.  OpenSSL 3 deprecates them but keeps them for the 3.x
 * series: if they go, EVP_MD_fetch once per process is the way back. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "common/hash.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/cleanup.h"

struct udfb_sha256 {
	SHA256_CTX ctx;
};

struct udfb_sha256 *udfb_sha256_new(void)
{
	struct udfb_sha256 *h = udfb_malloc(sizeof(*h));
	if (SHA256_Init(&h->ctx) != 1)
		abort();
	return h;
}

void udfb_sha256_update(struct udfb_sha256 *h, const void *p, size_t n)
{
	if (n && SHA256_Update(&h->ctx, p, n) != 1)
		abort();
}

void udfb_sha256_final(struct udfb_sha256 *h, char out[UDFB_DIGEST_LEN + 1])
{
	static const char hexd[] = "0123456789abcdef";
	unsigned char md[SHA256_DIGEST_LENGTH];
	if (SHA256_Final(md, &h->ctx) != 1)
		abort();
	memcpy(out, "sha256:", 7);
	for (int i = 0; i < 32; i++) {
		out[7 + 2 * i] = hexd[md[i] >> 4];
		out[8 + 2 * i] = hexd[md[i] & 15];
	}
	out[UDFB_DIGEST_LEN] = '\0';
	udfb_sha256_free(h);
}

void udfb_sha256_free(struct udfb_sha256 *h)
{
	free(h);
}

void udfb_sha256_digest(const void *p, size_t n, char out[UDFB_DIGEST_LEN + 1])
{
	struct udfb_sha256 *h = udfb_sha256_new();
	udfb_sha256_update(h, p, n);
	udfb_sha256_final(h, out);
}

int udfb_sha256_file(char out[UDFB_DIGEST_LEN + 1], long long *size, const char *path, struct udfb_err *err)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return udfb_err_sys(err, errno, "open %s", path);
	struct udfb_sha256 *h = udfb_sha256_new();
	long long total = 0;
	char buf[65536];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			udfb_sha256_free(h);
			return udfb_err_sys(err, errno, "read %s", path);
		}
		if (n == 0)
			break;
		udfb_sha256_update(h, buf, (size_t)n);
		total += n;
	}
	udfb_sha256_final(h, out);
	if (size)
		*size = total;
	return 0;
}

bool udfb_digest_valid(const char *s)
{
	if (!s || strncmp(s, "sha256:", 7) != 0 || strlen(s) != UDFB_DIGEST_LEN)
		return false;
	for (const char *p = s + 7; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

const char *udfb_digest_hex(const char *digest)
{
	return digest + 7;
}
