/* gRPC front end: see grpc_server.h and docs/service.md.  Each request slot
 * is a struct call whose first member says what its completion means, so a
 * completion-queue tag is always a struct call *. */
#include "grpc_server.h"

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

#include "grpc_tls.h"
#include "hash.h"
#include "health.pb-c.h"
#include "log.h"
#include "pool.h"
#include "udf.pb-c.h"

enum tag_kind { TAG_NEW_CALL, TAG_REPLIED, TAG_SHUTDOWN };
enum method { M_APPLY, M_HEALTH };

struct call {
	enum tag_kind kind;
	enum method method;
	struct udfb_grpc_server *g;
	grpc_call *call;
	gpr_timespec deadline;
	grpc_metadata_array md;
	grpc_byte_buffer *payload;
	grpc_byte_buffer *resp;
	grpc_slice details;
	int cancelled;
	long long t0_ms;
	long long deadline_ms; /* monotonic, 0: none */
	struct udfb_prepared *prep;
};

struct udfb_grpc_server {
	grpc_server *server;
	grpc_completion_queue *cq;
	void *methods[2];
	struct udfb_service *svc;
	struct udfb_pool *workers;
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
	c->method = m;
	c->g = g;
	grpc_metadata_array_init(&c->md);
	grpc_call_error e = grpc_server_request_registered_call(g->server, g->methods[m], &c->call, &c->deadline, &c->md,
								 &c->payload, g->cq, g->cq, c);
	if (e != GRPC_CALL_OK) {
		udfb_error("grpc: cannot arm a request slot (error %d)", (int)e);
		grpc_metadata_array_destroy(&c->md);
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
	grpc_slice_unref(c->details);
	udfb_prepared_free(c->prep);
	free(c);
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
	c->details = grpc_slice_from_copied_string(msg ? msg : "");
	ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[n].data.send_status_from_server.status = (grpc_status_code)code;
	ops[n++].data.send_status_from_server.status_details = code ? &c->details : NULL;
	ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	ops[n++].data.recv_close_on_server.cancelled = &c->cancelled;
	c->kind = TAG_REPLIED;
	if (c->method == M_APPLY)
		udfb_metrics_call(udfb_service_metrics(c->g->svc), code, (double)(udfb_now_ms() - c->t0_ms) / 1000.0);
	grpc_call_error e = grpc_call_start_batch(c->call, ops, n, c, NULL);
	if (e != GRPC_CALL_OK) {
		udfb_error("grpc: cannot send a reply (error %d)", (int)e);
		atomic_fetch_sub(&c->g->inflight, 1);
		free_call(c);
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
	struct udfb_log_fields f = *udfb_prepared_fields(p);
	char key[UDFB_DIGEST_LEN + 1];
	snprintf(key, sizeof(key), "%s", f.key);
	char *tenant = strdup(f.tenant), *qid = f.query_id ? strdup(f.query_id) : NULL;
	f = (struct udfb_log_fields){ tenant, qid, key };
	if (udfb_service_complete(c->g->svc, p, c->deadline_ms, &out, &err) < 0) {
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
	Udfproto__ApplyUdfResourceRequest *m = bytes ? udfproto__apply_udf_resource_request__unpack(NULL, len, bytes) : NULL;
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
	int rc = udfb_grpc_tls_check_tenant(c->g->tls, c->call, acting, err) < 0 ? -1 :
		 udfb_service_repeat(c->g->svc, &meta, m->spec, strlen(m->spec), ims, m->n_imports, hit) ? 1 :
		 udfb_service_prepare(c->g->svc, out, &meta, m->spec, strlen(m->spec), ims, m->n_imports, err);
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
	if (udfb_pool_submit(c->g->workers, slow_path, c) < 0) {
		udfb_err_set(&err, UDFB_E_UNAVAILABLE, "the service is shutting down");
		reply_err(c, &err);
	}
}

/* ---- grpc.health.v1.Health/Check ---- */

static void handle_health(struct call *c)
{
	size_t len = 0;
	uint8_t *bytes = payload_bytes(c, &len);
	Grpc__Health__V1__HealthCheckRequest *m = bytes ? grpc__health__v1__health_check_request__unpack(NULL, len, bytes) : NULL;
	free(bytes);
	if (!m)
		return reply(c, 3, "request: not a HealthCheckRequest message", NULL, 0);
	int known = !*m->service || strcmp(m->service, "udfproto.UdfService") == 0;
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
	if (c->method == M_APPLY)
		handle_apply(c);
	else
		handle_health(c);
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
		struct call *c = ev.tag;
		if (c->kind == TAG_NEW_CALL) {
			on_new_call(c, ev.success);
		} else if (c->kind == TAG_REPLIED) {
			atomic_fetch_sub(&g->inflight, 1);
			free_call(c);
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
	g->methods[M_APPLY] = grpc_server_register_method(g->server, "/udfproto.UdfService/ApplyUdfResource", NULL,
							  GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
	g->methods[M_HEALTH] = grpc_server_register_method(g->server, "/grpc.health.v1.Health/Check", NULL,
							   GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
	grpc_server_credentials *creds = udfb_grpc_tls_credentials(g->tls);
	*port = grpc_server_add_http2_port(g->server, listen, creds);
	grpc_server_credentials_release(creds);
	if (*port <= 0) {
		grpc_server_destroy(g->server);
		grpc_completion_queue_shutdown(g->cq);
		while (grpc_completion_queue_next(g->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type != GRPC_QUEUE_SHUTDOWN)
			;
		grpc_completion_queue_destroy(g->cq);
		udfb_grpc_tls_free(g->tls);
		free(g);
		grpc_shutdown();
		return udfb_err_set(err, UDFB_E_UNAVAILABLE, "listen %s: cannot bind (address in use or not local)", listen);
	}
	grpc_server_start(g->server);
	g->workers = udfb_pool_new(cfg->call_workers, "call");
	for (int k = 0; k < cfg->request_slots; k++)
		arm(g, M_APPLY);
	for (int k = 0; k < 4; k++)
		arm(g, M_HEALTH);
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
	udfb_pool_free(g->workers);
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
