/* HTTP probes of sandboxes: see probe.h. */
#include "scheduler/probe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/curlx.h"

#define BODY_MAX (64u << 10)

int udfb_probe_get(int *status, char **body, const char *url, long timeout_ms, struct udfb_err *err)
{
	*status = 0;
	*body = NULL;
	if (udfb_curl_global_init(err) < 0)
		return -1;
	/* Loopback: never through a proxy from the environment. */
	const struct udfb_curl_opts o = { .protocols = "http",
					  .proxy = UDFB_PROXY_NONE,
					  .connect_timeout_ms = timeout_ms,
					  .timeout_ms = timeout_ms };
	struct udfb_buf b;
	udfb_buf_init(&b, BODY_MAX);
	const struct udfb_curl_call call = { .url = url, .resp = &b, .what = "probe" };
	struct udfb_err e = UDFB_ERR_INIT; /* no answer is an answer here: *status stays 0 */
	long code = 0;
	if (udfb_curl_request(&call, &o, &code, &e) == 0) {
		*status = (int)code;
		*body = udfb_buf_steal(&b, NULL);
		if (!*body)
			*body = udfb_strdup("");
	}
	udfb_err_clear(&e);
	udfb_buf_free(&b);
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
