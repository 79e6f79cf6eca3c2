/* The `kubernetes` scheduler's settings and the objects it applies: see k8s.h. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"
#include "common/jsonout.h"
#include "scheduler/k8s.h"
#include "common/tenant.h"

enum opt_type { T_STR, T_LONG };

static const struct opt_def {
	const char *name;
	enum opt_type type;
	size_t off;
} defs[] = {
	{ "api_server", T_STR, offsetof(struct k8s_opts, api_server) },
	{ "token_file", T_STR, offsetof(struct k8s_opts, token_file) },
	{ "ca_file", T_STR, offsetof(struct k8s_opts, ca_file) },
	{ "kubeconfig", T_STR, offsetof(struct k8s_opts, kubeconfig) },
	{ "runtime_class", T_STR, offsetof(struct k8s_opts, runtime_class) },
	{ "cluster_domain", T_STR, offsetof(struct k8s_opts, cluster_domain) },
	{ "cpu_request", T_STR, offsetof(struct k8s_opts, cpu_request) },
	{ "cpu_limit", T_STR, offsetof(struct k8s_opts, cpu_limit) },
	{ "memory_request", T_STR, offsetof(struct k8s_opts, memory_request) },
	{ "memory_limit", T_STR, offsetof(struct k8s_opts, memory_limit) },
	{ "tmp_size", T_STR, offsetof(struct k8s_opts, tmp_size) },
	{ "query_pod_selector", T_STR, offsetof(struct k8s_opts, query_pod_selector) },
	{ "query_namespace_selector", T_STR, offsetof(struct k8s_opts, query_namespace_selector) },
	{ "egress_cidrs", T_STR, offsetof(struct k8s_opts, egress_cidrs) },
	{ "dns_namespace", T_STR, offsetof(struct k8s_opts, dns_namespace) },
	{ "service_account", T_STR, offsetof(struct k8s_opts, service_account) },
	{ "start_timeout_ms", T_LONG, offsetof(struct k8s_opts, start_timeout_ms) },
	{ "poll_ms", T_LONG, offsetof(struct k8s_opts, poll_ms) },
	{ "idle_ms", T_LONG, offsetof(struct k8s_opts, idle_ms) },
	{ "reap_interval_ms", T_LONG, offsetof(struct k8s_opts, reap_interval_ms) },
	{ "request_timeout_ms", T_LONG, offsetof(struct k8s_opts, request_timeout_ms) },
};

#define STR(o, off) (*(char **)((char *)(o) + (off)))
#define LNG(o, off) (*(long *)((char *)(o) + (off)))

int k8s_opts_parse(struct k8s_opts *o, json_t *opts, struct udfb_err *err)
{
	memset(o, 0, sizeof(*o));
	o->runtime_class = strdup("runsc");
	o->cluster_domain = strdup("cluster.local");
	o->cpu_request = strdup("100m");
	o->cpu_limit = strdup("1");
	o->memory_request = strdup("128Mi");
	o->memory_limit = strdup("512Mi");
	o->tmp_size = strdup("64Mi");
	o->query_pod_selector = strdup("app.kubernetes.io/name=databend-query");
	o->query_namespace_selector = strdup("");
	o->egress_cidrs = strdup("");
	o->dns_namespace = strdup("kube-system");
	o->service_account = strdup("");
	o->start_timeout_ms = 60000;
	o->poll_ms = 500;
	o->idle_ms = 600000;
	o->reap_interval_ms = 10000;
	o->request_timeout_ms = 10000;
	const char *name;
	json_t *v;
	json_object_foreach(opts, name, v) {
		const struct opt_def *d = NULL;
		for (size_t i = 0; i < sizeof(defs) / sizeof(*defs); i++)
			if (strcmp(defs[i].name, name) == 0)
				d = &defs[i];
		if (!d)
			return udfb_err_set(
				err, UDFB_E_INVALID,
				"scheduler option '%s': unknown (docs/configuration.md, \"kubernetes scheduler\")",
				name);
		const char *s = json_string_value(v);
		if (!s)
			return udfb_err_set(err, UDFB_E_INVALID, "scheduler option '%s': must be a string", name);
		if (d->type == T_STR) {
			free(STR(o, d->off));
			STR(o, d->off) = strdup(s);
		} else {
			char *end;
			errno = 0;
			long n = strtol(s, &end, 10);
			if (errno || end == s || *end || n < 0)
				return udfb_err_set(err, UDFB_E_INVALID,
						    "scheduler option '%s': '%s' is not a non-negative integer", name,
						    s);
			LNG(o, d->off) = n;
		}
	}
	if (o->poll_ms <= 0)
		o->poll_ms = 1;
	if (o->reap_interval_ms <= 0)
		o->reap_interval_ms = 1000;
	return 0;
}

void k8s_opts_free(struct k8s_opts *o)
{
	for (size_t i = 0; i < sizeof(defs) / sizeof(*defs); i++)
		if (defs[i].type == T_STR) {
			free(STR(o, defs[i].off));
			STR(o, defs[i].off) = NULL;
		}
}

int k8s_names_for(struct k8s_names *n, const char *tenant, const char *key, struct udfb_err *err)
{
	memset(n, 0, sizeof(*n));
	if (!udfb_digest_valid(key))
		return udfb_err_set(err, UDFB_E_INVALID, "kubernetes: key '%.80s': not a sha256 digest", key);
	const char *hex = udfb_digest_hex(key);
	n->label = udfb_tenant_label(tenant);
	if (asprintf(&n->ns, "udf-%s", n->label) < 0 || asprintf(&n->name, "udf-%.16s", hex) < 0 ||
	    asprintf(&n->key12, "%.12s", hex) < 0)
		abort();
	return 0;
}

void k8s_names_free(struct k8s_names *n)
{
	free(n->label);
	free(n->ns);
	free(n->name);
	free(n->key12);
	memset(n, 0, sizeof(*n));
}

int k8s_image_ref(const char *image, char **out, struct udfb_err *err)
{
	if (strncmp(image, "oci:", 4) == 0 || strncmp(image, "oci-archive:", 12) == 0)
		return udfb_err_set(err, UDFB_E_UNSUPPORTED,
				    "kubernetes: image '%s': an OCI layout cannot run on Kubernetes; set --dest to a "
				    "docker:// registry",
				    image);
	const char *ref = strncmp(image, "docker://", 9) == 0 ? image + 9 : image;
	const char *at = strchr(ref, '@');
	if (!at || strncmp(at + 1, "sha256:", 7) != 0)
		return udfb_err_set(err, UDFB_E_INVALID, "kubernetes: image '%s': not pinned by digest", image);
	/* Drop a ":TAG" after the last '/' (a ':' before it is a port). */
	const char *slash = ref;
	for (const char *p = ref; p < at; p++)
		if (*p == '/')
			slash = p;
	const char *colon = memchr(slash, ':', (size_t)(at - slash));
	size_t repo_len = (size_t)((colon ? colon : at) - ref);
	if (asprintf(out, "%.*s%s", (int)repo_len, ref, at) < 0)
		abort();
	return 0;
}

/* "k=v,k=v" -> {k: v, ...} */
static json_t *selector_labels(const char *spec)
{
	json_t *m = json_object();
	char *copy = strdup(spec), *save = NULL;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(t, '=');
		if (eq) {
			*eq = 0;
			json_object_set_new(m, t, json_string(eq + 1));
		}
	}
	free(copy);
	return m;
}

static json_t *labels_for(const struct k8s_names *n)
{
	return udfb_json_must(json_pack("{s:s,s:s,s:s,s:s}", "app.kubernetes.io/name", "udf-sandbox",
					"app.kubernetes.io/managed-by", "udf-builder", "udf-builder/key", n->key12,
					"udf-builder/instance", n->name));
}

json_t *k8s_namespace_obj(const struct k8s_names *n)
{
	return udfb_json_must(json_pack("{s:s,s:s,s:{s:s,s:{s:s,s:s,s:s}}}", "apiVersion", "v1", "kind", "Namespace",
					"metadata", "name", n->ns, "labels", "pod-security.kubernetes.io/enforce",
					"restricted", "app.kubernetes.io/managed-by", "udf-builder",
					"udf-builder/tenant", n->label));
}

json_t *k8s_deployment_obj(const struct k8s_opts *o, const struct k8s_names *n, const struct udfb_sandbox_req *req,
			   const char *image, int replicas)
{
	json_t *env = udfb_json_must(json_pack("[{s:s,s:s},{s:s,s:s},{s:s,s:s}]", "name", "UDF_SERVER_ADDR", "value",
					       "0.0.0.0:8815", "name", "RESOURCE_STATUS_ADDR", "value", "0.0.0.0:8080",
					       "name", "UDF_AUTH_KEYS", "value", req->auth_keys ? req->auth_keys : ""));
	for (size_t i = 0; i < req->n_env; i++)
		json_array_append_new(env, udfb_json_must(json_pack("{s:s,s:s}", "name", req->env[i].name, "value",
								    req->env[i].value)));
	/* A worker's size: requests = limits (a resource class, as sized). */
	char cpu[32], mem[32];
	snprintf(cpu, sizeof(cpu), "%ldm", req->cpu_millis);
	snprintf(mem, sizeof(mem), "%lldMi", req->memory_bytes >> 20);
	const char *cpu_req = req->cpu_millis > 0 ? cpu : o->cpu_request,
		   *cpu_lim = req->cpu_millis > 0 ? cpu : o->cpu_limit;
	const char *mem_req = req->memory_bytes > 0 ? mem : o->memory_request;
	const char *mem_lim = req->memory_bytes > 0 ? mem : o->memory_limit;
	json_t *container = udfb_json_must(json_pack(
		"{s:s,s:s,s:s,s:[{s:s,s:i,s:s}],s:o,"
		"s:{s:{s:s,s:s},s:{s:s,s:s}},"
		"s:{s:b,s:b,s:b,s:{s:[s]},s:{s:s}},"
		"s:{s:{s:s,s:i},s:i,s:i},"
		"s:[{s:s,s:s}]}",
		"name", "udf", "image", image, "imagePullPolicy", "IfNotPresent", "ports", "name", "flight",
		"containerPort", 8815, "protocol", "TCP", "env", env, "resources", "requests", "cpu", cpu_req, "memory",
		mem_req, "limits", "cpu", cpu_lim, "memory", mem_lim, "securityContext", "runAsNonRoot", 1,
		"readOnlyRootFilesystem", 1, "allowPrivilegeEscalation", 0, "capabilities", "drop", "ALL",
		"seccompProfile", "type", "RuntimeDefault", "readinessProbe", "httpGet", "path", "/health", "port",
		8080, "periodSeconds", 2, "failureThreshold", 3, "volumeMounts", "name", "tmp", "mountPath", "/tmp"));
	json_t *pod = udfb_json_must(json_pack(
		"{s:[o],s:b,s:{s:b,s:{s:s}},s:[{s:s,s:{s:s,s:s}}]}", "containers", container,
		"automountServiceAccountToken", 0, "securityContext", "runAsNonRoot", 1, "seccompProfile", "type",
		"RuntimeDefault", "volumes", "name", "tmp", "emptyDir", "medium", "Memory", "sizeLimit", o->tmp_size));
	if (o->runtime_class && *o->runtime_class)
		json_object_set_new(pod, "runtimeClassName", json_string(o->runtime_class));
	if (o->service_account && *o->service_account)
		json_object_set_new(pod, "serviceAccountName", json_string(o->service_account));
	json_t *sel = udfb_json_must(json_pack("{s:s}", "udf-builder/instance", n->name));
	return udfb_json_must(json_pack("{s:s,s:s,s:{s:s,s:s,s:o},s:{s:i,s:{s:o},s:{s:{s:o},s:o}}}", "apiVersion",
					"apps/v1", "kind", "Deployment", "metadata", "name", n->name, "namespace",
					n->ns, "labels", labels_for(n), "spec", "replicas", replicas, "selector",
					"matchLabels", sel, "template", "metadata", "labels", labels_for(n), "spec",
					pod));
}

json_t *k8s_service_obj(const struct k8s_names *n)
{
	return udfb_json_must(json_pack("{s:s,s:s,s:{s:s,s:s,s:o},s:{s:s,s:{s:s},s:[{s:s,s:i,s:s,s:s}]}}", "apiVersion",
					"v1", "kind", "Service", "metadata", "name", n->name, "namespace", n->ns,
					"labels", labels_for(n), "spec", "type", "ClusterIP", "selector",
					"udf-builder/instance", n->name, "ports", "name", "flight", "port", 8815,
					"protocol", "TCP", "targetPort", "flight"));
}

/* A CIDR's egress rule; one containing 169.254.169.254 gets it excepted. */
static json_t *cidr_rule(const char *cidr)
{
	unsigned a, b, c, d, bits;
	json_t *block = udfb_json_must(json_pack("{s:s}", "cidr", cidr));
	if (sscanf(cidr, "%u.%u.%u.%u/%u", &a, &b, &c, &d, &bits) == 5 && bits <= 32) {
		unsigned long net = ((unsigned long)a << 24) | (b << 16) | (c << 8) | d;
		unsigned long meta = (169UL << 24) | (254UL << 16) | (169UL << 8) | 254UL;
		unsigned long mask = bits ? (0xffffffffUL << (32 - bits)) & 0xffffffffUL : 0;
		if ((net & mask) == (meta & mask))
			json_object_set_new(block, "except", udfb_json_must(json_pack("[s]", "169.254.169.254/32")));
	} else if (strchr(cidr, ':')) {
		/* IPv6: the metadata address is IPv4; nothing to except. */
	}
	return udfb_json_must(json_pack("{s:[{s:o}]}", "to", "ipBlock", block));
}

json_t *k8s_netpol_obj(const struct k8s_opts *o, const struct k8s_names *n)
{
	json_t *from = udfb_json_must(
		json_pack("{s:{s:o}}", "podSelector", "matchLabels", selector_labels(o->query_pod_selector)));
	json_object_set_new(
		from, "namespaceSelector",
		udfb_json_must(json_pack("{s:o}", "matchLabels", selector_labels(o->query_namespace_selector))));
	json_t *egress = udfb_json_must(json_pack(
		"[{s:[{s:{s:{s:s}},s:{s:{s:s}}}],s:[{s:s,s:i},{s:s,s:i}]}]", "to", "namespaceSelector", "matchLabels",
		"kubernetes.io/metadata.name", o->dns_namespace, "podSelector", "matchLabels", "k8s-app", "kube-dns",
		"ports", "protocol", "UDP", "port", 53, "protocol", "TCP", "port", 53));
	char *copy = strdup(o->egress_cidrs), *save = NULL;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
		if (*t)
			json_array_append_new(egress, cidr_rule(t));
	free(copy);
	return udfb_json_must(
		json_pack("{s:s,s:s,s:{s:s,s:s,s:o},s:{s:{s:{s:s}},s:[s,s],s:[{s:[o],s:[{s:s,s:i}]}],s:o}}",
			  "apiVersion", "networking.k8s.io/v1", "kind", "NetworkPolicy", "metadata", "name", n->name,
			  "namespace", n->ns, "labels", labels_for(n), "spec", "podSelector", "matchLabels",
			  "udf-builder/instance", n->name, "policyTypes", "Ingress", "Egress", "ingress", "from", from,
			  "ports", "protocol", "TCP", "port", 8815, "egress", egress));
}
