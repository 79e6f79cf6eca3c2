/* Text from outside (the wire, a file, a peer) before it is trusted as a
 * string: valid UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing
 * past U+10FFFF), no NUL byte, within a length limit.  jansson refuses
 * anything else when it encodes, so a string that passed here always packs;
 * and a C string with a NUL inside would be silently cut. */
#ifndef UDFB_TEXT_H
#define UDFB_TEXT_H

#include <stddef.h>

#include "common/err.h"

/* The length of the longest valid UTF-8 prefix of s[0..len). */
size_t udfb_utf8_valid_prefix(const char *s, size_t len);
static inline int udfb_utf8_valid(const char *s, size_t len)
{
	return udfb_utf8_valid_prefix(s, len) == len;
}
/* len, less an incomplete character at the end of s[0..len) (text cut at
 * a byte limit): the cut then falls on a character boundary. */
size_t udfb_utf8_trim(const char *s, size_t len);
/* Replace each byte of every invalid sequence with '?', in place. */
void udfb_utf8_sanitize(char *s, size_t len);
/* INVALID "FIELD: ..." unless s[0..len) is valid UTF-8, holds no NUL and
 * is at most max bytes. */
int udfb_text_check(const char *s, size_t len, size_t max, const char *field, struct udfb_err *err);

#endif
