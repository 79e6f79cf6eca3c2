/* Fuzz target: what a registry (or whatever answers on its address) sends
 * the auth code.  The first byte picks the parser: 0 a WWW-Authenticate
 * value, 1 a Retry-After value, 2 a docker config.json for host "h". */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "registry-client/auth.h"
#include "registry-client/dockercfg.h"
#include "registry-client/retry.h"

static void challenge(const char *s)
{
	struct udfb_auth_challenge c;
	struct udfb_err err = UDFB_ERR_INIT;
	if (udfb_auth_parse_challenge(&c, s, &err) == 0) {
		/* What the token flow relies on: Bearer always has a realm. */
		if (c.scheme == UDFB_AUTH_BEARER && (!c.realm || !c.realm[0]))
			abort();
		if (c.scheme == UDFB_AUTH_NONE)
			abort();
		udfb_auth_challenge_clear(&c);
	} else if (!err.msg || strchr(err.msg, '\n')) {
		abort();
	}
	udfb_err_clear(&err);
}

static void retry_after(const char *s)
{
	long ms = udfb_retry_after_ms(s, (time_t)1445412480);
	if (ms < -1 || ms > UDFB_RETRY_AFTER_CAP_MS)
		abort();
}

static void dockercfg(const char *s, size_t n)
{
	struct udfb_dockercfg_entry e;
	struct udfb_err err = UDFB_ERR_INIT;
	if (udfb_dockercfg_parse(&e, s, n, "h", "fuzz.json", &err) == 0)
		udfb_dockercfg_entry_clear(&e);
	udfb_err_clear(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	char *s = malloc(size);
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	switch (data[0] % 3) {
	case 0: challenge(s); break;
	case 1: retry_after(s); break;
	default: dockercfg(s, size - 1); break;
	}
	free(s);
	return 0;
}
