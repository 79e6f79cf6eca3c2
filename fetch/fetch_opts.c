/* Defaults of the import fetcher's settings: see fetch.h.  The rows that
 * parse them (flags, file, UDFB_IMPORTS_*) are config/config.c's "imports". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
