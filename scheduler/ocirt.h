/* An OCI runtime driven through its command line (runc, runsc: the same
 * verbs, long options only, which both parse): run --detach, state, kill,
 * delete --force, list --quiet.  Each call spawns the binary
 * with an empty signal mask, default dispositions and no inherited file
 * descriptors but 0-2. */
#ifndef UDFB_OCIRT_H
#define UDFB_OCIRT_H

#include <jansson.h>
#include <sys/types.h>

#include "common/err.h"

struct udfb_ocirt {
	char *bin; /* "runc" (looked up in PATH) or a path */
	char *root; /* --root: where the runtime keeps its state */
	char **args; /* extra global flags, before the verb */
	size_t n_args;
};

/* args_line: extra flags separated by spaces ("" for none). */
void udfb_ocirt_init(struct udfb_ocirt *rt, const char *bin, const char *root, const char *args_line);
void udfb_ocirt_clear(struct udfb_ocirt *rt);

/* `--version`: the first line, to log, or an error naming the binary. */
int udfb_ocirt_version(const struct udfb_ocirt *rt, char **out, struct udfb_err *err);
/* `run --detach`: the container's stdout and stderr (and the runtime's own
 * errors) go to log_fd; *pid is the container's first process.  With
 * netns_fd >= 0 the runtime is started inside that network namespace. */
int udfb_ocirt_run(const struct udfb_ocirt *rt, const char *id, const char *bundle, int netns_fd, int log_fd,
		   pid_t *pid, struct udfb_err *err);
/* The verbs on one sandbox are called from inside its network namespace
 * netns_fd (-1: ours): runsc reaches its sandbox through an abstract unix
 * socket, which exists only in the sandbox's namespace (from elsewhere it
 * reports the sandbox "stopped" and cannot kill it). */
/* `state`: *status ("created", "running", "stopped", ...) and *pid; NOTFOUND when unknown. */
int udfb_ocirt_state(const struct udfb_ocirt *rt, const char *id, int netns_fd, char **status, pid_t *pid,
		     struct udfb_err *err);
int udfb_ocirt_kill(const struct udfb_ocirt *rt, const char *id, int netns_fd, const char *signal,
		    struct udfb_err *err);
/* `delete --force`: kills it first if it still runs. */
int udfb_ocirt_delete(const struct udfb_ocirt *rt, const char *id, int netns_fd, struct udfb_err *err);
/* `list`: the ids, a JSON array of strings. */
int udfb_ocirt_list(const struct udfb_ocirt *rt, json_t **ids, struct udfb_err *err);

/* Is this (the first line of `--version`) gVisor's runsc? */
int udfb_ocirt_is_runsc(const char *version);
/* runsc's platform: the first of systrap, kvm (with /dev/kvm), ptrace that
 * starts a sandbox (`do true`, in the scratch root, removed after). */
int udfb_ocirt_probe_platform(const struct udfb_ocirt *rt, const char *scratch, char **platform, struct udfb_err *err);

/* As the sandboxes' subreaper the service inherits what the runtime leaves
 * (runsc's gofer and sandbox processes): a child waited for by pid is held,
 * and udfb_reap_orphans reaps the other children that have exited (the
 * runtime's `delete` waits until they are gone, zombies included). */
void udfb_child_hold(pid_t pid);
void udfb_child_release(pid_t pid);
int udfb_reap_orphans(void);

/* A helper tool (nft, pasta) run to its end, spawned as the runtime is:
 * PATH alone of our environment, stdin /dev/null, stdout and stderr to
 * out_fd, pass_fd (when >= 0) as its descriptor 3, from a thread inside
 * netns_fd (when >= 0); *status as waitpid gives it, killed after
 * timeout_ms. */
int udfb_tool_run(const char *const *argv, int netns_fd, int out_fd, int pass_fd, long timeout_ms, int *status,
		  struct udfb_err *err);

/* pidfds: a process that is not ours to wait for can still be watched. */
int udfb_pidfd_open(pid_t pid);
/* 1 when the process has exited, 0 while it runs. */
int udfb_pidfd_exited(int pidfd, int wait_ms);
/* Reap it if it is our child; "exit status N", "killed by signal N" or "". */
void udfb_pidfd_reap(int pidfd, char *how, size_t n);

#endif
