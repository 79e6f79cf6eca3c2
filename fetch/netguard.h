/* The server-side request forgery guard of the import fetcher: by default a
 * presigned URL may not make us connect to loopback, link-local (the cloud
 * metadata address 169.254.169.254 among them), private, shared, multicast,
 * reserved, documentation or unspecified addresses, IPv6 forms that carry
 * an IPv4 address (IPv4-compatible, NAT64, 6to4, Teredo), nor any address
 * of this host's own interfaces (read again every few seconds).  An allow-list opens chosen hosts (by
 * name) or networks (by address or CIDR).  The check runs on the address
 * actually connected to, for every connection including redirects. */
#ifndef UDFB_NETGUARD_H
#define UDFB_NETGUARD_H

#include <stddef.h>
#include <sys/socket.h>

#include "common/err.h"

struct udfb_netguard;

void udfb_netguard_new(struct udfb_netguard **out);
void udfb_netguard_free(struct udfb_netguard *g);
/* Add "HOST", "ADDR" or "ADDR/BITS" (IPv4 or IPv6; BITS in decimal, within
 * the family's width, no address bit set past it). */
int udfb_netguard_allow(struct udfb_netguard *g, const char *entry, struct udfb_err *err);
/* NULL when the connection may go ahead; else why not ("loopback", ...). */
const char *udfb_netguard_check(const struct udfb_netguard *g, const char *host, const struct sockaddr *sa);
/* Read this host's addresses again at the next check (they are otherwise
 * read at most every 5 s). */
void udfb_netguard_refresh_local(void);
/* The address in text, for messages. */
void udfb_netguard_addr_text(const struct sockaddr *sa, char *buf, size_t len);

#endif
