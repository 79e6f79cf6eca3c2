/* HTTP probes of sandboxes: see probe.h. */
#include "scheduler/probe.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "fetch/fetch.h"

#define BODY_MAX (64u << 10)

static size_t on_data(char *p, size_t sz, size_t n, void *ctx)
{
	return udfb_buf_add(ctx, p, sz * n) < 0 ? 0 : sz * n;
}

int udfb_probe_get(int *status, char **body, const char *url, long timeout_ms, struct udfb_err *err)
{
	*status = 0;
	*body = NULL;
	if (udfb_fetch_global_init(err) < 0)
		return -1;
	CURL *c = curl_easy_init();
	if (!c)
		return udfb_err_set(err, UDFB_E_INTERNAL, "libcurl: no handle");
	struct udfb_buf b;
	udfb_buf_init(&b, BODY_MAX);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROXY, ""); /* loopback: never through a proxy from the environment */
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	if (curl_easy_perform(c) == CURLE_OK) {
		long code = 0;
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
		*status = (int)code;
		*body = udfb_buf_steal(&b, NULL);
		if (!*body)
			*body = strdup("");
	}
	udfb_buf_free(&b);
	curl_easy_cleanup(c);
	return 0;
}

int udfb_probe_health(const char *host, int port, long timeout_ms)
{
	char url[128];
	snprintf(url, sizeof(url), "http://%s:%d/health", host, port);
	struct udfb_err err = UDFB_ERR_INIT;
	int status = 0;
	char *body = NULL;
	udfb_probe_get(&status, &body, url, timeout_ms, &err);
	udfb_err_clear(&err);
	int ok = status == 200 && body && strcmp(body, "1") == 0;
	free(body);
	return ok;
}
