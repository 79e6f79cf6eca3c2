/* jansson results that cannot fail but for a bug: a json_pack or json_dumps
 * over the program's own values (constants, numbers, digests, text already
 * checked at the edge) returns NULL only when memory runs out or a caller
 * broke that promise.  Both abort (docs/errors.md, rules 3 and 4), loudly,
 * rather than write a truncated document or dereference NULL later.  Values
 * from outside that may still be wrong are checked where they are packed,
 * and fail as an error instead. */
#ifndef UDFB_JSONOUT_H
#define UDFB_JSONOUT_H

#include <jansson.h>

#define udfb_json_must(j) udfb_json_must_at((j), __FILE__, __LINE__)
#define udfb_json_dumps_must(j, flags) udfb_json_dumps_must_at((j), (flags), __FILE__, __LINE__)

json_t *udfb_json_must_at(json_t *j, const char *file, int line);
/* A JSON string of text that may hold bytes that are not UTF-8 (an error
 * message naming a file): those bytes become '?'; never NULL. */
json_t *udfb_json_text(const char *s);
char *udfb_json_dumps_must_at(const json_t *j, size_t flags, const char *file, int line);

#endif
