/* Tenant names in places with stricter alphabets: DNS labels (Kubernetes
 * namespaces, endpoint host names) and image tags. */
#ifndef UDFB_TENANT_H
#define UDFB_TENANT_H

/* [a-z0-9-], at most 39 bytes, never empty, distinct for distinct names. */
char *udfb_tenant_label(const char *tenant);

#endif
