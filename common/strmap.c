/* String-keyed hash map: see strmap.h. */
#include "common/strmap.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "common/alloc.h"
#include "common/clock.h"

static uint64_t seed;
static pthread_once_t seed_once = PTHREAD_ONCE_INIT;

static void seed_init(void)
{
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed)) {
		seed = (uint64_t)udfb_now_ns() * 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)&seed;
	}
}

/* FNV-1a from a secret basis, finished with murmur3's fmix64 so the low
 * bits (the slot) depend on every byte. */
static uint64_t hash(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull ^ seed;
	for (size_t k = 0; k < n; k++) {
		h ^= (unsigned char)s[k];
		h *= 0x100000001b3ull;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

void udfb_strmap_init(struct udfb_strmap *m)
{
	memset(m, 0, sizeof(*m));
	pthread_once(&seed_once, seed_init);
}

void udfb_strmap_free(struct udfb_strmap *m)
{
	free(m->keys);
	free(m->lens);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}

void udfb_strmap_reset(struct udfb_strmap *m)
{
	if (m->cap)
		memset(m->keys, 0, m->cap * sizeof(*m->keys));
	m->n = 0;
}

static size_t slot_of(const struct udfb_strmap *m, const char *key, size_t len)
{
	size_t mask = m->cap - 1;
	size_t k = (size_t)hash(key, len) & mask;
	while (m->keys[k] && !(m->lens[k] == len && memcmp(m->keys[k], key, len) == 0))
		k = (k + 1) & mask;
	return k;
}

static void grow(struct udfb_strmap *m)
{
	struct udfb_strmap old = *m;
	m->cap = old.cap ? old.cap * 2 : 64;
	m->keys = udfb_calloc(m->cap, sizeof(*m->keys));
	m->lens = udfb_malloc(m->cap * sizeof(*m->lens));
	m->vals = udfb_malloc(m->cap * sizeof(*m->vals));
	for (size_t k = 0; k < old.cap; k++) {
		if (!old.keys[k])
			continue;
		size_t s = slot_of(m, old.keys[k], old.lens[k]);
		m->keys[s] = old.keys[k];
		m->lens[s] = old.lens[k];
		m->vals[s] = old.vals[k];
	}
	free(old.keys);
	free(old.lens);
	free(old.vals);
}

int udfb_strmap_put(struct udfb_strmap *m, const char *key, size_t val)
{
	/* At most half full: probes stay short. */
	if (2 * (m->n + 1) > m->cap)
		grow(m);
	size_t len = strlen(key);
	size_t s = slot_of(m, key, len);
	if (m->keys[s])
		return 0;
	m->keys[s] = key;
	m->lens[s] = len;
	m->vals[s] = val;
	m->n++;
	return 1;
}

int udfb_strmap_getn(const struct udfb_strmap *m, const char *key, size_t len, size_t *val)
{
	if (!m->cap)
		return 0;
	size_t s = slot_of(m, key, len);
	if (!m->keys[s])
		return 0;
	if (val)
		*val = m->vals[s];
	return 1;
}

int udfb_strmap_get(const struct udfb_strmap *m, const char *key, size_t *val)
{
	return udfb_strmap_getn(m, key, strlen(key), val);
}
