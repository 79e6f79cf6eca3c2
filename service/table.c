/* A small string-keyed hash table for the service's in-memory records
 * (service_internal.h).  The caller locks; values are the caller's.
 *
 * A table that caches what callers send (imports validated, scripts seen)
 * gets a bound (udfb_table_set_max): entries are kept in least-recently-used
 * order, and creating one past the bound frees the least recently used
 * (its value through the table's free function), so distinct inputs cannot
 * grow the service's memory without end.  Tables of records that are not
 * caches (the workers) have no bound. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "service/service_internal.h"

struct entry {
	char *id;
	void *val;
	struct entry *next; /* hash chain */
	struct entry *lru_prev, *lru_next; /* most recently used first */
};

struct udfb_table {
	struct entry **b;
	size_t nb, n;
	struct entry *head, *tail;
	size_t max; /* 0: no bound */
	void (*free_val)(void *);
	unsigned long long evicted;
};

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

struct udfb_table *udfb_table_new(void)
{
	struct udfb_table *t = udfb_calloc(1, sizeof(*t));
	t->nb = 256;
	t->b = udfb_calloc(t->nb, sizeof(*t->b));
	return t;
}

void udfb_table_set_max(struct udfb_table *t, size_t max, void (*free_val)(void *))
{
	t->max = max;
	t->free_val = free_val;
}

size_t udfb_table_count(const struct udfb_table *t)
{
	return t->n;
}

unsigned long long udfb_table_evicted(const struct udfb_table *t)
{
	return t->evicted;
}

static void grow(struct udfb_table *t)
{
	size_t nb = t->nb * 2;
	struct entry **b = udfb_calloc(nb, sizeof(*b));
	for (size_t k = 0; k < t->nb; k++)
		for (struct entry *e = t->b[k], *next; e; e = next) {
			next = e->next;
			size_t i = hash(e->id) & (nb - 1);
			e->next = b[i];
			b[i] = e;
		}
	free(t->b);
	t->b = b;
	t->nb = nb;
}

static void lru_unlink(struct udfb_table *t, struct entry *e)
{
	if (e->lru_prev)
		e->lru_prev->lru_next = e->lru_next;
	else
		t->head = e->lru_next;
	if (e->lru_next)
		e->lru_next->lru_prev = e->lru_prev;
	else
		t->tail = e->lru_prev;
	e->lru_prev = e->lru_next = NULL;
}

static void lru_push(struct udfb_table *t, struct entry *e)
{
	e->lru_prev = NULL;
	e->lru_next = t->head;
	if (t->head)
		t->head->lru_prev = e;
	else
		t->tail = e;
	t->head = e;
}

void **udfb_table_slot(struct udfb_table *t, const char *id, int create)
{
	size_t i = hash(id) & (t->nb - 1);
	for (struct entry *e = t->b[i]; e; e = e->next)
		if (strcmp(e->id, id) == 0) {
			if (t->head != e) {
				lru_unlink(t, e);
				lru_push(t, e);
			}
			return &e->val;
		}
	if (!create)
		return NULL;
	if (t->max && t->n >= t->max && t->tail) {
		void *old = NULL;
		char *victim = udfb_strdup(t->tail->id);
		udfb_table_remove(t, victim, &old);
		free(victim);
		if (t->free_val)
			t->free_val(old);
		t->evicted++;
	}
	if (t->n + 1 > t->nb)
		grow(t);
	i = hash(id) & (t->nb - 1);
	struct entry *e = udfb_calloc(1, sizeof(*e));
	e->id = udfb_strdup(id);
	e->next = t->b[i];
	t->b[i] = e;
	t->n++;
	lru_push(t, e);
	return &e->val;
}

int udfb_table_remove(struct udfb_table *t, const char *id, void **val)
{
	for (struct entry **p = &t->b[hash(id) & (t->nb - 1)]; *p; p = &(*p)->next) {
		if (strcmp((*p)->id, id))
			continue;
		struct entry *e = *p;
		*p = e->next;
		*val = e->val;
		lru_unlink(t, e);
		free(e->id);
		free(e);
		t->n--;
		return 1;
	}
	return 0;
}

void udfb_table_each(struct udfb_table *t, void (*fn)(const char *id, void *val, void *ctx), void *ctx)
{
	for (size_t k = 0; k < t->nb; k++)
		for (struct entry *e = t->b[k]; e; e = e->next)
			fn(e->id, e->val, ctx);
}

void udfb_table_free(struct udfb_table *t, void (*free_val)(void *))
{
	if (!t)
		return;
	for (size_t k = 0; k < t->nb; k++)
		for (struct entry *e = t->b[k], *next; e; e = next) {
			next = e->next;
			if (free_val)
				free_val(e->val);
			free(e->id);
			free(e);
		}
	free(t->b);
	free(t);
}

long svc_count_add(struct udfb_table *t, const char *tenant, long n)
{
	void **slot = udfb_table_slot(t, tenant, 1);
	if (!*slot)
		*slot = udfb_calloc(1, sizeof(long));
	long *c = *slot;
	*c += n;
	long now = *c;
	if (now <= 0) {
		void *v = NULL;
		udfb_table_remove(t, tenant, &v);
		free(v);
	}
	return now;
}
