/* SSRF guard: see netguard.h.  Addresses are compared as 16-byte IPv6
 * values, IPv4 ones mapped into ::ffff:0:0/96, so one table serves both. */
#include "fetch/netguard.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/alloc.h"
#include "common/clock.h"

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

/* Forbidden unless allowed.  IPv4 ranges are written as mapped addresses.
 * The first match names the reason, so narrower entries come first. */
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
	{ "::ffff:192.0.2.0/120", "documentation (192.0.2.0/24)" },
	{ "::ffff:192.168.0.0/112", "private (192.168.0.0/16)" },
	{ "::ffff:198.18.0.0/111", "reserved (198.18.0.0/15)" },
	{ "::ffff:198.51.100.0/120", "documentation (198.51.100.0/24)" },
	{ "::ffff:203.0.113.0/120", "documentation (203.0.113.0/24)" },
	{ "::ffff:224.0.0.0/99", "multicast or reserved (224.0.0.0/3)" },
	{ "::/127", "unspecified or loopback (::, ::1)" }, /* :: and ::1 */
	/* ::a.b.c.d: a stack that still routes them reaches a.b.c.d. */
	{ "::/96", "IPv4-compatible (::/96)" },
	{ "fe80::/10", "link-local (fe80::/10)" },
	{ "fec0::/10", "site-local (fec0::/10)" },
	{ "fc00::/7", "private (fc00::/7)" },
	{ "ff00::/8", "multicast (ff00::/8)" },
	{ "64:ff9b::/96", "NAT64 (64:ff9b::/96)" },
	{ "64:ff9b:1::/48", "local NAT64 (64:ff9b:1::/48)" },
	/* Tunnels to an IPv4 address written inside the IPv6 one. */
	{ "2001::/32", "Teredo (2001::/32)" },
	{ "2002::/16", "6to4 (2002::/16)" },
	{ "2001:db8::/32", "documentation (2001:db8::/32)" },
	{ "100::/64", "discard-only (100::/64)" },
};

/* "ADDR" or "ADDR/BITS", strictly: BITS is 0 to 32 (IPv4) or 128 (IPv6)
 * in plain decimal, and no address bit past it is set.  NULL when it
 * parses; else why not. */
static const char *parse_net(struct net *out, const char *text)
{
	char buf[64];
	if (strlen(text) >= sizeof(buf))
		return "too long for an address";
	snprintf(buf, sizeof(buf), "%s", text);
	char *slash = strchr(buf, '/');
	int bits = -1;
	if (slash) {
		*slash = '\0';
		const char *d = slash + 1;
		size_t n = strspn(d, "0123456789");
		if (n == 0 || d[n] || n > 3 || (n > 1 && d[0] == '0'))
			return "the prefix length must be a decimal number";
		bits = atoi(d);
	}
	struct in_addr v4;
	int max;
	if (inet_pton(AF_INET, buf, &v4) == 1) {
		memset(out->addr, 0, 10);
		out->addr[10] = out->addr[11] = 0xff;
		memcpy(out->addr + 12, &v4, 4);
		max = 32;
	} else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
		max = 128;
	} else {
		return "not an IPv4 or IPv6 address";
	}
	if (bits > max)
		return max == 32 ? "the prefix length of an IPv4 network is 0 to 32"
				 : "the prefix length of an IPv6 network is 0 to 128";
	out->bits = (bits < 0 ? max : bits) + 128 - max;
	for (int b = out->bits; b < 128; b++)
		if (out->addr[b / 8] & (0x80 >> (b % 8)))
			return "address bits are set past the prefix length (write the network's first address)";
	return NULL;
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

/* ---- this host's own addresses ---- */

/* A public address of this host reaches its own ports (the admin port, a
 * sandbox's) like loopback does.  Interfaces change (DHCP, a new pod
 * address), so the list is read again when older than LOCAL_TTL_MS. */
#define LOCAL_TTL_MS 5000

static pthread_mutex_t local_lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t (*local_addrs)[16];
static size_t n_local;
static long long local_read_ms = -1;

static void local_read(void)
{
	struct ifaddrs *list = NULL;
	n_local = 0;
	if (getifaddrs(&list) < 0)
		return; /* the fixed table still stands */
	size_t cap = 0;
	for (struct ifaddrs *i = list; i; i = i->ifa_next) {
		uint8_t a[16];
		if (!i->ifa_addr || to_v6(a, i->ifa_addr) < 0)
			continue;
		if (n_local == cap) {
			cap = cap ? 2 * cap : 16;
			local_addrs = udfb_realloc(local_addrs, cap * sizeof(*local_addrs));
		}
		memcpy(local_addrs[n_local++], a, 16);
	}
	freeifaddrs(list);
}

static int is_local(const uint8_t a[16])
{
	pthread_mutex_lock(&local_lock);
	long long now = udfb_now_ms();
	if (local_read_ms < 0 || now - local_read_ms > LOCAL_TTL_MS) {
		local_read();
		local_read_ms = now;
	}
	int hit = 0;
	for (size_t k = 0; k < n_local && !hit; k++)
		hit = memcmp(local_addrs[k], a, 16) == 0;
	pthread_mutex_unlock(&local_lock);
	return hit;
}

void udfb_netguard_refresh_local(void)
{
	pthread_mutex_lock(&local_lock);
	local_read_ms = -1;
	pthread_mutex_unlock(&local_lock);
}

void udfb_netguard_new(struct udfb_netguard **out)
{
	*out = udfb_calloc(1, sizeof(**out));
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
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '-' ||
		      *c == '.'))
			return 0;
	return 1;
}

int udfb_netguard_allow(struct udfb_netguard *g, const char *entry, struct udfb_err *err)
{
	struct net n;
	const char *why = parse_net(&n, entry);
	if (!why) {
		g->nets = udfb_realloc(g->nets, (g->n_nets + 1) * sizeof(*g->nets));
		g->nets[g->n_nets++] = n;
		return 0;
	}
	/* Something with a '/' or a ':', or made of digits and dots, was meant
	 * as an address: say what is wrong with it. */
	if (strchr(entry, '/') || strchr(entry, ':') || strspn(entry, "0123456789.") == strlen(entry))
		return udfb_err_set(err, UDFB_E_INVALID, "'%.64s': %s", entry, why);
	if (!host_valid(entry))
		return udfb_err_set(err, UDFB_E_INVALID, "'%.64s': expected a host name, an address or a CIDR", entry);
	g->hosts = udfb_realloc(g->hosts, (g->n_hosts + 1) * sizeof(char *));
	g->hosts[g->n_hosts++] = udfb_strdup(entry);
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
		if (!parse_net(&n, denied[k].cidr) && in_net(a, &n))
			return denied[k].why;
	}
	if (is_local(a))
		return "an address of this host";
	return NULL;
}

void udfb_netguard_addr_text(const struct sockaddr *sa, char *buf, size_t len)
{
	const void *p = sa->sa_family == AF_INET ? (const void *)&((const struct sockaddr_in *)sa)->sin_addr
						 : (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
	if (!inet_ntop(sa->sa_family, p, buf, (socklen_t)len))
		snprintf(buf, len, "?");
}
