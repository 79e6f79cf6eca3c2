/* The OCI runtime spec (config.json) of a sandbox: the image's command,
 * user, working directory and environment, confined: a read-only root, a
 * tmpfs /tmp, no capabilities, noNewPrivileges, a seccomp filter, rlimits,
 * cgroup limits when the host has them, new pid/ipc/uts/mount/cgroup
 * namespaces.  The network namespace is the host's: sandboxes listen on
 * 127.0.0.1 ports of their own (docs/service.md says what that isolates). */
#ifndef UDFB_RUNTIME_SPEC_H
#define UDFB_RUNTIME_SPEC_H

#include <jansson.h>
#include <stddef.h>

#include "common/err.h"

/* Which cgroup controllers the host lets us use. */
enum { UDFB_CG_MEMORY = 1, UDFB_CG_CPU = 2, UDFB_CG_PIDS = 4 };

struct udfb_spec_opts {
	const char *rootfs; /* absolute path */
	const char *hostname;
	json_t *image_config; /* the image config's "config": User, Env, Entrypoint, Cmd, WorkingDir */
	const char *const *env; /* "NAME=value", applied over the image's in order */
	size_t n_env;
	int cgroups; /* UDFB_CG_* the limits below may use */
	const char *cgroups_path;
	long long memory_bytes; /* 0: no limit */
	long cpu_millis; /* 1000 = one CPU; 0: no limit */
	long pids; /* 0: no limit */
	long nofile, nproc; /* rlimits */
	long long fsize; /* RLIMIT_FSIZE (caps the log too); 0: none */
	long long tmp_bytes; /* size of the /tmp tmpfs */
	int seccomp;
};

int udfb_runtime_spec(json_t **out, const struct udfb_spec_opts *o, struct udfb_err *err);
/* The user the image asks for as "uid:gid", never root: 65534:65534 when it names none. */
int udfb_runtime_user(unsigned *uid, unsigned *gid, json_t *image_config, struct udfb_err *err);

#endif
