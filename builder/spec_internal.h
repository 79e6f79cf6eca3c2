/* Shared between spec.c and request.c only. */
#ifndef UDFB_SPEC_INTERNAL_H
#define UDFB_SPEC_INTERNAL_H

#include <jansson.h>

#include "builder/request.h"

int udfb_spec_parse(struct udfb_spec *s, const char *text, size_t len, struct udfb_err *err);
void udfb_spec_free(struct udfb_spec *s);
int udfb_json_string(char **out, json_t *v, const char *field, size_t max, int allow_empty, struct udfb_err *err);

#endif
