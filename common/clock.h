/* The one clock of the project.
 *
 * Durations, deadlines, timeouts and rates are measured on CLOCK_MONOTONIC
 * (udfb_now_*): it does not jump when the wall clock is set.  The wall clock
 * (udfb_wall_ms) is only for times another process or a person reads: a
 * sandbox record's start time, a log line.  udfb_abstime() turns "in N ms"
 * into the absolute time pthread_cond_timedwait() wants, on the clock the
 * condition variable was made with. */
#ifndef UDFB_CLOCK_H
#define UDFB_CLOCK_H

#include <time.h>

/* Monotonic milliseconds, nanoseconds and (fractional) seconds since an
 * arbitrary start: only differences mean anything. */
long long udfb_now_ms(void);
long long udfb_now_ns(void);
double udfb_now_s(void);

/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
long long udfb_wall_ms(void);

/* *ts = now on clk + in_ms (in_ms >= 0). */
void udfb_abstime(struct timespec *ts, clockid_t clk, long long in_ms);

#endif
