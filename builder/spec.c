/* The spec JSON: field by field validation into struct udfb_spec.  Unknown
 * fields are rejected: a field we do not understand could change what the
 * image must be, and it would not be in the cache key. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "builder/request.h"
#include "builder/spec_internal.h"
#include "common/alloc.h"

static const char *const py_keywords[] = { "False",  "None",	 "True",  "and",    "as",	"assert",
					   "async",  "await",	 "break", "class",  "continue", "def",
					   "del",    "elif",	 "else",  "except", "finally",	"for",
					   "from",   "global",	 "if",	  "import", "in",	"is",
					   "lambda", "nonlocal", "not",	  "or",	    "pass",	"raise",
					   "return", "try",	 "while", "with",   "yield",	NULL };

int udfb_python_identifier(const char *s)
{
	if (!s[0] || strlen(s) > UDFB_HANDLER_MAX_LEN)
		return 0;
	for (const char *c = s; *c; c++) {
		int alpha = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || *c == '_';
		if (!alpha && !(c > s && *c >= '0' && *c <= '9'))
			return 0;
	}
	for (int k = 0; py_keywords[k]; k++)
		if (strcmp(s, py_keywords[k]) == 0)
			return 0;
	return 1;
}

/* Letters, digits, '_', spaces, commas and balanced parentheses: the forms
 * Databend emits.  Quotes, newlines and anything else are refused. */
int udfb_type_valid(const char *t)
{
	size_t n = strlen(t);
	if (n == 0 || n > UDFB_TYPE_MAX_LEN || t[0] == ' ')
		return 0;
	int depth = 0;
	for (const char *c = t; *c; c++) {
		int ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
			 *c == '_' || *c == ' ' || *c == ',';
		if (*c == '(')
			ok = ++depth <= 16;
		else if (*c == ')')
			ok = --depth >= 0;
		if (!ok)
			return 0;
	}
	return depth == 0;
}

int udfb_json_string(char **out, json_t *v, const char *field, size_t max, int allow_empty, struct udfb_err *err)
{
	if (!json_is_string(v))
		return udfb_err_set(err, UDFB_E_INVALID, "%s: must be a string", field);
	size_t n = json_string_length(v);
	if (n > max)
		return udfb_err_set(err, UDFB_E_INVALID, "%s: longer than %zu bytes", field, max);
	if (!allow_empty && n == 0)
		return udfb_err_set(err, UDFB_E_INVALID, "%s: must not be empty", field);
	if (memchr(json_string_value(v), '\0', n))
		return udfb_err_set(err, UDFB_E_INVALID, "%s: holds a NUL character", field);
	*out = udfb_strdup(json_string_value(v));
	return 0;
}

static int string_array(char ***out, size_t *n, json_t *v, const char *field, size_t max_items, size_t max_len,
			struct udfb_err *err)
{
	if (!json_is_array(v))
		return udfb_err_set(err, UDFB_E_INVALID, "%s: must be an array of strings", field);
	if (json_array_size(v) > max_items)
		return udfb_err_set(err, UDFB_E_INVALID, "%s: more than %zu items", field, max_items);
	*out = udfb_calloc(json_array_size(v) + 1, sizeof(char *));
	for (size_t k = 0; k < json_array_size(v); k++) {
		char name[64];
		snprintf(name, sizeof(name), "%s[%zu]", field, k);
		if (udfb_json_string(&(*out)[k], json_array_get(v, k), name, max_len, 0, err) < 0)
			return -1;
		(*n)++;
	}
	return 0;
}

static int check_fixed(json_t *v, const char *field, const char *want, struct udfb_err *err)
{
	if (!json_is_string(v) || strcmp(json_string_value(v), want) != 0)
		return udfb_err_set(err, UDFB_E_INVALID, "%s: must be \"%s\"", field, want);
	return 0;
}

static int check_runtime_version(const char *v, struct udfb_err *err)
{
	/* "", "3", "3.12" or "3.12.2": digits and at most two dots. */
	int dots = 0, digits = 0;
	for (const char *c = v; *c; c++) {
		if (*c == '.' && digits && dots < 2)
			dots++, digits = 0;
		else if (*c >= '0' && *c <= '9' && digits < 4)
			digits++;
		else
			return udfb_err_set(err, UDFB_E_INVALID,
					    "spec.runtime_version: '%.32s' is not a Python version like 3.12.2", v);
	}
	if (*v && !digits)
		return udfb_err_set(err, UDFB_E_INVALID,
				    "spec.runtime_version: '%.32s' is not a Python version like 3.12.2", v);
	return 0;
}

static int check_types(const struct udfb_spec *s, struct udfb_err *err)
{
	for (size_t k = 0; k < s->n_input_types; k++)
		if (!udfb_type_valid(s->input_types[k]))
			return udfb_err_set(err, UDFB_E_INVALID, "spec.input_types[%zu]: '%.64s' is not a type name", k,
					    s->input_types[k]);
	if (!udfb_type_valid(s->result_type))
		return udfb_err_set(err, UDFB_E_INVALID, "spec.result_type: '%.64s' is not a type name",
				    s->result_type);
	return 0;
}

static int spec_field(struct udfb_spec *s, const char *key, json_t *v, struct udfb_err *err)
{
	if (strcmp(key, "version") == 0) {
		if (!json_is_integer(v) || json_integer_value(v) != 1)
			return udfb_err_set(err, UDFB_E_INVALID, "spec.version: must be 1");
		s->version = 1;
		return 0;
	}
	if (strcmp(key, "kind") == 0)
		return check_fixed(v, "spec.kind", "udf", err) < 0
			       ? -1
			       : udfb_json_string(&s->kind, v, "spec.kind", 16, 0, err);
	if (strcmp(key, "language") == 0)
		return check_fixed(v, "spec.language", "python", err) < 0
			       ? -1
			       : udfb_json_string(&s->language, v, "spec.language", 16, 0, err);
	if (strcmp(key, "handler") == 0) {
		if (udfb_json_string(&s->handler, v, "spec.handler", UDFB_HANDLER_MAX_LEN, 0, err) < 0)
			return -1;
		if (!udfb_python_identifier(s->handler))
			return udfb_err_set(err, UDFB_E_INVALID, "spec.handler: '%.64s' is not a Python identifier",
					    s->handler);
		return 0;
	}
	if (strcmp(key, "input_types") == 0)
		return string_array(&s->input_types, &s->n_input_types, v, "spec.input_types", UDFB_MAX_TYPES,
				    UDFB_TYPE_MAX_LEN, err);
	if (strcmp(key, "result_type") == 0)
		return udfb_json_string(&s->result_type, v, "spec.result_type", UDFB_TYPE_MAX_LEN, 0, err);
	if (strcmp(key, "imports") == 0)
		return string_array(&s->imports, &s->n_imports, v, "spec.imports", UDFB_MAX_IMPORTS,
				    UDFB_LOCATION_MAX_LEN, err);
	if (strcmp(key, "packages") == 0)
		return string_array(&s->packages, &s->n_packages, v, "spec.packages", UDFB_MAX_PACKAGES, 1024, err);
	if (strcmp(key, "runtime_version") == 0) {
		if (udfb_json_string(&s->runtime_version, v, "spec.runtime_version", 32, 1, err) < 0)
			return -1;
		return check_runtime_version(s->runtime_version, err);
	}
	if (strcmp(key, "code") == 0) {
		if (udfb_json_string(&s->code, v, "spec.code", UDFB_CODE_MAX_BYTES, 0, err) < 0)
			return -1;
		s->code_len = json_string_length(v);
		return 0;
	}
	return udfb_err_set(err, UDFB_E_INVALID, "spec.%.64s: unknown field", key);
}

int udfb_spec_parse(struct udfb_spec *s, const char *text, size_t len, struct udfb_err *err)
{
	if (len > UDFB_SPEC_MAX_BYTES)
		return udfb_err_set(err, UDFB_E_INVALID, "spec: larger than %u bytes", UDFB_SPEC_MAX_BYTES);
	json_error_t jerr;
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return udfb_err_set(err, UDFB_E_INVALID, "spec: not valid JSON: %s (column %d)", jerr.text,
				    jerr.column);
	int rc = 0;
	if (!json_is_object(root))
		rc = udfb_err_set(err, UDFB_E_INVALID, "spec: must be a JSON object");
	const char *key;
	json_t *v;
	json_object_foreach(root, key, v) {
		if (rc < 0 || (rc = spec_field(s, key, v, err)) < 0)
			break;
	}
	static const char *const required[] = { "version", "kind", "language", "handler", "result_type", "code" };
	for (size_t k = 0; rc == 0 && k < sizeof(required) / sizeof(*required); k++)
		if (!json_object_get(root, required[k]))
			rc = udfb_err_set(err, UDFB_E_INVALID, "spec.%s: missing", required[k]);
	json_decref(root);
	if (rc < 0)
		return -1;
	if (!s->runtime_version)
		s->runtime_version = udfb_strdup("");
	return check_types(s, err);
}

void udfb_spec_free(struct udfb_spec *s)
{
	free(s->kind);
	free(s->language);
	free(s->handler);
	for (size_t k = 0; k < s->n_input_types; k++)
		free(s->input_types[k]);
	free(s->input_types);
	free(s->result_type);
	for (size_t k = 0; k < s->n_imports; k++)
		free(s->imports[k]);
	free(s->imports);
	for (size_t k = 0; k < s->n_packages; k++)
		free(s->packages[k]);
	free(s->packages);
	free(s->runtime_version);
	free(s->code);
	memset(s, 0, sizeof(*s));
}
