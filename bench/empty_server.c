/* The limit for the ApplyUdfResource benchmark: a gRPC C-core server with
 * the same registered method, completion-queue threads and request slots as
 * `udf-builder serve`, answering every call at once with an empty message.
 * Usage: empty_server PORT_FILE [METHOD_PATH] (writes its port there, serves
 * until killed; the method is ApplyUdfResource unless named). */
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"

struct slot {
	int replied;
	grpc_call *call;
	gpr_timespec deadline;
	grpc_metadata_array md;
	grpc_byte_buffer *payload;
	int cancelled;
};

static grpc_server *server;
static grpc_completion_queue *cq;
static void *method;

static void arm(void)
{
	struct slot *s = udfb_calloc(1, sizeof(*s));
	grpc_metadata_array_init(&s->md);
	grpc_server_request_registered_call(server, method, &s->call, &s->deadline, &s->md, &s->payload, cq, cq, s);
}

static void answer(struct slot *s)
{
	grpc_op ops[4];
	memset(ops, 0, sizeof(ops));
	grpc_slice empty = grpc_empty_slice();
	grpc_byte_buffer *resp = grpc_raw_byte_buffer_create(&empty, 1);
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = resp;
	ops[2].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[2].data.send_status_from_server.status = GRPC_STATUS_OK;
	ops[3].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	ops[3].data.recv_close_on_server.cancelled = &s->cancelled;
	s->replied = 1;
	grpc_call_start_batch(s->call, ops, 4, s, NULL);
	grpc_byte_buffer_destroy(resp);
}

static void *loop(void *arg)
{
	(void)arg;
	for (;;) {
		grpc_event ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		if (ev.type != GRPC_OP_COMPLETE)
			continue;
		struct slot *s = ev.tag;
		if (!s->replied) {
			arm();
			answer(s);
			continue;
		}
		grpc_call_unref(s->call);
		grpc_metadata_array_destroy(&s->md);
		if (s->payload)
			grpc_byte_buffer_destroy(s->payload);
		free(s);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 2 && argc != 3)
		return 2;
	grpc_init();
	cq = grpc_completion_queue_create_for_next(NULL);
	server = grpc_server_create(NULL, NULL);
	grpc_server_register_completion_queue(server, cq, NULL);
	method = grpc_server_register_method(server, argc == 3 ? argv[2] : "/udfproto.UdfService/ApplyUdfResource",
					     NULL, GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
	grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
	int port = grpc_server_add_http2_port(server, "127.0.0.1:0", creds);
	grpc_server_credentials_release(creds);
	grpc_server_start(server);
	for (int k = 0; k < 64; k++)
		arm();
	FILE *f = fopen(argv[1], "w");
	fprintf(f, "%d\n", port);
	fclose(f);
	pthread_t t[2];
	for (int k = 0; k < 2; k++)
		pthread_create(&t[k], NULL, loop, NULL);
	pthread_join(t[0], NULL);
	return 0;
}
