/* Fuzz target: a PEP 508 marker evaluated for a fixed CPython 3.12 target.
 * Beyond not crashing: a result is -1, 0 or 1 with a message exactly when
 * -1, and extras only ever make a marker hold (extra "" is always tried). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "python/marker.h"

static int eval(const char *m, const struct udfb_pyenv *env, char *const *extras, size_t n)
{
	struct udfb_err err = UDFB_ERR_INIT;
	int rc = udfb_marker_eval(m, env, extras, n, &err);
	if (rc < -1 || rc > 1 || (rc == -1) != (err.msg != NULL))
		abort();
	udfb_err_clear(&err);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char *const extras[] = { "test", "dev-tools" };
	struct udfb_pyenv env;
	udfb_pyenv_init(&env, "3.12.2", "x86_64");
	char *m = malloc(size + 1);
	memcpy(m, data, size);
	m[size] = '\0';
	int plain = eval(m, &env, NULL, 0);
	int with = eval(m, &env, extras, 2);
	if ((plain == -1) != (with == -1) || (plain == 1 && with != 1))
		abort();
	free(m);
	return 0;
}
