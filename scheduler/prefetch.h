/* Unpacking the configured bases before the first UDF needs them.
 *
 * At start the local scheduler hands its layers directory and the
 * configured bases to one background thread, which resolves each base and
 * unpacks its layers into the layer cache (bundle.h), one at a time, with
 * progress in the log.  A UDF arriving meanwhile shares the cache: its
 * udfb_layers_ensure waits for the layer being unpacked and finds the ones
 * already done, so it waits only for what is left.  /readyz answers "not
 * ready" until every configured base is unpacked or has failed; a failure
 * is logged as an error naming the runtime, the base and the layer, and a
 * UDF on that base then gets the unpack's own error. */
#ifndef UDFB_PREFETCH_H
#define UDFB_PREFETCH_H

#include <stddef.h>

#include "config/config.h"
#include "common/err.h"

/* Starts the thread (once per process); store: where base blobs not in an
 * OCI layout may be found. */
int udfb_prefetch_start(const char *layers_dir, const struct udfb_config *cfg, struct udfb_err *err);
/* 1 when no prefetch is running (none started, or it has finished). */
int udfb_prefetch_ready(void);
/* Progress: layers unpacked (or already there), layers in all, failures. */
void udfb_prefetch_progress(size_t *done, size_t *total, size_t *failed);
/* Asks the thread to stop after the layer it is unpacking, and joins it. */
void udfb_prefetch_stop(void);

#endif
