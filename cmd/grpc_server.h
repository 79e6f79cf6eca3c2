/* The gRPC front end (gRPC C core): udfproto.UdfService/ApplyUdfResource
 * and grpc.health.v1.Health/Check as registered methods whose payload
 * arrives with the call.  Completion-queue threads decode, answer cache hits
 * at once, and hand every other call to a worker pool. */
#ifndef UDFB_GRPC_SERVER_H
#define UDFB_GRPC_SERVER_H

#include "common/err.h"
#include "service/service.h"

struct udfb_grpc_server;

/* *port receives the bound port (listen may ask for port 0). */
int udfb_grpc_server_start(struct udfb_grpc_server **out, struct udfb_service *svc, const char *listen, int *port,
			   struct udfb_err *err);
/* Stop accepting; let calls in flight finish for up to grace_ms, then
 * cancel the rest; free everything. */
void udfb_grpc_server_shutdown(struct udfb_grpc_server *g, int grace_ms);
/* SIGHUP: the TLS certificates are read again before the next handshake. */
void udfb_grpc_server_reload(struct udfb_grpc_server *g);

#endif
