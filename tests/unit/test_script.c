/* Databend's scripts: every vector of tests/data/databend (a copy of
 * ../shared/testdata/databend) parses into the parts its expect.json names
 * (code byte for byte, handler, types, imports, packages), and whatever is
 * not the template's shape, or a package that is shell text, is refused
 * naming the line or the string. */
#include <jansson.h>
#include <stdlib.h>

#include "builder/build.h"
#include "check.h"
#include "builder/key.h"
#include "common/fsutil.h"
#include "builder/request.h"
#include "builder/run.h"
#include "builder/script.h"

static const char *vectors[] = { "add_one_helper", "decimal_types",	   "missing_import",	     "numpy_plus_one",
				 "read_env",	   "read_pkg_zip_whl_egg", "read_stage_dup_basename" };

static json_t *load(const char *path)
{
	json_error_t je;
	json_t *j = json_load_file(path, 0, &je);
	if (!j)
		printf("# %s: %s\n", path, je.text);
	return j;
}

static char *script_of(const char *name, const char *rpc)
{
	char path[256];
	snprintf(path, sizeof(path), "tests/data/databend/%s.%s.json", name, rpc);
	json_t *j = load(path);
	char *s = j ? strdup(json_string_value(json_object_get(j, "script"))) : NULL;
	json_decref(j);
	return s;
}

static int parse(struct udfb_script *s, const char *text, struct udfb_err *err)
{
	return udfb_script_parse(s, text, strlen(text), err);
}

/* The stub names the stored type, but exactly "<X> UNSIGNED" (NOT NULL) as UINT<n>. */
static const char *stub_type(const char *t)
{
	static const char *const map[][2] = { { "TINYINT UNSIGNED", "UINT8" },
					      { "SMALLINT UNSIGNED", "UINT16" },
					      { "INT UNSIGNED", "UINT32" },
					      { "BIGINT UNSIGNED", "UINT64" } };
	for (size_t k = 0; k < 4; k++)
		if (strcmp(t, map[k][0]) == 0)
			return map[k][1];
	return t;
}

static int same_strings(char **got, size_t n, json_t *want)
{
	if (json_array_size(want) != n)
		return 0;
	for (size_t k = 0; k < n; k++)
		if (strcmp(got[k], stub_type(json_string_value(json_array_get(want, k)))))
			return 0;
	return 1;
}

/* The packages line: PEP 723 dependencies of the code, then PACKAGES. */
static int packages_match(const struct udfb_script *s, json_t *udf)
{
	size_t n = json_array_size(json_object_get(udf, "packages"));
	return s->n_packages >= n &&
	       same_strings(s->packages + (s->n_packages - n), n, json_object_get(udf, "packages"));
}

static void check_vector(const char *name, const char *rpc)
{
	char path[256];
	snprintf(path, sizeof(path), "tests/data/databend/%s.expect.json", name);
	json_t *exp = load(path), *udf = json_object_get(exp, "udf");
	char *text = script_of(name, rpc);
	struct udfb_script s;
	struct udfb_err err = UDFB_ERR_INIT;
	int rc = text ? parse(&s, text, &err) : -1;
	CHECK(rc == 0, "%s.%s parses", name, rpc);
	if (rc < 0) {
		printf("# %s\n", err.msg ? err.msg : "");
		udfb_err_clear(&err);
		free(text);
		json_decref(exp);
		return;
	}
	const char *code = json_string_value(json_object_get(udf, "code"));
	CHECK(s.code_len == strlen(code) && memcmp(s.code, code, s.code_len) == 0, "%s.%s: the code byte for byte",
	      name, rpc);
	CHECK_STR(s.handler, json_string_value(json_object_get(udf, "handler")), "%s.%s: the handler", name, rpc);
	json_t *types = json_object_get(udf, "input_types");
	const char *result = json_string_value(json_object_get(udf, "result_type"));
	json_t *old = json_object_get(exp, "apply_resource_types");
	if (old && strcmp(rpc, "apply_resource") == 0) {
		types = json_object_get(old, "input_types");
		result = json_string_value(json_object_get(old, "result_type"));
	}
	CHECK(same_strings(s.input_types, s.n_input_types, types), "%s.%s: the input types", name, rpc);
	CHECK_STR(s.result_type, result, "%s.%s: the result type", name, rpc);
	CHECK(packages_match(&s, udf), "%s.%s: the PACKAGES clause ends the pip line", name, rpc);
	json_t *ims = json_object_get(udf, "imports");
	int ok = json_array_size(ims) == s.n_imports;
	for (size_t k = 0; ok && k < s.n_imports; k++) {
		json_t *im = json_array_get(ims, k);
		ok = strcmp(s.imports[k].location, json_string_value(json_object_get(im, "location"))) == 0 &&
		     strcmp(s.imports[k].url, json_string_value(json_object_get(im, "url"))) == 0 &&
		     s.imports[k].n_headers == 1 && strcmp(s.imports[k].headers[0], "host: IMPORTS_BASE") == 0;
	}
	CHECK(ok, "%s.%s: the imports (location, url, host header)", name, rpc);
	CHECK(s.stub_len > 1000 && memcmp(s.stub, "import importlib\n", 17) == 0 &&
		      memcmp(s.stub + s.stub_len - 10, "  main()\n\n", 10) == 0,
	      "%s.%s: the stub is the here-document's body", name, rpc);
	size_t len = 0;
	char *spec = udfb_script_spec_json(&s, &len);
	struct udfb_import *rims = calloc(s.n_imports + 1, sizeof(*rims));
	for (size_t k = 0; k < s.n_imports; k++)
		rims[k] = (struct udfb_import){ s.imports[k].location, s.imports[k].url, "etag" };
	struct udfb_request r;
	rc = udfb_request_from_parts(&r, spec, len, rims, s.n_imports, &err);
	CHECK(rc == 0, "%s.%s: makes a valid request", name, rpc);
	if (rc == 0)
		udfb_request_free(&r);
	else
		printf("# %s\n", err.msg);
	udfb_err_clear(&err);
	free(rims);
	free(spec);
	udfb_script_free(&s);
	free(text);
	json_decref(exp);
}

/* text with the first occurrence of from replaced by to. */
static char *edit(const char *text, const char *from, const char *to)
{
	const char *p = strstr(text, from);
	if (!p)
		return strdup(text);
	char *out = NULL;
	if (asprintf(&out, "%.*s%s%s", (int)(p - text), text, to, p + strlen(from)) < 0)
		abort();
	return out;
}

static void refused(const char *text, const char *what, const char *want1, const char *want2)
{
	struct udfb_script s;
	struct udfb_err err = UDFB_ERR_INIT;
	int rc = parse(&s, text, &err);
	int ok = rc < 0 && err.cat == UDFB_E_INVALID && strstr(err.msg, want1) && (!want2 || strstr(err.msg, want2)) &&
		 !strstr(err.msg, "X-Amz-Signature");
	CHECK(ok, "%s: refused naming '%s'", what, want1);
	if (!ok)
		printf("# got: %s\n", rc < 0 ? err.msg : "(parsed)");
	if (rc == 0)
		udfb_script_free(&s);
	udfb_err_clear(&err);
}

static void check_refusals(void)
{
	char *base = script_of("add_one_helper", "create_worker"), *t;
	t = edit(base, "humanize==4.9.0\n", "numpy; curl evil\n");
	refused(t, "a package that is shell text", "'numpy;'", "shell");
	free(t);
	t = edit(base, "humanize==4.9.0\n", "numpy $(id)\n");
	refused(t, "command substitution in packages", "'$(id)'", NULL);
	free(t);
	t = edit(base, "humanize==4.9.0\n", "numpy ===\n");
	refused(t, "a word that is no requirement", "'==='", NULL);
	free(t);
	t = edit(base, "set -euo pipefail\n", "set -eu\n");
	refused(t, "a changed header line", "line 2", UDFB_SCRIPT_TEMPLATE_VERSION);
	free(t);
	t = edit(base, "        out.write(resp.read())\n", "        out.write(resp.read()); os.system('x')\n");
	refused(t, "a changed downloader", "out.write(resp.read()); os.system", "line 49");
	free(t);
	t = edit(base, "    server.serve()\n", "    server.serve(); evil()\n");
	refused(t, "a changed stub", "server.serve(); evil()", "this service knows");
	free(t);
	t = edit(base, "exec python /app/server.py\n", "exec python /app/server.py\ncurl evil\n");
	refused(t, "a line after exec", "curl evil", NULL);
	free(t);
	t = edit(base, "UDF_CODE\ncat", "UDF_CODEX\ncat");
	refused(t, "a here-document that never ends", "never ends", "UDF_CODE");
	free(t);
	t = edit(base, "\"headers\":{\"host\"", "\"headers\":{\"bad header\"");
	refused(t, "a header name with a space", "headers.bad header", NULL);
	free(t);
	t = edit(base, "[{\"location\"", "{{\"location\"");
	refused(t, "imports.json that is no JSON array", "line 10", "imports.json");
	free(t);
	t = edit(base, "import helper\n", "import helper # UDF_CODE\n");
	refused(t, "code holding its marker", "contains its own marker", NULL);
	free(t);
	t = strndup(base, strlen(base) - 1);
	refused(t, "no final newline", "the end of the script", NULL);
	free(t);
	refused("", "an empty script", "empty", NULL);
	refused("#!/bin/sh\necho hi\n", "a foreign script", "line 1", UDFB_SCRIPT_TEMPLATE_VERSION);
	t = edit(base, "?X-Amz-Algorithm", "\x01?X-Amz-Algorithm");
	struct udfb_script s;
	struct udfb_err err = UDFB_ERR_INIT;
	int rc = parse(&s, t, &err);
	CHECK(rc < 0 ? !strstr(err.msg, "X-Amz") : 1, "no error shows a URL's query");
	if (rc == 0)
		udfb_script_free(&s);
	udfb_err_clear(&err);
	free(t);
	free(base);
}

/* A marker with a suffix (content holding the plain marker) and a code that
 * holds shell syntax (never expanded: a quoted here-document). */
static void check_markers(void)
{
	char *base = script_of("read_env", "create_worker");
	char *a = edit(base, "cat <<'UDF_CODE' > /app/udf.py\n", "cat <<'UDF_CODE_1' > /app/udf.py\n");
	char *b = edit(a, "import os\n", "import os  # UDF_CODE $(rm -rf /) `id`\n");
	char *c = edit(b, "\")\nUDF_CODE\n", "\")\nUDF_CODE_1\n");
	struct udfb_script s;
	struct udfb_err err = UDFB_ERR_INIT;
	int rc = parse(&s, c, &err);
	CHECK(rc == 0 && strstr(s.code, "$(rm -rf /) `id`"),
	      "a suffixed marker ends the code where it says; shell text stays text");
	if (rc == 0)
		udfb_script_free(&s);
	else
		printf("# %s\n", err.msg);
	udfb_err_clear(&err);
	free(a), free(b), free(c), free(base);
}

static void check_resigned(void)
{
	char *a = script_of("add_one_helper", "create_worker"),
	     *b = script_of("add_one_helper", "create_worker.resigned");
	struct udfb_script sa, sb;
	struct udfb_err err = UDFB_ERR_INIT;
	int ok = parse(&sa, a, &err) == 0 && parse(&sb, b, &err) == 0;
	CHECK(ok && strcmp(sa.imports[0].url, sb.imports[0].url) != 0 &&
		      strcmp(sa.imports[0].location, sb.imports[0].location) == 0 && sa.code_len == sb.code_len,
	      "the re-signed script: same parts, a new URL");
	if (ok) {
		size_t la, lb;
		char *ja = udfb_script_spec_json(&sa, &la), *jb = udfb_script_spec_json(&sb, &lb);
		CHECK(la == lb && memcmp(ja, jb, la) == 0, "the re-signed script: the same spec (no URL in it)");
		free(ja), free(jb);
		udfb_script_free(&sa);
		udfb_script_free(&sb);
	}
	udfb_err_clear(&err);
	free(a), free(b);
}

static void check_big(void)
{
	char *base = script_of("read_env", "create_worker");
	size_t n = (4u << 20) - 4096;
	char *big = malloc(n + 1);
	for (size_t k = 0; k < n; k++)
		big[k] = k % 64 == 63 ? '\n' : '#';
	big[n] = '\0';
	char *t = edit(base, "import os\n", big);
	struct udfb_script s;
	struct udfb_err err = UDFB_ERR_INIT;
	int rc = parse(&s, t, &err);
	CHECK(rc == 0 && s.code_len > n, "a script carrying a 4 MiB UDF parses");
	if (rc == 0)
		udfb_script_free(&s);
	else
		printf("# %s\n", err.msg);
	udfb_err_clear(&err);
	free(t), free(big), free(base);
}

static int rc_is_shape_error(int ok, const struct udfb_err *err)
{
	return !ok && err->cat == UDFB_E_INVALID && strstr(err->msg, "Databend's template");
}

/* A request file holding CreateWorkerRequest JSON, keyed as a build would key it. */
static int file_key(char key[UDFB_DIGEST_LEN + 1], const char *path, const char *tag, const char *edit_from,
		    const char *edit_to, struct udfb_err *err)
{
	char *text = NULL;
	size_t len = 0;
	if (udfb_read_file(&text, &len, path, UDFB_REQUEST_MAX_BYTES, err) < 0)
		return -1;
	if (edit_from) {
		char *t = edit(text, edit_from, edit_to);
		free(text);
		text = t;
		len = strlen(t);
	}
	struct udfb_request r;
	int rc = udfb_request_parse_json(&r, text, len, err);
	free(text);
	if (rc < 0)
		return -1;
	for (size_t k = 0; tag && k < r.n_imports; k++) {
		free(r.imports[k].tag);
		r.imports[k].tag = strdup(tag);
	}
	struct udfb_build_opts o = { .platform = "linux/amd64", .salt = "" };
	rc = udfb_build_key(key, &r, "sha256:0000000000000000000000000000000000000000000000000000000000000000", &o,
			    err);
	udfb_request_free(&r);
	return rc;
}

static void check_keys(void)
{
	const char *a = "tests/data/databend/add_one_helper.create_worker.json",
		   *b = "tests/data/databend/add_one_helper.create_worker.resigned.json";
	const char *tag = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
	char ka[UDFB_DIGEST_LEN + 1], kb[UDFB_DIGEST_LEN + 1], kc[UDFB_DIGEST_LEN + 1], kd[UDFB_DIGEST_LEN + 1];
	struct udfb_err err = UDFB_ERR_INIT;
	int ok = file_key(ka, a, tag, NULL, NULL, &err) == 0 && file_key(kb, b, tag, NULL, NULL, &err) == 0;
	CHECK(ok && strcmp(ka, kb) == 0, "CreateWorker JSON and its re-signed twin: one key");
	if (!ok)
		printf("# %s\n", err.msg);
	udfb_err_clear(&err);
	ok = file_key(kc, a, "sha256:2222222222222222222222222222222222222222222222222222222222222222", NULL, NULL,
		      &err) == 0;
	CHECK(ok && strcmp(ka, kc) != 0, "other import content: another key");
	udfb_err_clear(&err);
	ok = file_key(kd, a, tag, "server.serve()", "server.serve(1)", &err) == 0;
	CHECK(rc_is_shape_error(ok, &err), "a stub edit is not Databend's template: refused");
	udfb_err_clear(&err);
	ok = file_key(kd, a, NULL, NULL, NULL, &err) == 0;
	CHECK(!ok && err.cat == UDFB_E_INVALID && strstr(err.msg, "has no tag"),
	      "no key before the imports are identified");
	udfb_err_clear(&err);
}

/* script_mode = run: a refusal says whether it was for the shape; the
 * content checks before a script runs as-is; the key leaves signatures out. */
static void check_run_mode(void)
{
	char *base = script_of("add_one_helper", "create_worker");
	if (!base)
		return;
	struct udfb_script s;
	struct udfb_err err = UDFB_ERR_INIT;
	CHECK(parse(&s, base, &err) == 0 && !s.shape, "the vector parses");
	udfb_script_free(&s);
	char *odd = strdup(base), *at = strstr(odd, "set -euo pipefail\n");
	memmove(at + 7, at + 17, strlen(at + 17) + 1); /* "set -eu\n" */
	CHECK(parse(&s, odd, &err) < 0 && s.shape, "another line 2: refused for its shape (%s)", err.msg);
	udfb_err_clear(&err);
	CHECK(udfb_script_check_run(odd, strlen(odd), &err) == 0, "its content may run as-is: %s",
	      err.msg ? err.msg : "ok");
	udfb_err_clear(&err);
	static const char *const bad[] = { "numpy; curl evil", "numpy && curl evil", "$(curl evil)", "numpy`id`" };
	for (size_t k = 0; k < sizeof(bad) / sizeof(*bad); k++) {
		char *inj = NULL;
		at = strstr(odd, "humanize==4.9.0\n");
		if (asprintf(&inj, "%.*s%s\n%s", (int)(at - odd), odd, bad[k], at + 16) < 0)
			abort();
		CHECK(parse(&s, inj, &err) < 0, "'%s' refused by the parser", bad[k]);
		udfb_err_clear(&err);
		CHECK(udfb_script_check_run(inj, strlen(inj), &err) < 0 && err.cat == UDFB_E_INVALID &&
			      strstr(err.msg, "is not a package requirement"),
		      "'%s' refused before a run: %s", bad[k], err.msg ? err.msg : "(accepted)");
		udfb_err_clear(&err);
		free(inj);
	}
	CHECK(udfb_script_check_run("echo \xff\n", 7, &err) < 0, "bad UTF-8 refused before a run");
	udfb_err_clear(&err);
	/* The key: the same with other signatures, another with other code. */
	char *resigned = script_of("add_one_helper", "create_worker.resigned");
	size_t l1, l2;
	char *u1 = udfb_run_unsigned(base, strlen(base), &l1),
	     *u2 = resigned ? udfb_run_unsigned(resigned, strlen(resigned), &l2) : NULL;
	CHECK(u2 && l1 == l2 && memcmp(u1, u2, l1) == 0 && !strstr(u1, "X-Amz-Signature") && strstr(u1, "helper.py\""),
	      "query strings left out: a re-signed script is the same");
	size_t n;
	char **urls = udfb_run_import_urls(base, strlen(base), &n);
	CHECK(n == 1 && strstr(urls[0], "http://IMPORTS_BASE/imports/helper.py?") == urls[0], "the imports' URLs");
	udfb_run_urls_free(urls);
	char *host = NULL;
	int port = 0;
	CHECK(udfb_run_host_port("http://127.0.0.1:8123/x?y", &host, &port, &err) == 0 &&
		      strcmp(host, "127.0.0.1") == 0 && port == 8123,
	      "host and port of a URL");
	free(host);
	CHECK(udfb_run_host_port("https://example.com/x", &host, &port, &err) == 0 && port == 443, "https: 443");
	free(host);
	CHECK(udfb_run_host_port("file:///etc/passwd", &host, &port, &err) < 0, "only http(s)");
	udfb_err_clear(&err);
	free(u1);
	free(u2);
	free(resigned);
	free(odd);
	free(base);
}

int main(void)
{
	for (size_t k = 0; k < sizeof(vectors) / sizeof(*vectors); k++) {
		check_vector(vectors[k], "apply_resource");
		check_vector(vectors[k], "create_worker");
	}
	check_resigned();
	check_refusals();
	check_markers();
	check_big();
	check_keys();
	check_run_mode();
	return check_done();
}
