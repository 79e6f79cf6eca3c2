/* A sandbox's config.json: see runtime_spec.h.  Written with jansson; the
 * runtime (runc, runsc) reads it from the bundle directory. */
#include "common/jsonout.h"
#include "scheduler/runtime_spec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NOBODY 65534u

/* Denied with EPERM over a default of allow: what a UDF server never needs
 * and what widens the kernel's attack surface (module loading, mounts,
 * namespaces, tracing other processes, keyrings, BPF, io_uring,
 * userfaultfd, clock and reboot).  Most already fail without capabilities;
 * the filter keeps them off even where a kernel bug would let one through. */
static const char *const denied[] = {
	"acct",
	"add_key",
	"bpf",
	"clock_adjtime",
	"clock_settime",
	"create_module",
	"delete_module",
	"fanotify_init",
	"finit_module",
	"fsconfig",
	"fsmount",
	"fsopen",
	"fspick",
	"get_kernel_syms",
	"init_module",
	"io_uring_enter",
	"io_uring_register",
	"io_uring_setup",
	"ioperm",
	"iopl",
	"kcmp",
	"kexec_file_load",
	"kexec_load",
	"keyctl",
	"lookup_dcookie",
	"mount",
	"mount_setattr",
	"move_mount",
	"name_to_handle_at",
	"nfsservctl",
	"open_by_handle_at",
	"open_tree",
	"perf_event_open",
	"pidfd_getfd",
	"pivot_root",
	"process_madvise",
	"process_vm_readv",
	"process_vm_writev",
	"ptrace",
	"query_module",
	"quotactl",
	"quotactl_fd",
	"reboot",
	"request_key",
	"setns",
	"settimeofday",
	"stime",
	"swapoff",
	"swapon",
	"sysfs",
	"_sysctl",
	"syslog",
	"umount",
	"umount2",
	"unshare",
	"uselib",
	"userfaultfd",
	"ustat",
	"vm86",
	"vm86old",
	NULL,
};

#define CLONE_NEWUSER_FLAG 0x10000000

static json_t *seccomp_profile(void)
{
	json_t *names = json_array();
	for (int k = 0; denied[k]; k++)
		json_array_append_new(names, json_string(denied[k]));
#if defined(__x86_64__)
	json_t *arches = udfb_json_must(json_pack("[sss]", "SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"));
#elif defined(__aarch64__)
	json_t *arches = udfb_json_must(json_pack("[ss]", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"));
#else
	json_t *arches = json_array();
#endif
	/* clone3 passes its flags in memory, where a filter cannot look:
	 * ENOSYS makes libc fall back to clone, whose flags are checked. */
	return udfb_json_must(
		json_pack("{s:s,s:o,s:[{s:o,s:s,s:i},{s:[s],s:s,s:i},{s:[s],s:s,s:i,s:[{s:i,s:I,s:I,s:s}]}]}",
			  "defaultAction", "SCMP_ACT_ALLOW", "architectures", arches, "syscalls", "names", names,
			  "action", "SCMP_ACT_ERRNO", "errnoRet", EPERM, "names", "clone3", "action", "SCMP_ACT_ERRNO",
			  "errnoRet", ENOSYS, "names", "clone", "action", "SCMP_ACT_ERRNO", "errnoRet", EPERM, "args",
			  "index", 0, "value", (json_int_t)CLONE_NEWUSER_FLAG, "valueTwo",
			  (json_int_t)CLONE_NEWUSER_FLAG, "op", "SCMP_CMP_MASKED_EQ"));
}

static int parse_id(const char *s, size_t n, unsigned *out)
{
	if (n == 0 || n > 10)
		return -1;
	unsigned long v = 0;
	for (size_t k = 0; k < n; k++) {
		if (s[k] < '0' || s[k] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[k] - '0');
	}
	if (v > 0x7fffffffUL)
		return -1;
	*out = (unsigned)v;
	return 0;
}

int udfb_runtime_user(unsigned *uid, unsigned *gid, json_t *image_config, struct udfb_err *err)
{
	const char *user = json_string_value(json_object_get(image_config, "User"));
	*uid = *gid = NOBODY;
	if (!user || !*user)
		return 0;
	const char *colon = strchr(user, ':');
	size_t un = colon ? (size_t)(colon - user) : strlen(user);
	if (parse_id(user, un, uid) < 0 || (colon && parse_id(colon + 1, strlen(colon + 1), gid) < 0))
		return udfb_err_set(err, UDFB_E_UNSUPPORTED, "image user '%.64s': only numeric uid[:gid] is supported",
				    user);
	if (!colon)
		*gid = *uid;
	if (*uid == 0 || *gid == 0)
		return udfb_err_set(err, UDFB_E_INVALID, "image user '%.64s': sandboxes never run as root", user);
	return 0;
}

/* name=value entries: a later one replaces an earlier one of the same name. */
static void env_put(json_t *env, const char *entry)
{
	const char *eq = strchr(entry, '=');
	size_t n = eq ? (size_t)(eq - entry) + 1 : strlen(entry);
	size_t k;
	json_t *v;
	json_array_foreach(env, k, v) {
		if (strncmp(json_string_value(v), entry, n) == 0) {
			json_array_set_new(env, k, json_string(entry));
			return;
		}
	}
	json_array_append_new(env, json_string(entry));
}

static json_t *process_env(const struct udfb_spec_opts *o)
{
	json_t *env = json_array(), *v;
	size_t k;
	json_array_foreach(json_object_get(o->image_config, "Env"), k, v)
		if (json_is_string(v) && strchr(json_string_value(v), '='))
			env_put(env, json_string_value(v));
	if (!json_array_size(env))
		env_put(env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	for (size_t j = 0; j < o->n_env; j++)
		env_put(env, o->env[j]);
	return env;
}

static json_t *process_args(json_t *image_config)
{
	json_t *args = json_array(), *v;
	size_t k;
	static const char *const parts[] = { "Entrypoint", "Cmd" };
	for (int p = 0; p < 2; p++)
		json_array_foreach(json_object_get(image_config, parts[p]), k, v)
			if (json_is_string(v))
				json_array_append(args, v);
	return args;
}

static json_t *rlimit(const char *type, long n)
{
	return udfb_json_must(json_pack("{s:s,s:I,s:I}", "type", type, "hard", (json_int_t)n, "soft", (json_int_t)n));
}

static json_t *process(const struct udfb_spec_opts *o, unsigned uid, unsigned gid, json_t *args)
{
	const char *cwd = json_string_value(json_object_get(o->image_config, "WorkingDir"));
	json_t *caps = json_object();
	static const char *const sets[] = { "bounding", "effective", "inheritable", "permitted", "ambient" };
	for (int k = 0; k < 5; k++)
		json_object_set_new(caps, sets[k], json_array());
	json_t *limits =
		udfb_json_must(json_pack("[o,o]", rlimit("RLIMIT_NOFILE", o->nofile), rlimit("RLIMIT_CORE", 0)));
	if (o->nproc > 0)
		json_array_append_new(limits, rlimit("RLIMIT_NPROC", o->nproc));
	if (o->fsize > 0)
		json_array_append_new(limits, rlimit("RLIMIT_FSIZE", (long)o->fsize));
	return udfb_json_must(json_pack("{s:b,s:{s:I,s:I},s:o,s:o,s:s,s:o,s:o,s:b,s:i}", "terminal", 0, "user", "uid",
					(json_int_t)uid, "gid", (json_int_t)gid, "args", args, "env", process_env(o),
					"cwd", cwd && *cwd == '/' ? cwd : "/", "capabilities", caps, "rlimits", limits,
					"noNewPrivileges", 1, "oomScoreAdj", 500));
}

static json_t *mounts(const struct udfb_spec_opts *o)
{
	char tmp_size[64];
	snprintf(tmp_size, sizeof(tmp_size), "size=%lld", o->tmp_bytes);
	return udfb_json_must(
		json_pack("[{s:s,s:s,s:s,s:[sss]},"
			  "{s:s,s:s,s:s,s:[ssss]},"
			  "{s:s,s:s,s:s,s:[ssssss]},"
			  "{s:s,s:s,s:s,s:[sssss]},"
			  "{s:s,s:s,s:s,s:[sss]},"
			  "{s:s,s:s,s:s,s:[ssss]}]",
			  "destination", "/proc", "type", "proc", "source", "proc", "options", "nosuid", "noexec",
			  "nodev", "destination", "/dev", "type", "tmpfs", "source", "tmpfs", "options", "nosuid",
			  "strictatime", "mode=755", "size=65536k", "destination", "/dev/pts", "type", "devpts",
			  "source", "devpts", "options", "nosuid", "noexec", "newinstance", "ptmxmode=0666",
			  "mode=0620", "gid=5", "destination", "/dev/shm", "type", "tmpfs", "source", "shm", "options",
			  "nosuid", "noexec", "nodev", "mode=1777", "size=65536k", "destination", "/dev/mqueue", "type",
			  "mqueue", "source", "mqueue", "options", "nosuid", "noexec", "nodev", "destination", "/tmp",
			  "type", "tmpfs", "source", "tmpfs", "options", "nosuid", "nodev", "mode=1777", tmp_size));
}

static json_t *resources(const struct udfb_spec_opts *o)
{
	json_t *r = udfb_json_must(json_pack("{s:[{s:b,s:s}]}", "devices", "allow", 0, "access", "rwm"));
	if ((o->cgroups & UDFB_CG_MEMORY) && o->memory_bytes > 0)
		json_object_set_new(r, "memory",
				    udfb_json_must(json_pack("{s:I}", "limit", (json_int_t)o->memory_bytes)));
	if ((o->cgroups & UDFB_CG_CPU) && o->cpu_millis > 0)
		json_object_set_new(r, "cpu",
				    udfb_json_must(json_pack("{s:I,s:I}", "quota", (json_int_t)o->cpu_millis * 100,
							     "period", (json_int_t)100000)));
	if ((o->cgroups & UDFB_CG_PIDS) && o->pids > 0)
		json_object_set_new(r, "pids", udfb_json_must(json_pack("{s:I}", "limit", (json_int_t)o->pids)));
	return r;
}

static json_t *linux_section(const struct udfb_spec_opts *o)
{
	json_t *l = udfb_json_must(json_pack("{s:[{s:s},{s:s},{s:s},{s:s},{s:s}],s:o,"
					     "s:[ssssssssss],s:[sssss]}",
					     "namespaces", "type", "pid", "type", "ipc", "type", "uts", "type", "mount",
					     "type", "cgroup", "resources", resources(o), "maskedPaths", "/proc/acpi",
					     "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
					     "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
					     "/sys/firmware", "/proc/scsi", "readonlyPaths", "/proc/bus", "/proc/fs",
					     "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"));
	if (o->cgroups_path)
		json_object_set_new(l, "cgroupsPath", json_string(o->cgroups_path));
	if (o->seccomp)
		json_object_set_new(l, "seccomp", seccomp_profile());
	return l;
}

int udfb_runtime_spec(json_t **out, const struct udfb_spec_opts *o, struct udfb_err *err)
{
	unsigned uid, gid;
	if (udfb_runtime_user(&uid, &gid, o->image_config, err) < 0)
		return -1;
	json_t *args = process_args(o->image_config);
	if (!json_array_size(args)) {
		json_decref(args);
		return udfb_err_set(err, UDFB_E_INVALID, "image: no Entrypoint or Cmd to run");
	}
	*out = udfb_json_must(json_pack("{s:s,s:o,s:{s:s,s:b},s:s,s:o,s:o}", "ociVersion", "1.0.2", "process",
					process(o, uid, gid, args), "root", "path", o->rootfs, "readonly", 1,
					"hostname", o->hostname, "mounts", mounts(o), "linux", linux_section(o)));
	return 0;
}
