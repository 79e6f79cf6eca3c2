/* An OCI runtime driven through its command line (runc, runsc: the same
 * verbs): run -d, state, kill, delete, list.  Each call spawns the binary
 * with an empty signal mask, default dispositions and no inherited file
 * descriptors but 0-2. */
#ifndef UDFB_OCIRT_H
#define UDFB_OCIRT_H

#include <jansson.h>
#include <sys/types.h>

#include "err.h"

struct udfb_ocirt {
	char *bin;   /* "runc" (looked up in PATH) or a path */
	char *root;  /* --root: where the runtime keeps its state */
	char **args; /* extra global flags, before the verb */
	size_t n_args;
};

/* args_line: extra flags separated by spaces ("" for none). */
void udfb_ocirt_init(struct udfb_ocirt *rt, const char *bin, const char *root, const char *args_line);
void udfb_ocirt_clear(struct udfb_ocirt *rt);

/* `--version`: the first line, to log, or an error naming the binary. */
int udfb_ocirt_version(const struct udfb_ocirt *rt, char **out, struct udfb_err *err);
/* `run -d`: the container's stdout and stderr (and the runtime's own
 * errors) go to log_fd; *pid is the container's first process. */
int udfb_ocirt_run(const struct udfb_ocirt *rt, const char *id, const char *bundle, int log_fd, pid_t *pid,
		   struct udfb_err *err);
/* `state`: *status ("created", "running", "stopped", ...) and *pid; NOTFOUND when unknown. */
int udfb_ocirt_state(const struct udfb_ocirt *rt, const char *id, char **status, pid_t *pid, struct udfb_err *err);
int udfb_ocirt_kill(const struct udfb_ocirt *rt, const char *id, const char *signal, struct udfb_err *err);
/* `delete --force`: kills it first if it still runs. */
int udfb_ocirt_delete(const struct udfb_ocirt *rt, const char *id, struct udfb_err *err);
/* `list`: the ids, a JSON array of strings. */
int udfb_ocirt_list(const struct udfb_ocirt *rt, json_t **ids, struct udfb_err *err);

/* pidfds: a process that is not ours to wait for can still be watched. */
int udfb_pidfd_open(pid_t pid);
/* 1 when the process has exited, 0 while it runs. */
int udfb_pidfd_exited(int pidfd, int wait_ms);
/* Reap it if it is our child; "exit status N", "killed by signal N" or "". */
void udfb_pidfd_reap(int pidfd, char *how, size_t n);

#endif
