/* Unit tests of timescale_ms (src/lib/timescale.h): COFFER_TEST_TIMESCALE is
 * read once per process, so each case runs in a child of its own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "timescale.h"

struct scale_case {
	const char *env; /* NULL: unset */
	uint64_t ms, want;
};

static const struct scale_case cases[] = {
	{ NULL, 5000, 5000 },	 { "", 5000, 5000 },	  { "1", 5000, 5000 },	   { "5", 5000, 1000 },
	{ "2.5", 1000, 400 },	 { "4", 2, 1 },		  { "1000", 5, 1 },	   { "5", 0, 0 },
	{ "0", 5000, 5000 },	 { "-3", 5000, 5000 },	  { "abc", 5000, 5000 },   { "10x", 5000, 5000 },
	{ "nan", 5000, 5000 },	 { "inf", 5000, 5000 },	  { "0.5", 1000, 2000 },   { "3", 120000, 40000 },
};

/* 0 when timescale_ms(c->ms) is c->want in a fresh process with c->env. */
static int run_case(const struct scale_case *c)
{
	int status;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (c->env)
			setenv(TIMESCALE_ENV, c->env, 1);
		else
			unsetenv(TIMESCALE_ENV);
		/* read once: the same answer the second time */
		_exit(timescale_ms(c->ms) == c->want && timescale_ms(c->ms) == c->want ? 0 : 1);
	}
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_timescale_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (run_case(&cases[i]) != 0)
			fail_msg("COFFER_TEST_TIMESCALE='%s': timescale_ms(%llu) is not %llu",
				 cases[i].env ? cases[i].env : "(unset)", (unsigned long long)cases[i].ms,
				 (unsigned long long)cases[i].want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_timescale_cases) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
