/* Requests and specs: the shared vectors parse; each field's error names
 * the field; the cache key ignores what must not matter (field order, JSON
 * white space, presigned URLs) and follows what must (tags, import order,
 * base, salt, platform). */
#include <jansson.h>
#include <stdlib.h>

#include "builder/build.h"
#include "check.h"
#include "common/fsutil.h"
#include "builder/key.h"
#include "builder/request.h"
#include "cache/store.h"
#include "fetch/fetch.h"

static const char *vectors[] = { "add_one_helper", "decimal_types",	   "missing_import",	     "numpy_plus_one",
				 "read_env",	   "read_pkg_zip_whl_egg", "read_stage_dup_basename" };

static int key_of(char key[UDFB_DIGEST_LEN + 1], const char *json, const char *base, const char *salt,
		  const char *platform)
{
	struct udfb_request r;
	struct udfb_err err = UDFB_ERR_INIT;
	if (udfb_request_parse_json(&r, json, strlen(json), &err) < 0) {
		printf("# %s\n", err.msg);
		udfb_err_clear(&err);
		return -1;
	}
	struct udfb_key_inputs in = { &r, base, platform, salt };
	int rc = udfb_key_compute(key, NULL, &in, &err);
	udfb_request_free(&r);
	udfb_err_clear(&err);
	return rc;
}

/* Build a request from a spec object and import triples. */
static char *request(json_t *spec, const char *const *imports, size_t n)
{
	char *spec_text = json_dumps(spec, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_t *ims = json_array();
	for (size_t k = 0; k < n; k++)
		json_array_append_new(ims, json_pack("{s:s,s:s,s:s}", "location", imports[3 * k], "url",
						     imports[3 * k + 1], "tag", imports[3 * k + 2]));
	json_t *req = json_pack("{s:s,s:o}", "spec", spec_text, "imports", ims);
	char *out = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	free(spec_text);
	return out;
}

static json_t *base_spec(const char *i1, const char *i2)
{
	json_t *imps = json_array();
	if (i1)
		json_array_append_new(imps, json_string(i1));
	if (i2)
		json_array_append_new(imps, json_string(i2));
	return json_pack("{s:i,s:s,s:s,s:s,s:[s],s:s,s:o,s:[s],s:s,s:s}", "version", 1, "kind", "udf", "language",
			 "python", "handler", "f", "input_types", "INT NULL", "result_type", "INT NULL", "imports",
			 imps, "packages", "numpy", "runtime_version", "3.12.2", "code", "def f(x):\n    return x\n");
}

static void test_vectors(void)
{
	for (size_t k = 0; k < sizeof(vectors) / sizeof(*vectors); k++) {
		char path[256];
		snprintf(path, sizeof(path), "tests/data/requests/%s.request.json", vectors[k]);
		struct udfb_request r;
		struct udfb_err err = UDFB_ERR_INIT;
		int rc = udfb_request_load(&r, path, &err);
		CHECK(rc == 0, "vector %s parses (%s)", vectors[k], err.msg ? err.msg : "ok");
		if (rc == 0)
			udfb_request_free(&r);
		udfb_err_clear(&err);
	}
	struct udfb_request r;
	struct udfb_err err = UDFB_ERR_INIT;
	udfb_request_load(&r, "tests/data/requests/add_one_helper.request.json", &err);
	CHECK(r.n_requirements == 1 && strcmp(r.requirements[0], "humanize==4.9.0") == 0,
	      "PEP 723 dependencies merge into the requirements");
	udfb_request_free(&r);
}

static void expect_error(const char *what, const char *json, const char *needle)
{
	struct udfb_request r;
	struct udfb_err err = UDFB_ERR_INIT;
	int rc = udfb_request_parse_json(&r, json, strlen(json), &err);
	CHECK(rc < 0 && err.cat == UDFB_E_INVALID && err.msg && strstr(err.msg, needle), "%s -> error naming '%s' (%s)",
	      what, needle, err.msg ? err.msg : "accepted");
	if (rc == 0)
		udfb_request_free(&r);
	udfb_err_clear(&err);
}

static void spec_error(const char *what, const char *key, json_t *value, const char *needle)
{
	json_t *spec = base_spec(NULL, NULL);
	if (value)
		json_object_set_new(spec, key, value);
	else
		json_object_del(spec, key);
	char *req = request(spec, NULL, 0);
	expect_error(what, req, needle);
	free(req);
	json_decref(spec);
}

static void test_errors(void)
{
	expect_error("not JSON", "{", "request: not valid JSON");
	expect_error("spec not a string", "{\"spec\": 1}", "spec: missing");
	expect_error("unknown request field", "{\"spec\": \"{}\", \"x\": 1}", "request.x");
	expect_error("spec not JSON", "{\"spec\": \"{\"}", "spec: not valid JSON");
	spec_error("version 2", "version", json_integer(2), "spec.version");
	spec_error("kind", "kind", json_string("table"), "spec.kind");
	spec_error("language", "language", json_string("javascript"), "spec.language");
	spec_error("handler with a dot", "handler", json_string("os.system"), "spec.handler");
	spec_error("handler a keyword", "handler", json_string("class"), "spec.handler");
	spec_error("missing handler", "handler", NULL, "spec.handler: missing");
	spec_error("type with a quote", "input_types", json_pack("[s]", "INT'"), "spec.input_types[0]");
	spec_error("unbalanced type", "result_type", json_string("ARRAY(INT"), "spec.result_type");
	spec_error("bad package", "packages", json_pack("[s,s]", "numpy", "numpy;;"), "spec.packages[1]");
	spec_error("bad runtime", "runtime_version", json_string("3.x"), "spec.runtime_version");
	spec_error("unknown field", "memory", json_integer(1), "spec.memory: unknown field");
	spec_error("code too long", "code", json_string(""), "spec.code: must not be empty");

	const char *imports[] = { "@s/a.py", "http://h/a.py?sig=SECRET", "t1" };
	json_t *spec = base_spec("@s/b.py", NULL);
	char *req = request(spec, imports, 1);
	expect_error("spec.imports and imports[] differ", req,
		     "imports[0].location: '@s/a.py' differs from spec.imports[0] '@s/b.py'");
	free(req);
	json_decref(spec);
	spec = base_spec("@s/a.py", "@s/c.py");
	req = request(spec, imports, 1);
	expect_error("an import missing from imports[]", req, "spec.imports[1] '@s/c.py' has no entry");
	free(req);
	json_decref(spec);
	const char *ftp[] = { "@s/a.py", "ftp://h/a.py?sig=SECRET", "t1" };
	spec = base_spec("@s/a.py", NULL);
	req = request(spec, ftp, 1);
	expect_error("ftp URL", req, "import '@s/a.py'): must be an http or https URL");
	struct udfb_request r;
	struct udfb_err err = UDFB_ERR_INIT;
	udfb_request_parse_json(&r, req, strlen(req), &err);
	CHECK(err.msg && !strstr(err.msg, "SECRET"), "the URL's signature stays out of the error");
	udfb_err_clear(&err);
	free(req);
	json_decref(spec);

	/* Issue 18: refused at parse as INVALID_ARGUMENT, not later as
	 * INTERNAL (a name the file system cannot hold) or UNAVAILABLE (a URL
	 * libcurl cannot read); a .wh. name would delete files in the image. */
	char long_loc[300] = "@s/";
	memset(long_loc + 3, 'a', 256);
	struct {
		const char *loc, *url, *want;
	} bad[] = {
		{ long_loc, "http://h/a.py?sig=SECRET", "longer than 255 bytes" },
		{ "@s/.wh.server.py", "http://h/a.py?sig=SECRET", "'.wh.server.py' starts with '.wh.'" },
		{ "@s/.wh..wh..opq", "http://h/a.py?sig=SECRET", "OCI whiteout" },
		{ "@s/a.py", "http://h/a b.py?sig=SECRET", "imports[0].url (import '@s/a.py'): not a valid URL" },
		{ "@s/a.py", "http://h:99999/a.py?sig=SECRET", "not a valid URL" },
	};
	for (size_t k = 0; k < sizeof(bad) / sizeof(*bad); k++) {
		const char *ims[] = { bad[k].loc, bad[k].url, "t1" };
		spec = base_spec(bad[k].loc, NULL);
		req = request(spec, ims, 1);
		char what[64];
		snprintf(what, sizeof(what), "bad import %zu", k);
		expect_error(what, req, bad[k].want);
		udfb_request_parse_json(&r, req, strlen(req), &err);
		CHECK(err.msg && !strstr(err.msg, "SECRET"), "  and the URL's signature stays out of it");
		udfb_err_clear(&err);
		free(req);
		json_decref(spec);
	}
	char max_loc[300] = "@s/";
	memset(max_loc + 3, 'a', 255);
	const char *ok[] = { max_loc, "http://h/a.py?sig=SECRET", "t1" };
	spec = base_spec(max_loc, NULL);
	req = request(spec, ok, 1);
	CHECK(udfb_request_parse_json(&r, req, strlen(req), &err) == 0, "a 255-byte file name is fine");
	udfb_request_free(&r);
	udfb_err_clear(&err);
	free(req);
	json_decref(spec);
}

static void test_key(void)
{
	char k1[UDFB_DIGEST_LEN + 1], k2[UDFB_DIGEST_LEN + 1];
	const char *imp_a[] = { "@s/a.py", "http://h/a.py?sig=ONE", "t1", "@s/b.py", "http://h/b.py?sig=ONE", "t2" };
	const char *imp_b[] = {
		"@s/a.py", "http://other/a.py?sig=TWO", "t1", "@s/b.py", "http://h/b.py?sig=THREE", "t2"
	};
	const char *imp_tag[] = { "@s/a.py", "http://h/a.py?sig=ONE", "t1", "@s/b.py", "http://h/b.py?sig=ONE", "t9" };
	const char *imp_rev[] = { "@s/b.py", "http://h/b.py?sig=ONE", "t2", "@s/a.py", "http://h/a.py?sig=ONE", "t1" };
	const char *base = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
	json_t *spec = base_spec("@s/a.py", "@s/b.py");
	char *r1 = request(spec, imp_a, 2), *r2 = request(spec, imp_b, 2), *r3 = request(spec, imp_tag, 2);
	CHECK(key_of(k1, r1, base, "", "linux/amd64") == 0 && key_of(k2, r2, base, "", "linux/amd64") == 0 &&
		      strcmp(k1, k2) == 0,
	      "new presigned URLs keep the key");
	CHECK(key_of(k2, r3, base, "", "linux/amd64") == 0 && strcmp(k1, k2) != 0, "a new tag changes the key");
	CHECK(key_of(k2, r1, "sha256:2222222222222222222222222222222222222222222222222222222222222222", "",
		     "linux/amd64") == 0 &&
		      strcmp(k1, k2) != 0,
	      "another base digest changes the key");
	CHECK(key_of(k2, r1, base, "s1", "linux/amd64") == 0 && strcmp(k1, k2) != 0, "the salt changes the key");
	CHECK(key_of(k2, r1, base, "", "linux/arm64") == 0 && strcmp(k1, k2) != 0, "the platform changes the key");
	json_t *rev = base_spec("@s/b.py", "@s/a.py");
	char *r4 = request(rev, imp_rev, 2);
	CHECK(key_of(k2, r4, base, "", "linux/amd64") == 0 && strcmp(k1, k2) != 0,
	      "import order changes the key (last wins)");
	/* The same spec with its fields in another order and spaced out. */
	char *spaced = json_dumps(spec, JSON_INDENT(3) | JSON_SORT_KEYS);
	json_t *req = json_loads(r1, 0, NULL);
	json_object_set_new(req, "spec", json_string(spaced));
	char *r5 = json_dumps(req, JSON_INDENT(1));
	CHECK(key_of(k2, r5, base, "", "linux/amd64") == 0 && strcmp(k1, k2) == 0,
	      "field order and white space keep the key");
	json_object_set_new(spec, "packages", json_pack("[s]", "NumPy"));
	char *r6 = request(spec, imp_a, 2);
	CHECK(key_of(k2, r6, base, "", "linux/amd64") == 0 && strcmp(k1, k2) == 0,
	      "a requirement's spelling keeps the key");
	json_object_set_new(spec, "packages", json_pack("[s]", "numpy==2.0"));
	char *r7 = request(spec, imp_a, 2);
	CHECK(key_of(k2, r7, base, "", "linux/amd64") == 0 && strcmp(k1, k2) != 0, "a pinned version changes the key");
	free(r1), free(r2), free(r3), free(r4), free(r5), free(r6), free(r7), free(spaced);
	json_decref(req);
	json_decref(spec);
	json_decref(rev);
}

/* Issue 18: bytes that are not UTF-8 in an import's tag (protobuf-c passes
 * them through) used to crash the import cache (json_pack NULL, strlen NULL)
 * and were silently left out of the cache key. */
static const char bad_tag[] = "etag-\xff\xfe";

static void test_hostile_strings(void)
{
	struct udfb_err err = UDFB_ERR_INIT;
	const char *spec =
		"{\"version\":1,\"kind\":\"udf\",\"language\":\"python\",\"handler\":\"f\",\"input_types\":[],"
		"\"result_type\":\"INT\",\"imports\":[\"@s/a.py\"],\"packages\":[],\"code\":\"def f(): return 1\"}";
	struct udfb_import im = { "@s/a.py", "http://127.0.0.1:1/a.py", (char *)bad_tag };
	struct udfb_request r;
	CHECK(udfb_request_from_parts(&r, spec, strlen(spec), &im, 1, &err) < 0 && err.cat == UDFB_E_INVALID &&
		      strstr(err.msg, "imports[0].tag") && strstr(err.msg, "UTF-8"),
	      "a tag that is not UTF-8 is INVALID_ARGUMENT naming imports[0].tag (%s)", err.msg ? err.msg : "accepted");
	udfb_err_clear(&err);
	struct udfb_import im2 = { "@s/\xc0\xaf.py", "http://127.0.0.1:1/a.py", "t" };
	CHECK(udfb_request_from_parts(&r, spec, strlen(spec), &im2, 1, &err) < 0 &&
		      strstr(err.msg, "imports[0].location"),
	      "an overlong UTF-8 form in a location is refused, named (%s)", err.msg ? err.msg : "accepted");
	udfb_err_clear(&err);

	/* Below the edge check: the key and the import cache refuse, never drop or crash. */
	im.tag = "etag-1";
	CHECK(udfb_request_from_parts(&r, spec, strlen(spec), &im, 1, &err) == 0,
	      "the same request with a UTF-8 tag parses");
	char *saved = r.imports[0].tag;
	r.imports[0].tag = (char *)bad_tag;
	char key[UDFB_DIGEST_LEN + 1];
	struct udfb_key_inputs in = { &r, NULL, "linux/amd64", "" };
	CHECK(udfb_key_compute(key, NULL, &in, &err) < 0, "the cache key never leaves an import out");
	udfb_err_clear(&err);
	char dir[] = "/tmp/udfb-test-hostile-XXXXXX";
	struct udfb_store *st = NULL;
	if (mkdtemp(dir) && udfb_store_open(&st, dir, &err) == 0) {
		char tmp[4200];
		snprintf(tmp, sizeof(tmp), "%s/tmp-import", dir);
		FILE *f = fopen(tmp, "w");
		fputs("x = 1\n", f);
		fclose(f);
		struct udfb_fetched fe = { .path = strdup(tmp), .size = 6 };
		udfb_sha256_digest("x = 1\n", 6, fe.digest);
		CHECK(udfb_store_import_put(st, "t1", "@s/a.py", bad_tag, &fe, &err) < 0 && err.cat == UDFB_E_INVALID,
		      "the import cache refuses a tag it cannot record (%s)", err.msg ? err.msg : "accepted");
		udfb_err_clear(&err);
		free(fe.path);
		udfb_store_close(st);
	} else {
		CHECK(0, "open a store in %s: %s", dir, err.msg);
		udfb_err_clear(&err);
	}
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK(system(cmd) == 0, "remove the test store");
	r.imports[0].tag = saved;
	udfb_request_free(&r);
}

/* A length-delimited protobuf field: key, length (one byte), bytes. */
static size_t put_field(uint8_t *out, unsigned num, const void *data, size_t len)
{
	out[0] = (uint8_t)(num << 3 | 2);
	out[1] = (uint8_t)len;
	memcpy(out + 2, data, len);
	return len + 2;
}

static int wire_verdict(const char *tag, size_t tag_len, const char *spec, size_t spec_len, struct udfb_err *err)
{
	uint8_t im[128], msg[256];
	size_t n = put_field(im, 1, "@s/a.py", 7);
	n += put_field(im + n, 2, "http://h/a", 10);
	n += put_field(im + n, 3, tag, tag_len);
	size_t m = put_field(msg, 1, spec, spec_len);
	m += put_field(msg + m, 2, im, n);
	return udfb_request_check_wire(msg, m, err);
}

/* protobuf-c keeps neither a string's length nor checks UTF-8: the strings
 * are checked on the wire, where a NUL byte is still visible. */
static void test_wire(void)
{
	struct udfb_err err = UDFB_ERR_INIT;
	CHECK(wire_verdict("etag-1", 6, "{}", 2, &err) == 0, "a message with clean strings passes the wire check");
	CHECK(wire_verdict("etag\0-1", 7, "{}", 2, &err) < 0 && strstr(err.msg, "imports[0].tag") &&
		      strstr(err.msg, "NUL"),
	      "a NUL in a tag is refused, named (%s)", err.msg ? err.msg : "accepted");
	udfb_err_clear(&err);
	CHECK(wire_verdict("e\xff", 2, "{}", 2, &err) < 0 && strstr(err.msg, "imports[0].tag") &&
		      err.cat == UDFB_E_INVALID,
	      "bytes that are not UTF-8 in a tag are refused, named (%s)", err.msg ? err.msg : "accepted");
	udfb_err_clear(&err);
	CHECK(wire_verdict("t", 1, "{}\0{\"x\":1}", 10, &err) < 0 && strncmp(err.msg, "spec:", 5) == 0,
	      "a NUL in the spec is refused, not cut (%s)", err.msg ? err.msg : "accepted");
	udfb_err_clear(&err);
	uint8_t junk[] = { 0x12, 0x7f, 0x00 };
	CHECK(udfb_request_check_wire(junk, sizeof(junk), &err) == 0, "a malformed message is left to the unpacker");
}

int main(void)
{
	test_vectors();
	test_errors();
	test_key();
	test_hostile_strings();
	test_wire();
	return check_done();
}
