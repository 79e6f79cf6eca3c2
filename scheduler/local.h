/* The `local` scheduler's insides, shared by scheduler_local.c (the table
 * of sandboxes, ports, limits, the idle reaper, the scheduler ops),
 * local_opts.c (its settings) and local_sandbox.c (starting and stopping
 * one sandbox with the OCI runtime).  See docs/service.md. */
#ifndef UDFB_LOCAL_H
#define UDFB_LOCAL_H

#include <jansson.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/socket.h>

#include "common/err.h"
#include "config/settings.h"
#include "scheduler/forward.h"
#include "common/hash.h"
#include "scheduler/ocirt.h"
#include "scheduler/scheduler.h"

enum udfb_local_cg_mode { UDFB_LOCAL_CG_AUTO, UDFB_LOCAL_CG_ON, UDFB_LOCAL_CG_OFF };
/* namespace: a network namespace per sandbox behind the forwarder (the
 * default); host: the host's, as before (one tenant per machine only). */
enum udfb_local_net_mode { UDFB_LOCAL_NET_NAMESPACE, UDFB_LOCAL_NET_HOST };

/* Inside a sandbox's own namespace every sandbox listens on the same ports. */
#define UDFB_LOCAL_INNER_UDF_PORT 8815
#define UDFB_LOCAL_INNER_STATUS_PORT 8080

struct udfb_local_opts {
	char *runtime, *runtime_args, *runtime_root;
	char *state_dir, *layers_dir;
	char *cgroup_parent;
	long port_min, port_max;
	long start_timeout_ms, idle_ms, reap_interval_ms;
	long max_per_tenant, max_total;
	long long memory, tmp_size, log_max;
	long cpu_millis, pids, nofile, nproc;
	int cgroups_mode;
	int seccomp, keep_on_exit;
	int network;
	char *bind_address, *advertise_address;
	char *query_cidrs; /* who may connect to the endpoints (besides loopback); "": anyone */
	long max_connections;
};

/* A sandbox's life.  NEW: its endpoint was predicted, nothing runs yet. */
enum udfb_sb_state { SB_NEW, SB_STARTING, SB_READY, SB_STOPPING, SB_STOPPED, SB_EXITED, SB_FAILED };

/* One per (tenant, key); its generations (container ids) come and go. */
struct udfb_sandbox_rec {
	char *tenant, *key;
	enum udfb_sb_state state;
	int udf_port, status_port; /* 0: none allocated */
	char *id; /* the running generation's container id */
	char *dir; /* its bundle directory */
	char spec[UDFB_DIGEST_LEN + 1]; /* what it was started with (image, tokens, env) */
	int pidfd; /* its first process; -1 when none */
	pid_t pid; /* that process (held from udfb_reap_orphans while watched) */
	int netns; /* its network namespace; -1 when none (or network=host) */
	struct udfb_fwd_listener *l_udf, *l_status; /* the host ports, forwarded into netns */
	int adopted; /* left running by an earlier process (not our child) */
	int busy; /* threads holding the pointer without the lock */
	int stats_failures;
	int held; /* a worker's auto_suspend governs its idleness, not idle_ms */
	long long started_wall_ms, touched_wall_ms;
	long long changed_ms; /* monotonic: last change of state */
};

struct udfb_local {
	struct udfb_local_opts o;
	char *store;
	char *sandboxes_dir; /* state_dir/sandboxes: one bundle per running container */
	struct udfb_ocirt rt;
	char *rt_version;
	struct udfb_fwd *fwd; /* network=namespace */
	struct sockaddr_storage bind; /* where the endpoints listen (port 0) */
	socklen_t bind_len;
	char *url_host; /* the endpoints' host: advertise_address, [v6] bracketed */
	char *probe_host; /* where the service itself reaches them */
	int cgroups; /* UDFB_CG_* in use */
	char inst[8]; /* this process's part of container ids */
	unsigned long gen;
	pthread_mutex_t mu;
	pthread_cond_t changed; /* a sandbox left STARTING or STOPPING */
	pthread_cond_t wake; /* the reaper's sleep */
	struct udfb_sandbox_rec **v;
	size_t n, cap;
	pthread_t reaper;
	int reaper_started, stopping;
};

/* local_opts.c */
int udfb_local_opts_parse(struct udfb_local_opts *o, json_t *opts, const char *store, struct udfb_err *err);
void udfb_local_opts_free(struct udfb_local_opts *o);
/* Its options' rows (docs/configuration.md, "The local scheduler"). */
extern const struct udfb_settings udfb_settings_local;
/* A numeric IPv4/IPv6 address and a port: 1 for a wildcard, 0 for
 * another, -1 for no address (ss, len may be NULL). */
int udfb_local_parse_addr(const char *text, int port, struct sockaddr_storage *ss, socklen_t *len);
/* UDFB_CG_* this host lets us use; desc says which and why, for the log. */
int udfb_local_detect_cgroups(char *desc, size_t n);

/* local_sandbox.c: called without the lock, with sb STARTING or STOPPING. */
int udfb_local_start(struct udfb_local *L, struct udfb_sandbox_rec *sb, const struct udfb_sandbox_req *req,
		     struct udfb_err *err);
/* Stop and delete the container, unmount and remove its bundle. */
void udfb_local_teardown(struct udfb_local *L, struct udfb_sandbox_rec *sb);
/* Containers and bundles an earlier process left: adopted (keep_on_exit)
 * into the table, or removed.  Called before any other thread runs. */
void udfb_local_recover(struct udfb_local *L);
long long udfb_local_wall_ms(void);
long long udfb_local_mono_ms(void);
/* Add a record (lock held). */
struct udfb_sandbox_rec *udfb_local_add(struct udfb_local *L, const char *tenant, const char *key);

#endif
