/* gRPC front end: see grpc_server.h and docs/service.md.  Each request slot
 * is a struct call whose first member says what its completion means, so a
 * completion-queue tag is always a struct call *.
 *
 * One port serves every form Databend has sent, routed by method path:
 * udfproto.UdfService/ApplyUdfResource (the pull-request branch),
 * resourceproto.ResourceService/ApplyResource (v1.2.874-882) and
 * resourceproto.WorkerService (v1.2.883 and later), plus grpc.health.
 * Any other method (taskproto.*, notificationproto.*, billingproto.*, ...)
 * is taken by request slots for unregistered calls and answered
 * UNIMPLEMENTED naming it: the C core would otherwise never answer it, and
 * Databend would wait out its deadline. */
#include <stddef.h>
#include "cmd/grpc_server.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cmd/grpc_tls.h"
#include "common/alloc.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/pool.h"
#include "service/callq.h"
#include "service/rpc.h"

enum tag_kind { TAG_NEW_CALL, TAG_REPLIED, TAG_SHUTDOWN, TAG_CLOSED };
enum method {
	M_APPLY,
	M_HEALTH,
	M_APPLY_RESOURCE,
	M_CREATE_WORKER,
	M_ALTER_WORKER,
	M_DROP_WORKER,
	M_LIST_WORKERS,
	M_REGISTERED, /* the number of registered methods */
	M_UNKNOWN = M_REGISTERED,
};

static const struct {
	const char *path;
	enum udfb_rpc rpc;
} methods[M_REGISTERED + 1] = {
	[M_APPLY] = { "/udfproto.UdfService/ApplyUdfResource", UDFB_RPC_APPLY_UDF_RESOURCE },
	[M_HEALTH] = { "/grpc.health.v1.Health/Check", UDFB_RPC_HEALTH },
	[M_APPLY_RESOURCE] = { "/resourceproto.ResourceService/ApplyResource", UDFB_RPC_APPLY_RESOURCE },
	[M_CREATE_WORKER] = { "/resourceproto.WorkerService/CreateWorker", UDFB_RPC_CREATE_WORKER },
	[M_ALTER_WORKER] = { "/resourceproto.WorkerService/AlterWorker", UDFB_RPC_ALTER_WORKER },
	[M_DROP_WORKER] = { "/resourceproto.WorkerService/DropWorker", UDFB_RPC_DROP_WORKER },
	[M_LIST_WORKERS] = { "/resourceproto.WorkerService/ListWorkers", UDFB_RPC_LIST_WORKERS },
	[M_UNKNOWN] = { NULL, UDFB_RPC_UNIMPLEMENTED },
};

/* The version markers, in udfb_metrics_client_version's order. */
static const char *const markers[3] = { "udf_client_version", "resource_client_version", "worker_client_version" };

struct call {
	enum tag_kind kind;
	enum method method;
	struct udfb_grpc_server *g;
	grpc_call *call;
	gpr_timespec deadline;
	grpc_metadata_array md;
	grpc_byte_buffer *payload;
	grpc_byte_buffer *resp;
	grpc_slice details_msg;
	int cancelled;
	/* A call sent to a call worker watches for its end (RECV_CLOSE_ON_SERVER
	 * in a batch of its own, tagged &close_kind): when the client cancels or
	 * the deadline passes, gone is set and the worker stops waiting at once.
	 * refs: the batches still out (the reply's, the watch's). */
	enum tag_kind close_kind;
	int watching;
	atomic_int gone;
	atomic_int refs;
	long long t0_ms;
	long long deadline_ms; /* monotonic, 0: none */
	grpc_call_details details; /* M_UNKNOWN: the method path */
	/* The call as the request path sees it (service/rpc.h): its payload,
	 * metadata and method, and what waits for a call worker. */
	struct udfb_rpc_call rc;
	grpc_slice bytes; /* the payload read whole, kept for the call */
	struct udfb_rpc_md *mdv;
	struct udfb_rpc_slow *slow;
	int udf_call; /* counted in udfb_calls_total (a UDF's sandbox was asked for) */
};

struct udfb_grpc_server {
	grpc_server *server;
	grpc_completion_queue *cq;
	void *methods[M_REGISTERED];
	atomic_int marker_logged[4];
	struct udfb_service *svc;
	struct udfb_pool *workers;
	struct udfb_callq *callq; /* calls waiting for a worker, fair between tenants */
	pthread_t *threads;
	int n_threads;
	atomic_int inflight;
	atomic_int stopping;
	atomic_int shutdown_done;
	struct call shutdown_tag;
	struct udfb_grpc_tls *tls; /* NULL: plain HTTP/2 */
};

static void arm(struct udfb_grpc_server *g, enum method m)
{
	if (atomic_load(&g->stopping))
		return;
	struct call *c = udfb_calloc(1, sizeof(*c));
	c->kind = TAG_NEW_CALL;
	c->close_kind = TAG_CLOSED;
	atomic_init(&c->refs, 1);
	c->method = m;
	c->g = g;
	grpc_metadata_array_init(&c->md);
	grpc_call_details_init(&c->details);
	grpc_call_error e =
		m == M_UNKNOWN ? grpc_server_request_call(g->server, &c->call, &c->details, &c->md, g->cq, g->cq, c)
			       : grpc_server_request_registered_call(g->server, g->methods[m], &c->call, &c->deadline,
								     &c->md, &c->payload, g->cq, g->cq, c);
	if (e != GRPC_CALL_OK) {
		udfb_error("grpc: cannot arm a request slot (error %d)", (int)e);
		grpc_metadata_array_destroy(&c->md);
		grpc_call_details_destroy(&c->details);
		free(c);
	}
}

static void free_call(struct call *c)
{
	if (c->call)
		grpc_call_unref(c->call);
	grpc_metadata_array_destroy(&c->md);
	if (c->payload)
		grpc_byte_buffer_destroy(c->payload);
	if (c->resp)
		grpc_byte_buffer_destroy(c->resp);
	grpc_slice_unref(c->details_msg);
	grpc_call_details_destroy(&c->details);
	udfb_rpc_slow_free(c->slow);
	grpc_slice_unref(c->bytes);
	free(c->mdv);
	free(c);
}

static void release(struct call *c)
{
	if (atomic_fetch_sub(&c->refs, 1) == 1)
		free_call(c);
}

/* Before c goes to a call worker: learn at once when its client is gone. */
static void watch_close(struct call *c)
{
	grpc_op op;
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	op.data.recv_close_on_server.cancelled = &c->cancelled;
	atomic_fetch_add(&c->refs, 1);
	c->watching = 1;
	if (grpc_call_start_batch(c->call, &op, 1, &c->close_kind, NULL) != GRPC_CALL_OK) {
		c->watching = 0;
		atomic_fetch_sub(&c->refs, 1);
	}
}

/* Send status (and the message when code is OK); the completion frees c. */
static void reply(struct call *c, int code, const char *msg, const void *body, size_t len)
{
	grpc_op ops[4];
	memset(ops, 0, sizeof(ops));
	size_t n = 0;
	ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
	if (body) {
		grpc_slice s = grpc_slice_from_copied_buffer(body, len);
		c->resp = grpc_raw_byte_buffer_create(&s, 1);
		grpc_slice_unref(s);
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n++].data.send_message.send_message = c->resp;
	}
	c->details_msg = grpc_slice_from_copied_string(msg ? msg : "");
	ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[n].data.send_status_from_server.status = (grpc_status_code)code;
	ops[n++].data.send_status_from_server.status_details = code ? &c->details_msg : NULL;
	if (!c->watching) {
		ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
		ops[n++].data.recv_close_on_server.cancelled = &c->cancelled;
	}
	c->kind = TAG_REPLIED;
	struct udfb_metrics *mx = udfb_service_metrics(c->g->svc);
	if (c->udf_call)
		udfb_metrics_call(mx, code, (double)(udfb_now_ms() - c->t0_ms) / 1000.0);
	udfb_metrics_rpc(mx, methods[c->method].rpc, code);
	grpc_call_error e = grpc_call_start_batch(c->call, ops, n, c, NULL);
	if (e != GRPC_CALL_OK) {
		udfb_error("grpc: cannot send a reply (error %d)", (int)e);
		atomic_fetch_sub(&c->g->inflight, 1);
		release(c);
	}
}

static void reply_err(struct call *c, struct udfb_err *err)
{
	reply(c, udfb_errcat_grpc_status(err->cat), err->msg, NULL, 0);
	udfb_err_clear(err);
}

/* Send the request path's answer. */
static void reply_rpc(struct call *c, struct udfb_rpc_reply *r)
{
	c->udf_call |= r->udf_call;
	reply(c, r->code, r->msg, r->code ? NULL : r->body, r->len);
	udfb_rpc_reply_clear(r);
}

static long long deadline_ms(gpr_timespec dl)
{
	if (gpr_time_cmp(dl, gpr_inf_future(dl.clock_type)) == 0)
		return 0;
	gpr_timespec left = gpr_time_sub(gpr_convert_clock_type(dl, GPR_CLOCK_REALTIME), gpr_now(GPR_CLOCK_REALTIME));
	return udfb_now_ms() + gpr_time_to_millis(left);
}

/* The payload as one contiguous buffer (the channel capped its size). */
static void read_payload(struct call *c)
{
	if (!c->payload)
		return;
	grpc_byte_buffer_reader r;
	if (!grpc_byte_buffer_reader_init(&r, c->payload)) {
		c->rc.unreadable = 1;
		return;
	}
	/* One slice: a reference to the message when it came in one, else a
	 * copy joining its pieces; the request path decodes from it. */
	c->bytes = grpc_byte_buffer_reader_readall(&r);
	grpc_byte_buffer_reader_destroy(&r);
	c->rc.payload = GRPC_SLICE_START_PTR(c->bytes);
	c->rc.len = GRPC_SLICE_LENGTH(c->bytes);
}

static int tls_check_tenant(void *ctx, const char *tenant, struct udfb_err *err)
{
	struct call *c = ctx;
	return udfb_grpc_tls_check_tenant(c->g->tls, c->call, tenant, err);
}

/* The transport's call as the request path's (service/rpc.h). */
static void rpc_view(struct call *c)
{
	struct udfb_rpc_call *rc = &c->rc;
	rc->rpc = methods[c->method].rpc;
	if (c->method == M_UNKNOWN) {
		rc->path = (const char *)GRPC_SLICE_START_PTR(c->details.method);
		rc->path_len = GRPC_SLICE_LENGTH(c->details.method);
	}
	read_payload(c);
	c->mdv = udfb_calloc(c->md.count + 1, sizeof(*c->mdv));
	for (size_t k = 0; k < c->md.count; k++) {
		/* Pointers into the array's own slices: an inlined slice keeps its
		 * bytes inside the struct, so a copy's would dangle. */
		grpc_slice *ks = &c->md.metadata[k].key, *vs = &c->md.metadata[k].value;
		c->mdv[k] = (struct udfb_rpc_md){ (const char *)GRPC_SLICE_START_PTR(*ks),
						  (const char *)GRPC_SLICE_START_PTR(*vs), GRPC_SLICE_LENGTH(*ks),
						  GRPC_SLICE_LENGTH(*vs) };
	}
	rc->md = c->mdv;
	rc->n_md = c->md.count;
	rc->deadline_ms = c->deadline_ms;
	rc->gone = &c->gone;
	rc->stopping = atomic_load(&c->g->stopping);
	rc->check_tenant = tls_check_tenant;
	rc->ctx = c;
}

/* Count the version marker a call carried; log each marker the first time. */
static void note_marker(struct call *c)
{
	struct udfb_metrics *mx = udfb_service_metrics(c->g->svc);
	for (int k = 0; k < 3; k++) {
		char *v = udfb_rpc_md_get(&c->rc, markers[k]);
		if (!v)
			continue;
		int v1 = strcmp(v, "v1") == 0;
		udfb_metrics_client_version(mx, k, v1);
		if (!atomic_exchange(&c->g->marker_logged[k], 1))
			udfb_info("grpc: first call with %s: %.32s%s (%s)", markers[k], v,
				  v1 ? "" : " (not v1: answered as v1)",
				  methods[c->method].path ? methods[c->method].path : "an unknown method");
		free(v);
		return;
	}
	udfb_metrics_client_version(mx, 3, 0);
}

/* ---- call workers ---- */

/* One pool job per queued call; which call it serves is the fair queue's
 * choice at the time a worker is free, not the order of submission. */
static void run_next(void *arg)
{
	struct udfb_grpc_server *g = arg;
	struct call *c = udfb_callq_take(g->callq);
	if (!c)
		return;
	udfb_metrics_calls_waiting(udfb_service_metrics(g->svc), -1);
	struct udfb_rpc_reply r = { .udf_call = c->udf_call };
	struct udfb_rpc_slow *w = c->slow;
	c->slow = NULL;
	udfb_rpc_finish(g->svc, w, &c->rc, &r);
	reply_rpc(c, &r);
}

/* Hand c to a call worker, behind the calls its tenant has waiting and
 * round-robin with other tenants' (service/callq.h); refused with
 * RESOURCE_EXHAUSTED when its tenant has max_queued_calls waiting.  It
 * watches for its end meanwhile (cancellation, the deadline). */
static void to_worker(struct call *c)
{
	struct udfb_grpc_server *g = c->g;
	struct udfb_metrics *mx = udfb_service_metrics(g->svc);
	struct udfb_err err = UDFB_ERR_INIT;
	const char *tenant = udfb_rpc_slow_tenant(c->slow);
	watch_close(c);
	if (udfb_callq_put(g->callq, tenant, c, &err) < 0) {
		struct udfb_log_fields f = { tenant, NULL, NULL };
		udfb_logf(UDFB_LOG_WARN, &f, "%s: %s", methods[c->method].path, err.msg);
		udfb_metrics_calls_refused(mx);
		return reply_err(c, &err);
	}
	udfb_metrics_calls_waiting(mx, 1);
	if (udfb_pool_submit(g->workers, run_next, g) < 0) { /* shutting down: answer one waiting call */
		struct call *any = udfb_callq_take(g->callq);
		udfb_metrics_calls_waiting(mx, -1);
		udfb_err_set(&err, UDFB_E_UNAVAILABLE, "the service is shutting down");
		reply_err(any, &err);
	}
}

/* ---- the completion queue ---- */

static void on_new_call(struct call *c, int success)
{
	struct udfb_grpc_server *g = c->g;
	if (!success) { /* the server is shutting down */
		free_call(c);
		return;
	}
	arm(g, c->method); /* keep the slot count while this call is served */
	atomic_fetch_add(&g->inflight, 1);
	c->t0_ms = udfb_now_ms();
	c->deadline_ms = c->method == M_UNKNOWN ? 0 : deadline_ms(c->deadline);
	rpc_view(c);
	if (c->method != M_HEALTH)
		note_marker(c);
	struct udfb_rpc_reply r;
	if (udfb_rpc_begin(g->svc, &c->rc, &r, &c->slow) == 1)
		return reply_rpc(c, &r);
	c->udf_call = r.udf_call;
	to_worker(c);
}

static void *cq_thread(void *arg)
{
	struct udfb_grpc_server *g = arg;
	for (;;) {
		grpc_event ev = grpc_completion_queue_next(g->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			return NULL;
		if (ev.type != GRPC_OP_COMPLETE)
			continue;
		enum tag_kind *kind = ev.tag;
		struct call *c = *kind == TAG_CLOSED ? (struct call *)((char *)kind - offsetof(struct call, close_kind))
						     : ev.tag;
		if (*kind == TAG_NEW_CALL) {
			on_new_call(c, ev.success);
		} else if (*kind == TAG_REPLIED) {
			atomic_fetch_sub(&g->inflight, 1);
			release(c);
		} else if (*kind == TAG_CLOSED) {
			if (c->cancelled) { /* the client cancelled, or the deadline passed */
				atomic_store(&c->gone, 1);
				udfb_service_wake(c->g->svc);
			}
			release(c);
		} else {
			atomic_store(&g->shutdown_done, 1);
		}
	}
}

static grpc_server *make_server(const struct udfb_config *cfg)
{
	grpc_arg args[2];
	args[0].type = GRPC_ARG_INTEGER;
	args[0].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
	args[0].value.integer = (int)cfg->max_message_bytes;
	args[1].type = GRPC_ARG_INTEGER;
	args[1].key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
	args[1].value.integer = 1 << 20;
	grpc_channel_args ch = { 2, args };
	return grpc_server_create(&ch, NULL);
}

int udfb_grpc_server_start(struct udfb_grpc_server **out, struct udfb_service *svc, const char *listen, int *port,
			   struct udfb_err *err)
{
	const struct udfb_config *cfg = udfb_service_config(svc);
	struct udfb_grpc_tls *tls = NULL;
	if (udfb_grpc_tls_new(&tls, cfg, err) < 0)
		return -1;
	grpc_init();
	struct udfb_grpc_server *g = udfb_calloc(1, sizeof(*g));
	g->tls = tls;
	g->svc = svc;
	g->shutdown_tag.kind = TAG_SHUTDOWN;
	g->cq = grpc_completion_queue_create_for_next(NULL);
	g->server = make_server(cfg);
	grpc_server_register_completion_queue(g->server, g->cq, NULL);
	for (int m = 0; m < M_REGISTERED; m++)
		g->methods[m] = grpc_server_register_method(g->server, methods[m].path, NULL,
							    GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
	grpc_server_credentials *creds = udfb_grpc_tls_credentials(g->tls);
	*port = grpc_server_add_http2_port(g->server, listen, creds);
	grpc_server_credentials_release(creds);
	if (*port <= 0) {
		grpc_server_destroy(g->server);
		grpc_completion_queue_shutdown(g->cq);
		while (grpc_completion_queue_next(g->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
		       GRPC_QUEUE_SHUTDOWN)
			;
		grpc_completion_queue_destroy(g->cq);
		udfb_grpc_tls_free(g->tls);
		free(g);
		grpc_shutdown();
		return udfb_err_set(err, UDFB_E_UNAVAILABLE, "listen %s: cannot bind (address in use or not local)",
				    listen);
	}
	grpc_server_start(g->server);
	g->workers = udfb_pool_new(cfg->call_workers, "call");
	g->callq = udfb_callq_new(cfg->max_queued_calls);
	/* Slots per method: the UDF paths get the configured count, the rest a few. */
	for (int m = 0; m <= M_UNKNOWN; m++) {
		int slots = m == M_APPLY || m == M_APPLY_RESOURCE || m == M_CREATE_WORKER ? cfg->request_slots : 4;
		for (int k = 0; k < slots; k++)
			arm(g, (enum method)m);
	}
	g->n_threads = cfg->cq_threads;
	g->threads = udfb_calloc((size_t)g->n_threads, sizeof(pthread_t));
	for (int k = 0; k < g->n_threads; k++)
		pthread_create(&g->threads[k], NULL, cq_thread, g);
	*out = g;
	return 0;
}

static void wait_for(atomic_int *v, int want_zero, long long until_ms)
{
	while ((want_zero ? atomic_load(v) != 0 : atomic_load(v) == 0) && udfb_now_ms() < until_ms)
		usleep(5000);
}

void udfb_grpc_server_shutdown(struct udfb_grpc_server *g, int grace_ms)
{
	atomic_store(&g->stopping, 1);
	grpc_server_shutdown_and_notify(g->server, g->cq, &g->shutdown_tag);
	long long until = udfb_now_ms() + grace_ms;
	wait_for(&g->inflight, 1, until);
	if (atomic_load(&g->inflight)) {
		udfb_warn("grace period over with %d calls in flight: cancelling them", atomic_load(&g->inflight));
		udfb_service_stop(g->svc); /* waiting calls answer UNAVAILABLE */
		grpc_server_cancel_all_calls(g->server);
	}
	udfb_pool_free(g->workers); /* runs what is queued: the queue is empty after */
	udfb_callq_free(g->callq);
	wait_for(&g->shutdown_done, 0, udfb_now_ms() + 5000);
	grpc_server_destroy(g->server);
	grpc_completion_queue_shutdown(g->cq);
	for (int k = 0; k < g->n_threads; k++)
		pthread_join(g->threads[k], NULL);
	grpc_completion_queue_destroy(g->cq);
	free(g->threads);
	udfb_grpc_tls_free(g->tls);
	free(g);
	grpc_shutdown();
}

void udfb_grpc_server_reload(struct udfb_grpc_server *g)
{
	udfb_grpc_tls_reload(g->tls);
}
