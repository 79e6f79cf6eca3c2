/* See jsonout.h. */
#include "common/jsonout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/text.h"

json_t *udfb_json_must_at(json_t *j, const char *file, int line)
{
	if (!j) {
		fprintf(stderr,
			"udf-builder: %s:%d: cannot build a JSON value (out of memory, or text that is not UTF-8)\n",
			file, line);
		abort();
	}
	return j;
}

char *udfb_json_dumps_must_at(const json_t *j, size_t flags, const char *file, int line)
{
	char *s = j ? json_dumps(j, flags) : NULL;
	if (!s) {
		fprintf(stderr, "udf-builder: %s:%d: cannot encode a JSON document\n", file, line);
		abort();
	}
	return s;
}

json_t *udfb_json_text(const char *s)
{
	size_t n = strlen(s);
	if (udfb_utf8_valid(s, n))
		return udfb_json_must(json_stringn(s, n));
	char *copy = udfb_strdup(s);
	udfb_utf8_sanitize(copy, n);
	json_t *j = udfb_json_must(json_stringn(copy, n));
	free(copy);
	return j;
}
