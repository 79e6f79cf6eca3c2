/* A Databend script run as-is (script_mode = run): see run.h. */
#include "builder/run.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/cleanup.h"
#include "common/jsonout.h"
#include "common/version.h"
#include "image/layer.h"
#include "builder/templates.h"

#define RUN_DIR "udfb/run"
#define MAX_IMPORT_URLS 64
#define PIP_WHEELS "/usr/share/python-wheels"

static const char *const run_cmd[] = { "/bin/sh", "/udfb/run/start.sh", NULL };

/* The inverse of udfb_run_split: the same walk over the URLs, each given
 * its query back (json array in UDFB_RUN_QUERIES, in order). */
static const char resign_py[] = "# udf-builder, script_mode = run: the script's URLs get their query strings back\n"
				"# (the image holds none: a presigned URL's signature is a secret).\n"
				"import json, os, sys\n"
				"END = set('\\'\" \\t\\n\\r\\\\<>`')\n"
				"src = open(sys.argv[1], 'rb').read().decode('utf-8')\n"
				"queries = json.loads(os.environ.get('UDFB_RUN_QUERIES') or '[]')\n"
				"out, k, n = [], 0, 0\n"
				"while k < len(src):\n"
				"    if src.startswith('http://', k) or src.startswith('https://', k):\n"
				"        j = k\n"
				"        while j < len(src) and src[j] not in END:\n"
				"            j += 1\n"
				"        out.append(src[k:j])\n"
				"        out.append(queries[n] if n < len(queries) else '')\n"
				"        n, k = n + 1, j\n"
				"    else:\n"
				"        out.append(src[k])\n"
				"        k += 1\n"
				"with open(sys.argv[2], 'wb') as f:\n"
				"    f.write(''.join(out).encode('utf-8'))\n";

static const char python_shim[] = "#!/bin/sh\n"
				  "# udf-builder: `python` for a base that only has python3 (last on PATH)\n"
				  "exec python3 \"$@\"\n";

/* ---- what the key covers ---- */

static int url_end(char ch)
{
	return ch == '"' || ch == '\'' || ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\\' ||
	       ch == '<' || ch == '>' || ch == '`';
}

char *udfb_run_unsigned(const char *script, size_t len, size_t *out_len)
{
	return udfb_run_split(script, len, out_len, NULL);
}

char *udfb_run_split(const char *script, size_t len, size_t *out_len, json_t **queries)
{
	char *out = udfb_malloc(len + 1);
	size_t o = 0;
	if (queries)
		*queries = json_array();
	for (size_t k = 0; k < len;) {
		int url = (len - k >= 7 && memcmp(script + k, "http://", 7) == 0) ||
			  (len - k >= 8 && memcmp(script + k, "https://", 8) == 0);
		if (!url) {
			out[o++] = script[k++];
			continue;
		}
		while (k < len && !url_end(script[k]) && script[k] != '?' && script[k] != '#')
			out[o++] = script[k++];
		size_t q = k;
		while (k < len && !url_end(script[k])) /* the query string and fragment: left out */
			k++;
		if (queries)
			json_array_append_new(*queries, json_stringn_nocheck(script + q, k - q));
	}
	out[o] = '\0';
	*out_len = o;
	return out;
}

void udfb_run_key(char key[UDFB_DIGEST_LEN + 1], const struct udfb_run_in *in, const char *tenant, const char *scope,
		  const char *base_digest, const struct udfb_build_opts *o)
{
	size_t ulen;
	cleanup_free char *unsigned_script = udfb_run_unsigned(in->script, in->len, &ulen);
	char sd[UDFB_DIGEST_LEN + 1], site[UDFB_DIGEST_LEN + 1], guard[UDFB_DIGEST_LEN + 1];
	udfb_sha256_digest(unsigned_script, ulen, sd);
	const struct udfb_template *rs = udfb_template_run_site();
	udfb_sha256_digest(rs->data, rs->len, site);
	udfb_templates_guard_digest(guard);
	const char *slash = in->pip_wheel ? strrchr(in->pip_wheel, '/') : NULL;
	json_t *doc = udfb_json_must(json_pack(
		"{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "format", "udf-builder-run/1", "builder", UDFB_VERSION,
		"platform", o->platform ? o->platform : "", "salt", o->salt ? o->salt : "", "base", base_digest,
		"tenant", tenant, "scope", scope ? scope : "", "index", in->index_url ? in->index_url : "", "pip",
		slash ? slash + 1 : "", "script", sd, "wrapper", site));
	json_object_set_new(doc, "guard", json_string(guard));
	const struct udfb_template *srv = udfb_template_get("server.py"); /* the guard's token check */
	char check[UDFB_DIGEST_LEN + 1];
	udfb_sha256_digest(srv->data, srv->len, check);
	json_object_set_new(doc, "token_check", json_string(check));
	char *text = udfb_json_dumps_must(doc, JSON_COMPACT | JSON_SORT_KEYS);
	udfb_sha256_digest(text, strlen(text), key);
	free(text);
	json_decref(doc);
}

/* ---- the imports' hosts ---- */

static void add_urls(json_t *a, char ***urls, size_t *n)
{
	size_t k;
	json_t *v;
	json_array_foreach(a, k, v) {
		const char *u = json_string_value(json_object_get(v, "url"));
		if (!u || !json_is_string(json_object_get(v, "location")) || *n >= MAX_IMPORT_URLS)
			continue;
		*urls = udfb_reallocarray(*urls, *n + 2, sizeof(char *));
		(*urls)[(*n)++] = udfb_strdup(u);
		(*urls)[*n] = NULL;
	}
}

char **udfb_run_import_urls(const char *script, size_t len, size_t *n)
{
	char **urls = udfb_calloc(1, sizeof(char *));
	*n = 0;
	for (const char *p = script, *e = script + len; p < e;) {
		const char *nl = memchr(p, '\n', (size_t)(e - p));
		const char *le = nl ? nl : e;
		if (le - p > 2 && p[0] == '[' && p[1] == '{') {
			json_t *a = json_loadb(p, (size_t)(le - p), 0, NULL);
			if (json_is_array(a))
				add_urls(a, &urls, n);
			json_decref(a);
		}
		p = nl ? nl + 1 : e;
	}
	return urls;
}

void udfb_run_urls_free(char **urls)
{
	for (size_t k = 0; urls && urls[k]; k++)
		free(urls[k]);
	free(urls);
}

int udfb_run_host_port(const char *url, char **host, int *port, struct udfb_err *err)
{
	*host = NULL;
	*port = 0;
	CURLU *u = curl_url();
	char *h = NULL, *p = NULL, *scheme = NULL;
	int ok = u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
		 curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
		 (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0) &&
		 curl_url_get(u, CURLUPART_HOST, &h, 0) == CURLUE_OK &&
		 curl_url_get(u, CURLUPART_PORT, &p, CURLU_DEFAULT_PORT) == CURLUE_OK;
	if (ok) {
		*host = udfb_strdup(h);
		*port = atoi(p);
	}
	curl_free(h);
	curl_free(p);
	curl_free(scheme);
	curl_url_cleanup(u);
	if (!ok || *port < 1 || *port > 65535) {
		free(*host);
		*host = NULL;
		return udfb_err_set(err, UDFB_E_INVALID, "not an http(s) URL with a host");
	}
	return 0;
}

/* ---- the image ---- */

char *udfb_run_host_pip(void)
{
	DIR *d = opendir(PIP_WHEELS);
	if (!d)
		return NULL;
	char *best = NULL;
	for (struct dirent *e; (e = readdir(d));) {
		size_t n = strlen(e->d_name);
		if (strncmp(e->d_name, "pip-", 4) != 0 || n < 5 || strcmp(e->d_name + n - 4, ".whl") != 0)
			continue;
		if (!best || strcmp(e->d_name, best) > 0) {
			free(best);
			best = udfb_strdup(e->d_name);
		}
	}
	closedir(d);
	char *path = best ? udfb_asprintf("%s/%s", PIP_WHEELS, best) : NULL;
	free(best);
	return path;
}

/* Characters an index URL may have to be written, single-quoted, into the
 * start script. */
static int shell_safe_url(const char *s)
{
	for (; *s; s++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:/._~%-?=&+@[]!,;*()", *s))
			return 0;
	return 1;
}

static int start_script(struct udfb_buf *b, const struct udfb_run_in *in, struct udfb_err *err)
{
	udfb_buf_addstr(b, "#!/bin/sh\n"
			   "# udf-builder, script_mode = run: Databend's script (script.sh) as-is.\n"
			   "# The root file system is read-only: /app links to /tmp/app, pip installs\n"
			   "# into /tmp/udfb-site; sitecustomize.py puts the token check in front of\n"
			   "# databend_udf's server.\n"
			   "set -e\n"
			   "mkdir -p /tmp/app /tmp/udfb-site /tmp/udfb-home\n"
			   "export HOME=/tmp/udfb-home\n"
			   "PYTHONPATH=/udfb/run:/tmp/udfb-site\n"
			   "[ -f /udfb/run/pip.whl ] && PYTHONPATH=\"$PYTHONPATH:/udfb/run/pip.whl\"\n"
			   "export PYTHONPATH\n"
			   "export PATH=\"$PATH:/udfb/run/bin\"\n"
			   "export PIP_TARGET=/tmp/udfb-site PIP_BREAK_SYSTEM_PACKAGES=1 "
			   "PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_NO_WARN_SCRIPT_LOCATION=1\n");
	if (in->index_url) {
		cleanup_free char *host = NULL;
		int port;
		if (!shell_safe_url(in->index_url) || udfb_run_host_port(in->index_url, &host, &port, err) < 0)
			return udfb_err_set(err, UDFB_E_PRECONDITION,
					    "script_mode = run: the package index must be an http(s) URL of plain "
					    "characters for pip in the sandbox");
		udfb_buf_printf(b, "export PIP_INDEX_URL='%s'\n", in->index_url);
		if (strncmp(in->index_url, "http://", 7) == 0)
			udfb_buf_printf(b, "export PIP_TRUSTED_HOST='%s'\n", host);
	}
	/* The image holds the script without its URLs' query strings (the
	 * signatures); the sandbox's UDFB_RUN_QUERIES puts them back. */
	udfb_buf_addstr(b, "python3 /udfb/run/resign.py /udfb/run/script.sh /tmp/udfb-script.sh\n"
			   "unset UDFB_RUN_QUERIES\n"
			   "exec bash /tmp/udfb-script.sh\n");
	return 0;
}

int udfb_build_run(struct udfb_build_result *out, const char *key, const struct udfb_run_in *in,
		   const struct udfb_build_opts *o, struct udfb_err *err)
{
	memset(out, 0, sizeof(*out));
	struct udfb_buf start;
	udfb_buf_init(&start, 1 << 16);
	if (start_script(&start, in, err) < 0) {
		udfb_buf_free(&start);
		return -1;
	}
	const struct udfb_template *site = udfb_template_run_site(), *guard = udfb_template_guard(),
				   *check = udfb_template_get("server.py");
	struct udfb_layer_writer *w;
	udfb_layer_writer_new(&w);
	struct stat st;
	int rc = 0;
	size_t ulen;
	char *unsigned_script = udfb_run_unsigned(in->script, in->len, &ulen);
	if (udfb_layer_add_bytes(w, RUN_DIR "/script.sh", unsigned_script, ulen, 0, err) < 0 ||
	    udfb_layer_add_bytes(w, RUN_DIR "/resign.py", resign_py, sizeof(resign_py) - 1, 0, err) < 0 ||
	    udfb_layer_add_bytes(w, RUN_DIR "/start.sh", start.data, start.len, 1, err) < 0 ||
	    udfb_layer_add_bytes(w, RUN_DIR "/sitecustomize.py", site->data, site->len, 0, err) < 0 ||
	    udfb_layer_add_bytes(w, RUN_DIR "/udfb_guard.py", guard->data, guard->len, 0, err) < 0 ||
	    udfb_layer_add_bytes(w, RUN_DIR "/udfb_server.py", check->data, check->len, 0, err) < 0 ||
	    udfb_layer_add_bytes(w, RUN_DIR "/bin/python", python_shim, sizeof(python_shim) - 1, 1, err) < 0 ||
	    udfb_layer_add_symlink(w, "app", "/tmp/app", err) < 0)
		rc = -1;
	if (rc == 0 && in->hosts && udfb_layer_add_bytes(w, "etc/hosts", in->hosts, strlen(in->hosts), 0, err) < 0)
		rc = -1;
	if (rc == 0 && in->pip_wheel) {
		if (stat(in->pip_wheel, &st) < 0)
			rc = udfb_err_sys(err, errno, "script_mode = run: pip wheel %s", in->pip_wheel);
		else
			rc = udfb_layer_add_file(w, RUN_DIR "/pip.whl", in->pip_wheel, st.st_size, 0, err);
	}
	if (rc < 0) {
		udfb_layer_writer_free(w);
		udfb_buf_free(&start);
		free(unsigned_script);
		return -1;
	}
	rc = udfb_build_one_layer(out, key, w, "udf-builder: COPY script.sh start.sh (script_mode = run) /udfb/run/",
				  run_cmd, "/", o, err);
	udfb_buf_free(&start);
	free(unsigned_script);
	return rc;
}
