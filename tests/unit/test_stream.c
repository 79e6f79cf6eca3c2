/* Streams helped by a second thread (common/hashpipe.h, common/syncer.h):
 * a hash pipe's digest is the one-shot SHA-256 of what was pushed, for
 * streams of no bytes, part of a buffer, buffers of every length and more
 * buffers than the ring holds, and a pushed buffer keeps its bytes until
 * the next is asked for; a syncer starts no thread below its step, starts
 * one past it, and returns the error of a flush that failed. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "common/fsutil.h"
#include "common/hashpipe.h"
#include "common/syncer.h"

/* Pushes len bytes of data in pieces of at most piece bytes; 0 when every
 * pushed buffer still held its bytes after its push. */
static int pipe_digest(const unsigned char *data, size_t len, size_t piece, char out[UDFB_DIGEST_LEN + 1])
{
	struct udfb_hashpipe *p = udfb_hashpipe_new();
	int changed = 0;
	for (size_t off = 0; off < len;) {
		unsigned char *b = udfb_hashpipe_buf(p);
		size_t n = len - off < piece ? len - off : piece;
		memcpy(b, data + off, n);
		udfb_hashpipe_push(p, n);
		changed |= memcmp(b, data + off, n) != 0; /* while it may be hashed */
		off += n;
	}
	udfb_hashpipe_final(p, out);
	return changed;
}

static void hash_pipe(void)
{
	size_t buf = udfb_hashpipe_bufsize(), len = 11 * buf + 123;
	unsigned char *data = malloc(len);
	unsigned x = 7;
	for (size_t k = 0; k < len; k++)
		data[k] = (unsigned char)((x = x * 1103515245u + 12345u) >> 16);
	struct {
		size_t len, piece;
		const char *what;
	} cases[] = { { 0, buf, "no bytes" },
		      { 100, buf, "part of one buffer (no thread)" },
		      { buf, buf, "exactly one buffer" },
		      { buf + 1, buf, "one buffer and a byte (a thread)" },
		      { len, buf, "eleven full buffers and a part: more than the ring holds" },
		      { len, 4099, "pieces of odd lengths" },
		      { len, 1, "one byte a buffer" } };
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		size_t n = cases[k].piece == 1 ? 3000 : cases[k].len; /* a byte a buffer: enough */
		char got[UDFB_DIGEST_LEN + 1], want[UDFB_DIGEST_LEN + 1];
		int changed = pipe_digest(data, n, cases[k].piece, got);
		udfb_sha256_digest(data, n, want);
		CHECK(!strcmp(got, want) && !changed, "hash pipe, %s: the one-shot digest (%s)", cases[k].what, got);
	}
	free(data);
}

static int flushing(struct udfb_syncer *s)
{
	pthread_mutex_lock(&s->mu);
	int taken = s->asked == s->written;
	pthread_mutex_unlock(&s->mu);
	return taken;
}

static void syncer(const char *dir)
{
	char *path = udfb_path_join(dir, "file");
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	static char block[65536];
	struct udfb_syncer s;
	udfb_syncer_init(&s, fd, 4 * (long long)sizeof(block));
	for (int k = 0; k < 3; k++)
		udfb_syncer_wrote(&s, udfb_write_all(fd, block, sizeof(block)) == 0 ? (long long)sizeof(block) : 0);
	int below = s.started;
	for (int k = 0; k < 9; k++)
		udfb_syncer_wrote(&s, udfb_write_all(fd, block, sizeof(block)) == 0 ? (long long)sizeof(block) : 0);
	int past = s.started;
	int rc = udfb_syncer_stop(&s);
	CHECK(fd >= 0 && below == 0 && past == 1 && rc == 0,
	      "syncer: no thread below its step, one past it, stopped without error");
	close(fd);
	/* A pipe cannot be flushed: the error comes back from stop. */
	int p[2];
	CHECK(pipe(p) == 0, "a pipe");
	udfb_syncer_init(&s, p[1], 1);
	udfb_syncer_wrote(&s, 1);
	/* Until the thread has taken the step (stop does not flush, the final
	 * fsync is the caller's); the join then waits for its flush. */
	for (int k = 0; k < 2000 && !flushing(&s); k++)
		usleep(1000);
	rc = udfb_syncer_stop(&s);
	CHECK(rc == EINVAL, "syncer: a flush that failed is returned by stop (%s)", strerror(rc));
	close(p[0]);
	close(p[1]);
	/* Stopped at once: the flush under way is waited for. */
	fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	udfb_syncer_init(&s, fd, 1);
	udfb_syncer_wrote(&s, udfb_write_all(fd, block, sizeof(block)) == 0 ? (long long)sizeof(block) : 0);
	int started = s.started;
	CHECK(started == 1 && udfb_syncer_stop(&s) == 0, "syncer: stopped right after its start");
	close(fd);
	free(path);
}

int main(void)
{
	char tmpl[] = "/tmp/udfb-stream-test.XXXXXX";
	if (!mkdtemp(tmpl))
		return 2;
	hash_pipe();
	syncer(tmpl);
	udfb_rm_rf(tmpl);
	return check_done();
}
