/* Service configuration: see config.h and docs/configuration.md. */
#include "config/config.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/version.h"

static void set_str(char **slot, const char *v)
{
	free(*slot);
	*slot = v ? strdup(v) : NULL;
}

void udfb_config_defaults(struct udfb_config *c)
{
	memset(c, 0, sizeof(*c));
	set_str(&c->listen, "127.0.0.1:50051");
	set_str(&c->admin_listen, "127.0.0.1:9090");
	set_str(&c->scheduler, "local");
	set_str(&c->endpoint_template, "http://udf-{key12}.{tenant}.svc:8815");
	set_str(&c->salt, "");
	set_str(&c->platform, UDFB_DEFAULT_PLATFORM);
	set_str(&c->log_level, "info");
	c->deadline_mode = UDFB_DEADLINE_FAIL;
	c->deadline_margin_ms = 100;
	c->call_workers = 32;
	c->build_workers = 2;
	c->cq_threads = 2;
	c->request_slots = 64;
	c->max_queued_calls = 64;
	c->max_cached_calls = 65536;
	c->max_message_bytes = 8l << 20;
	c->failure_ttl_ms = 30000;
	c->grace_ms = 10000;
	c->token_ttl_s = UDFB_TOKEN_TTL_DEFAULT_S;
	udfb_fetch_opts_defaults(&c->fetch);
	udfb_pkg_opts_defaults(&c->packages);
	c->scheduler_opts = json_object();
}

static int set_scheduler_opt(struct udfb_config *c, const char *pair, struct udfb_err *err)
{
	const char *eq = strchr(pair, '=');
	if (!eq || eq == pair)
		return udfb_err_set(err, UDFB_E_INVALID, "scheduler-opt '%s': expected KEY=VALUE", pair);
	char *key = strndup(pair, (size_t)(eq - pair));
	json_object_set_new(c->scheduler_opts, key, json_string(eq + 1));
	free(key);
	return 0;
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

static int add_base(struct udfb_config *c, const char *runtime, const char *ref, struct udfb_err *err)
{
	if (!*runtime || !*ref)
		return udfb_err_set(err, UDFB_E_INVALID,
				    "base-image: expected RUNTIME=REF, like 3.12=oci:/images:python");
	for (size_t k = 0; k < c->n_bases; k++)
		if (strcmp(c->bases[k].runtime, runtime) == 0) {
			set_str(&c->bases[k].ref, ref);
			return 0;
		}
	c->bases = realloc(c->bases, (c->n_bases + 1) * sizeof(*c->bases));
	c->bases[c->n_bases].runtime = strdup(runtime);
	c->bases[c->n_bases++].ref = strdup(ref);
	return 0;
}

static int add_base_pair(struct udfb_config *c, const char *pair, struct udfb_err *err)
{
	const char *eq = strchr(pair, '=');
	if (!eq)
		return udfb_err_set(err, UDFB_E_INVALID, "base-image '%s': expected RUNTIME=REF", pair);
	char *runtime = strndup(pair, (size_t)(eq - pair));
	int rc = add_base(c, runtime, eq + 1, err);
	free(runtime);
	return rc;
}

static void add_secret(struct udfb_config *c, const char *s)
{
	c->token_secrets = realloc(c->token_secrets, (c->n_token_secrets + 1) * sizeof(char *));
	c->token_secrets[c->n_token_secrets++] = strdup(s);
}

static int parse_int(const char *name, const char *v, long lo, long hi, long *out, struct udfb_err *err)
{
	char *end = NULL;
	long n = strtol(v, &end, 10);
	if (!*v || *end || n < lo || n > hi)
		return udfb_err_set(err, UDFB_E_INVALID, "%s: '%s' is not a whole number from %ld to %ld", name, v, lo,
				    hi);
	*out = n;
	return 0;
}

static int set_int(const char *name, const char *v, int *slot, long lo, long hi, struct udfb_err *err)
{
	long n = 0;
	if (parse_int(name, v, lo, hi, &n, err) < 0)
		return -1;
	*slot = (int)n;
	return 0;
}

static int set_mode(struct udfb_config *c, const char *v, struct udfb_err *err)
{
	if (strcmp(v, "fail") == 0)
		c->deadline_mode = UDFB_DEADLINE_FAIL;
	else if (strcmp(v, "accepted") == 0)
		c->deadline_mode = UDFB_DEADLINE_ACCEPTED;
	else
		return udfb_err_set(err, UDFB_E_INVALID, "deadline-mode: '%s' is not 'fail' or 'accepted'", v);
	return 0;
}

/* The index list comes whole from one source: the file's, replaced by
 * UDFB_INDEX_URL's, replaced by the flags'. */
enum { SRC_FILE = 1, SRC_ENV, SRC_FLAG };

static int add_index(struct udfb_config *c, int source, const char *v, struct udfb_err *err)
{
	if (c->index_source < source)
		udfb_pkg_opts_clear_index(&c->packages);
	c->index_source = source;
	return udfb_pkg_opts_set(&c->packages, "packages-index", v, err);
}

int udfb_config_set(struct udfb_config *c, const char *name, const char *v, struct udfb_err *err)
{
	if (strcmp(name, "index-url") == 0)
		return add_index(c, SRC_FLAG, v, err);
	if (strncmp(name, "packages-", 9) == 0)
		return udfb_pkg_opts_set(&c->packages, name, v, err);
	struct {
		const char *name;
		char **slot;
	} strs[] = { { "listen", &c->listen },
		     { "admin-listen", &c->admin_listen },
		     { "store", &c->store },
		     { "dest", &c->dest },
		     { "default-runtime", &c->default_runtime },
		     { "scheduler", &c->scheduler },
		     { "endpoint-template", &c->endpoint_template },
		     { "default-tenant", &c->default_tenant },
		     { "salt", &c->salt },
		     { "runtime-packages", &c->runtime_packages },
		     { "platform", &c->platform },
		     { "log-level", &c->log_level },
		     { "tls-cert", &c->tls_cert },
		     { "tls-key", &c->tls_key },
		     { "tls-client-ca", &c->tls_client_ca } };
	for (size_t k = 0; k < sizeof(strs) / sizeof(*strs); k++)
		if (strcmp(name, strs[k].name) == 0) {
			set_str(strs[k].slot, v);
			return 0;
		}
	if (strcmp(name, "base-image") == 0)
		return add_base_pair(c, v, err);
	if (strncmp(name, "imports-", 8) == 0)
		return udfb_fetch_opts_set(&c->fetch, name, v, err);
	if (strcmp(name, "scheduler-opt") == 0)
		return set_scheduler_opt(c, v, err);
	if (strcmp(name, "token-secret") == 0) {
		add_secret(c, v);
		return 0;
	}
	if (strcmp(name, "deadline-mode") == 0)
		return set_mode(c, v, err);
	if (strcmp(name, "deadline-margin-ms") == 0)
		return set_int(name, v, &c->deadline_margin_ms, 0, 60000, err);
	if (strcmp(name, "call-workers") == 0)
		return set_int(name, v, &c->call_workers, 1, 1024, err);
	if (strcmp(name, "max-queued-calls") == 0)
		return set_int(name, v, &c->max_queued_calls, 1, 1 << 20, err);
	if (strcmp(name, "max-cached-calls") == 0)
		return set_int(name, v, &c->max_cached_calls, 16, 1 << 26, err);
	if (strcmp(name, "build-workers") == 0)
		return set_int(name, v, &c->build_workers, 1, 256, err);
	if (strcmp(name, "failure-ttl-ms") == 0)
		return set_int(name, v, &c->failure_ttl_ms, 0, 86400000, err);
	if (strcmp(name, "grace-ms") == 0)
		return set_int(name, v, &c->grace_ms, 0, 600000, err);
	if (strcmp(name, "token-ttl-s") == 0)
		return set_int(name, v, &c->token_ttl_s, 60, 7 * 86400, err);
	return udfb_err_set(err, UDFB_E_INVALID, "unknown setting '%s'", name);
}

/* ---- the JSON file ---- */

static int file_env(struct udfb_config *c, json_t *env, struct udfb_err *err)
{
	const char *scope;
	json_t *vars;
	json_object_foreach(env, scope, vars) {
		if (!strchr(scope, '.') || !json_is_object(vars))
			return udfb_err_set(err, UDFB_E_INVALID,
					    "env.%s: expected \"<tenant>.<handler>\": {NAME: value}", scope);
		c->envs = realloc(c->envs, (c->n_envs + 1) * sizeof(*c->envs));
		struct udfb_udf_env *e = &c->envs[c->n_envs++];
		e->scope = strdup(scope);
		e->vars = calloc(json_object_size(vars) + 1, sizeof(*e->vars));
		e->n_vars = 0;
		const char *name;
		json_t *value;
		json_object_foreach(vars, name, value) {
			if (!udfb_env_name_valid(name))
				return udfb_err_set(
					err, UDFB_E_INVALID,
					"env.%s.%s: names match ^[A-Z_][A-Z0-9_]*$ and may not be a reserved variable",
					scope, name);
			if (!json_is_string(value))
				return udfb_err_set(err, UDFB_E_INVALID, "env.%s.%s: must be a string", scope, name);
			e->vars[e->n_vars].name = strdup(name);
			e->vars[e->n_vars++].value = strdup(json_string_value(value));
		}
	}
	return 0;
}

/* A setting from the file: the index list there is the file's own (a
 * later source replaces it whole); the rest goes as a flag would. */
static int file_set(struct udfb_config *c, const char *name, const char *v, struct udfb_err *err)
{
	if (strcmp(name, "packages-index") == 0)
		return add_index(c, SRC_FILE, v, err);
	return udfb_config_set(c, name, v, err);
}

/* "imports": {"allow": [...], "max_bytes": N, ...} and "packages":
 * {"index": URL or [URL, ...], "glibc": "2.36", "layer_budget": 16, ...}:
 * each key is the flag <section>-<key> with '_' as '-'; a list sets it
 * once per item. */
static int file_section(struct udfb_config *c, const char *section, json_t *obj, struct udfb_err *err)
{
	const char *key;
	json_t *v;
	size_t plen = strlen(section);
	json_object_foreach(obj, key, v) {
		char name[96], num[32];
		snprintf(name, sizeof(name), "%s-%s", section, key);
		for (char *p = name; *p; p++)
			if (*p == '_')
				*p = '-';
		size_t k;
		json_t *item;
		int rc = 0;
		if (json_is_array(v))
			json_array_foreach(v, k, item) {
				if (rc == 0)
					rc = json_is_string(item)
						     ? file_set(c, name, json_string_value(item), err)
						     : udfb_err_set(err, UDFB_E_INVALID, "%s.%s[%zu]: must be a string",
								    section, key, k);
			}
		else if (json_is_integer(v))
			snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v)),
				rc = file_set(c, name, num, err);
		else if (json_is_string(v))
			rc = file_set(c, name, json_string_value(v), err);
		else
			rc = udfb_err_set(err, UDFB_E_INVALID, "%s.%s: unexpected value type", section, key);
		if (rc < 0)
			return err->msg && strncmp(err->msg, section, plen) == 0
				       ? -1
				       : udfb_err_wrap(err, "%s.%s", section, key);
	}
	return 0;
}

/* {"<identity>": ["<tenant>" or "*", ...]}: checked whole, kept as JSON. */
static int file_client_tenants(struct udfb_config *c, json_t *v, struct udfb_err *err)
{
	if (!json_is_object(v))
		return udfb_err_set(err, UDFB_E_INVALID,
				    "tls_client_tenants: must be an object of identity: [tenants]");
	const char *id;
	json_t *list;
	json_object_foreach(v, id, list) {
		size_t k;
		json_t *t;
		if (!json_is_array(list))
			return udfb_err_set(err, UDFB_E_INVALID,
					    "tls_client_tenants.%.64s: must be an array of tenants", id);
		json_array_foreach(list, k, t) {
			const char *s = json_string_value(t);
			if (!s || (strcmp(s, "*") != 0 && !udfb_tenant_valid(s)))
				return udfb_err_set(err, UDFB_E_INVALID,
						    "tls_client_tenants.%.64s[%zu]: a tenant name or \"*\"", id, k);
		}
	}
	json_decref(c->tls_client_tenants);
	c->tls_client_tenants = json_incref(v);
	return 0;
}

static int file_value(struct udfb_config *c, const char *key, json_t *v, struct udfb_err *err)
{
	if (strcmp(key, "base_images") == 0 && json_is_object(v)) {
		const char *rt;
		json_t *ref;
		json_object_foreach(v, rt, ref) {
			if (!json_is_string(ref) || add_base(c, rt, json_string_value(ref), err) < 0)
				return err->msg ? -1
						: udfb_err_set(err, UDFB_E_INVALID,
							       "base_images.%s: must be an image reference", rt);
		}
		return 0;
	}
	if (strcmp(key, "env") == 0 && json_is_object(v))
		return file_env(c, v, err);
	if ((strcmp(key, "imports") == 0 || strcmp(key, "packages") == 0) && json_is_object(v))
		return file_section(c, key, v, err);
	if (strcmp(key, "scheduler_options") == 0 && json_is_object(v)) {
		const char *k;
		json_t *o;
		json_object_foreach(v, k, o) {
			if (!json_is_string(o))
				return udfb_err_set(err, UDFB_E_INVALID, "scheduler_options.%s: must be a string", k);
			json_object_set(c->scheduler_opts, k, o);
		}
		return 0;
	}
	if (strcmp(key, "tls_client_tenants") == 0)
		return file_client_tenants(c, v, err);
	if (strcmp(key, "worker_sizes") == 0 && json_is_object(v)) {
		/* Checked by the service (workers.c), which owns the defaults. */
		json_decref(c->worker_sizes);
		c->worker_sizes = json_incref(v);
		return 0;
	}
	if (strcmp(key, "token_secrets") == 0 && json_is_array(v)) {
		size_t k;
		json_t *s;
		json_array_foreach(v, k, s) {
			if (!json_is_string(s))
				return udfb_err_set(err, UDFB_E_INVALID, "token_secrets[%zu]: must be a string", k);
			add_secret(c, json_string_value(s));
		}
		return 0;
	}
	char flag[64], num[32];
	snprintf(flag, sizeof(flag), "%s", key);
	for (char *p = flag; *p; p++)
		if (*p == '_')
			*p = '-';
	if (json_is_integer(v)) {
		snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
		return udfb_config_set(c, flag, num, err);
	}
	if (json_is_string(v))
		return udfb_config_set(c, flag, json_string_value(v), err);
	return udfb_err_set(err, UDFB_E_INVALID, "%s: unexpected value type", key);
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

/* ---- environment ---- */

static int split_list(struct udfb_config *c, const char *name, const char *list, struct udfb_err *err)
{
	char *copy = strdup(list), *save = NULL;
	int rc = 0;
	for (char *item = strtok_r(copy, ",", &save); item && rc == 0; item = strtok_r(NULL, ",", &save))
		rc = udfb_config_set(c, name, item, err);
	free(copy);
	return rc;
}

int udfb_config_load_env(struct udfb_config *c, struct udfb_err *err)
{
	static const char *const names[] = { "listen",
					     "admin-listen",
					     "store",
					     "dest",
					     "default-runtime",
					     "scheduler",
					     "endpoint-template",
					     "default-tenant",
					     "deadline-mode",
					     "salt",
					     "log-level",
					     "runtime-packages",
					     NULL };
	for (int k = 0; names[k]; k++) {
		char var[64] = "UDFB_";
		size_t n = strlen(var);
		for (const char *p = names[k]; *p && n < sizeof(var) - 1; p++)
			var[n++] = *p == '-' ? '_' : (char)(*p - 'a' + 'A');
		var[n] = '\0';
		const char *v = getenv(var);
		if (v && *v && udfb_config_set(c, names[k], v, err) < 0)
			return udfb_err_wrap(err, "%s", var);
	}
	const char *v = getenv("UDFB_BASE_IMAGES");
	if (v && *v && split_list(c, "base-image", v, err) < 0)
		return udfb_err_wrap(err, "UDFB_BASE_IMAGES");
	if (udfb_fetch_opts_load_env(&c->fetch, err) < 0)
		return -1;
	v = getenv("UDFB_INDEX_URL");
	if (v && *v) {
		udfb_pkg_opts_clear_index(&c->packages);
		c->index_source = SRC_ENV;
	}
	if (udfb_pkg_opts_load_env(&c->packages, err) < 0)
		return -1;
	v = getenv("UDFB_SCHEDULER_OPTS");
	if (v && *v && split_list(c, "scheduler-opt", v, err) < 0)
		return udfb_err_wrap(err, "UDFB_SCHEDULER_OPTS");
	v = getenv("UDFB_TOKEN_SECRETS");
	if (v && *v && split_list(c, "token-secret", v, err) < 0)
		return udfb_err_wrap(err, "UDFB_TOKEN_SECRETS");
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
	char **strs[] = { &c->listen,	 &c->admin_listen,	&c->store,	    &c->dest,	 &c->default_runtime,
			  &c->scheduler, &c->endpoint_template, &c->default_tenant, &c->salt,	 &c->platform,
			  &c->log_level, &c->runtime_packages,	&c->tls_cert,	    &c->tls_key, &c->tls_client_ca };
	for (size_t k = 0; k < sizeof(strs) / sizeof(*strs); k++)
		free(*strs[k]);
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
