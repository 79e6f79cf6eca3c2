/* docker credential helpers: `docker-credential-<name> get` reads the
 * server on stdin and prints {"ServerURL","Username","Secret"}, or says
 * "credentials not found" and exits non-zero.  Its stdin is a socket so a
 * helper that exits early cannot kill us with SIGPIPE; its output is
 * bounded, its run time limited, and its environment the few variables
 * helpers use (helper_var), never the service's secrets. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/clock.h"
#include "registry-client/dockercfg.h"

#define HELPER_OUT_MAX (64u << 10)
#define HELPER_TIMEOUT_MS 30000

extern char **environ;

static int helper_name_valid(const char *h)
{
	if (!*h || strlen(h) > 64)
		return 0;
	for (const char *c = h; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
		      strchr("._-", *c)))
			return 0;
	return 1;
}

/* A helper gets what helpers use, not the service's whole environment
 * (UDFB_TOKEN_SECRETS, a registry password, a kube token...): the search
 * path, the home and config directories, locale and time zone, proxies and
 * CA files, the D-Bus session (secretservice), pass's and GnuPG's
 * directories, and the cloud SDKs' own variables (ecr-login, gcr, acr). */
static int helper_var(const char *kv)
{
	static const char *const names[] = { "PATH",
					     "HOME",
					     "USER",
					     "LOGNAME",
					     "LANG",
					     "LC_ALL",
					     "LC_CTYPE",
					     "TZ",
					     "TMPDIR",
					     "DOCKER_CONFIG",
					     "XDG_CONFIG_HOME",
					     "XDG_DATA_HOME",
					     "XDG_CACHE_HOME",
					     "XDG_RUNTIME_DIR",
					     "DBUS_SESSION_BUS_ADDRESS",
					     "PASSWORD_STORE_DIR",
					     "GNUPGHOME",
					     "SSL_CERT_FILE",
					     "SSL_CERT_DIR",
					     "HTTP_PROXY",
					     "HTTPS_PROXY",
					     "NO_PROXY",
					     "http_proxy",
					     "https_proxy",
					     "no_proxy",
					     "GOOGLE_APPLICATION_CREDENTIALS" };
	static const char *const prefixes[] = { "AWS_", "CLOUDSDK_", "AZURE_" };
	const char *eq = strchr(kv, '=');
	if (!eq)
		return 0;
	size_t n = (size_t)(eq - kv);
	for (size_t k = 0; k < sizeof(names) / sizeof(*names); k++)
		if (strlen(names[k]) == n && memcmp(kv, names[k], n) == 0)
			return 1;
	for (size_t k = 0; k < sizeof(prefixes) / sizeof(*prefixes); k++)
		if (strncmp(kv, prefixes[k], strlen(prefixes[k])) == 0)
			return 1;
	return 0;
}

/* The helper's environment: pointers into environ, NULL-terminated. */
static char **helper_env(void)
{
	size_t n = 0;
	while (environ && environ[n])
		n++;
	char **env = udfb_calloc(n + 1, sizeof(char *));
	size_t m = 0;
	for (size_t k = 0; k < n; k++)
		if (helper_var(environ[k]))
			env[m++] = environ[k];
	return env;
}

static int spawn(pid_t *pid, int *in, int *out, const char *prog, struct udfb_err *err)
{
	int sin[2], sout[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sin) < 0)
		return udfb_err_sys(err, errno, "credential helper %s", prog);
	if (pipe2(sout, O_CLOEXEC) < 0) {
		close(sin[0]), close(sin[1]);
		return udfb_err_sys(err, errno, "credential helper %s", prog);
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, sin[1], 0);
	posix_spawn_file_actions_adddup2(&fa, sout[1], 1);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	char *argv[] = { (char *)prog, "get", NULL };
	char **env = helper_env();
	int rc = posix_spawnp(pid, prog, &fa, NULL, argv, env);
	free(env);
	posix_spawn_file_actions_destroy(&fa);
	close(sin[1]);
	close(sout[1]);
	if (rc != 0) {
		close(sin[0]), close(sout[0]);
		return udfb_err_set(err, UDFB_E_UNAVAILABLE, "credential helper %s: cannot run it: %s", prog,
				    strerror(rc));
	}
	*in = sin[0];
	*out = sout[0];
	return 0;
}

/* Read all of fd within the time limit; -1 on timeout or overflow. */
static int read_all(int fd, struct udfb_buf *b)
{
	long long end = udfb_now_ms() + HELPER_TIMEOUT_MS;
	char chunk[4096];
	for (;;) {
		long long left = end - udfb_now_ms();
		struct pollfd p = { fd, POLLIN, 0 };
		if (left <= 0 || poll(&p, 1, (int)left) == 0)
			return -1;
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return n == 0 ? 0 : -1;
		if (udfb_buf_add(b, chunk, (size_t)n) < 0)
			return -1;
	}
}

static int parse_answer(struct udfb_cred *out, const struct udfb_buf *b, const char *prog, struct udfb_err *err)
{
	json_t *j = json_loadb(b->data ? b->data : "", b->len, 0, NULL);
	const char *user = json_string_value(json_object_get(j, "Username"));
	const char *secret = json_string_value(json_object_get(j, "Secret"));
	int rc = 0;
	if (!secret || !*secret) {
		rc = udfb_err_set(err, UDFB_E_UNAVAILABLE, "credential helper %s: no Secret in its answer", prog);
	} else if (user && strcmp(user, "<token>") == 0) {
		out->identity_token = udfb_strdup(secret); /* docker's marker for an identity token */
	} else {
		out->username = udfb_strdup(user ? user : "");
		out->password = udfb_strdup(secret);
	}
	if (rc == 0)
		out->source = udfb_strdup(prog);
	json_decref(j);
	return rc;
}

int udfb_dockercfg_helper_get(struct udfb_cred *out, const char *helper, const char *server, struct udfb_err *err)
{
	memset(out, 0, sizeof(*out));
	char prog[96];
	if (!helper_name_valid(helper))
		return udfb_err_set(err, UDFB_E_INVALID, "credential helper name '%.64s' is not a plain name", helper);
	snprintf(prog, sizeof(prog), "docker-credential-%s", helper);
	pid_t pid;
	int in = -1, fd = -1;
	if (spawn(&pid, &in, &fd, prog, err) < 0)
		return -1;
	send(in, server, strlen(server), MSG_NOSIGNAL);
	close(in);
	struct udfb_buf b;
	udfb_buf_init(&b, HELPER_OUT_MAX);
	int rd = read_all(fd, &b);
	close(fd);
	if (rd < 0)
		kill(pid, SIGKILL);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	int rc;
	if (rd < 0)
		rc = udfb_err_set(err, UDFB_E_UNAVAILABLE, "credential helper %s: no answer within %d s, or too long",
				  prog, HELPER_TIMEOUT_MS / 1000);
	else if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		rc = parse_answer(out, &b, prog, err) < 0 ? -1 : 1;
	else if (b.data && strstr(b.data, "credentials not found"))
		rc = 0;
	else
		rc = udfb_err_set(err, UDFB_E_UNAVAILABLE, "credential helper %s failed (%s %d)", prog,
				  WIFEXITED(status) ? "exit" : "signal",
				  WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	if (b.data)
		OPENSSL_cleanse(b.data, b.len);
	udfb_buf_free(&b);
	return rc;
}
