/* Fuzz target: one line of an OCI layout's tag journal (.udfb-tags), which
 * a crash may leave torn and anyone with write access may edit.  A line
 * that parses must hold a valid digest and a tag and media type from their
 * character sets, each NUL-terminated inside its field. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image/ocilayout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size ? size : 1);
	memcpy(s, data, size);
	struct udfb_oci_tag_rec r;
	if (udfb_oci_tag_record_parse(&r, s, size) == 0) {
		if (!udfb_digest_valid(r.digest) || !r.tag[0] || !r.media_type[0] || r.size < 0 ||
		    strlen(r.tag) >= sizeof(r.tag) || strpbrk(r.tag, " \n/") || strchr(r.media_type, ' '))
			abort();
	}
	free(s);
	return 0;
}
