/* Choosing the scheduler backend: see scheduler.h.  Each backend has one
 * constructor; this table is the only place that names them all. */
#include <string.h>

#include "scheduler/scheduler.h"

static int make_template(struct udfb_scheduler *out, const struct udfb_config *cfg, struct udfb_err *err)
{
	return udfb_scheduler_template_new(out, cfg->endpoint_template, (size_t)cfg->max_cached_calls, err);
}

static int make_local(struct udfb_scheduler *out, const struct udfb_config *cfg, struct udfb_err *err)
{
	return udfb_scheduler_local_new(out, cfg, err);
}

static int make_k8s(struct udfb_scheduler *out, const struct udfb_config *cfg, struct udfb_err *err)
{
	return udfb_scheduler_k8s_new(out, cfg, err);
}

static const struct {
	const char *name;
	int (*make)(struct udfb_scheduler *out, const struct udfb_config *cfg, struct udfb_err *err);
} backends[] = {
	{ "template", make_template },
	{ "local", make_local },
	{ "kubernetes", make_k8s },
};

int udfb_scheduler_new(struct udfb_scheduler *out, const struct udfb_config *cfg, struct udfb_err *err)
{
	for (size_t k = 0; k < sizeof(backends) / sizeof(*backends); k++)
		if (strcmp(cfg->scheduler, backends[k].name) == 0)
			return backends[k].make(out, cfg, err);
	char known[256] = "";
	for (size_t k = 0; k < sizeof(backends) / sizeof(*backends); k++) {
		strncat(known, k ? ", " : "", sizeof(known) - strlen(known) - 1);
		strncat(known, backends[k].name, sizeof(known) - strlen(known) - 1);
	}
	return udfb_err_set(err, UDFB_E_INVALID, "scheduler '%s': unknown (known: %s)", cfg->scheduler, known);
}
