/* Log lines and the text checks under them (issue 18): a message cut at
 * the byte limit inside a multi-byte character, or holding bytes that are
 * not UTF-8, still makes one JSON line, cut at a character boundary. */
#include <jansson.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "common/log.h"
#include "common/text.h"

/* Run fn with stderr going to a file; the file's text (malloc'd). */
static char *captured(void (*fn)(void))
{
	char path[] = "/tmp/udfb-test-log-XXXXXX";
	int fd = mkstemp(path);
	fflush(stderr);
	int saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	fn();
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	off_t n = lseek(fd, 0, SEEK_END);
	char *text = calloc(1, (size_t)n + 1);
	if (pread(fd, text, (size_t)n, 0) != n)
		text[0] = '\0';
	close(fd);
	unlink(path);
	return text;
}

static void long_line(void)
{
	char msg[3001];
	for (int k = 0; k < 1500; k++)
		memcpy(msg + 2 * k, "\xc3\xa9", 2); /* é */
	msg[3000] = '\0';
	/* Two bytes of prefix: the 2047-byte limit falls inside a character. */
	udfb_log_emit(UDFB_LOG_WARN, "xy%s", msg);
}

static void bad_bytes(void)
{
	struct udfb_log_fields f = { "tenant-\xff", NULL, NULL };
	udfb_log_emit_fields(UDFB_LOG_WARN, &f, "import '%s': not found", "@s/\xfe.py");
}

static void test_lines(void)
{
	udfb_log_init(UDFB_LOG_DEBUG, 1);
	char *text = captured(long_line);
	json_t *j = json_loads(text, 0, NULL);
	const char *msg = json_string_value(json_object_get(j, "msg"));
	CHECK(msg != NULL, "a message cut inside a character is still logged (%zu bytes)", strlen(text));
	CHECK(msg && msg[0] == 'x' && strlen(msg) == 2046 && strcmp(msg + strlen(msg) - 2, "\xc3\xa9") == 0,
	      "cut at the last whole character (%zu bytes)", msg ? strlen(msg) : 0);
	json_decref(j);
	free(text);
	text = captured(bad_bytes);
	j = json_loads(text, 0, NULL);
	CHECK_STR(json_string_value(json_object_get(j, "msg")), "import '@s/?.py': not found",
		  "bytes that are not UTF-8 become '?'");
	CHECK_STR(json_string_value(json_object_get(j, "tenant")), "tenant-?", "in a field too");
	json_decref(j);
	free(text);
}

static void test_text(void)
{
	struct {
		const char *s;
		int ok;
	} cases[] = {
		{ "plain", 1 },
		{ "\xc3\xa9", 1 },
		{ "\xe2\x82\xac", 1 },
		{ "\xf0\x9f\x98\x80", 1 },
		{ "\xc0\xaf", 0 }, /* overlong '/' */
		{ "\xe0\x80\xaf", 0 }, /* overlong */
		{ "\xed\xa0\x80", 0 }, /* a surrogate */
		{ "\xf4\x90\x80\x80", 0 }, /* past U+10FFFF */
		{ "\xc3", 0 },
		{ "\xff", 0 },
		{ "a\x80", 0 },
	};
	for (size_t k = 0; k < sizeof(cases) / sizeof(*cases); k++)
		CHECK(udfb_utf8_valid(cases[k].s, strlen(cases[k].s)) == cases[k].ok, "UTF-8 case %zu is %s", k,
		      cases[k].ok ? "valid" : "invalid");
	CHECK(udfb_utf8_trim("ab\xc3", 3) == 2 && udfb_utf8_trim("ab\xe2\x82", 4) == 2 &&
		      udfb_utf8_trim("a\xc3\xa9", 3) == 3 && udfb_utf8_trim("abc", 3) == 3,
	      "trim drops only an incomplete last character");
	struct udfb_err err = UDFB_ERR_INIT;
	CHECK(udfb_text_check("a\0b", 3, 10, "imports[1].tag", &err) < 0 &&
		      strstr(err.msg, "imports[1].tag: holds a NUL"),
	      "a NUL is named (%s)", err.msg);
	udfb_err_clear(&err);
	CHECK(udfb_text_check("abcd", 4, 3, "f", &err) < 0 && err.cat == UDFB_E_INVALID, "over the limit is INVALID");
	udfb_err_clear(&err);
}

int main(void)
{
	test_text();
	test_lines();
	return check_done();
}
