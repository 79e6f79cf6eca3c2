/* Fetching an import's bytes from its presigned URL into a file, hashed as
 * it streams.  The URL is a secret (its query string is a signature): it is
 * never written to an error, a log line or a metric; the import is named by
 * its stage location instead.  (The hardened fetcher with its content cache
 * keyed by (location, tag) replaces the body of this module.) */
#ifndef UDFB_FETCH_H
#define UDFB_FETCH_H

#include "err.h"
#include "hash.h"

#define UDFB_IMPORT_MAX_BYTES (256ll << 20)

struct udfb_fetched {
	char *path; /* temporary file; malloc'd */
	char digest[UDFB_DIGEST_LEN + 1];
	long long size;
};

int udfb_fetch_global_init(struct udfb_err *err);
/* Download url into a new temporary file in dir. */
int udfb_fetch_import(struct udfb_fetched *out, const char *location, const char *url, const char *dir,
		      long long max_bytes, struct udfb_err *err);
void udfb_fetched_clear(struct udfb_fetched *f);

#endif
