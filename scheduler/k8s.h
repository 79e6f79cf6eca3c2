/* Helpers of the `kubernetes` scheduler (scheduler_k8s.c): its settings,
 * the objects it applies (k8s_objects.c) and the API client (k8s_api.c). */
#ifndef UDFB_K8S_H
#define UDFB_K8S_H

#include <jansson.h>

#include "common/err.h"
#include "config/settings.h"
#include "scheduler/scheduler.h"

struct k8s_opts {
	char *api_server; /* "https://host:port"; NULL: in-cluster */
	char *token_file; /* bearer token file */
	char *ca_file; /* CA bundle for api_server */
	char *kubeconfig; /* JSON kubeconfig (current context) */
	char *runtime_class; /* "runsc"; "" leaves runtimeClassName out */
	char *cluster_domain; /* "cluster.local" */
	char *cpu_request, *cpu_limit, *memory_request, *memory_limit, *tmp_size;
	char *query_pod_selector; /* "k=v,k=v": pods allowed in */
	char *query_namespace_selector; /* "k=v,k=v": their namespaces */
	char *egress_cidrs; /* "10.0.0.0/8,..." */
	char *dns_namespace; /* "kube-system" */
	char *service_account; /* "" : none */
	long start_timeout_ms, poll_ms, idle_ms, reap_interval_ms, request_timeout_ms;
};

int k8s_opts_parse(struct k8s_opts *o, json_t *opts, struct udfb_err *err);
void k8s_opts_free(struct k8s_opts *o);
/* Its options' rows (docs/configuration.md, "The kubernetes scheduler"). */
extern const struct udfb_settings udfb_settings_k8s;

struct k8s_names {
	char *label; /* the tenant's DNS label */
	char *ns; /* udf-<label> */
	char *name; /* udf-<first 16 hex of the key> */
	char *key12;
};
int k8s_names_for(struct k8s_names *n, const char *tenant, const char *key, struct udfb_err *err);
void k8s_names_free(struct k8s_names *n);

/* "docker://HOST/REPO:TAG@sha256:..." -> "HOST/REPO@sha256:..."; an oci:
 * image is UDFB_E_UNSUPPORTED. */
int k8s_image_ref(const char *image, char **out, struct udfb_err *err);

json_t *k8s_namespace_obj(const struct k8s_names *n);
json_t *k8s_deployment_obj(const struct k8s_opts *o, const struct k8s_names *n, const struct udfb_sandbox_req *req,
			   const char *image, int replicas);
json_t *k8s_service_obj(const struct k8s_names *n);
json_t *k8s_netpol_obj(const struct k8s_opts *o, const struct k8s_names *n);
/* The autoscaler of a worker with max_cluster_count (autoscaling/v2, CPU). */
#define K8S_HPA_CPU_PERCENT 80
json_t *k8s_hpa_obj(const struct k8s_names *n, int min, int max);

struct k8s_api {
	char *server;
	char *token; /* never logged */
	char *ca_file;
	char *cert_file, *key_file; /* client certificate (kubeconfig) */
	char *tmpdir; /* holds *-data from a kubeconfig */
	long timeout_ms;
};
int k8s_api_init(struct k8s_api *a, const struct k8s_opts *o, struct udfb_err *err);
void k8s_api_free(struct k8s_api *a);
/* One request; body (JSON) is sent as application/apply-patch+yaml for
 * PATCH, application/json otherwise.  *out (may be NULL) gets the answer's
 * JSON.  Errors read "kubernetes: <what> <ns>/<name>: HTTP <code>:
 * <Status.message>" (a cluster-scoped object: ns NULL, "<what> <name>");
 * HTTP 404 is NOTFOUND, 409 (exists, or a stale resourceVersion) EXISTS. */
int k8s_api_call(struct k8s_api *a, const char *method, const char *path, json_t *body, json_t **out, const char *what,
		 const char *ns, const char *name, struct udfb_err *err);
/* Server-side apply of one object (fieldManager=udf-builder, force). */
int k8s_apply(struct k8s_api *a, json_t *obj, struct udfb_err *err);

#endif
