/* The gRPC request path without gRPC: one call's method, protobuf payload
 * and metadata in, its status and protobuf reply out, for every method the
 * port serves (docs/service.md): ApplyUdfResource, ApplyResource,
 * CreateWorker, AlterWorker, DropWorker, ListWorkers, the health check, and
 * UNIMPLEMENTED for anything else.  The transport (cmd/grpc_server.c) owns
 * the sockets, threads, the fair queue and cancellation; this file owns what
 * the bytes mean.  It is what tests/fuzz/fuzz_grpc.c drives.
 *
 * A call is answered in one or two steps: udfb_rpc_begin() does what needs
 * no waiting (decode, metadata checks, the caller's TLS identity, repeats
 * and lookups from memory) and either answers or hands back a slow part
 * that the transport runs on a call worker with udfb_rpc_finish(). */
#ifndef UDFB_RPC_H
#define UDFB_RPC_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "service/metrics.h"
#include "service/service.h"

struct udfb_rpc_md {
	const char *key, *value; /* not NUL-terminated */
	size_t key_len, value_len;
};

/* One call as the transport received it; it outlives udfb_rpc_finish. */
struct udfb_rpc_call {
	enum udfb_rpc rpc;
	const char *path; /* UNIMPLEMENTED: the method path the caller asked for */
	size_t path_len;
	const uint8_t *payload; /* NULL with len 0: no message (an empty one) */
	size_t len;
	int unreadable; /* the transport could not read the message */
	const struct udfb_rpc_md *md;
	size_t n_md;
	long long deadline_ms; /* monotonic; 0: none */
	const atomic_int *gone; /* set once the client cancelled or the deadline passed; NULL: never */
	int stopping; /* the transport is shutting down (health says NOT_SERVING) */
	/* The caller's certificate may act for tenant (mutual TLS with a
	 * tenant map); NULL: no such check. */
	int (*check_tenant)(void *ctx, const char *tenant, struct udfb_err *err);
	void *ctx;
};

struct udfb_rpc_reply {
	int code; /* gRPC status */
	char *msg; /* with a code other than 0 */
	uint8_t *body; /* with code 0: the response message */
	size_t len;
	int udf_call; /* counted in udfb_calls_total (a UDF's sandbox was asked for) */
};

struct udfb_rpc_slow;

/* 1: *reply is the answer.  0: *slow is the rest, for a call worker; its
 * tenant (udfb_rpc_slow_tenant) is the queue it waits in. */
int udfb_rpc_begin(struct udfb_service *s, const struct udfb_rpc_call *call, struct udfb_rpc_reply *reply,
		   struct udfb_rpc_slow **slow);
const char *udfb_rpc_slow_tenant(const struct udfb_rpc_slow *w);
/* On a call worker: runs slow (for the same call) into *reply and frees it. */
void udfb_rpc_finish(struct udfb_service *s, struct udfb_rpc_slow *slow, const struct udfb_rpc_call *call,
		     struct udfb_rpc_reply *reply);
/* A slow part never run (shutting down). */
void udfb_rpc_slow_free(struct udfb_rpc_slow *w);
void udfb_rpc_reply_clear(struct udfb_rpc_reply *r);
/* A metadata value as a string (the first, md_check allows one); NULL when absent. */
char *udfb_rpc_md_get(const struct udfb_rpc_call *call, const char *key);

#endif
