/* SSRF guard: see netguard.h.  Addresses are compared as 16-byte IPv6
 * values, IPv4 ones mapped into ::ffff:0:0/96, so one table serves both. */
#include "netguard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct net {
	uint8_t addr[16];
	int bits;
};

struct udfb_netguard {
	struct net *nets;
	size_t n_nets;
	char **hosts;
	size_t n_hosts;
};

/* Forbidden unless allowed.  IPv4 ranges are written as mapped addresses. */
static const struct {
	const char *cidr;
	const char *why;
} denied[] = {
	{ "::ffff:0.0.0.0/104", "unspecified (0.0.0.0/8)" },
	{ "::ffff:10.0.0.0/104", "private (10.0.0.0/8)" },
	{ "::ffff:100.64.0.0/106", "shared (100.64.0.0/10)" },
	{ "::ffff:127.0.0.0/104", "loopback (127.0.0.0/8)" },
	{ "::ffff:169.254.0.0/112", "link-local (169.254.0.0/16, cloud metadata)" },
	{ "::ffff:172.16.0.0/108", "private (172.16.0.0/12)" },
	{ "::ffff:192.0.0.0/120", "reserved (192.0.0.0/24)" },
	{ "::ffff:192.168.0.0/112", "private (192.168.0.0/16)" },
	{ "::ffff:198.18.0.0/111", "reserved (198.18.0.0/15)" },
	{ "::ffff:224.0.0.0/99", "multicast or reserved (224.0.0.0/3)" },
	{ "::/127", "unspecified or loopback (::, ::1)" }, /* :: and ::1 */
	{ "fe80::/10", "link-local (fe80::/10)" },
	{ "fc00::/7", "private (fc00::/7)" },
	{ "ff00::/8", "multicast (ff00::/8)" },
	{ "64:ff9b::/96", "NAT64 (64:ff9b::/96)" },
	{ "2001:db8::/32", "documentation (2001:db8::/32)" },
};

static int parse_net(struct net *out, const char *text)
{
	char buf[64];
	snprintf(buf, sizeof(buf), "%s", text);
	char *slash = strchr(buf, '/');
	int bits = -1;
	if (slash) {
		*slash = '\0';
		char *end = NULL;
		bits = (int)strtol(slash + 1, &end, 10);
		if (!slash[1] || *end)
			return -1;
	}
	struct in_addr v4;
	if (inet_pton(AF_INET, buf, &v4) == 1) {
		memset(out->addr, 0, 10);
		out->addr[10] = out->addr[11] = 0xff;
		memcpy(out->addr + 12, &v4, 4);
		if (bits > 32)
			return -1;
		out->bits = bits < 0 ? 128 : 96 + bits;
		return 0;
	}
	if (inet_pton(AF_INET6, buf, out->addr) == 1 && bits <= 128) {
		out->bits = bits < 0 ? 128 : bits;
		return 0;
	}
	return -1;
}

static int in_net(const uint8_t a[16], const struct net *n)
{
	int full = n->bits / 8, rest = n->bits % 8;
	if (memcmp(a, n->addr, (size_t)full) != 0)
		return 0;
	if (!rest)
		return 1;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (a[full] & mask) == (n->addr[full] & mask);
}

static int to_v6(uint8_t out[16], const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		memset(out, 0, 10);
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		return 0;
	}
	return -1;
}

void udfb_netguard_new(struct udfb_netguard **out)
{
	*out = calloc(1, sizeof(**out));
	if (!*out)
		abort();
}

void udfb_netguard_free(struct udfb_netguard *g)
{
	if (!g)
		return;
	for (size_t k = 0; k < g->n_hosts; k++)
		free(g->hosts[k]);
	free(g->hosts);
	free(g->nets);
	free(g);
}

static int host_valid(const char *h)
{
	if (!*h || strlen(h) > 253)
		return 0;
	for (const char *c = h; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '-' || *c == '.'))
			return 0;
	return 1;
}

int udfb_netguard_allow(struct udfb_netguard *g, const char *entry, struct udfb_err *err)
{
	struct net n;
	if (parse_net(&n, entry) == 0) {
		g->nets = realloc(g->nets, (g->n_nets + 1) * sizeof(*g->nets));
		g->nets[g->n_nets++] = n;
		return 0;
	}
	if (strchr(entry, '/') || strchr(entry, ':') || !host_valid(entry))
		return udfb_err_set(err, UDFB_E_INVALID, "imports-allow '%s': expected a host name, an address or a CIDR", entry);
	g->hosts = realloc(g->hosts, (g->n_hosts + 1) * sizeof(char *));
	g->hosts[g->n_hosts++] = strdup(entry);
	return 0;
}

const char *udfb_netguard_check(const struct udfb_netguard *g, const char *host, const struct sockaddr *sa)
{
	uint8_t a[16];
	if (to_v6(a, sa) < 0)
		return "not an IP address";
	for (size_t k = 0; g && host && k < g->n_hosts; k++)
		if (strcasecmp(host, g->hosts[k]) == 0)
			return NULL;
	for (size_t k = 0; g && k < g->n_nets; k++)
		if (in_net(a, &g->nets[k]))
			return NULL;
	for (size_t k = 0; k < sizeof(denied) / sizeof(*denied); k++) {
		struct net n;
		if (parse_net(&n, denied[k].cidr) == 0 && in_net(a, &n))
			return denied[k].why;
	}
	return NULL;
}

void udfb_netguard_addr_text(const struct sockaddr *sa, char *buf, size_t len)
{
	const void *p = sa->sa_family == AF_INET ? (const void *)&((const struct sockaddr_in *)sa)->sin_addr
						 : (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
	if (!inet_ntop(sa->sa_family, p, buf, (socklen_t)len))
		snprintf(buf, len, "?");
}
