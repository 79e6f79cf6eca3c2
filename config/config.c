/* The service's settings: its tables (service, imports, packages: one row
 * per setting, config/settings.h), their setters, and the rules that span
 * settings (validate, the base for a runtime).  docs/configuration.md's
 * tables are printed from these rows. */
#include "config/config.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/version.h"
#include "fetch/netguard.h"

#define CFG(field) offsetof(struct udfb_config, field)

static void set_str(char **slot, const char *v)
{
	free(*slot);
	*slot = v ? udfb_strdup(v) : NULL;
}

void udfb_config_defaults(struct udfb_config *c)
{
	memset(c, 0, sizeof(*c));
	/* listen, admin_listen, scheduler, endpoint_template, salt, platform,
	 * log_level, deadline mode and margin, workers, TTLs: the rows below. */
	udfb_settings_defaults(&udfb_settings_service, c);
	c->cq_threads = 2;
	c->request_slots = 64;
	c->max_message_bytes = 8l << 20;
	udfb_fetch_opts_defaults(&c->fetch);
	udfb_pkg_opts_defaults(&c->packages);
	c->scheduler_opts = json_object();
}

int udfb_env_name_valid(const char *name)
{
	if (!((*name >= 'A' && *name <= 'Z') || *name == '_'))
		return 0;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_'))
			return 0;
	return strcmp(name, "UDF_SERVER_ADDR") && strcmp(name, "RESOURCE_STATUS_ADDR") &&
	       strcmp(name, "UDF_AUTH_TOKEN") && strcmp(name, "UDF_AUTH_KEYS");
}

/* ---- setters of the rows that are more than a type ---- */

static int add_base(struct udfb_config *c, const char *runtime, const char *ref, struct udfb_err *err)
{
	if (!*runtime || !*ref)
		return udfb_err_set(err, UDFB_E_INVALID, "expected RUNTIME=REF, like 3.12=oci:/images:python");
	for (size_t k = 0; k < c->n_bases; k++)
		if (strcmp(c->bases[k].runtime, runtime) == 0) {
			set_str(&c->bases[k].ref, ref);
			return 0;
		}
	c->bases = udfb_realloc(c->bases, (c->n_bases + 1) * sizeof(*c->bases));
	c->bases[c->n_bases].runtime = udfb_strdup(runtime);
	c->bases[c->n_bases++].ref = udfb_strdup(ref);
	return 0;
}

static int set_base(void *obj, const struct udfb_setting *r, enum udfb_set_source src, const char *pair,
		    struct udfb_err *err)
{
	(void)r, (void)src;
	const char *eq = strchr(pair, '=');
	if (!eq)
		return udfb_err_set(err, UDFB_E_INVALID, "'%s': expected RUNTIME=REF", pair);
	char *runtime = udfb_strndup(pair, (size_t)(eq - pair));
	int rc = add_base(obj, runtime, eq + 1, err);
	free(runtime);
	return rc;
}

static int json_bases(void *obj, json_t *v, struct udfb_err *err)
{
	const char *rt;
	json_t *ref;
	if (!json_is_object(v))
		return udfb_err_set(err, UDFB_E_INVALID, "must be an object of runtime: reference");
	json_object_foreach(v, rt, ref) {
		if (!json_is_string(ref) || add_base(obj, rt, json_string_value(ref), err) < 0)
			return err->msg ? -1 : udfb_err_set(err, UDFB_E_INVALID, "%s: must be an image reference", rt);
	}
	return 0;
}

static int set_scheduler_opt(void *obj, const struct udfb_setting *r, enum udfb_set_source src, const char *pair,
			     struct udfb_err *err)
{
	struct udfb_config *c = obj;
	(void)r, (void)src;
	const char *eq = strchr(pair, '=');
	if (!eq || eq == pair)
		return udfb_err_set(err, UDFB_E_INVALID, "'%s': expected KEY=VALUE", pair);
	char *key = udfb_strndup(pair, (size_t)(eq - pair));
	json_object_set_new(c->scheduler_opts, key, json_string(eq + 1));
	free(key);
	return 0;
}

static int json_scheduler_opts(void *obj, json_t *v, struct udfb_err *err)
{
	struct udfb_config *c = obj;
	const char *k;
	json_t *o;
	if (!json_is_object(v))
		return udfb_err_set(err, UDFB_E_INVALID, "must be an object of strings");
	json_object_foreach(v, k, o) {
		if (!json_is_string(o))
			return udfb_err_set(err, UDFB_E_INVALID, "%s: must be a string", k);
		json_object_set(c->scheduler_opts, k, o);
	}
	return 0;
}

static int add_secret(void *obj, const struct udfb_setting *r, enum udfb_set_source src, const char *s,
		      struct udfb_err *err)
{
	struct udfb_config *c = obj;
	(void)r, (void)src, (void)err;
	c->token_secrets = udfb_realloc(c->token_secrets, (c->n_token_secrets + 1) * sizeof(char *));
	c->token_secrets[c->n_token_secrets++] = udfb_strdup(s);
	return 0;
}

static int set_mode(void *obj, const struct udfb_setting *r, enum udfb_set_source src, const char *v,
		    struct udfb_err *err)
{
	struct udfb_config *c = obj;
	(void)r, (void)src;
	if (strcmp(v, "fail") == 0)
		c->deadline_mode = UDFB_DEADLINE_FAIL;
	else if (strcmp(v, "accepted") == 0)
		c->deadline_mode = UDFB_DEADLINE_ACCEPTED;
	else
		return udfb_err_set(err, UDFB_E_INVALID, "'%s' is not 'fail' or 'accepted'", v);
	return 0;
}

static int set_script_mode(void *obj, const struct udfb_setting *r, enum udfb_set_source src, const char *v,
			   struct udfb_err *err)
{
	struct udfb_config *c = obj;
	(void)r, (void)src;
	if (strcmp(v, "parse") == 0)
		c->script_mode = UDFB_SCRIPT_PARSE;
	else if (strcmp(v, "run") == 0)
		c->script_mode = UDFB_SCRIPT_RUN;
	else
		return udfb_err_set(err, UDFB_E_INVALID, "script-mode: '%s' is not 'parse' or 'run'", v);
	return 0;
}

static int json_env(void *obj, json_t *env, struct udfb_err *err)
{
	struct udfb_config *c = obj;
	const char *scope;
	json_t *vars;
	if (!json_is_object(env))
		return udfb_err_set(err, UDFB_E_INVALID, "must be an object of \"<tenant>.<handler>\": {NAME: value}");
	json_object_foreach(env, scope, vars) {
		if (!strchr(scope, '.') || !json_is_object(vars))
			return udfb_err_set(err, UDFB_E_INVALID, "%s: expected \"<tenant>.<handler>\": {NAME: value}",
					    scope);
		c->envs = udfb_realloc(c->envs, (c->n_envs + 1) * sizeof(*c->envs));
		struct udfb_udf_env *e = &c->envs[c->n_envs++];
		e->scope = udfb_strdup(scope);
		e->vars = udfb_calloc(json_object_size(vars) + 1, sizeof(*e->vars));
		e->n_vars = 0;
		const char *name;
		json_t *value;
		json_object_foreach(vars, name, value) {
			if (!udfb_env_name_valid(name))
				return udfb_err_set(
					err, UDFB_E_INVALID,
					"%s.%s: names match ^[A-Z_][A-Z0-9_]*$ and may not be a reserved variable",
					scope, name);
			if (!json_is_string(value))
				return udfb_err_set(err, UDFB_E_INVALID, "%s.%s: must be a string", scope, name);
			e->vars[e->n_vars].name = udfb_strdup(name);
			e->vars[e->n_vars++].value = udfb_strdup(json_string_value(value));
		}
	}
	return 0;
}

/* {"<identity>": ["<tenant>" or "*", ...]}: checked whole, kept as JSON. */
static int json_client_tenants(void *obj, json_t *v, struct udfb_err *err)
{
	struct udfb_config *c = obj;
	if (!json_is_object(v))
		return udfb_err_set(err, UDFB_E_INVALID, "must be an object of identity: [tenants]");
	const char *id;
	json_t *list;
	json_object_foreach(v, id, list) {
		size_t k;
		json_t *t;
		if (!json_is_array(list))
			return udfb_err_set(err, UDFB_E_INVALID, "%.64s: must be an array of tenants", id);
		json_array_foreach(list, k, t) {
			const char *s = json_string_value(t);
			if (!s || (strcmp(s, "*") != 0 && !udfb_tenant_valid(s)))
				return udfb_err_set(err, UDFB_E_INVALID, "%.64s[%zu]: a tenant name or \"*\"", id, k);
		}
	}
	json_decref(c->tls_client_tenants);
	c->tls_client_tenants = json_incref(v);
	return 0;
}

/* Checked by the service (workers.c), which owns the defaults. */
static int json_worker_sizes(void *obj, json_t *v, struct udfb_err *err)
{
	struct udfb_config *c = obj;
	if (!json_is_object(v))
		return udfb_err_set(err, UDFB_E_INVALID, "must be an object of size: {cpu_millis, memory_mb}");
	json_decref(c->worker_sizes);
	c->worker_sizes = json_incref(v);
	return 0;
}

static int set_allow(void *obj, const struct udfb_setting *r, enum udfb_set_source src, const char *v,
		     struct udfb_err *err)
{
	(void)r, (void)src;
	return udfb_netguard_allow(((struct udfb_config *)obj)->fetch.guard, v, err);
}

/* The index list comes whole from one source: the file's, replaced by
 * UDFB_INDEX_URL's, replaced by the flags'. */
static int set_index(void *obj, const struct udfb_setting *r, enum udfb_set_source src, const char *v,
		     struct udfb_err *err)
{
	struct udfb_config *c = obj;
	(void)r;
	if (c->index_source < (int)src)
		udfb_pkg_opts_clear_index(&c->packages);
	c->index_source = (int)src;
	return udfb_pkg_opts_add_index(&c->packages, v, err);
}

static int set_glibc(void *obj, const struct udfb_setting *r, enum udfb_set_source src, const char *v,
		     struct udfb_err *err)
{
	(void)r, (void)src;
	return udfb_pkg_opts_set_glibc(&((struct udfb_config *)obj)->packages, v, err);
}

static int set_python(void *obj, const struct udfb_setting *r, enum udfb_set_source src, const char *v,
		      struct udfb_err *err)
{
	(void)r, (void)src;
	return udfb_pkg_opts_set_python(&((struct udfb_config *)obj)->packages, v, err);
}

/* ---- the tables ---- */

#define STR(n, key, env, arg, field, dflt, help, doc)                                                     \
	{                                                                                                 \
		n, key, env, NULL, arg, UDFB_SET_STR, 0, 0, 0, CFG(field), NULL, NULL, dflt, help, doc, 0 \
	}
#define NUM(n, key, env, type, lo, hi, field, dflt, help, doc)                                      \
	{                                                                                           \
		n, key, env, NULL, "N", type, 0, lo, hi, CFG(field), NULL, NULL, dflt, help, doc, 0 \
	}
#define FN(n, key, env, split, arg, flags, fn, js, dflt, help, doc)                              \
	{                                                                                        \
		n, key, env, split, arg, UDFB_SET_FN, flags, 0, 0, 0, fn, js, dflt, help, doc, 0 \
	}
#define JSON(n, key, js, dflt, help, doc)                                                                       \
	{                                                                                                       \
		n, key, NULL, NULL, NULL, UDFB_SET_JSON, UDFB_SET_NOFLAG, 0, 0, 0, NULL, js, dflt, help, doc, 0 \
	}

static const struct udfb_setting service_rows[] = {
	STR("config", NULL, "UDFB_CONFIG", "FILE", config_file, NULL,
	    "JSON settings file, read before the environment and flags",
	    "the JSON settings file (duplicate keys are an error); the environment and flags override it"),
	STR("listen", "listen", "UDFB_LISTEN", "ADDR", listen, "`127.0.0.1:50051`", "gRPC address",
	    "gRPC address (plain HTTP/2, as Databend's client speaks it); port 0 picks one"),
	STR("admin-listen", "admin_listen", "UDFB_ADMIN_LISTEN", "ADDR", admin_listen, "`127.0.0.1:9090`",
	    "/healthz /readyz /metrics address, \"\" for none",
	    "`/healthz`, `/readyz`, `/metrics`; numeric IPv4 or `[IPv6]`; `\"\"` turns it off"),
	STR("store", "store", "UDFB_STORE", "DIR", store,
	    "`/var/lib/udf-builder/store` as root, else `~/.cache/udf-builder/store`", "the local store",
	    "the local store (docs/cli.md)"),
	FN("base-image", "base_images", "UDFB_BASE_IMAGES", ",", "RUNTIME=REF", UDFB_SET_REPEAT, set_base, json_bases,
	   NULL, "base image for a Python runtime (3.12=oci:DIR:TAG)",
	   "the runtime base image for a Python version; in the file `{\"3.12\": REF}`; `3.12` serves "
	   "`runtime_version` "
	   "`3.12` and `3.12.x`, the longest match wins; an unsupported version is `INVALID_ARGUMENT` listing the "
	   "supported ones"),
	STR("default-runtime", "default_runtime", "UDFB_DEFAULT_RUNTIME", "RUNTIME", default_runtime, "the first base",
	    "runtime for a spec without runtime_version", "the runtime for a spec whose `runtime_version` is empty"),
	STR("dest", "dest", "UDFB_DEST", "REF", dest, "`oci:<store>/images`", "where images are published",
	    "where images are published; each is tagged `<tenant>-<key hex>`"),
	STR("platform", "platform", NULL, "OS/ARCH", platform, "`" UDFB_DEFAULT_PLATFORM "`",
	    "the platform of base images and of the images built", NULL),
	STR("scheduler", "scheduler", "UDFB_SCHEDULER", "NAME", scheduler, "`local`",
	    "sandbox backend: local, kubernetes or template",
	    "the sandbox backend: `local` (sandboxes on this machine under an OCI runtime; settings below), "
	    "`kubernetes` "
	    "(a Deployment per sandbox on a cluster; settings below) or `template` (endpoints from a pattern, "
	    "sandboxes "
	    "run by someone else)"),
	FN("scheduler-opt", "scheduler_options", "UDFB_SCHEDULER_OPTS", ",", "KEY=VALUE", UDFB_SET_REPEAT,
	   set_scheduler_opt, json_scheduler_opts, NULL, "a setting of the scheduler backend",
	   "a setting of the chosen backend, as a string (in the file `{\"KEY\": \"VALUE\"}`); a key the backend does "
	   "not know stops the service at start"),
	STR("endpoint-template", "endpoint_template", "UDFB_ENDPOINT_TEMPLATE", "PATTERN", endpoint_template,
	    "`http://udf-{key12}.{tenant}.svc:8815`", "template scheduler's endpoint ({key}, {key12}, {tenant})",
	    "the `template` scheduler's endpoint: `{key}` (64 hex), `{key12}`, `{tenant}` (as a DNS label)"),
	STR("default-tenant", "default_tenant", "UDFB_DEFAULT_TENANT", "NAME", default_tenant, NULL,
	    "tenant of calls without x-databend-tenant",
	    "tenant of calls without `x-databend-tenant`; without it such calls are `INVALID_ARGUMENT`"),
	FN("deadline-mode", "deadline_mode", "UDFB_DEADLINE_MODE", NULL, "MODE", 0, set_mode, NULL, "`fail`",
	   "fail (DEADLINE_EXCEEDED) or accepted (answer the coming endpoint)",
	   "what a call answers when its build cannot finish before its deadline: `fail` (`DEADLINE_EXCEEDED`) or "
	   "`accepted` (the endpoint the sandbox will have)"),
	FN("script-mode", "script_mode", "UDFB_SCRIPT_MODE", NULL, "MODE", 0, set_script_mode, NULL, "`parse`",
	   "parse, or run a Databend script of an unknown shape as-is",
	   "what a Databend script of a shape the parser does not know gets: `parse` refuses it (`INVALID_ARGUMENT` "
	   "naming the first differing line), `run` runs it as-is in a local sandbox from the runtime base, egress "
	   "open only to the package index and the import hosts (docs/service.md, \"Scripts run as-is\"); a "
	   "refusal for content (a package injection, bad UTF-8, limits) stays one"),
	NUM("deadline-margin-ms", "deadline_margin_ms", NULL, UDFB_SET_INT, 0, 60000, deadline_margin_ms, "`100`",
	    "answer this long before the call's deadline", NULL),
	FN("token-secret", "token_secrets", "UDFB_TOKEN_SECRETS", ",", "SECRET", UDFB_SET_REPEAT | UDFB_SET_NOFLAG,
	   add_secret, NULL, "a random secret per process", "HMAC secret for x-authorization tokens",
	   "HMAC secrets for `x-authorization` tokens (no flag: secrets stay off command lines), each at least 16 "
	   "bytes; the first signs, all are accepted by sandboxes (docs/operations.md: rotation)"),
	STR("tls-cert", "tls_cert", NULL, "FILE", tls_cert, "none (plain HTTP/2)",
	    "serve gRPC over TLS (PEM, with --tls-key)",
	    "serve gRPC over TLS (PEM files, with `tls_key`, read again on SIGHUP; docs/operations.md, \"Authenticated "
	    "callers\")"),
	STR("tls-key", "tls_key", NULL, "FILE", tls_key, NULL, "the key of --tls-cert (PEM; read again on SIGHUP)",
	    NULL),
	STR("tls-client-ca", "tls_client_ca", NULL, "FILE", tls_client_ca, NULL,
	    "require client certificates signed by this CA (mutual TLS)", NULL),
	JSON("tls-client-tenants", "tls_client_tenants", json_client_tenants, "none (any tenant)",
	     "which tenants a client certificate may act for",
	     "`{\"<identity>\": [\"<tenant>\", \"*\"]}`: which tenants a client certificate (subject CN or a SAN) may "
	     "act "
	     "for; `PERMISSION_DENIED` otherwise; needs `tls_client_ca`"),
	NUM("token-ttl-s", "token_ttl_s", NULL, UDFB_SET_INT, 60, 7 * 86400, token_ttl_s, "`3600`",
	    "how long an x-authorization token is good for",
	    "how long an `x-authorization` token is good for, from the answer that carried it (60 s to 7 days); each "
	    "answer carries a fresh one (docs/service.md, Tokens)"),
	JSON("env", "env", json_env, NULL, "operator-bound variables of a UDF's sandbox",
	     "`{\"<tenant>.<handler>\": {\"NAME\": \"value\"}}`: operator-bound variables put into that UDF's sandbox "
	     "environment (never into the image); the scope is `<tenant>.<worker name>` for CreateWorker, "
	     "`<tenant>.<handler>` for ApplyResource and ApplyUdfResource; names match `^[A-Z_][A-Z0-9_]*$`; "
	     "`UDF_SERVER_ADDR`, `RESOURCE_STATUS_ADDR`, `UDF_AUTH_KEYS` and `UDF_AUTH_TOKEN` are refused"),
	JSON("worker-sizes", "worker_sizes", json_worker_sizes, "the built-in table", "the sizes CREATE WORKER names",
	     "`{\"small\": {\"cpu_millis\": 500, \"memory_mb\": 512}, …}`: replaces the table of worker sizes whole "
	     "(below, \"Worker sizes\")"),
	NUM("call-workers", "call_workers", NULL, UDFB_SET_INT, 1, 1024, call_workers, "`32`",
	    "threads serving calls that wait for a build", NULL),
	NUM("max-queued-calls", "max_queued_calls", NULL, UDFB_SET_INT, 1, 1 << 20, max_queued_calls, "`64`",
	    "calls of one tenant that may wait for a call worker",
	    "calls of one tenant that may wait for a call worker; one more is answered `RESOURCE_EXHAUSTED`; tenants "
	    "are served round-robin (docs/service.md, \"Call workers\")"),
	NUM("max-cached-calls", "max_cached_calls", NULL, UDFB_SET_INT, 16, 1 << 26, max_cached_calls, "`65536`",
	    "entries per in-memory table that grows with distinct calls",
	    "entries of each in-memory table that grows with distinct calls (fingerprints, flights, scripts, "
	    "validated imports), least recently used out (docs/service.md, \"Memory\")"),
	NUM("build-workers", "build_workers", NULL, UDFB_SET_INT, 1, 256, build_workers, "`2`", "builds at once", NULL),
	NUM("max-queued-builds", "max_queued_builds", NULL, UDFB_SET_INT, 1, 1 << 20, max_queued_builds, "`32`",
	    "builds of one tenant queued or running",
	    "builds of one tenant queued for a build worker or running, a cancelled call's build included; a call "
	    "that needs one more is answered `RESOURCE_EXHAUSTED` (docs/service.md, \"Quotas\")"),
	NUM("max-queued-builds-total", "max_queued_builds_total", NULL, UDFB_SET_INT, 1, 1 << 20,
	    max_queued_builds_total, "`256`", "builds of all tenants queued or running",
	    "builds of all tenants queued for a build worker or running; a call that needs one more is answered "
	    "`RESOURCE_EXHAUSTED` (docs/service.md, \"Quotas\")"),
	NUM("max-tenant-workers", "max_tenant_workers", NULL, UDFB_SET_INT, 1, 1 << 20, max_tenant_workers, "`4096`",
	    "worker records of one tenant",
	    "worker records of one tenant (CREATE WORKER, and a UDF call that names a new worker); one more is "
	    "answered `RESOURCE_EXHAUSTED`; records read back from the store or the shared registry are kept "
	    "(docs/service.md, \"Quotas\")"),
	NUM("failure-ttl-ms", "failure_ttl_ms", NULL, UDFB_SET_INT, 0, 86400000, failure_ttl_ms, "`30000`",
	    "how long a deterministic build failure is remembered",
	    "how long a deterministic build failure (bad input, unsupported) answers without a rebuild"),
	NUM("grace-ms", "grace_ms", NULL, UDFB_SET_INT, 0, 600000, grace_ms, "`10000`",
	    "shutdown grace period for calls in flight",
	    "on SIGTERM/SIGINT, how long calls in flight may finish before they are cancelled"),
	STR("salt", "salt", "UDFB_SALT", "S", salt, "`\"\"`", "cache-key salt", "cache-key salt (docs/cache-key.md)"),
	STR("runtime-packages", "runtime_packages", "UDFB_RUNTIME_PACKAGES", "REQS", runtime_packages,
	    "none (`make run`: `databend-udf`)", "requirements put into every base once, e.g. databend-udf",
	    "requirements (PEP 508, separated by spaces or commas) put into every base image once, at start: resolved "
	    "from the package indexes (`--index-url`) by the project's resolver, one layer per wheel (the `warm` "
	    "build, "
	    "docs/packages.md), published as `oci:<store>/runtimes:<tag>` and used as that runtime's base; the log "
	    "says "
	    "when it starts, how long it took, how many wheels it installed. A restart finds it in the store. When no "
	    "index answers or a package is missing, a warning says so and the base serves as it is; a malformed "
	    "requirement stops the service"),
	STR("log-level", "log_level", "UDFB_LOG_LEVEL", "LEVEL", log_level, "`info`", "debug, info, warn, error",
	    "`debug`, `info`, `warn`, `error`"),
};

#define LL(n) ((long long)(n))

static const struct udfb_setting imports_rows[] = {
	FN("imports-allow", "allow", "UDFB_IMPORTS_ALLOW", ",", "HOST_OR_CIDR", UDFB_SET_REPEAT, set_allow, NULL, NULL,
	   "let imports connect to a guarded address",
	   "let imports connect to a guarded address (loopback and private ones are refused otherwise; "
	   "docs/imports.md)"),
	NUM("imports-max-bytes", "max_bytes", "UDFB_IMPORTS_MAX_BYTES", UDFB_SET_LLONG, 1, LL(1) << 40,
	    fetch.max_import_bytes, "`268435456` (256 MiB)", "bytes per import", NULL),
	NUM("imports-max-request-bytes", "max_request_bytes", "UDFB_IMPORTS_MAX_REQUEST_BYTES", UDFB_SET_LLONG, 1,
	    LL(1) << 42, fetch.max_request_bytes, "`1073741824` (1 GiB)", "bytes of all imports of a request", NULL),
	NUM("imports-max-count", "max_count", "UDFB_IMPORTS_MAX_COUNT", UDFB_SET_INT, 0, 256, fetch.max_imports, "`64`",
	    "imports per request", NULL),
	NUM("imports-connect-timeout-ms", "connect_timeout_ms", "UDFB_IMPORTS_CONNECT_TIMEOUT_MS", UDFB_SET_LONG, 1,
	    600000, fetch.connect_timeout_ms, "`10000`", "connecting to an import's host", NULL),
	NUM("imports-low-speed-time-s", "low_speed_time_s", "UDFB_IMPORTS_LOW_SPEED_TIME_S", UDFB_SET_LONG, 1, 3600,
	    fetch.low_speed_time_s, "`30`", "a transfer below 1 KiB/s for this long is cut", NULL),
	NUM("imports-timeout-ms", "timeout_ms", "UDFB_IMPORTS_TIMEOUT_MS", UDFB_SET_LLONG, 1, 86400000,
	    fetch.timeout_ms, "`300000`", "all of a request's imports", NULL),
	NUM("imports-attempts", "attempts", "UDFB_IMPORTS_ATTEMPTS", UDFB_SET_INT, 1, 20, fetch.attempts, "`4`",
	    "attempts per import, for retryable failures", NULL),
	NUM("imports-parallel", "parallel", "UDFB_IMPORTS_PARALLEL", UDFB_SET_INT, 1, 64, fetch.parallel, "`8`",
	    "transfers at once", NULL),
	STR("imports-ca-bundle", "ca_bundle", "UDFB_IMPORTS_CA_BUNDLE", "FILE", fetch.ca_bundle, "the system's",
	    "CA certificates (PEM) for https imports", NULL),
	NUM("imports-revalidate-ms", "revalidate_ms", "UDFB_IMPORTS_REVALIDATE_MS", UDFB_SET_LLONG, 0, 86400000,
	    fetch.revalidate_ms, "`30000`", "how long a script's import, once validated, is trusted",
	    "how long an import of a Databend script (no tag), once validated, is trusted without asking its object "
	    "store again. Within it a repeated query makes no request at all (the fast path); after it the next call "
	    "sends one first-byte `GET` per import and sees a replaced object. Smaller: a replaced stage file is seen "
	    "sooner, at one request per import per window and per query; larger: fewer requests, a replacement seen "
	    "later. `0` validates on every call"),
};

static const struct udfb_setting packages_rows[] = {
	FN("index-url", "index", "UDFB_INDEX_URL", ", ", "URL_OR_DIR", UDFB_SET_REPEAT, set_index, NULL,
	   "`https://pypi.org/simple`", "a package index (PEP 691, PEP 503, or a directory of wheels)",
	   "package indexes (PEP 691 JSON, PEP 503 HTML, or a directory of wheels), merged in order; in the file a "
	   "list or one string; a later source's list replaces an earlier one's (file < environment < flags); index "
	   "hosts are opened for package downloads only (docs/packages.md)"),
	FN("packages-glibc", "glibc", "UDFB_PACKAGES_GLIBC", NULL, "2.M", 0, set_glibc, NULL, "`2.36`",
	   "the manylinux level the runtime images provide", NULL),
	FN("packages-python", "python", "UDFB_PACKAGES_PYTHON", NULL, "3.X", 0, set_python, NULL, "`3.12`",
	   "the target Python when neither the base image nor the spec says",
	   "the target Python when neither the base image's `PYTHON_VERSION` nor the spec's `runtime_version` says"),
	NUM("packages-layer-budget", "layer_budget", "UDFB_PACKAGES_LAYER_BUDGET", UDFB_SET_INT, 1, 100,
	    packages.layer_budget, "`16`", "package layers per image before the smallest share one",
	    "package layers per image; past it the smallest wheels share one layer"),
	NUM("packages-max-unpacked", "max_unpacked", "UDFB_PACKAGES_MAX_UNPACKED", UDFB_SET_LLONG, 1, LL(1) << 42,
	    packages.max_unpacked, "`2147483648` (2 GiB)", "bytes all wheels unpacked by one build may write",
	    "bytes all wheels unpacked by one build may write (docs/packages.md)"),
	NUM("packages-max-unpack-ms", "max_unpack_ms", "UDFB_PACKAGES_MAX_UNPACK_MS", UDFB_SET_LLONG, 1, 86400000,
	    packages.max_unpack_ms, "`120000`", "milliseconds all wheels of one build may take to unpack",
	    "milliseconds all wheels of one build may take to unpack; past it `INVALID_ARGUMENT` naming the wheel and "
	    "the entry (docs/packages.md)"),
};

const struct udfb_settings udfb_settings_service = UDFB_SETTINGS("service", NULL, service_rows, 0);
const struct udfb_settings udfb_settings_imports = UDFB_SETTINGS("imports", "imports", imports_rows, 0);
const struct udfb_settings udfb_settings_packages = UDFB_SETTINGS("packages", "packages", packages_rows, 0);

static const struct udfb_settings *const sections[] = { &udfb_settings_service, &udfb_settings_imports,
							&udfb_settings_packages };

/* ---- sources ---- */

int udfb_config_set(struct udfb_config *c, const char *name, const char *v, struct udfb_err *err)
{
	for (size_t k = 0; k < sizeof(sections) / sizeof(*sections); k++) {
		const struct udfb_setting *r = udfb_settings_find(sections[k], name);
		if (r)
			return udfb_setting_set(r, c, UDFB_SRC_FLAG, v, err) < 0 ? udfb_err_wrap(err, "%s", name) : 0;
	}
	return udfb_err_set(err, UDFB_E_INVALID, "unknown setting '%s'", name);
}

/* A top-level key: a section's object, a row's file key, or a flag's name
 * with '_' for '-' ("imports_allow"), as earlier versions took them. */
static int file_value(struct udfb_config *c, const char *key, json_t *v, struct udfb_err *err)
{
	for (size_t k = 1; k < sizeof(sections) / sizeof(*sections); k++)
		if (strcmp(key, sections[k]->object) == 0)
			return json_is_object(v) ? udfb_settings_load_object(sections[k], c, v, key, err)
						 : udfb_err_set(err, UDFB_E_INVALID, "%s: must be an object", key);
	const struct udfb_setting *r = udfb_settings_find_key(&udfb_settings_service, key);
	char flag[64];
	snprintf(flag, sizeof(flag), "%s", key);
	for (char *p = flag; *p; p++)
		if (*p == '_')
			*p = '-';
	for (size_t k = 0; !r && k < sizeof(sections) / sizeof(*sections); k++)
		r = udfb_settings_find(sections[k], flag);
	if (!r)
		return udfb_err_set(err, UDFB_E_INVALID, "unknown setting '%s'", flag);
	return udfb_setting_set_json(r, c, v, key, err);
}

int udfb_config_load_file(struct udfb_config *c, const char *path, struct udfb_err *err)
{
	json_error_t jerr;
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return udfb_err_set(err, UDFB_E_INVALID, "config %s: line %d: %s", path, jerr.line, jerr.text);
	int rc = json_is_object(root) ? 0 : udfb_err_set(err, UDFB_E_INVALID, "config %s: must be a JSON object", path);
	const char *key;
	json_t *v;
	json_object_foreach(root, key, v) {
		if (rc < 0 || (rc = file_value(c, key, v, err)) < 0)
			break;
	}
	json_decref(root);
	return rc < 0 ? udfb_err_wrap(err, "config %s", path) : 0;
}

int udfb_config_load_env(struct udfb_config *c, struct udfb_err *err)
{
	for (size_t k = 0; k < sizeof(sections) / sizeof(*sections); k++)
		if (udfb_settings_load_env(sections[k], c, err) < 0)
			return -1;
	return 0;
}

int udfb_tenant_valid(const char *t)
{
	size_t n = strlen(t);
	if (n == 0 || n > 128)
		return 0;
	for (const unsigned char *c = (const unsigned char *)t; *c; c++)
		if (*c <= 0x20 || *c >= 0x7f)
			return 0;
	return 1;
}

int udfb_config_validate(struct udfb_config *c, struct udfb_err *err)
{
	if (c->default_runtime && !udfb_config_base_for(c, c->default_runtime))
		return udfb_err_set(err, UDFB_E_INVALID, "default-runtime '%s': no base image for it",
				    c->default_runtime);
	if (c->default_tenant && !*c->default_tenant)
		set_str(&c->default_tenant, NULL);
	if (c->default_tenant && !udfb_tenant_valid(c->default_tenant))
		return udfb_err_set(
			err, UDFB_E_INVALID,
			"default-tenant '%.64s': must be 1 to 128 visible ASCII characters, like x-databend-tenant",
			c->default_tenant);
	for (size_t k = 0; k < c->n_token_secrets; k++)
		if (strlen(c->token_secrets[k]) < 16)
			return udfb_err_set(err, UDFB_E_INVALID, "token secret %zu: shorter than 16 bytes", k + 1);
	if (!c->tls_cert != !c->tls_key)
		return udfb_err_set(err, UDFB_E_INVALID, "tls-cert and tls-key: give both or neither");
	if (c->tls_client_ca && !c->tls_cert)
		return udfb_err_set(err, UDFB_E_INVALID,
				    "tls-client-ca: needs tls-cert and tls-key (mutual TLS is TLS first)");
	if (c->tls_client_tenants && !c->tls_client_ca)
		return udfb_err_set(
			err, UDFB_E_INVALID,
			"tls_client_tenants: needs tls-client-ca (identities come from client certificates)");
	return 0;
}

/* "3.12" matches "3.12" and "3.12.x"; the longest matching runtime wins. */
static int runtime_matches(const char *runtime, const char *version)
{
	size_t n = strlen(runtime);
	return strncmp(runtime, version, n) == 0 && (version[n] == '\0' || version[n] == '.');
}

const struct udfb_runtime_base *udfb_config_base_for(const struct udfb_config *c, const char *runtime_version)
{
	if (!*runtime_version) {
		if (c->default_runtime)
			runtime_version = c->default_runtime;
		else
			return c->n_bases ? &c->bases[0] : NULL;
	}
	const struct udfb_runtime_base *best = NULL;
	for (size_t k = 0; k < c->n_bases; k++)
		if (runtime_matches(c->bases[k].runtime, runtime_version) &&
		    (!best || strlen(c->bases[k].runtime) > strlen(best->runtime)))
			best = &c->bases[k];
	return best;
}

const struct udfb_udf_env *udfb_config_env_for(const struct udfb_config *c, const char *tenant, const char *handler)
{
	size_t tn = strlen(tenant);
	for (size_t k = 0; k < c->n_envs; k++) {
		const char *s = c->envs[k].scope;
		if (strncmp(s, tenant, tn) == 0 && s[tn] == '.' && strcmp(s + tn + 1, handler) == 0)
			return &c->envs[k];
	}
	return NULL;
}

void udfb_config_free(struct udfb_config *c)
{
	udfb_settings_free(&udfb_settings_service, c);
	udfb_settings_free(&udfb_settings_imports, c);
	for (size_t k = 0; k < c->n_bases; k++)
		free(c->bases[k].runtime), free(c->bases[k].ref);
	free(c->bases);
	for (size_t k = 0; k < c->n_token_secrets; k++)
		free(c->token_secrets[k]);
	free(c->token_secrets);
	for (size_t k = 0; k < c->n_envs; k++) {
		for (size_t j = 0; j < c->envs[k].n_vars; j++)
			free(c->envs[k].vars[j].name), free(c->envs[k].vars[j].value);
		free(c->envs[k].vars);
		free(c->envs[k].scope);
	}
	free(c->envs);
	udfb_fetch_opts_free(&c->fetch);
	udfb_pkg_opts_free(&c->packages);
	json_decref(c->scheduler_opts);
	json_decref(c->tls_client_tenants);
	json_decref(c->worker_sizes);
	memset(c, 0, sizeof(*c));
}
