/* PEP 508 requirement strings (with PEP 440 version specifiers and PEP 503
 * name normalisation).  Parsing yields a canonical text form that is used in
 * the cache key and written to the image: two spellings of one requirement
 * ("NumPy >= 1.26" and "numpy>=1.26") give one canonical form.  The parser
 * never executes or interpolates anything; a package string only ever leaves
 * as this canonical text, written to a file. */
#ifndef UDFB_PEP508_H
#define UDFB_PEP508_H

#include <stddef.h>

#include "common/err.h"

#define UDFB_REQ_MAX_LEN 1024

struct udfb_requirement {
	char *name; /* PEP 503 normalised */
	char **extras; /* normalised, sorted, unique */
	size_t n_extras;
	char *specifier; /* canonical clauses joined by ',' ("" when none) */
	char *marker; /* canonical marker text, NULL when none */
	char *canonical; /* name[extras]specifier; marker */
};

/* Parse s; errors are UDFB_E_INVALID and describe the problem without
 * naming the field (the caller knows which one it is). */
int udfb_req_parse(struct udfb_requirement *out, const char *s, struct udfb_err *err);
void udfb_req_free(struct udfb_requirement *r);

/* A list of requirements separated by any of the characters in seps (a
 * setting or a flag such as `numpy pandas==2.2.*`): each parsed, and *out
 * their canonical texts, sorted and unique, so two spellings of one list
 * are one list.  An error names the item ("'x!': ..."); *out holds what
 * was parsed before it.  Free with udfb_req_list_free. */
int udfb_req_list_parse(char ***out, size_t *n, const char *text, const char *seps, struct udfb_err *err);
void udfb_req_list_free(char **v, size_t n);

/* PEP 503: lower-case, runs of '-', '_', '.' become one '-'. *out is malloc'd. */
void udfb_pep503_normalize(char **out, const char *name);

/* PEP 440 version, normalised (e.g. "1.0RC1" -> "1.0rc1", "v2" -> "2").  With
 * allow_wildcard, a trailing ".*" is accepted (for == and !=). */
int udfb_pep440_normalize(char **out, const char *s, int allow_wildcard, struct udfb_err *err);

#endif
