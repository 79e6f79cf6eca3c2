/* Fuzz target: the whole gRPC request path (service/rpc.c) behind the
 * transport, for every method: protobuf bytes and metadata in, a status and
 * a reply out, through the real service core (template scheduler, the
 * tests' tiny base from UDFB_TEST_TINY_BASE, a store in a temporary
 * directory).  Input layout (tests/fuzz/grpc_seeds.py writes the seeds):
 *
 *   byte 0      the method: 0 ApplyUdfResource, 1 ApplyResource,
 *               2 CreateWorker, 3 AlterWorker, 4 DropWorker, 5 ListWorkers,
 *               6 Health, 7 an unknown method
 *   byte 1      n, the number of metadata entries (at most 15 are read)
 *   n times     key length (1 byte), key, value length (1 byte), value
 *   the rest    the request message
 *
 * The parts that wait run too, except builds and import identification:
 * those fetch URLs from the input, and fuzzing sends no traffic.  Every
 * answer must be a known status with a message when it is an error, and a
 * response of the method's type when it is OK. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fsutil.h"
#include "common/log.h"
#include "config/config.h"
#include "proto/health.pb-c.h"
#include "proto/resource.pb-c.h"
#include "proto/udf.pb-c.h"
#include "service/rpc.h"
#include "service/service.h"

static struct udfb_service *svc;
static char dir[] = "/tmp/udfb-fuzz-grpc-XXXXXX";

static void stop(void)
{
	udfb_service_free(svc);
	udfb_rm_rf(dir);
}

static struct udfb_service *service(void)
{
	if (svc)
		return svc;
	const char *base = getenv("UDFB_TEST_TINY_BASE");
	if (!base) {
		fprintf(stderr, "fuzz_grpc: UDFB_TEST_TINY_BASE is not set (tests/run.sh sets it)\n");
		abort();
	}
	udfb_log_init(UDFB_LOG_OFF, 0);
	if (!mkdtemp(dir))
		abort();
	struct udfb_config cfg;
	struct udfb_err err = UDFB_ERR_INIT;
	udfb_config_defaults(&cfg);
	char *store = udfb_path_join(dir, "store");
	if (udfb_config_set(&cfg, "store", store, &err) < 0 || udfb_config_set(&cfg, "base-image", base, &err) < 0 ||
	    udfb_config_set(&cfg, "token-secret", "0123456789abcdef-fuzz", &err) < 0 ||
	    udfb_config_set(&cfg, "scheduler", "template", &err) < 0 || udfb_service_new(&svc, &cfg, &err) < 0) {
		fprintf(stderr, "fuzz_grpc: %s\n", err.msg);
		abort();
	}
	udfb_config_free(&cfg);
	free(store);
	atexit(stop);
	return svc;
}

static const enum udfb_rpc rpcs[8] = {
	UDFB_RPC_APPLY_UDF_RESOURCE, UDFB_RPC_APPLY_RESOURCE, UDFB_RPC_CREATE_WORKER, UDFB_RPC_ALTER_WORKER,
	UDFB_RPC_DROP_WORKER,	     UDFB_RPC_LIST_WORKERS,   UDFB_RPC_HEALTH,	      UDFB_RPC_UNIMPLEMENTED
};

/* An OK answer is a response of the method's type. */
static void check_body(enum udfb_rpc rpc, const struct udfb_rpc_reply *r)
{
	const ProtobufCMessageDescriptor *d = NULL;
	switch (rpc) {
	case UDFB_RPC_APPLY_UDF_RESOURCE: d = &udfproto__apply_udf_resource_response__descriptor; break;
	case UDFB_RPC_APPLY_RESOURCE: d = &resourceproto__apply_resource_response__descriptor; break;
	case UDFB_RPC_CREATE_WORKER: d = &resourceproto__create_worker_response__descriptor; break;
	case UDFB_RPC_ALTER_WORKER: d = &resourceproto__alter_worker_response__descriptor; break;
	case UDFB_RPC_DROP_WORKER: d = &resourceproto__drop_worker_response__descriptor; break;
	case UDFB_RPC_LIST_WORKERS: d = &resourceproto__list_workers_response__descriptor; break;
	case UDFB_RPC_HEALTH: d = &grpc__health__v1__health_check_response__descriptor; break;
	default: abort(); /* an unknown method is never OK */
	}
	ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, r->len, r->body);
	if (!m)
		abort();
	protobuf_c_message_free_unpacked(m, NULL);
}

static void check(enum udfb_rpc rpc, const struct udfb_rpc_reply *r)
{
	if (r->code < 0 || r->code > 16)
		abort();
	if (r->code && (!r->msg || !*r->msg))
		abort(); /* every error says what is wrong */
	if (!r->code)
		check_body(rpc, r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	struct udfb_service *s = service();
	struct udfb_rpc_md md[15];
	struct udfb_rpc_call call = { .rpc = rpcs[data[0] & 7] };
	size_t n = data[1] & 15, at = 2;
	for (size_t k = 0; k < n && at < size; k++) {
		size_t kl = data[at++];
		if (at + kl > size)
			break;
		const char *key = (const char *)data + at;
		at += kl;
		size_t vl = at < size ? data[at++] : 0;
		if (at + vl > size)
			break;
		md[call.n_md++] = (struct udfb_rpc_md){ key, (const char *)data + at, kl, vl };
		at += vl;
	}
	call.md = md;
	call.payload = data + at;
	call.len = size - at;
	if (call.rpc == UDFB_RPC_UNIMPLEMENTED) {
		call.path = (const char *)call.payload;
		call.path_len = call.len;
	}
	call.deadline_ms = udfb_now_ms() + 2000;
	struct udfb_rpc_reply r;
	struct udfb_rpc_slow *slow = NULL;
	if (udfb_rpc_begin(s, &call, &r, &slow) == 0) {
		/* Builds and import identification fetch the input's URLs: not here. */
		if (call.rpc == UDFB_RPC_ALTER_WORKER || call.rpc == UDFB_RPC_DROP_WORKER ||
		    call.rpc == UDFB_RPC_LIST_WORKERS)
			udfb_rpc_finish(s, slow, &call, &r);
		else
			udfb_rpc_slow_free(slow), r.code = -1;
	}
	if (r.code != -1)
		check(call.rpc, &r);
	if (getenv("UDFB_FUZZ_VERBOSE")) /* what each seed reaches */
		fprintf(stderr, "fuzz_grpc: rpc %d: %s %.200s\n", (int)call.rpc,
			r.code == -1 ? "to a call worker"
			: r.code     ? "error"
				     : "OK",
			r.code > 0 ? r.msg : "");
	udfb_rpc_reply_clear(&r);
	return 0;
}
