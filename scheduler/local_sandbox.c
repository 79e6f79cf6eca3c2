/* One sandbox of the `local` scheduler, start to stop (see local.h):
 *
 *   <state_dir>/sandboxes/<id>/   the bundle, 0700 (config.json holds the token)
 *       config.json               the OCI runtime spec (runtime_spec.c)
 *       rootfs/                   a read-only overlay of the image's layers (bundle.c)
 *       log                       the container's stdout and stderr, and the runtime's errors
 *       sandbox.json              tenant, key, ports, container id: for a later process to adopt or remove it
 *       pid                       the container's first process, from `run --pid-file`
 *       egress.nft, pasta.pid     with egress_cidrs: the namespace's ruleset, its pasta (egress.h)
 *       egress.log, pasta.log     what nft and pasta said
 *
 * Under network=namespace the sandbox gets a network namespace of its own
 * (netns.h), listens on 127.0.0.1:8815 and :8080 there, and the service's
 * forwarder (forward.h) carries connections to its two host ports in.
 *
 * Ready means GET /health on its status port answered "1" (the stub binds
 * the UDF port first, so the UDF port is accepting calls too). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>

#include "scheduler/bundle.h"
#include "scheduler/egress.h"
#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/jsonout.h"
#include "scheduler/local.h"
#include "common/clock.h"
#include "common/log.h"
#include "scheduler/netns.h"
#include "scheduler/probe.h"
#include "scheduler/runtime_spec.h"

#define HEALTH_POLL_MS 5
#define LOG_TAIL_BYTES 8192
#define LINE_MAX_CHARS 300
#define STOP_WAIT_MS 3000

static const char *const bundle_files[] = { "config.json", "sandbox.json", "pid",	"log", "egress.nft",
					    "egress.log",  "pasta.pid",	   "pasta.log", NULL };

static int write_json(const char *dir, const char *name, json_t *j, struct udfb_err *err)
{
	cleanup_free char *path = udfb_path_join(dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return udfb_err_sys(err, errno, "create %s", path);
	int rc = json_dumpfd(j, fd, JSON_COMPACT);
	if (close(fd) < 0 || rc < 0)
		return udfb_err_sys(err, errno ? errno : EIO, "write %s", path);
	return 0;
}

/* The last non-empty line of the sandbox's log, printable, at most 300 chars. */
static void log_tail(const struct udfb_sandbox_rec *sb, char *out, size_t n)
{
	out[0] = '\0';
	cleanup_free char *path = udfb_path_join(sb->dir, "log");
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return;
	char buf[LOG_TAIL_BYTES + 1];
	off_t from = st.st_size > LOG_TAIL_BYTES ? st.st_size - LOG_TAIL_BYTES : 0;
	ssize_t got = pread(fd, buf, LOG_TAIL_BYTES, from);
	if (got <= 0)
		return;
	buf[got] = '\0';
	while (got > 0 && (buf[got - 1] == '\n' || buf[got - 1] == '\r' || buf[got - 1] == ' '))
		buf[--got] = '\0';
	char *line = strrchr(buf, '\n');
	line = line ? line + 1 : buf;
	size_t k = 0;
	for (; line[k] && k + 1 < n && k < LINE_MAX_CHARS; k++)
		out[k] = line[k] >= 0x20 && line[k] < 0x7f ? line[k] : '?';
	out[k] = '\0';
}

/* ---- the bundle ---- */

static char **sandbox_env(const struct udfb_sandbox_rec *sb, const struct udfb_sandbox_req *req, size_t *n)
{
	char **env = udfb_calloc(req->n_env + 4, sizeof(char *));
	size_t k = 0;
	for (size_t j = 0; j < req->n_env; j++)
		env[k++] = udfb_asprintf("%s=%s", req->env[j].name, req->env[j].value);
	/* After the operator's: the reserved variables always win.  In a
	 * namespace of its own every sandbox has the same inner ports. */
	int inner = sb->netns >= 0;
	env[k++] = udfb_asprintf("UDF_SERVER_ADDR=127.0.0.1:%d", inner ? UDFB_LOCAL_INNER_UDF_PORT : sb->udf_port);
	env[k++] = udfb_asprintf("RESOURCE_STATUS_ADDR=127.0.0.1:%d",
				 inner ? UDFB_LOCAL_INNER_STATUS_PORT : sb->status_port);
	if (req->auth_keys && *req->auth_keys)
		env[k++] = udfb_asprintf("UDF_AUTH_KEYS=%s", req->auth_keys);
	*n = k;
	return env;
}

static int write_config(struct udfb_local *L, const struct udfb_sandbox_rec *sb, const struct udfb_sandbox_req *req,
			const struct udfb_bundle_image *im, struct udfb_err *err)
{
	size_t n_env = 0;
	char **env = sandbox_env(sb, req, &n_env);
	cleanup_free char *rootfs = udfb_path_join(sb->dir, "rootfs");
	cleanup_free char *cgpath = udfb_asprintf("%s/%s", L->o.cgroup_parent, sb->id);
	cleanup_free char *hostname =
		udfb_asprintf("udf-%.12s", udfb_digest_valid(sb->key) ? udfb_digest_hex(sb->key) : "sandbox");
	struct udfb_spec_opts so = {
		.rootfs = rootfs,
		.hostname = hostname,
		.image_config = im->config,
		.env = (const char *const *)env,
		.n_env = n_env,
		.cgroups = L->cgroups,
		.cgroups_path = cgpath,
		.memory_bytes = req->memory_bytes > 0 ? req->memory_bytes : L->o.memory,
		.cpu_millis = req->cpu_millis > 0 ? req->cpu_millis : L->o.cpu_millis,
		.pids = L->o.pids,
		.nofile = L->o.nofile,
		.nproc = L->o.nproc,
		.fsize = L->o.log_max,
		.tmp_bytes = L->o.tmp_size,
		.seccomp = L->o.seccomp,
	};
	json_t *spec = NULL;
	int rc = udfb_runtime_spec(&spec, &so, err);
	if (rc == 0)
		rc = write_json(sb->dir, "config.json", spec, err);
	json_decref(spec);
	for (size_t k = 0; k < n_env; k++)
		free(env[k]);
	free(env);
	return rc;
}

static int make_bundle(struct udfb_local *L, const struct udfb_sandbox_rec *sb, const struct udfb_sandbox_req *req,
		       const struct udfb_bundle_image *im, struct udfb_err *err)
{
	cleanup_free char *rootfs = udfb_path_join(sb->dir, "rootfs");
	if (mkdir(sb->dir, 0700) < 0)
		return udfb_err_sys(err, errno, "mkdir %s", sb->dir);
	if (mkdir(rootfs, 0755) < 0)
		return udfb_err_sys(err, errno, "mkdir %s", rootfs);
	if (udfb_rootfs_mount(rootfs, L->o.layers_dir, im, err) < 0)
		return -1;
	return write_config(L, sb, req, im, err);
}

static int write_record(const struct udfb_sandbox_rec *sb, struct udfb_err *err)
{
	json_t *j = udfb_json_must(json_pack("{s:s,s:s,s:s,s:i,s:i,s:s,s:I}", "id", sb->id, "tenant", sb->tenant, "key",
					     sb->key, "udf_port", sb->udf_port, "status_port", sb->status_port, "spec",
					     sb->spec, "started", (json_int_t)sb->started_wall_ms));
	int rc = write_json(sb->dir, "sandbox.json", j, err);
	json_decref(j);
	return rc;
}

/* ---- start ---- */

/* The errno a sandbox's last line reports, when it names one we act on: a
 * server that could not bind its port (Python's OSError text for
 * EADDRINUSE) is started again on other ports.  The child's output is its
 * only channel, so it is read here, once; callers test err->sys_errno. */
static int line_errno(const char *line)
{
	return strstr(line, "Address already in use") ? EADDRINUSE : 0;
}

static int exited_at_start(const struct udfb_sandbox_rec *sb, struct udfb_err *err)
{
	char how[64], line[LINE_MAX_CHARS + 1];
	udfb_pidfd_reap(sb->pidfd, how, sizeof(how));
	log_tail(sb, line, sizeof(line));
	udfb_warn("sandbox %s: exited at start (%s)", sb->id, *how ? how : "status unknown");
	if (*line) {
		udfb_err_set(err, UDFB_E_INVALID, "sandbox for key %s: exited at start: %s", sb->key, line);
		err->sys_errno = line_errno(line);
		return -1;
	}
	return udfb_err_set(err, UDFB_E_UNAVAILABLE, "sandbox for key %s: exited at start (%s) without a message",
			    sb->key, *how ? how : "status unknown");
}

static int wait_ready(struct udfb_local *L, const struct udfb_sandbox_rec *sb, struct udfb_err *err)
{
	long long deadline = udfb_now_ms() + L->o.start_timeout_ms;
	for (;;) {
		if (udfb_probe_health(L->probe_host, sb->status_port, 250))
			return 0;
		if (udfb_pidfd_exited(sb->pidfd, HEALTH_POLL_MS))
			return exited_at_start(sb, err);
		if (udfb_now_ms() >= deadline) {
			char line[LINE_MAX_CHARS + 1];
			log_tail(sb, line, sizeof(line));
			return udfb_err_set(err, UDFB_E_UNAVAILABLE,
					    "sandbox for key %s: /health did not answer 1 within %ld ms%s%s", sb->key,
					    L->o.start_timeout_ms, *line ? "; its last output: " : "", line);
		}
	}
}

/* *ran_ms: when the runtime's `run` returned (the sandbox's process started). */
static int launch(struct udfb_local *L, struct udfb_sandbox_rec *sb, long long *ran_ms, struct udfb_err *err)
{
	cleanup_free char *log_path = udfb_path_join(sb->dir, "log");
	int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return udfb_err_sys(err, errno, "create %s", log_path);
	pid_t pid = 0;
	int rc = udfb_ocirt_run(&L->rt, sb->id, sb->dir, sb->netns, fd, &pid, err);
	close(fd);
	*ran_ms = udfb_now_ms();
	if (rc < 0) {
		char line[LINE_MAX_CHARS + 1];
		log_tail(sb, line, sizeof(line));
		if (*line) {
			udfb_err_clear(err);
			udfb_err_set(err, UDFB_E_INTERNAL, "sandbox for key %s: runtime %s could not start it: %s",
				     sb->key, L->rt.bin, line);
			err->sys_errno = line_errno(line);
			return -1;
		}
		return udfb_err_wrap(err, "sandbox for key %s", sb->key);
	}
	sb->pidfd = udfb_pidfd_open(pid);
	sb->pid = pid;
	udfb_child_hold(pid); /* its exit status is ours to read (udfb_pidfd_reap) */
	if (sb->pidfd < 0)
		return udfb_err_sys(err, errno, "sandbox %s: pidfd_open %d", sb->id, (int)pid);
	sb->started_wall_ms = sb->touched_wall_ms = udfb_wall_ms();
	if (write_record(sb, err) < 0)
		return -1;
	if (L->fwd) {
		udfb_fwd_target(L->fwd, sb->l_udf, sb->netns);
		udfb_fwd_target(L->fwd, sb->l_status, sb->netns);
	}
	return wait_ready(L, sb, err);
}

/* A Databend script run as-is: the operator's networks stay closed to
 * it; exactly its index and import hosts are open (a netns is needed). */
static int run_egress(struct udfb_egress *e, const struct udfb_local *L, const struct udfb_sandbox_req *req,
		      struct udfb_err *err)
{
	if (!L->fwd)
		return udfb_err_set(err, UDFB_E_PRECONDITION,
				    "script_mode = run needs the local scheduler's network = namespace (a sandbox "
				    "of its own network, egress limited to the index and import hosts)");
	for (size_t k = 0; k < req->n_egress_to; k++)
		if (udfb_egress_add_dest(e, req->egress_to[k], err) < 0)
			return -1;
	return 0;
}

int udfb_local_start(struct udfb_local *L, struct udfb_sandbox_rec *sb, const struct udfb_sandbox_req *req,
		     struct udfb_err *err)
{
	/* The image's own store (its OCI layout) first, then the service's. */
	struct udfb_image_store *store = udfb_image_store_oci(L->store), *stores[2];
	size_t n = 0;
	long long t0 = udfb_now_ms(), t_bundle = 0, t_ran = 0;
	if (req->store)
		stores[n++] = req->store;
	stores[n++] = store;
	struct udfb_bundle_image im;
	int read = udfb_bundle_read_image(&im, stores, n, req->manifest_digest, err);
	udfb_image_store_free(store);
	if (read < 0)
		return udfb_err_wrap(err, "image %s", req->image);
	if (L->fwd && udfb_netns_new(&sb->netns, err) < 0) {
		udfb_bundle_image_free(&im);
		return udfb_err_wrap(err, "sandbox for key %s", sb->key);
	}
	int rc = udfb_layers_ensure(L->o.layers_dir, &im, err);
	if (rc == 0)
		rc = make_bundle(L, sb, req, &im, err);
	udfb_bundle_image_free(&im);
	/* Before the sandbox runs: its first packet meets the ruleset. */
	struct udfb_egress own = { 0 };
	if (rc == 0 && req->egress_to)
		rc = run_egress(&own, L, req, err);
	const struct udfb_egress *eg = req->egress_to ? &own : &L->egress;
	if (rc == 0 && L->fwd && udfb_egress_any(eg)) {
		free(sb->egress_addrs);
		sb->egress_addrs = udfb_egress_host_addrs();
		if (udfb_egress_open(eg, sb->netns, sb->dir, sb->egress_addrs, &sb->egress, err) < 0)
			rc = udfb_err_wrap(err, "sandbox for key %s", sb->key);
	}
	udfb_egress_clear(&own);
	if (rc == 0) {
		t_bundle = udfb_now_ms();
		rc = launch(L, sb, &t_ran, err);
	}
	if (rc < 0) {
		udfb_local_teardown(L, sb);
		return rc;
	}
	/* Where a cold start's time goes (docs/benchmarks.md, the sandbox rows). */
	long long t_done = udfb_now_ms();
	udfb_info("sandbox %s: started in %lld ms: image and bundle %lld, runtime %s run %lld, then /health %lld",
		  sb->id, t_done - t0, t_bundle - t0, L->rt.bin, t_ran - t_bundle, t_done - t_ran);
	return 0;
}

/* ---- stop ---- */

/* Never rm -rf: a rootfs still mounted would be walked into. */
static void remove_bundle(const char *dir)
{
	struct udfb_err err = UDFB_ERR_INIT;
	cleanup_free char *rootfs = udfb_path_join(dir, "rootfs");
	if (udfb_rootfs_umount(rootfs, &err) < 0) {
		udfb_warn("sandbox bundle %s left in place: %s", dir, err.msg);
		udfb_err_clear(&err);
		return;
	}
	for (int k = 0; bundle_files[k]; k++) {
		cleanup_free char *p = udfb_path_join(dir, bundle_files[k]);
		unlink(p);
	}
	rmdir(rootfs);
	if (rmdir(dir) < 0 && errno != ENOENT)
		udfb_warn("sandbox bundle %s: not removed: %s", dir, strerror(errno));
}

void udfb_local_teardown(struct udfb_local *L, struct udfb_sandbox_rec *sb)
{
	struct udfb_err err = UDFB_ERR_INIT;
	if (L->fwd) {
		udfb_fwd_target(L->fwd, sb->l_udf, -1);
		udfb_fwd_target(L->fwd, sb->l_status, -1);
	}
	/* Kill, see it gone, reap it and what the runtime left to us (runsc's
	 * gofer): only then does `delete` find nothing alive to wait for. */
	if (sb->pidfd >= 0) {
		if (!udfb_pidfd_exited(sb->pidfd, 0) && sb->id &&
		    udfb_ocirt_kill(&L->rt, sb->id, sb->netns, "KILL", &err) < 0)
			udfb_err_clear(&err);
		if (!udfb_pidfd_exited(sb->pidfd, STOP_WAIT_MS))
			udfb_warn("sandbox %s: its first process outlived SIGKILL", sb->id);
		char how[64];
		udfb_pidfd_reap(sb->pidfd, how, sizeof(how));
		close(sb->pidfd);
		sb->pidfd = -1;
	}
	if (sb->pid > 0)
		udfb_child_release(sb->pid);
	sb->pid = 0;
	udfb_reap_orphans();
	if (sb->id && udfb_ocirt_delete(&L->rt, sb->id, sb->netns, &err) < 0) {
		udfb_warn("sandbox %s: %s", sb->id, err.msg);
		udfb_err_clear(&err);
	}
	udfb_reap_orphans();
	udfb_egress_stop(sb->egress); /* pasta holds the namespace too */
	sb->egress = -1;
	free(sb->egress_addrs);
	sb->egress_addrs = NULL;
	if (sb->netns >= 0) {
		/* Nothing of the sandbox outlives its stop: what the runtime left
		 * running in the namespace (runsc's ptrace stubs, seen a few
		 * seconds after their sentry) is killed and waited for. */
		int left = udfb_netns_kill_members(sb->netns, STOP_WAIT_MS);
		if (left)
			udfb_warn("sandbox %s: %d processes of its network namespace outlived SIGKILL", sb->id, left);
		udfb_reap_orphans();
		close(sb->netns); /* the kernel frees it with the sandbox's last process */
		sb->netns = -1;
	}
	if (sb->dir)
		remove_bundle(sb->dir);
	free(sb->id);
	free(sb->dir);
	sb->id = sb->dir = NULL;
}

/* ---- what an earlier process left ---- */

/* The network namespace of the process in a bundle's pid file, while it
 * runs; -1 otherwise. */
static int netns_of_bundle(const char *dir)
{
	cleanup_free char *path = udfb_path_join(dir, "pid"), *text = NULL;
	size_t len;
	struct udfb_err err = UDFB_ERR_INIT;
	int fd = -1;
	long pid = udfb_read_file(&text, &len, path, 64, &err) == 0 ? strtol(text, NULL, 10) : 0;
	if (pid > 0 && udfb_netns_of_pid((pid_t)pid, &fd, &err) < 0)
		fd = -1;
	udfb_err_clear(&err);
	return fd;
}

/* Its host ports listened on again, forwarded into its namespace. */
static int listen_adopted(struct udfb_local *L, struct udfb_sandbox_rec *sb, int up, int sp)
{
	struct udfb_err err = UDFB_ERR_INIT;
	struct sockaddr_storage a = L->bind;
	int ok = 1;
	for (int k = 0; k < 2 && ok; k++) {
		int port = k ? sp : up;
		if (a.ss_family == AF_INET)
			((struct sockaddr_in *)&a)->sin_port = htons((uint16_t)port);
		else
			((struct sockaddr_in6 *)&a)->sin6_port = htons((uint16_t)port);
		ok = udfb_fwd_listen(L->fwd, (struct sockaddr *)&a, L->bind_len,
				     k ? UDFB_LOCAL_INNER_STATUS_PORT : UDFB_LOCAL_INNER_UDF_PORT,
				     k ? &sb->l_status : &sb->l_udf, &err) == 0;
	}
	if (ok) {
		sb->udf_port = up;
		sb->status_port = sp;
		udfb_fwd_target(L->fwd, sb->l_udf, sb->netns);
		udfb_fwd_target(L->fwd, sb->l_status, sb->netns);
	} else {
		udfb_warn("sandbox on ports %d/%d: not adopted: %s", up, sp, err.msg ? err.msg : "");
	}
	udfb_err_clear(&err);
	return ok;
}

static void forget_adopted(struct udfb_local *L, struct udfb_sandbox_rec *sb)
{
	if (L->fwd) {
		udfb_fwd_close(L->fwd, sb->l_udf);
		udfb_fwd_close(L->fwd, sb->l_status);
	}
	sb->l_udf = sb->l_status = NULL;
	sb->udf_port = sb->status_port = 0;
	if (sb->netns >= 0)
		close(sb->netns);
	sb->netns = -1;
	udfb_egress_stop(sb->egress);
	sb->egress = -1;
}

static int adopt(struct udfb_local *L, const char *dir, json_t *j)
{
	const char *id = json_string_value(json_object_get(j, "id"));
	const char *tenant = json_string_value(json_object_get(j, "tenant"));
	const char *key = json_string_value(json_object_get(j, "key"));
	const char *spec = json_string_value(json_object_get(j, "spec"));
	int up = (int)json_integer_value(json_object_get(j, "udf_port"));
	int sp = (int)json_integer_value(json_object_get(j, "status_port"));
	struct udfb_err err = UDFB_ERR_INIT;
	char *status = NULL;
	pid_t pid = 0;
	int netns = L->fwd ? netns_of_bundle(dir) : -1;
	if (!id || !tenant || !key || !spec || strlen(spec) != UDFB_DIGEST_LEN || up <= 0 || sp <= 0 ||
	    (L->fwd && netns < 0) || udfb_ocirt_state(&L->rt, id, netns, &status, &pid, &err) < 0) {
		udfb_info("sandbox %s: not adopted: %s", id ? id : dir,
			  err.msg ? err.msg : "its record is incomplete, or it is gone");
		udfb_err_clear(&err);
		if (netns >= 0)
			close(netns);
		return 0;
	}
	int fd = strcmp(status, "running") == 0 && pid > 0 ? udfb_pidfd_open(pid) : -1;
	if (fd < 0)
		udfb_info("sandbox %s: not adopted: the runtime says '%s', pid %ld", id, status, (long)pid);
	free(status);
	struct udfb_sandbox_rec *sb = fd >= 0 ? udfb_local_add(L, tenant, key) : NULL;
	if (sb) {
		sb->netns = netns;
		sb->egress = udfb_egress_find(dir);
		sb->egress_addrs = udfb_strdup(""); /* unknown: the reaper closes today's */
	} else if (netns >= 0) {
		close(netns);
	}
	if (sb && L->fwd && !listen_adopted(L, sb, up, sp)) {
		close(fd);
		fd = -1;
	}
	if (fd < 0 || !udfb_probe_health(L->probe_host, sp, 1000)) {
		if (fd >= 0)
			close(fd);
		if (sb) {
			forget_adopted(L, sb);
			sb->state = SB_STOPPED;
		}
		return 0;
	}
	sb->state = SB_READY;
	sb->id = udfb_strdup(id);
	sb->dir = udfb_strdup(dir);
	sb->udf_port = up;
	sb->status_port = sp;
	memcpy(sb->spec, spec, UDFB_DIGEST_LEN + 1);
	sb->pidfd = fd;
	sb->adopted = 1;
	sb->started_wall_ms = json_integer_value(json_object_get(j, "started"));
	sb->touched_wall_ms = udfb_wall_ms();
	udfb_info("sandbox %s: adopted (left running by an earlier process) at http://%s:%d", id, L->url_host, up);
	return 1;
}

static void recover_one(struct udfb_local *L, const char *name)
{
	cleanup_free char *dir = udfb_path_join(L->sandboxes_dir, name);
	cleanup_free char *rec = udfb_path_join(dir, "sandbox.json");
	json_t *j = json_load_file(rec, 0, NULL);
	if (L->o.keep_on_exit && j && adopt(L, dir, j)) {
		json_decref(j);
		return;
	}
	const char *id = json_string_value(json_object_get(j, "id"));
	struct udfb_sandbox_rec tmp = { .id = udfb_strdup(id ? id : name),
					.dir = udfb_strdup(dir),
					.pidfd = -1,
					.netns = L->fwd ? netns_of_bundle(dir) : -1 };
	udfb_info("sandbox %s: left by an earlier process: removed", tmp.id);
	udfb_local_teardown(L, &tmp);
	json_decref(j);
}

static int known_id(struct udfb_local *L, const char *id)
{
	for (size_t k = 0; k < L->n; k++)
		if (L->v[k]->id && strcmp(L->v[k]->id, id) == 0)
			return 1;
	return 0;
}

void udfb_local_recover(struct udfb_local *L)
{
	DIR *d = opendir(L->sandboxes_dir);
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.')
			recover_one(L, e->d_name);
	if (d)
		closedir(d);
	/* Containers in our runtime root without a bundle: a crash between run and record. */
	struct udfb_err err = UDFB_ERR_INIT;
	json_t *ids = NULL, *v;
	size_t k;
	if (udfb_ocirt_list(&L->rt, &ids, &err) < 0) {
		udfb_warn("local scheduler: %s", err.msg);
		udfb_err_clear(&err);
		return;
	}
	json_array_foreach(ids, k, v) {
		if (known_id(L, json_string_value(v)))
			continue;
		udfb_info("container %s: left by an earlier process: deleted", json_string_value(v));
		if (udfb_ocirt_delete(&L->rt, json_string_value(v), -1, &err) < 0) {
			udfb_warn("local scheduler: %s", err.msg);
			udfb_err_clear(&err);
		}
	}
	json_decref(ids);
}
