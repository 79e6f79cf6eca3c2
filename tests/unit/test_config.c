/* Service settings: file, environment and flags in order; runtime
 * matching; operator environment; tokens. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "config/config.h"
#include "scheduler/scheduler.h"
#include "service/token.h"

static void test_sources(void)
{
	char path[] = "/tmp/udfb-config-XXXXXX";
	int fd = mkstemp(path);
	const char *text =
		"{\"listen\": \"0.0.0.0:1\", \"base_images\": {\"3.12\": \"oci:/a:x\", \"3\": \"oci:/b:y\"},"
		"\"deadline_mode\": \"accepted\", \"failure_ttl_ms\": 5,"
		"\"env\": {\"acme.f\": {\"UDF_ENV_TEST\": \"ok\"}}, \"token_secrets\": [\"0123456789abcdef0\"],"
		"\"runtime_packages\": \"databend-udf\"}";
	CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text), "config file written");
	close(fd);
	struct udfb_config c;
	struct udfb_err err = UDFB_ERR_INIT;
	udfb_config_defaults(&c);
	CHECK_STR(c.listen, "127.0.0.1:50051", "default listen address is loopback");
	CHECK(udfb_config_load_file(&c, path, &err) == 0, "file loads (%s)", err.msg ? err.msg : "ok");
	CHECK_STR(c.listen, "0.0.0.0:1", "the file overrides the default");
	CHECK_STR(c.runtime_packages, "databend-udf", "runtime_packages from the file");
	setenv("UDFB_RUNTIME_PACKAGES", "databend-udf pyarrow", 1);
	CHECK(udfb_config_load_env(&c, &err) == 0, "environment loads");
	CHECK_STR(c.runtime_packages, "databend-udf pyarrow", "UDFB_RUNTIME_PACKAGES overrides it");
	unsetenv("UDFB_RUNTIME_PACKAGES");
	setenv("UDFB_LISTEN", "127.0.0.2:2", 1);
	CHECK(udfb_config_load_env(&c, &err) == 0, "environment loads");
	CHECK_STR(c.listen, "127.0.0.2:2", "the environment overrides the file");
	unsetenv("UDFB_LISTEN");
	CHECK(udfb_config_set(&c, "listen", "127.0.0.3:3", &err) == 0, "a flag sets");
	CHECK_STR(c.listen, "127.0.0.3:3", "a flag overrides the environment");
	CHECK(c.deadline_mode == UDFB_DEADLINE_ACCEPTED && c.failure_ttl_ms == 5, "mode and numbers from the file");
	CHECK_STR(udfb_config_base_for(&c, "3.12.2")->ref, "oci:/a:x", "3.12.2 takes the 3.12 base");
	CHECK_STR(udfb_config_base_for(&c, "3.11")->ref, "oci:/b:y", "3.11 falls back to the 3 base");
	CHECK(udfb_config_base_for(&c, "2.7") == NULL, "2.7 has no base");
	CHECK(udfb_config_base_for(&c, "3.1") && strcmp(udfb_config_base_for(&c, "3.1")->ref, "oci:/b:y") == 0,
	      "3.1 is not taken for 3.12");
	const struct udfb_udf_env *e = udfb_config_env_for(&c, "acme", "f");
	CHECK(e && e->n_vars == 1 && strcmp(e->vars[0].value, "ok") == 0, "operator environment for acme.f");
	CHECK(udfb_config_env_for(&c, "acm", "e.f") == NULL, "scopes do not match across the dot");
	CHECK(udfb_config_validate(&c, &err) == 0, "valid (%s)", err.msg ? err.msg : "ok");
	udfb_config_free(&c);
	unlink(path);
}

/* "packages" in the file; the index list comes whole from one source. */
static void test_packages(void)
{
	char path[] = "/tmp/udfb-config-XXXXXX";
	int fd = mkstemp(path);
	const char *text =
		"{\"packages\": {\"index\": [\"https://a.example/simple\", \"/srv/wheels\"],"
		"\"glibc\": \"2.17\", \"layer_budget\": 4, \"max_unpacked\": 1048576, \"max_unpack_ms\": 5000}, "
		"\"imports\": {\"max_bytes\": 1000}, \"max_cached_calls\": 1000, \"max_queued_calls\": 8}";
	CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text), "config file written");
	close(fd);
	struct udfb_config c;
	struct udfb_err err = UDFB_ERR_INIT;
	udfb_config_defaults(&c);
	CHECK(udfb_config_load_file(&c, path, &err) == 0, "packages and imports load (%s)", err.msg ? err.msg : "ok");
	CHECK(c.packages.n_index == 2 && strcmp(c.packages.index[1], "/srv/wheels") == 0, "two indexes from the file");
	CHECK(c.packages.glibc_minor == 17 && c.packages.layer_budget == 4, "glibc and layer budget from the file");
	CHECK(c.fetch.max_import_bytes == 1000, "imports.max_bytes from the file");
	CHECK(c.packages.max_unpacked == 1048576, "packages.max_unpacked from the file");
	CHECK(c.packages.max_unpack_ms == 5000, "packages.max_unpack_ms from the file");
	CHECK(c.max_cached_calls == 1000 && c.max_queued_calls == 8,
	      "max_cached_calls and max_queued_calls from the file");
	CHECK(udfb_config_set(&c, "max-cached-calls", "3", &err) < 0 && strstr(err.msg, "max-cached-calls"),
	      "max-cached-calls below 16 is refused, named");
	udfb_err_clear(&err);
	CHECK(udfb_config_set(&c, "packages-max-unpacked", "1e9", &err) < 0 && strstr(err.msg, "packages-max-unpacked"),
	      "a bad packages-max-unpacked is refused, named");
	udfb_err_clear(&err);
	setenv("UDFB_INDEX_URL", "https://b.example/simple", 1);
	CHECK(udfb_config_load_env(&c, &err) == 0, "environment loads");
	unsetenv("UDFB_INDEX_URL");
	CHECK(c.packages.n_index == 1 && strcmp(c.packages.index[0], "https://b.example/simple") == 0,
	      "UDFB_INDEX_URL replaces the file's list");
	CHECK(udfb_config_set(&c, "index-url", "https://c.example/simple", &err) == 0 &&
		      udfb_config_set(&c, "index-url", "https://d.example/simple", &err) == 0,
	      "two --index-url flags");
	CHECK(c.packages.n_index == 2 && strcmp(c.packages.index[0], "https://c.example/simple") == 0,
	      "the flags replace the environment's list, and add to each other");
	udfb_config_free(&c);
	unlink(path);
	const char *bad = "{\"packages\": {\"glibc\": \"3.0\"}}";
	fd = mkstemp(strcpy(path, "/tmp/udfb-config-XXXXXX"));
	CHECK(write(fd, bad, strlen(bad)) == (ssize_t)strlen(bad), "config file written");
	close(fd);
	udfb_config_defaults(&c);
	CHECK(udfb_config_load_file(&c, path, &err) < 0 &&
		      strstr(err.msg, ": packages.glibc: '3.0' is not a glibc version like 2.36") &&
		      !strstr(err.msg, "packages-glibc"),
	      "a bad glibc is named once, by its file key (%s)", err.msg ? err.msg : "accepted");
	udfb_err_clear(&err);
	udfb_config_free(&c);
	unlink(path);
	udfb_config_defaults(&c);
	setenv("UDFB_PACKAGES_GLIBC", "3.0", 1);
	CHECK(udfb_config_load_env(&c, &err) < 0 &&
		      strcmp(err.msg, "UDFB_PACKAGES_GLIBC: '3.0' is not a glibc version like 2.36") == 0,
	      "a bad variable is named once, by the variable (%s)", err.msg ? err.msg : "accepted");
	unsetenv("UDFB_PACKAGES_GLIBC");
	udfb_err_clear(&err);
	udfb_config_free(&c);
	const char *bad_json = "{\"base_images\": {\"3.12\": 5}}";
	fd = mkstemp(strcpy(path, "/tmp/udfb-config-XXXXXX"));
	CHECK(write(fd, bad_json, strlen(bad_json)) == (ssize_t)strlen(bad_json), "config file written");
	close(fd);
	udfb_config_defaults(&c);
	CHECK(udfb_config_load_file(&c, path, &err) < 0 &&
		      strstr(err.msg, ": base_images: 3.12: must be an image reference"),
	      "a JSON setting names its key, then the sub-key (%s)", err.msg ? err.msg : "accepted");
	udfb_err_clear(&err);
	udfb_config_free(&c);
	unlink(path);
}

static void expect_invalid(const char *name, const char *value, const char *needle)
{
	struct udfb_config c;
	struct udfb_err err = UDFB_ERR_INIT;
	udfb_config_defaults(&c);
	int rc = udfb_config_set(&c, name, value, &err);
	CHECK(rc < 0 && err.cat == UDFB_E_INVALID && strstr(err.msg, needle), "--%s %s is refused (%s)", name, value,
	      err.msg ? err.msg : "accepted");
	udfb_err_clear(&err);
	udfb_config_free(&c);
}

static void test_invalid(void)
{
	expect_invalid("deadline-mode", "maybe", "deadline-mode");
	expect_invalid("call-workers", "0", "call-workers");
	expect_invalid("build-workers", "x", "build-workers");
	expect_invalid("base-image", "3.12", "RUNTIME=REF");
	expect_invalid("nonsense", "1", "unknown setting");
	CHECK(!udfb_env_name_valid("UDF_SERVER_ADDR") && !udfb_env_name_valid("lower") && udfb_env_name_valid("A_1"),
	      "reserved and malformed variable names are refused");
	struct udfb_config c;
	struct udfb_err err = UDFB_ERR_INIT;
	udfb_config_defaults(&c);
	udfb_config_set(&c, "token-secret", "short", &err);
	CHECK(udfb_config_validate(&c, &err) < 0 && strstr(err.msg, "shorter than 16"), "a short secret is refused");
	udfb_err_clear(&err);
	udfb_config_free(&c);
	/* TLS settings that cannot work together stop the service at start. */
	const char *bad[][2] = { { "tls-cert", "tls-key: give both" }, { "tls-client-ca", "needs tls-cert" } };
	for (size_t k = 0; k < 2; k++) {
		udfb_config_defaults(&c);
		udfb_config_set(&c, "token-secret", "0123456789abcdef0", &err);
		udfb_config_set(&c, bad[k][0], "/x.pem", &err);
		CHECK(udfb_config_validate(&c, &err) < 0 && strstr(err.msg, bad[k][1]), "%s alone is refused (%s)",
		      bad[k][0], err.msg ? err.msg : "accepted");
		udfb_err_clear(&err);
		udfb_config_free(&c);
	}
	CHECK(udfb_config_set(&c, "token-ttl-s", "59", &err) < 0, "token-ttl-s under a minute is refused");
	udfb_err_clear(&err);
}

static void test_tokens(void)
{
	const char *k = "sha256:0000000000000000000000000000000000000000000000000000000000000001";
	char ka[UDFB_SANDBOX_KEY_LEN + 1], kb[UDFB_SANDBOX_KEY_LEN + 1], kc[UDFB_SANDBOX_KEY_LEN + 1],
		kd[UDFB_SANDBOX_KEY_LEN + 1];
	udfb_token_sandbox_key(ka, "secret-one-0123456", 18, "acme", k);
	udfb_token_sandbox_key(kb, "secret-one-0123456", 18, "acme", k);
	udfb_token_sandbox_key(kc, "secret-two-0123456", 18, "acme", k);
	udfb_token_sandbox_key(kd, "secret-one-0123456", 18, "acme2", k);
	CHECK(strlen(ka) == 64 && strcmp(ka, kb) == 0, "a sandbox key is 64 hex and deterministic");
	CHECK(strcmp(ka, kc) != 0 && strcmp(ka, kd) != 0, "another secret or tenant gives another sandbox key");
	char t[UDFB_TOKEN_MAX], t2[UDFB_TOKEN_MAX];
	udfb_token_mint(t, "secret-one-0123456", 18, "acme", k, 1000);
	CHECK(strncmp(t, "v2.1000.", 8) == 0 && strlen(t) == 8 + 64, "a token carries its expiry (%s)", t);
	CHECK(udfb_token_check(t, ka, 1000, 0) && !udfb_token_check(t, ka, 1001, 0) &&
		      udfb_token_check(t, ka, 1030, 30),
	      "valid until it expires, with the given leeway");
	CHECK(!udfb_token_check(t, kc, 900, 0) && !udfb_token_check(t, kd, 900, 0),
	      "another secret's or tenant's sandbox refuses it");
	udfb_token_mint(t2, "secret-one-0123456", 18, "acme", k, 9000);
	memcpy(t2 + 3, "1000", 4); /* a later expiry cut to an earlier one, or the reverse */
	CHECK(!udfb_token_check(t2, ka, 900, 0), "the expiry cannot be changed");
	CHECK(!udfb_token_check("v2..", ka, 0, 0) && !udfb_token_check(ka, ka, 0, 0) && !udfb_token_check("", ka, 0, 0),
	      "malformed tokens are refused");
	char *l = udfb_tenant_label("Acme Corp/__Prod--"), *l2 = udfb_tenant_label("acme-corp-prod");
	CHECK(strncmp(l, "acme-corp-prod-", 15) == 0 && strlen(l) == 25, "a tenant becomes a DNS label (%s)", l);
	CHECK(strcmp(l, l2) != 0, "names that sanitise alike get different labels (%s, %s)", l, l2);
	free(l);
	free(l2);
}

int main(void)
{
	test_sources();
	test_packages();
	test_invalid();
	test_tokens();
	return check_done();
}
