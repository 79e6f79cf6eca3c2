/* TLS on the gRPC port: the server credentials (insecure without
 * --tls-cert), mutual TLS with --tls-client-ca, certificates read again
 * after SIGHUP without dropping a connection (gRPC asks before every
 * handshake; connections already up keep theirs), and which tenants a
 * caller's certificate may act for (tls_client_tenants). */
#ifndef UDFB_GRPC_TLS_H
#define UDFB_GRPC_TLS_H

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>

#include "config/config.h"
#include "common/err.h"

struct udfb_grpc_tls;

/* *out is NULL without TLS settings; the files are read once here, so a
 * bad one stops the service at start. */
int udfb_grpc_tls_new(struct udfb_grpc_tls **out, const struct udfb_config *cfg, struct udfb_err *err);
void udfb_grpc_tls_free(struct udfb_grpc_tls *t);
/* The port's credentials: insecure when t is NULL.  Release with
 * grpc_server_credentials_release. */
grpc_server_credentials *udfb_grpc_tls_credentials(struct udfb_grpc_tls *t);
/* Read the files again before the next handshake (SIGHUP).  A file that
 * does not load is logged and the last good certificates stay. */
void udfb_grpc_tls_reload(struct udfb_grpc_tls *t);
/* DENIED unless the call's client certificate may act for tenant (always
 * allowed without a tls_client_tenants map). */
int udfb_grpc_tls_check_tenant(struct udfb_grpc_tls *t, grpc_call *call, const char *tenant, struct udfb_err *err);

#endif
