/* Registry auth pieces: WWW-Authenticate parsing (commas inside quoted
 * scopes, several challenges, escapes, malformed input), Retry-After and
 * backoff, Basic credentials, loopback hosts. */
#include <stdlib.h>
#include <time.h>

#include "registry-client/auth.h"
#include "check.h"
#include "registry-client/http.h"
#include "registry-client/retry.h"

static void challenge(const char *value, int scheme, const char *realm, const char *service, const char *scope)
{
	struct udfb_auth_challenge c;
	struct udfb_err err = UDFB_ERR_INIT;
	int rc = udfb_auth_parse_challenge(&c, value, &err);
	CHECK(rc == 0 && (int)c.scheme == scheme, "parse [%s] (%s)", value, err.msg ? err.msg : "ok");
	if (rc == 0) {
		CHECK_STR(c.realm ? c.realm : "", realm, "  realm");
		CHECK_STR(c.service ? c.service : "", service, "  service");
		CHECK_STR(c.scope ? c.scope : "", scope, "  scope");
		udfb_auth_challenge_clear(&c);
	}
	udfb_err_clear(&err);
}

static void bad_challenge(const char *value, enum udfb_errcat cat)
{
	struct udfb_auth_challenge c;
	struct udfb_err err = UDFB_ERR_INIT;
	int rc = udfb_auth_parse_challenge(&c, value, &err);
	CHECK(rc < 0 && err.cat == cat && !strstr(err.msg, "\n"), "reject [%s] as %s (%s)", value,
	      udfb_errcat_name(cat), err.msg ? err.msg : "accepted");
	if (rc == 0)
		udfb_auth_challenge_clear(&c);
	udfb_err_clear(&err);
}

static void challenges(void)
{
	challenge("Bearer "
		  "realm=\"https://auth.example.com/token\",service=\"registry.example.com\",scope=\"repository:a/"
		  "b:pull,push\"",
		  UDFB_AUTH_BEARER, "https://auth.example.com/token", "registry.example.com",
		  "repository:a/b:pull,push");
	challenge("Bearer realm=\"https://r/t\",scope=\"repository:a:pull repository:b:pull,push\",service=\"s\"",
		  UDFB_AUTH_BEARER, "https://r/t", "s", "repository:a:pull repository:b:pull,push");
	challenge("Basic realm=\"Registry Realm\"", UDFB_AUTH_BASIC, "Registry Realm", "", "");
	challenge("Basic", UDFB_AUTH_BASIC, "", "", "");
	challenge("Basic realm=\"x\", Bearer realm=\"y\",service=\"s\"", UDFB_AUTH_BEARER, "y", "s", "");
	challenge("Bearer realm=\"y\", Basic realm=\"x\"", UDFB_AUTH_BEARER, "y", "", "");
	challenge("Negotiate abc==, Basic realm=\"b\"", UDFB_AUTH_BASIC, "b", "", "");
	challenge("bearer REALM=\"x\" , Service = \"s,t\"", UDFB_AUTH_BEARER, "x", "s,t", "");
	challenge("Bearer realm=\"a\\\"b\\\\c\",service=plain-token", UDFB_AUTH_BEARER, "a\"b\\c", "plain-token", "");
	challenge("Bearer realm=\"r\",error=\"insufficient_scope\",scope=\"repository:x:pull,push\"", UDFB_AUTH_BEARER,
		  "r", "", "repository:x:pull,push");
	challenge("Bearer realm=\"first\",realm=\"second\"", UDFB_AUTH_BEARER, "first", "", "");

	bad_challenge("Bearer realm=\"unterminated", UDFB_E_INVALID);
	bad_challenge("realm=\"no scheme\"", UDFB_E_INVALID);
	bad_challenge("Bearer realm=\"x\" \x01", UDFB_E_INVALID);
	bad_challenge("Negotiate abc==", UDFB_E_UNSUPPORTED);
	bad_challenge("Bearer service=\"no realm\"", UDFB_E_UNSUPPORTED);
	bad_challenge("", UDFB_E_UNSUPPORTED);
	bad_challenge(NULL, UDFB_E_UNSUPPORTED);
}

static void retry_after(void)
{
	/* Wed, 21 Oct 2015 07:28:00 GMT */
	time_t t0 = 1445412480;
	CHECK(udfb_retry_after_ms("5", t0) == 5000, "Retry-After: 5 -> 5 s");
	CHECK(udfb_retry_after_ms(" 7 ", t0) == 7000, "Retry-After with spaces");
	CHECK(udfb_retry_after_ms("0", t0) == 0, "Retry-After: 0");
	CHECK(udfb_retry_after_ms("3600", t0) == UDFB_RETRY_AFTER_CAP_MS, "Retry-After: an hour is capped");
	CHECK(udfb_retry_after_ms("99999999999999999999999", t0) == UDFB_RETRY_AFTER_CAP_MS,
	      "Retry-After: overflow is capped");
	CHECK(udfb_retry_after_ms("Wed, 21 Oct 2015 07:28:03 GMT", t0) == 3000, "Retry-After as an HTTP-date");
	CHECK(udfb_retry_after_ms("Wed, 21 Oct 2015 07:27:00 GMT", t0) == 0, "an HTTP-date in the past: now");
	CHECK(udfb_retry_after_ms("-1", t0) == -1, "a negative Retry-After is ignored");
	CHECK(udfb_retry_after_ms("5s", t0) == -1, "trailing junk is ignored");
	CHECK(udfb_retry_after_ms("soon", t0) == -1, "words are ignored");
	CHECK(udfb_retry_after_ms(NULL, t0) == -1, "no header");
	CHECK(udfb_retry_delay_ms(3, "2", t0) == 2000, "Retry-After wins over the backoff");
	int in_range = 1;
	for (int k = 0; k < 200; k++) {
		long d0 = udfb_retry_delay_ms(0, NULL, t0), d9 = udfb_retry_delay_ms(9, NULL, t0);
		in_range &= d0 >= UDFB_RETRY_BASE_MS / 2 && d0 <= UDFB_RETRY_BASE_MS;
		in_range &= d9 >= UDFB_RETRY_CAP_MS / 2 && d9 <= UDFB_RETRY_CAP_MS;
	}
	CHECK(in_range, "backoff: base with jitter, doubling, capped");
	CHECK(udfb_retry_status(408) && udfb_retry_status(429) && udfb_retry_status(500) && udfb_retry_status(503),
	      "408, 429 and 5xx are retried");
	CHECK(!udfb_retry_status(501) && !udfb_retry_status(404) && !udfb_retry_status(401) && !udfb_retry_status(400),
	      "501, 4xx are not");
}

static void basics(void)
{
	char *b = udfb_auth_basic("user", "pa:ss");
	CHECK_STR(b, "Basic dXNlcjpwYTpzcw==", "Basic credentials (a colon in the password)");
	free(b);
	CHECK(udfb_http_host_is_loopback("127.0.0.1:5000") && udfb_http_host_is_loopback("localhost") &&
		      udfb_http_host_is_loopback("[::1]:5000") && udfb_http_host_is_loopback("127.3.2.1"),
	      "loopback hosts");
	CHECK(!udfb_http_host_is_loopback("10.0.0.1:5000") && !udfb_http_host_is_loopback("127.example.com") &&
		      !udfb_http_host_is_loopback("registry.example.com") && !udfb_http_host_is_loopback("[::2]"),
	      "other hosts are not");
	char *h = udfb_http_url_host("http://127.0.0.1:5000/v2/x?_state=abc");
	CHECK_STR(h, "127.0.0.1:5000", "host of a URL");
	free(h);
}

int main(void)
{
	challenges();
	retry_after();
	basics();
	return check_done();
}
