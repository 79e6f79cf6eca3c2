/* A sandbox's OCI runtime spec (scheduler/runtime_spec.c) and the local
 * scheduler's settings (scheduler/local_opts.c). */
#include <stdlib.h>

#include "check.h"
#include "scheduler/local.h"
#include "scheduler/runtime_spec.h"

static json_t *image_config(const char *user)
{
	json_t *c = json_pack("{s:[ss],s:[s],s:[sss],s:s}", "Env", "PATH=/usr/bin:/bin", "UDF_SERVER_ADDR=0.0.0.0:1",
			      "Entrypoint", "python3", "Cmd", "-X", "databend_import_directory=/app/imports",
			      "/app/server.py", "WorkingDir", "/app");
	if (user)
		json_object_set_new(c, "User", json_string(user));
	return c;
}

static void test_users(void)
{
	static const struct {
		const char *user;
		int ok;
		unsigned uid, gid;
	} cases[] = { { NULL, 1, 65534, 65534 }, { "", 1, 65534, 65534 },	 { "65534:65534", 1, 65534, 65534 },
		      { "1000", 1, 1000, 1000 }, { "1000:2000", 1, 1000, 2000 }, { "0", 0, 0, 0 },
		      { "1000:0", 0, 0, 0 },	 { "nobody", 0, 0, 0 },		 { "12a", 0, 0, 0 },
		      { "99999999999", 0, 0, 0 } };
	for (size_t k = 0; k < sizeof(cases) / sizeof(*cases); k++) {
		json_t *c = image_config(cases[k].user);
		struct udfb_err err = UDFB_ERR_INIT;
		unsigned uid = 0, gid = 0;
		int rc = udfb_runtime_user(&uid, &gid, c, &err);
		if (cases[k].ok)
			CHECK(rc == 0 && uid == cases[k].uid && gid == cases[k].gid, "user '%s' runs as %u:%u",
			      cases[k].user ? cases[k].user : "(none)", cases[k].uid, cases[k].gid);
		else
			CHECK(rc < 0 && err.msg, "user '%s' is refused (%s)", cases[k].user,
			      err.msg ? err.msg : "accepted");
		udfb_err_clear(&err);
		json_decref(c);
	}
}

static int has_string(json_t *arr, const char *s)
{
	size_t k;
	json_t *v;
	json_array_foreach(arr, k, v)
		if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
			return 1;
	return 0;
}

static void test_spec(void)
{
	json_t *c = image_config("65534:65534");
	const char *env[] = { "UDF_ENV_TEST=ok", "UDF_SERVER_ADDR=127.0.0.1:21000",
			      "RESOURCE_STATUS_ADDR=127.0.0.1:21001" };
	struct udfb_spec_opts o = { .rootfs = "/x/rootfs",
				    .hostname = "udf-abc",
				    .image_config = c,
				    .env = env,
				    .n_env = 3,
				    .cgroups = UDFB_CG_MEMORY | UDFB_CG_PIDS,
				    .cgroups_path = "/udfb/id",
				    .memory_bytes = 1 << 28,
				    .cpu_millis = 500,
				    .pids = 64,
				    .nofile = 1024,
				    .nproc = 4096,
				    .fsize = 1 << 20,
				    .tmp_bytes = 1 << 26,
				    .seccomp = 1 };
	json_t *s = NULL;
	struct udfb_err err = UDFB_ERR_INIT;
	CHECK(udfb_runtime_spec(&s, &o, &err) == 0, "a spec is made");
	json_t *p = json_object_get(s, "process");
	json_t *args = json_object_get(p, "args");
	CHECK(json_array_size(args) == 4 && strcmp(json_string_value(json_array_get(args, 0)), "python3") == 0 &&
		      strcmp(json_string_value(json_array_get(args, 3)), "/app/server.py") == 0,
	      "args are Entrypoint then Cmd");
	CHECK_STR(json_string_value(json_object_get(p, "cwd")), "/app", "cwd is WorkingDir");
	json_t *e = json_object_get(p, "env");
	CHECK(has_string(e, "UDF_SERVER_ADDR=127.0.0.1:21000") && !has_string(e, "UDF_SERVER_ADDR=0.0.0.0:1"),
	      "our variables replace the image's of the same name");
	CHECK(has_string(e, "PATH=/usr/bin:/bin") && has_string(e, "UDF_ENV_TEST=ok"),
	      "the image's and the operator's variables are there");
	CHECK(json_is_true(json_object_get(p, "noNewPrivileges")), "noNewPrivileges");
	json_t *caps = json_object_get(p, "capabilities");
	CHECK(json_array_size(json_object_get(caps, "bounding")) == 0 &&
		      json_array_size(json_object_get(caps, "effective")) == 0 &&
		      json_array_size(json_object_get(caps, "permitted")) == 0,
	      "no capabilities");
	CHECK(json_integer_value(json_object_get(json_object_get(p, "user"), "uid")) == 65534, "uid 65534");
	CHECK(json_is_true(json_object_get(json_object_get(s, "root"), "readonly")), "read-only root");
	json_t *l = json_object_get(s, "linux");
	json_t *r = json_object_get(l, "resources");
	CHECK(json_integer_value(json_object_get(json_object_get(r, "memory"), "limit")) == 1 << 28, "memory limit");
	CHECK(!json_object_get(r, "cpu"), "no cpu section when the host has no cpu controller");
	CHECK(json_integer_value(json_object_get(json_object_get(r, "pids"), "limit")) == 64, "pids limit");
	json_t *seccomp = json_object_get(l, "seccomp");
	CHECK_STR(json_string_value(json_object_get(seccomp, "defaultAction")), "SCMP_ACT_ALLOW", "seccomp default");
	json_t *denied = json_object_get(json_array_get(json_object_get(seccomp, "syscalls"), 0), "names");
	CHECK(has_string(denied, "bpf") && has_string(denied, "ptrace") && has_string(denied, "unshare") &&
		      has_string(denied, "mount") && has_string(denied, "userfaultfd"),
	      "seccomp denies the dangerous calls");
	size_t k;
	json_t *ns, *m;
	int pid_ns = 0, net_ns = 0, tmp = 0;
	json_array_foreach(json_object_get(l, "namespaces"), k, ns) {
		pid_ns |= strcmp(json_string_value(json_object_get(ns, "type")), "pid") == 0;
		net_ns |= strcmp(json_string_value(json_object_get(ns, "type")), "network") == 0;
	}
	CHECK(pid_ns && !net_ns, "a pid namespace of its own, the host's network");
	json_array_foreach(json_object_get(s, "mounts"), k, m)
		tmp |= strcmp(json_string_value(json_object_get(m, "destination")), "/tmp") == 0 &&
		       strcmp(json_string_value(json_object_get(m, "type")), "tmpfs") == 0;
	CHECK(tmp, "a tmpfs /tmp");
	json_decref(s);
	json_decref(c);
	c = json_pack("{s:s}", "User", "65534");
	o.image_config = c;
	s = NULL;
	CHECK(udfb_runtime_spec(&s, &o, &err) < 0 && strstr(err.msg, "no Entrypoint or Cmd"),
	      "an image with nothing to run is refused");
	udfb_err_clear(&err);
	json_decref(c);
}

static void test_opts(void)
{
	struct udfb_local_opts o;
	struct udfb_err err = UDFB_ERR_INIT;
	json_t *j = json_pack("{s:s,s:s,s:s,s:s}", "memory", "512m", "cpus", "1.5", "keep_on_exit", "true", "port_min",
			      "21000");
	CHECK(udfb_local_opts_parse(&o, j, "/store", &err) == 0, "settings parse");
	CHECK(o.memory == 512ll << 20 && o.cpu_millis == 1500 && o.keep_on_exit == 1 && o.port_min == 21000,
	      "512m, 1.5 CPUs, keep_on_exit, port_min");
	CHECK_STR(o.state_dir, "/store/sandboxes", "state_dir defaults into the store");
	CHECK_STR(o.layers_dir, "/store/sandboxes/layers", "layers_dir defaults into state_dir");
	CHECK_STR(o.runtime, "", "no runtime named: runsc where it starts, else runc (chosen at start)");
	CHECK(o.network == UDFB_LOCAL_NET_NAMESPACE && o.max_connections == 1024,
	      "a network namespace per sandbox by default");
	CHECK_STR(o.bind_address, "127.0.0.1", "endpoints on loopback by default");
	udfb_local_opts_free(&o);
	json_decref(j);
	j = json_pack("{s:s,s:s,s:s}", "network", "namespace", "bind_address", "::", "advertise_address",
		      "udf-host.example");
	CHECK(udfb_local_opts_parse(&o, j, "/store", &err) == 0, "a wildcard bind with an advertised name (%s)",
	      err.msg ? err.msg : "ok");
	udfb_err_clear(&err);
	udfb_local_opts_free(&o);
	json_decref(j);
	static const char *const bad[][2] = { { "memroy", "1g" },
					      { "memory", "1q" },
					      { "cpus", "x" },
					      { "keep_on_exit", "maybe" },
					      { "port_min", "80" },
					      { "cgroups", "sometimes" },
					      { "state_dir", "relative" },
					      { "network", "bridge" },
					      { "bind_address", "localhost" },
					      { "bind_address", "0.0.0.0" },
					      { "advertise_address", "a/b" },
					      { "max_connections", "0" } };
	for (size_t k = 0; k < sizeof(bad) / sizeof(*bad); k++) {
		j = json_pack("{s:s}", bad[k][0], bad[k][1]);
		int rc = udfb_local_opts_parse(&o, j, "/store", &err);
		CHECK(rc < 0 && err.cat == UDFB_E_INVALID, "%s=%s is refused (%s)", bad[k][0], bad[k][1],
		      err.msg ? err.msg : "accepted");
		udfb_err_clear(&err);
		udfb_local_opts_free(&o);
		json_decref(j);
	}
}

int main(void)
{
	test_users();
	test_spec();
	test_opts();
	return check_done();
}
