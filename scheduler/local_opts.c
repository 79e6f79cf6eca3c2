/* The `local` scheduler's settings (docs/configuration.md, "local
 * scheduler"): strings from cfg->scheduler_opts, parsed by the rows of its
 * settings table (config/settings.h) and checked here, so that a typo stops
 * the service at start instead of being ignored. */
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/fsutil.h"
#include "scheduler/egress.h"
#include "scheduler/local.h"
#include "scheduler/runtime_spec.h"

static void defaults(struct udfb_local_opts *o)
{
	memset(o, 0, sizeof(*o));
	udfb_settings_defaults(&udfb_settings_local, o); /* the rows' literal defaults */
	o->runtime = udfb_strdup(""); /* runsc when it starts a sandbox here, else runc */
	o->advertise_address = udfb_strdup(""); /* the bind address */
}

static int parse_long(const char *v, long long *out)
{
	char *end;
	errno = 0;
	long long n = strtoll(v, &end, 10);
	if (errno || end == v || *end || n < 0)
		return -1;
	*out = n;
	return 0;
}

/* "512m", "1g", "65536", "0" (no limit) */
static int parse_size(const char *v, long long *out)
{
	char *end;
	errno = 0;
	long long n = strtoll(v, &end, 10);
	if (errno || end == v || n < 0)
		return -1;
	long long mult = 1;
	switch (tolower((unsigned char)*end)) {
	case 'k': mult = 1ll << 10; break;
	case 'm': mult = 1ll << 20; break;
	case 'g': mult = 1ll << 30; break;
	}
	if (mult > 1) {
		end++;
		end += tolower((unsigned char)*end) == 'i';
		end += tolower((unsigned char)*end) == 'b';
	}
	if (*end || n > (1ll << 50) / mult)
		return -1;
	*out = n * mult;
	return 0;
}

/* "1", "0.5", "2.25" -> thousandths; "0": no limit */
static int parse_cpus(const char *v, long long *out)
{
	char *end;
	errno = 0;
	double d = strtod(v, &end);
	if (errno || end == v || *end || d < 0 || d > 4096)
		return -1;
	*out = (long long)(d * 1000 + 0.5);
	return 0;
}

static int parse_bool(const char *v, long long *out)
{
	static const char *const yes[] = { "1", "true", "yes", "on", NULL };
	static const char *const no[] = { "0", "false", "no", "off", NULL };
	for (int k = 0; yes[k]; k++)
		if (strcasecmp(v, yes[k]) == 0)
			return *out = 1, 0;
	for (int k = 0; no[k]; k++)
		if (strcasecmp(v, no[k]) == 0)
			return *out = 0, 0;
	return -1;
}

/* "scheduler option NAME 'VALUE': expected WHAT" */
static int expected(const struct udfb_setting *r, const char *v, const char *what, struct udfb_err *err)
{
	return udfb_err_set(err, UDFB_E_INVALID, "scheduler option %s '%.64s': expected %s", r->name, v, what);
}

#define SLOT(type) (*(type *)((char *)obj + r->off))

static int set_long(void *obj, const struct udfb_setting *r, enum udfb_set_source src, const char *v,
		    struct udfb_err *err)
{
	long long n = 0;
	(void)src;
	if (parse_long(v, &n) < 0)
		return expected(r, v, "a whole number", err);
	SLOT(long) = (long)n;
	return 0;
}

static int set_size(void *obj, const struct udfb_setting *r, enum udfb_set_source src, const char *v,
		    struct udfb_err *err)
{
	long long n = 0;
	(void)src;
	if (parse_size(v, &n) < 0)
		return expected(r, v, "a size (65536, 512m, 1g)", err);
	SLOT(long long) = n;
	return 0;
}

static int set_bool(void *obj, const struct udfb_setting *r, enum udfb_set_source src, const char *v,
		    struct udfb_err *err)
{
	long long n = 0;
	(void)src;
	if (parse_bool(v, &n) < 0)
		return expected(r, v, "1/0, true/false", err);
	SLOT(int) = (int)n;
	return 0;
}

static int set_cpus(void *obj, const struct udfb_setting *r, enum udfb_set_source src, const char *v,
		    struct udfb_err *err)
{
	long long n = 0;
	(void)src;
	if (parse_cpus(v, &n) < 0)
		return expected(r, v, "a number of CPUs (1, 0.5)", err);
	SLOT(long) = (long)n;
	return 0;
}

static int set_cgroups(void *obj, const struct udfb_setting *r, enum udfb_set_source src, const char *v,
		       struct udfb_err *err)
{
	static const char *const modes[] = {
		[UDFB_LOCAL_CG_AUTO] = "auto", [UDFB_LOCAL_CG_ON] = "on", [UDFB_LOCAL_CG_OFF] = "off"
	};
	(void)src;
	for (int k = 0; k < 3; k++)
		if (strcmp(v, modes[k]) == 0)
			return SLOT(int) = k, 0;
	return expected(r, v, "auto, on or off", err);
}

static int set_network(void *obj, const struct udfb_setting *r, enum udfb_set_source src, const char *v,
		       struct udfb_err *err)
{
	(void)src;
	if (strcmp(v, "namespace") == 0)
		SLOT(int) = UDFB_LOCAL_NET_NAMESPACE;
	else if (strcmp(v, "host") == 0)
		SLOT(int) = UDFB_LOCAL_NET_HOST;
	else
		return expected(r, v, "namespace or host", err);
	return 0;
}

/* The rows: docs/configuration.md's "local scheduler" table is printed
 * from them (udf-builder settings --markdown local). */
#define OFF(f) offsetof(struct udfb_local_opts, f)
#define STR(key, f, dflt, doc)                                                                            \
	{                                                                                                 \
		key, key, NULL, NULL, NULL, UDFB_SET_STR, 0, 0, 0, OFF(f), NULL, NULL, dflt, doc, NULL, 0 \
	}
#define FN(key, fn, f, dflt, doc)                                                                      \
	{                                                                                              \
		key, key, NULL, NULL, NULL, UDFB_SET_FN, 0, 0, 0, OFF(f), fn, NULL, dflt, doc, NULL, 0 \
	}

static const struct udfb_setting rows[] = {
	STR("runtime", runtime, "`\"\"`: `runsc` where it starts a sandbox here, else `runc`",
	    "the OCI runtime binary (a name looked up in `PATH`, or a path). With `runsc` (gVisor) its platform is "
	    "probed at start (`systrap`, `kvm` where `/dev/kvm` opens, `ptrace`: the first that starts a sandbox, "
	    "`runsc do true`) and `--network=host` is added, so that it uses the kernel stack of the sandbox's own "
	    "namespace; under `runc` a warning at start says the sandboxes share the host's kernel"),
	STR("runtime_args", runtime_args, "`\"\"`",
	    "extra global flags for the runtime, space-separated; a `--platform` or `--network` given here is used as "
	    "it is"),
	FN("network", set_network, network, "`namespace`",
	   "`namespace`: a network namespace per sandbox holding only `lo` (no egress unless `egress_cidrs`), reached "
	   "through the service's "
	   "own ports (docs/service.md); `host`: the host's network, as before this option existed (one tenant per "
	   "machine only; a warning says so)"),
	STR("bind_address", bind_address, "`127.0.0.1`",
	    "where the service listens for sandboxes' endpoints (numeric IPv4 or IPv6); `0.0.0.0` or `::` needs "
	    "`advertise_address`"),
	STR("advertise_address", advertise_address, "the `bind_address`",
	    "the host in the endpoints handed to Databend: an address or name the query nodes reach"),
	STR("query_cidrs", query_cidrs, "`\"\"` (anyone who reaches `bind_address`)",
	    "comma-separated networks (`10.0.0.0/8`, `2001:db8::/32`, an address alone) of the Databend query nodes: a "
	    "connection to an endpoint from elsewhere is closed at once; loopback is always let through (the "
	    "service's own probes)"),
	STR("egress_cidrs", egress_cidrs, "`\"\"` (no egress)",
	    "comma-separated IPv4 networks (`10.0.0.0/8`, an address alone) a sandbox may connect to, through pasta, "
	    "with an nftables table in the sandbox's own namespace (docs/service.md, \"Egress\"); never the metadata "
	    "address `169.254.169.254`, the host's own addresses or pasta's gateway `10.0.2.2`, even when listed. "
	    "Needs `network=namespace`, `pasta` (package `passt`) and `nft` (package `nftables`), checked at start; "
	    "IPv6 and a prefix with bits set past it are refused"),
	FN("max_connections", set_long, max_connections, "`1024`",
	   "connections through the endpoints at once, all sandboxes together (two threads each); past it new ones "
	   "are closed"),
	STR("runtime_root", runtime_root, "`<state_dir>/runtime`",
	    "the runtime's `--root` (its container state); `runc --root DIR list` shows this service's sandboxes"),
	STR("state_dir", state_dir, "`<store>/sandboxes`",
	    "one bundle per running sandbox (`sandboxes/<id>/`: `config.json`, the `rootfs` mount, `log`, "
	    "`sandbox.json`); one service process per `state_dir`: a start removes (or adopts) whatever it finds "
	    "there"),
	STR("layers_dir", layers_dir, "`<state_dir>/layers`",
	    "unpacked layers, one directory per layer digest, shared by every image and sandbox (and by services "
	    "pointed at the same directory); made `0700` at start (layers keep their images' modes, a world-writable "
	    "`/tmp` say, so no other host user may reach them); needs a file system with trusted xattrs (ext4, xfs, "
	    "tmpfs); no `:` or `,` in the path"),
	FN("port_min", set_long, port_min, "`20000`",
	   "the lowest host port of the sandboxes' endpoints, two each (UDF server, status server); under "
	   "`network=namespace` the service itself listens on them for the life of the (tenant, key), so no sandbox "
	   "can take another's"),
	FN("port_max", set_long, port_max, "`29999`", "the highest host port of the sandboxes' endpoints"),
	FN("start_timeout_ms", set_long, start_timeout_ms, "`10000`",
	   "how long a start may take until `/health` answers `1`; past it the start fails (`UNAVAILABLE`)"),
	FN("idle_ms", set_long, idle_ms, "`600000`",
	   "a sandbox whose last UDF call (`/stats` `last_request_time`), start, and last hand-out to Databend are all "
	   "older than this is stopped; the next call starts it again on the same endpoint. A worker with "
	   "`auto_suspend` (docs/service.md, \"Workers\") is judged by that instead: its sandbox is left alone by this "
	   "reaper and the worker is suspended after its own idle time"),
	FN("reap_interval_ms", set_long, reap_interval_ms, "`1000`",
	   "how often sandboxes are checked: idle, dead (their first process exited), unhealthy (`/stats` unanswered "
	   "3 times in a row)"),
	FN("max_per_tenant", set_long, max_per_tenant, "`16`",
	   "sandboxes running at once for one tenant; a start past it is `RESOURCE_EXHAUSTED` naming the limit"),
	FN("max_total", set_long, max_total, "`64`",
	   "sandboxes running at once in all; a start past it is `RESOURCE_EXHAUSTED` naming the limit"),
	FN("memory", set_size, memory, "`1g`", "memory limit of one sandbox (cgroup)"),
	FN("cpus", set_cpus, cpu_millis, "`1`", "CPU limit of one sandbox, in CPUs (`0.5`, `2`) (cgroup CFS quota)"),
	FN("pids", set_long, pids, "`256`", "processes and threads in one sandbox (cgroup)"),
	FN("cgroups", set_cgroups, cgroups_mode, "`auto`",
	   "`auto`: the limits above where the host has writable memory/cpu/pids controllers, else a warning at start "
	   "and none; `on`: refuse to start without them; `off`: none"),
	STR("cgroup_parent", cgroup_parent, "`/udfb`", "sandboxes' cgroups are `<cgroup_parent>/<id>`"),
	FN("nofile", set_long, nofile, "`1024`", "`RLIMIT_NOFILE`"),
	FN("nproc", set_long, nproc, "`4096`",
	   "`RLIMIT_NPROC`; the kernel counts it per user across the host, and every sandbox runs as the image's user "
	   "(65534), so this bounds all sandboxes together: `pids` is the per-sandbox limit"),
	FN("log_max", set_size, log_max, "`64m`",
	   "`RLIMIT_FSIZE`: the most a sandbox writes to one file, its output log included"),
	FN("tmp_size", set_size, tmp_size, "`64m`", "size of the sandbox's tmpfs `/tmp` (counted in its memory limit)"),
	FN("seccomp", set_bool, seccomp, "`1`",
	   "the seccomp filter (docs/service.md); `0` leaves it out (for a runtime that brings its own). `runsc` does "
	   "not load it into gVisor (its sandboxes' system calls go to gVisor's kernel, which runs under gVisor's own "
	   "filter)"),
	FN("keep_on_exit", set_bool, keep_on_exit, "`0`",
	   "`1`: sandboxes keep running when the service stops, and the next start adopts the ones still healthy "
	   "(same `state_dir`, same endpoints); under `network=namespace` their endpoints answer only while a service "
	   "runs (it is the service that listens on them); `0`: stopped on exit, and any left by a crash are removed "
	   "at the next start"),
};

const struct udfb_settings udfb_settings_local = UDFB_SETTINGS("local scheduler", "scheduler_options", rows, 1);

static int unknown(const char *key, struct udfb_err *err)
{
	struct udfb_buf b;
	udfb_buf_init(&b, 4096);
	for (size_t k = 0; k < sizeof(rows) / sizeof(*rows); k++)
		udfb_buf_printf(&b, "%s%s", k ? ", " : "", rows[k].name);
	udfb_err_set(err, UDFB_E_INVALID, "scheduler option '%s': unknown to the local scheduler (known: %s)", key,
		     b.data);
	udfb_buf_free(&b);
	return -1;
}

static int check(struct udfb_local_opts *o, struct udfb_err *err)
{
	if (o->port_min < 1024 || o->port_max > 65535 || o->port_max - o->port_min < 1)
		return udfb_err_set(err, UDFB_E_INVALID,
				    "scheduler options port_min/port_max: %ld-%ld is not a range of "
				    "at least two ports within 1024-65535",
				    o->port_min, o->port_max);
	if (o->start_timeout_ms < 100 || o->reap_interval_ms < 10 || o->idle_ms < 1)
		return udfb_err_set(
			err, UDFB_E_INVALID,
			"scheduler options: start_timeout_ms >= 100, reap_interval_ms >= 10 and idle_ms >= 1");
	if (o->max_per_tenant < 1 || o->max_total < 1 || o->nofile < 16 || o->tmp_size < 1)
		return udfb_err_set(err, UDFB_E_INVALID,
				    "scheduler options: max_per_tenant, max_total, tmp_size >= 1 and nofile >= 16");
	if (o->cgroup_parent[0] != '/')
		return udfb_err_set(err, UDFB_E_INVALID, "scheduler options: cgroup_parent must be absolute");
	if (o->max_connections < 1)
		return udfb_err_set(err, UDFB_E_INVALID, "scheduler options: max_connections >= 1");
	if (udfb_local_parse_addr(o->bind_address, 0, NULL, NULL) < 0)
		return udfb_err_set(err, UDFB_E_INVALID,
				    "scheduler option bind_address '%.64s': expected a numeric IPv4 or IPv6 address",
				    o->bind_address);
	if (o->network == UDFB_LOCAL_NET_HOST && strcmp(o->bind_address, "127.0.0.1") != 0)
		return udfb_err_set(err, UDFB_E_INVALID,
				    "scheduler option bind_address: network=host sandboxes listen on 127.0.0.1 only");
	if (!*o->advertise_address && udfb_local_parse_addr(o->bind_address, 0, NULL, NULL) == 1)
		return udfb_err_set(err, UDFB_E_INVALID,
				    "scheduler option advertise_address: needed with a wildcard bind_address "
				    "(the address Databend's query nodes connect to)");
	if (udfb_fwd_cidrs_valid(o->query_cidrs, err) < 0)
		return udfb_err_wrap(err, "scheduler option query_cidrs");
	struct udfb_egress eg;
	if (udfb_egress_parse(&eg, o->egress_cidrs, err) < 0)
		return udfb_err_wrap(err, "scheduler option");
	size_t n_egress = eg.n;
	udfb_egress_clear(&eg);
	if (n_egress && o->network == UDFB_LOCAL_NET_HOST)
		return udfb_err_set(err, UDFB_E_INVALID,
				    "scheduler option egress_cidrs: needs network=namespace (under network=host a "
				    "sandbox reaches everything the host does)");
	if (strpbrk(o->advertise_address, "/ @?#"))
		return udfb_err_set(err, UDFB_E_INVALID,
				    "scheduler option advertise_address '%.64s': a host name or address",
				    o->advertise_address);
	return 0;
}

int udfb_local_opts_parse(struct udfb_local_opts *o, json_t *opts, const char *store, struct udfb_err *err)
{
	defaults(o);
	const char *key;
	json_t *v;
	json_object_foreach(opts, key, v) {
		const struct udfb_setting *r = udfb_settings_find_key(&udfb_settings_local, key);
		if (!r)
			return unknown(key, err);
		if (udfb_setting_set(r, o, UDFB_SRC_FILE, json_string_value(v) ? json_string_value(v) : "", err) < 0)
			return -1;
	}
	if (!o->state_dir)
		o->state_dir = udfb_path_join(store, "sandboxes");
	if (!o->layers_dir)
		o->layers_dir = udfb_path_join(o->state_dir, "layers");
	if (!o->runtime_root)
		o->runtime_root = udfb_path_join(o->state_dir, "runtime");
	if (o->state_dir[0] != '/' || o->layers_dir[0] != '/' || o->runtime_root[0] != '/')
		return udfb_err_set(err, UDFB_E_INVALID,
				    "scheduler options state_dir, layers_dir, runtime_root: must be absolute paths");
	return check(o, err);
}

void udfb_local_opts_free(struct udfb_local_opts *o)
{
	udfb_settings_free(&udfb_settings_local, o);
}

int udfb_local_parse_addr(const char *text, int port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_storage tmp;
	socklen_t tl;
	if (!ss)
		ss = &tmp;
	if (!len)
		len = &tl;
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, text, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		*len = sizeof(*a4);
		return a4->sin_addr.s_addr == htonl(INADDR_ANY);
	}
	if (inet_pton(AF_INET6, text, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*a6);
		return IN6_IS_ADDR_UNSPECIFIED(&a6->sin6_addr);
	}
	return -1;
}

/* ---- cgroups ---- */

static int has_word(const char *text, const char *word)
{
	size_t n = strlen(word);
	for (const char *p = text; (p = strstr(p, word)); p += n)
		if ((p == text || isspace((unsigned char)p[-1])) && (!p[n] || isspace((unsigned char)p[n])))
			return 1;
	return 0;
}

static int detect_v2(char *desc, size_t n)
{
	char *text = NULL;
	size_t len;
	struct udfb_err err = UDFB_ERR_INIT;
	int cg = 0;
	if (udfb_read_file(&text, &len, "/sys/fs/cgroup/cgroup.controllers", 4096, &err) == 0 &&
	    access("/sys/fs/cgroup", W_OK) == 0) {
		cg |= has_word(text, "memory") ? UDFB_CG_MEMORY : 0;
		cg |= has_word(text, "cpu") ? UDFB_CG_CPU : 0;
		cg |= has_word(text, "pids") ? UDFB_CG_PIDS : 0;
	}
	snprintf(desc, n, "cgroup v2%s", cg ? "" : " (not writable, or no memory/cpu/pids controller)");
	udfb_err_clear(&err);
	free(text);
	return cg;
}

int udfb_local_detect_cgroups(char *desc, size_t n)
{
	if (access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0)
		return detect_v2(desc, n);
	static const struct {
		int bit;
		const char *dir, *file;
	} v1[] = { { UDFB_CG_MEMORY, "/sys/fs/cgroup/memory", "/sys/fs/cgroup/memory/memory.limit_in_bytes" },
		   { UDFB_CG_CPU, "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us" },
		   { UDFB_CG_PIDS, "/sys/fs/cgroup/pids", "/sys/fs/cgroup/pids/cgroup.procs" } };
	int cg = 0;
	for (size_t k = 0; k < sizeof(v1) / sizeof(*v1); k++)
		if (access(v1[k].file, F_OK) == 0 && access(v1[k].dir, W_OK) == 0)
			cg |= v1[k].bit;
	snprintf(desc, n, "cgroup v1%s", cg ? "" : " (no writable memory/cpu/pids hierarchy under /sys/fs/cgroup)");
	return cg;
}
