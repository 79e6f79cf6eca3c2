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
#include "common/hash.h"
#include "proto/health.pb-c.h"
#include "common/log.h"
#include "common/pool.h"
#include "proto/resource.pb-c.h"
#include "proto/udf.pb-c.h"
#include "service/callq.h"

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
	struct udfb_prepared *prep;
	struct udfb_script_call *script; /* ApplyResource, CreateWorker: the slow path's */
	int udf_call; /* counted in udfb_calls_total (a UDF's sandbox was asked for) */
	void (*job)(void *c); /* what a call worker runs for it (to_worker) */
	grpc_call_details details; /* M_UNKNOWN: the method path */
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
	struct call *c = calloc(1, sizeof(*c));
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
	udfb_prepared_free(c->prep);
	udfb_script_call_free(c->script);
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

/* The payload as one contiguous buffer (the channel capped its size). */
static uint8_t *payload_bytes(struct call *c, size_t *len)
{
	*len = 0;
	if (!c->payload)
		return calloc(1, 1);
	grpc_byte_buffer_reader r;
	if (!grpc_byte_buffer_reader_init(&r, c->payload))
		return NULL;
	grpc_slice s = grpc_byte_buffer_reader_readall(&r);
	grpc_byte_buffer_reader_destroy(&r);
	*len = GRPC_SLICE_LENGTH(s);
	uint8_t *b = malloc(*len + 1);
	memcpy(b, GRPC_SLICE_START_PTR(s), *len);
	grpc_slice_unref(s);
	return b;
}

static char *md_get(const grpc_metadata_array *md, const char *key)
{
	size_t n = strlen(key);
	for (size_t k = 0; k < md->count; k++) {
		grpc_slice ks = md->metadata[k].key, vs = md->metadata[k].value;
		if (GRPC_SLICE_LENGTH(ks) == n && strncasecmp((const char *)GRPC_SLICE_START_PTR(ks), key, n) == 0)
			return strndup((const char *)GRPC_SLICE_START_PTR(vs), GRPC_SLICE_LENGTH(vs));
	}
	return NULL;
}

/* The metadata keys this service reads, each checked at the edge before any
 * handler runs (issue 18): gRPC delivers a repeated key as several entries,
 * and md_get would silently take the first, so two values are refused; a
 * value is visible ASCII (what Databend sends: tenant, user, query id,
 * markers) and short.  Other keys are not ours to judge. */
#define MD_VALUE_MAX 256
static const char *const md_checked[] = { "x-databend-tenant",	"x-databend-user",	   "x-databend-query-id",
					  "udf_client_version", "resource_client_version", "worker_client_version" };

static int md_check(const grpc_metadata_array *md, struct udfb_err *err)
{
	for (size_t i = 0; i < sizeof(md_checked) / sizeof(md_checked[0]); i++) {
		const char *key = md_checked[i];
		size_t n = strlen(key), seen = 0;
		for (size_t k = 0; k < md->count; k++) {
			grpc_slice ks = md->metadata[k].key, vs = md->metadata[k].value;
			if (GRPC_SLICE_LENGTH(ks) != n ||
			    strncasecmp((const char *)GRPC_SLICE_START_PTR(ks), key, n) != 0)
				continue;
			if (++seen > 1)
				return udfb_err_set(err, UDFB_E_INVALID, "metadata %s: given more than once", key);
			const unsigned char *v = GRPC_SLICE_START_PTR(vs);
			size_t vl = GRPC_SLICE_LENGTH(vs);
			if (vl > MD_VALUE_MAX)
				return udfb_err_set(err, UDFB_E_INVALID, "metadata %s: longer than %d bytes", key,
						    MD_VALUE_MAX);
			for (size_t j = 0; j < vl; j++)
				if (v[j] < 0x20 || v[j] > 0x7e)
					return udfb_err_set(err, UDFB_E_INVALID, "metadata %s: not visible ASCII", key);
		}
	}
	return 0;
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
	c->job(c);
}

/* Hand c to a call worker, behind the calls its tenant has waiting and
 * round-robin with other tenants' (service/callq.h); refused with
 * RESOURCE_EXHAUSTED when its tenant has max_queued_calls waiting. */
static void to_worker(struct call *c, void (*job)(void *), const char *tenant)
{
	struct udfb_grpc_server *g = c->g;
	struct udfb_metrics *mx = udfb_service_metrics(g->svc);
	struct udfb_err err = UDFB_ERR_INIT;
	c->job = job;
	if (udfb_callq_put(g->callq, tenant ? tenant : "", c, &err) < 0) {
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

/* ---- ApplyUdfResource ---- */

static void reply_apply(struct call *c, const struct udfb_apply_out *out)
{
	Udfproto__ApplyUdfResourceResponse__HeadersEntry h = UDFPROTO__APPLY_UDF_RESOURCE_RESPONSE__HEADERS_ENTRY__INIT;
	Udfproto__ApplyUdfResourceResponse__HeadersEntry *hs[1] = { &h };
	Udfproto__ApplyUdfResourceResponse resp = UDFPROTO__APPLY_UDF_RESOURCE_RESPONSE__INIT;
	h.key = "x-authorization";
	h.value = out->token;
	resp.endpoint = out->endpoint;
	resp.n_headers = 1;
	resp.headers = hs;
	size_t len = udfproto__apply_udf_resource_response__get_packed_size(&resp);
	uint8_t *buf = malloc(len ? len : 1);
	udfproto__apply_udf_resource_response__pack(&resp, buf);
	reply(c, 0, NULL, buf, len);
	free(buf);
}

static void slow_path(void *arg)
{
	struct call *c = arg;
	struct udfb_apply_out out = { 0 };
	struct udfb_err err = UDFB_ERR_INIT;
	struct udfb_prepared *p = c->prep;
	c->prep = NULL;
	if (atomic_load(&c->gone)) { /* cancelled while it waited for this worker: start nothing */
		udfb_prepared_free(p);
		udfb_err_set(&err, UDFB_E_DEADLINE, "the call was cancelled before a call worker took it");
		return reply_err(c, &err);
	}
	struct udfb_log_fields f = *udfb_prepared_fields(p);
	char key[UDFB_DIGEST_LEN + 1];
	snprintf(key, sizeof(key), "%s", f.key);
	char *tenant = strdup(f.tenant), *qid = f.query_id ? strdup(f.query_id) : NULL;
	f = (struct udfb_log_fields){ tenant, qid, key };
	if (udfb_service_complete_until(c->g->svc, p, c->deadline_ms, &c->gone, &out, &err) < 0) {
		udfb_logf(UDFB_LOG_WARN, &f, "ApplyUdfResource: %s: %s", udfb_errcat_name(err.cat), err.msg);
		reply_err(c, &err);
	} else {
		udfb_logf(out.accepted ? UDFB_LOG_INFO : UDFB_LOG_DEBUG, &f, "ApplyUdfResource: %s %s",
			  out.accepted ? "accepted, sandbox coming at" : "ready at", out.endpoint);
		reply_apply(c, &out);
	}
	udfb_apply_out_clear(&out);
	free(tenant);
	free(qid);
}

static long long deadline_ms(gpr_timespec dl)
{
	if (gpr_time_cmp(dl, gpr_inf_future(dl.clock_type)) == 0)
		return 0;
	gpr_timespec left = gpr_time_sub(gpr_convert_clock_type(dl, GPR_CLOCK_REALTIME), gpr_now(GPR_CLOCK_REALTIME));
	return udfb_now_ms() + gpr_time_to_millis(left);
}

/* 1: answered from memory into *hit; 0: *out is prepared; -1: err. */
static int prepare_call(struct call *c, struct udfb_prepared **out, struct udfb_apply_out *hit, struct udfb_err *err)
{
	size_t len = 0;
	uint8_t *bytes = payload_bytes(c, &len);
	if (bytes && udfb_request_check_wire(bytes, len, err) < 0) { /* before protobuf-c cuts at a NUL */
		free(bytes);
		return -1;
	}
	Udfproto__ApplyUdfResourceRequest *m =
		bytes ? udfproto__apply_udf_resource_request__unpack(NULL, len, bytes) : NULL;
	free(bytes);
	if (!m)
		return udfb_err_set(err, UDFB_E_INVALID, "request: not an ApplyUdfResourceRequest message");
	struct udfb_import *ims = calloc(m->n_imports + 1, sizeof(*ims));
	for (size_t k = 0; k < m->n_imports; k++)
		ims[k] = (struct udfb_import){ m->imports[k]->location, m->imports[k]->url, m->imports[k]->tag };
	char *tenant = md_get(&c->md, "x-databend-tenant"), *user = md_get(&c->md, "x-databend-user");
	char *qid = md_get(&c->md, "x-databend-query-id"), *ver = md_get(&c->md, "udf_client_version");
	struct udfb_call_meta meta = { tenant, user, qid, ver };
	/* With a tls_client_tenants map, the caller's certificate names the tenants it may act for. */
	const char *acting = tenant ? tenant : udfb_service_config(c->g->svc)->default_tenant;
	int rc =
		udfb_grpc_tls_check_tenant(c->g->tls, c->call, acting, err) < 0 ? -1
		: udfb_service_repeat(c->g->svc, &meta, m->spec, strlen(m->spec), ims, m->n_imports, hit)
			? 1
			: udfb_service_prepare(c->g->svc, out, &meta, m->spec, strlen(m->spec), ims, m->n_imports, err);
	if (rc < 0) {
		struct udfb_log_fields f = { tenant, qid, NULL };
		udfb_logf(UDFB_LOG_WARN, &f, "ApplyUdfResource: %s: %s", udfb_errcat_name(err->cat), err->msg);
	}
	free(tenant), free(user), free(qid), free(ver);
	free(ims);
	udfproto__apply_udf_resource_request__free_unpacked(m, NULL);
	return rc;
}

static void handle_apply(struct call *c)
{
	struct udfb_err err = UDFB_ERR_INIT;
	struct udfb_prepared *p = NULL;
	c->deadline_ms = deadline_ms(c->deadline);
	struct udfb_apply_out out = { 0 };
	int rc = prepare_call(c, &p, &out, &err);
	if (rc < 0)
		return reply_err(c, &err);
	if (rc == 1) {
		reply_apply(c, &out);
		udfb_apply_out_clear(&out);
		return;
	}
	if (udfb_service_lookup(c->g->svc, p, &out)) {
		udfb_prepared_free(p);
		reply_apply(c, &out);
		udfb_apply_out_clear(&out);
		return;
	}
	c->prep = p;
	watch_close(c);
	to_worker(c, slow_path, udfb_prepared_fields(p)->tenant);
}

/* ---- ApplyResource and CreateWorker (Databend's released forms) ---- */

static void meta_of(struct call *c, struct udfb_call_meta *meta, const char *marker)
{
	*meta = (struct udfb_call_meta){ md_get(&c->md, "x-databend-tenant"), md_get(&c->md, "x-databend-user"),
					 md_get(&c->md, "x-databend-query-id"), md_get(&c->md, marker) };
}

static void meta_free(struct udfb_call_meta *m)
{
	free((char *)m->tenant), free((char *)m->user), free((char *)m->query_id), free((char *)m->client_version);
}

static uint8_t *pack_headers_reply(struct call *c, const struct udfb_apply_out *out, size_t *len)
{
	uint8_t *buf = NULL;
	if (c->method == M_APPLY_RESOURCE) {
		Resourceproto__ApplyResourceResponse__HeadersEntry h =
			RESOURCEPROTO__APPLY_RESOURCE_RESPONSE__HEADERS_ENTRY__INIT;
		Resourceproto__ApplyResourceResponse__HeadersEntry *hs[1] = { &h };
		Resourceproto__ApplyResourceResponse r = RESOURCEPROTO__APPLY_RESOURCE_RESPONSE__INIT;
		h.key = "x-authorization";
		h.value = out->token;
		r.endpoint = out->endpoint;
		r.n_headers = 1;
		r.headers = hs;
		*len = resourceproto__apply_resource_response__get_packed_size(&r);
		buf = malloc(*len + 1);
		resourceproto__apply_resource_response__pack(&r, buf);
		return buf;
	}
	return NULL;
}

/* A Worker message over the service's JSON {name, tags, options, created_at, updated_at}. */
struct worker_msg {
	Resourceproto__Worker w;
	Resourceproto__Worker__TagsEntry *tags;
	Resourceproto__Worker__OptionsEntry *options;
	Resourceproto__Worker__TagsEntry **tag_ptrs;
	Resourceproto__Worker__OptionsEntry **option_ptrs;
};

static void worker_msg_init(struct worker_msg *m, json_t *j)
{
	memset(m, 0, sizeof(*m));
	resourceproto__worker__init(&m->w);
	static char empty[] = "";
	m->w.name = (char *)(json_string_value(json_object_get(j, "name")) ?: empty);
	m->w.created_at = (char *)(json_string_value(json_object_get(j, "created_at")) ?: empty);
	m->w.updated_at = (char *)(json_string_value(json_object_get(j, "updated_at")) ?: empty);
	json_t *tags = json_object_get(j, "tags"), *opts = json_object_get(j, "options");
	size_t nt = json_object_size(tags), no = json_object_size(opts), k = 0;
	m->tags = calloc(nt + 1, sizeof(*m->tags));
	m->tag_ptrs = calloc(nt + 1, sizeof(*m->tag_ptrs));
	m->options = calloc(no + 1, sizeof(*m->options));
	m->option_ptrs = calloc(no + 1, sizeof(*m->option_ptrs));
	const char *key;
	json_t *v;
	json_object_foreach(tags, key, v) {
		resourceproto__worker__tags_entry__init(&m->tags[k]);
		m->tags[k].key = (char *)key;
		m->tags[k].value = (char *)json_string_value(v);
		m->tag_ptrs[k] = &m->tags[k];
		k++;
	}
	m->w.n_tags = k;
	m->w.tags = m->tag_ptrs;
	k = 0;
	json_object_foreach(opts, key, v) {
		resourceproto__worker__options_entry__init(&m->options[k]);
		m->options[k].key = (char *)key;
		m->options[k].value = (char *)json_string_value(v);
		m->option_ptrs[k] = &m->options[k];
		k++;
	}
	m->w.n_options = k;
	m->w.options = m->option_ptrs;
}

static void worker_msg_free(struct worker_msg *m)
{
	free(m->tags), free(m->tag_ptrs), free(m->options), free(m->option_ptrs);
}

static void reply_create(struct call *c, const struct udfb_apply_out *out)
{
	Resourceproto__CreateWorkerResponse__HeadersEntry h =
		RESOURCEPROTO__CREATE_WORKER_RESPONSE__HEADERS_ENTRY__INIT;
	Resourceproto__CreateWorkerResponse__HeadersEntry *hs[1] = { &h };
	Resourceproto__CreateWorkerResponse r = RESOURCEPROTO__CREATE_WORKER_RESPONSE__INIT;
	struct worker_msg wm;
	int has_worker = out->worker != NULL;
	if (has_worker) {
		worker_msg_init(&wm, out->worker);
		r.worker = &wm.w;
	}
	if (out->endpoint) {
		h.key = "x-authorization";
		h.value = out->token;
		r.endpoint = out->endpoint;
		r.n_headers = 1;
		r.headers = hs;
	}
	size_t len = resourceproto__create_worker_response__get_packed_size(&r);
	uint8_t *buf = malloc(len + 1);
	resourceproto__create_worker_response__pack(&r, buf);
	reply(c, 0, NULL, buf, len);
	free(buf);
	if (has_worker)
		worker_msg_free(&wm);
}

static void reply_script(struct call *c, const struct udfb_apply_out *out)
{
	if (c->method == M_CREATE_WORKER)
		return reply_create(c, out);
	size_t len = 0;
	uint8_t *buf = pack_headers_reply(c, out, &len);
	reply(c, 0, NULL, buf, len);
	free(buf);
}

static void slow_script(void *arg)
{
	struct call *c = arg;
	struct udfb_apply_out out = { 0 };
	struct udfb_err err = UDFB_ERR_INIT;
	struct udfb_script_call *sc = c->script;
	c->script = NULL;
	const struct udfb_log_fields *f0 = udfb_script_call_fields(sc);
	char *tenant = strdup(f0->tenant), *qid = f0->query_id ? strdup(f0->query_id) : NULL;
	struct udfb_log_fields f = { tenant, qid, NULL };
	const char *what = methods[c->method].path + 1;
	int rc;
	if (atomic_load(&c->gone)) { /* cancelled while it waited for this worker: start nothing */
		udfb_script_call_free(sc);
		rc = udfb_err_set(&err, UDFB_E_DEADLINE, "the call was cancelled before a call worker took it");
	} else {
		rc = udfb_service_script_complete_until(c->g->svc, sc, c->deadline_ms, &c->gone, &out, &err);
	}
	if (rc < 0) {
		udfb_logf(UDFB_LOG_WARN, &f, "%s: %s: %s", what, udfb_errcat_name(err.cat), err.msg);
		reply_err(c, &err);
	} else {
		udfb_logf(out.accepted ? UDFB_LOG_INFO : UDFB_LOG_DEBUG, &f, "%s: %s %s", what,
			  out.accepted ? "accepted, sandbox coming at" : "ready at", out.endpoint);
		reply_script(c, &out);
	}
	udfb_apply_out_clear(&out);
	free(tenant);
	free(qid);
}

/* With a tls_client_tenants map, the caller's certificate names the tenants it may act for. */
static int tls_check(struct call *c, const struct udfb_call_meta *meta, const char *tenant_id, struct udfb_err *err)
{
	const char *acting = meta->tenant	       ? meta->tenant
			     : tenant_id && *tenant_id ? tenant_id
						       : udfb_service_config(c->g->svc)->default_tenant;
	return udfb_grpc_tls_check_tenant(c->g->tls, c->call, acting, err);
}

/* protobuf-c keeps a string up to its first NUL and forgets its length: a
 * message that does not pack back to its own size held one (or was not
 * written canonically, which Databend's prost never does). */
static int canonical(size_t packed, size_t len, const char *what, struct udfb_err *err)
{
	if (packed != len)
		return udfb_err_set(err, UDFB_E_INVALID,
				    "request: %s holds a NUL byte in a string, or is not canonical protobuf", what);
	return 0;
}

/* Both script calls: the fast path here, the rest on a worker thread. */
static void run_script(struct call *c, const struct udfb_call_meta *meta, const struct udfb_worker_req *w,
		       const char *type, const char *script)
{
	struct udfb_err err = UDFB_ERR_INIT;
	struct udfb_apply_out out = { 0 };
	const char *what = methods[c->method].path + 1;
	c->udf_call = 1;
	if (tls_check(c, meta, w ? w->tenant_id : NULL, &err) < 0) {
		/* err says which tenant the certificate may not act for */
	} else if (strcmp(type, "udf") != 0) {
		udfb_err_set(&err, UDFB_E_INVALID, "type: '%.32s' is not supported (only \"udf\")", type);
	} else {
		int rc = udfb_service_script_begin(c->g->svc, &c->script, meta, w, script, strlen(script), &out, &err);
		if (rc == 1) {
			reply_script(c, &out);
			udfb_apply_out_clear(&out);
			return;
		}
		if (rc == 0) {
			watch_close(c);
			return to_worker(c, slow_script, udfb_script_call_fields(c->script)->tenant);
		}
	}
	struct udfb_log_fields f = { meta->tenant, meta->query_id, NULL };
	udfb_logf(UDFB_LOG_WARN, &f, "%s: %s: %s", what, udfb_errcat_name(err.cat), err.msg);
	reply_err(c, &err);
}

static void handle_apply_resource(struct call *c)
{
	size_t len = 0;
	uint8_t *bytes = payload_bytes(c, &len);
	Resourceproto__ApplyResourceRequest *m =
		bytes ? resourceproto__apply_resource_request__unpack(NULL, len, bytes) : NULL;
	free(bytes);
	if (!m)
		return reply(c, 3, "request: not an ApplyResourceRequest message", NULL, 0);
	struct udfb_err err = UDFB_ERR_INIT;
	if (canonical(resourceproto__apply_resource_request__get_packed_size(m), len, "ApplyResourceRequest", &err) <
	    0) {
		resourceproto__apply_resource_request__free_unpacked(m, NULL);
		c->udf_call = 1;
		return reply_err(c, &err);
	}
	struct udfb_call_meta meta;
	meta_of(c, &meta, "resource_client_version");
	run_script(c, &meta, NULL, m->type, m->script);
	meta_free(&meta);
	resourceproto__apply_resource_request__free_unpacked(m, NULL);
}

static struct udfb_kv *kvs(size_t n, void **entries)
{
	struct udfb_kv *v = calloc(n + 1, sizeof(*v));
	for (size_t k = 0; k < n; k++) {
		/* Every map entry message of resource.proto is {base, key, value}. */
		Resourceproto__Worker__TagsEntry *e = entries[k];
		v[k] = (struct udfb_kv){ e->key, e->value };
	}
	return v;
}

static void handle_create_worker(struct call *c)
{
	size_t len = 0;
	uint8_t *bytes = payload_bytes(c, &len);
	Resourceproto__CreateWorkerRequest *m =
		bytes ? resourceproto__create_worker_request__unpack(NULL, len, bytes) : NULL;
	free(bytes);
	if (!m)
		return reply(c, 3, "request: not a CreateWorkerRequest message", NULL, 0);
	struct udfb_err cerr = UDFB_ERR_INIT;
	if (canonical(resourceproto__create_worker_request__get_packed_size(m), len, "CreateWorkerRequest", &cerr) <
	    0) {
		resourceproto__create_worker_request__free_unpacked(m, NULL);
		return reply_err(c, &cerr);
	}
	struct udfb_call_meta meta;
	meta_of(c, &meta, "worker_client_version");
	struct udfb_kv *tags = kvs(m->n_tags, (void **)m->tags), *opts = kvs(m->n_options, (void **)m->options);
	struct udfb_worker_req w = { m->tenant_id, m->name, m->if_not_exists, tags, opts, m->n_tags, m->n_options };
	if (*m->script) {
		run_script(c, &meta, &w, m->type, m->script);
	} else { /* CREATE WORKER: recorded, no sandbox */
		struct udfb_err err = UDFB_ERR_INIT;
		struct udfb_apply_out out = { 0 };
		if (tls_check(c, &meta, m->tenant_id, &err) < 0 ||
		    udfb_service_worker_create(c->g->svc, &meta, &w, &out.worker, &err) < 0)
			reply_err(c, &err);
		else
			reply_create(c, &out);
		udfb_apply_out_clear(&out);
	}
	free(tags);
	free(opts);
	meta_free(&meta);
	resourceproto__create_worker_request__free_unpacked(m, NULL);
}

static void reply_worker(struct call *c, json_t *worker)
{
	struct worker_msg wm;
	worker_msg_init(&wm, worker);
	Resourceproto__AlterWorkerResponse r = RESOURCEPROTO__ALTER_WORKER_RESPONSE__INIT;
	r.worker = &wm.w;
	size_t len = resourceproto__alter_worker_response__get_packed_size(&r);
	uint8_t *buf = malloc(len + 1);
	resourceproto__alter_worker_response__pack(&r, buf);
	reply(c, 0, NULL, buf, len);
	free(buf);
	worker_msg_free(&wm);
}

static void handle_alter_worker(struct call *c)
{
	size_t len = 0;
	uint8_t *bytes = payload_bytes(c, &len);
	Resourceproto__AlterWorkerRequest *m =
		bytes ? resourceproto__alter_worker_request__unpack(NULL, len, bytes) : NULL;
	free(bytes);
	if (!m)
		return reply(c, 3, "request: not an AlterWorkerRequest message", NULL, 0);
	struct udfb_call_meta meta;
	meta_of(c, &meta, "worker_client_version");
	struct udfb_kv *st = kvs(m->n_set_tags, (void **)m->set_tags),
		       *so = kvs(m->n_set_options, (void **)m->set_options);
	struct udfb_worker_alter a = { st,
				       so,
				       m->n_set_tags,
				       m->n_set_options,
				       (const char *const *)m->unset_tags,
				       (const char *const *)m->unset_options,
				       m->n_unset_tags,
				       m->n_unset_options,
				       (int)m->state_action };
	struct udfb_err err = UDFB_ERR_INIT;
	json_t *w = NULL;
	if (tls_check(c, &meta, m->tenant_id, &err) < 0 ||
	    udfb_service_worker_alter(c->g->svc, &meta, m->tenant_id, m->name, &a, &w, &err) < 0)
		reply_err(c, &err);
	else
		reply_worker(c, w);
	json_decref(w);
	free(st);
	free(so);
	meta_free(&meta);
	resourceproto__alter_worker_request__free_unpacked(m, NULL);
}

static void handle_drop_worker(struct call *c)
{
	size_t len = 0;
	uint8_t *bytes = payload_bytes(c, &len);
	Resourceproto__DropWorkerRequest *m =
		bytes ? resourceproto__drop_worker_request__unpack(NULL, len, bytes) : NULL;
	free(bytes);
	if (!m)
		return reply(c, 3, "request: not a DropWorkerRequest message", NULL, 0);
	struct udfb_call_meta meta;
	meta_of(c, &meta, "worker_client_version");
	struct udfb_err err = UDFB_ERR_INIT;
	if (tls_check(c, &meta, m->tenant_id, &err) < 0 ||
	    udfb_service_worker_drop(c->g->svc, &meta, m->tenant_id, m->name, m->if_exists, &err) < 0)
		reply_err(c, &err);
	else
		reply(c, 0, NULL, "", 0);
	meta_free(&meta);
	resourceproto__drop_worker_request__free_unpacked(m, NULL);
}

static void handle_list_workers(struct call *c)
{
	size_t len = 0;
	uint8_t *bytes = payload_bytes(c, &len);
	Resourceproto__ListWorkersRequest *m =
		bytes ? resourceproto__list_workers_request__unpack(NULL, len, bytes) : NULL;
	free(bytes);
	if (!m)
		return reply(c, 3, "request: not a ListWorkersRequest message", NULL, 0);
	struct udfb_call_meta meta;
	meta_of(c, &meta, "worker_client_version");
	struct udfb_err err = UDFB_ERR_INIT;
	json_t *ws = NULL;
	if (tls_check(c, &meta, m->tenant_id, &err) < 0 ||
	    udfb_service_worker_list(c->g->svc, &meta, m->tenant_id, &ws, &err) < 0) {
		reply_err(c, &err);
	} else {
		size_t n = json_array_size(ws);
		struct worker_msg *wm = calloc(n + 1, sizeof(*wm));
		Resourceproto__Worker **ptrs = calloc(n + 1, sizeof(*ptrs));
		for (size_t k = 0; k < n; k++) {
			worker_msg_init(&wm[k], json_array_get(ws, k));
			ptrs[k] = &wm[k].w;
		}
		Resourceproto__ListWorkersResponse r = RESOURCEPROTO__LIST_WORKERS_RESPONSE__INIT;
		r.n_workers = n;
		r.workers = ptrs;
		size_t blen = resourceproto__list_workers_response__get_packed_size(&r);
		uint8_t *buf = malloc(blen + 1);
		resourceproto__list_workers_response__pack(&r, buf);
		reply(c, 0, NULL, buf, blen);
		free(buf);
		for (size_t k = 0; k < n; k++)
			worker_msg_free(&wm[k]);
		free(wm);
		free(ptrs);
	}
	json_decref(ws);
	meta_free(&meta);
	resourceproto__list_workers_request__free_unpacked(m, NULL);
}

/* taskproto.*, notificationproto.*, billingproto.* and anything else. */
static void handle_unknown(struct call *c)
{
	char msg[600];
	size_t n = GRPC_SLICE_LENGTH(c->details.method);
	snprintf(msg, sizeof(msg),
		 "method %.*s is not implemented by udf-builder (it serves UDF sandboxes: "
		 "ResourceService/ApplyResource, WorkerService/*, UdfService/ApplyUdfResource)",
		 (int)(n > 256 ? 256 : n), (const char *)GRPC_SLICE_START_PTR(c->details.method));
	for (char *p = msg; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = '?';
	udfb_debug("grpc: %s", msg);
	reply(c, 12, msg, NULL, 0);
}

/* Count the version marker a call carried; log each marker the first time. */
static void note_marker(struct call *c)
{
	struct udfb_metrics *mx = udfb_service_metrics(c->g->svc);
	for (int k = 0; k < 3; k++) {
		char *v = md_get(&c->md, markers[k]);
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

/* ---- grpc.health.v1.Health/Check ---- */

static void handle_health(struct call *c)
{
	size_t len = 0;
	uint8_t *bytes = payload_bytes(c, &len);
	Grpc__Health__V1__HealthCheckRequest *m =
		bytes ? grpc__health__v1__health_check_request__unpack(NULL, len, bytes) : NULL;
	free(bytes);
	if (!m)
		return reply(c, 3, "request: not a HealthCheckRequest message", NULL, 0);
	int known = !*m->service || strcmp(m->service, "udfproto.UdfService") == 0 ||
		    strcmp(m->service, "resourceproto.ResourceService") == 0 ||
		    strcmp(m->service, "resourceproto.WorkerService") == 0;
	grpc__health__v1__health_check_request__free_unpacked(m, NULL);
	if (!known)
		return reply(c, 5, "unknown service", NULL, 0);
	Grpc__Health__V1__HealthCheckResponse r = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
	r.status = udfb_service_ready(c->g->svc) && !atomic_load(&c->g->stopping)
			   ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
			   : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
	uint8_t buf[16];
	size_t n = grpc__health__v1__health_check_response__pack(&r, buf);
	reply(c, 0, NULL, buf, n);
}

/* ---- the completion queue ---- */

/* ALTER, DROP and SHOW WORKERS write the store (fsync) or, on Kubernetes,
 * ask the API server: on a call-worker thread, never a completion queue's. */
static void statement_job(void *arg)
{
	struct call *c = arg;
	if (c->method == M_ALTER_WORKER)
		handle_alter_worker(c);
	else if (c->method == M_DROP_WORKER)
		handle_drop_worker(c);
	else
		handle_list_workers(c);
}

static void run_statement(struct call *c)
{
	char *tenant = md_get(&c->md, "x-databend-tenant");
	const char *dflt = udfb_service_config(c->g->svc)->default_tenant;
	to_worker(c, statement_job, tenant ? tenant : dflt);
	free(tenant);
}

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
	if (c->method != M_HEALTH && c->method != M_UNKNOWN) {
		struct udfb_err err = UDFB_ERR_INIT;
		if (md_check(&c->md, &err) < 0) {
			udfb_logf(UDFB_LOG_WARN, NULL, "%s: %s", methods[c->method].path, err.msg);
			return reply_err(c, &err);
		}
	}
	if (c->method != M_HEALTH)
		note_marker(c);
	switch (c->method) {
	case M_APPLY:
		c->udf_call = 1;
		handle_apply(c);
		break;
	case M_HEALTH: handle_health(c); break;
	case M_APPLY_RESOURCE: handle_apply_resource(c); break;
	case M_CREATE_WORKER: handle_create_worker(c); break;
	case M_ALTER_WORKER:
	case M_DROP_WORKER:
	case M_LIST_WORKERS: run_statement(c); break;
	default: handle_unknown(c); break;
	}
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
	struct udfb_grpc_server *g = calloc(1, sizeof(*g));
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
	g->threads = calloc((size_t)g->n_threads, sizeof(pthread_t));
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
