/* udf-builder serve: the ApplyUdfResource service.  Settings come from the
 * embedded defaults, --config FILE (or UDFB_CONFIG), UDFB_* variables and
 * flags, in that order (docs/configuration.md).  SIGTERM or SIGINT stops it
 * gracefully and it exits 0. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/admin.h"
#include "cmd/cli.h"
#include "cmd/grpc_server.h"
#include "common/log.h"
#include "image/ocilayout.h"
#include "service/service.h"

static const char serve_usage[] =
	"usage: udf-builder serve [OPTIONS]\n"
	"  --config FILE             JSON settings file (also UDFB_CONFIG)\n"
	"  --listen ADDR             gRPC address (127.0.0.1:50051)\n"
	"  --admin-listen ADDR       /healthz /readyz /metrics address, \"\" for none (127.0.0.1:9090)\n"
	"  --store DIR               local store (docs/cli.md for the default)\n"
	"  --base-image RUNTIME=REF  base image for a Python runtime, repeatable (3.12=oci:DIR:TAG)\n"
	"  --default-runtime RUNTIME runtime for a spec without runtime_version (the first base)\n"
	"  --dest REF                where images are published (oci:STORE/images)\n"
	"  --scheduler NAME          sandbox backend: local (default) or template (docs/service.md)\n"
	"  --endpoint-template PAT   template scheduler's endpoint ({key}, {key12}, {tenant})\n"
	"  --scheduler-opt KEY=VALUE a setting of the scheduler backend, repeatable (docs/service.md)\n"
	"  --default-tenant NAME     tenant of calls without x-databend-tenant (none: refused)\n"
	"  --deadline-mode MODE      fail (DEADLINE_EXCEEDED) or accepted (answer the coming endpoint)\n"
	"  --deadline-margin-ms N    answer this long before the call's deadline (100)\n"
	"  --call-workers N          threads serving calls that wait for builds (32)\n"
	"  --max-queued-calls N      calls of one tenant waiting for a call worker (64)\n"
	"  --max-cached-calls N      entries per in-memory call table: fingerprints, flights... (65536)\n"
	"  --build-workers N         builds at once (2)\n"
	"  --failure-ttl-ms N        how long a deterministic build failure is remembered (30000)\n"
	"  --grace-ms N              shutdown grace period for calls in flight (10000)\n"
	"  --token-ttl-s N           how long an x-authorization token is good for (3600)\n"
	"  --tls-cert FILE --tls-key FILE  serve gRPC over TLS (PEM; read again on SIGHUP)\n"
	"  --tls-client-ca FILE      require client certificates signed by this CA (mutual TLS)\n"
	"  --salt S                  cache-key salt\n"
	"  --runtime-packages REQS   requirements put into every base once, e.g. databend-udf (from --index-url)\n"
	"  --imports-allow HOST_OR_CIDR  let imports connect to a guarded address, repeatable\n"
	"  --imports-max-bytes N     bytes per import (256 MiB); also -max-request-bytes (1 GiB),\n"
	"                            -max-count (64), -connect-timeout-ms, -low-speed-time-s,\n"
	"                            -timeout-ms (300000), -attempts (4), -parallel (8), -ca-bundle FILE\n"
	"  --imports-revalidate-ms N how long a script's import, once validated, is trusted (30000)\n"
	"  --log-level LEVEL         debug, info, warn, error (info)\n";

static const char *const flag_names[] = { "listen",
					  "admin-listen",
					  "store",
					  "base-image",
					  "default-runtime",
					  "dest",
					  "scheduler",
					  "endpoint-template",
					  "default-tenant",
					  "deadline-mode",
					  "deadline-margin-ms",
					  "call-workers",
					  "max-queued-calls",
					  "max-cached-calls",
					  "build-workers",
					  "failure-ttl-ms",
					  "grace-ms",
					  "salt",
					  "runtime-packages",
					  "log-level",
					  "imports-allow",
					  "imports-max-bytes",
					  "imports-max-request-bytes",
					  "imports-max-count",
					  "imports-connect-timeout-ms",
					  "imports-low-speed-time-s",
					  "imports-timeout-ms",
					  "imports-attempts",
					  "imports-parallel",
					  "imports-ca-bundle",
					  "imports-revalidate-ms",
					  "scheduler-opt",
					  "index-url",
					  "packages-glibc",
					  "packages-python",
					  "packages-layer-budget",
					  "packages-max-unpacked",
					  "packages-max-unpack-ms",
					  "token-ttl-s",
					  "tls-cert",
					  "tls-key",
					  "tls-client-ca",
					  NULL };

static int load_config(struct udfb_config *cfg, int argc, char **argv, struct udfb_err *err)
{
	struct option opts[64];
	int n = 0;
	for (; flag_names[n]; n++)
		opts[n] = (struct option){ flag_names[n], required_argument, NULL, 0 };
	opts[n++] = (struct option){ "config", required_argument, NULL, 0 };
	opts[n++] = (struct option){ "help", no_argument, NULL, 'h' };
	opts[n] = (struct option){ NULL, 0, NULL, 0 };
	udfb_config_defaults(cfg);
	/* The file first, so that environment and flags override it. */
	const char *file = getenv("UDFB_CONFIG");
	for (int k = 1; k < argc - 1; k++)
		if (strcmp(argv[k], "--config") == 0)
			file = argv[k + 1];
	if (file && *file && udfb_config_load_file(cfg, file, err) < 0)
		return -1;
	if (udfb_config_load_env(cfg, err) < 0)
		return -1;
	optind = 1;
	opterr = 0;
	int ch, idx = 0;
	while ((ch = getopt_long(argc, argv, "", opts, &idx)) != -1) {
		if (ch == 'h') {
			fputs(serve_usage, stdout);
			exit(0);
		}
		if (ch == '?')
			return udfb_err_set(err, UDFB_E_INVALID, "serve: unknown option '%s'", argv[optind - 1]);
		if (strcmp(opts[idx].name, "config") != 0 && udfb_config_set(cfg, opts[idx].name, optarg, err) < 0)
			return udfb_err_wrap(err, "--%s", opts[idx].name);
	}
	if (optind < argc)
		return udfb_err_set(err, UDFB_E_INVALID, "serve: unexpected argument '%s'", argv[optind]);
	return 0;
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
	if (pending)
		/* Blobs land by rename and temporary files are swept at start:
		 * leaving builds behind loses nothing but their work. */
		udfb_warn("exiting with %d builds unfinished", pending);
	else
		udfb_service_free(svc);
	return rc < 0 ? udfb_cli_fail(&err) : 0;
}
