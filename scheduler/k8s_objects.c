/* The `kubernetes` scheduler's settings and the objects it applies: see k8s.h. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/hash.h"
#include "common/jsonout.h"
#include "scheduler/k8s.h"
#include "common/tenant.h"

static int set_count(void *obj, const struct udfb_setting *r, enum udfb_set_source src, const char *v,
		     struct udfb_err *err)
{
	char *end;
	(void)src;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (errno || end == v || *end || n < 0)
		return udfb_err_set(err, UDFB_E_INVALID, "scheduler option '%s': '%s' is not a non-negative integer",
				    r->name, v);
	*(long *)((char *)obj + r->off) = n;
	return 0;
}

/* The rows: docs/configuration.md's "kubernetes scheduler" table is
 * printed from them (udf-builder settings --markdown kubernetes). */
#define OFF(f) offsetof(struct k8s_opts, f)
#define STR(key, dflt, doc)                                                                                   \
	{                                                                                                     \
#key, #key, NULL, NULL, NULL, UDFB_SET_STR, 0, 0, 0, OFF(key), NULL, NULL, dflt, doc, NULL, 0 \
	}
#define NUM(key, dflt, doc)                                                                                       \
	{                                                                                                         \
#key, #key, NULL, NULL, NULL, UDFB_SET_FN, 0, 0, 0, OFF(key), set_count, NULL, dflt, doc, NULL, 0 \
	}

static const struct udfb_setting rows[] = {
	STR(api_server, "in-cluster: `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`",
	    "the API server's URL (`http://` only for tests)"),
	STR(token_file, "in-cluster: `/var/run/secrets/kubernetes.io/serviceaccount/token`",
	    "a file holding the bearer token (read once at start; never logged)"),
	STR(ca_file, "in-cluster: `…/serviceaccount/ca.crt`", "the CA bundle for `api_server`"),
	STR(kubeconfig, NULL,
	    "a kubeconfig in YAML as `kubectl` writes it (`~/.kube/config`), or in JSON; read with libyaml (up to 4 "
	    "MiB, 64 levels, 100000 values, aliases expanded within that bound): the current context's cluster "
	    "`server`, `certificate-authority(-data)`, and user `token`, `tokenFile`, `client-certificate(-data)`, "
	    "`client-key(-data)`; `api_server`, `ca_file` and `token_file` given as well win"),
	STR(runtime_class, "`runsc`",
	    "the pods' `runtimeClassName` (gVisor); `\"\"` leaves it out (the cluster's default runtime)"),
	STR(cluster_domain, "`cluster.local`",
	    "endpoints are `http://<service>.<namespace>.svc.<cluster_domain>:8815`"),
	STR(cpu_request, "`100m`", "the container's CPU request (a Kubernetes quantity)"),
	STR(cpu_limit, "`1`", "the container's CPU limit"),
	STR(memory_request, "`128Mi`", "its memory request"),
	STR(memory_limit, "`512Mi`", "its memory limit"),
	STR(tmp_size, "`64Mi`", "size of the memory-backed `emptyDir` at `/tmp` (counted in the memory limit)"),
	STR(query_pod_selector, "`app.kubernetes.io/name=databend-query`",
	    "`k=v,k=v`: the labels of the pods (Databend query nodes) allowed to connect to port 8815"),
	STR(query_namespace_selector, "`\"\"` (any namespace)",
	    "`k=v,k=v`: the labels of their namespaces, e.g. `kubernetes.io/metadata.name=databend`"),
	STR(egress_cidrs, "`\"\"` (DNS only)",
	    "comma-separated CIDRs sandboxes may connect to besides DNS (UDP/TCP 53 to kube-dns); a CIDR holding "
	    "`169.254.169.254` gets it as an `except`"),
	STR(dns_namespace, "`kube-system`", "the namespace of the kube-dns pods (`k8s-app=kube-dns`)"),
	STR(service_account, "`\"\"`", "the pods' service account (its token is never mounted)"),
	NUM(start_timeout_ms, "`60000`",
	    "how long `ensure` waits for `status.readyReplicas >= 1`; past it the call fails (`DEADLINE_EXCEEDED`)"),
	NUM(poll_ms, "`500`", "how often the Deployment is read while waiting"),
	NUM(idle_ms, "`600000`",
	    "a sandbox with no call (ensure, or a call answered from memory) for this long is scaled to zero replicas; "
	    "the next call scales it back to one (same endpoint); `0`: never"),
	NUM(reap_interval_ms, "`10000`", "how often idleness is checked"),
	NUM(request_timeout_ms, "`10000`", "one API request's timeout"),
};

const struct udfb_settings udfb_settings_k8s = UDFB_SETTINGS("kubernetes scheduler", "scheduler_options", rows, 1);

int k8s_opts_parse(struct k8s_opts *o, json_t *opts, struct udfb_err *err)
{
	memset(o, 0, sizeof(*o));
	udfb_settings_defaults(&udfb_settings_k8s, o); /* the rows' defaults; api_server & co: in-cluster */
	const char *name;
	json_t *v;
	json_object_foreach(opts, name, v) {
		const struct udfb_setting *r = udfb_settings_find_key(&udfb_settings_k8s, name);
		if (!r)
			return udfb_err_set(
				err, UDFB_E_INVALID,
				"scheduler option '%s': unknown (docs/configuration.md, \"kubernetes scheduler\")",
				name);
		const char *s = json_string_value(v);
		if (!s)
			return udfb_err_set(err, UDFB_E_INVALID, "scheduler option '%s': must be a string", name);
		if (udfb_setting_set(r, o, UDFB_SRC_FILE, s, err) < 0)
			return -1;
	}
	if (o->poll_ms <= 0)
		o->poll_ms = 1;
	if (o->reap_interval_ms <= 0)
		o->reap_interval_ms = 1000;
	return 0;
}

void k8s_opts_free(struct k8s_opts *o)
{
	udfb_settings_free(&udfb_settings_k8s, o);
}

int k8s_names_for(struct k8s_names *n, const char *tenant, const char *key, struct udfb_err *err)
{
	memset(n, 0, sizeof(*n));
	if (!udfb_digest_valid(key))
		return udfb_err_set(err, UDFB_E_INVALID, "kubernetes: key '%.80s': not a sha256 digest", key);
	const char *hex = udfb_digest_hex(key);
	n->label = udfb_tenant_label(tenant);
	n->ns = udfb_asprintf("udf-%s", n->label);
	n->name = udfb_asprintf("udf-%.16s", hex);
	n->key12 = udfb_asprintf("%.12s", hex);
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
	*out = udfb_asprintf("%.*s%s", (int)repo_len, ref, at);
	return 0;
}

/* "k=v,k=v" -> {k: v, ...} */
static json_t *selector_labels(const char *spec)
{
	json_t *m = json_object();
	char *copy = udfb_strdup(spec), *save = NULL;
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

/* A worker's max_cluster_count: a HorizontalPodAutoscaler on its
 * Deployment between min and max replicas, on CPU (the pods request the
 * size's CPU).  A Deployment scaled to zero (SUSPEND, idle) is left alone
 * by the autoscaler until ensure() applies its replicas again. */
json_t *k8s_hpa_obj(const struct k8s_names *n, int min, int max)
{
	return udfb_json_must(json_pack(
		"{s:s,s:s,s:{s:s,s:s,s:o},s:{s:{s:s,s:s,s:s},s:i,s:i,s:[{s:s,s:{s:s,s:{s:s,s:i}}}]}}", "apiVersion",
		"autoscaling/v2", "kind", "HorizontalPodAutoscaler", "metadata", "name", n->name, "namespace", n->ns,
		"labels", labels_for(n), "spec", "scaleTargetRef", "apiVersion", "apps/v1", "kind", "Deployment",
		"name", n->name, "minReplicas", min, "maxReplicas", max, "metrics", "type", "Resource", "resource",
		"name", "cpu", "target", "type", "Utilization", "averageUtilization", K8S_HPA_CPU_PERCENT));
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
	char *copy = udfb_strdup(o->egress_cidrs), *save = NULL;
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
