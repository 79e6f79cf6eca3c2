/* The strings of an ApplyUdfResourceRequest checked on the wire, before
 * protobuf-c unpacks them: protobuf-c neither validates UTF-8 nor keeps a
 * string's length, so a NUL byte would silently cut a field and bytes that
 * are not UTF-8 would reach jansson, which refuses to encode them (the cache
 * key and the import cache entry).  Proto3 requires string fields to be
 * UTF-8; we also refuse NUL, which no spec, location, URL or tag holds.
 * A malformed message is left to the unpacker, which refuses it. */
#include <stdint.h>
#include <stdio.h>

#include "builder/request.h"
#include "common/text.h"

struct cursor {
	const uint8_t *p, *end;
};

static int varint(struct cursor *c, uint64_t *out)
{
	uint64_t v = 0;
	for (int shift = 0; shift < 64 && c->p < c->end; shift += 7) {
		uint8_t b = *c->p++;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*out = v;
			return 0;
		}
	}
	return -1;
}

/* The next field: its number, wire type, and for wire type 2 its bytes.
 * 1: a field; 0: the end; -1: malformed. */
static int next_field(struct cursor *c, uint32_t *num, const uint8_t **data, size_t *len)
{
	if (c->p == c->end)
		return 0;
	uint64_t key, v;
	if (varint(c, &key) < 0 || key >> 32)
		return -1;
	*num = (uint32_t)(key >> 3);
	*data = NULL;
	switch (key & 7) {
	case 0: return varint(c, &v) < 0 ? -1 : 1;
	case 1:
	case 5: {
		size_t n = (key & 7) == 1 ? 8 : 4;
		if ((size_t)(c->end - c->p) < n)
			return -1;
		c->p += n;
		return 1;
	}
	case 2:
		if (varint(c, &v) < 0 || v > (uint64_t)(c->end - c->p))
			return -1;
		*data = c->p, *len = (size_t)v;
		c->p += v;
		return 1;
	default: return -1;
	}
}

static int check_import(const uint8_t *b, size_t len, size_t k, struct udfb_err *err)
{
	static const char *const names[] = { NULL, "location", "url", "tag" };
	static const size_t limits[] = { 0, UDFB_LOCATION_MAX_LEN, UDFB_URL_MAX_LEN, UDFB_TAG_MAX_LEN };
	struct cursor c = { b, b + len };
	uint32_t num;
	const uint8_t *data;
	size_t n;
	int rc;
	while ((rc = next_field(&c, &num, &data, &n)) == 1) {
		if (!data || num < 1 || num > 3)
			continue;
		char f[64];
		snprintf(f, sizeof(f), "imports[%zu].%s", k, names[num]);
		if (udfb_text_check((const char *)data, n, limits[num], f, err) < 0)
			return -1;
	}
	return rc;
}

int udfb_request_check_wire(const uint8_t *b, size_t len, struct udfb_err *err)
{
	struct cursor c = { b, b + len };
	uint32_t num;
	const uint8_t *data;
	size_t n, k = 0;
	int rc;
	while ((rc = next_field(&c, &num, &data, &n)) == 1) {
		if (!data)
			continue;
		if (num == 1 && udfb_text_check((const char *)data, n, UDFB_SPEC_MAX_BYTES, "spec", err) < 0)
			return -1;
		if (num == 2 && check_import(data, n, k++, err) < 0) {
			if (err->cat != UDFB_E_OK)
				return -1;
			break; /* a malformed import: the unpacker says so */
		}
	}
	return 0;
}
