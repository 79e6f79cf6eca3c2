/* The one clock (common/clock.h): monotonic readings in three units that
 * agree, a wall clock in epoch milliseconds, and absolute times for
 * pthread_cond_timedwait on either clock that wait as long as asked. */
#include <pthread.h>
#include <time.h>

#include "check.h"
#include "common/clock.h"

static void readings(void)
{
	long long ms0 = udfb_now_ms(), ns0 = udfb_now_ns();
	double s0 = udfb_now_s();
	int never_back = 1;
	long long prev = ns0;
	for (int k = 0; k < 100000; k++) {
		long long n = udfb_now_ns();
		never_back &= n >= prev;
		prev = n;
	}
	CHECK(never_back, "the monotonic clock never goes back over 100000 readings");
	long long ms1 = udfb_now_ms(), ns1 = udfb_now_ns();
	double s1 = udfb_now_s();
	CHECK(ns0 / 1000000 - ms0 < 1000 && ns0 / 1000000 >= ms0 && ms1 <= ns1 / 1000000,
	      "milliseconds are the nanoseconds / 10^6 (%lld ms, %lld ns)", ms0, ns0);
	CHECK(s0 >= (double)ns0 / 1e9 - 0.001 && s1 >= s0 && s1 - s0 < 10.0, "seconds agree with nanoseconds (%.6f s)",
	      s0);
	long long wall = udfb_wall_ms(), epoch_ms = (long long)time(NULL) * 1000;
	CHECK(wall - epoch_ms > -2000 && wall - epoch_ms < 2000, "the wall clock is epoch milliseconds (%lld vs %lld)",
	      wall, epoch_ms);
}

/* Wait on a condition nobody signals until the absolute time given. */
static long long waited_ms(clockid_t clk, long long in_ms)
{
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, clk);
	pthread_cond_t c;
	pthread_cond_init(&c, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	long long t0 = udfb_now_ms();
	struct timespec ts;
	udfb_abstime(&ts, clk, in_ms);
	pthread_mutex_lock(&mu);
	while (pthread_cond_timedwait(&c, &mu, &ts) == 0)
		; /* a spurious wake-up: wait on to the same time */
	pthread_mutex_unlock(&mu);
	pthread_cond_destroy(&c);
	return udfb_now_ms() - t0;
}

static void abstime(void)
{
	struct timespec now, ts;
	clock_gettime(CLOCK_MONOTONIC, &now);
	udfb_abstime(&ts, CLOCK_MONOTONIC, 1999);
	long long d = (ts.tv_sec - now.tv_sec) * 1000LL + (ts.tv_nsec - now.tv_nsec) / 1000000;
	CHECK(ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000L && d >= 1999 && d < 2100,
	      "abstime: now + 1999 ms, nanoseconds normalised (%lld ms, %ld ns)", d, ts.tv_nsec);
	long long m = waited_ms(CLOCK_MONOTONIC, 120), r = waited_ms(CLOCK_REALTIME, 120);
	CHECK(m >= 119 && m < 2000, "a wait to abstime on a CLOCK_MONOTONIC condition lasts 120 ms (%lld)", m);
	CHECK(r >= 119 && r < 2000, "and on a CLOCK_REALTIME one (%lld)", r);
}

int main(void)
{
	readings();
	abstime();
	return check_done();
}
