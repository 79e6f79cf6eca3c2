/* The monotonic and wall clocks: see clock.h. */
#include "common/clock.h"

static long long read_ns(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts); /* cannot fail for these clocks on Linux */
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

long long udfb_now_ns(void)
{
	return read_ns(CLOCK_MONOTONIC);
}

long long udfb_now_ms(void)
{
	return read_ns(CLOCK_MONOTONIC) / 1000000;
}

double udfb_now_s(void)
{
	return (double)read_ns(CLOCK_MONOTONIC) / 1e9;
}

long long udfb_wall_ms(void)
{
	return read_ns(CLOCK_REALTIME) / 1000000;
}

void udfb_abstime(struct timespec *ts, clockid_t clk, long long in_ms)
{
	clock_gettime(clk, ts);
	long long ns = ts->tv_nsec + (in_ms % 1000) * 1000000LL;
	ts->tv_sec += (time_t)(in_ms / 1000 + ns / 1000000000LL);
	ts->tv_nsec = (long)(ns % 1000000000LL);
}
