/* .dist-info/RECORD: CSV rows "path,sha256=<urlsafe b64>,size" read and
 * written the way Python's csv module (excel dialect) does. */
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "python/wheel.h"
#include "python/wheel_internal.h"

void udfb_record_b64(char out[WHEEL_B64_SHA256_LEN + 1], const char digest[UDFB_DIGEST_LEN + 1])
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	const char *hex = udfb_digest_hex(digest);
	unsigned char raw[33] = { 0 }; /* a spare zero byte completes the last group of 3 */
	for (int k = 0; k < 32; k++) {
		char h = hex[2 * k], l = hex[2 * k + 1];
		raw[k] = (unsigned char)(((h <= '9' ? h - '0' : h - 'a' + 10) << 4) |
					 (l <= '9' ? l - '0' : l - 'a' + 10));
	}
	char tmp[45];
	size_t o = 0;
	for (int k = 0; k < 33; k += 3) {
		unsigned v = (unsigned)raw[k] << 16 | (unsigned)raw[k + 1] << 8 | raw[k + 2];
		tmp[o++] = b64[(v >> 18) & 63];
		tmp[o++] = b64[(v >> 12) & 63];
		tmp[o++] = b64[(v >> 6) & 63];
		tmp[o++] = b64[v & 63];
	}
	/* 32 bytes are 42 full sextets and 4 bits: 43 characters, no padding. */
	memcpy(out, tmp, WHEEL_B64_SHA256_LEN);
	out[WHEEL_B64_SHA256_LEN] = '\0';
}

struct csv {
	const char *s;
	size_t i, len;
	size_t line;
};

/* One field into b; returns the character that ended it (',', '\n' or 0
 * at the end), or -1 on a malformed quoted field. */
static int csv_field(struct csv *c, struct udfb_buf *b)
{
	udfb_buf_reset(b);
	int quoted = c->i < c->len && c->s[c->i] == '"';
	if (quoted)
		c->i++;
	while (c->i < c->len) {
		char ch = c->s[c->i++];
		if (quoted && ch == '"') {
			if (c->i < c->len && c->s[c->i] == '"') {
				c->i++;
				udfb_buf_add(b, "\"", 1);
				continue;
			}
			quoted = 0;
			continue;
		}
		if (!quoted && (ch == ',' || ch == '\n'))
			return ch;
		if (!quoted && ch == '\r' && c->i < c->len && c->s[c->i] == '\n')
			continue;
		/* Names hold no control characters: a newline in quotes is no path. */
		if (ch == '\0' || ch == '\n' || ch == '\r' || udfb_buf_add(b, &ch, 1) < 0)
			return -1;
	}
	return quoted ? -1 : 0;
}

static long long parse_size(const char *s)
{
	if (!s[0])
		return -1;
	long long v = 0;
	for (const char *c = s; *c; c++) {
		if (*c < '0' || *c > '9' || c - s >= 18)
			return -2;
		v = v * 10 + (*c - '0');
	}
	return v;
}

static int bad_line(struct csv *c, const char *wheel, const char *why, struct udfb_err *err)
{
	return udfb_err_set(err, UDFB_E_INVALID, "wheel '%s': RECORD line %zu: %s", wheel, c->line, why);
}

static int parse_row(struct udfb_record *r, struct csv *c, struct udfb_buf f[3], const char *wheel,
		     struct udfb_err *err)
{
	int end = 0;
	for (int k = 0; k < 3; k++) {
		end = csv_field(c, &f[k]);
		if (end < 0)
			return bad_line(c, wheel, "malformed field", err);
		if ((k < 2 && end != ',') || (k == 2 && end == ','))
			return bad_line(c, wheel, "not three fields", err);
	}
	long long size = parse_size(f[2].data ? f[2].data : "");
	if (size < -1)
		return bad_line(c, wheel, "bad size", err);
	if (r->n == UDFB_WHEEL_MAX_FILES)
		return bad_line(c, wheel, "more rows than a wheel may have files", err);
	struct udfb_record_row *row = &r->rows[r->n];
	row->path = udfb_strdup(f[0].data ? f[0].data : "");
	row->hash = udfb_strdup(f[1].data ? f[1].data : "");
	row->size = size;
	r->n++;
	if (!udfb_strmap_put(&r->index, row->path, r->n - 1))
		return bad_line(c, wheel, "a path listed twice", err);
	return 0;
}

static int parse_rows(struct udfb_record *r, struct csv *c, const char *wheel, struct udfb_err *err)
{
	struct udfb_buf f[3];
	for (int k = 0; k < 3; k++)
		udfb_buf_init(&f[k], WHEEL_MAX_NAME + 128);
	int rc = 0;
	size_t cap = 0;
	while (rc == 0 && c->i < c->len) {
		c->line++;
		if (c->s[c->i] == '\n' || (c->s[c->i] == '\r' && c->i + 1 < c->len && c->s[c->i + 1] == '\n')) {
			c->i += c->s[c->i] == '\r' ? 2 : 1; /* csv skips empty lines */
			continue;
		}
		if (r->n == cap) {
			cap = cap ? 2 * cap : 64;
			r->rows = udfb_realloc(r->rows, cap * sizeof(*r->rows));
			/* The index holds the paths, not the rows: moving rows is fine. */
		}
		rc = parse_row(r, c, f, wheel, err);
	}
	for (int k = 0; k < 3; k++)
		udfb_buf_free(&f[k]);
	return rc;
}

int udfb_record_parse(struct udfb_record *r, const char *text, size_t len, const char *wheel, struct udfb_err *err)
{
	memset(r, 0, sizeof(*r));
	udfb_strmap_init(&r->index);
	struct csv c = { .s = text, .len = len };
	if (parse_rows(r, &c, wheel, err) < 0) {
		udfb_record_free(r);
		return -1;
	}
	return 0;
}

const struct udfb_record_row *udfb_record_find(const struct udfb_record *r, const char *path)
{
	size_t k;
	return udfb_strmap_get(&r->index, path, &k) ? &r->rows[k] : NULL;
}

void udfb_record_free(struct udfb_record *r)
{
	for (size_t k = 0; k < r->n; k++) {
		free(r->rows[k].path);
		free(r->rows[k].hash);
	}
	free(r->rows);
	udfb_strmap_free(&r->index);
	memset(r, 0, sizeof(*r));
}

int udfb_record_add_row(struct udfb_buf *b, const char *path, const char *b64, long long size)
{
	int rc = 0;
	if (strpbrk(path, ",\"\r\n")) {
		rc |= udfb_buf_addstr(b, "\"");
		for (const char *c = path; *c; c++) {
			rc |= udfb_buf_add(b, c, 1);
			if (*c == '"')
				rc |= udfb_buf_add(b, "\"", 1); /* doubled inside quotes */
		}
		rc |= udfb_buf_addstr(b, "\"");
	} else {
		rc |= udfb_buf_addstr(b, path);
	}
	if (b64)
		rc |= udfb_buf_printf(b, ",sha256=%s,%lld\r\n", b64, size);
	else
		rc |= udfb_buf_addstr(b, ",,\r\n");
	return rc ? -1 : 0;
}
