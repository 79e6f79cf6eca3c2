/* Settings of the import fetcher: see fetch.h and docs/configuration.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "fetch/fetch.h"

void udfb_fetch_opts_defaults(struct udfb_fetch_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->max_import_bytes = 256ll << 20;
	o->max_request_bytes = 1ll << 30;
	o->max_imports = 64;
	o->connect_timeout_ms = 10000;
	o->low_speed_time_s = 30;
	o->timeout_ms = 300000;
	o->attempts = 4;
	o->parallel = 8;
	o->revalidate_ms = 30000;
	udfb_netguard_new(&o->guard);
}

void udfb_fetch_opts_free(struct udfb_fetch_opts *o)
{
	udfb_netguard_free(o->guard);
	free(o->ca_bundle);
	memset(o, 0, sizeof(*o));
}

static int number(const char *name, const char *v, long long lo, long long hi, long long *out, struct udfb_err *err)
{
	char *end = NULL;
	long long n = strtoll(v, &end, 10);
	if (!*v || *end || n < lo || n > hi)
		return udfb_err_set(err, UDFB_E_INVALID, "%s: '%s' is not a whole number from %lld to %lld", name, v,
				    lo, hi);
	*out = n;
	return 0;
}

int udfb_fetch_opts_set(struct udfb_fetch_opts *o, const char *name, const char *v, struct udfb_err *err)
{
	long long n = 0;
	if (strcmp(name, "imports-allow") == 0)
		return udfb_netguard_allow(o->guard, v, err);
	if (strcmp(name, "imports-ca-bundle") == 0) {
		free(o->ca_bundle);
		o->ca_bundle = udfb_strdup(v);
		return 0;
	}
	static const struct {
		const char *name;
		long long lo, hi;
	} nums[] = {
		{ "imports-max-bytes", 1, 1ll << 40 },
		{ "imports-max-request-bytes", 1, 1ll << 42 },
		{ "imports-max-count", 0, 256 },
		{ "imports-connect-timeout-ms", 1, 600000 },
		{ "imports-low-speed-time-s", 1, 3600 },
		{ "imports-timeout-ms", 1, 86400000 },
		{ "imports-attempts", 1, 20 },
		{ "imports-parallel", 1, 64 },
		{ "imports-revalidate-ms", 0, 86400000 },
	};
	for (size_t k = 0; k < sizeof(nums) / sizeof(*nums); k++) {
		if (strcmp(name, nums[k].name) != 0)
			continue;
		if (number(name, v, nums[k].lo, nums[k].hi, &n, err) < 0)
			return -1;
		switch (k) {
		case 0: o->max_import_bytes = n; break;
		case 1: o->max_request_bytes = n; break;
		case 2: o->max_imports = (int)n; break;
		case 3: o->connect_timeout_ms = (long)n; break;
		case 4: o->low_speed_time_s = (long)n; break;
		case 5: o->timeout_ms = n; break;
		case 6: o->attempts = (int)n; break;
		case 7: o->parallel = (int)n; break;
		default: o->revalidate_ms = n; break;
		}
		return 0;
	}
	return udfb_err_set(err, UDFB_E_INVALID, "unknown setting '%s'", name);
}

int udfb_fetch_opts_load_env(struct udfb_fetch_opts *o, struct udfb_err *err)
{
	static const char *const names[] = {
		"imports-allow",      "imports-max-bytes",	    "imports-max-request-bytes",
		"imports-max-count",  "imports-connect-timeout-ms", "imports-low-speed-time-s",
		"imports-timeout-ms", "imports-attempts",	    "imports-parallel",
		"imports-ca-bundle",  "imports-revalidate-ms",	    NULL
	};
	for (int k = 0; names[k]; k++) {
		char var[64] = "UDFB_";
		size_t n = 5;
		for (const char *p = names[k]; *p && n < sizeof(var) - 1; p++)
			var[n++] = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
		var[n] = '\0';
		const char *v = getenv(var);
		if (!v || !*v)
			continue;
		/* The allow-list is a comma-separated list; the rest are single values. */
		char *copy = udfb_strdup(v), *save = NULL;
		int rc = 0;
		for (char *item = k == 0 ? strtok_r(copy, ",", &save) : copy; item && rc == 0;
		     item = k == 0 ? strtok_r(NULL, ",", &save) : NULL)
			rc = udfb_fetch_opts_set(o, names[k], item, err);
		free(copy);
		if (rc < 0)
			return udfb_err_wrap(err, "%s", var);
	}
	return 0;
}
