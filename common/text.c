/* Text checks: see text.h. */
#include "common/text.h"

#include <string.h>

/* The length of the valid character at s (n bytes left), 0 when invalid. */
static size_t char_len(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	if (c < 0x80)
		return 1;
	size_t want;
	unsigned lo = 0x80, hi = 0xbf; /* the range of the second byte */
	if (c >= 0xc2 && c <= 0xdf)
		want = 2;
	else if (c >= 0xe0 && c <= 0xef)
		want = 3, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
	else if (c >= 0xf0 && c <= 0xf4)
		want = 4, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
	else
		return 0;
	if (n < want || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t k = 2; k < want; k++)
		if ((s[k] & 0xc0) != 0x80)
			return 0;
	return want;
}

size_t udfb_utf8_valid_prefix(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t k = 0;
	while (k < len) {
		size_t n = char_len(u + k, len - k);
		if (!n)
			break;
		k += n;
	}
	return k;
}

size_t udfb_utf8_trim(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t start = len;
	/* Back over continuation bytes (at most three) to the last lead byte. */
	while (start > 0 && len - start < 3 && (u[start - 1] & 0xc0) == 0x80)
		start--;
	if (start == 0)
		return len;
	start--;
	return char_len(u + start, len - start) == len - start || u[start] < 0x80 ? len : start;
}

void udfb_utf8_sanitize(char *s, size_t len)
{
	unsigned char *u = (unsigned char *)s;
	size_t k = 0;
	while (k < len) {
		size_t n = char_len(u + k, len - k);
		if (n)
			k += n;
		else
			u[k++] = '?';
	}
}

int udfb_text_check(const char *s, size_t len, size_t max, const char *field, struct udfb_err *err)
{
	if (len > max)
		return udfb_err_set(err, UDFB_E_INVALID, "%s: longer than %zu bytes", field, max);
	if (memchr(s, '\0', len))
		return udfb_err_set(err, UDFB_E_INVALID, "%s: holds a NUL byte", field);
	size_t ok = udfb_utf8_valid_prefix(s, len);
	if (ok != len)
		return udfb_err_set(err, UDFB_E_INVALID, "%s: not valid UTF-8 (at byte %zu)", field, ok);
	return 0;
}
