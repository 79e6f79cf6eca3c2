/* Fuzz target: YAML to JSON (kubeconfigs, scheduler/yaml_json.c).  Beyond not
 * crashing: a value exactly when it succeeds, a message exactly when it
 * fails, and a value that jansson can always dump. */
#include <stdint.h>
#include <stdlib.h>

#include "scheduler/yaml_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct udfb_err err = UDFB_ERR_INIT;
	json_t *j = NULL;
	int rc = udfb_yaml_to_json((const char *)data, size, "fuzz", &j, &err);
	if ((rc == 0) != (j != NULL) || (rc < 0) != (err.msg != NULL))
		abort();
	if (j) {
		char *s = json_dumps(j, JSON_ENCODE_ANY);
		if (!s)
			abort();
		free(s);
	}
	json_decref(j);
	udfb_err_clear(&err);
	return 0;
}
