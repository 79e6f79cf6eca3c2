/* The `local` scheduler: sandboxes on this machine, run by an OCI runtime
 * (runc by default, runsc where installed) through its command line.  See
 * docs/service.md ("The local scheduler") and local.h.
 *
 * One record per (tenant, key) keeps the sandbox's two loopback ports for
 * the life of the process, so the endpoint predict() gives is the one
 * ensure() serves, and a restarted sandbox keeps its endpoint.  A live
 * sandbox is reused; one that died, was stopped idle or is unhealthy is
 * reported not alive() and started again by the next ensure().  A reaper
 * thread stops sandboxes idle longer than idle_ms and notices dead ones. */
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "scheduler/bundle.h"
#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/jsonout.h"
#include "scheduler/local.h"
#include "common/clock.h"
#include "common/log.h"
#include "scheduler/netns.h"
#include "scheduler/prefetch.h"
#include "scheduler/probe.h"
#include "scheduler/runtime_spec.h"

#define STATS_FAILURES_MAX 3
#define FORGET_AFTER_MS (60ll * 60 * 1000)

static const char *const state_names[] = { "new", "starting", "ready", "stopping", "stopped", "exited", "failed" };

/* ---- the table (lock held) ---- */

static struct udfb_sandbox_rec *find(struct udfb_local *L, const char *tenant, const char *key)
{
	for (size_t k = 0; k < L->n; k++)
		if (strcmp(L->v[k]->key, key) == 0 && strcmp(L->v[k]->tenant, tenant) == 0)
			return L->v[k];
	return NULL;
}

struct udfb_sandbox_rec *udfb_local_add(struct udfb_local *L, const char *tenant, const char *key)
{
	if (L->n == L->cap) {
		L->cap = L->cap ? 2 * L->cap : 16;
		L->v = udfb_realloc(L->v, L->cap * sizeof(*L->v));
	}
	struct udfb_sandbox_rec *sb = udfb_calloc(1, sizeof(*sb));
	sb->tenant = udfb_strdup(tenant);
	sb->key = udfb_strdup(key);
	sb->pidfd = -1;
	sb->netns = -1;
	sb->egress = -1;
	sb->changed_ms = udfb_now_ms();
	L->v[L->n++] = sb;
	return sb;
}

static struct udfb_sandbox_rec *find_or_add(struct udfb_local *L, const char *tenant, const char *key)
{
	struct udfb_sandbox_rec *sb = find(L, tenant, key);
	return sb ? sb : udfb_local_add(L, tenant, key);
}

static void set_state(struct udfb_local *L, struct udfb_sandbox_rec *sb, enum udfb_sb_state st)
{
	sb->state = st;
	sb->changed_ms = udfb_now_ms();
	pthread_cond_broadcast(&L->changed);
}

static int running(const struct udfb_sandbox_rec *sb)
{
	return sb->state == SB_STARTING || sb->state == SB_READY || sb->state == SB_STOPPING;
}

static void release_ports(struct udfb_local *L, struct udfb_sandbox_rec *sb)
{
	if (L->fwd) {
		udfb_fwd_close(L->fwd, sb->l_udf);
		udfb_fwd_close(L->fwd, sb->l_status);
	}
	sb->l_udf = sb->l_status = NULL;
	sb->udf_port = sb->status_port = 0;
}

static void rec_free(struct udfb_local *L, struct udfb_sandbox_rec *sb)
{
	release_ports(L, sb);
	if (sb->netns >= 0)
		close(sb->netns);
	if (sb->egress >= 0)
		close(sb->egress); /* keep_on_exit: pasta goes on with its sandbox */
	free(sb->egress_addrs);
	free(sb->tenant);
	free(sb->key);
	free(sb->id);
	free(sb->dir);
	if (sb->pidfd >= 0)
		close(sb->pidfd);
	free(sb);
}

/* Records of sandboxes long gone: their ports go back to the pool. */
static void forget_old(struct udfb_local *L)
{
	long long now = udfb_now_ms();
	size_t w = 0;
	for (size_t k = 0; k < L->n; k++) {
		struct udfb_sandbox_rec *sb = L->v[k];
		if (!running(sb) && !sb->busy && now - sb->changed_ms > FORGET_AFTER_MS)
			rec_free(L, sb);
		else
			L->v[w++] = sb;
	}
	L->n = w;
}

/* ---- ports ---- */

static int port_reserved(struct udfb_local *L, int port, const struct udfb_sandbox_rec *self, int running_only)
{
	for (size_t k = 0; k < L->n; k++) {
		const struct udfb_sandbox_rec *sb = L->v[k];
		if (sb != self && (sb->udf_port == port || sb->status_port == port) && (!running_only || running(sb)))
			return 1;
	}
	return 0;
}

/* Bindable on 127.0.0.1 as the stub binds it (SO_REUSEADDR). */
static int port_bindable(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

/* network=namespace: the port is ours once we listen on it (the sandbox
 * binds no host port); network=host: free when bindable, as the stub binds it. */
static int take_port(struct udfb_local *L, struct udfb_sandbox_rec *sb, int port, int which)
{
	if (!L->fwd)
		return port_bindable(port);
	struct sockaddr_storage a = L->bind;
	socklen_t len = L->bind_len;
	if (a.ss_family == AF_INET)
		((struct sockaddr_in *)&a)->sin_port = htons((uint16_t)port);
	else
		((struct sockaddr_in6 *)&a)->sin6_port = htons((uint16_t)port);
	struct udfb_err err = UDFB_ERR_INIT;
	struct udfb_fwd_listener **slot = which ? &sb->l_status : &sb->l_udf;
	int rc = udfb_fwd_listen(L->fwd, (struct sockaddr *)&a, len,
				 which ? UDFB_LOCAL_INNER_STATUS_PORT : UDFB_LOCAL_INNER_UDF_PORT, slot, &err);
	udfb_err_clear(&err);
	return rc == 0;
}

/* Ports of records not running go back to the pool (lock held). */
static void reclaim_ports(struct udfb_local *L, const struct udfb_sandbox_rec *self)
{
	for (size_t k = 0; k < L->n; k++)
		if (L->v[k] != self && !running(L->v[k]) && !L->v[k]->busy && L->v[k]->udf_port)
			release_ports(L, L->v[k]);
}

/* Two free ports, searched from a place that depends on (tenant, key) only,
 * so a key tends to get the same endpoint across restarts of the service.
 * Ports of records not running are taken back only when nothing else is free. */
static int alloc_ports(struct udfb_local *L, struct udfb_sandbox_rec *sb, struct udfb_err *err)
{
	char d[UDFB_DIGEST_LEN + 1];
	cleanup_free char *id = udfb_asprintf("%s\n%s", sb->tenant, sb->key);
	udfb_sha256_digest(id, strlen(id), d);
	long range = L->o.port_max - L->o.port_min + 1;
	long start = (long)(strtoul(udfb_digest_hex(d) + 56, NULL, 16) % (unsigned long)range);
	int old[2] = { sb->udf_port, sb->status_port };
	release_ports(L, sb);
	for (int pass = 0; pass < 2; pass++) {
		int got[2], n = 0;
		if (pass == 1 && L->fwd)
			reclaim_ports(L, sb);
		for (long k = 0; k < range && n < 2; k++) {
			int p = (int)(L->o.port_min + (start + k) % range);
			if (p == old[0] || p == old[1] || port_reserved(L, p, sb, pass) || !take_port(L, sb, p, n))
				continue;
			got[n++] = p;
		}
		if (n == 2) {
			sb->udf_port = got[0];
			sb->status_port = got[1];
			return 0;
		}
		release_ports(L, sb);
	}
	return udfb_err_set(err, UDFB_E_EXHAUSTED, "local scheduler: no two free ports in %ld-%ld", L->o.port_min,
			    L->o.port_max);
}

/* Keep the ports a record has when they are still free: a stable endpoint.
 * Under network=namespace they are held by our listeners, so always. */
static int ensure_ports(struct udfb_local *L, struct udfb_sandbox_rec *sb, struct udfb_err *err)
{
	if (sb->udf_port && L->fwd && sb->l_udf && sb->l_status)
		return 0;
	if (sb->udf_port && !L->fwd && !port_reserved(L, sb->udf_port, sb, 1) &&
	    !port_reserved(L, sb->status_port, sb, 1) && port_bindable(sb->udf_port) && port_bindable(sb->status_port))
		return 0;
	return alloc_ports(L, sb, err);
}

static char *endpoint_of(const struct udfb_local *L, const struct udfb_sandbox_rec *sb)
{
	char *e = udfb_asprintf("http://%s:%d", L->url_host, sb->udf_port);
	return e;
}

/* ---- ensure ---- */

/* What a sandbox was started with: a change (a rotated secret, new
 * operator variables) means a new sandbox.  The image counts by its digest,
 * wherever it was published. */
static void spec_hash(char out[UDFB_DIGEST_LEN + 1], const struct udfb_sandbox_req *req)
{
	struct udfb_sha256 *h = udfb_sha256_new();
	char size[64];
	snprintf(size, sizeof(size), "%lld/%ld", req->memory_bytes, req->cpu_millis);
	const char *parts[] = { req->manifest_digest ? req->manifest_digest : req->image,
				req->auth_keys ? req->auth_keys : "", size };
	for (int k = 0; k < 3; k++)
		udfb_sha256_update(h, parts[k], strlen(parts[k]) + 1);
	for (size_t k = 0; k < req->n_env; k++) {
		udfb_sha256_update(h, req->env[k].name, strlen(req->env[k].name) + 1);
		udfb_sha256_update(h, req->env[k].value, strlen(req->env[k].value) + 1);
	}
	for (size_t k = 0; k < req->n_egress_to; k++) /* a script run as-is: where it may connect */
		udfb_sha256_update(h, req->egress_to[k], strlen(req->egress_to[k]) + 1);
	udfb_sha256_final(h, out);
}

static int check_limits(struct udfb_local *L, const struct udfb_sandbox_rec *self, struct udfb_err *err)
{
	long total = 0, tenant = 0;
	for (size_t k = 0; k < L->n; k++) {
		const struct udfb_sandbox_rec *sb = L->v[k];
		if (sb == self || !(sb->state == SB_STARTING || sb->state == SB_READY))
			continue;
		total++;
		tenant += strcmp(sb->tenant, self->tenant) == 0;
	}
	if (tenant >= L->o.max_per_tenant)
		return udfb_err_set(err, UDFB_E_EXHAUSTED, "tenant '%s': %ld sandboxes run, the limit (max_per_tenant)",
				    self->tenant, tenant);
	if (total >= L->o.max_total)
		return udfb_err_set(err, UDFB_E_EXHAUSTED, "%ld sandboxes run on this machine, the limit (max_total)",
				    total);
	return 0;
}

/* A new generation: ports, container id, bundle directory.  Lock held. */
static int prepare(struct udfb_local *L, struct udfb_sandbox_rec *sb, const char *spec, struct udfb_err *err)
{
	if (check_limits(L, sb, err) < 0 || ensure_ports(L, sb, err) < 0)
		return -1;
	cleanup_free char *label = udfb_tenant_label(sb->tenant);
	free(sb->id);
	free(sb->dir);
	sb->id = udfb_asprintf("udfb-%s-%.12s-%s-%lu", label,
			       udfb_digest_valid(sb->key) ? udfb_digest_hex(sb->key) : "key", L->inst, ++L->gen);
	sb->dir = udfb_path_join(L->sandboxes_dir, sb->id);
	memcpy(sb->spec, spec, UDFB_DIGEST_LEN + 1);
	sb->stats_failures = 0;
	sb->adopted = 0;
	set_state(L, sb, SB_STARTING);
	return 0;
}

/* Start, and once more on new ports if another process took ours meanwhile. */
static int start(struct udfb_local *L, struct udfb_sandbox_rec *sb, const struct udfb_sandbox_req *req,
		 const char *spec, struct udfb_err *err)
{
	int rc = udfb_local_start(L, sb, req, err);
	if (rc == 0 || L->fwd || err->sys_errno != EADDRINUSE)
		return rc; /* under network=namespace the ports are ours: never taken */
	udfb_info("sandbox for key %s: ports %d/%d taken meanwhile; trying others", sb->key, sb->udf_port,
		  sb->status_port);
	udfb_err_clear(err);
	pthread_mutex_lock(&L->mu);
	rc = alloc_ports(L, sb, err);
	if (rc == 0)
		rc = prepare(L, sb, spec, err);
	pthread_mutex_unlock(&L->mu);
	return rc < 0 ? -1 : udfb_local_start(L, sb, req, err);
}

/* Lock held; returns with it held. */
static void stop_locked(struct udfb_local *L, struct udfb_sandbox_rec *sb, enum udfb_sb_state then)
{
	set_state(L, sb, SB_STOPPING);
	pthread_mutex_unlock(&L->mu);
	udfb_local_teardown(L, sb);
	pthread_mutex_lock(&L->mu);
	set_state(L, sb, then);
}

/* A ready record that is still good to hand out (lock held on entry and exit). */
static int reusable(struct udfb_local *L, struct udfb_sandbox_rec *sb, const char *spec)
{
	if (sb->state != SB_READY || strcmp(sb->spec, spec) != 0 || udfb_pidfd_exited(sb->pidfd, 0))
		return 0;
	int port = sb->status_port;
	pthread_mutex_unlock(&L->mu);
	int ok = udfb_probe_health(L->probe_host, port, 1000);
	pthread_mutex_lock(&L->mu);
	return ok && sb->state == SB_READY;
}

static int local_ensure(void *impl, const struct udfb_sandbox_req *req, struct udfb_sandbox *out, struct udfb_err *err)
{
	struct udfb_local *L = impl;
	char spec[UDFB_DIGEST_LEN + 1];
	spec_hash(spec, req);
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&L->mu);
	struct udfb_sandbox_rec *sb = find_or_add(L, req->tenant, req->key);
	sb->busy++;
	int rc = 0, reuse = 0;
	/* The lock is dropped inside: look again until the state holds still. */
	for (;;) {
		while (sb->state == SB_STARTING || sb->state == SB_STOPPING)
			pthread_cond_wait(&L->changed, &L->mu);
		if (sb->state != SB_READY)
			break;
		if ((reuse = reusable(L, sb, spec)))
			break;
		if (sb->state == SB_READY) {
			udfb_info("sandbox %s: dead, unhealthy or started with other settings: starting a new one",
				  sb->id);
			stop_locked(L, sb, SB_EXITED);
		}
	}
	if (!reuse && (rc = prepare(L, sb, spec, err)) == 0) {
		pthread_mutex_unlock(&L->mu);
		rc = start(L, sb, req, spec, err);
		pthread_mutex_lock(&L->mu);
		set_state(L, sb, rc == 0 ? SB_READY : SB_FAILED);
		if (rc == 0)
			udfb_info("sandbox %s: ready at http://%s:%d", sb->id, L->url_host, sb->udf_port);
	}
	if (rc == 0) {
		out->endpoint = endpoint_of(L, sb);
		out->ready = 1;
		sb->touched_wall_ms = udfb_wall_ms();
	}
	sb->busy--;
	pthread_mutex_unlock(&L->mu);
	return rc;
}

/* ---- the other ops ---- */

static int local_predict(void *impl, const char *tenant, const char *key, char **endpoint, struct udfb_err *err)
{
	struct udfb_local *L = impl;
	pthread_mutex_lock(&L->mu);
	struct udfb_sandbox_rec *sb = find_or_add(L, tenant, key);
	int rc = sb->udf_port ? 0 : alloc_ports(L, sb, err);
	if (rc == 0)
		*endpoint = endpoint_of(L, sb);
	pthread_mutex_unlock(&L->mu);
	return rc;
}

static int local_alive(void *impl, const char *tenant, const char *key)
{
	struct udfb_local *L = impl;
	pthread_mutex_lock(&L->mu);
	struct udfb_sandbox_rec *sb = find(L, tenant, key);
	int alive = sb && sb->state == SB_READY && !udfb_pidfd_exited(sb->pidfd, 0);
	if (alive)
		sb->touched_wall_ms = udfb_wall_ms(); /* a query is being planned with it */
	pthread_mutex_unlock(&L->mu);
	return alive;
}

static int local_stop(void *impl, const char *tenant, const char *key, struct udfb_err *err)
{
	(void)err;
	struct udfb_local *L = impl;
	pthread_mutex_lock(&L->mu);
	struct udfb_sandbox_rec *sb = find(L, tenant, key);
	if (sb) {
		sb->busy++;
		while (sb->state == SB_STARTING || sb->state == SB_STOPPING)
			pthread_cond_wait(&L->changed, &L->mu);
		if (sb->state == SB_READY)
			stop_locked(L, sb, SB_STOPPED);
		sb->busy--;
	}
	pthread_mutex_unlock(&L->mu);
	return 0;
}

static int local_list(void *impl, json_t **out, struct udfb_err *err)
{
	(void)err;
	struct udfb_local *L = impl;
	*out = json_array();
	pthread_mutex_lock(&L->mu);
	for (size_t k = 0; k < L->n; k++) {
		const struct udfb_sandbox_rec *sb = L->v[k];
		if (!sb->udf_port)
			continue;
		cleanup_free char *ep = endpoint_of(L, sb);
		json_t *o = udfb_json_must(json_pack("{s:s,s:s,s:s,s:s}", "tenant", sb->tenant, "key", sb->key,
						     "endpoint", ep, "state", state_names[sb->state]));
		if (sb->id)
			json_object_set_new(o, "container", json_string(sb->id));
		json_array_append_new(*out, o);
	}
	pthread_mutex_unlock(&L->mu);
	return 0;
}

/* ---- idleness ---- */

/* "2024-05-01T12:00:00.123456Z" -> ms since the epoch; 0 when unreadable. */
static long long parse_utc_ms(const char *s)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	const char *rest = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
	if (!rest)
		return 0;
	long long ms = (long long)timegm(&tm) * 1000;
	if (*rest == '.') {
		long long frac = 0, scale = 1000;
		for (rest++; *rest >= '0' && *rest <= '9'; rest++) {
			if (scale > 1)
				frac += (long long)(*rest - '0') * (scale /= 10);
		}
		ms += frac;
	}
	return ms;
}

/* The newest of: the last UDF call (/stats), the start, the last hand-out.
 * -1 when /stats did not answer. */
static long long last_activity(const struct udfb_local *L, const struct udfb_sandbox_rec *sb, int status_port)
{
	char url[128];
	snprintf(url, sizeof(url), "http://%s:%d/stats", L->probe_host, status_port);
	struct udfb_err err = UDFB_ERR_INIT;
	int status = 0;
	cleanup_free char *body = NULL;
	udfb_probe_get(&status, &body, url, 1000, &err);
	udfb_err_clear(&err);
	if (status != 200)
		return -1;
	json_t *j = json_loads(body, 0, NULL);
	long long t = parse_utc_ms(json_string_value(json_object_get(j, "last_request_time")));
	json_decref(j);
	if (t < sb->started_wall_ms)
		t = sb->started_wall_ms;
	return t > sb->touched_wall_ms ? t : sb->touched_wall_ms;
}

enum verdict { KEEP, IDLE, DEAD, SICK };

static enum verdict judge(struct udfb_local *L, struct udfb_sandbox_rec *sb, long idle_ms)
{
	if (udfb_pidfd_exited(sb->pidfd, 0))
		return DEAD;
	int port = sb->status_port;
	cleanup_free char *id = udfb_strdup(sb->id);
	pthread_mutex_unlock(&L->mu);
	long long last = last_activity(L, sb, port);
	pthread_mutex_lock(&L->mu);
	if (sb->state != SB_READY || strcmp(sb->id, id) != 0)
		return KEEP; /* changed meanwhile: judged next time */
	if (last < 0)
		return ++sb->stats_failures >= STATS_FAILURES_MAX ? SICK : KEEP;
	sb->stats_failures = 0;
	if (sb->touched_wall_ms > last)
		last = sb->touched_wall_ms;
	return !sb->held && udfb_wall_ms() - last > idle_ms ? IDLE : KEEP;
}

static void stop_judged(struct udfb_local *L, struct udfb_sandbox_rec *sb, enum verdict v, long idle_ms)
{
	char how[64] = "";
	if (v == DEAD) {
		udfb_pidfd_reap(sb->pidfd, how, sizeof(how));
		udfb_warn("sandbox %s: exited (%s); the next call for it starts a new one", sb->id,
			  *how ? how : "status unknown");
	} else if (v == SICK) {
		udfb_warn("sandbox %s: /stats did not answer %d times: stopped", sb->id, STATS_FAILURES_MAX);
	} else {
		udfb_info("sandbox %s: idle for more than %ld ms: stopped", sb->id, idle_ms);
	}
	stop_locked(L, sb, v == IDLE ? SB_STOPPED : SB_EXITED);
}

/* One pass over the ready sandboxes (lock held on entry and exit). */
static int reap_pass(struct udfb_local *L, long idle_ms)
{
	int stopped = 0;
	/* Records are only ever appended while the lock is dropped, and none is
	 * freed while busy: walking by index stays valid. */
	for (size_t k = 0; k < L->n && !L->stopping; k++) {
		struct udfb_sandbox_rec *sb = L->v[k];
		if (sb->state != SB_READY)
			continue;
		sb->busy++;
		enum verdict v = judge(L, sb, idle_ms);
		if (v != KEEP && sb->state == SB_READY) {
			stop_judged(L, sb, v, idle_ms);
			stopped++;
		}
		sb->busy--;
	}
	forget_old(L);
	return stopped;
}

/* For a worker's auto_suspend: how long the ready sandbox has been idle. */
static long long local_idle_for(void *impl, const char *tenant, const char *key)
{
	struct udfb_local *L = impl;
	pthread_mutex_lock(&L->mu);
	struct udfb_sandbox_rec *sb = find(L, tenant, key);
	long long idle = -1;
	if (sb && sb->state == SB_READY) {
		int port = sb->status_port;
		sb->busy++;
		pthread_mutex_unlock(&L->mu);
		long long last = last_activity(L, sb, port);
		pthread_mutex_lock(&L->mu);
		sb->busy--;
		if (last >= 0 && sb->state == SB_READY)
			idle = udfb_wall_ms() - (sb->touched_wall_ms > last ? sb->touched_wall_ms : last);
	}
	pthread_mutex_unlock(&L->mu);
	return idle;
}

static void local_hold(void *impl, const char *tenant, const char *key, int held)
{
	struct udfb_local *L = impl;
	pthread_mutex_lock(&L->mu);
	find_or_add(L, tenant, key)->held = held;
	pthread_mutex_unlock(&L->mu);
}

static int local_reap_idle(void *impl, long idle_ms, struct udfb_err *err)
{
	(void)err;
	struct udfb_local *L = impl;
	pthread_mutex_lock(&L->mu);
	int n = reap_pass(L, idle_ms);
	pthread_mutex_unlock(&L->mu);
	return n;
}

/* The host gained an address since a sandbox's egress table was written:
 * close it there too (the lock is dropped while nft runs). */
static void egress_refresh(struct udfb_local *L)
{
	if (!L->egress.n)
		return;
	cleanup_free char *now = udfb_egress_host_addrs();
	for (size_t k = 0; k < L->n && !L->stopping; k++) {
		struct udfb_sandbox_rec *sb = L->v[k];
		if (sb->state != SB_READY || sb->egress < 0 || sb->netns < 0 || !sb->dir || !sb->egress_addrs ||
		    strcmp(sb->egress_addrs, now) == 0)
			continue;
		sb->busy++;
		int ns = dup(sb->netns);
		char *dir = udfb_strdup(sb->dir);
		pthread_mutex_unlock(&L->mu);
		struct udfb_err err = UDFB_ERR_INIT;
		int rc = ns >= 0 ? udfb_egress_close_addrs(ns, dir, now, &err) : -1;
		if (rc < 0)
			udfb_warn("sandbox %s: %s", dir, err.msg ? err.msg : "dup");
		else
			udfb_info("sandbox %s: the host's addresses changed: egress to %s closed", dir, now);
		udfb_err_clear(&err);
		if (ns >= 0)
			close(ns);
		free(dir);
		pthread_mutex_lock(&L->mu);
		if (rc == 0) {
			free(sb->egress_addrs);
			sb->egress_addrs = udfb_strdup(now);
		}
		sb->busy--;
	}
}

static void *reaper_main(void *arg)
{
	struct udfb_local *L = arg;
	pthread_mutex_lock(&L->mu);
	while (!L->stopping) {
		long long wake = udfb_now_ms() + L->o.reap_interval_ms;
		struct timespec ts = { .tv_sec = wake / 1000, .tv_nsec = (wake % 1000) * 1000000 };
		pthread_cond_timedwait(&L->wake, &L->mu, &ts);
		if (!L->stopping)
			reap_pass(L, L->o.idle_ms);
		if (!L->stopping)
			egress_refresh(L);
	}
	pthread_mutex_unlock(&L->mu);
	return NULL;
}

static int local_ready(void *impl)
{
	(void)impl;
	return udfb_prefetch_ready(); /* the configured bases are unpacked */
}

/* ---- shutdown ---- */

#define TEARDOWN_THREADS 8

struct teardown_job {
	struct udfb_local *L;
	size_t first; /* this thread takes records first, first + 8, ... */
};

static void *teardown_main(void *arg)
{
	struct teardown_job *j = arg;
	for (size_t k = j->first; k < j->L->n; k += TEARDOWN_THREADS)
		if (j->L->v[k]->id)
			udfb_local_teardown(j->L, j->L->v[k]);
	return NULL;
}

static void stop_all(struct udfb_local *L)
{
	size_t n = 0;
	for (size_t k = 0; k < L->n; k++)
		n += L->v[k]->state == SB_READY && L->v[k]->id;
	/* Delete several at once: runsc's delete takes a few hundred ms, and
	 * shutdown should end within the grace period. */
	struct teardown_job jobs[TEARDOWN_THREADS];
	pthread_t t[TEARDOWN_THREADS];
	int started[TEARDOWN_THREADS] = { 0 };
	for (int k = 0; k < TEARDOWN_THREADS; k++) {
		jobs[k] = (struct teardown_job){ L, (size_t)k };
		started[k] = pthread_create(&t[k], NULL, teardown_main, &jobs[k]) == 0;
		if (!started[k])
			teardown_main(&jobs[k]);
	}
	for (int k = 0; k < TEARDOWN_THREADS; k++)
		if (started[k])
			pthread_join(t[k], NULL);
	if (n)
		udfb_info("local scheduler: %zu sandboxes stopped", n);
}

static void local_destroy(void *impl)
{
	struct udfb_local *L = impl;
	udfb_prefetch_stop();
	pthread_mutex_lock(&L->mu);
	L->stopping = 1;
	pthread_cond_broadcast(&L->wake);
	pthread_mutex_unlock(&L->mu);
	if (L->reaper_started)
		pthread_join(L->reaper, NULL);
	if (L->o.keep_on_exit) {
		size_t n = 0;
		for (size_t k = 0; k < L->n; k++)
			n += L->v[k]->state == SB_READY;
		if (n)
			udfb_info("local scheduler: %zu sandboxes left running (keep_on_exit); the next start adopts "
				  "them",
				  n);
	} else {
		stop_all(L);
	}
	for (size_t k = 0; k < L->n; k++)
		rec_free(L, L->v[k]);
	free(L->v);
	udfb_fwd_free(L->fwd);
	udfb_egress_clear(&L->egress);
	free(L->rt_version);
	free(L->url_host);
	free(L->probe_host);
	udfb_ocirt_clear(&L->rt);
	udfb_local_opts_free(&L->o);
	free(L->store);
	free(L->sandboxes_dir);
	pthread_mutex_destroy(&L->mu);
	pthread_cond_destroy(&L->changed);
	pthread_cond_destroy(&L->wake);
	free(L);
}

static const struct udfb_scheduler_ops local_ops = {
	.name = "local",
	.run_scripts = 1,
	.ensure = local_ensure,
	.predict = local_predict,
	.stop = local_stop,
	.list = local_list,
	.reap_idle = local_reap_idle,
	.idle_for = local_idle_for,
	.hold = local_hold,
	.ready = local_ready,
	.alive = local_alive,
	.destroy = local_destroy,
};

/* ---- start ---- */

static int setup_dirs(struct udfb_local *L, struct udfb_err *err)
{
	if (udfb_mkdir_p(L->o.state_dir, 0711, err) < 0 || udfb_mkdir_p(L->sandboxes_dir, 0700, err) < 0 ||
	    udfb_mkdir_p(L->o.runtime_root, 0700, err) < 0 || udfb_layers_init(L->o.layers_dir, err) < 0)
		return -1;
	if (udfb_overlay_probe(L->o.layers_dir, err) < 0)
		return udfb_err_wrap(err,
				     "local scheduler needs overlayfs (root, and a layers_dir on ext4, xfs or tmpfs)");
	return 0;
}

static int has_flag(const char *args, const char *flag)
{
	size_t n = strlen(flag);
	for (const char *p = args; (p = strstr(p, flag)); p += n)
		if ((p == args || p[-1] == ' ' || p[-1] == '\t') && (p[n] == '=' || p[n] == ' ' || !p[n]))
			return 1;
	return 0;
}

/* runsc: the platform (probed unless runtime_args names one), and the
 * kernel network stack of the namespace it is started in (--network=host:
 * its own netstack's loopback would be unreachable from the forwarder). */
static int runsc_args(struct udfb_local *L, char **line, struct udfb_err *err)
{
	const char *args = L->o.runtime_args;
	cleanup_free char *platform = NULL, *scratch = NULL;
	if (!has_flag(args, "--platform") && !has_flag(args, "-platform")) {
		scratch = udfb_asprintf("%s/.probe-%ld", L->o.runtime_root, (long)getpid());
		if (udfb_ocirt_probe_platform(&L->rt, scratch, &platform, err) < 0)
			return -1;
	}
	int net = has_flag(args, "--network") || has_flag(args, "-network");
	/* The spec's seccomp filter is not loaded into gVisor (no --oci-seccomp:
	 * this runsc then fails the sandbox's thread creation): its system calls
	 * go to gVisor's kernel, which runs under gVisor's own filter. */
	*line = udfb_asprintf("%s%s%s%s", args, platform ? " --platform=" : "", platform ? platform : "",
			      net ? "" : " --network=host");
	return 0;
}

/* One runtime: its version, and for runsc its platform. */
static int open_runtime(struct udfb_local *L, const char *bin, struct udfb_err *err)
{
	udfb_ocirt_clear(&L->rt);
	free(L->rt_version);
	L->rt_version = NULL;
	udfb_ocirt_init(&L->rt, bin, L->o.runtime_root, L->o.runtime_args);
	if (udfb_ocirt_version(&L->rt, &L->rt_version, err) < 0)
		return -1;
	if (!udfb_ocirt_is_runsc(L->rt_version))
		return 0;
	cleanup_free char *line = NULL;
	if (runsc_args(L, &line, err) < 0)
		return -1;
	udfb_ocirt_clear(&L->rt);
	udfb_ocirt_init(&L->rt, bin, L->o.runtime_root, line);
	return 0;
}

/* runtime "" (the default): runsc where it starts a sandbox, else runc. */
static int choose_runtime(struct udfb_local *L, struct udfb_err *err)
{
	if (*L->o.runtime)
		return open_runtime(L, L->o.runtime, err) < 0 ? udfb_err_wrap(err, "local scheduler") : 0;
	if (open_runtime(L, "runsc", err) == 0)
		return 0;
	udfb_info("local scheduler: runsc (gVisor) not used: %s", err->msg);
	udfb_err_clear(err);
	return open_runtime(L, "runc", err) < 0 ? udfb_err_wrap(err, "local scheduler") : 0;
}

static int setup_runtime(struct udfb_local *L, struct udfb_err *err)
{
	if (choose_runtime(L, err) < 0)
		return -1;
	char cg[160];
	int have = udfb_local_detect_cgroups(cg, sizeof(cg));
	if (L->o.cgroups_mode == UDFB_LOCAL_CG_ON && !have)
		return udfb_err_set(err, UDFB_E_UNSUPPORTED, "local scheduler: cgroups=on, but %s", cg);
	L->cgroups = L->o.cgroups_mode == UDFB_LOCAL_CG_OFF ? 0 : have;
	struct udfb_buf b;
	udfb_buf_init(&b, 4096);
	for (size_t k = 0; k < L->rt.n_args; k++)
		udfb_buf_printf(&b, " %s", L->rt.args[k]);
	udfb_info(
		"local scheduler: %s (%s%s), network %s, endpoints http://%s:<%ld-%ld>, state in %s, limits: %s%s%s%s",
		L->rt_version, L->rt.bin, b.data ? b.data : "", L->fwd ? "namespace per sandbox" : "host's",
		L->url_host, L->o.port_min, L->o.port_max, L->o.state_dir, L->cgroups ? "" : "none from cgroups (",
		L->cgroups ? "" : cg, L->cgroups ? cg : ")", L->o.seccomp ? ", seccomp" : ", seccomp off");
	udfb_buf_free(&b);
	if (!udfb_ocirt_is_runsc(L->rt_version))
		udfb_warn("local scheduler: sandboxes run under %s, on the host's kernel: a kernel bug in a system "
			  "call the "
			  "seccomp filter allows is an escape to the host; runsc (gVisor, Debian package runsc) puts a "
			  "user-space kernel between them",
			  L->rt.bin);
	if (!L->fwd)
		udfb_warn("local scheduler: network=host: sandboxes share the host's network (they reach the service's "
			  "ports "
			  "and every loopback port); for one tenant per machine only");
	if (L->o.cgroups_mode != UDFB_LOCAL_CG_OFF && !L->cgroups)
		udfb_warn("local scheduler: sandboxes run without memory, CPU and process limits: %s", cg);
	return 0;
}

/* egress_cidrs: tried once on a namespace of our own, so that a missing
 * pasta or nft stops the start rather than every sandbox's. */
static int setup_egress(struct udfb_local *L, struct udfb_err *err)
{
	if (udfb_egress_parse(&L->egress, L->o.egress_cidrs, err) < 0)
		return -1;
	if (!L->egress.n)
		return 0;
	cleanup_free char *dir = NULL, *nets = udfb_egress_describe(&L->egress);
	dir = udfb_asprintf("%s/.egress-probe-%ld", L->o.state_dir, (long)getpid());
	int ns = -1, pasta = -1;
	long long t0 = udfb_now_ms();
	int rc = udfb_mkdir_p(dir, 0700, err);
	if (rc == 0)
		rc = udfb_netns_new(&ns, err);
	if (rc == 0)
		rc = udfb_egress_open(&L->egress, ns, dir, "", &pasta, err);
	udfb_egress_stop(pasta);
	if (ns >= 0)
		close(ns);
	udfb_rm_rf(dir);
	if (rc < 0)
		return udfb_err_wrap(err,
				     "local scheduler: egress_cidrs %s (needs nft, package nftables, and pasta, "
				     "package passt)",
				     nets);
	udfb_info("local scheduler: sandboxes reach %s through pasta (never 169.254.169.254, the host's own "
		  "addresses or the gateway); egress set up in %lld ms",
		  nets, udfb_now_ms() - t0);
	return 0;
}

/* Where endpoints listen and what they are called. */
static int setup_network(struct udfb_local *L, struct udfb_err *err)
{
	int wildcard = udfb_local_parse_addr(L->o.bind_address, 0, &L->bind, &L->bind_len);
	const char *adv = *L->o.advertise_address ? L->o.advertise_address : L->o.bind_address;
	int v6 = strchr(adv, ':') != NULL;
	L->url_host = udfb_asprintf("%s%s%s", v6 ? "[" : "", adv, v6 ? "]" : "");
	if (wildcard)
		L->probe_host = udfb_strdup(L->bind.ss_family == AF_INET6 ? "[::1]" : "127.0.0.1");
	else
		L->probe_host = udfb_asprintf("%s%s%s", L->bind.ss_family == AF_INET6 ? "[" : "", L->o.bind_address,
					      L->bind.ss_family == AF_INET6 ? "]" : "");
	if (L->o.network == UDFB_LOCAL_NET_HOST)
		return 0;
	int fd;
	if (udfb_netns_new(&fd, err) < 0) /* can this process make them at all? */
		return udfb_err_wrap(err, "local scheduler (network=namespace)");
	close(fd);
	if (udfb_fwd_new(&L->fwd, L->o.max_connections, err) < 0 || udfb_fwd_allow(L->fwd, L->o.query_cidrs, err) < 0)
		return -1;
	return setup_egress(L, err);
}

int udfb_scheduler_local_new(struct udfb_scheduler *out, const struct udfb_config *cfg, struct udfb_err *err)
{
	assert(cfg->store); /* the service fills in the default store first */
	struct udfb_local *L = udfb_calloc(1, sizeof(*L));
	pthread_mutex_init(&L->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&L->wake, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&L->changed, NULL);
	L->store = udfb_strdup(cfg->store);
	unsigned char r[3];
	if (RAND_bytes(r, sizeof(r)) != 1)
		abort();
	snprintf(L->inst, sizeof(L->inst), "%02x%02x%02x", r[0], r[1], r[2]);
	int rc = udfb_local_opts_parse(&L->o, cfg->scheduler_opts, cfg->store, err);
	if (rc == 0) {
		L->sandboxes_dir = udfb_path_join(L->o.state_dir, "sandboxes");
		rc = setup_dirs(L, err);
	}
	if (rc == 0)
		rc = setup_network(L, err);
	if (rc == 0)
		rc = setup_runtime(L, err);
	if (rc < 0) {
		local_destroy(L);
		return -1;
	}
	/* Containers outlive `run --detach`; as their subreaper we learn how they end. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	udfb_local_recover(L);
	if (pthread_create(&L->reaper, NULL, reaper_main, L) != 0)
		abort();
	L->reaper_started = 1;
	/* The configured bases are unpacked in the background (prefetch.h). */
	if (udfb_prefetch_start(L->o.layers_dir, cfg, err) < 0) {
		local_destroy(L);
		return -1;
	}
	out->ops = &local_ops;
	out->impl = L;
	return 0;
}
