/* Egress of local sandboxes to networks the operator opens (egress_cidrs).
 *
 * A sandbox's network namespace (netns.h) holds only `lo`: it reaches
 * nothing.  When the operator lists networks, the namespace gets a second
 * interface from pasta (Debian's `passt` package): a tap device whose frames
 * pasta turns into ordinary sockets of the service's own namespace (layer-4
 * translation: no forwarding, no NAT, and no address, route or rule in the
 * host's namespace).  Before that interface exists, an nftables table in the
 * sandbox's namespace decides what may leave it: loopback; never the cloud
 * metadata address, the host's own addresses (those it gains later are
 * added as the reaper sees them) or pasta's gateway; then the operator's networks; nothing else (a
 * TCP reset, or ICMP administratively prohibited).  The sandbox holds no
 * capability in that namespace, so it can change neither the table nor the
 * routes, and the table filters every packet whatever route or device
 * (SO_BINDTODEVICE) the socket chose.  See docs/service.md, "Egress". */
#ifndef UDFB_EGRESS_H
#define UDFB_EGRESS_H

#include <netinet/in.h>
#include <stddef.h>

#include "common/err.h"

/* Inside every sandbox's namespace (as slirp4netns has them). */
#define UDFB_EGRESS_ADDR "10.0.2.100"
#define UDFB_EGRESS_GATEWAY "10.0.2.2"

struct udfb_egress_net {
	struct in_addr addr;
	int len;
};

/* One TCP destination of a script run as-is (script_mode = run). */
struct udfb_egress_dest {
	struct in_addr addr;
	int port;
};

struct udfb_egress {
	struct udfb_egress_net *v;
	size_t n;
	/* A sandbox running a Databend script as-is: besides v, exactly these
	 * address:port (TCP) destinations, and these ports of the host's
	 * loopback (pasta maps each into the namespace's loopback, -T PORT:
	 * the sandbox connects to 127.0.0.1:PORT and reaches that port of the
	 * host, and no other). */
	struct udfb_egress_dest *to;
	size_t n_to;
	int *host_ports;
	size_t n_host_ports;
};

/* "10.0.0.0/8,192.0.2.7" (an address alone is /32); "" opens none.  Strict:
 * a plain decimal prefix within 0-32, no bit set past it; IPv6 is refused
 * (the sandbox's link is IPv4 only).  UDFB_E_INVALID naming the entry. */
int udfb_egress_parse(struct udfb_egress *e, const char *text, struct udfb_err *err);
void udfb_egress_clear(struct udfb_egress *e);
/* "ADDR:PORT" (IPv4) added to to, or, for a 127.0.0.0/8 address, PORT to
 * host_ports.  UDFB_E_INVALID naming the entry. */
int udfb_egress_add_dest(struct udfb_egress *e, const char *text, struct udfb_err *err);
/* Anything to open: networks, destinations or host ports. */
int udfb_egress_any(const struct udfb_egress *e);
/* The networks, canonical and comma-separated, for logs. */
char *udfb_egress_describe(const struct udfb_egress *e);
/* The host's IPv4 addresses now, sorted, ", "-separated: the same text for
 * the same addresses. */
char *udfb_egress_host_addrs(void);
/* The nftables ruleset of one sandbox's namespace: e's networks open, the
 * metadata address, the gateway and host_addrs closed over them. */
char *udfb_egress_ruleset(const struct udfb_egress *e, const char *host_addrs);

/* Open egress in the namespace netns_fd: the ruleset is written to
 * dir/egress.nft and loaded there (`nft -f`), then pasta is started on it
 * (its pid in dir/pasta.pid, its messages in dir/pasta.log).  *pidfd
 * watches pasta, which lives until udfb_egress_stop. */
int udfb_egress_open(const struct udfb_egress *e, int netns_fd, const char *dir, const char *host_addrs, int *pidfd,
		     struct udfb_err *err);
/* Close more of the host's addresses in a running sandbox's table (the host
 * gained an address after the sandbox started; the scheduler's reaper
 * checks every reap_interval_ms).  Addresses already closed stay closed. */
int udfb_egress_close_addrs(int netns_fd, const char *dir, const char *host_addrs, struct udfb_err *err);
/* pasta of a sandbox that an earlier process left (dir/pasta.pid), while
 * it runs: a pidfd; -1 otherwise. */
int udfb_egress_find(const char *dir);
/* Kill pasta and wait for it (closes pidfd). */
void udfb_egress_stop(int pidfd);

#endif
