/* The `kubernetes` scheduler's API client on libcurl: credentials (the
 * in-cluster service account, a kubeconfig in YAML or JSON, or api_server/token_file),
 * one request at a time, Status messages turned into one-line errors.  The
 * bearer token is never logged nor put in an error. */
#include <curl/curl.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/curlx.h"
#include "common/fsutil.h"
#include "common/jsonout.h"
#include "scheduler/k8s.h"
#include "scheduler/yaml_json.h"

#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

static char *read_small(const char *path, struct udfb_err *err)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		udfb_err_sys(err, errno, "kubernetes: open '%s'", path);
		return NULL;
	}
	char *s = udfb_calloc(1, 1 << 16);
	size_t n = fread(s, 1, (1 << 16) - 1, f);
	fclose(f);
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
		s[--n] = 0;
	return s;
}

/* A kubeconfig "*-data" field (base64) written to a private file. */
static char *data_file(struct k8s_api *a, const char *b64, const char *name, struct udfb_err *err)
{
	if (!a->tmpdir) {
		char tmpl[] = "/tmp/udfb-k8s-XXXXXX";
		if (!mkdtemp(tmpl)) {
			udfb_err_sys(err, errno, "kubernetes: mkdtemp");
			return NULL;
		}
		a->tmpdir = udfb_strdup(tmpl);
	}
	size_t len = strlen(b64);
	unsigned char *raw = udfb_malloc(len + 4);
	int n = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)len);
	if (n < 0) {
		free(raw);
		udfb_err_set(err, UDFB_E_INVALID, "kubernetes: kubeconfig %s: bad base64", name);
		return NULL;
	}
	while (len > 0 && b64[len - 1] == '=' && n > 0)
		len--, n--; /* EVP_DecodeBlock counts padding as zero bytes */
	char *path = udfb_asprintf("%s/%s", a->tmpdir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(raw, 1, (size_t)n, f) != (size_t)n) {
		if (f)
			fclose(f);
		free(raw);
		udfb_err_sys(err, errno, "kubernetes: write '%s'", path);
		free(path);
		return NULL;
	}
	fclose(f);
	free(raw);
	return path;
}

static json_t *named(json_t *arr, const char *name, const char *field)
{
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v)
		if (json_is_string(json_object_get(v, "name")) &&
		    strcmp(json_string_value(json_object_get(v, "name")), name) == 0)
			return json_object_get(v, field);
	return NULL;
}

#define KUBECONFIG_MAX (4 << 20)

/* The current context of a kubeconfig: YAML as kubectl writes it, or JSON
 * (kubectl config view --raw -o json), read with libyaml. */
static int load_kubeconfig(struct k8s_api *a, const char *path, struct udfb_err *err)
{
	char *text = NULL, *what = NULL;
	size_t len = 0;
	if (udfb_read_file(&text, &len, path, KUBECONFIG_MAX, err) < 0)
		return udfb_err_wrap(err, "kubernetes: kubeconfig");
	what = udfb_asprintf("kubernetes: kubeconfig '%s'", path);
	json_t *kc = NULL;
	int parsed = udfb_yaml_to_json(text, len, what, &kc, err);
	free(text);
	free(what);
	if (parsed < 0)
		return -1;
	int rc = -1;
	const char *cur = json_string_value(json_object_get(kc, "current-context"));
	json_t *ctx = cur ? named(json_object_get(kc, "contexts"), cur, "context") : NULL;
	const char *cl = json_string_value(json_object_get(ctx, "cluster"));
	const char *us = json_string_value(json_object_get(ctx, "user"));
	json_t *cluster = cl ? named(json_object_get(kc, "clusters"), cl, "cluster") : NULL;
	json_t *user = us ? named(json_object_get(kc, "users"), us, "user") : json_object_get(kc, "__none__");
	if (!cluster || !json_is_string(json_object_get(cluster, "server"))) {
		udfb_err_set(err, UDFB_E_INVALID,
			     "kubernetes: kubeconfig '%s': no cluster server for the current context", path);
		goto out;
	}
	if (!a->server)
		a->server = udfb_strdup(json_string_value(json_object_get(cluster, "server")));
	const char *s;
	if (!a->ca_file && (s = json_string_value(json_object_get(cluster, "certificate-authority"))))
		a->ca_file = udfb_strdup(s);
	if (!a->ca_file && (s = json_string_value(json_object_get(cluster, "certificate-authority-data"))) &&
	    !(a->ca_file = data_file(a, s, "ca.crt", err)))
		goto out;
	if (!a->token && (s = json_string_value(json_object_get(user, "token"))))
		a->token = udfb_strdup(s);
	if (!a->token && (s = json_string_value(json_object_get(user, "tokenFile"))) &&
	    !(a->token = read_small(s, err)))
		goto out;
	if ((s = json_string_value(json_object_get(user, "client-certificate"))))
		a->cert_file = udfb_strdup(s);
	if (!a->cert_file && (s = json_string_value(json_object_get(user, "client-certificate-data"))) &&
	    !(a->cert_file = data_file(a, s, "client.crt", err)))
		goto out;
	if ((s = json_string_value(json_object_get(user, "client-key"))))
		a->key_file = udfb_strdup(s);
	if (!a->key_file && (s = json_string_value(json_object_get(user, "client-key-data"))) &&
	    !(a->key_file = data_file(a, s, "client.key", err)))
		goto out;
	rc = 0;
out:
	json_decref(kc);
	return rc;
}

int k8s_api_init(struct k8s_api *a, const struct k8s_opts *o, struct udfb_err *err)
{
	memset(a, 0, sizeof(*a));
	a->timeout_ms = o->request_timeout_ms;
	if (o->api_server && *o->api_server)
		a->server = udfb_strdup(o->api_server);
	if (o->ca_file && *o->ca_file)
		a->ca_file = udfb_strdup(o->ca_file);
	if (o->token_file && *o->token_file && !(a->token = read_small(o->token_file, err)))
		return -1;
	if (o->kubeconfig && *o->kubeconfig)
		return load_kubeconfig(a, o->kubeconfig, err);
	if (!a->server) {
		const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
		if (!host || !*host)
			return udfb_err_set(err, UDFB_E_INVALID,
					    "kubernetes: not in a cluster (no KUBERNETES_SERVICE_HOST): set api_server "
					    "or kubeconfig");
		a->server = udfb_asprintf(strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host,
					  port && *port ? port : "443");
		if (!a->ca_file)
			a->ca_file = udfb_strdup(SA_DIR "/ca.crt");
		if (!a->token && !(a->token = read_small(SA_DIR "/token", err)))
			return -1;
	}
	size_t n = strlen(a->server);
	while (n > 0 && a->server[n - 1] == '/')
		a->server[--n] = 0;
	return 0;
}

void k8s_api_free(struct k8s_api *a)
{
	if (a->tmpdir) {
		const char *names[] = { "ca.crt", "client.crt", "client.key" };
		for (size_t i = 0; i < 3; i++) {
			char *p = udfb_asprintf("%s/%s", a->tmpdir, names[i]);
			unlink(p);
			free(p);
		}
		rmdir(a->tmpdir);
	}
	if (a->token)
		memset(a->token, 0, strlen(a->token));
	free(a->server);
	free(a->token);
	free(a->ca_file);
	free(a->cert_file);
	free(a->key_file);
	free(a->tmpdir);
	memset(a, 0, sizeof(*a));
}

/* A Status object's message as one line, and the category of its code
 * (udfb_http_status_cat: a caller expecting "gone already" tests NOTFOUND). */
static int status_error(long code, json_t *j, const char *what, const char *ns, const char *name, struct udfb_err *err)
{
	const char *msg = json_string_value(json_object_get(j, "message"));
	char one[512];
	snprintf(one, sizeof(one), "%s", msg ? msg : "(no Status message)");
	for (char *p = one; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	enum udfb_errcat cat = udfb_http_status_cat(code);
	if (cat == UDFB_E_OK || cat == UDFB_E_EXHAUSTED) /* a 1xx/3xx, or 413: the request we composed */
		cat = UDFB_E_INVALID;
	else if (code == 409) /* AlreadyExists, or Conflict: a stale resourceVersion */
		cat = UDFB_E_EXISTS;
	return udfb_err_set(err, cat, "kubernetes: %s %s%s%s: HTTP %ld: %s", what, ns ? ns : "", ns ? "/" : "", name,
			    code, one);
}

int k8s_api_call(struct k8s_api *a, const char *method, const char *path, json_t *body, json_t **out, const char *what,
		 const char *ns, const char *name, struct udfb_err *err)
{
	if (out)
		*out = NULL;
	char *url = NULL, *auth = NULL, *payload = NULL, *who = NULL;
	url = udfb_asprintf("%s%s", a->server, path);
	who = udfb_asprintf("kubernetes: %s %s%s%s", what, ns ? ns : "", ns ? "/" : "", name);
	struct curl_slist *hdr = curl_slist_append(NULL, "Accept: application/json");
	if (a->token) {
		auth = udfb_asprintf("Authorization: Bearer %s", a->token);
		hdr = curl_slist_append(hdr, auth);
	}
	if (body) {
		payload = udfb_json_dumps_must(body, JSON_COMPACT);
		hdr = curl_slist_append(hdr, strcmp(method, "PATCH") == 0 ? "Content-Type: application/apply-patch+yaml"
									  : "Content-Type: application/json");
	}
	struct udfb_buf resp;
	udfb_buf_init(&resp, 16 << 20);
	const struct udfb_curl_opts o = { .timeout_ms = a->timeout_ms > 0 ? a->timeout_ms : 10000L,
					  .ca_bundle = a->ca_file,
					  .cert_file = a->cert_file,
					  .key_file = a->key_file };
	const struct udfb_curl_call call = {
		.method = method, .url = url, .headers = hdr, .body = payload, .resp = &resp, .what = who
	};
	long code = 0;
	int rc = udfb_curl_request(&call, &o, &code, err);
	size_t len = 0;
	char *text = udfb_buf_steal(&resp, &len);
	json_t *j = text && len ? json_loadb(text, len, 0, NULL) : NULL;
	if (rc == 0 && (code < 200 || code >= 300)) {
		rc = status_error(code, j, what, ns, name, err);
	} else if (rc == 0 && out) {
		*out = j;
		j = NULL;
	}
	json_decref(j);
	free(text);
	curl_slist_free_all(hdr);
	if (auth) {
		memset(auth, 0, strlen(auth));
		free(auth);
	}
	free(payload);
	free(url);
	free(who);
	return rc;
}

int k8s_apply(struct k8s_api *a, json_t *obj, struct udfb_err *err)
{
	const char *kind = json_string_value(json_object_get(obj, "kind"));
	json_t *meta = json_object_get(obj, "metadata");
	const char *name = json_string_value(json_object_get(meta, "name"));
	const char *ns = json_string_value(json_object_get(meta, "namespace"));
	char *path;
	const char *q = "fieldManager=udf-builder&force=true";
	if (strcmp(kind, "Namespace") == 0)
		path = udfb_asprintf("/api/v1/namespaces/%s?%s", name, q);
	else if (strcmp(kind, "Deployment") == 0)
		path = udfb_asprintf("/apis/apps/v1/namespaces/%s/deployments/%s?%s", ns, name, q);
	else if (strcmp(kind, "Service") == 0)
		path = udfb_asprintf("/api/v1/namespaces/%s/services/%s?%s", ns, name, q);
	else if (strcmp(kind, "ConfigMap") == 0)
		path = udfb_asprintf("/api/v1/namespaces/%s/configmaps/%s?%s", ns, name, q);
	else if (strcmp(kind, "HorizontalPodAutoscaler") == 0)
		path = udfb_asprintf("/apis/autoscaling/v2/namespaces/%s/horizontalpodautoscalers/%s?%s", ns, name, q);
	else
		path = udfb_asprintf("/apis/networking.k8s.io/v1/namespaces/%s/networkpolicies/%s?%s", ns, name, q);
	char *what = udfb_asprintf("apply %s", kind);
	int rc = k8s_api_call(a, "PATCH", path, obj, NULL, what, ns, name, err); /* "apply Namespace udf-x" */
	free(path);
	free(what);
	return rc;
}
