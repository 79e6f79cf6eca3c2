/* udf-builder serve: the ApplyUdfResource service.  Settings come from the
 * embedded defaults, --config FILE (or UDFB_CONFIG), UDFB_* variables and
 * flags, in that order (docs/configuration.md).  SIGTERM or SIGINT stops it
 * gracefully and it exits 0. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "service/admin.h"
#include "cmd/cli.h"
#include "cmd/grpc_server.h"
#include "common/log.h"
#include "image/ocilayout.h"
#include "service/service.h"

/* The service's sections: each row is a flag, a file key and a variable. */
static const struct udfb_settings *const sections[] = { &udfb_settings_service, &udfb_settings_imports,
							&udfb_settings_packages };

static void usage(FILE *f)
{
	fputs("usage: udf-builder serve [OPTIONS]   (docs/configuration.md: the file and the environment)\n", f);
	for (size_t k = 0; k < sizeof(sections) / sizeof(*sections); k++)
		udfb_settings_usage(f, sections[k], NULL);
}

/* The file first (--config or UDFB_CONFIG), so that the environment and
 * the flags override it. */
static int load_config(struct udfb_config *cfg, int argc, char **argv, struct udfb_err *err)
{
	udfb_config_defaults(cfg);
	const char *file = udfb_settings_prescan(argc, argv, "config");
	if (!file)
		file = getenv("UDFB_CONFIG");
	if (file && *file && udfb_config_load_file(cfg, file, err) < 0)
		return -1;
	if (udfb_config_load_env(cfg, err) < 0)
		return -1;
	void *const objs[] = { cfg, cfg, cfg };
	int first = 0;
	int rc = udfb_settings_parse_args(sections, objs, 3, NULL, "serve", argc, argv, &first, err);
	if (rc == 1) {
		usage(stdout);
		exit(0);
	}
	if (rc == 0 && first < argc)
		return udfb_err_set(err, UDFB_E_INVALID, "serve: unexpected argument '%s'", argv[first]);
	return rc;
}

static int admin_ready(void *ctx)
{
	return udfb_service_ready(ctx);
}

static int run(struct udfb_service *svc, const sigset_t *stop, struct udfb_err *err)
{
	const struct udfb_config *cfg = udfb_service_config(svc);
	struct udfb_admin *admin = NULL;
	if (*cfg->admin_listen &&
	    udfb_admin_start(&admin, cfg->admin_listen, udfb_service_metrics(svc), admin_ready, svc, err) < 0)
		return -1;
	/* An OCI-layout destination's index.json is derived 200 ms after the
	 * last tag, at most 2 s after the first (docs/store.md). */
	if (udfb_oci_autosync_start(200, 2000, err) < 0) {
		udfb_admin_stop(admin);
		return -1;
	}
	struct udfb_grpc_server *g = NULL;
	int port = 0;
	if (udfb_grpc_server_start(&g, svc, cfg->listen, &port, err) < 0) {
		udfb_admin_stop(admin);
		udfb_oci_autosync_stop(err);
		return -1;
	}
	/* One line on stdout for whoever started us (tests ask for port 0). */
	printf("serving grpc_port=%d admin_port=%d\n", port, admin ? udfb_admin_port(admin) : 0);
	fflush(stdout);
	udfb_info("ApplyUdfResource on %s (port %d), scheduler %s", cfg->listen, port, cfg->scheduler);
	int sig = 0;
	while (sigwait(stop, &sig) == 0 && sig == SIGHUP) {
		udfb_info("SIGHUP: TLS certificates are read again at the next connection");
		udfb_grpc_server_reload(g);
	}
	udfb_info("signal %d: stopping (grace %d ms)", sig, cfg->grace_ms);
	udfb_grpc_server_shutdown(g, cfg->grace_ms);
	udfb_admin_stop(admin);
	struct udfb_err e = UDFB_ERR_INIT;
	if (udfb_oci_autosync_stop(&e) < 0)
		udfb_warn("tags: %s", e.msg);
	udfb_err_clear(&e);
	return 0;
}

int udfb_cmd_serve(int argc, char **argv)
{
	struct udfb_err err = UDFB_ERR_INIT;
	struct udfb_config cfg;
	if (load_config(&cfg, argc, argv, &err) < 0) {
		udfb_config_free(&cfg);
		return udfb_cli_fail(&err);
	}
	enum udfb_log_level level = UDFB_LOG_INFO;
	if (udfb_log_parse_level(cfg.log_level, &level) == 0)
		udfb_log_init(level, -1);
	/* Every thread inherits this mask; only sigwait() sees the signals. */
	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	signal(SIGPIPE, SIG_IGN);
	struct udfb_service *svc = NULL;
	if (udfb_service_new(&svc, &cfg, &err) < 0) {
		udfb_config_free(&cfg);
		return udfb_cli_fail(&err);
	}
	int rc = run(svc, &stop, &err);
	int pending = udfb_service_builds_running(svc);
	if (pending) {
		/* Blobs land by rename and temporary files are swept at start:
		 * leaving builds behind loses nothing but their work.  exit()
		 * would run the libraries' atexit cleanups (OpenSSL, libcurl)
		 * under the build threads still using them: a SIGSEGV at
		 * shutdown, seen in the soak; _exit() skips them. */
		udfb_warn("exiting with %d builds unfinished", pending);
		int code = rc < 0 ? udfb_cli_fail(&err) : 0;
		fflush(NULL);
		_exit(code);
	}
	udfb_service_free(svc);
	return rc < 0 ? udfb_cli_fail(&err) : 0;
}
