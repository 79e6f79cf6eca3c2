/* The (tenant, key) table: see flight.h.  A chained hash table that grows
 * by doubling, so a lookup stays O(1) at any number of keys, with one LRU
 * list per kind of entry, so the bound costs O(1) per call too (an eviction
 * walks past the few entries that may not go: builds, waited-on flights). */
#include "service/flight.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"

struct lru {
	struct udfb_flight *head, *tail; /* most, least recently used */
	size_t n;
	unsigned long long evicted;
};

struct udfb_flights {
	struct udfb_flight **buckets;
	size_t n_buckets, count;
	size_t max; /* per kind; 0: none */
	struct lru lru[UDFB_FLIGHT_KINDS];
};

static size_t hash(const char *tenant, const char *key)
{
	size_t h = 1469598103934665603ull; /* FNV-1a */
	for (const char *p = tenant; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	h = (h ^ '\n') * 1099511628211ull;
	for (const char *p = key; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	return h;
}

struct udfb_flights *udfb_flights_new(void)
{
	struct udfb_flights *t = udfb_calloc(1, sizeof(*t));
	t->n_buckets = 256;
	t->buckets = udfb_calloc(t->n_buckets, sizeof(*t->buckets));
	return t;
}

void udfb_flights_set_max(struct udfb_flights *t, size_t max)
{
	t->max = max;
}

static void lru_unlink(struct udfb_flights *t, struct udfb_flight *f)
{
	struct lru *l = &t->lru[f->kind];
	if (f->lru_prev)
		f->lru_prev->lru_next = f->lru_next;
	else
		l->head = f->lru_next;
	if (f->lru_next)
		f->lru_next->lru_prev = f->lru_prev;
	else
		l->tail = f->lru_prev;
	f->lru_prev = f->lru_next = NULL;
	l->n--;
}

static void lru_push(struct udfb_flights *t, struct udfb_flight *f)
{
	struct lru *l = &t->lru[f->kind];
	f->lru_prev = NULL;
	f->lru_next = l->head;
	if (l->head)
		l->head->lru_prev = f;
	else
		l->tail = f;
	l->head = f;
	l->n++;
}

static void touch(struct udfb_flights *t, struct udfb_flight *f)
{
	if (t->lru[f->kind].head != f) {
		lru_unlink(t, f);
		lru_push(t, f);
	}
}

struct udfb_flight *udfb_flights_get(struct udfb_flights *t, const char *tenant, const char *key)
{
	for (struct udfb_flight *f = t->buckets[hash(tenant, key) % t->n_buckets]; f; f = f->next)
		if (strcmp(f->key, key) == 0 && strcmp(f->tenant, tenant) == 0) {
			touch(t, f);
			if (f->alias) /* a repeat answered through the alias uses its flight too */
				touch(t, f->alias);
			return f;
		}
	return NULL;
}

static void grow(struct udfb_flights *t)
{
	size_t n = t->n_buckets * 2;
	struct udfb_flight **b = udfb_calloc(n, sizeof(*b));
	for (size_t k = 0; k < t->n_buckets; k++)
		for (struct udfb_flight *f = t->buckets[k], *next; f; f = next) {
			next = f->next;
			size_t h = hash(f->tenant, f->key) % n;
			f->next = b[h];
			b[h] = f;
		}
	free(t->buckets);
	t->buckets = b;
	t->n_buckets = n;
}

static struct udfb_flight *insert(struct udfb_flights *t, const char *tenant, const char *key,
				  enum udfb_flight_kind kind)
{
	if (t->count >= t->n_buckets)
		grow(t);
	struct udfb_flight *f = udfb_calloc(1, sizeof(*f));
	f->tenant = udfb_strdup(tenant);
	f->key = udfb_strdup(key);
	f->kind = kind;
	f->id = udfb_asprintf("%s\n%s", tenant, key);
	size_t h = hash(tenant, key) % t->n_buckets;
	f->next = t->buckets[h];
	t->buckets[h] = f;
	t->count++;
	lru_push(t, f);
	return f;
}

static void free_entry(struct udfb_flight *f)
{
	free(f->id), free(f->tenant), free(f->key), free(f->endpoint), free(f->image), free(f->handler);
	udfb_err_clear(&f->err);
	free(f);
}

/* An alias leaves its flight's list of aliases. */
static void alias_detach(struct udfb_flight *a)
{
	if (!a->alias)
		return;
	for (struct udfb_flight **p = &a->alias->aliases; *p; p = &(*p)->alias_next)
		if (*p == a) {
			*p = a->alias_next;
			break;
		}
	a->alias = NULL;
	a->alias_next = NULL;
}

static void remove_entry(struct udfb_flights *t, struct udfb_flight *f)
{
	for (struct udfb_flight **p = &t->buckets[hash(f->tenant, f->key) % t->n_buckets]; *p; p = &(*p)->next)
		if (*p == f) {
			*p = f->next;
			break;
		}
	t->count--;
	lru_unlink(t, f);
	t->lru[f->kind].evicted++;
	if (f->kind == UDFB_FLIGHT_KIND_ALIAS) {
		alias_detach(f);
	} else {
		while (f->aliases) /* they would name freed memory */
			remove_entry(t, f->aliases);
	}
	free_entry(f);
}

static int evictable(const struct udfb_flight *f, const struct udfb_flight *keep)
{
	return f != keep && f != keep->alias && f->state != UDFB_FLIGHT_BUILDING && f->waiters == 0;
}

/* Past the bound: of the entries older than the max most recent, those
 * that may go, go.  The max most recent always stay: when builds crowd
 * the table past its bound, it is the cold entries that leave, never the
 * ones in use (the bound is then exceeded by at most the builds). */
static void trim(struct udfb_flights *t, enum udfb_flight_kind kind, const struct udfb_flight *keep)
{
	struct lru *l = &t->lru[kind];
	if (!t->max || l->n <= t->max)
		return;
	size_t older = l->n - t->max;
	for (struct udfb_flight *f = l->tail, *prev; f && older; f = prev, older--) {
		prev = f->lru_prev;
		if (evictable(f, keep))
			remove_entry(t, f);
	}
}

struct udfb_flight *udfb_flights_add(struct udfb_flights *t, const char *tenant, const char *key)
{
	struct udfb_flight *f = insert(t, tenant, key, UDFB_FLIGHT_KIND_FLIGHT);
	trim(t, UDFB_FLIGHT_KIND_FLIGHT, f);
	return f;
}

struct udfb_flight *udfb_flights_alias(struct udfb_flights *t, const char *tenant, const char *key,
				       struct udfb_flight *target)
{
	struct udfb_flight *a = udfb_flights_get(t, tenant, key);
	if (!a)
		a = insert(t, tenant, key, UDFB_FLIGHT_KIND_ALIAS);
	if (a->alias != target) {
		alias_detach(a);
		a->alias = target;
		a->alias_next = target->aliases;
		target->aliases = a;
	}
	trim(t, UDFB_FLIGHT_KIND_ALIAS, a);
	return a;
}

size_t udfb_flights_count(struct udfb_flights *t, enum udfb_flight_state state)
{
	size_t n = 0;
	for (struct udfb_flight *f = t->lru[UDFB_FLIGHT_KIND_FLIGHT].head; f; f = f->lru_next)
		n += f->state == state;
	return n;
}

size_t udfb_flights_size(struct udfb_flights *t, enum udfb_flight_kind kind)
{
	return t->lru[kind].n;
}

unsigned long long udfb_flights_evicted(struct udfb_flights *t, enum udfb_flight_kind kind)
{
	return t->lru[kind].evicted;
}

void udfb_flights_free(struct udfb_flights *t)
{
	if (!t)
		return;
	for (size_t k = 0; k < t->n_buckets; k++)
		for (struct udfb_flight *f = t->buckets[k], *next; f; f = next) {
			next = f->next;
			free_entry(f);
		}
	free(t->buckets);
	free(t);
}
