/* Image references of the command line and the service configuration:
 *   oci:DIR[:TAG][@sha256:HEX]                   an OCI image-layout directory
 *   docker://HOST[:PORT]/REPO[:TAG|@sha256:HEX]  an image in a registry */
#ifndef UDFB_REF_H
#define UDFB_REF_H

#include "common/err.h"

enum udfb_ref_kind { UDFB_REF_OCI, UDFB_REF_DOCKER };

struct udfb_ref {
	enum udfb_ref_kind kind;
	char *dir; /* oci */
	char *host; /* docker: "host[:port]" */
	char *repo; /* docker */
	char *tag; /* NULL when absent */
	char *digest; /* NULL when absent */
};

int udfb_ref_parse(struct udfb_ref *out, const char *s, struct udfb_err *err);
void udfb_ref_free(struct udfb_ref *r);
/* The reference without tag or digest: "oci:DIR" or "docker://HOST/REPO". */
char *udfb_ref_name(const struct udfb_ref *r);
/* A tag as the distribution spec allows: [A-Za-z0-9_][A-Za-z0-9._-]{0,127}. */
int udfb_ref_tag_valid(const char *t);

#endif
