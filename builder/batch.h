/* Batch builds (udf-builder prebuild): requests gathered from files,
 * directories and JSON-lines files, split into shards for N workers, built
 * j at a time against one store.  Keys already in the store are hits. */
#ifndef UDFB_BATCH_H
#define UDFB_BATCH_H

#include <stddef.h>

#include "builder/build.h"
#include "common/err.h"

struct udfb_batch_item {
	char *name; /* "FILE" or "FILE:LINE" */
	char *json; /* the request */
	size_t len;
	char *tenant; /* from the request's "tenant", or NULL */
	/* results */
	char key[UDFB_DIGEST_LEN + 1];
	char digest[UDFB_DIGEST_LEN + 1];
	char *image;
	int cached, failed;
	double seconds;
	char *error;
};

struct udfb_batch {
	struct udfb_batch_item *items;
	size_t n;
};

/* Each input: a request file, a directory of *.request.json (sorted), or a
 * .jsonl/.ndjson file of one request a line.  Inputs over the request size
 * limit, unreadable ones and blank lines are errors naming them. */
int udfb_batch_load(struct udfb_batch *out, char *const *inputs, size_t n_inputs, struct udfb_err *err);
/* Keep every n-th item starting at index i (0 <= i < n). */
void udfb_batch_shard(struct udfb_batch *b, size_t i, size_t n);
/* Build every item, jobs at a time; done() is called (serialised) after each. */
void udfb_batch_run(struct udfb_batch *b, const struct udfb_build_opts *o, int jobs,
		    void (*done)(const struct udfb_batch_item *it, size_t finished, void *ctx), void *ctx);
/* Only the keys (no build): for --dry-run. */
int udfb_batch_keys(struct udfb_batch *b, const struct udfb_build_opts *o, struct udfb_err *err);
void udfb_batch_free(struct udfb_batch *b);

#endif
