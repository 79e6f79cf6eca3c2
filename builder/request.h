/* An ApplyUdfResourceRequest: the proto3-JSON request (or the same fields
 * from the gRPC message) and the spec JSON it carries, parsed and validated.
 * Every field is checked against a hard limit and a syntax; an error names
 * the field ("spec.handler: ...", "imports[2].tag: ..."). */
#ifndef UDFB_REQUEST_H
#define UDFB_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define UDFB_REQUEST_MAX_BYTES (8u << 20) /* a request file or message */
#define UDFB_SPEC_MAX_BYTES (6u << 20) /* a 4 MiB UDF escaped in JSON */
#define UDFB_CODE_MAX_BYTES (4u << 20)
#define UDFB_MAX_IMPORTS 256
#define UDFB_MAX_PACKAGES 256
#define UDFB_MAX_TYPES 256
#define UDFB_TYPE_MAX_LEN 512
#define UDFB_LOCATION_MAX_LEN 1024
#define UDFB_URL_MAX_LEN 16384
#define UDFB_TAG_MAX_LEN 512
#define UDFB_HANDLER_MAX_LEN 128

struct udfb_import {
	char *location;
	char *url; /* secret: its query string signs the request; never logged */
	char *tag; /* "" for an import of a Databend script until it is identified */
	char **headers; /* a Databend script's presign headers, "name: value", NULL-terminated; NULL: none */
};

struct udfb_spec {
	int version;
	char *kind, *language, *handler;
	char **input_types;
	size_t n_input_types;
	char *result_type;
	char **imports;
	size_t n_imports;
	char **packages; /* as written */
	size_t n_packages;
	char *runtime_version; /* "" when not given */
	char *code;
	size_t code_len;
};

struct udfb_request {
	struct udfb_spec spec;
	struct udfb_import *imports;
	size_t n_imports;
	char *tenant; /* optional (batch inputs); NULL when absent */
	char **requirements; /* canonical PEP 508, merged with PEP 723, sorted, unique */
	size_t n_requirements;
	char *requires_python; /* from PEP 723, NULL when absent */
	/* Databend's own server stub, from a ResourceService/WorkerService
	 * script (script.h); NULL for an ApplyUdfResource request.  With it the
	 * image runs this stub behind templates/databend/guard.py. */
	char *stub;
	size_t stub_len;
	/* A CreateWorker's name when the operator binds variables to it
	 * ("<tenant>.<name>"): the sandbox differs by name, so the key does. */
	char *env_scope;
	/* 1: the imports came from a Databend script without tags; their tags
	 * are the content digests udfb_request_identify() fills in. */
	int untagged;
};

/* Parse the proto3-JSON form {"spec": "...", "imports": [...]}, or one of
 * Databend's released forms, ApplyResourceRequest {"type", "script"} or
 * CreateWorkerRequest {"tenantId", "name", "ifNotExists", "type", "script",
 * ...} (proto3 JSON names; snake_case accepted too): the script is parsed
 * (script.h) into the same request, with Databend's stub and untagged imports. */
int udfb_request_parse_json(struct udfb_request *out, const char *json, size_t len, struct udfb_err *err);
/* Build from already-separated fields (the gRPC front end). */
int udfb_request_from_parts(struct udfb_request *out, const char *spec, size_t spec_len,
			    const struct udfb_import *imports, size_t n_imports, struct udfb_err *err);
/* Check the strings of an ApplyUdfResourceRequest message as they are on
 * the wire (valid UTF-8, no NUL, within limits), naming the field; before
 * protobuf-c unpacks it, since it keeps neither a string's length nor its
 * validity.  A malformed message passes: unpacking refuses it. */
int udfb_request_check_wire(const uint8_t *bytes, size_t len, struct udfb_err *err);
int udfb_request_load(struct udfb_request *out, const char *path, struct udfb_err *err);
void udfb_request_free(struct udfb_request *r);

/* Validate a Databend type name ("DECIMAL(38, 10)", "ARRAY(INT NULL)"). */
int udfb_type_valid(const char *t);
int udfb_python_identifier(const char *s);

#endif
