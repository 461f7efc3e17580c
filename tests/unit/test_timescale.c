/* Unit tests of src/lib/timescale.c: COFFER_TEST_TIMESCALE divides waits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "timescale.h"

static int unset(void **state)
{
	(void)state;
	return unsetenv(TIMESCALE_ENV);
}

static void scale(const char *value)
{
	assert_int_equal(setenv(TIMESCALE_ENV, value, 1), 0);
}

static void test_default(void **state)
{
	(void)state;
	assert_int_equal(timescale_ms(5000), 5000);
	assert_int_equal(timescale_ms(0), 0);
	assert_int_equal(timescale_ms(UINT64_MAX), UINT64_MAX);
	scale("1");
	assert_int_equal(timescale_ms(5000), 5000);
}

static void test_divides(void **state)
{
	(void)state;
	scale("10");
	assert_int_equal(timescale_ms(5000), 500); /* the heartbeat */
	assert_int_equal(timescale_ms(1000), 100);
	assert_int_equal(timescale_ms(25), 3);     /* rounded to the nearest */
	assert_int_equal(timescale_ms(1), 1);      /* never 0 when the wait is not */
	assert_int_equal(timescale_ms(0), 0);
	scale("2.5");
	assert_int_equal(timescale_ms(5000), 2000);
	scale("0.5"); /* a slower clock is allowed */
	assert_int_equal(timescale_ms(1000), 2000);
	assert_int_equal(timescale_ms(UINT64_MAX), UINT64_MAX);
	scale("1000");
	assert_int_equal(timescale_ms(35000), 35);
	/* read at every call */
	scale("4");
	assert_int_equal(timescale_ms(1000), 250);
}

static void test_invalid_is_one(void **state)
{
	(void)state;
	const char *bad[] = { "", "abc", "10x", " ", "0", "-3", "inf", "nan", "1001", "1e9" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		scale(bad[i]);
		assert_int_equal(timescale_ms(5000), 5000);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_default, unset),
		cmocka_unit_test_teardown(test_divides, unset),
		cmocka_unit_test_teardown(test_invalid_is_one, unset),
	};
	unsetenv(TIMESCALE_ENV);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
