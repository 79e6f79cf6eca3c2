/* The egress_cidrs setting and the ruleset a sandbox's namespace gets
 * (scheduler/egress.c): strict parsing, and the closed addresses (metadata,
 * gateway, the host's own) ahead of the open networks. */
#include <stdlib.h>

#include "check.h"
#include "scheduler/egress.h"

static void test_parse(void)
{
	static const struct {
		const char *text, *canon, *msg;
	} cases[] = {
		{ "", "", NULL },
		{ "10.0.0.0/8", "10.0.0.0/8", NULL },
		{ " 10.0.0.0/8, 192.0.2.7 ,0.0.0.0/0", "10.0.0.0/8,192.0.2.7/32,0.0.0.0/0", NULL },
		{ "10.0.0.1/8", NULL, "bits set past the /8 prefix" },
		{ "10.0.0.0/33", NULL, "expected an IPv4 network" },
		{ "10.0.0.0/-1", NULL, "expected an IPv4 network" },
		{ "10.0.0.0/4294967304", NULL, "expected an IPv4 network" },
		{ "10.0.0.0/", NULL, "expected an IPv4 network" },
		{ "10.0.0.0/08x", NULL, "expected an IPv4 network" },
		{ "example.com", NULL, "expected an IPv4 network" },
		{ "2001:db8::/32", NULL, "IPv6 is not offered" },
		{ "::ffff:10.0.0.1", NULL, "IPv6 is not offered" },
	};
	for (size_t k = 0; k < sizeof(cases) / sizeof(*cases); k++) {
		struct udfb_egress e;
		struct udfb_err err = UDFB_ERR_INIT;
		int rc = udfb_egress_parse(&e, cases[k].text, &err);
		if (cases[k].canon) {
			char *d = rc == 0 ? udfb_egress_describe(&e) : NULL;
			CHECK_STR(d, cases[k].canon, "egress_cidrs '%s' parses", cases[k].text);
			free(d);
			udfb_egress_clear(&e);
		} else {
			CHECK(rc < 0 && err.cat == UDFB_E_INVALID && err.msg && strstr(err.msg, cases[k].msg),
			      "egress_cidrs '%s' refused: %s", cases[k].text, err.msg ? err.msg : "(accepted)");
		}
		udfb_err_clear(&err);
	}
}

static void test_ruleset(void)
{
	struct udfb_egress e;
	struct udfb_err err = UDFB_ERR_INIT;
	CHECK(udfb_egress_parse(&e, "10.1.0.0/16,169.254.169.254", &err) == 0, "parse");
	char *host = udfb_egress_host_addrs();
	CHECK(strstr(host, "127.0.0.1") != NULL, "the host's addresses: %s", host);
	char *r = udfb_egress_ruleset(&e, host);
	free(host);
	char *closed = strstr(r, "set closed"), *open = strstr(r, "set open");
	CHECK(closed && open && strstr(closed, "169.254.169.254, 10.0.2.2, ") < open &&
		      strstr(closed, "127.0.0.1") < open,
	      "metadata, gateway and the host's addresses are closed");
	CHECK(open && strstr(open, "10.1.0.0/16, 169.254.169.254/32 }"), "the operator's networks are open");
	char *lo = strstr(r, "oifname \"lo\" accept"), *deny = strstr(r, "ip daddr @closed jump refuse"),
	     *allow = strstr(r, "ip daddr @open accept");
	CHECK(lo && deny && allow && lo < deny && deny < allow, "loopback, then closed, then open");
	CHECK(strstr(r, "policy drop;") && strstr(r, "reject with tcp reset"), "everything else refused");
	free(r);
	udfb_egress_clear(&e);
}

/* A script run as-is: exact address:port destinations, loopback ones as
 * ports pasta maps. */
static void test_dests(void)
{
	struct udfb_egress e = { 0 };
	struct udfb_err err = UDFB_ERR_INIT;
	CHECK(udfb_egress_add_dest(&e, "192.0.2.7:443", &err) == 0 &&
		      udfb_egress_add_dest(&e, "127.0.0.1:5000", &err) == 0 &&
		      udfb_egress_add_dest(&e, "127.0.0.1:5000", &err) == 0,
	      "destinations parse");
	CHECK(e.n_to == 1 && e.n_host_ports == 1 && e.host_ports[0] == 5000 && udfb_egress_any(&e),
	      "one open destination, one host port");
	static const char *const bad[] = { "192.0.2.7",	     "192.0.2.7:0", "192.0.2.7:65536",
					   "example.com:80", ":80",	    "192.0.2.7:8x" };
	for (size_t k = 0; k < sizeof(bad) / sizeof(*bad); k++) {
		CHECK(udfb_egress_add_dest(&e, bad[k], &err) < 0 && err.cat == UDFB_E_INVALID, "'%s' refused", bad[k]);
		udfb_err_clear(&err);
	}
	char *r = udfb_egress_ruleset(&e, "10.0.0.5");
	char *deny = strstr(r, "ip daddr @closed jump refuse"), *to = strstr(r, "ip daddr . tcp dport @open_to accept");
	CHECK(strstr(r, "elements = { 192.0.2.7 . 443 }") && deny && to && deny < to,
	      "the destination is open, after the closed addresses");
	CHECK(!strstr(strstr(r, "set open {"), "elements = { }"), "no empty element list");
	free(r);
	udfb_egress_clear(&e);
}

int main(void)
{
	test_parse();
	test_ruleset();
	test_dests();
	return check_done();
}
