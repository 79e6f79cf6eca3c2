/* TLS for the gRPC port: see grpc_tls.h. */
#include "cmd/grpc_tls.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/fsutil.h"
#include "common/log.h"

#define PEM_MAX (1u << 20)

struct udfb_grpc_tls {
	char *cert, *key, *client_ca; /* paths */
	json_t *tenants; /* identity -> [tenant or "*"], NULL: any */
	atomic_int reload; /* set by SIGHUP; the fetcher reads the files */
	atomic_int loaded; /* the first config went out */
};

static void free_pem(char *p, size_t n)
{
	if (p)
		OPENSSL_cleanse(p, n);
	free(p);
}

/* A certificate config from the files; NULL and err when one fails. */
static grpc_ssl_server_certificate_config *load(const struct udfb_grpc_tls *t, struct udfb_err *err)
{
	char *cert = NULL, *key = NULL, *ca = NULL;
	size_t ncert = 0, nkey = 0, nca = 0;
	grpc_ssl_server_certificate_config *c = NULL;
	if (udfb_read_file(&cert, &ncert, t->cert, PEM_MAX, err) < 0)
		udfb_err_wrap(err, "tls-cert");
	else if (udfb_read_file(&key, &nkey, t->key, PEM_MAX, err) < 0)
		udfb_err_wrap(err, "tls-key");
	else if (t->client_ca && udfb_read_file(&ca, &nca, t->client_ca, PEM_MAX, err) < 0)
		udfb_err_wrap(err, "tls-client-ca");
	else if (!strstr(cert, "-----BEGIN CERTIFICATE-----") || !strstr(key, "PRIVATE KEY-----") ||
		 (ca && !strstr(ca, "-----BEGIN CERTIFICATE-----")))
		udfb_err_set(err, UDFB_E_INVALID, "tls: %s, %s%s%s: expected PEM certificates and a PEM private key",
			     t->cert, t->key, t->client_ca ? ", " : "", t->client_ca ? t->client_ca : "");
	else {
		grpc_ssl_pem_key_cert_pair pair = { key, cert };
		/* gRPC 1.51 asserts roots in a fetched config even when it asks
		 * no client for a certificate: then our own chain stands in,
		 * never used to verify anyone. */
		c = grpc_ssl_server_certificate_config_create(ca ? ca : cert, &pair, 1);
	}
	free_pem(key, nkey);
	free(cert);
	free(ca);
	return c;
}

/* gRPC calls this before every handshake: only after SIGHUP does it cost
 * more than an atomic load. */
static grpc_ssl_certificate_config_reload_status fetch(void *arg, grpc_ssl_server_certificate_config **out)
{
	struct udfb_grpc_tls *t = arg;
	if (atomic_load(&t->loaded) && !atomic_exchange(&t->reload, 0))
		return GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_UNCHANGED;
	struct udfb_err err = UDFB_ERR_INIT;
	*out = load(t, &err);
	if (!*out) {
		udfb_error("tls: keeping the certificates in use: %s", err.msg);
		udfb_err_clear(&err);
		return atomic_load(&t->loaded) ? GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_UNCHANGED
					       : GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_FAIL;
	}
	if (atomic_exchange(&t->loaded, 1))
		udfb_info("tls: certificates read again from %s", t->cert);
	return GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_NEW;
}

int udfb_grpc_tls_new(struct udfb_grpc_tls **out, const struct udfb_config *cfg, struct udfb_err *err)
{
	*out = NULL;
	if (!cfg->tls_cert)
		return 0;
	struct udfb_grpc_tls *t = udfb_calloc(1, sizeof(*t));
	t->cert = udfb_strdup(cfg->tls_cert);
	t->key = udfb_strdup(cfg->tls_key);
	t->client_ca = cfg->tls_client_ca ? udfb_strdup(cfg->tls_client_ca) : NULL;
	t->tenants = cfg->tls_client_tenants ? json_deep_copy(cfg->tls_client_tenants) : NULL;
	grpc_ssl_server_certificate_config *c = load(t, err);
	if (!c) {
		udfb_grpc_tls_free(t);
		return -1;
	}
	grpc_ssl_server_certificate_config_destroy(c);
	*out = t;
	return 0;
}

void udfb_grpc_tls_free(struct udfb_grpc_tls *t)
{
	if (!t)
		return;
	free(t->cert), free(t->key), free(t->client_ca);
	json_decref(t->tenants);
	free(t);
}

grpc_server_credentials *udfb_grpc_tls_credentials(struct udfb_grpc_tls *t)
{
	if (!t)
		return grpc_insecure_server_credentials_create();
	grpc_ssl_client_certificate_request_type req =
		t->client_ca ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
			     : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE;
	grpc_ssl_server_credentials_options *o =
		grpc_ssl_server_credentials_create_options_using_config_fetcher(req, fetch, t);
	return grpc_ssl_server_credentials_create_with_options(o);
}

void udfb_grpc_tls_reload(struct udfb_grpc_tls *t)
{
	if (t)
		atomic_store(&t->reload, 1);
}

/* 1 when identity's list names tenant or "*". */
static int listed(json_t *list, const char *tenant)
{
	size_t k;
	json_t *v;
	json_array_foreach(list, k, v) {
		const char *s = json_string_value(v);
		if (s && (strcmp(s, "*") == 0 || strcmp(s, tenant) == 0))
			return 1;
	}
	return 0;
}

/* The certificate's identities: its subject CN, then its SANs. */
static int identity_allows(json_t *map, grpc_auth_context *ctx, const char *tenant, char *who, size_t who_len)
{
	static const char *const names[] = { GRPC_X509_CN_PROPERTY_NAME, GRPC_X509_SAN_PROPERTY_NAME };
	*who = '\0';
	for (size_t n = 0; n < 2; n++) {
		grpc_auth_property_iterator it = grpc_auth_context_find_properties_by_name(ctx, names[n]);
		for (const grpc_auth_property *p; (p = grpc_auth_property_iterator_next(&it));) {
			char id[256];
			snprintf(id, sizeof(id), "%.*s", (int)(p->value_length < 255 ? p->value_length : 255),
				 p->value);
			if (!*who)
				snprintf(who, who_len, "%s", id);
			json_t *list = json_object_get(map, id);
			if (list && listed(list, tenant))
				return 1;
		}
	}
	return 0;
}

int udfb_grpc_tls_check_tenant(struct udfb_grpc_tls *t, grpc_call *call, const char *tenant, struct udfb_err *err)
{
	if (!t || !t->tenants || !tenant)
		return 0; /* no map, or no tenant: the service refuses that itself */
	grpc_auth_context *ctx = grpc_call_auth_context(call);
	char who[256] = "";
	int ok = ctx && identity_allows(t->tenants, ctx, tenant, who, sizeof(who));
	grpc_auth_context_release(ctx);
	if (ok)
		return 0;
	return udfb_err_set(err, UDFB_E_DENIED,
			    "client certificate '%s' may not act for tenant '%s' (tls_client_tenants)",
			    *who ? who : "(no identity)", tenant);
}
