/* The identity of imports that carry no tag (Databend's scripts): one GET
 * of the first byte per import (Range: bytes=0-0; a presigned URL is signed
 * for GET, so S3 refuses HEAD) gives the object's ETag (or Last-Modified)
 * and length, its validator; the import cache keyed by (tenant, location,
 * validator) then names the content, and only what it lacks is downloaded.
 * An object store that ignores the range answers with the whole object,
 * which is kept, not fetched twice.  Each import ends up with the sha256 of
 * its content: the tag that enters the cache key (never the URL). */
#ifndef UDFB_SCRIPT_IMPORTS_H
#define UDFB_SCRIPT_IMPORTS_H

#include "common/err.h"
#include "fetch/fetch.h"
#include "common/hash.h"

struct udfb_store;

struct udfb_import_ident {
	const char *location, *url; /* in; url is a secret */
	const char *const *headers; /* in: the presign headers, "name: value" */
	char validator[280]; /* out: "etag:<E>;len:<n>", "lm:<date>;len:<n>" or "" */
	char digest[UDFB_DIGEST_LEN + 1]; /* out: sha256 of the content */
	long long size; /* out */
};

struct udfb_import_ident_stats {
	long long requests; /* HTTP requests made (probes and downloads) */
	long long fetched_bytes; /* bytes downloaded */
};

/* Probe every import at once, then download the ones the cache lacks. */
int udfb_imports_identify(struct udfb_import_ident *ims, size_t n, struct udfb_store *st, const char *tenant,
			  const struct udfb_fetch_opts *fo, long long deadline_ms,
			  struct udfb_import_ident_stats *stats, struct udfb_err *err);

#endif
