/* The store's key index: inserts through several growths, lookups, hits,
 * deletes, reopening, a second handle seeing a grown file, torn slots. */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "common/fsutil.h"
#include "cache/index.h"

static void key_of(char out[UDFB_DIGEST_LEN + 1], int i, const char *salt)
{
	char text[64];
	snprintf(text, sizeof(text), "%s-%d", salt, i);
	udfb_sha256_digest(text, strlen(text), out);
}

int main(void)
{
	char dir[] = "/tmp/udfb-index-XXXXXX";
	if (!mkdtemp(dir))
		return 1;
	struct udfb_index *ix, *other;
	struct udfb_err err = UDFB_ERR_INIT;
	CHECK(udfb_index_open(&ix, dir, &err) == 0, "a new index opens (%s)", err.msg ? err.msg : "ok");
	CHECK(udfb_index_open(&other, dir, &err) == 0, "a second handle opens");
	const int n = 5000;
	int ok = 1;
	for (int i = 0; i < n && ok; i++) {
		char k[UDFB_DIGEST_LEN + 1], m[UDFB_DIGEST_LEN + 1];
		key_of(k, i, "key");
		key_of(m, i, "manifest");
		ok = udfb_index_put(ix, k, m, &err) == 0;
	}
	CHECK(ok && udfb_index_count(ix) == (size_t)n, "%d keys inserted through growths", n);
	size_t bytes, slots;
	udfb_index_size(ix, &bytes, &slots);
	CHECK(slots >= 8192 && bytes == 64 + slots * 80, "the table grew to %zu slots", slots);
	usleep(60000); /* readers look for a grown file at most every 50 ms */
	int found = 0;
	for (int i = 0; i < n; i++) {
		char k[UDFB_DIGEST_LEN + 1], m[UDFB_DIGEST_LEN + 1];
		struct udfb_index_entry e;
		key_of(k, i, "key");
		key_of(m, i, "manifest");
		found += udfb_index_get(other, k, 0, &e) && strcmp(e.manifest, m) == 0;
	}
	CHECK(found == n, "the other handle finds every key after the file was replaced (%d)", found);
	char absent[UDFB_DIGEST_LEN + 1];
	key_of(absent, 1, "nope");
	CHECK(!udfb_index_get(ix, absent, 0, NULL), "an absent key is a miss");
	char k7[UDFB_DIGEST_LEN + 1];
	key_of(k7, 7, "key");
	struct udfb_index_entry e;
	udfb_index_get(ix, k7, 1, NULL);
	udfb_index_get(ix, k7, 1, &e);
	CHECK(e.hits == 2 && e.last_used >= e.created, "hits and last use are counted");
	CHECK(udfb_index_del(ix, k7) == 0 && !udfb_index_get(other, k7, 0, NULL), "a deleted key is gone for everyone");
	CHECK(udfb_index_count(ix) == (size_t)n - 1, "the count follows");
	udfb_index_close(other);
	udfb_index_close(ix);

	/* Tear one slot by hand: it must read as absent, and scrub drops it. */
	char *path = udfb_path_join(dir, "index.bin");
	int fd = open(path, O_RDWR);
	char k3[UDFB_DIGEST_LEN + 1];
	key_of(k3, 3, "key");
	CHECK(udfb_index_open(&ix, dir, &err) == 0 && udfb_index_get(ix, k3, 0, NULL), "reopened, key 3 is there");
	udfb_index_size(ix, &bytes, &slots);
	/* find key 3's slot by scanning for its first bytes */
	unsigned char raw0;
	sscanf(k3 + 7, "%2hhx", &raw0);
	unsigned char buf[80];
	off_t where = -1;
	for (size_t s = 0; s < slots && where < 0; s++) {
		if (pread(fd, buf, 80, 64 + (off_t)s * 80) == 80 && buf[0] == raw0) {
			char hex[3];
			snprintf(hex, sizeof(hex), "%02x", buf[1]);
			if (memcmp(hex, k3 + 9, 2) == 0)
				where = 64 + (off_t)s * 80;
		}
	}
	buf[40] ^= 0xff; /* a byte of the manifest, as a crash mid-write would leave it */
	CHECK(where >= 0 && pwrite(fd, buf, 80, where) == 80, "slot of key 3 torn");
	CHECK(!udfb_index_get(ix, k3, 0, NULL), "a torn slot reads as a miss, never a wrong manifest");
	CHECK(udfb_index_scrub(ix) == 1, "scrub drops exactly the torn slot");
	close(fd);
	free(path);
	udfb_index_close(ix);
	udfb_rm_rf(dir);

	/* Two handles inserting by turns (two builds of one service): each
	 * must see the other's count, or growth comes late and the table fills. */
	char dir2[] = "/tmp/udfb-index-XXXXXX";
	if (!mkdtemp(dir2))
		return 1;
	struct udfb_index *a, *b;
	CHECK(udfb_index_open(&a, dir2, &err) == 0 && udfb_index_open(&b, dir2, &err) == 0,
	      "two handles on a new index");
	ok = 1;
	for (int i = 0; i < 20000 && ok; i++) {
		char k[UDFB_DIGEST_LEN + 1];
		key_of(k, i, "turns");
		ok = udfb_index_put(i % 2 ? b : a, k, k, &err) == 0;
	}
	CHECK(ok, "20000 keys put by two handles by turns (%s)", ok ? "no error" : err.msg);
	udfb_err_clear(&err);
	CHECK(udfb_index_count(a) == 20000, "and each handle counts all of them (%zu)", udfb_index_count(a));
	udfb_index_close(a);
	udfb_index_close(b);
	udfb_rm_rf(dir2);
	return check_done();
}
