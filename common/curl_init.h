/* libcurl's global initialisation, once per process, whoever asks first
 * (the import fetcher, the registry client, the sandbox probes). */
#ifndef UDFB_CURL_INIT_H
#define UDFB_CURL_INIT_H

#include "common/err.h"

int udfb_curl_global_init(struct udfb_err *err);

#endif
