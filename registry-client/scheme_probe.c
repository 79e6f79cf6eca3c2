/* Does a loopback or insecure registry speak plain HTTP?  Asked before the
 * first request of a process, the way curl's probe asks it (regcall.c), but
 * without OpenSSL: a TLS ClientHello written on a bare socket, and the
 * first five bytes of the answer read back.  A plain HTTP server answers
 * "HTTP/" (a 400 for a request line it cannot parse); anything else (a TLS
 * record, a closed connection, silence) is left to curl's probe.  Through
 * curl the same question cost a third of a repeat push's instructions:
 * OpenSSL's random generator and an SSL_CTX, for a registry that turns out
 * to speak no TLS at all. */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "registry-client/registry_internal.h"

/* A TLS 1.2 ClientHello: one cipher suite, no extensions.  Its random
 * field starts with CR LF CR LF, so a plain HTTP server reads a (bad)
 * request line at once instead of waiting for a newline. */
static const unsigned char hello[] = {
	0x16, 0x03, 0x01, 0x00, 0x2d, /* record: handshake, 45 bytes */
	0x01, 0x00, 0x00, 0x29, /* ClientHello, 41 bytes */
	0x03, 0x03, /* TLS 1.2 */
	'\r', '\n', '\r', '\n', 0,    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* random: 32 bytes */
	0,    0,    0,	  0,	0,    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, /* session id: none */
	0x00, 0x02, 0xc0, 0x2f, /* ECDHE-RSA-AES128-GCM-SHA256 */
	0x01, 0x00, /* compression: null */
};
_Static_assert(sizeof(hello) == 5 + 45, "the record's length");

/* Wait for ev on fd until deadline; 1 ready, 0 not. */
static int wait_for(int fd, short ev, long long deadline)
{
	for (;;) {
		long long left = deadline - udfb_now_ms();
		if (left <= 0)
			return 0;
		struct pollfd p = { .fd = fd, .events = ev };
		int n = poll(&p, 1, (int)left);
		if (n > 0)
			return 1;
		if (n < 0 && errno != EINTR)
			return 0;
	}
}

/* "host:port", "[v6]:port" or "host" (443) into its parts. */
static int split_host(const char *api_host, char *host, size_t cap, const char **port)
{
	const char *end, *colon;
	if (*api_host == '[') {
		end = strchr(api_host, ']');
		if (!end)
			return -1;
		colon = end[1] == ':' ? end + 1 : NULL;
		api_host++;
	} else {
		colon = strrchr(api_host, ':');
		end = colon ? colon : api_host + strlen(api_host);
	}
	size_t n = (size_t)(end - api_host);
	if (n == 0 || n >= cap)
		return -1;
	memcpy(host, api_host, n);
	host[n] = 0;
	*port = colon ? colon + 1 : "443";
	return 0;
}

/* 1: the answer to a ClientHello began "HTTP/"; 0: anything else; -1:
 * no connection to this address. */
static int ask(const struct addrinfo *ai, long long deadline)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0)
		return -1;
	int plain = -1;
	if ((connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 || errno == EINPROGRESS) &&
	    wait_for(fd, POLLOUT, deadline)) {
		int e = 0;
		socklen_t len = sizeof(e);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) == 0 && e == 0)
			plain = 0;
		if (plain == 0 && send(fd, hello, sizeof(hello), MSG_NOSIGNAL) == (ssize_t)sizeof(hello)) {
			char got[5];
			size_t have = 0;
			while (have < sizeof(got) && wait_for(fd, POLLIN, deadline)) {
				ssize_t k = recv(fd, got + have, sizeof(got) - have, 0);
				if (k < 0 && (errno == EINTR || errno == EAGAIN))
					continue;
				if (k <= 0)
					break;
				have += (size_t)k;
			}
			plain = have == sizeof(got) && memcmp(got, "HTTP/", 5) == 0;
		}
	}
	close(fd);
	return plain;
}

/* Proxies are curl's business: with one configured, curl's probe asks. */
static int proxied(void)
{
	static const char *const vars[] = { "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY" };
	for (size_t k = 0; k < sizeof(vars) / sizeof(*vars); k++) {
		const char *v = getenv(vars[k]);
		if (v && *v)
			return 1;
	}
	return 0;
}

int reg_probe_plain_http(const char *api_host, int timeout_ms)
{
	char host[256];
	const char *port;
	if (proxied() || split_host(api_host, host, sizeof(host), &port) < 0)
		return 0;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	if (getaddrinfo(host, port, &hints, &res) != 0)
		return 0;
	long long deadline = udfb_now_ms() + timeout_ms;
	int plain = -1;
	/* The first address that accepts a connection answers, as in curl. */
	for (const struct addrinfo *ai = res; ai && plain < 0 && udfb_now_ms() < deadline; ai = ai->ai_next)
		plain = ask(ai, deadline);
	freeaddrinfo(res);
	return plain == 1;
}
