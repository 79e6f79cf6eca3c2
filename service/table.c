/* A small string-keyed hash table for the service's in-memory records
 * (service_internal.h).  The caller locks; values are the caller's. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "service/service_internal.h"

struct entry {
	char *id;
	void *val;
	struct entry *next;
};

struct udfb_table {
	struct entry **b;
	size_t nb, n;
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
	struct udfb_table *t = calloc(1, sizeof(*t));
	t->nb = 256;
	t->b = calloc(t->nb, sizeof(*t->b));
	return t;
}

static void grow(struct udfb_table *t)
{
	size_t nb = t->nb * 2;
	struct entry **b = calloc(nb, sizeof(*b));
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

void **udfb_table_slot(struct udfb_table *t, const char *id, int create)
{
	size_t i = hash(id) & (t->nb - 1);
	for (struct entry *e = t->b[i]; e; e = e->next)
		if (strcmp(e->id, id) == 0)
			return &e->val;
	if (!create)
		return NULL;
	if (t->n + 1 > t->nb) {
		grow(t);
		i = hash(id) & (t->nb - 1);
	}
	struct entry *e = calloc(1, sizeof(*e));
	e->id = strdup(id);
	e->next = t->b[i];
	t->b[i] = e;
	t->n++;
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
