/* The key index: see index.h and docs/store.md. */
#include "cache/index.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/clock.h"
#include "common/fsutil.h"

#define IX_MAGIC "UDFBIX01"
#define IX_HEADER 64
#define IX_MIN_SLOTS 1024u
#define IX_LOAD_NUM 3 /* grow past 3/5 full (live + tombstones) */
#define IX_LOAD_DEN 5

struct slot {
	uint8_t key[32]; /* all 0x00: free; all 0xff: deleted */
	uint8_t manifest[32];
	uint32_t created, last_used, hits;
	uint32_t crc; /* of the 76 bytes before */
};

_Static_assert(sizeof(struct slot) == 80, "slot layout is part of the file format");

struct header {
	char magic[8];
	uint32_t slots;
	uint32_t live, dead; /* kept by writers; recounted when scrubbing */
	uint32_t reserved[11];
};

struct udfb_index {
	char *path, *lock_path;
	int lock_fd; /* open for the handle's life; flock'd per write */
	pthread_mutex_t mu;
	int fd;
	ino_t ino;
	long long checked_ms; /* when readers last looked for a grown file */
	uint8_t *map;
	size_t map_len;
	uint32_t nslots;
	size_t live, dead; /* counted at map time and kept up to date */
};

static const uint8_t zero32[32];
static const uint8_t ones32[32] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
				    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
				    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

static struct slot *slots(struct udfb_index *ix)
{
	return (struct slot *)(ix->map + IX_HEADER);
}

static uint32_t slot_crc(const struct slot *s)
{
	return (uint32_t)crc32(0, (const Bytef *)s, offsetof(struct slot, crc));
}

static int slot_free(const struct slot *s)
{
	return memcmp(s->key, zero32, 32) == 0;
}

static int slot_dead(const struct slot *s)
{
	return memcmp(s->key, ones32, 32) == 0;
}

static int slot_valid(const struct slot *s)
{
	return !slot_free(s) && !slot_dead(s) && s->crc == slot_crc(s);
}

static int nibble(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int hex_to_raw(uint8_t out[32], const char *digest)
{
	if (!udfb_digest_valid(digest))
		return -1;
	const char *h = udfb_digest_hex(digest);
	for (int k = 0; k < 32; k++)
		out[k] = (uint8_t)(nibble(h[2 * k]) << 4 | nibble(h[2 * k + 1]));
	return 0;
}

static void raw_to_digest(char out[UDFB_DIGEST_LEN + 1], const uint8_t raw[32])
{
	static const char hexd[] = "0123456789abcdef";
	memcpy(out, "sha256:", 7);
	for (int k = 0; k < 32; k++) {
		out[7 + 2 * k] = hexd[raw[k] >> 4];
		out[8 + 2 * k] = hexd[raw[k] & 15];
	}
	out[UDFB_DIGEST_LEN] = '\0';
}

static uint32_t now_s(void)
{
	return (uint32_t)time(NULL);
}

/* ---- mapping ---- */

static void unmap(struct udfb_index *ix)
{
	if (ix->map)
		munmap(ix->map, ix->map_len);
	if (ix->fd >= 0)
		close(ix->fd);
	ix->map = NULL;
	ix->fd = -1;
}

static void count(struct udfb_index *ix)
{
	ix->live = ix->dead = 0;
	for (uint32_t k = 0; k < ix->nslots; k++) {
		const struct slot *s = &slots(ix)[k];
		ix->live += slot_valid(s);
		ix->dead += slot_dead(s) || (!slot_free(s) && !slot_dead(s) && s->crc != slot_crc(s));
	}
}

static uint8_t *empty_table(uint32_t nslots, size_t *len)
{
	struct header h = { .slots = nslots };
	memcpy(h.magic, IX_MAGIC, 8);
	*len = IX_HEADER + (size_t)nslots * sizeof(struct slot);
	uint8_t *buf = udfb_calloc(1, *len);
	memcpy(buf, &h, sizeof(h));
	return buf;
}

/* A new, empty index of nslots slots, written aside and renamed in.  Its
 * directory is not synced: a name lost in a crash loses entries, which
 * cost a rebuild (docs/store.md), never a wrong answer. */
static int create_file(const char *path, uint32_t nslots, struct udfb_err *err)
{
	size_t len;
	uint8_t *buf = empty_table(nslots, &len);
	int rc = udfb_write_file_nodirsync(path, buf, len, err);
	free(buf);
	return rc;
}

int udfb_index_create_in(struct udfb_wgroup *g, const char *root, struct udfb_err *err)
{
	cleanup_free char *path = udfb_path_join(root, "index.bin");
	if (udfb_exists(path))
		return 0;
	size_t len;
	uint8_t *buf = empty_table(IX_MIN_SLOTS, &len);
	/* keep: another process's new index, perhaps already written to, stays. */
	int rc = udfb_wgroup_add_bytes(g, path, buf, len, 1, err);
	free(buf);
	return rc;
}

static int map_file(struct udfb_index *ix, struct udfb_err *err)
{
	unmap(ix);
	ix->fd = open(ix->path, O_RDWR | O_CLOEXEC);
	if (ix->fd < 0)
		return udfb_err_sys(err, errno, "open %s", ix->path);
	struct stat st;
	struct header h;
	if (fstat(ix->fd, &st) < 0 || pread(ix->fd, &h, sizeof(h), 0) != sizeof(h) ||
	    memcmp(h.magic, IX_MAGIC, 8) != 0 || h.slots < IX_MIN_SLOTS || (h.slots & (h.slots - 1)) ||
	    (size_t)st.st_size != IX_HEADER + (size_t)h.slots * sizeof(struct slot)) {
		unmap(ix);
		return udfb_err_set(err, UDFB_E_INTERNAL,
				    "%s: not a udf-builder index (remove it to start an empty one)", ix->path);
	}
	ix->map_len = (size_t)st.st_size;
	ix->map = mmap(NULL, ix->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, ix->fd, 0);
	if (ix->map == MAP_FAILED) {
		ix->map = NULL;
		return udfb_err_sys(err, errno, "mmap %s", ix->path);
	}
	ix->ino = st.st_ino;
	ix->nslots = h.slots;
	ix->live = h.live;
	ix->dead = h.dead;
	return 0;
}

static void save_counts(struct udfb_index *ix)
{
	struct header *h = (struct header *)ix->map;
	h->live = (uint32_t)ix->live;
	h->dead = (uint32_t)ix->dead;
}

/* Another process may have grown the index into a new file.  Writers look
 * every time (under the file lock); readers at most every 50 ms: a reader a
 * moment behind misses a new key, which costs a rebuild, never a wrong answer. */
static int refresh(struct udfb_index *ix, int always, struct udfb_err *err)
{
	long long now = udfb_now_ms();
	if (!always && ix->map && now - ix->checked_ms < 50)
		return 0;
	ix->checked_ms = now;
	struct stat st;
	if (ix->map && stat(ix->path, &st) == 0 && st.st_ino == ix->ino)
		return 0;
	return map_file(ix, err);
}

/* ---- probing ---- */

static uint32_t home(const struct udfb_index *ix, const uint8_t key[32])
{
	uint32_t h;
	memcpy(&h, key, 4); /* a sha256: its bytes are already uniform */
	return h & (ix->nslots - 1);
}

/* The slot holding key, or NULL; *free_slot gets the first reusable one. */
static struct slot *probe(struct udfb_index *ix, const uint8_t key[32], struct slot **free_slot)
{
	*free_slot = NULL;
	for (uint32_t i = 0, k = home(ix, key); i < ix->nslots; i++, k = (k + 1) & (ix->nslots - 1)) {
		struct slot *s = &slots(ix)[k];
		if (slot_free(s)) {
			if (!*free_slot)
				*free_slot = s;
			return NULL;
		}
		if (memcmp(s->key, key, 32) == 0 && s->crc == slot_crc(s))
			return s;
		if (!*free_slot && (slot_dead(s) || s->crc != slot_crc(s)))
			*free_slot = s; /* deleted or torn: reusable */
	}
	return NULL;
}

static void write_slot(struct slot *s, const uint8_t key[32], const uint8_t manifest[32], uint32_t created,
		       uint32_t last_used, uint32_t hits)
{
	/* The key goes in last, so a slot is never seen whole with a stale body. */
	memcpy(s->manifest, manifest, 32);
	s->created = created;
	s->last_used = last_used;
	s->hits = hits;
	memcpy(s->key, key, 32);
	s->crc = slot_crc(s);
}

static int grow(struct udfb_index *ix, struct udfb_err *err)
{
	/* Well under the growth threshold after growing; a table full of
	 * deleted slots is rebuilt at its size. */
	uint32_t n = ix->nslots;
	while ((ix->live + 1) * 20 > (size_t)n * 9 && n < (1u << 30)) /* at most 45 % full after */
		n *= 2;
	char *tmp = udfb_asprintf("%s.grow", ix->path);
	struct udfb_index next = { .path = tmp, .fd = -1 };
	int rc = create_file(tmp, n, err);
	if (rc == 0)
		rc = map_file(&next, err);
	for (uint32_t k = 0; rc == 0 && k < ix->nslots; k++) {
		const struct slot *s = &slots(ix)[k];
		struct slot *dst = NULL;
		if (slot_valid(s) && !probe(&next, s->key, &dst) && dst) {
			*dst = *s;
			next.live++;
		}
	}
	if (rc == 0)
		save_counts(&next);
	if (rc == 0 && msync(next.map, next.map_len, MS_SYNC) < 0)
		rc = udfb_err_sys(err, errno, "sync %s", tmp);
	unmap(&next);
	if (rc == 0 && rename(tmp, ix->path) < 0)
		rc = udfb_err_sys(err, errno, "rename %s", tmp);
	if (rc < 0)
		unlink(tmp);
	free(tmp);
	return rc < 0 ? -1 : map_file(ix, err);
}

/* ---- locking: a mutex in the process, flock between processes ---- */

static int lock(struct udfb_index *ix, int *lfd, struct udfb_err *err)
{
	pthread_mutex_lock(&ix->mu);
	*lfd = ix->lock_fd;
	if (flock(ix->lock_fd, LOCK_EX) < 0) {
		int e = errno;
		pthread_mutex_unlock(&ix->mu);
		return udfb_err_sys(err, e, "lock %s", ix->lock_path);
	}
	if (refresh(ix, 1, err) < 0) {
		flock(ix->lock_fd, LOCK_UN);
		pthread_mutex_unlock(&ix->mu);
		return -1;
	}
	/* The header's counts are the truth: every writer saves them before it
	 * unlocks.  Another handle on the same file (another build of this
	 * process, another process) may have changed them since our last look;
	 * counts kept per handle drifted low and let the table fill up. */
	const struct header *h = (const struct header *)ix->map;
	ix->live = h->live;
	ix->dead = h->dead;
	return 0;
}

static void unlock(struct udfb_index *ix, int lfd)
{
	flock(lfd, LOCK_UN);
	pthread_mutex_unlock(&ix->mu);
}

/* ---- operations ---- */

int udfb_index_open(struct udfb_index **out, const char *root, struct udfb_err *err)
{
	struct udfb_index *ix = udfb_calloc(1, sizeof(*ix));
	ix->fd = -1;
	pthread_mutex_init(&ix->mu, NULL);
	ix->path = udfb_path_join(root, "index.bin");
	ix->lock_path = udfb_path_join(root, "index.lock");
	ix->lock_fd = open(ix->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	int rc = ix->lock_fd < 0 || flock(ix->lock_fd, LOCK_EX) < 0 ? udfb_err_sys(err, errno, "lock %s", ix->lock_path)
								    : 0;
	if (rc == 0 && !udfb_exists(ix->path))
		rc = create_file(ix->path, IX_MIN_SLOTS, err);
	if (rc == 0)
		rc = map_file(ix, err);
	if (ix->lock_fd >= 0)
		flock(ix->lock_fd, LOCK_UN);
	if (rc < 0) {
		udfb_index_close(ix);
		return -1;
	}
	*out = ix;
	return 0;
}

void udfb_index_close(struct udfb_index *ix)
{
	if (!ix)
		return;
	unmap(ix);
	if (ix->lock_fd >= 0)
		close(ix->lock_fd);
	pthread_mutex_destroy(&ix->mu);
	free(ix->path);
	free(ix->lock_path);
	free(ix);
}

static void fill(struct udfb_index_entry *e, const struct slot *s)
{
	raw_to_digest(e->key, s->key);
	raw_to_digest(e->manifest, s->manifest);
	e->created = s->created;
	e->last_used = s->last_used;
	e->hits = s->hits;
}

/* Reading needs no lock between processes: a slot being written fails its
 * CRC and reads as a miss.  Counting a hit writes, so it takes the lock. */
static int get_unlocked(struct udfb_index *ix, const uint8_t raw[32], struct udfb_index_entry *out)
{
	pthread_mutex_lock(&ix->mu);
	struct udfb_err err = UDFB_ERR_INIT;
	struct slot *fs, *s = refresh(ix, 0, &err) == 0 && ix->map ? probe(ix, raw, &fs) : NULL;
	if (s && out)
		fill(out, s);
	pthread_mutex_unlock(&ix->mu);
	udfb_err_clear(&err);
	return s != NULL;
}

int udfb_index_get(struct udfb_index *ix, const char *key, int touch, struct udfb_index_entry *out)
{
	uint8_t raw[32];
	struct udfb_err err = UDFB_ERR_INIT;
	int lfd;
	if (hex_to_raw(raw, key) < 0)
		return 0;
	if (!touch)
		return get_unlocked(ix, raw, out);
	if (lock(ix, &lfd, &err) < 0) {
		udfb_err_clear(&err);
		return 0; /* an index that cannot be read is a miss, never an error */
	}
	struct slot *fs, *s = probe(ix, raw, &fs);
	if (s)
		write_slot(s, s->key, s->manifest, s->created, now_s(), s->hits + 1);
	if (s && out)
		fill(out, s);
	unlock(ix, lfd);
	return s != NULL;
}

int udfb_index_put(struct udfb_index *ix, const char *key, const char *manifest, struct udfb_err *err)
{
	uint8_t k[32], m[32];
	if (hex_to_raw(k, key) < 0 || hex_to_raw(m, manifest) < 0)
		return udfb_err_set(err, UDFB_E_INTERNAL, "index: bad digest");
	int lfd;
	if (lock(ix, &lfd, err) < 0)
		return -1;
	int rc = 0;
	if ((ix->live + ix->dead + 1) * IX_LOAD_DEN > (size_t)ix->nslots * IX_LOAD_NUM)
		rc = grow(ix, err);
	struct slot *fs = NULL, *s = rc == 0 ? probe(ix, k, &fs) : NULL;
	if (rc == 0 && s) {
		write_slot(s, k, m, s->created, now_s(), s->hits);
	} else if (rc == 0 && fs) {
		ix->dead -= slot_dead(fs) || !slot_free(fs);
		write_slot(fs, k, m, now_s(), now_s(), 0);
		ix->live++;
	} else if (rc == 0) {
		rc = udfb_err_set(err, UDFB_E_INTERNAL, "index %s: full", ix->path);
	}
	if (ix->map)
		save_counts(ix);
	unlock(ix, lfd);
	return rc;
}

int udfb_index_del(struct udfb_index *ix, const char *key)
{
	uint8_t raw[32];
	struct udfb_err err = UDFB_ERR_INIT;
	int lfd;
	if (hex_to_raw(raw, key) < 0 || lock(ix, &lfd, &err) < 0) {
		udfb_err_clear(&err);
		return -1;
	}
	struct slot *fs, *s = probe(ix, raw, &fs);
	if (s) {
		memcpy(s->key, ones32, 32);
		ix->live--;
		ix->dead++;
		save_counts(ix);
	}
	unlock(ix, lfd);
	return s ? 0 : -1;
}

size_t udfb_index_each(struct udfb_index *ix, void (*fn)(const struct udfb_index_entry *e, void *ctx), void *ctx)
{
	struct udfb_err err = UDFB_ERR_INIT;
	int lfd;
	if (lock(ix, &lfd, &err) < 0) {
		udfb_err_clear(&err);
		return 0;
	}
	size_t torn = 0;
	for (uint32_t k = 0; k < ix->nslots; k++) {
		const struct slot *s = &slots(ix)[k];
		if (slot_valid(s)) {
			struct udfb_index_entry e;
			fill(&e, s);
			fn(&e, ctx);
		} else if (!slot_free(s) && !slot_dead(s)) {
			torn++;
		}
	}
	unlock(ix, lfd);
	return torn;
}

size_t udfb_index_scrub(struct udfb_index *ix)
{
	struct udfb_err err = UDFB_ERR_INIT;
	int lfd;
	if (lock(ix, &lfd, &err) < 0) {
		udfb_err_clear(&err);
		return 0;
	}
	size_t n = 0;
	for (uint32_t k = 0; k < ix->nslots; k++) {
		struct slot *s = &slots(ix)[k];
		if (!slot_free(s) && !slot_dead(s) && s->crc != slot_crc(s)) {
			memcpy(s->key, ones32, 32);
			n++;
		}
	}
	count(ix); /* counts may lag after a crash: this is the moment to fix them */
	save_counts(ix);
	unlock(ix, lfd);
	return n;
}

size_t udfb_index_count(struct udfb_index *ix)
{
	struct udfb_err err = UDFB_ERR_INIT;
	int lfd;
	if (lock(ix, &lfd, &err) < 0) { /* the count as this handle last saw it */
		udfb_err_clear(&err);
		pthread_mutex_lock(&ix->mu);
		size_t n = ix->live;
		pthread_mutex_unlock(&ix->mu);
		return n;
	}
	size_t n = ix->live; /* lock() read it from the file's header */
	unlock(ix, lfd);
	return n;
}

void udfb_index_size(struct udfb_index *ix, size_t *bytes, size_t *nslots)
{
	pthread_mutex_lock(&ix->mu);
	*bytes = ix->map_len;
	*nslots = ix->nslots;
	pthread_mutex_unlock(&ix->mu);
}

int udfb_index_sync(struct udfb_index *ix, struct udfb_err *err)
{
	pthread_mutex_lock(&ix->mu);
	int rc =
		ix->map && msync(ix->map, ix->map_len, MS_SYNC) < 0 ? udfb_err_sys(err, errno, "sync %s", ix->path) : 0;
	pthread_mutex_unlock(&ix->mu);
	return rc;
}
