/* Network namespaces of the local scheduler's sandboxes.
 *
 * Each sandbox runs in a network namespace of its own that holds only `lo`:
 * no route leaves it, so the sandbox reaches nothing of the host (not the
 * service's ports, not the host's loopback, not its addresses) and nothing
 * beyond.  The namespace is made by a short-lived thread (unshare), kept
 * alive by a descriptor and by the sandbox's processes, and never named in
 * /run/netns: when both are gone the kernel frees it, so a crash leaves no
 * namespace behind.  The runtime is started from a thread that has entered
 * it (setns), so runc's container and runsc's sandbox (with --network=host)
 * use that namespace's own kernel stack and loopback.  See docs/service.md. */
#ifndef UDFB_NETNS_H
#define UDFB_NETNS_H

#include <sys/types.h>

#include "common/err.h"

/* A new network namespace with `lo` up; *fd refers to it (O_CLOEXEC). */
int udfb_netns_new(int *fd, struct udfb_err *err);
/* The network namespace of a running process (an adopted sandbox's). */
int udfb_netns_of_pid(pid_t pid, int *fd, struct udfb_err *err);
/* Run fn(arg) on a thread that has entered the namespace netns_fd (-1: the
 * caller's own, on a thread all the same) and wait for it; its return value. */
int udfb_netns_run(int netns_fd, int (*fn)(void *), void *arg);
/* SIGKILL every process still in the namespace fd refers to (but this
 * one) and wait up to wait_ms for them to be gone; how many are left.  A
 * runtime's stop may leave one behind (runsc's ptrace stubs outlive their
 * sentry for a moment): the namespace lives as long as any of them. */
int udfb_netns_kill_members(int fd, int wait_ms);
/* The namespace's inode number ("net:[N]"), for logs and tests; 0 if unknown. */
unsigned long udfb_netns_inode(int fd);

#endif
