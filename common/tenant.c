/* Tenant labels: see tenant.h. */
#include "common/tenant.h"

#include <string.h>

#include "common/buf.h"
#include "common/hash.h"

/* Sanitising alone would map "Tenant_B" and "tenant-b" to one label, and so
 * one namespace, tag and endpoint: a hash of the exact name keeps labels
 * apart, the readable prefix keeps them recognisable. */
char *udfb_tenant_label(const char *tenant)
{
	struct udfb_buf b;
	udfb_buf_init(&b, 64);
	for (const char *p = tenant; *p && b.len < 28; p++) {
		char c = *p >= 'A' && *p <= 'Z' ? (char)(*p - 'A' + 'a') : *p;
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
			c = '-';
		if (c == '-' && (b.len == 0 || b.data[b.len - 1] == '-'))
			continue;
		udfb_buf_add(&b, &c, 1);
	}
	while (b.len && b.data[b.len - 1] == '-')
		b.data[--b.len] = '\0';
	char d[UDFB_DIGEST_LEN + 1];
	udfb_sha256_digest(tenant, strlen(tenant), d);
	udfb_buf_printf(&b, "%s%.10s", b.len ? "-" : "t-", udfb_digest_hex(d));
	return udfb_buf_steal(&b, NULL);
}
