/*
 * monotime.h — CLOCK_MONOTONIC in milliseconds, and the absolute deadlines
 * that pthread_cond_timedwait takes on a condition variable set to that clock
 * (pthread_condattr_setclock). Not "clock_": POSIX reserves that prefix in
 * <time.h>.
 */
#ifndef COFFER_MONOTIME_H
#define COFFER_MONOTIME_H

#include <stdint.h>
#include <time.h>

/* Milliseconds on CLOCK_MONOTONIC: only differences between two calls mean anything. */
int64_t monotime_ms(void);
/* The same clock in seconds, to the nanosecond (durations in metrics). */
double monotime_s(void);

/* *ts = CLOCK_MONOTONIC now + ms; a negative ms counts as 0 (the deadline is now). */
void monotime_deadline_in(struct timespec *ts, int64_t ms);

#endif
