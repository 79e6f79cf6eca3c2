/* A tiny TAP producer for unit tests: each CHECK prints "ok N - what" or
 * "not ok N - what"; tests/run.sh counts those lines.  main() returns
 * check_done(), non-zero when anything failed. */
#ifndef UDFB_CHECK_H
#define UDFB_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_n, check_failed;

#define CHECK(cond, ...)                                                                \
	do {                                                                            \
		int ok_ = !!(cond);                                                     \
		check_n++;                                                              \
		printf("%sok %d - ", ok_ ? "" : "not ", check_n);                       \
		printf(__VA_ARGS__);                                                    \
		printf("\n");                                                           \
		if (!ok_) {                                                             \
			check_failed++;                                                 \
			printf("#   failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
		}                                                                       \
	} while (0)

#define CHECK_STR(got, want, ...)                                                                    \
	do {                                                                                         \
		const char *g_ = (got), *w_ = (want);                                                \
		CHECK(g_ &&w_ &&strcmp(g_, w_) == 0, __VA_ARGS__);                                   \
		if (!(g_ && w_ && strcmp(g_, w_) == 0))                                              \
			printf("#   got '%s', want '%s'\n", g_ ? g_ : "(null)", w_ ? w_ : "(null)"); \
	} while (0)

static inline int check_done(void)
{
	printf("1..%d\n", check_n);
	return check_failed ? 1 : 0;
}

#endif
