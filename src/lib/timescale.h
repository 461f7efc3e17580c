/*
 * timescale.h — a test knob that shortens the timing constants the tests
 * wait on (heartbeats, staleness, retries, back-off, poll intervals).
 *
 * COFFER_TEST_TIMESCALE=F in the environment divides every duration passed
 * through timescale_ms by F (a number above 0, e.g. 10). Unset, empty or
 * invalid (not a finite number above 0): F is 1 and every duration is as
 * written. It is read once per process. Only the integration tests set it;
 * a production deployment never should.
 */
#ifndef COFFER_TIMESCALE_H
#define COFFER_TIMESCALE_H

#include <stdint.h>

#define TIMESCALE_ENV "COFFER_TEST_TIMESCALE"

/*
 * ms divided by COFFER_TEST_TIMESCALE, never below 1 ms (0 stays 0).
 * Thread-safe.
 */
uint64_t timescale_ms(uint64_t ms);

#endif
