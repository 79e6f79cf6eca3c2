/* The table of (tenant, key) entries behind single flight: one entry per
 * pair, in one of three states.  BUILDING entries are joined by every call
 * for the pair; READY entries answer from memory; FAILED entries remember a
 * deterministic error for a while.  Fingerprint entries (aliases) name the
 * flight a request's exact bytes led to.  The caller holds the service's
 * lock.
 *
 * Both kinds are caches of what a store lookup or a parse would find again,
 * so each is bounded (udfb_flights_set_max, the service's max_cached_calls):
 * past the bound the least recently used entries go, never one of the max
 * most recent (using an alias uses its flight too).  A flight that is
 * BUILDING or has calls waiting on it (waiters) is never evicted; evicting
 * a flight evicts its aliases with it, so no alias ever dangles. */
#ifndef UDFB_FLIGHT_H
#define UDFB_FLIGHT_H

#include <stddef.h>

#include "common/err.h"

enum udfb_flight_state { UDFB_FLIGHT_NEW, UDFB_FLIGHT_BUILDING, UDFB_FLIGHT_READY, UDFB_FLIGHT_FAILED };

/* The two kinds of entries, each an LRU list of its own. */
enum udfb_flight_kind { UDFB_FLIGHT_KIND_FLIGHT, UDFB_FLIGHT_KIND_ALIAS, UDFB_FLIGHT_KINDS };

struct udfb_flight {
	char *id; /* "tenant\nkey" */
	char *tenant, *key;
	enum udfb_flight_state state;
	char *endpoint; /* READY; its token is minted per answer */
	char *image, *handler; /* READY: what the sandbox runs (a worker's RESUME starts it again) */
	struct udfb_err err; /* FAILED */
	long long failed_at_ms;
	long long started_at_ms;
	int waiters; /* calls waiting on it with the lock released: not evicted meanwhile */
	enum udfb_flight_kind kind;
	struct udfb_flight *alias; /* an alias: the flight it names */
	struct udfb_flight *aliases; /* a flight: the aliases naming it, through alias_next */
	struct udfb_flight *alias_next;
	struct udfb_flight *lru_prev, *lru_next; /* its kind's list, most recent first */
	struct udfb_flight *next; /* hash chain */
};

struct udfb_flights;

struct udfb_flights *udfb_flights_new(void);
/* At most max entries of each kind (0: no bound). */
void udfb_flights_set_max(struct udfb_flights *t, size_t max);
/* Finds an entry and marks it used. */
struct udfb_flight *udfb_flights_get(struct udfb_flights *t, const char *tenant, const char *key);
/* A new flight (NEW); may evict the least recently used evictable one. */
struct udfb_flight *udfb_flights_add(struct udfb_flights *t, const char *tenant, const char *key);
/* The alias (tenant, key) now names target (a flight); may evict an alias. */
struct udfb_flight *udfb_flights_alias(struct udfb_flights *t, const char *tenant, const char *key,
				       struct udfb_flight *target);
size_t udfb_flights_count(struct udfb_flights *t, enum udfb_flight_state state);
/* Entries of a kind now; entries of a kind evicted so far. */
size_t udfb_flights_size(struct udfb_flights *t, enum udfb_flight_kind kind);
unsigned long long udfb_flights_evicted(struct udfb_flights *t, enum udfb_flight_kind kind);
void udfb_flights_free(struct udfb_flights *t);

#endif
