/* The request path of every method: see rpc.h and docs/service.md.  Each
 * handler decodes its message with protobuf-c, checks it at the edge, asks
 * the service core, and packs the answer; a handler that must wait hands its
 * rest to a call worker through to_worker(). */
#include "service/rpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/alloc.h"
#include "builder/request.h"
#include "common/log.h"
#include "proto/health.pb-c.h"
#include "proto/resource.pb-c.h"
#include "proto/udf.pb-c.h"

/* What waits for a call worker. */
struct udfb_rpc_slow {
	void (*job)(void *rpc);
	char *tenant;
	struct udfb_prepared *prep; /* ApplyUdfResource */
	struct udfb_script_call *script; /* ApplyResource, CreateWorker with a script */
};

/* One step of one call. */
struct rpc {
	struct udfb_service *s;
	const struct udfb_rpc_call *call;
	struct udfb_rpc_reply *out;
	struct udfb_rpc_slow *slow; /* begin: set by to_worker; finish: the part to run */
};

static const char *const rpc_names[UDFB_RPCS] = {
	[UDFB_RPC_APPLY_UDF_RESOURCE] = "udfproto.UdfService/ApplyUdfResource",
	[UDFB_RPC_APPLY_RESOURCE] = "resourceproto.ResourceService/ApplyResource",
	[UDFB_RPC_CREATE_WORKER] = "resourceproto.WorkerService/CreateWorker",
	[UDFB_RPC_ALTER_WORKER] = "resourceproto.WorkerService/AlterWorker",
	[UDFB_RPC_DROP_WORKER] = "resourceproto.WorkerService/DropWorker",
	[UDFB_RPC_LIST_WORKERS] = "resourceproto.WorkerService/ListWorkers",
	[UDFB_RPC_HEALTH] = "grpc.health.v1.Health/Check",
	[UDFB_RPC_UNIMPLEMENTED] = "an unknown method",
};

static const char *rpc_name(const struct rpc *c)
{
	return rpc_names[c->call->rpc < UDFB_RPCS ? c->call->rpc : UDFB_RPC_UNIMPLEMENTED];
}

static int gone(const struct rpc *c)
{
	return c->call->gone && atomic_load(c->call->gone);
}

/* The answer: status, and the message when code is 0. */
static void reply(struct rpc *c, int code, const char *msg, const void *body, size_t len)
{
	udfb_rpc_reply_clear(c->out);
	int udf_call = c->out->udf_call;
	*c->out = (struct udfb_rpc_reply){ .code = code, .udf_call = udf_call };
	if (code) {
		c->out->msg = udfb_strdup(msg ? msg : "");
	} else {
		c->out->body = udfb_malloc(len + 1);
		if (len)
			memcpy(c->out->body, body, len);
		c->out->len = len;
	}
}

static void reply_err(struct rpc *c, struct udfb_err *err)
{
	reply(c, udfb_errcat_grpc_status(err->cat), err->msg, NULL, 0);
	udfb_err_clear(err);
}

/* The rest of c goes to a call worker, queued under tenant. */
static struct udfb_rpc_slow *to_worker(struct rpc *c, void (*job)(void *), const char *tenant)
{
	struct udfb_rpc_slow *w = udfb_calloc(1, sizeof(*w));
	w->job = job;
	w->tenant = udfb_strdup(tenant ? tenant : "");
	c->slow = w;
	return w;
}

static int check_tenant(struct rpc *c, const char *tenant, struct udfb_err *err)
{
	return c->call->check_tenant ? c->call->check_tenant(c->call->ctx, tenant, err) : 0;
}

/* The message's bytes as the transport read them (never NULL: an empty
 * message is a valid one). */
static const uint8_t *payload(const struct udfb_rpc_call *call)
{
	static const uint8_t none[1];
	return call->len ? call->payload : none;
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

/* The call's message of type d, decoded straight from the transport's
 * bytes (the channel capped their size); NULL once the call has been
 * answered INVALID_ARGUMENT naming what it is not.  Every method's message
 * goes through here, so each gets the same checks. */
static void *unpack(struct rpc *c, const ProtobufCMessageDescriptor *d)
{
	const struct udfb_rpc_call *call = c->call;
	ProtobufCMessage *m = call->unreadable ? NULL : protobuf_c_message_unpack(d, NULL, call->len, payload(call));
	struct udfb_err err = UDFB_ERR_INIT;
	if (!m)
		udfb_err_set(&err, UDFB_E_INVALID, "request: not %s %s message",
			     strchr("AEIOU", d->short_name[0]) ? "an" : "a", d->short_name);
	else if (canonical(protobuf_c_message_get_packed_size(m), call->len, d->short_name, &err) < 0) {
		protobuf_c_message_free_unpacked(m, NULL);
		m = NULL;
	}
	if (!m)
		reply_err(c, &err);
	return m;
}

static int key_is(const struct udfb_rpc_md *m, const char *key, size_t n)
{
	return m->key_len == n && strncasecmp(m->key, key, n) == 0;
}

char *udfb_rpc_md_get(const struct udfb_rpc_call *call, const char *key)
{
	size_t n = strlen(key);
	for (size_t k = 0; k < call->n_md; k++)
		if (key_is(&call->md[k], key, n))
			return udfb_strndup(call->md[k].value, call->md[k].value_len);
	return NULL;
}

#define md_get udfb_rpc_md_get

/* The metadata keys this service reads, each checked at the edge before any
 * handler runs (issue 18): gRPC delivers a repeated key as several entries,
 * and md_get would silently take the first, so two values are refused; a
 * value is visible ASCII (what Databend sends: tenant, user, query id,
 * markers) and short.  Other keys are not ours to judge. */
#define MD_VALUE_MAX 256
static const char *const md_checked[] = { "x-databend-tenant",	"x-databend-user",	   "x-databend-query-id",
					  "udf_client_version", "resource_client_version", "worker_client_version" };

static int md_check(const struct udfb_rpc_call *call, struct udfb_err *err)
{
	for (size_t i = 0; i < sizeof(md_checked) / sizeof(md_checked[0]); i++) {
		const char *key = md_checked[i];
		size_t n = strlen(key), seen = 0;
		for (size_t k = 0; k < call->n_md; k++) {
			const struct udfb_rpc_md *m = &call->md[k];
			if (!key_is(m, key, n))
				continue;
			if (++seen > 1)
				return udfb_err_set(err, UDFB_E_INVALID, "metadata %s: given more than once", key);
			const unsigned char *v = (const unsigned char *)m->value;
			if (m->value_len > MD_VALUE_MAX)
				return udfb_err_set(err, UDFB_E_INVALID, "metadata %s: longer than %d bytes", key,
						    MD_VALUE_MAX);
			for (size_t j = 0; j < m->value_len; j++)
				if (v[j] < 0x20 || v[j] > 0x7e)
					return udfb_err_set(err, UDFB_E_INVALID, "metadata %s: not visible ASCII", key);
		}
	}
	return 0;
}

/* ---- ApplyUdfResource ---- */

static void reply_apply(struct rpc *c, const struct udfb_apply_out *out)
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
	uint8_t *buf = udfb_malloc(len ? len : 1);
	udfproto__apply_udf_resource_response__pack(&resp, buf);
	reply(c, 0, NULL, buf, len);
	free(buf);
}

static void slow_path(void *arg)
{
	struct rpc *c = arg;
	struct udfb_apply_out out = { 0 };
	struct udfb_err err = UDFB_ERR_INIT;
	struct udfb_prepared *p = c->slow->prep;
	c->slow->prep = NULL;
	if (gone(c)) { /* cancelled while it waited for this worker: start nothing */
		udfb_prepared_free(p);
		udfb_err_set(&err, UDFB_E_DEADLINE, "the call was cancelled before a call worker took it");
		return reply_err(c, &err);
	}
	struct udfb_log_fields f = *udfb_prepared_fields(p);
	char key[UDFB_DIGEST_LEN + 1];
	snprintf(key, sizeof(key), "%s", f.key);
	char *tenant = udfb_strdup(f.tenant), *qid = f.query_id ? udfb_strdup(f.query_id) : NULL;
	f = (struct udfb_log_fields){ tenant, qid, key };
	if (udfb_service_complete_until(c->s, p, c->call->deadline_ms, c->call->gone, &out, &err) < 0) {
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

/* 1: answered from memory into *hit; 0: *out is prepared; -1: err. */
static int prepare_call(struct rpc *c, struct udfb_prepared **out, struct udfb_apply_out *hit, struct udfb_err *err)
{
	const struct udfb_rpc_call *call = c->call;
	/* Checked before protobuf-c, which would cut a string at a NUL. */
	if (!call->unreadable && udfb_request_check_wire(payload(call), call->len, err) < 0)
		return -1;
	Udfproto__ApplyUdfResourceRequest *m =
		call->unreadable ? NULL : udfproto__apply_udf_resource_request__unpack(NULL, call->len, payload(call));
	if (!m)
		return udfb_err_set(err, UDFB_E_INVALID, "request: not an ApplyUdfResourceRequest message");
	struct udfb_import *ims = udfb_calloc(m->n_imports + 1, sizeof(*ims));
	for (size_t k = 0; k < m->n_imports; k++)
		ims[k] = (struct udfb_import){ m->imports[k]->location, m->imports[k]->url, m->imports[k]->tag };
	char *tenant = md_get(c->call, "x-databend-tenant"), *user = md_get(c->call, "x-databend-user");
	char *qid = md_get(c->call, "x-databend-query-id"), *ver = md_get(c->call, "udf_client_version");
	struct udfb_call_meta meta = { tenant, user, qid, ver };
	/* With a tls_client_tenants map, the caller's certificate names the tenants it may act for. */
	const char *acting = tenant ? tenant : udfb_service_config(c->s)->default_tenant;
	int rc = check_tenant(c, acting, err) < 0 ? -1
		 : udfb_service_repeat(c->s, &meta, m->spec, strlen(m->spec), ims, m->n_imports, hit)
			 ? 1
			 : udfb_service_prepare(c->s, out, &meta, m->spec, strlen(m->spec), ims, m->n_imports, err);
	if (rc < 0) {
		struct udfb_log_fields f = { tenant, qid, NULL };
		udfb_logf(UDFB_LOG_WARN, &f, "ApplyUdfResource: %s: %s", udfb_errcat_name(err->cat), err->msg);
	}
	free(tenant), free(user), free(qid), free(ver);
	free(ims);
	udfproto__apply_udf_resource_request__free_unpacked(m, NULL);
	return rc;
}

static void handle_apply(struct rpc *c)
{
	struct udfb_err err = UDFB_ERR_INIT;
	struct udfb_prepared *p = NULL;
	struct udfb_apply_out out = { 0 };
	int rc = prepare_call(c, &p, &out, &err);
	if (rc < 0)
		return reply_err(c, &err);
	if (rc == 1) {
		reply_apply(c, &out);
		udfb_apply_out_clear(&out);
		return;
	}
	if (udfb_service_lookup(c->s, p, &out)) {
		udfb_prepared_free(p);
		reply_apply(c, &out);
		udfb_apply_out_clear(&out);
		return;
	}
	to_worker(c, slow_path, udfb_prepared_fields(p)->tenant)->prep = p;
}

/* ---- ApplyResource and CreateWorker (Databend's released forms) ---- */

static void meta_of(struct rpc *c, struct udfb_call_meta *meta, const char *marker)
{
	*meta = (struct udfb_call_meta){ md_get(c->call, "x-databend-tenant"), md_get(c->call, "x-databend-user"),
					 md_get(c->call, "x-databend-query-id"), md_get(c->call, marker) };
}

static void meta_free(struct udfb_call_meta *m)
{
	free((char *)m->tenant), free((char *)m->user), free((char *)m->query_id), free((char *)m->client_version);
}

static uint8_t *pack_headers_reply(struct rpc *c, const struct udfb_apply_out *out, size_t *len)
{
	uint8_t *buf = NULL;
	if (c->call->rpc == UDFB_RPC_APPLY_RESOURCE) {
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
		buf = udfb_malloc(*len + 1);
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
	m->tags = udfb_calloc(nt + 1, sizeof(*m->tags));
	m->tag_ptrs = udfb_calloc(nt + 1, sizeof(*m->tag_ptrs));
	m->options = udfb_calloc(no + 1, sizeof(*m->options));
	m->option_ptrs = udfb_calloc(no + 1, sizeof(*m->option_ptrs));
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

static void reply_create(struct rpc *c, const struct udfb_apply_out *out)
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
	uint8_t *buf = udfb_malloc(len + 1);
	resourceproto__create_worker_response__pack(&r, buf);
	reply(c, 0, NULL, buf, len);
	free(buf);
	if (has_worker)
		worker_msg_free(&wm);
}

static void reply_script(struct rpc *c, const struct udfb_apply_out *out)
{
	if (c->call->rpc == UDFB_RPC_CREATE_WORKER)
		return reply_create(c, out);
	size_t len = 0;
	uint8_t *buf = pack_headers_reply(c, out, &len);
	reply(c, 0, NULL, buf, len);
	free(buf);
}

static void slow_script(void *arg)
{
	struct rpc *c = arg;
	struct udfb_apply_out out = { 0 };
	struct udfb_err err = UDFB_ERR_INIT;
	struct udfb_script_call *sc = c->slow->script;
	c->slow->script = NULL;
	const struct udfb_log_fields *f0 = udfb_script_call_fields(sc);
	char *tenant = udfb_strdup(f0->tenant), *qid = f0->query_id ? udfb_strdup(f0->query_id) : NULL;
	struct udfb_log_fields f = { tenant, qid, NULL };
	const char *what = rpc_name(c);
	int rc;
	if (gone(c)) { /* cancelled while it waited for this worker: start nothing */
		udfb_script_call_free(sc);
		rc = udfb_err_set(&err, UDFB_E_DEADLINE, "the call was cancelled before a call worker took it");
	} else {
		rc = udfb_service_script_complete_until(c->s, sc, c->call->deadline_ms, c->call->gone, &out, &err);
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
static int tls_check(struct rpc *c, const struct udfb_call_meta *meta, const char *tenant_id, struct udfb_err *err)
{
	const char *acting = meta->tenant	       ? meta->tenant
			     : tenant_id && *tenant_id ? tenant_id
						       : udfb_service_config(c->s)->default_tenant;
	return check_tenant(c, acting, err);
}

/* Both script calls: the fast path here, the rest on a worker thread. */
static void run_script(struct rpc *c, const struct udfb_call_meta *meta, const struct udfb_worker_req *w,
		       const char *type, const char *script)
{
	struct udfb_err err = UDFB_ERR_INIT;
	struct udfb_apply_out out = { 0 };
	const char *what = rpc_name(c);
	c->out->udf_call = 1;
	if (tls_check(c, meta, w ? w->tenant_id : NULL, &err) < 0) {
		/* err says which tenant the certificate may not act for */
	} else if (strcmp(type, "udf") != 0) {
		udfb_err_set(&err, UDFB_E_INVALID, "type: '%.32s' is not supported (only \"udf\")", type);
	} else {
		struct udfb_script_call *sc = NULL;
		int rc = udfb_service_script_begin(c->s, &sc, meta, w, script, strlen(script), &out, &err);
		if (rc == 1) {
			reply_script(c, &out);
			udfb_apply_out_clear(&out);
			return;
		}
		if (rc == 0) {
			to_worker(c, slow_script, udfb_script_call_fields(sc)->tenant)->script = sc;
			return;
		}
	}
	struct udfb_log_fields f = { meta->tenant, meta->query_id, NULL };
	udfb_logf(UDFB_LOG_WARN, &f, "%s: %s: %s", what, udfb_errcat_name(err.cat), err.msg);
	reply_err(c, &err);
}

static void handle_apply_resource(struct rpc *c)
{
	Resourceproto__ApplyResourceRequest *m = unpack(c, &resourceproto__apply_resource_request__descriptor);
	if (!m)
		return;
	struct udfb_call_meta meta;
	meta_of(c, &meta, "resource_client_version");
	run_script(c, &meta, NULL, m->type, m->script);
	meta_free(&meta);
	resourceproto__apply_resource_request__free_unpacked(m, NULL);
}

static struct udfb_kv *kvs(size_t n, void **entries)
{
	struct udfb_kv *v = udfb_calloc(n + 1, sizeof(*v));
	for (size_t k = 0; k < n; k++) {
		/* Every map entry message of resource.proto is {base, key, value}. */
		Resourceproto__Worker__TagsEntry *e = entries[k];
		v[k] = (struct udfb_kv){ e->key, e->value };
	}
	return v;
}

static void handle_create_worker(struct rpc *c)
{
	Resourceproto__CreateWorkerRequest *m = unpack(c, &resourceproto__create_worker_request__descriptor);
	if (!m)
		return;
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
		    udfb_service_worker_create(c->s, &meta, &w, &out.worker, &err) < 0)
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

static void reply_worker(struct rpc *c, json_t *worker)
{
	struct worker_msg wm;
	worker_msg_init(&wm, worker);
	Resourceproto__AlterWorkerResponse r = RESOURCEPROTO__ALTER_WORKER_RESPONSE__INIT;
	r.worker = &wm.w;
	size_t len = resourceproto__alter_worker_response__get_packed_size(&r);
	uint8_t *buf = udfb_malloc(len + 1);
	resourceproto__alter_worker_response__pack(&r, buf);
	reply(c, 0, NULL, buf, len);
	free(buf);
	worker_msg_free(&wm);
}

static void handle_alter_worker(struct rpc *c)
{
	Resourceproto__AlterWorkerRequest *m = unpack(c, &resourceproto__alter_worker_request__descriptor);
	if (!m)
		return;
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
	    udfb_service_worker_alter(c->s, &meta, m->tenant_id, m->name, &a, &w, &err) < 0)
		reply_err(c, &err);
	else
		reply_worker(c, w);
	json_decref(w);
	free(st);
	free(so);
	meta_free(&meta);
	resourceproto__alter_worker_request__free_unpacked(m, NULL);
}

static void handle_drop_worker(struct rpc *c)
{
	Resourceproto__DropWorkerRequest *m = unpack(c, &resourceproto__drop_worker_request__descriptor);
	if (!m)
		return;
	struct udfb_call_meta meta;
	meta_of(c, &meta, "worker_client_version");
	struct udfb_err err = UDFB_ERR_INIT;
	if (tls_check(c, &meta, m->tenant_id, &err) < 0 ||
	    udfb_service_worker_drop(c->s, &meta, m->tenant_id, m->name, m->if_exists, &err) < 0)
		reply_err(c, &err);
	else
		reply(c, 0, NULL, "", 0);
	meta_free(&meta);
	resourceproto__drop_worker_request__free_unpacked(m, NULL);
}

static void handle_list_workers(struct rpc *c)
{
	Resourceproto__ListWorkersRequest *m = unpack(c, &resourceproto__list_workers_request__descriptor);
	if (!m)
		return;
	struct udfb_call_meta meta;
	meta_of(c, &meta, "worker_client_version");
	struct udfb_err err = UDFB_ERR_INIT;
	json_t *ws = NULL;
	if (tls_check(c, &meta, m->tenant_id, &err) < 0 ||
	    udfb_service_worker_list(c->s, &meta, m->tenant_id, &ws, &err) < 0) {
		reply_err(c, &err);
	} else {
		size_t n = json_array_size(ws);
		struct worker_msg *wm = udfb_calloc(n + 1, sizeof(*wm));
		Resourceproto__Worker **ptrs = udfb_calloc(n + 1, sizeof(*ptrs));
		for (size_t k = 0; k < n; k++) {
			worker_msg_init(&wm[k], json_array_get(ws, k));
			ptrs[k] = &wm[k].w;
		}
		Resourceproto__ListWorkersResponse r = RESOURCEPROTO__LIST_WORKERS_RESPONSE__INIT;
		r.n_workers = n;
		r.workers = ptrs;
		size_t blen = resourceproto__list_workers_response__get_packed_size(&r);
		uint8_t *buf = udfb_malloc(blen + 1);
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
static void handle_unknown(struct rpc *c)
{
	char msg[600];
	size_t n = c->call->path_len;
	snprintf(msg, sizeof(msg),
		 "method %.*s is not implemented by udf-builder (it serves UDF sandboxes: "
		 "ResourceService/ApplyResource, WorkerService/*, UdfService/ApplyUdfResource)",
		 (int)(n > 256 ? 256 : n), c->call->path ? c->call->path : "");
	for (char *p = msg; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = '?';
	udfb_debug("grpc: %s", msg);
	reply(c, 12, msg, NULL, 0);
}

/* ---- grpc.health.v1.Health/Check ---- */

static void handle_health(struct rpc *c)
{
	Grpc__Health__V1__HealthCheckRequest *m = unpack(c, &grpc__health__v1__health_check_request__descriptor);
	if (!m)
		return;
	int known = !*m->service || strcmp(m->service, "udfproto.UdfService") == 0 ||
		    strcmp(m->service, "resourceproto.ResourceService") == 0 ||
		    strcmp(m->service, "resourceproto.WorkerService") == 0;
	grpc__health__v1__health_check_request__free_unpacked(m, NULL);
	if (!known)
		return reply(c, 5, "unknown service", NULL, 0);
	Grpc__Health__V1__HealthCheckResponse r = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
	r.status = udfb_service_ready(c->s) && !c->call->stopping
			   ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
			   : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
	uint8_t buf[16];
	size_t n = grpc__health__v1__health_check_response__pack(&r, buf);
	reply(c, 0, NULL, buf, n);
}

/* ALTER, DROP and SHOW WORKERS write the store (fsync) or, on Kubernetes,
 * ask the API server: on a call-worker thread, never a completion queue's. */
static void statement_job(void *arg)
{
	struct rpc *c = arg;
	if (c->call->rpc == UDFB_RPC_ALTER_WORKER)
		handle_alter_worker(c);
	else if (c->call->rpc == UDFB_RPC_DROP_WORKER)
		handle_drop_worker(c);
	else
		handle_list_workers(c);
}

static void run_statement(struct rpc *c)
{
	char *tenant = md_get(c->call, "x-databend-tenant");
	const char *dflt = udfb_service_config(c->s)->default_tenant;
	to_worker(c, statement_job, tenant ? tenant : dflt);
	free(tenant);
}

/* ---- dispatch ---- */

int udfb_rpc_begin(struct udfb_service *s, const struct udfb_rpc_call *call, struct udfb_rpc_reply *reply_out,
		   struct udfb_rpc_slow **slow)
{
	memset(reply_out, 0, sizeof(*reply_out));
	*slow = NULL;
	struct rpc c = { s, call, reply_out, NULL };
	if (call->rpc != UDFB_RPC_HEALTH && call->rpc != UDFB_RPC_UNIMPLEMENTED) {
		struct udfb_err err = UDFB_ERR_INIT;
		if (md_check(call, &err) < 0) {
			udfb_logf(UDFB_LOG_WARN, NULL, "/%s: %s", rpc_name(&c), err.msg);
			reply_err(&c, &err);
			return 1;
		}
	}
	switch (call->rpc) {
	case UDFB_RPC_APPLY_UDF_RESOURCE:
		reply_out->udf_call = 1;
		handle_apply(&c);
		break;
	case UDFB_RPC_HEALTH: handle_health(&c); break;
	case UDFB_RPC_APPLY_RESOURCE:
		reply_out->udf_call = 1;
		handle_apply_resource(&c);
		break;
	case UDFB_RPC_CREATE_WORKER: handle_create_worker(&c); break;
	case UDFB_RPC_ALTER_WORKER:
	case UDFB_RPC_DROP_WORKER:
	case UDFB_RPC_LIST_WORKERS: run_statement(&c); break;
	default: handle_unknown(&c); break;
	}
	*slow = c.slow;
	return c.slow ? 0 : 1;
}

const char *udfb_rpc_slow_tenant(const struct udfb_rpc_slow *w)
{
	return w->tenant;
}

void udfb_rpc_finish(struct udfb_service *s, struct udfb_rpc_slow *slow, const struct udfb_rpc_call *call,
		     struct udfb_rpc_reply *reply_out)
{
	int udf_call = reply_out->udf_call;
	memset(reply_out, 0, sizeof(*reply_out));
	reply_out->udf_call = udf_call;
	struct rpc c = { s, call, reply_out, slow };
	slow->job(&c);
	udfb_rpc_slow_free(slow);
}

void udfb_rpc_slow_free(struct udfb_rpc_slow *w)
{
	if (!w)
		return;
	udfb_prepared_free(w->prep);
	udfb_script_call_free(w->script);
	free(w->tenant);
	free(w);
}

void udfb_rpc_reply_clear(struct udfb_rpc_reply *r)
{
	free(r->msg);
	free(r->body);
	r->msg = NULL;
	r->body = NULL;
	r->len = 0;
}
