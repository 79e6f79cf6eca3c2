/* The table of (tenant, key) entries behind single flight: one entry per
 * pair, in one of three states.  BUILDING entries are joined by every call
 * for the pair; READY entries answer from memory; FAILED entries remember a
 * deterministic error for a while.  The caller holds the service's lock. */
#ifndef UDFB_FLIGHT_H
#define UDFB_FLIGHT_H

#include <stddef.h>

#include "common/err.h"

enum udfb_flight_state { UDFB_FLIGHT_NEW, UDFB_FLIGHT_BUILDING, UDFB_FLIGHT_READY, UDFB_FLIGHT_FAILED };

struct udfb_flight {
	char *id; /* "tenant\nkey" */
	char *tenant, *key;
	enum udfb_flight_state state;
	char *endpoint; /* READY; its token is minted per answer */
	char *image, *handler; /* READY: what the sandbox runs (a worker's RESUME starts it again) */
	struct udfb_err err; /* FAILED */
	long long failed_at_ms;
	long long started_at_ms;
	struct udfb_flight *alias; /* a fingerprint entry points at its flight */
	struct udfb_flight *next; /* hash chain */
};

struct udfb_flights;

struct udfb_flights *udfb_flights_new(void);
struct udfb_flight *udfb_flights_get(struct udfb_flights *t, const char *tenant, const char *key);
struct udfb_flight *udfb_flights_add(struct udfb_flights *t, const char *tenant, const char *key);
size_t udfb_flights_count(struct udfb_flights *t, enum udfb_flight_state state);
void udfb_flights_free(struct udfb_flights *t);

#endif
