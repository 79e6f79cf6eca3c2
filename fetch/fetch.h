/* Fetching imports from their presigned URLs: all of a request's imports at
 * once over libcurl's multi interface, each streamed to a file while hashed,
 * within limits, with retries, behind the SSRF guard (netguard.h).  The URL
 * is a secret (its query string is a signature): it never reaches an error,
 * a log line or a metric; an import is named by its stage location.  The
 * package index (pkgindex.h) fetches its pages and files here too, naming
 * them its own way (udfb_fetch_item.what). */
#ifndef UDFB_FETCH_H
#define UDFB_FETCH_H

#include <stdatomic.h>
#include <stddef.h>

#include "common/err.h"
#include "common/hash.h"
#include "fetch/netguard.h"

struct udfb_fetch_opts {
	long long max_import_bytes; /* one import (256 MiB) */
	long long max_request_bytes; /* all imports of a request (1 GiB) */
	int max_imports; /* per request (64) */
	long connect_timeout_ms; /* 10 s */
	long low_speed_time_s; /* abort below 1 KiB/s for this long (30 s) */
	long long timeout_ms; /* all of a request's imports (300 s) */
	int attempts; /* per import, for retryable failures (4) */
	int parallel; /* transfers at once (8) */
	/* How long an import without a tag (a Databend script's), once
	 * validated, is trusted without asking its object store again (30 s). */
	long long revalidate_ms;
	char *ca_bundle; /* NULL: the system's */
	struct udfb_netguard *guard; /* owned */
	/* Set by the caller's caller once nobody waits for the result (its
	 * client cancelled): the transfers stop within 100 ms.  NULL: never. */
	const atomic_int *cancel;
};

void udfb_fetch_opts_defaults(struct udfb_fetch_opts *o);
void udfb_fetch_opts_free(struct udfb_fetch_opts *o);

struct udfb_fetched {
	char *path; /* malloc'd */
	char digest[UDFB_DIGEST_LEN + 1];
	long long size;
	int owned; /* 1: a temporary file, removed by udfb_fetched_clear */
	char content_type[128]; /* of the last response, truncated; "" when none */
	char *final_url; /* malloc'd: where redirects led, NULL without redirects (a secret, like url) */
	/* The object's validators, for an import without a tag: its ETag and
	 * Last-Modified ("" when absent) and whole length (-1 when unknown). */
	char etag[192];
	char last_modified[64];
	long long total_size;
	int whole; /* 1: the body holds the whole object (a 200, not a 206) */
};

struct udfb_fetch_item {
	const char *location, *url, *tag; /* in; tag may be NULL */
	const char *accept; /* in, optional: the request's Accept header */
	const char *what; /* in, optional: names the item in messages; NULL: "import '<location>'" */
	/* in, optional: NULL-terminated "Name: value" headers sent as they are
	 * (the presign headers Databend's downloader sends, `host` among them). */
	const char *const *headers;
	/* in: ask for the first byte only (Range: bytes=0-0), to learn the
	 * validators with one GET (a presigned URL is signed for GET, not HEAD);
	 * an object store that ignores the range answers 200 with the whole
	 * object, which is then kept (out.whole) rather than fetched twice. */
	int probe;
	struct udfb_fetched out;
	long http_status; /* out: the last response's status, also after a failure (a 404 tells "absent") */
};

/* Fetch every item into new temporary files in dir, before deadline_ms
 * (monotonic; 0: opts->timeout_ms from now). */
int udfb_fetch_all(struct udfb_fetch_item *items, size_t n, const struct udfb_fetch_opts *o, long long deadline_ms,
		   const char *dir, struct udfb_err *err);
void udfb_fetched_clear(struct udfb_fetched *f);

#endif
