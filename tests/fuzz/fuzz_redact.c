/* Fuzz target: URL redaction (common/curlx.h), which rewrites libcurl's
 * failure text (it may quote what a peer sent: a redirect's Location) and
 * URLs bound for logs.  The input is one line of text.  What must hold:
 * the rewritten text fits its buffer, redacting twice changes nothing, and
 * a redacted URL keeps no credentials, no fragment and no query but the
 * "?REDACTED" marker. */
#include <curl/curl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/curlx.h"

static void check_url(const char *in)
{
	char *out = udfb_url_redact(in);
	const char *sep = strstr(in, "://");
	if (sep) {
		const char *rest = out + (sep - in) + 3;
		const char *q = strchr(rest, '?');
		size_t host = strcspn(rest, "/?#");
		if (memchr(rest, '@', host) || strchr(rest, '#') || (q && strcmp(q, "?REDACTED") != 0))
			abort();
	} else if (strcmp(out, in) != 0) {
		abort();
	}
	free(out);
}

static void check_text(const char *in)
{
	char text[CURL_ERROR_SIZE], again[CURL_ERROR_SIZE];
	snprintf(text, sizeof(text), "%s", in);
	udfb_url_redact_text(text, sizeof(text));
	if (strlen(text) >= sizeof(text))
		abort();
	memcpy(again, text, sizeof(text));
	udfb_url_redact_text(again, sizeof(again));
	if (strcmp(again, text) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4096)
		return 0;
	char *s = malloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';
	check_url(s);
	check_text(s);
	free(s);
	return 0;
}
