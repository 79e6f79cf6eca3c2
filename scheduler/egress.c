/* Egress of local sandboxes: see egress.h. */
#include "scheduler/egress.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/cleanup.h"
#include "common/fsutil.h"
#include "scheduler/ocirt.h"

#define TOOL_TIMEOUT_MS 10000
#define STOP_WAIT_MS 3000
#define RULESET_MAX (1u << 20)
#define LOG_TAIL 4096

/* ---- the setting ---- */

static int parse_one(struct udfb_egress_net *n, const char *s, size_t len, struct udfb_err *err)
{
	char text[64];
	if (len == 0 || len >= sizeof(text))
		return udfb_err_set(err, UDFB_E_INVALID,
				    "egress_cidrs entry '%.*s': expected an IPv4 network (10.0.0.0/8) "
				    "or address",
				    (int)(len < 64 ? len : 64), s);
	memcpy(text, s, len);
	text[len] = '\0';
	char *slash = strchr(text, '/');
	long plen = 32;
	if (slash) {
		*slash = '\0';
		const char *p = slash + 1;
		plen = 0;
		if (!*p || strlen(p) > 2)
			plen = -1;
		for (; plen >= 0 && *p; p++)
			plen = *p >= '0' && *p <= '9' ? plen * 10 + (*p - '0') : -1;
	}
	if (strchr(text, ':'))
		return udfb_err_set(err, UDFB_E_INVALID,
				    "egress_cidrs entry '%.*s': IPv6 is not offered (a sandbox's link is IPv4 only)",
				    (int)len, s);
	if (inet_pton(AF_INET, text, &n->addr) != 1 || plen < 0 || plen > 32)
		return udfb_err_set(err, UDFB_E_INVALID,
				    "egress_cidrs entry '%.*s': expected an IPv4 network (10.0.0.0/8) "
				    "or address",
				    (int)len, s);
	uint32_t mask = plen ? ~0u << (32 - plen) : 0;
	if (ntohl(n->addr.s_addr) & ~mask)
		return udfb_err_set(err, UDFB_E_INVALID, "egress_cidrs entry '%.*s': bits set past the /%ld prefix",
				    (int)len, s, plen);
	n->len = (int)plen;
	return 0;
}

int udfb_egress_parse(struct udfb_egress *e, const char *text, struct udfb_err *err)
{
	memset(e, 0, sizeof(*e));
	for (const char *p = text ? text : ""; *p;) {
		while (*p == ' ' || *p == ',')
			p++;
		size_t len = strcspn(p, ", ");
		if (!len)
			break;
		e->v = udfb_realloc(e->v, (e->n + 1) * sizeof(*e->v));
		if (parse_one(&e->v[e->n], p, len, err) < 0) {
			udfb_egress_clear(e);
			return -1;
		}
		e->n++;
		p += len;
	}
	return 0;
}

void udfb_egress_clear(struct udfb_egress *e)
{
	free(e->v);
	free(e->to);
	free(e->host_ports);
	memset(e, 0, sizeof(*e));
}

int udfb_egress_any(const struct udfb_egress *e)
{
	return e->n || e->n_to || e->n_host_ports;
}

int udfb_egress_add_dest(struct udfb_egress *e, const char *text, struct udfb_err *err)
{
	char a[INET_ADDRSTRLEN + 1];
	const char *colon = strrchr(text, ':');
	size_t alen = colon ? (size_t)(colon - text) : 0;
	char *end = NULL;
	long port = colon ? strtol(colon + 1, &end, 10) : -1;
	struct in_addr addr;
	if (!colon || alen == 0 || alen >= sizeof(a) || !end || *end || end == colon + 1 || port < 1 || port > 65535)
		return udfb_err_set(err, UDFB_E_INVALID, "egress destination '%.64s': expected ADDR:PORT (IPv4)", text);
	memcpy(a, text, alen);
	a[alen] = '\0';
	if (inet_pton(AF_INET, a, &addr) != 1)
		return udfb_err_set(err, UDFB_E_INVALID, "egress destination '%.64s': expected ADDR:PORT (IPv4)", text);
	if ((ntohl(addr.s_addr) >> 24) == 127) {
		for (size_t k = 0; k < e->n_host_ports; k++)
			if (e->host_ports[k] == port)
				return 0;
		e->host_ports = udfb_realloc(e->host_ports, (e->n_host_ports + 1) * sizeof(int));
		e->host_ports[e->n_host_ports++] = (int)port;
		return 0;
	}
	e->to = udfb_realloc(e->to, (e->n_to + 1) * sizeof(*e->to));
	e->to[e->n_to++] = (struct udfb_egress_dest){ addr, (int)port };
	return 0;
}

static void add_net(struct udfb_buf *b, const struct udfb_egress_net *n, const char *sep)
{
	char a[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &n->addr, a, sizeof(a));
	udfb_buf_printf(b, "%s%s/%d", sep, a, n->len);
}

char *udfb_egress_describe(const struct udfb_egress *e)
{
	struct udfb_buf b;
	udfb_buf_init(&b, RULESET_MAX);
	udfb_buf_addstr(&b, "");
	for (size_t k = 0; k < e->n; k++)
		add_net(&b, &e->v[k], k ? "," : "");
	return udfb_buf_steal(&b, NULL);
}

/* ---- the ruleset ---- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

char *udfb_egress_host_addrs(void)
{
	struct udfb_buf b;
	udfb_buf_init(&b, RULESET_MAX);
	udfb_buf_addstr(&b, "");
	struct ifaddrs *ifs = NULL;
	if (getifaddrs(&ifs) < 0)
		return udfb_buf_steal(&b, NULL);
	size_t n = 0;
	for (struct ifaddrs *i = ifs; i; i = i->ifa_next)
		n++;
	char(*v)[INET_ADDRSTRLEN] = udfb_calloc(n + 1, INET_ADDRSTRLEN);
	char **p = udfb_calloc(n + 1, sizeof(*p));
	size_t k = 0;
	for (struct ifaddrs *i = ifs; i; i = i->ifa_next)
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET) {
			inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, v[k], INET_ADDRSTRLEN);
			p[k] = v[k];
			k++;
		}
	freeifaddrs(ifs);
	qsort(p, k, sizeof(*p), cmp_str); /* one text for one set of addresses */
	for (size_t j = 0; j < k; j++)
		if (!j || strcmp(p[j], p[j - 1]) != 0)
			udfb_buf_printf(&b, "%s%s", b.len ? ", " : "", p[j]);
	free(p);
	free(v);
	return udfb_buf_steal(&b, NULL);
}

char *udfb_egress_ruleset(const struct udfb_egress *e, const char *host_addrs)
{
	struct udfb_buf b;
	udfb_buf_init(&b, RULESET_MAX);
	udfb_buf_addstr(&b, "# written by udf-builder: what may leave this sandbox (docs/service.md, \"Egress\")\n"
			    "table inet udfb_egress {\n"
			    "\tset closed {\n\t\ttype ipv4_addr; flags interval; auto-merge\n\t\telements = { ");
	/* Closed whatever the operator opens: the cloud metadata address, pasta's
	 * gateway (nothing answers there), and the host's own addresses. */
	udfb_buf_printf(&b, "169.254.169.254, %s%s%s", UDFB_EGRESS_GATEWAY, *host_addrs ? ", " : "", host_addrs);
	udfb_buf_addstr(&b, " }\n\t}\n\tset open {\n\t\ttype ipv4_addr; flags interval; auto-merge\n");
	for (size_t k = 0; k < e->n; k++)
		add_net(&b, &e->v[k], k ? ", " : "\t\telements = { ");
	udfb_buf_addstr(&b, e->n ? " }\n\t}\n" : "\t}\n");
	/* A script run as-is: exact address:port destinations (an empty set
	 * is written without elements). */
	udfb_buf_addstr(&b, "\tset open_to {\n\t\ttype ipv4_addr . inet_service\n");
	for (size_t k = 0; k < e->n_to; k++) {
		char a[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &e->to[k].addr, a, sizeof(a));
		udfb_buf_printf(&b, "%s%s . %d", k ? ", " : "\t\telements = { ", a, e->to[k].port);
	}
	udfb_buf_addstr(&b, e->n_to ? " }\n\t}\n" : "\t}\n");
	udfb_buf_addstr(&b, "\tchain refuse {\n"
			    "\t\tmeta l4proto tcp reject with tcp reset\n"
			    "\t\treject with icmpx type admin-prohibited\n"
			    "\t}\n"
			    "\tchain output {\n"
			    "\t\ttype filter hook output priority 0; policy drop;\n"
			    "\t\toifname \"lo\" accept\n"
			    "\t\tip daddr @closed jump refuse\n"
			    "\t\tip daddr @open accept\n"
			    "\t\tip daddr . tcp dport @open_to accept\n"
			    "\t\tjump refuse\n"
			    "\t}\n"
			    "}\n");
	return udfb_buf_steal(&b, NULL);
}

/* ---- pasta ---- */

/* The last line of a tool's log that says something (pasta also complains
 * there that it has no syslog). */
static void log_line(const char *path, char *out, size_t n)
{
	out[0] = '\0';
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	char buf[LOG_TAIL + 1];
	off_t size = fd >= 0 ? lseek(fd, 0, SEEK_END) : 0;
	ssize_t got = size > 0 ? pread(fd, buf, LOG_TAIL, size > LOG_TAIL ? size - LOG_TAIL : 0) : 0;
	if (got <= 0)
		return;
	buf[got] = '\0';
	for (char *save = NULL, *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
		if (*l && !strstr(l, "syslog")) {
			size_t k = 0;
			for (; l[k] && k + 1 < n && k < 300; k++)
				out[k] = l[k] >= 0x20 && l[k] < 0x7f ? l[k] : '?';
			out[k] = '\0';
		}
}

static int tool(const char *const *argv, int netns_fd, int pass_fd, const char *log, struct udfb_err *err)
{
	int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return udfb_err_sys(err, errno, "create %s", log);
	int status = 0;
	int rc = udfb_tool_run(argv, netns_fd, fd, pass_fd, TOOL_TIMEOUT_MS, &status, err);
	close(fd);
	if (rc < 0)
		return -1;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	char line[320];
	log_line(log, line, sizeof(line));
	if (WIFSIGNALED(status))
		return udfb_err_set(err, UDFB_E_INTERNAL, "%s: killed by signal %d%s%s", argv[0], WTERMSIG(status),
				    *line ? ": " : "", line);
	return udfb_err_set(err, UDFB_E_INTERNAL, "%s: exit status %d%s%s", argv[0], WEXITSTATUS(status),
			    *line ? ": " : "", line);
}

static int load_rules(const struct udfb_egress *e, int netns_fd, const char *dir, const char *host_addrs,
		      struct udfb_err *err)
{
	cleanup_free char *rules = udfb_egress_ruleset(e, host_addrs);
	cleanup_free char *path = udfb_path_join(dir, "egress.nft"), *log = udfb_path_join(dir, "egress.log");
	if (udfb_write_file_atomic(path, rules, strlen(rules), err) < 0)
		return -1;
	const char *argv[] = { "nft", "-f", path, NULL };
	return tool(argv, netns_fd, -1, log, err);
}

static int read_pid(const char *path, pid_t *pid)
{
	cleanup_free char *text = NULL;
	size_t len;
	struct udfb_err err = UDFB_ERR_INIT;
	long v = udfb_read_file(&text, &len, path, 64, &err) == 0 ? strtol(text, NULL, 10) : 0;
	udfb_err_clear(&err);
	*pid = (pid_t)v;
	return v > 0 ? 0 : -1;
}

/* pasta on the namespace (descriptor 3 in it): the sandbox's eth0 is
 * UDFB_EGRESS_ADDR/24 with UDFB_EGRESS_GATEWAY as its default route; the
 * gateway is not mapped to the host (--no-map-gw), no port is forwarded in
 * either direction (-t/-u/-T/-U none; a script run as-is gets -T for the
 * host's loopback ports of its index and import servers), IPv4 only.  pasta drops to nobody
 * by default, which then cannot enter a namespace of the host's user
 * namespace: it keeps uid 0 (--runas 0), without capabilities once set up,
 * in a mount namespace of its own, under its own seccomp filter.  It
 * detaches once the interface is configured, so its launcher's exit says
 * it is ready. */
static int start_pasta(const struct udfb_egress *e, int netns_fd, const char *dir, int *pidfd, struct udfb_err *err)
{
	/* A script run as-is reaches these ports of the host's loopback, each
	 * through a listener pasta opens on the namespace's loopback. */
	char ports[1024] = "none";
	for (size_t k = 0, len = 0; k < e->n_host_ports && len + 8 < sizeof(ports); k++)
		len += (size_t)snprintf(ports + len, sizeof(ports) - len, "%s%d", k ? "," : "", e->host_ports[k]);
	cleanup_free char *pidfile = udfb_path_join(dir, "pasta.pid"), *log = udfb_path_join(dir, "pasta.log");
	const char *argv[] = { "pasta",
			       "--runas",
			       "0",
			       "--netns",
			       "/proc/self/fd/3",
			       "--config-net",
			       "-4",
			       "-I",
			       "eth0",
			       "-a",
			       UDFB_EGRESS_ADDR,
			       "-n",
			       "24",
			       "-g",
			       UDFB_EGRESS_GATEWAY,
			       "--no-map-gw",
			       "-t",
			       "none",
			       "-u",
			       "none",
			       "-T",
			       ports,
			       "-U",
			       "none",
			       "-q",
			       "-P",
			       pidfile,
			       NULL };
	if (tool(argv, -1, netns_fd, log, err) < 0)
		return -1;
	pid_t pid;
	if (read_pid(pidfile, &pid) < 0)
		return udfb_err_set(err, UDFB_E_INTERNAL, "pasta: no pid in %s", pidfile);
	*pidfd = udfb_pidfd_open(pid);
	if (*pidfd < 0)
		return udfb_err_sys(err, errno, "pasta (pid %ld) ended at start", (long)pid);
	return 0;
}

int udfb_egress_open(const struct udfb_egress *e, int netns_fd, const char *dir, const char *host_addrs, int *pidfd,
		     struct udfb_err *err)
{
	*pidfd = -1;
	if (load_rules(e, netns_fd, dir, host_addrs, err) < 0 || start_pasta(e, netns_fd, dir, pidfd, err) < 0)
		return udfb_err_wrap(err, "sandbox egress");
	return 0;
}

int udfb_egress_close_addrs(int netns_fd, const char *dir, const char *host_addrs, struct udfb_err *err)
{
	if (!*host_addrs)
		return 0;
	cleanup_free char *set = NULL, *log = udfb_path_join(dir, "egress.log");
	set = udfb_asprintf("{ %s }", host_addrs);
	const char *argv[] = { "nft", "add", "element", "inet", "udfb_egress", "closed", set, NULL };
	if (tool(argv, netns_fd, -1, log, err) < 0)
		return udfb_err_wrap(err, "sandbox egress: close the host's new addresses");
	return 0;
}

/* Is pid a pasta (its argv[0])? */
static int is_pasta(pid_t pid)
{
	char path[64], buf[64];
	snprintf(path, sizeof(path), "/proc/%ld/cmdline", (long)pid);
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	const char *base = strrchr(buf, '/');
	return strcmp(base ? base + 1 : buf, "pasta") == 0;
}

int udfb_egress_find(const char *dir)
{
	cleanup_free char *pidfile = udfb_path_join(dir, "pasta.pid");
	pid_t pid;
	if (read_pid(pidfile, &pid) < 0)
		return -1;
	int fd = udfb_pidfd_open(pid);
	if (fd >= 0 && !is_pasta(pid)) { /* the pid was used again */
		close(fd);
		fd = -1;
	}
	return fd;
}

void udfb_egress_stop(int pidfd)
{
	if (pidfd < 0)
		return;
	syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
	udfb_pidfd_exited(pidfd, STOP_WAIT_MS);
	close(pidfd);
	udfb_reap_orphans(); /* it detached: our orphan, as the sandboxes' subreaper */
}
