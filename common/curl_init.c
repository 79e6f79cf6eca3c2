/* See curl_init.h. */
#include "common/curl_init.h"

#include <curl/curl.h>
#include <pthread.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;
static CURLcode init_rc;

static void init(void)
{
	init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int udfb_curl_global_init(struct udfb_err *err)
{
	pthread_once(&once, init);
	if (init_rc != CURLE_OK)
		return udfb_err_set(err, UDFB_E_INTERNAL, "libcurl: %s", curl_easy_strerror(init_rc));
	return 0;
}
