/* The SSRF guard's address table and allow-list. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdlib.h>

#include "check.h"
#include "fetch/netguard.h"

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

/* Issue 18: ranges the table missed, and strict CIDR parsing. */
static void test_issue18(void)
{
	const char *refused[] = { "::10.0.0.1",
				  "::127.0.0.1",
				  "::169.254.169.254",
				  "::8.8.8.8",
				  "64:ff9b:1::a00:1",
				  "fec0::1",
				  "192.0.2.1",
				  "198.51.100.7",
				  "203.0.113.255",
				  "2002:7f00:1::1",
				  "2001:0:4136:e378:8000:63bf:3fff:fdd2",
				  "100::1" };
	for (size_t k = 0; k < sizeof(refused) / sizeof(*refused); k++)
		CHECK(verdict(NULL, NULL, refused[k]) != NULL, "%s is refused by default", refused[k]);
	const char *passed[] = { "192.0.3.1", "198.51.101.1", "203.0.112.1", "64:ff9b:2::1", "2600:1f18::1" };
	for (size_t k = 0; k < sizeof(passed) / sizeof(*passed); k++)
		CHECK(verdict(NULL, NULL, passed[k]) == NULL, "%s is still a public address", passed[k]);
	CHECK_STR(verdict(NULL, NULL, "::10.0.0.1"), "IPv4-compatible (::/96)", "::a.b.c.d says why");

	struct udfb_netguard *g;
	struct udfb_err err = UDFB_ERR_INIT;
	udfb_netguard_new(&g);
	struct {
		const char *entry, *want;
	} bad[] = {
		{ "10.0.0.0/4294967304", "decimal number" }, /* was read as /8 */
		{ "10.0.0.0/-1", "decimal number" }, /* was a single host */
		{ "10.0.0.0/+8", "decimal number" },
		{ "10.0.0.0/ 8", "decimal number" },
		{ "10.0.0.0/08", "decimal number" },
		{ "10.0.0.0/", "decimal number" },
		{ "10.0.0.0/33", "0 to 32" },
		{ "fd00::/129", "0 to 128" },
		{ "10.0.0.1/8", "bits are set past the prefix" },
		{ "fd00::1/8", "bits are set past the prefix" },
		{ "10.0.0.256", "not an IPv4 or IPv6 address" },
		{ "10.0.0/8", "not an IPv4 or IPv6 address" },
	};
	for (size_t k = 0; k < sizeof(bad) / sizeof(*bad); k++) {
		CHECK(udfb_netguard_allow(g, bad[k].entry, &err) < 0 && err.cat == UDFB_E_INVALID &&
			      strstr(err.msg, bad[k].entry) && strstr(err.msg, bad[k].want),
		      "imports-allow '%s' is refused: %s", bad[k].entry, err.msg ? err.msg : "accepted");
		udfb_err_clear(&err);
	}
	CHECK(verdict(g, NULL, "10.1.2.3") != NULL, "no refused entry opened anything");
	CHECK(udfb_netguard_allow(g, "10.0.0.0/32", &err) == 0 && verdict(g, NULL, "10.0.0.0") == NULL &&
		      verdict(g, NULL, "10.0.0.1") != NULL,
	      "a /32 is one address");
	CHECK(udfb_netguard_allow(g, "0.0.0.0/0", &err) == 0 && udfb_netguard_allow(g, "::/0", &err) == 0 &&
		      verdict(g, NULL, "169.254.169.254") == NULL && verdict(g, NULL, "fe80::1") == NULL,
	      "/0 opens everything (the operator said so)");
	udfb_err_clear(&err);
	udfb_netguard_free(g);
}

/* The host's own addresses, in a network namespace of our own whose
 * loopback interface gets addresses the fixed table lets through. */
static void test_own_addresses(void)
{
	const char *addr = "11.22.33.44";
	if (unshare(CLONE_NEWNET) < 0) {
		printf("ok %d - # SKIP own addresses: unshare(CLONE_NEWNET): %s\n", ++check_n, strerror(errno));
		return;
	}
	CHECK(verdict(NULL, NULL, addr) == NULL, "%s passes while no interface has it", addr);
	int rc = system(
		"ip link set lo up && ip addr add 11.22.33.44/32 dev lo && ip addr add 2a00:1450::44/128 dev lo");
	CHECK(rc == 0, "addresses on the loopback interface of the test's own namespace");
	udfb_netguard_refresh_local();
	CHECK_STR(verdict(NULL, NULL, addr), "an address of this host", "%s is refused once it is this host's", addr);
	CHECK(verdict(NULL, NULL, "2a00:1450::44") != NULL && verdict(NULL, NULL, "2a00:1450::45") == NULL,
	      "an IPv6 address of this host too, and only it");
	struct udfb_netguard *g;
	struct udfb_err err = UDFB_ERR_INIT;
	udfb_netguard_new(&g);
	udfb_netguard_allow(g, "11.22.33.44", &err);
	CHECK(verdict(g, NULL, addr) == NULL, "an explicit imports-allow still opens it");
	udfb_netguard_free(g);
}

int main(void)
{
	const char *refused[] = { "127.0.0.1",
				  "127.9.9.9",
				  "10.1.2.3",
				  "172.16.0.1",
				  "172.31.255.255",
				  "192.168.1.1",
				  "169.254.169.254",
				  "0.0.0.0",
				  "100.64.0.1",
				  "224.0.0.1",
				  "255.255.255.255",
				  "::1",
				  "::",
				  "fe80::1",
				  "fd00::1",
				  "::ffff:127.0.0.1",
				  "::ffff:169.254.169.254",
				  "ff02::1" };
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
	CHECK(verdict(g, NULL, "127.0.0.1") == NULL && verdict(g, NULL, "127.0.0.2") != NULL,
	      "exactly the allowed address");
	CHECK(verdict(g, NULL, "10.200.0.1") == NULL && verdict(g, NULL, "172.16.0.1") != NULL,
	      "exactly the allowed network");
	CHECK(verdict(g, NULL, "fd12::1") == NULL && verdict(g, NULL, "fe80::1") != NULL, "IPv6 network");
	CHECK(verdict(g, "Stage.Internal", "192.168.0.9") == NULL, "an allowed host name may go anywhere it resolves");
	CHECK(verdict(g, "other.internal", "169.254.169.254") != NULL, "another name may not");
	CHECK(udfb_netguard_allow(g, "10.0.0.0/33", &err) < 0 && strstr(err.msg, "10.0.0.0/33"),
	      "a bad CIDR is refused, named");
	udfb_err_clear(&err);
	CHECK(udfb_netguard_allow(g, "bad host!", &err) < 0, "a bad host is refused");
	udfb_err_clear(&err);
	udfb_netguard_free(g);
	test_issue18();
	test_own_addresses();
	return check_done();
}
