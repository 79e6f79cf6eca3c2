/* PEP 440 versions as text: normalisation for requirement strings.  The
 * parsing is pyver.c's; this adds the ".*" suffix that == and != allow. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "python/pep508.h"
#include "python/pyver.h"

int udfb_pep440_normalize(char **out, const char *s, int allow_wildcard, struct udfb_err *err)
{
	*out = NULL;
	size_t n = strlen(s);
	if (n > UDFB_PYVER_MAX_LEN)
		return udfb_err_set(err, UDFB_E_INVALID, "version longer than %d bytes", UDFB_PYVER_MAX_LEN);
	char release[UDFB_PYVER_MAX_LEN + 1];
	memcpy(release, s, n + 1);
	int wildcard = allow_wildcard && n >= 2 && strcmp(s + n - 2, ".*") == 0;
	if (wildcard)
		release[n - 2] = '\0';
	struct udfb_pyver v;
	if (udfb_pyver_parse(&v, release, err) < 0)
		return -1;
	/* "1.0a1.*" or "1.0 .*" (parse allows surrounding blanks) are not prefixes. */
	if (wildcard &&
	    (v.pre_kind || v.post >= 0 || v.dev >= 0 || v.local[0] || release[strcspn(release, " \t\n\r\f\v")]))
		return udfb_err_set(err, UDFB_E_INVALID, "'%.64s' is not a valid PEP 440 version", s);
	*out = udfb_asprintf("%s%s", v.text, wildcard ? ".*" : "");
	return 0;
}
