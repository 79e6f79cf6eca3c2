/* The OCI runtime's command line: see ocirt.h. */
#include "scheduler/ocirt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/cleanup.h"
#include "common/clock.h"
#include "common/fsutil.h"
#include "scheduler/netns.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#define OUTPUT_MAX (1u << 20)
#define CALL_TIMEOUT_MS 30000
#define PROBE_TIMEOUT_MS 10000
#define REAP_TICK_MS 50

/* Children someone waits for by pid (a runtime call, a sandbox's first
 * process): udfb_reap_orphans leaves them alone.  The lock is held across
 * posix_spawn, so a child cannot be reaped before it is registered. */
static pthread_mutex_t held_mu = PTHREAD_MUTEX_INITIALIZER;
static pid_t *held;
static size_t n_held, cap_held;

static void hold_locked(pid_t pid)
{
	if (n_held == cap_held) {
		cap_held = cap_held ? 2 * cap_held : 64;
		held = udfb_realloc(held, cap_held * sizeof(*held));
	}
	held[n_held++] = pid;
}

void udfb_child_hold(pid_t pid)
{
	pthread_mutex_lock(&held_mu);
	hold_locked(pid);
	pthread_mutex_unlock(&held_mu);
}

void udfb_child_release(pid_t pid)
{
	pthread_mutex_lock(&held_mu);
	for (size_t k = 0; k < n_held; k++)
		if (held[k] == pid) {
			held[k] = held[--n_held];
			break;
		}
	pthread_mutex_unlock(&held_mu);
}

static int is_held(pid_t pid)
{
	for (size_t k = 0; k < n_held; k++)
		if (held[k] == pid)
			return 1;
	return 0;
}

/* A zombie child of ours, from /proc/<pid>/stat ("pid (comm) S ppid ..."). */
static int our_zombie(const char *name)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%s/stat", name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	char *rp = strrchr(buf, ')');
	char state = 0;
	long ppid = 0;
	return rp && sscanf(rp + 1, " %c %ld", &state, &ppid) == 2 && state == 'Z' && ppid == (long)getpid();
}

int udfb_reap_orphans(void)
{
	int n = 0;
	DIR *d = opendir("/proc");
	struct dirent *e;
	pthread_mutex_lock(&held_mu);
	while (d && (e = readdir(d))) {
		if (e->d_name[0] < '1' || e->d_name[0] > '9' || !our_zombie(e->d_name))
			continue;
		pid_t pid = (pid_t)strtol(e->d_name, NULL, 10);
		if (!is_held(pid) && waitpid(pid, NULL, WNOHANG) == pid)
			n++;
	}
	pthread_mutex_unlock(&held_mu);
	if (d)
		closedir(d);
	return n;
}

void udfb_ocirt_init(struct udfb_ocirt *rt, const char *bin, const char *root, const char *args_line)
{
	memset(rt, 0, sizeof(*rt));
	rt->bin = udfb_strdup(bin);
	rt->root = udfb_strdup(root);
	cleanup_free char *copy = udfb_strdup(args_line ? args_line : "");
	rt->args = udfb_calloc(strlen(copy) / 2 + 2, sizeof(char *));
	for (char *save = NULL, *a = strtok_r(copy, " \t", &save); a; a = strtok_r(NULL, " \t", &save))
		rt->args[rt->n_args++] = udfb_strdup(a);
}

void udfb_ocirt_clear(struct udfb_ocirt *rt)
{
	for (size_t k = 0; k < rt->n_args; k++)
		free(rt->args[k]);
	free(rt->args);
	free(rt->bin);
	free(rt->root);
	memset(rt, 0, sizeof(*rt));
}

int udfb_pidfd_open(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

int udfb_pidfd_exited(int pidfd, int wait_ms)
{
	struct pollfd p = { .fd = pidfd, .events = POLLIN };
	int n;
	do
		n = poll(&p, 1, wait_ms);
	while (n < 0 && errno == EINTR);
	return n > 0;
}

void udfb_pidfd_reap(int pidfd, char *how, size_t n)
{
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	how[0] = '\0';
	if (waitid((idtype_t)P_PIDFD, (id_t)pidfd, &si, WEXITED | WNOHANG) < 0 || si.si_pid == 0)
		return; /* not our child (adopted), or still running */
	if (si.si_code == CLD_EXITED)
		snprintf(how, n, "exit status %d", si.si_status);
	else
		snprintf(how, n, "killed by signal %d", si.si_status);
}

static char **make_argv(const struct udfb_ocirt *rt, const char *const *verb)
{
	size_t nv = 0;
	while (verb[nv])
		nv++;
	char **argv = udfb_calloc(rt->n_args + nv + 4, sizeof(char *));
	size_t k = 0;
	argv[k++] = rt->bin;
	argv[k++] = "--root";
	argv[k++] = rt->root;
	for (size_t j = 0; j < rt->n_args; j++)
		argv[k++] = rt->args[j];
	for (size_t j = 0; j < nv; j++)
		argv[k++] = (char *)verb[j];
	return argv;
}

/* What is spawned (the runtime, a tool) sees PATH and nothing else of our
 * environment (which may hold token secrets), and no descriptor but 0-2
 * (and pass_fd as 3). */
static int spawn_argv(pid_t *pid, const char *what, char *const *argv, int out_fd, int pass_fd, struct udfb_err *err)
{
	cleanup_free char *path = NULL;
	const char *p = getenv("PATH");
	path = udfb_asprintf("PATH=%s", p && *p ? p : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	char *envp[] = { path, NULL };
	/* A copy above 3, so that dup2 to 3 always clears close-on-exec. */
	cleanup_close int pass = pass_fd >= 0 ? fcntl(pass_fd, F_DUPFD_CLOEXEC, 10) : -1;
	if (pass_fd >= 0 && pass < 0)
		return udfb_err_sys(err, errno, "%s: dup", argv[0]);
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
	posix_spawn_file_actions_adddup2(&fa, out_fd, 2);
	if (pass >= 0)
		posix_spawn_file_actions_adddup2(&fa, pass, 3);
	posix_spawn_file_actions_addclosefrom_np(&fa, pass >= 0 ? 4 : 3);
	posix_spawnattr_init(&at);
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &all);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	pthread_mutex_lock(&held_mu);
	int rc = posix_spawnp(pid, argv[0], &fa, &at, argv, envp);
	if (rc == 0)
		hold_locked(*pid);
	pthread_mutex_unlock(&held_mu);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (rc != 0)
		return udfb_err_set(err, rc == ENOENT ? UDFB_E_UNSUPPORTED : UDFB_E_INTERNAL, "%s%s: %s%s", what,
				    argv[0], strerror(rc), rc == ENOENT ? " (not installed, or not in PATH)" : "");
	return 0;
}

static int spawn_here(pid_t *pid, const struct udfb_ocirt *rt, const char *const *verb, int out_fd,
		      struct udfb_err *err)
{
	cleanup_free char **argv = make_argv(rt, verb);
	return spawn_argv(pid, "runtime ", argv, out_fd, -1, err);
}

struct spawn_job {
	pid_t *pid;
	const struct udfb_ocirt *rt;
	const char *const *verb;
	int fd;
	struct udfb_err *err;
};

static int spawn_job(void *arg)
{
	struct spawn_job *j = arg;
	return spawn_here(j->pid, j->rt, j->verb, j->fd, j->err);
}

/* Spawned from a thread inside netns_fd (when >= 0), the runtime runs in
 * that network namespace: runsc's control socket is an abstract one, which
 * lives in the namespace of the sandbox, so every verb on a sandbox is
 * called from there. */
static int spawn(pid_t *pid, const struct udfb_ocirt *rt, const char *const *verb, int out_fd, int netns_fd,
		 struct udfb_err *err)
{
	if (netns_fd < 0)
		return spawn_here(pid, rt, verb, out_fd, err);
	struct spawn_job j = { pid, rt, verb, out_fd, err };
	int rc = udfb_netns_run(netns_fd, spawn_job, &j);
	if (rc < 0 && err->cat == UDFB_E_OK)
		return udfb_err_sys(err, -rc, "runtime %s: enter the sandbox's network namespace", rt->bin);
	return rc < 0 ? -1 : 0;
}

/* Wait for the child until the deadline, then kill it. */
static int wait_child(pid_t pid, long long deadline, int *status)
{
	int fd = udfb_pidfd_open(pid);
	if (fd >= 0) {
		long long left = deadline - udfb_now_ms();
		if (!udfb_pidfd_exited(fd, left > 0 ? (int)left : 0))
			kill(pid, SIGKILL);
		close(fd);
	}
	int rc = 0;
	while (waitpid(pid, status, 0) < 0)
		if (errno != EINTR) {
			rc = -1;
			break;
		}
	udfb_child_release(pid);
	return rc;
}

struct tool_job {
	pid_t *pid;
	char *const *argv;
	int out_fd, pass_fd;
	struct udfb_err *err;
};

static int tool_job(void *arg)
{
	struct tool_job *j = arg;
	return spawn_argv(j->pid, "", j->argv, j->out_fd, j->pass_fd, j->err);
}

int udfb_tool_run(const char *const *argv, int netns_fd, int out_fd, int pass_fd, long timeout_ms, int *status,
		  struct udfb_err *err)
{
	pid_t pid;
	struct tool_job j = { &pid, (char *const *)argv, out_fd, pass_fd, err };
	int rc = netns_fd >= 0 ? udfb_netns_run(netns_fd, tool_job, &j) : tool_job(&j);
	if (rc < 0 && err->cat == UDFB_E_OK)
		return udfb_err_sys(err, -rc, "%s: enter the sandbox's network namespace", argv[0]);
	if (rc < 0)
		return -1;
	if (wait_child(pid, udfb_now_ms() + timeout_ms, status) < 0)
		return udfb_err_sys(err, errno, "%s: wait", argv[0]);
	return 0;
}

/* Run the runtime with output to a pipe; *out gets it all. */
static int call(const struct udfb_ocirt *rt, const char *const *verb, int netns_fd, long timeout_ms,
		struct udfb_buf *out, int *status, struct udfb_err *err)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return udfb_err_sys(err, errno, "pipe");
	pid_t pid;
	int rc = spawn(&pid, rt, verb, p[1], netns_fd, err);
	close(p[1]);
	if (rc < 0) {
		close(p[0]);
		return -1;
	}
	long long deadline = udfb_now_ms() + timeout_ms;
	char chunk[4096];
	for (;;) {
		struct pollfd pf = { .fd = p[0], .events = POLLIN };
		long long left = deadline - udfb_now_ms();
		if (left <= 0)
			break;
		/* While it runs, reap what exits meanwhile: runsc's `delete` waits
		 * for its gofer, our zombie until we reap it. */
		int r = poll(&pf, 1, left > REAP_TICK_MS ? REAP_TICK_MS : (int)left);
		if (r < 0 && errno != EINTR)
			break;
		if (r <= 0) {
			udfb_reap_orphans();
			continue;
		}
		ssize_t n = read(p[0], chunk, sizeof(chunk));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break;
		udfb_buf_add(out, chunk, (size_t)n); /* past the limit: the rest is dropped */
	}
	close(p[0]);
	if (wait_child(pid, deadline, status) < 0)
		return udfb_err_sys(err, errno, "runtime %s: wait", rt->bin);
	return 0;
}

/* The last non-empty line of text, for messages. */
static const char *last_line(struct udfb_buf *b)
{
	if (!b->data)
		return "";
	while (b->len && (b->data[b->len - 1] == '\n' || b->data[b->len - 1] == ' '))
		b->data[--b->len] = '\0';
	char *nl = strrchr(b->data, '\n');
	return nl ? nl + 1 : b->data;
}

static int failed(const struct udfb_ocirt *rt, const char *verb, const char *id, int status, struct udfb_buf *out,
		  struct udfb_err *err)
{
	const char *line = last_line(out);
	enum udfb_errcat cat =
		strstr(line, "does not exist") || strstr(line, "not exist") ? UDFB_E_NOTFOUND : UDFB_E_INTERNAL;
	if (WIFSIGNALED(status))
		return udfb_err_set(err, cat, "runtime %s %s %s: killed by signal %d", rt->bin, verb, id,
				    WTERMSIG(status));
	return udfb_err_set(err, cat, "runtime %s %s %s: %.300s", rt->bin, verb, id, *line ? line : "failed");
}

static int simple(const struct udfb_ocirt *rt, const char *const *verb, const char *id, int netns_fd,
		  struct udfb_buf *out, struct udfb_err *err)
{
	int status = 0;
	if (call(rt, verb, netns_fd, CALL_TIMEOUT_MS, out, &status, err) < 0)
		return -1;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return failed(rt, verb[0], id, status, out, err);
	return 0;
}

int udfb_ocirt_version(const struct udfb_ocirt *rt, char **out, struct udfb_err *err)
{
	struct udfb_buf b;
	udfb_buf_init(&b, OUTPUT_MAX);
	const char *verb[] = { "--version", NULL };
	int rc = simple(rt, verb, "", -1, &b, err);
	if (rc == 0) {
		char *nl = b.data ? strchr(b.data, '\n') : NULL;
		if (nl)
			*nl = '\0';
		*out = udfb_strdup(b.data ? b.data : "");
	}
	udfb_buf_free(&b);
	return rc;
}

static int read_pid(const char *path, pid_t *pid, struct udfb_err *err)
{
	cleanup_free char *text = NULL;
	size_t len;
	if (udfb_read_file(&text, &len, path, 64, err) < 0)
		return -1;
	long v = strtol(text, NULL, 10);
	if (v <= 0)
		return udfb_err_set(err, UDFB_E_INTERNAL, "%s: no pid", path);
	*pid = (pid_t)v;
	return 0;
}

int udfb_ocirt_run(const struct udfb_ocirt *rt, const char *id, const char *bundle, int netns_fd, int log_fd,
		   pid_t *pid, struct udfb_err *err)
{
	cleanup_free char *pid_file = udfb_path_join(bundle, "pid");
	/* Long options: runsc (Go flags) knows --detach but not -d. */
	const char *verb[] = { "run", "--detach", "--bundle", bundle, "--pid-file", pid_file, id, NULL };
	pid_t child;
	/* The container inherits stdout and stderr: a pipe would never see EOF.
	 * Spawned from a thread inside the sandbox's network namespace, the
	 * runtime and the container start in it. */
	if (spawn(&child, rt, verb, log_fd, netns_fd, err) < 0)
		return -1;
	int status = 0;
	if (wait_child(child, udfb_now_ms() + CALL_TIMEOUT_MS, &status) < 0)
		return udfb_err_sys(err, errno, "runtime %s: wait", rt->bin);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		if (WIFSIGNALED(status))
			return udfb_err_set(err, UDFB_E_INTERNAL, "runtime %s run %s: killed by signal %d", rt->bin, id,
					    WTERMSIG(status));
		return udfb_err_set(err, UDFB_E_INTERNAL, "runtime %s run %s: exit status %d", rt->bin, id,
				    WEXITSTATUS(status));
	}
	return read_pid(pid_file, pid, err);
}

int udfb_ocirt_state(const struct udfb_ocirt *rt, const char *id, int netns_fd, char **status, pid_t *pid,
		     struct udfb_err *err)
{
	struct udfb_buf b;
	udfb_buf_init(&b, OUTPUT_MAX);
	const char *verb[] = { "state", id, NULL };
	int rc = simple(rt, verb, id, netns_fd, &b, err);
	json_t *j = rc == 0 ? json_loadb(b.data ? b.data : "", b.len, 0, NULL) : NULL;
	if (rc == 0 && !json_is_string(json_object_get(j, "status")))
		rc = udfb_err_set(err, UDFB_E_INTERNAL, "runtime %s state %s: unexpected output", rt->bin, id);
	if (rc == 0) {
		*status = udfb_strdup(json_string_value(json_object_get(j, "status")));
		*pid = (pid_t)json_integer_value(json_object_get(j, "pid"));
	}
	json_decref(j);
	udfb_buf_free(&b);
	return rc;
}

int udfb_ocirt_kill(const struct udfb_ocirt *rt, const char *id, int netns_fd, const char *signal, struct udfb_err *err)
{
	struct udfb_buf b;
	udfb_buf_init(&b, OUTPUT_MAX);
	const char *verb[] = { "kill", id, signal, NULL };
	int rc = simple(rt, verb, id, netns_fd, &b, err);
	udfb_buf_free(&b);
	return rc;
}

int udfb_ocirt_delete(const struct udfb_ocirt *rt, const char *id, int netns_fd, struct udfb_err *err)
{
	struct udfb_buf b;
	udfb_buf_init(&b, OUTPUT_MAX);
	const char *verb[] = { "delete", "--force", id, NULL };
	int rc = simple(rt, verb, id, netns_fd, &b, err);
	udfb_buf_free(&b);
	if (rc < 0 && err->cat == UDFB_E_NOTFOUND) {
		udfb_err_clear(err);
		return 0;
	}
	return rc;
}

int udfb_ocirt_list(const struct udfb_ocirt *rt, json_t **ids, struct udfb_err *err)
{
	struct udfb_buf b;
	udfb_buf_init(&b, OUTPUT_MAX);
	const char *verb[] = { "list", "--quiet", NULL };
	int rc = simple(rt, verb, "", -1, &b, err);
	if (rc == 0) {
		*ids = json_array();
		for (char *save = NULL, *l = strtok_r(b.data ? b.data : "", "\n", &save); l;
		     l = strtok_r(NULL, "\n", &save))
			if (*l)
				json_array_append_new(*ids, json_string(l));
	}
	udfb_buf_free(&b);
	return rc;
}

int udfb_ocirt_is_runsc(const char *version)
{
	return strncmp(version, "runsc", 5) == 0;
}

/* `runsc --platform=P do true` in a scratch root: a real sandbox start. */
static int try_platform(const struct udfb_ocirt *rt, const char *scratch, const char *platform, struct udfb_buf *out)
{
	struct udfb_ocirt probe = *rt;
	cleanup_free char *flag = udfb_asprintf("--platform=%s", platform);
	char *args[] = { "--network=none", flag };
	probe.root = (char *)scratch;
	probe.args = args;
	probe.n_args = 2;
	const char *verb[] = { "do", "true", NULL };
	int status = 0;
	struct udfb_err err = UDFB_ERR_INIT;
	int rc = call(&probe, verb, -1, PROBE_TIMEOUT_MS, out, &status, &err);
	udfb_err_clear(&err);
	return rc == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int udfb_ocirt_probe_platform(const struct udfb_ocirt *rt, const char *scratch, char **platform, struct udfb_err *err)
{
	/* Fastest first; this runsc may not know systrap (2023 on); kvm needs /dev/kvm. */
	static const char *const order[] = { "systrap", "kvm", "ptrace", NULL };
	struct udfb_buf last;
	udfb_buf_init(&last, OUTPUT_MAX);
	for (int k = 0; order[k]; k++) {
		if (strcmp(order[k], "kvm") == 0 && access("/dev/kvm", R_OK | W_OK) != 0)
			continue;
		udfb_buf_free(&last);
		udfb_buf_init(&last, OUTPUT_MAX);
		if (udfb_mkdir_p(scratch, 0700, err) < 0) {
			udfb_buf_free(&last);
			return -1;
		}
		int ok = try_platform(rt, scratch, order[k], &last);
		udfb_rm_rf(scratch);
		if (ok) {
			udfb_buf_free(&last);
			*platform = udfb_strdup(order[k]);
			return 0;
		}
	}
	udfb_err_set(err, UDFB_E_UNSUPPORTED,
		     "runtime %s: no platform starts a sandbox here (tried systrap, kvm, ptrace): %.300s", rt->bin,
		     last_line(&last));
	udfb_buf_free(&last);
	return -1;
}
