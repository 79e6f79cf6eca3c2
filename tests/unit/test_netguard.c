/* The SSRF guard's address table and allow-list. */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "check.h"
#include "netguard.h"

static const char *verdict(const struct udfb_netguard *g, const char *host, const char *addr)
{
	struct sockaddr_storage ss = { 0 };
	if (strchr(addr, ':')) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		inet_pton(AF_INET6, addr, &a->sin6_addr);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		inet_pton(AF_INET, addr, &a->sin_addr);
	}
	return udfb_netguard_check(g, host, (struct sockaddr *)&ss);
}

int main(void)
{
	const char *refused[] = { "127.0.0.1", "127.9.9.9", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1",
				  "169.254.169.254", "0.0.0.0", "100.64.0.1", "224.0.0.1", "255.255.255.255", "::1",
				  "::", "fe80::1", "fd00::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "ff02::1" };
	const char *passed[] = { "8.8.8.8", "172.32.0.1", "192.169.0.1", "11.0.0.1", "2a00:1450::1", "100.128.0.1" };
	for (size_t k = 0; k < sizeof(refused) / sizeof(*refused); k++)
		CHECK(verdict(NULL, NULL, refused[k]) != NULL, "%s is refused by default", refused[k]);
	for (size_t k = 0; k < sizeof(passed) / sizeof(*passed); k++)
		CHECK(verdict(NULL, NULL, passed[k]) == NULL, "%s is a public address", passed[k]);
	struct udfb_netguard *g;
	struct udfb_err err = UDFB_ERR_INIT;
	udfb_netguard_new(&g);
	CHECK(udfb_netguard_allow(g, "127.0.0.1", &err) == 0, "allow an address");
	CHECK(udfb_netguard_allow(g, "10.0.0.0/8", &err) == 0, "allow a network");
	CHECK(udfb_netguard_allow(g, "fd00::/8", &err) == 0, "allow an IPv6 network");
	CHECK(udfb_netguard_allow(g, "stage.internal", &err) == 0, "allow a host name");
	CHECK(verdict(g, NULL, "127.0.0.1") == NULL && verdict(g, NULL, "127.0.0.2") != NULL, "exactly the allowed address");
	CHECK(verdict(g, NULL, "10.200.0.1") == NULL && verdict(g, NULL, "172.16.0.1") != NULL, "exactly the allowed network");
	CHECK(verdict(g, NULL, "fd12::1") == NULL && verdict(g, NULL, "fe80::1") != NULL, "IPv6 network");
	CHECK(verdict(g, "Stage.Internal", "192.168.0.9") == NULL, "an allowed host name may go anywhere it resolves");
	CHECK(verdict(g, "other.internal", "169.254.169.254") != NULL, "another name may not");
	CHECK(udfb_netguard_allow(g, "10.0.0.0/33", &err) < 0 && strstr(err.msg, "10.0.0.0/33"), "a bad CIDR is refused, named");
	udfb_err_clear(&err);
	CHECK(udfb_netguard_allow(g, "bad host!", &err) < 0, "a bad host is refused");
	udfb_err_clear(&err);
	udfb_netguard_free(g);
	return check_done();
}
