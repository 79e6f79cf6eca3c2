/* YAML (as kubectl writes kubeconfigs) to JSON values, with Debian's
 * libyaml: the first document of a stream; mappings, sequences, scalars
 * (plain true/false/null and integers typed, everything else a string).
 * Bounded: nesting depth and the number of values produced (aliases are
 * expanded, so a "billion laughs" document is refused, not expanded). */
#ifndef UDFB_YAML_JSON_H
#define UDFB_YAML_JSON_H

#include <jansson.h>
#include <stddef.h>

#include "common/err.h"

#define UDFB_YAML_MAX_DEPTH 64
#define UDFB_YAML_MAX_VALUES 100000

/* *out: a new JSON value; what names the input in errors. */
int udfb_yaml_to_json(const char *text, size_t len, const char *what, json_t **out, struct udfb_err *err);

#endif
