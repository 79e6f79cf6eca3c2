/* The abort-on-OOM allocation wrappers (common/alloc.h, docs/errors.md rule
 * 4): they return usable memory, zero-size requests included, and a request
 * nothing can satisfy ends the process with SIGABRT and one line on stderr
 * rather than returning NULL. */
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "common/alloc.h"

static void usable(void)
{
	char *s = udfb_strdup("layer");
	CHECK_STR(s, "layer", "strdup copies");
	char *n = udfb_strndup("sha256:abcdef", 6);
	CHECK_STR(n, "sha256", "strndup stops at n");
	char *f = udfb_asprintf("%s/%d", s, 42);
	CHECK_STR(f, "layer/42", "asprintf formats");
	int *z = udfb_calloc(64, sizeof(int));
	int zero = 1;
	for (int k = 0; k < 64; k++)
		zero &= z[k] == 0;
	CHECK(zero, "calloc zeroes");
	z = udfb_reallocarray(z, 1024, sizeof(int));
	z[1023] = 7;
	CHECK(z[0] == 0 && z[1023] == 7, "reallocarray grows and keeps the contents");
	void *m0 = udfb_malloc(0), *c0 = udfb_calloc(0, 8);
	char *r0 = udfb_realloc(udfb_strdup("x"), 0);
	CHECK(m0 && c0 && r0, "zero-size malloc, calloc and realloc give a block, never NULL");
	free(s), free(n), free(f), free(z), free(m0), free(c0), free(r0);
}

/* Run fn in a child; its end and what it wrote to stderr. */
static int child_status(void (*fn)(void), char *out, size_t n)
{
	int p[2];
	if (pipe(p) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(p[1], STDERR_FILENO);
		fn();
		_exit(0); /* reached only if the allocation returned */
	}
	close(p[1]);
	ssize_t got = read(p[0], out, n - 1);
	out[got > 0 ? got : 0] = '\0';
	out[strcspn(out, "\n")] = '\0'; /* one line, for the TAP line */
	close(p[0]);
	int st = 0;
	waitpid(pid, &st, 0);
	return st;
}

/* Sizes read at run time: the compiler refuses them as constants. */
static volatile size_t half_max = SIZE_MAX / 2, near_max = SIZE_MAX - 4096;

static void overflow(void)
{
	void *p = udfb_reallocarray(NULL, half_max, 4);
	free(p);
}

static void huge(void)
{
	void *p = udfb_malloc(near_max);
	free(p);
}

static void oom(void)
{
	char out[512];
	int st = child_status(overflow, out, sizeof(out));
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT && strstr(out, "udf-builder: out of memory"),
	      "an array size that overflows aborts with one line (status %#x: %s)", st, out);
	/* Under ASan its allocator reports the size itself and exits: either
	 * way udfb_malloc does not return. */
	st = child_status(huge, out, sizeof(out));
	CHECK(!(WIFEXITED(st) && WEXITSTATUS(st) == 0), "a size no allocator can give does not return (status %#x)",
	      st);
}

int main(void)
{
	usable();
	oom();
	return check_done();
}
