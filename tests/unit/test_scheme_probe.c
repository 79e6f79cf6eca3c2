/* reg_probe_plain_http (registry-client/scheme_probe.c): a loopback peer
 * on a port of its own answers the ClientHello as a plain HTTP server, a
 * TLS server (an alert record), one that hangs up, or nobody listens; only
 * the first is "plain http".  The peer also checks what was sent: a TLS
 * handshake record whose bytes hold a CR LF (so an HTTP server answers at
 * once).  docker-registry answering it is test_push_record.sh's. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "registry-client/registry_internal.h"

struct peer {
	int lfd, family;
	const char *reply;
	size_t reply_len;
	unsigned char got[64];
	ssize_t got_len;
	char host[64];
};

static void *serve(void *arg)
{
	struct peer *p = arg;
	int c = accept(p->lfd, NULL, NULL);
	if (c < 0)
		return NULL;
	/* The ClientHello is 50 bytes; the probe then waits for the answer. */
	p->got_len = 0;
	while (p->got_len < 50) {
		ssize_t k = recv(c, p->got + p->got_len, sizeof(p->got) - (size_t)p->got_len, 0);
		if (k <= 0)
			break;
		p->got_len += k;
	}
	if (p->reply_len)
		(void)!write(c, p->reply, p->reply_len);
	close(c);
	return NULL;
}

/* Listen on a free loopback port; 0, or -1 (no such family here). */
static int peer_listen(struct peer *p, int family)
{
	p->family = family;
	p->lfd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (p->lfd < 0)
		return -1;
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	if (family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_loopback;
		len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*a);
	}
	if (bind(p->lfd, (struct sockaddr *)&ss, len) < 0 || listen(p->lfd, 4) < 0 ||
	    getsockname(p->lfd, (struct sockaddr *)&ss, &len) < 0) {
		close(p->lfd);
		return -1;
	}
	if (family == AF_INET6)
		snprintf(p->host, sizeof(p->host), "[::1]:%d", ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
	else
		snprintf(p->host, sizeof(p->host), "127.0.0.1:%d", ntohs(((struct sockaddr_in *)&ss)->sin_port));
	return 0;
}

/* One probe against a peer that sends reply (n bytes; 0: hangs up). */
static int probe_peer(struct peer *p, int family, const char *reply, size_t n)
{
	if (peer_listen(p, family) < 0)
		return -2;
	p->reply = reply;
	p->reply_len = n;
	pthread_t t;
	pthread_create(&t, NULL, serve, p);
	int rc = reg_probe_plain_http(p->host, 3000);
	pthread_join(t, NULL);
	close(p->lfd);
	return rc;
}

int main(void)
{
	static const char http400[] = "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n";
	static const char alert[] = { 0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28 };
	struct peer p = { 0 };

	CHECK(probe_peer(&p, AF_INET, http400, sizeof(http400) - 1) == 1, "an HTTP server's 400 means plain http");
	CHECK(p.got_len == 50 && p.got[0] == 0x16 && p.got[1] == 0x03 && p.got[5] == 0x01,
	      "what it sent is one TLS handshake record holding a ClientHello (%zd bytes)", p.got_len);
	CHECK(memmem(p.got, (size_t)(p.got_len > 0 ? p.got_len : 0), "\r\n", 2) != NULL,
	      "... with a CR LF in it, so an HTTP server answers without waiting");

	memset(&p, 0, sizeof(p));
	CHECK(probe_peer(&p, AF_INET, alert, sizeof(alert)) == 0, "a TLS alert is not plain http");
	memset(&p, 0, sizeof(p));
	CHECK(probe_peer(&p, AF_INET, NULL, 0) == 0, "a peer that hangs up does not say: not plain http");
	memset(&p, 0, sizeof(p));
	CHECK(probe_peer(&p, AF_INET, "HTT", 3) == 0, "three bytes of \"HTTP/\" are not enough");

	/* A port nobody listens on: bind one, close it, ask there. */
	memset(&p, 0, sizeof(p));
	CHECK(peer_listen(&p, AF_INET) == 0, "a loopback port to close");
	close(p.lfd);
	CHECK(reg_probe_plain_http(p.host, 3000) == 0, "a refused connection is not plain http");

	memset(&p, 0, sizeof(p));
	int v6 = probe_peer(&p, AF_INET6, http400, sizeof(http400) - 1);
	if (v6 == -2)
		CHECK(1, "# SKIP no IPv6 loopback here");
	else
		CHECK(v6 == 1, "a bracketed IPv6 host:port ([::1]:PORT) is asked too");

	CHECK(reg_probe_plain_http("", 1000) == 0, "an empty host is not asked");
	CHECK(reg_probe_plain_http("[::1", 1000) == 0, "an unclosed bracket is not asked");
	return check_done();
}
