/* The (tenant, key) table: see flight.h.  A chained hash table that grows
 * by doubling, so a lookup stays O(1) at any number of keys. */
#include "service/flight.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct udfb_flights {
	struct udfb_flight **buckets;
	size_t n_buckets, count;
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
	struct udfb_flights *t = calloc(1, sizeof(*t));
	t->n_buckets = 256;
	t->buckets = calloc(t->n_buckets, sizeof(*t->buckets));
	if (!t->buckets)
		abort();
	return t;
}

struct udfb_flight *udfb_flights_get(struct udfb_flights *t, const char *tenant, const char *key)
{
	for (struct udfb_flight *f = t->buckets[hash(tenant, key) % t->n_buckets]; f; f = f->next)
		if (strcmp(f->key, key) == 0 && strcmp(f->tenant, tenant) == 0)
			return f;
	return NULL;
}

static void grow(struct udfb_flights *t)
{
	size_t n = t->n_buckets * 2;
	struct udfb_flight **b = calloc(n, sizeof(*b));
	if (!b)
		abort();
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

struct udfb_flight *udfb_flights_add(struct udfb_flights *t, const char *tenant, const char *key)
{
	if (t->count >= t->n_buckets)
		grow(t);
	struct udfb_flight *f = calloc(1, sizeof(*f));
	if (!f)
		abort();
	f->tenant = strdup(tenant);
	f->key = strdup(key);
	if (asprintf(&f->id, "%s\n%s", tenant, key) < 0)
		abort();
	size_t h = hash(tenant, key) % t->n_buckets;
	f->next = t->buckets[h];
	t->buckets[h] = f;
	t->count++;
	return f;
}

size_t udfb_flights_count(struct udfb_flights *t, enum udfb_flight_state state)
{
	size_t n = 0;
	for (size_t k = 0; k < t->n_buckets; k++)
		for (struct udfb_flight *f = t->buckets[k]; f; f = f->next)
			n += f->state == state;
	return n;
}

void udfb_flights_free(struct udfb_flights *t)
{
	if (!t)
		return;
	for (size_t k = 0; k < t->n_buckets; k++)
		for (struct udfb_flight *f = t->buckets[k], *next; f; f = next) {
			next = f->next;
			free(f->id), free(f->tenant), free(f->key), free(f->endpoint), free(f->image), free(f->handler);
			udfb_err_clear(&f->err);
			free(f);
		}
	free(t->buckets);
	free(t);
}
