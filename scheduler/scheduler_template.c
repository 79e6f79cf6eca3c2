/* The `template` scheduler: see scheduler.h.  For operators whose sandboxes
 * are started by something else (a controller, a warm pool): the endpoint is
 * a pattern over the tenant and the key, and every sandbox counts as ready. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/hash.h"
#include "common/jsonout.h"
#include "scheduler/scheduler.h"

struct tmpl {
	char *pattern;
	pthread_mutex_t mu;
	json_t *handed_out; /* "tenant\nkey" -> endpoint, least recently handed out first */
	size_t max_listed; /* bound of handed_out: every distinct build adds one */
};

void udfb_sandbox_clear(struct udfb_sandbox *s)
{
	free(s->endpoint);
	s->endpoint = NULL;
}

static int render(char **out, const char *pattern, const char *tenant, const char *key, struct udfb_err *err)
{
	struct udfb_buf b;
	udfb_buf_init(&b, 4096);
	char *label = udfb_tenant_label(tenant);
	const char *hex = udfb_digest_valid(key) ? udfb_digest_hex(key) : key;
	int rc = 0;
	for (const char *p = pattern; *p && rc == 0;) {
		if (strncmp(p, "{key12}", 7) == 0)
			rc = udfb_buf_printf(&b, "%.12s", hex), p += 7;
		else if (strncmp(p, "{key}", 5) == 0)
			rc = udfb_buf_addstr(&b, hex), p += 5;
		else if (strncmp(p, "{tenant}", 8) == 0)
			rc = udfb_buf_addstr(&b, label), p += 8;
		else if (*p == '{')
			rc = udfb_err_set(
				err, UDFB_E_INVALID,
				"endpoint-template '%s': unknown placeholder at '%.16s' (use {key}, {key12}, {tenant})",
				pattern, p);
		else
			rc = udfb_buf_add(&b, p++, 1);
	}
	free(label);
	if (rc < 0) {
		udfb_buf_free(&b);
		return err->msg ? -1 : udfb_err_set(err, UDFB_E_INVALID, "endpoint-template: the endpoint is too long");
	}
	*out = udfb_buf_steal(&b, NULL);
	return 0;
}

static int tmpl_predict(void *impl, const char *tenant, const char *key, char **endpoint, struct udfb_err *err)
{
	struct tmpl *t = impl;
	return render(endpoint, t->pattern, tenant, key, err);
}

static int tmpl_ensure(void *impl, const struct udfb_sandbox_req *req, struct udfb_sandbox *out, struct udfb_err *err)
{
	struct tmpl *t = impl;
	memset(out, 0, sizeof(*out));
	if (render(&out->endpoint, t->pattern, req->tenant, req->key, err) < 0)
		return -1;
	out->ready = 1;
	char *id = udfb_asprintf("%s\n%s", req->tenant, req->key);
	pthread_mutex_lock(&t->mu);
	/* jansson keeps insertion order: deleted and set again, the id moves
	 * to the end; past the bound the least recent goes (it is only listed). */
	json_object_del(t->handed_out, id);
	json_object_set_new(t->handed_out, id, json_string(out->endpoint));
	while (json_object_size(t->handed_out) > t->max_listed) {
		char *oldest = udfb_strdup(json_object_iter_key(json_object_iter(t->handed_out)));
		json_object_del(t->handed_out, oldest);
		free(oldest);
	}
	pthread_mutex_unlock(&t->mu);
	free(id);
	return 0;
}

static int tmpl_stop(void *impl, const char *tenant, const char *key, struct udfb_err *err)
{
	(void)err;
	struct tmpl *t = impl;
	char *id = udfb_asprintf("%s\n%s", tenant, key);
	pthread_mutex_lock(&t->mu);
	json_object_del(t->handed_out, id);
	pthread_mutex_unlock(&t->mu);
	free(id);
	return 0;
}

static int tmpl_list(void *impl, json_t **out, struct udfb_err *err)
{
	(void)err;
	struct tmpl *t = impl;
	*out = json_array();
	pthread_mutex_lock(&t->mu);
	const char *id;
	json_t *ep;
	json_object_foreach(t->handed_out, id, ep) {
		const char *nl = strchr(id, '\n');
		char *tenant = udfb_strndup(id, (size_t)(nl - id));
		json_array_append_new(*out, udfb_json_must(json_pack("{s:s,s:s,s:O,s:s}", "tenant", tenant, "key",
								     nl + 1, "endpoint", ep, "state", "ready")));
		free(tenant);
	}
	pthread_mutex_unlock(&t->mu);
	return 0;
}

static int tmpl_reap_idle(void *impl, long idle_ms, struct udfb_err *err)
{
	(void)impl, (void)idle_ms, (void)err;
	return 0; /* the operator's sandboxes: idleness is theirs to manage */
}

static int tmpl_ready(void *impl)
{
	(void)impl;
	return 1;
}

static void tmpl_destroy(void *impl)
{
	struct tmpl *t = impl;
	json_decref(t->handed_out);
	pthread_mutex_destroy(&t->mu);
	free(t->pattern);
	free(t);
}

static const struct udfb_scheduler_ops template_ops = {
	.name = "template",
	.ensure = tmpl_ensure,
	.predict = tmpl_predict,
	.stop = tmpl_stop,
	.list = tmpl_list,
	.reap_idle = tmpl_reap_idle,
	.ready = tmpl_ready,
	.destroy = tmpl_destroy,
};

int udfb_scheduler_template_new(struct udfb_scheduler *out, const char *pattern, size_t max_listed,
				struct udfb_err *err)
{
	char *probe = NULL;
	if (strncmp(pattern, "http://", 7) != 0)
		return udfb_err_set(err, UDFB_E_INVALID, "endpoint-template '%s': must start with http://", pattern);
	if (render(&probe, pattern, "tenant", "sha256:0000000000000000000000000000000000000000000000000000000000000000",
		   err) < 0)
		return -1;
	free(probe);
	struct tmpl *t = udfb_calloc(1, sizeof(*t));
	t->pattern = udfb_strdup(pattern);
	pthread_mutex_init(&t->mu, NULL);
	t->handed_out = json_object();
	t->max_listed = max_listed ? max_listed : 1;
	out->ops = &template_ops;
	out->impl = t;
	return 0;
}
