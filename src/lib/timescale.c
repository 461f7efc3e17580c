#include "timescale.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "log.h"
#include "banned.h"

#define UINT64_AS_DOUBLE 18446744073709551616.0 /* 2^64: no uint64_t reaches it */

/* The divisor: 1 unless the variable is a number, and nothing else, in (0, TIMESCALE_MAX]. */
static double factor(void)
{
	const char *text = getenv(TIMESCALE_ENV);
	if (!text || !*text)
		return 1.0;
	char *end = NULL;
	double f = strtod(text, &end);
	if (*end || !isfinite(f) || f <= 0.0 || f > TIMESCALE_MAX)
		return 1.0;
	return f;
}

uint64_t timescale_ms(uint64_t ms)
{
	static atomic_flag said = ATOMIC_FLAG_INIT;
	double f = factor();
	if (f == 1.0 || ms == 0)
		return ms;
	/* a test knob: a role that has it set says so once in its log */
	if (!atomic_flag_test_and_set(&said))
		log_warn("test_timescale", LF_S("effect", "waits shortened for tests"), LF_S(TIMESCALE_ENV, getenv(TIMESCALE_ENV)));
	double scaled = (double)ms / f + 0.5; /* rounded by the cast below */
	if (scaled >= UINT64_AS_DOUBLE)
		return UINT64_MAX;
	return scaled < 1.0 ? 1 : (uint64_t)scaled;
}
