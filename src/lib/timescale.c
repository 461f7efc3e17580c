/*
 * timescale.c — COFFER_TEST_TIMESCALE, read once (see timescale.h).
 */
#include "timescale.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>

static pthread_once_t scale_once = PTHREAD_ONCE_INIT;
static double scale = 1.0;

static void scale_read(void)
{
	const char *s = getenv(TIMESCALE_ENV);
	char *end = NULL;
	double f;

	if (s == NULL || *s == '\0')
		return;
	f = strtod(s, &end);
	if (end == s || *end != '\0' || !isfinite(f) || f <= 0.0)
		return;
	scale = f;
}

uint64_t timescale_ms(uint64_t ms)
{
	double v;

	pthread_once(&scale_once, scale_read);
	if (ms == 0 || scale == 1.0)
		return ms;
	v = (double)ms / scale;
	if (v < 1.0)
		return 1;
	if (v >= 18446744073709551615.0)
		return UINT64_MAX;
	return (uint64_t)v;
}
