/* The `script` of Databend's ApplyResource and CreateWorker calls: a bash
 * script rendered from Databend's four fixed templates (the script, the
 * imports block, the import downloader, the server stub).  It is read, never
 * run: the parser recognises the template line by line and takes out the
 * package requirements, the imports (location, presigned URL, presign
 * headers), the UDF code and the generated stub, byte for byte.  A script
 * of any other shape is refused naming its first differing line and the
 * template version this parser knows (../shared/docs/databend-versions.md). */
#ifndef UDFB_SCRIPT_H
#define UDFB_SCRIPT_H

#include <stddef.h>

#include "common/err.h"

/* The templates this parser knows: byte-identical from Databend d3229cc2060a
 * (v1.2.874) to 43b24ec040 (2026-08-22). */
#define UDFB_SCRIPT_TEMPLATE_VERSION "Databend v1.2.874 and later (templates unchanged up to 43b24ec040)"
#define UDFB_SCRIPT_MAX_BYTES (6u << 20) /* a 4 MiB UDF and its stub fit */
#define UDFB_SCRIPT_MAX_HEADERS 32

struct udfb_script_import {
	char *location;
	char *url; /* secret: its query string signs it; never logged */
	char **headers; /* "name: value", as curl sends them; NULL-terminated */
	size_t n_headers;
};

struct udfb_script {
	char **packages; /* the words of the pip line, each a PEP 508 requirement */
	size_t n_packages;
	struct udfb_script_import *imports;
	size_t n_imports;
	char *code; /* without the here-document's final newline (udf.py is code + "\n") */
	size_t code_len;
	char *stub; /* /app/server.py, the here-document's body */
	size_t stub_len;
	char *handler;
	char **input_types;
	size_t n_input_types;
	char *result_type;
	int shape; /* after a refusal: 1 when the text differs from the template's shape
		      (not for its content: a package injection, bad UTF-8, limits) */
};

/* Parse a script; errors are UDFB_E_INVALID and start with "script". */
int udfb_script_parse(struct udfb_script *out, const char *text, size_t len, struct udfb_err *err);
void udfb_script_free(struct udfb_script *s);
/* Before a script the parser refused for its shape is run as-is
 * (script_mode = run): the same content checks, size, UTF-8, and every
 * `pip install` line's words are requirements (a word with shell syntax,
 * `numpy; curl evil`, is refused naming it).  UDFB_E_INVALID. */
int udfb_script_check_run(const char *text, size_t len, struct udfb_err *err);

/* The ApplyUdfResource spec JSON with the script's parts (handler, types,
 * code, imports' locations, packages), for udfb_request_from_parts(). */
char *udfb_script_spec_json(const struct udfb_script *s, size_t *len);

#endif
