/* The `local` scheduler's settings (docs/configuration.md, "local
 * scheduler"): strings from cfg->scheduler_opts, checked here so that a typo
 * stops the service at start instead of being ignored. */
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "common/buf.h"
#include "common/fsutil.h"
#include "scheduler/egress.h"
#include "scheduler/local.h"
#include "scheduler/runtime_spec.h"

enum opt_type { T_STR, T_LONG, T_SIZE, T_BOOL, T_CPUS, T_CGMODE, T_NETMODE };

static const struct opt_def {
	const char *name;
	enum opt_type type;
	size_t off;
} defs[] = {
	{ "runtime", T_STR, offsetof(struct udfb_local_opts, runtime) },
	{ "runtime_args", T_STR, offsetof(struct udfb_local_opts, runtime_args) },
	{ "runtime_root", T_STR, offsetof(struct udfb_local_opts, runtime_root) },
	{ "state_dir", T_STR, offsetof(struct udfb_local_opts, state_dir) },
	{ "layers_dir", T_STR, offsetof(struct udfb_local_opts, layers_dir) },
	{ "cgroup_parent", T_STR, offsetof(struct udfb_local_opts, cgroup_parent) },
	{ "port_min", T_LONG, offsetof(struct udfb_local_opts, port_min) },
	{ "port_max", T_LONG, offsetof(struct udfb_local_opts, port_max) },
	{ "start_timeout_ms", T_LONG, offsetof(struct udfb_local_opts, start_timeout_ms) },
	{ "idle_ms", T_LONG, offsetof(struct udfb_local_opts, idle_ms) },
	{ "reap_interval_ms", T_LONG, offsetof(struct udfb_local_opts, reap_interval_ms) },
	{ "max_per_tenant", T_LONG, offsetof(struct udfb_local_opts, max_per_tenant) },
	{ "max_total", T_LONG, offsetof(struct udfb_local_opts, max_total) },
	{ "memory", T_SIZE, offsetof(struct udfb_local_opts, memory) },
	{ "tmp_size", T_SIZE, offsetof(struct udfb_local_opts, tmp_size) },
	{ "log_max", T_SIZE, offsetof(struct udfb_local_opts, log_max) },
	{ "cpus", T_CPUS, offsetof(struct udfb_local_opts, cpu_millis) },
	{ "pids", T_LONG, offsetof(struct udfb_local_opts, pids) },
	{ "nofile", T_LONG, offsetof(struct udfb_local_opts, nofile) },
	{ "nproc", T_LONG, offsetof(struct udfb_local_opts, nproc) },
	{ "cgroups", T_CGMODE, offsetof(struct udfb_local_opts, cgroups_mode) },
	{ "seccomp", T_BOOL, offsetof(struct udfb_local_opts, seccomp) },
	{ "keep_on_exit", T_BOOL, offsetof(struct udfb_local_opts, keep_on_exit) },
	{ "network", T_NETMODE, offsetof(struct udfb_local_opts, network) },
	{ "bind_address", T_STR, offsetof(struct udfb_local_opts, bind_address) },
	{ "advertise_address", T_STR, offsetof(struct udfb_local_opts, advertise_address) },
	{ "max_connections", T_LONG, offsetof(struct udfb_local_opts, max_connections) },
	{ "query_cidrs", T_STR, offsetof(struct udfb_local_opts, query_cidrs) },
	{ "egress_cidrs", T_STR, offsetof(struct udfb_local_opts, egress_cidrs) },
};

static void defaults(struct udfb_local_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->runtime = strdup(""); /* runsc when it starts a sandbox here, else runc */
	o->runtime_args = strdup("");
	o->cgroup_parent = strdup("/udfb");
	o->port_min = 20000;
	o->port_max = 29999;
	o->start_timeout_ms = 10000;
	o->idle_ms = 600000;
	o->reap_interval_ms = 1000;
	o->max_per_tenant = 16;
	o->max_total = 64;
	o->memory = 1ll << 30;
	o->tmp_size = 64ll << 20;
	o->log_max = 64ll << 20;
	o->cpu_millis = 1000;
	o->pids = 256;
	o->nofile = 1024;
	o->nproc = 4096;
	o->cgroups_mode = UDFB_LOCAL_CG_AUTO;
	o->seccomp = 1;
	o->network = UDFB_LOCAL_NET_NAMESPACE;
	o->bind_address = strdup("127.0.0.1");
	o->advertise_address = strdup("");
	o->max_connections = 1024;
	o->query_cidrs = strdup("");
	o->egress_cidrs = strdup(""); /* no egress */
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

static int set_one(struct udfb_local_opts *o, const struct opt_def *d, const char *v, struct udfb_err *err)
{
	char *slot = (char *)o + d->off;
	long long n = 0;
	int rc = 0;
	static const char *const what[] = { "",
					    "a whole number",
					    "a size (65536, 512m, 1g)",
					    "1/0, true/false",
					    "a number of CPUs (1, 0.5)",
					    "auto, on or off",
					    "namespace or host" };
	switch (d->type) {
	case T_STR:
		free(*(char **)slot);
		*(char **)slot = strdup(v);
		return 0;
	case T_LONG:
		rc = parse_long(v, &n);
		if (rc == 0)
			*(long *)slot = (long)n;
		break;
	case T_SIZE:
		rc = parse_size(v, &n);
		if (rc == 0)
			*(long long *)slot = n;
		break;
	case T_BOOL:
		rc = parse_bool(v, &n);
		if (rc == 0)
			*(int *)slot = (int)n;
		break;
	case T_CPUS:
		rc = parse_cpus(v, &n);
		if (rc == 0)
			*(long *)slot = (long)n;
		break;
	case T_CGMODE:
		rc = strcmp(v, "auto") == 0  ? (*(int *)slot = UDFB_LOCAL_CG_AUTO, 0)
		     : strcmp(v, "on") == 0  ? (*(int *)slot = UDFB_LOCAL_CG_ON, 0)
		     : strcmp(v, "off") == 0 ? (*(int *)slot = UDFB_LOCAL_CG_OFF, 0)
					     : -1;
		break;
	case T_NETMODE:
		rc = strcmp(v, "namespace") == 0 ? (*(int *)slot = UDFB_LOCAL_NET_NAMESPACE, 0)
		     : strcmp(v, "host") == 0	 ? (*(int *)slot = UDFB_LOCAL_NET_HOST, 0)
						 : -1;
		break;
	}
	if (rc < 0)
		return udfb_err_set(err, UDFB_E_INVALID, "scheduler option %s '%.64s': expected %s", d->name, v,
				    what[d->type]);
	return 0;
}

static int unknown(const char *key, struct udfb_err *err)
{
	struct udfb_buf b;
	udfb_buf_init(&b, 4096);
	for (size_t k = 0; k < sizeof(defs) / sizeof(*defs); k++)
		udfb_buf_printf(&b, "%s%s", k ? ", " : "", defs[k].name);
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
		const struct opt_def *d = NULL;
		for (size_t k = 0; k < sizeof(defs) / sizeof(*defs) && !d; k++)
			if (strcmp(defs[k].name, key) == 0)
				d = &defs[k];
		if (!d)
			return unknown(key, err);
		if (set_one(o, d, json_string_value(v) ? json_string_value(v) : "", err) < 0)
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
	char **strs[] = {
		&o->runtime,	   &o->runtime_args, &o->runtime_root,	    &o->state_dir,   &o->layers_dir,
		&o->cgroup_parent, &o->bind_address, &o->advertise_address, &o->query_cidrs, &o->egress_cidrs
	};
	for (size_t k = 0; k < sizeof(strs) / sizeof(*strs); k++) {
		free(*strs[k]);
		*strs[k] = NULL;
	}
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
