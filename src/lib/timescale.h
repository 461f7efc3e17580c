/*
 * timescale.h — how tests shorten the roles' waits (heartbeats, poll and
 * retry intervals, backoffs) without a flag of their own: every such
 * constant is read through timescale_ms.
 *
 * COFFER_TEST_TIMESCALE is a divisor, a decimal number (default 1): with 10
 * a 5 s heartbeat is 0.5 s. A value that is not a finite number in
 * (0, TIMESCALE_MAX] counts as 1. The variable is read at every call (the
 * roles never set it), so a test may change it between calls.
 *
 * What is not a wait is not scaled: HTTP timeouts, token lifetimes, the
 * freshness a token must have left, limits.
 */
#ifndef COFFER_TIMESCALE_H
#define COFFER_TIMESCALE_H

#include <stdint.h>

#define TIMESCALE_ENV "COFFER_TEST_TIMESCALE"
#define TIMESCALE_MAX 1000.0

/* ms divided by the timescale, rounded to the nearest; never 0 when ms is not. */
uint64_t timescale_ms(uint64_t ms);

#endif
