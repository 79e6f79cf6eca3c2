/* The forwarder: the host side of local sandboxes' endpoints.
 *
 * A sandbox lives in a network namespace of its own (netns.h) and listens
 * on its loopback there.  The service listens on the advertised host
 * address, one port per sandbox port, and carries each accepted connection
 * into the namespace: a thread enters it, connects to 127.0.0.1:<target>,
 * and the bytes go both ways with splice(2) through a pipe, never copied to
 * user space.  So the sandbox binds no host port (none to squat), and what
 * reaches it is what reaches the service's listening ports.
 *
 * One accept thread (epoll) serves every listener; each connection has two
 * threads (one per direction), bounded by max_conns. */
#ifndef UDFB_FORWARD_H
#define UDFB_FORWARD_H

#include <sys/socket.h>

#include "common/err.h"

struct udfb_fwd;
struct udfb_fwd_listener;

int udfb_fwd_new(struct udfb_fwd **out, long max_conns, struct udfb_err *err);
/* Who may connect: peers in one of these networks ("10.0.0.0/8",
 * "2001:db8::/32", an address alone), comma-separated, and loopback (the
 * service's own probes); NULL or "": anyone who reaches the bind address.
 * Before the first listener.  A malformed entry is UDFB_E_INVALID. */
int udfb_fwd_allow(struct udfb_fwd *f, const char *cidrs, struct udfb_err *err);
/* The same check alone, for settings: 0 when cidrs parses. */
int udfb_fwd_cidrs_valid(const char *cidrs, struct udfb_err *err);
/* Closes every listener and connection, waits for their threads. */
void udfb_fwd_free(struct udfb_fwd *f);

/* Listen on addr (its port must be set); connections go to
 * 127.0.0.1:target_port in the namespace set by udfb_fwd_target, or are
 * closed at once while none is.  A port in use is UDFB_E_EXHAUSTED. */
int udfb_fwd_listen(struct udfb_fwd *f, const struct sockaddr *addr, socklen_t len, int target_port,
		    struct udfb_fwd_listener **out, struct udfb_err *err);
/* Where new connections go: a namespace (the descriptor is duplicated) or -1. */
void udfb_fwd_target(struct udfb_fwd *f, struct udfb_fwd_listener *l, int netns_fd);
/* Stop listening (the port is free again); open connections go on. */
void udfb_fwd_close(struct udfb_fwd *f, struct udfb_fwd_listener *l);

#endif
