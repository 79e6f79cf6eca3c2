/* The forwarder: see forward.h. */
#include "scheduler/forward.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/log.h"

#define PIPE_BYTES (1u << 20)
#define CONN_STACK (128u << 10)
#define CONNECT_TIMEOUT_MS 2000
#define BACKLOG 256

struct udfb_fwd_listener {
	int lfd, netns, target;
	int dead;
	struct udfb_fwd_listener *next; /* in f->live or f->zombies */
};

struct conn {
	struct udfb_fwd *f;
	int client, backend, netns, target;
	struct conn *prev, *next;
};

struct cidr {
	int family;
	unsigned char addr[16];
	int bits;
};

struct udfb_fwd {
	struct cidr *allow; /* NULL: anyone */
	size_t n_allow;
	int ep, wake;
	long max_conns, n_conns;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t idle; /* n_conns reached 0 */
	struct udfb_fwd_listener *live, *zombies;
	struct conn *conns;
	int stopping;
};

/* ---- one connection ---- */

static int connect_backend(struct conn *c)
{
	if (setns(c->netns, CLONE_NEWNET) < 0)
		return -1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)c->target),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		int e = 0;
		socklen_t el = sizeof(e);
		if (errno != EINPROGRESS || poll(&p, 1, CONNECT_TIMEOUT_MS) != 1 ||
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0 || e != 0) {
			close(fd);
			return -1;
		}
	}
	fcntl(fd, F_SETFL, 0); /* blocking from here: one thread per direction */
	return fd;
}

/* src -> dst until src's end (then dst's write side is shut) or an error
 * (then both sockets are shut, which ends the other direction too). */
static void pump(int src, int dst)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		shutdown(src, SHUT_RDWR);
		shutdown(dst, SHUT_RDWR);
		return;
	}
	fcntl(p[1], F_SETPIPE_SZ, PIPE_BYTES); /* best effort: pipe-max-size may be lower */
	int ok = 1;
	for (;;) {
		ssize_t n = splice(src, NULL, p[1], NULL, PIPE_BYTES, SPLICE_F_MOVE);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ok = n == 0;
			break;
		}
		while (n > 0) {
			ssize_t m = splice(p[0], NULL, dst, NULL, (size_t)n, SPLICE_F_MOVE);
			if (m < 0 && errno == EINTR)
				continue;
			if (m <= 0) {
				ok = 0;
				break;
			}
			n -= m;
		}
		if (!ok)
			break;
	}
	close(p[0]);
	close(p[1]);
	if (ok) {
		shutdown(dst, SHUT_WR);
	} else {
		shutdown(src, SHUT_RDWR);
		shutdown(dst, SHUT_RDWR);
	}
}

static void *upstream_main(void *arg)
{
	struct conn *c = arg;
	pump(c->client, c->backend);
	return NULL;
}

static void conn_done(struct conn *c)
{
	struct udfb_fwd *f = c->f;
	pthread_mutex_lock(&f->mu);
	if (c->prev)
		c->prev->next = c->next;
	else
		f->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (--f->n_conns == 0)
		pthread_cond_broadcast(&f->idle);
	pthread_mutex_unlock(&f->mu);
	close(c->client);
	if (c->backend >= 0)
		close(c->backend);
	free(c);
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	/* This thread enters the sandbox's namespace for good: it only ever
	 * serves this connection, then ends. */
	int fd = connect_backend(c);
	close(c->netns);
	c->netns = -1;
	if (fd >= 0) {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		setsockopt(c->client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		pthread_mutex_lock(&c->f->mu);
		c->backend = fd;
		if (c->f->stopping)
			shutdown(c->client, SHUT_RDWR);
		pthread_mutex_unlock(&c->f->mu);
		pthread_t up;
		pthread_attr_t at;
		pthread_attr_init(&at);
		pthread_attr_setstacksize(&at, CONN_STACK);
		if (pthread_create(&up, &at, upstream_main, c) == 0) {
			pump(fd, c->client);
			pthread_join(up, NULL);
		}
		pthread_attr_destroy(&at);
	}
	conn_done(c);
	return NULL;
}

/* Lock held. */
static void start_conn(struct udfb_fwd *f, struct udfb_fwd_listener *l, int client)
{
	if (l->netns < 0 || f->n_conns >= f->max_conns || f->stopping) {
		close(client); /* no sandbox behind it now, or too many connections */
		return;
	}
	struct conn *c = udfb_calloc(1, sizeof(*c));
	c->f = f;
	c->client = client;
	c->backend = -1;
	c->target = l->target;
	c->netns = fcntl(l->netns, F_DUPFD_CLOEXEC, 0);
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setstacksize(&at, CONN_STACK);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_t t;
	int rc = c->netns < 0 ? EMFILE : pthread_create(&t, &at, conn_main, c);
	pthread_attr_destroy(&at);
	if (rc != 0) {
		if (c->netns >= 0)
			close(c->netns);
		close(client);
		free(c);
		return;
	}
	c->next = f->conns;
	if (f->conns)
		f->conns->prev = c;
	f->conns = c;
	f->n_conns++;
}

/* ---- who may connect ---- */

static int parse_cidr(struct cidr *c, const char *text)
{
	char buf[64];
	snprintf(buf, sizeof(buf), "%s", text);
	char *slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	memset(c, 0, sizeof(*c));
	int max;
	if (inet_pton(AF_INET, buf, c->addr) == 1)
		c->family = AF_INET, max = 32;
	else if (inet_pton(AF_INET6, buf, c->addr) == 1)
		c->family = AF_INET6, max = 128;
	else
		return -1;
	c->bits = max;
	if (slash) {
		char *end;
		long b = strtol(slash + 1, &end, 10);
		if (end == slash + 1 || *end || b < 0 || b > max)
			return -1;
		c->bits = (int)b;
	}
	return 0;
}

static int parse_list(struct cidr **out, size_t *n, const char *text, struct udfb_err *err)
{
	*out = NULL;
	*n = 0;
	if (!text || !*text)
		return 0;
	char *copy = udfb_strdup(text), *save = NULL;
	struct cidr *v = udfb_calloc(strlen(text) / 2 + 2, sizeof(*v));
	int rc = 0;
	for (char *e = strtok_r(copy, ", ", &save); e && rc == 0; e = strtok_r(NULL, ", ", &save))
		if (parse_cidr(&v[*n], e) < 0)
			rc = udfb_err_set(err, UDFB_E_INVALID, "'%.64s': not an address or ADDRESS/BITS", e);
		else
			(*n)++;
	free(copy);
	if (rc < 0 || *n == 0) {
		free(v);
		*n = 0;
		return rc;
	}
	*out = v;
	return 0;
}

int udfb_fwd_cidrs_valid(const char *cidrs, struct udfb_err *err)
{
	struct cidr *v;
	size_t n;
	int rc = parse_list(&v, &n, cidrs, err);
	free(v);
	return rc;
}

int udfb_fwd_allow(struct udfb_fwd *f, const char *cidrs, struct udfb_err *err)
{
	free(f->allow);
	return parse_list(&f->allow, &f->n_allow, cidrs, err);
}

static int in_cidr(const struct cidr *c, int family, const unsigned char *a)
{
	if (c->family != family)
		return 0;
	int full = c->bits / 8, rest = c->bits % 8;
	if (memcmp(a, c->addr, (size_t)full) != 0)
		return 0;
	return rest == 0 || ((a[full] ^ c->addr[full]) & (0xff << (8 - rest)) & 0xff) == 0;
}

static int peer_allowed(const struct udfb_fwd *f, const struct sockaddr_storage *ss)
{
	if (!f->allow)
		return 1;
	const unsigned char *a;
	int family = ss->ss_family;
	unsigned char v4[4];
	if (family == AF_INET) {
		a = (const unsigned char *)&((const struct sockaddr_in *)ss)->sin_addr;
	} else if (family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)ss)->sin6_addr;
		if (IN6_IS_ADDR_LOOPBACK(a6))
			return 1;
		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			memcpy(v4, a6->s6_addr + 12, 4);
			a = v4;
			family = AF_INET;
		} else {
			a = a6->s6_addr;
		}
	} else {
		return 0;
	}
	if (family == AF_INET && a[0] == 127)
		return 1; /* loopback: the service's own probes */
	for (size_t k = 0; k < f->n_allow; k++)
		if (in_cidr(&f->allow[k], family, a))
			return 1;
	return 0;
}

/* ---- the accept thread ---- */

static void *accept_main(void *arg)
{
	struct udfb_fwd *f = arg;
	struct epoll_event ev[32];
	for (;;) {
		int n = epoll_wait(f->ep, ev, 32, -1);
		if (n < 0 && errno != EINTR)
			break;
		pthread_mutex_lock(&f->mu);
		for (int k = 0; k < n; k++) {
			struct udfb_fwd_listener *l = ev[k].data.ptr;
			if (!l) {
				uint64_t v;
				if (read(f->wake, &v, sizeof(v)) < 0) {
					/* already drained */
				}
				continue;
			}
			if (l->dead)
				continue; /* closed since epoll_wait */
			int c;
			struct sockaddr_storage peer;
			socklen_t plen = sizeof(peer);
			while ((c = accept4(l->lfd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC)) >= 0) {
				if (peer_allowed(f, &peer))
					start_conn(f, l, c);
				else
					close(c); /* not a query node the operator named */
				plen = sizeof(peer);
			}
		}
		/* Listeners closed before this batch can no longer be returned. */
		while (f->zombies) {
			struct udfb_fwd_listener *z = f->zombies;
			f->zombies = z->next;
			free(z);
		}
		int stop = f->stopping;
		pthread_mutex_unlock(&f->mu);
		if (stop)
			break;
	}
	return NULL;
}

int udfb_fwd_new(struct udfb_fwd **out, long max_conns, struct udfb_err *err)
{
	struct udfb_fwd *f = udfb_calloc(1, sizeof(*f));
	f->max_conns = max_conns;
	f->ep = epoll_create1(EPOLL_CLOEXEC);
	f->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (f->ep < 0 || f->wake < 0) {
		int e = errno;
		if (f->ep >= 0)
			close(f->ep);
		if (f->wake >= 0)
			close(f->wake);
		free(f);
		return udfb_err_sys(err, e, "forwarder: epoll");
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	epoll_ctl(f->ep, EPOLL_CTL_ADD, f->wake, &ev);
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->idle, NULL);
	if (pthread_create(&f->thread, NULL, accept_main, f) != 0)
		abort();
	*out = f;
	return 0;
}

int udfb_fwd_listen(struct udfb_fwd *f, const struct sockaddr *addr, socklen_t len, int target_port,
		    struct udfb_fwd_listener **out, struct udfb_err *err)
{
	int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return udfb_err_sys(err, errno, "forwarder: socket");
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (addr->sa_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, addr, len) < 0 || listen(fd, BACKLOG) < 0) {
		int e = errno;
		close(fd);
		if (e == EADDRINUSE)
			return udfb_err_set(err, UDFB_E_EXHAUSTED, "forwarder: port in use");
		return udfb_err_sys(err, e, "forwarder: listen");
	}
	struct udfb_fwd_listener *l = udfb_calloc(1, sizeof(*l));
	l->lfd = fd;
	l->netns = -1;
	l->target = target_port;
	pthread_mutex_lock(&f->mu);
	l->next = f->live;
	f->live = l;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = l };
	epoll_ctl(f->ep, EPOLL_CTL_ADD, fd, &ev);
	pthread_mutex_unlock(&f->mu);
	*out = l;
	return 0;
}

void udfb_fwd_target(struct udfb_fwd *f, struct udfb_fwd_listener *l, int netns_fd)
{
	if (!l)
		return;
	pthread_mutex_lock(&f->mu);
	if (l->netns >= 0)
		close(l->netns);
	l->netns = netns_fd >= 0 ? fcntl(netns_fd, F_DUPFD_CLOEXEC, 0) : -1;
	pthread_mutex_unlock(&f->mu);
}

/* Lock held. */
static void close_locked(struct udfb_fwd *f, struct udfb_fwd_listener *l)
{
	struct udfb_fwd_listener **pp = &f->live;
	while (*pp && *pp != l)
		pp = &(*pp)->next;
	if (*pp)
		*pp = l->next;
	epoll_ctl(f->ep, EPOLL_CTL_DEL, l->lfd, NULL);
	close(l->lfd);
	if (l->netns >= 0)
		close(l->netns);
	l->lfd = l->netns = -1;
	l->dead = 1;
	l->next = f->zombies; /* freed by the accept thread after its batch */
	f->zombies = l;
}

void udfb_fwd_close(struct udfb_fwd *f, struct udfb_fwd_listener *l)
{
	if (!l)
		return;
	pthread_mutex_lock(&f->mu);
	close_locked(f, l);
	pthread_mutex_unlock(&f->mu);
	uint64_t one = 1;
	if (write(f->wake, &one, sizeof(one)) < 0) {
		/* the counter is full: a wake-up is pending anyway */
	}
}

void udfb_fwd_free(struct udfb_fwd *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->mu);
	f->stopping = 1;
	while (f->live)
		close_locked(f, f->live);
	for (struct conn *c = f->conns; c; c = c->next) {
		shutdown(c->client, SHUT_RDWR);
		if (c->backend >= 0)
			shutdown(c->backend, SHUT_RDWR);
	}
	pthread_mutex_unlock(&f->mu);
	uint64_t one = 1;
	if (write(f->wake, &one, sizeof(one)) < 0) {
		/* pending already */
	}
	pthread_join(f->thread, NULL);
	pthread_mutex_lock(&f->mu);
	/* A connection still connecting ends within CONNECT_TIMEOUT_MS. */
	while (f->n_conns > 0)
		pthread_cond_wait(&f->idle, &f->mu);
	while (f->zombies) {
		struct udfb_fwd_listener *z = f->zombies;
		f->zombies = z->next;
		free(z);
	}
	pthread_mutex_unlock(&f->mu);
	close(f->ep);
	close(f->wake);
	free(f->allow);
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->idle);
	free(f);
}
