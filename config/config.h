/* The service's settings: embedded defaults, then a JSON file (--config or
 * UDFB_CONFIG, parsed by jansson), then UDFB_* environment variables, then
 * flags; a later source wins.  docs/configuration.md lists every setting. */
#ifndef UDFB_CONFIG_H
#define UDFB_CONFIG_H

#include <jansson.h>
#include <stddef.h>

#include "common/err.h"
#include "config/settings.h"
#include "fetch/fetch.h"
#include "pkgindex/pkgopts.h"

struct udfb_env_var {
	char *name;
	char *value;
};

/* Operator-bound variables for one "<tenant>.<handler>" scope. */
struct udfb_udf_env {
	char *scope;
	struct udfb_env_var *vars;
	size_t n_vars;
};

struct udfb_runtime_base {
	char *runtime; /* "3.12": matches runtime_version 3.12 and 3.12.x */
	char *ref;
};

/* An hour: every call gets a fresh token (Databend asks at each query), so
 * only a query running longer than this needs more. */
#define UDFB_TOKEN_TTL_DEFAULT_S 3600

enum udfb_deadline_mode { UDFB_DEADLINE_FAIL, UDFB_DEADLINE_ACCEPTED };
/* A Databend script of a shape the parser does not know: refused (parse),
 * or run as-is in a sandbox with egress to the index and import hosts (run). */
enum udfb_script_mode { UDFB_SCRIPT_PARSE, UDFB_SCRIPT_RUN };

struct udfb_config {
	char *config_file; /* --config, UDFB_CONFIG: read before the rest */
	char *listen;
	char *admin_listen; /* "" turns the admin port off */
	char *store;
	char *dest; /* NULL: an OCI layout "images" inside the store */
	struct udfb_runtime_base *bases;
	size_t n_bases;
	char *default_runtime; /* for an empty runtime_version; NULL: the first base */
	char *scheduler; /* "template" */
	char *endpoint_template;
	char *default_tenant; /* NULL: a call without x-databend-tenant is refused */
	enum udfb_deadline_mode deadline_mode;
	int deadline_margin_ms;
	enum udfb_script_mode script_mode;
	char **token_secrets; /* first signs; all are accepted by sandboxes */
	size_t n_token_secrets;
	int token_ttl_s; /* how long a token handed out is good for (60 s to 7 days) */
	struct udfb_udf_env *envs;
	size_t n_envs;
	int call_workers, build_workers, cq_threads, request_slots;
	int max_queued_calls; /* per tenant, calls waiting for a call worker */
	int max_cached_calls; /* entries per in-memory table that grows with distinct calls */
	int max_queued_builds; /* per tenant, builds queued or running */
	int max_queued_builds_total; /* all tenants, builds queued or running */
	int max_tenant_workers; /* per tenant, worker records (CREATE WORKER, UDF calls) */
	long max_message_bytes;
	int failure_ttl_ms;
	int grace_ms;
	char *salt;
	char *runtime_packages; /* requirements composed into every base once (NULL: none) */
	char *platform;
	char *log_level;
	struct udfb_fetch_opts fetch; /* "imports": limits and the SSRF allow-list */
	struct udfb_pkg_opts packages; /* "packages": indexes and target settings */
	int index_source; /* which source set packages.index: a later one replaces it */
	/* Backend settings, read by the backend itself: "scheduler_options" in
	 * the file, --scheduler-opt KEY=VALUE (repeatable), UDFB_SCHEDULER_OPTS
	 * (KEY=VALUE,KEY=VALUE).  Values are strings. */
	json_t *scheduler_opts;
	/* TLS on the gRPC port (docs/security.md, "Authenticated callers"):
	 * the server's certificate chain and key (PEM files, read again on
	 * SIGHUP); the CA that signs callers' certificates (mutual TLS); and
	 * "tls_client_tenants": {"<certificate identity>": ["<tenant>", "*"]},
	 * which tenants each caller may act for (NULL: any). */
	char *tls_cert, *tls_key, *tls_client_ca;
	json_t *tls_client_tenants;
	/* "worker_sizes": {"small": {"cpu_millis": 500, "memory_mb": 512}, ...}
	 * replacing the built-in table (workers.c); NULL: the built-in one. */
	json_t *worker_sizes;
};

/* The tables of config.c: the service's own settings, "imports" and
 * "packages" (rows write into struct udfb_config). */
extern const struct udfb_settings udfb_settings_service, udfb_settings_imports, udfb_settings_packages;

void udfb_config_defaults(struct udfb_config *c);
int udfb_config_load_file(struct udfb_config *c, const char *path, struct udfb_err *err);
int udfb_config_load_env(struct udfb_config *c, struct udfb_err *err);
/* One setting by its flag name ("listen", "base-image", ...), as a flag. */
int udfb_config_set(struct udfb_config *c, const char *name, const char *value, struct udfb_err *err);
int udfb_config_validate(struct udfb_config *c, struct udfb_err *err);
void udfb_config_free(struct udfb_config *c);

/* The base reference for a spec's runtime_version: the most specific match. */
const struct udfb_runtime_base *udfb_config_base_for(const struct udfb_config *c, const char *runtime_version);
/* The operator's variables for (tenant, handler), or NULL. */
const struct udfb_udf_env *udfb_config_env_for(const struct udfb_config *c, const char *tenant, const char *handler);
int udfb_env_name_valid(const char *name);
/* A tenant name as metadata carries it: 1 to 128 visible ASCII characters. */
int udfb_tenant_valid(const char *tenant);

#endif
