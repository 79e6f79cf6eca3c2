/* YAML to JSON values for kubeconfigs: see yaml_json.h.  libyaml's
 * document API parses; this file only walks the node graph. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "scheduler/yaml_json.h"

struct walk {
	yaml_document_t *doc;
	size_t values;
	const char *what;
	struct udfb_err *err;
};

/* A plain scalar's type, as YAML 1.2's core schema reads it (the subset
 * kubeconfigs use). */
static json_t *scalar(const yaml_node_t *n)
{
	const char *v = (const char *)n->data.scalar.value;
	size_t len = n->data.scalar.length;
	if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return json_stringn(v, len);
	if (len == 4 && (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "TRUE")))
		return json_true();
	if (len == 5 && (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "FALSE")))
		return json_false();
	if (len == 0 || (len == 1 && v[0] == '~') || (len == 4 && (!strcmp(v, "null") || !strcmp(v, "Null"))))
		return json_null();
	if (len < 19 && strlen(v) == len) {
		char *end = NULL;
		errno = 0;
		long long x = strtoll(v, &end, 10);
		if (errno == 0 && end == v + len && (v[0] != '0' || len == 1) && !(v[0] == '-' && v[1] == '0'))
			return json_integer((json_int_t)x);
	}
	return json_stringn(v, len);
}

static json_t *node(struct walk *w, yaml_node_t *n, int depth)
{
	if (!n || depth > UDFB_YAML_MAX_DEPTH || ++w->values > UDFB_YAML_MAX_VALUES) {
		if (!w->err->msg)
			udfb_err_set(w->err, UDFB_E_INVALID, "%s: deeper than %d or more than %d values", w->what,
				     UDFB_YAML_MAX_DEPTH, UDFB_YAML_MAX_VALUES);
		return NULL;
	}
	if (n->type == YAML_SCALAR_NODE) {
		json_t *j = scalar(n);
		if (!j)
			udfb_err_set(w->err, UDFB_E_INVALID, "%s: a value is not UTF-8", w->what);
		return j;
	}
	if (n->type == YAML_SEQUENCE_NODE) {
		json_t *a = json_array();
		for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++) {
			json_t *v = node(w, yaml_document_get_node(w->doc, *i), depth + 1);
			if (!v) {
				json_decref(a);
				return NULL;
			}
			json_array_append_new(a, v);
		}
		return a;
	}
	if (n->type == YAML_MAPPING_NODE) {
		json_t *o = json_object();
		for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
			yaml_node_t *k = yaml_document_get_node(w->doc, p->key);
			if (!k || k->type != YAML_SCALAR_NODE ||
			    strlen((const char *)k->data.scalar.value) != k->data.scalar.length) {
				json_decref(o);
				udfb_err_set(w->err, UDFB_E_INVALID, "%s: a mapping key is not a string", w->what);
				return NULL;
			}
			json_t *v = node(w, yaml_document_get_node(w->doc, p->value), depth + 1);
			if (!v || json_object_set_new(o, (const char *)k->data.scalar.value, v) < 0) {
				json_decref(o);
				if (!w->err->msg)
					udfb_err_set(w->err, UDFB_E_INVALID, "%s: a mapping key is not UTF-8", w->what);
				return NULL;
			}
		}
		return o;
	}
	udfb_err_set(w->err, UDFB_E_INVALID, "%s: an empty node", w->what);
	return NULL;
}

int udfb_yaml_to_json(const char *text, size_t len, const char *what, json_t **out, struct udfb_err *err)
{
	*out = NULL;
	yaml_parser_t parser;
	yaml_document_t doc;
	if (!yaml_parser_initialize(&parser))
		return udfb_err_set(err, UDFB_E_INTERNAL, "%s: libyaml could not start", what);
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		int rc = udfb_err_set(err, UDFB_E_INVALID, "%s: not YAML: %s (line %zu)", what,
				      parser.problem ? parser.problem : "unreadable", parser.problem_mark.line + 1);
		yaml_parser_delete(&parser);
		return rc;
	}
	struct walk w = { &doc, 0, what, err };
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	int rc = 0;
	if (!root)
		rc = udfb_err_set(err, UDFB_E_INVALID, "%s: an empty document", what);
	else if (!(*out = node(&w, root, 0)))
		rc = -1;
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return rc;
}
