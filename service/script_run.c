/* script_mode = run: a Databend script of a shape the parser does not know
 * (a newer Databend's template), run as-is in a sandbox from the runtime
 * base, as Databend's own control plane runs it (builder/run.h).
 *
 * A refusal for content stays one: the parser's content checks and every
 * `pip install` line's words (builder/script.h) come first.  The sandbox's
 * egress is exactly the package index's and the import hosts' address and
 * port, each through the guard that would apply to the service's own
 * traffic there (the index's, the imports'); a host on the service's
 * loopback is reached through pasta's mapping of that one port.  Only a
 * backend that can limit a sandbox's egress so runs scripts (the local
 * one); elsewhere the call is FAILED_PRECONDITION naming the setting.
 * See docs/service.md, "Scripts run as-is". */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/alloc.h"
#include "builder/run.h"
#include "builder/script.h"
#include "common/buf.h"
#include "common/cleanup.h"
#include "common/jsonout.h"
#include "common/log.h"
#include "service/service_internal.h"

#define MAX_EGRESS 64
/* One environment string of the sandbox: Linux takes up to 128 KiB. */
#define MAX_QUERIES_BYTES (120 << 10)

/* The configured index pip in the sandbox uses: the first, a URL. */
static int index_url(const struct udfb_service *s, const char **out, struct udfb_err *err)
{
	*out = NULL;
	if (!s->cfg.packages.n_index)
		return 0;
	const char *u = s->cfg.packages.index[0];
	if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0)
		return udfb_err_set(err, UDFB_E_PRECONDITION,
				    "script_mode = run: the first package index (%.200s) is a directory; pip in the "
				    "sandbox needs an http(s) index",
				    u);
	const char *auth = strstr(u, "://") + 3, *slash = strchr(auth, '/'), *at = strchr(auth, '@');
	if (at && (!slash || at < slash)) /* the start script is in the image: no password there */
		return udfb_err_set(err, UDFB_E_PRECONDITION,
				    "script_mode = run: the first package index carries credentials; they are not "
				    "given to a script run as-is (use an index without them)");
	*out = u;
	return 0;
}

int svc_run_prepare(struct udfb_service *s, struct udfb_prepared **out, const char *tenant, const char *worker,
		    const char *query_id, const char *script, size_t len, struct udfb_err *err)
{
	*out = NULL;
	if (udfb_script_check_run(script, len, err) < 0)
		return -1;
	if (!s->sched.ops->run_scripts)
		return udfb_err_set(err, UDFB_E_PRECONDITION,
				    "script_mode = run: the %s scheduler cannot run a script as-is (no sandbox whose "
				    "egress is limited to the package index and the import hosts); use the local "
				    "scheduler, or script_mode = parse",
				    s->sched.ops->name);
	const struct svc_base *base = svc_base_for(s, ""); /* the default runtime: a script names none */
	if (!base)
		return udfb_err_set(err, UDFB_E_PRECONDITION, "script_mode = run: no runtime base is configured");
	const char *index = NULL;
	if (index_url(s, &index, err) < 0)
		return -1;
	struct udfb_prepared *p = udfb_calloc(1, sizeof(*p));
	p->tenant = udfb_strdup(tenant);
	p->query_id = query_id ? udfb_strndup(query_id, 128) : NULL;
	p->worker = worker ? udfb_strdup(worker) : NULL;
	p->env_name = p->worker; /* ApplyResource: no name, no operator variables */
	p->base = base;
	p->req.spec.handler = udfb_strdup("(script run as-is)");
	p->run_script = udfb_malloc(len + 1);
	memcpy(p->run_script, script, len);
	p->run_script[len] = '\0';
	p->run_len = len;
	cleanup_free char *pip = udfb_run_host_pip();
	struct udfb_run_in in = { script, len, index, pip };
	struct udfb_build_opts o = { .salt = s->cfg.salt, .platform = s->cfg.platform, .tenant = tenant };
	udfb_run_key(p->key, &in, tenant, worker, base->base.image.manifest_digest, &o);
	memcpy(p->fingerprint, p->key, sizeof(p->fingerprint));
	p->fields = (struct udfb_log_fields){ p->tenant, p->query_id, p->key };
	udfb_logf(UDFB_LOG_INFO, &p->fields, "script of an unknown shape: run as-is (script_mode = run)");
	*out = p;
	return 0;
}

/* ---- egress ---- */

static void add_dest(char ***v, size_t *n, const char *text)
{
	for (size_t k = 0; k < *n; k++)
		if (strcmp((*v)[k], text) == 0)
			return;
	*v = udfb_realloc(*v, (*n + 2) * sizeof(char *));
	(*v)[(*n)++] = udfb_strdup(text);
	(*v)[*n] = NULL;
}

/* Every IPv4 address of url's host that guard lets through, as ADDR:PORT.
 * what names it in messages (never the URL: a presigned one is a secret). */
static int open_url(char ***v, size_t *n, struct udfb_buf *hosts, const char *url, const struct udfb_netguard *guard,
		    const char *what, struct udfb_err *err)
{
	cleanup_free char *host = NULL;
	int port;
	if (udfb_run_host_port(url, &host, &port, err) < 0)
		return udfb_err_wrap(err, "script_mode = run: %s", what);
	char bare[256];
	snprintf(bare, sizeof(bare), "%s", host[0] == '[' ? host + 1 : host);
	bare[strcspn(bare, "]")] = '\0';
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *res = NULL;
	int gai = getaddrinfo(bare, NULL, &hints, &res);
	if (gai != 0)
		return udfb_err_set(err, UDFB_E_UNAVAILABLE, "script_mode = run: %s host '%.200s': %s (IPv4 only)",
				    what, bare, gai_strerror(gai));
	int opened = 0;
	const char *why = NULL;
	for (struct addrinfo *a = res; a && *n < MAX_EGRESS; a = a->ai_next) {
		const char *refused = udfb_netguard_check(guard, bare, a->ai_addr);
		char addr[INET_ADDRSTRLEN], text[INET_ADDRSTRLEN + 8];
		inet_ntop(AF_INET, &((struct sockaddr_in *)a->ai_addr)->sin_addr, addr, sizeof(addr));
		if (refused) {
			why = refused;
			continue;
		}
		snprintf(text, sizeof(text), "%s:%d", addr, port);
		add_dest(v, n, text);
		struct in_addr literal;
		if (!opened && inet_pton(AF_INET, bare, &literal) != 1) /* a name: the sandbox has no DNS */
			udfb_buf_printf(hosts, "%s %s\n", addr, bare);
		opened = 1;
	}
	freeaddrinfo(res);
	if (!opened)
		return udfb_err_set(err, UDFB_E_INVALID, "script_mode = run: %s host '%.200s': refused (%s)", what,
				    bare, why ? why : "no address");
	return 0;
}

/* The index's and the imports' destinations. */
static int egress_of(struct udfb_service *s, const struct udfb_prepared *p, char ***v, size_t *n,
		     struct udfb_buf *hosts, struct udfb_err *err)
{
	const char *index = NULL;
	if (index_url(s, &index, err) < 0 ||
	    (index && open_url(v, n, hosts, index, s->cfg.packages.guard, "the package index", err) < 0))
		return -1;
	size_t nu;
	char **urls = udfb_run_import_urls(p->run_script, p->run_len, &nu);
	int rc = 0;
	for (size_t k = 0; rc == 0 && k < nu; k++) {
		char what[64];
		snprintf(what, sizeof(what), "imports[%zu]", k);
		rc = open_url(v, n, hosts, urls[k], s->cfg.fetch.guard, what, err);
	}
	udfb_run_urls_free(urls);
	return rc;
}

/* ---- the build job ---- */

static int base_has_pip(struct udfb_service *s, const struct svc_base *b)
{
	pthread_mutex_lock(&s->mu);
	int checked = b->pip_checked, has = b->has_pip;
	pthread_mutex_unlock(&s->mu);
	if (checked)
		return has;
	static const char *const names[] = { "/pip/__init__.py", NULL };
	struct udfb_err err = UDFB_ERR_INIT;
	if (udfb_base_has_file(&b->base, names, &has, &err) < 0) {
		udfb_debug("runtime %s: not checked for pip: %s", b->runtime, err.msg);
		udfb_err_clear(&err);
		has = 0;
	}
	pthread_mutex_lock(&s->mu);
	struct svc_base *w = (struct svc_base *)b; /* one of s->bases */
	w->pip_checked = 1;
	w->has_pip = has;
	pthread_mutex_unlock(&s->mu);
	return has;
}

int svc_run_build_and_start(struct udfb_service *s, const struct udfb_prepared *p, struct udfb_sandbox *sb,
			    char **image, struct udfb_err *err)
{
	cleanup_free char *dest = NULL, *pip = NULL;
	const char *index = NULL;
	if (svc_dest_for(&dest, s, p, err) < 0 || index_url(s, &index, err) < 0)
		return -1;
	if (!base_has_pip(s, p->base) && !(pip = udfb_run_host_pip()))
		udfb_logf(UDFB_LOG_WARN, &p->fields,
			  "runtime %s: the base has no pip and this host no pip wheel (python3-pip-whl): the "
			  "script's pip line will fail",
			  p->base->runtime);
	char **to = udfb_calloc(1, sizeof(char *));
	size_t n_to = 0;
	struct udfb_buf hosts;
	udfb_buf_init(&hosts, 1 << 16);
	udfb_buf_addstr(&hosts, "127.0.0.1 localhost\n");
	if (egress_of(s, p, &to, &n_to, &hosts, err) < 0) {
		for (size_t k = 0; k < n_to; k++)
			free(to[k]);
		free(to);
		udfb_buf_free(&hosts);
		return -1;
	}
	struct udfb_run_in in = { p->run_script, p->run_len, index, pip, hosts.data };
	struct udfb_build_opts o = svc_build_opts(s, p, dest);
	/* The URLs' query strings reach the sandbox through its environment
	 * (its bundle, on this machine), never through the image. */
	size_t ulen;
	json_t *queries = NULL;
	free(udfb_run_split(p->run_script, p->run_len, &ulen, &queries));
	char *qtext = udfb_json_dumps_must(queries, JSON_COMPACT);
	json_decref(queries);
	struct udfb_env_var qvar = { "UDFB_RUN_QUERIES", qtext };
	struct udfb_build_result r;
	int rc = strlen(qtext) > MAX_QUERIES_BYTES
			 ? udfb_err_set(err, UDFB_E_EXHAUSTED,
					"script_mode = run: the script's URLs' query strings exceed %d bytes",
					MAX_QUERIES_BYTES)
			 : udfb_build_run(&r, p->key, &in, &o, err);
	if (rc == 0) {
		udfb_logf(UDFB_LOG_INFO, &p->fields, "image %s (script run as-is; egress to %zu destinations)", r.image,
			  n_to);
		struct svc_sandbox_what w = { p->tenant,
					      p->key,
					      r.image,
					      p->req.spec.handler,
					      p->env_name,
					      p->worker,
					      (const char *const *)to,
					      n_to,
					      &qvar,
					      1 };
		rc = svc_sandbox_start(s, &w, sb, err);
		*image = udfb_strdup(r.image);
		udfb_build_result_free(&r);
	}
	for (size_t k = 0; k < n_to; k++)
		free(to[k]);
	free(to);
	udfb_buf_free(&hosts);
	free(qtext);
	return rc;
}
