/*
 * Unit tests of src/cli/format.c: relative dates, RFC 3339, tables, URL
 * segments, durations, release progress lines, first lines, terminal text
 * and shell-quoted command lines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "format.h"
#include "parse.h"

#define NOW ((int64_t)1795687200) /* 2026-11-26T10:00:00Z */

static void expect_relative(int64_t ago, const char *want)
{
	char out[FORMAT_RELATIVE_SIZE];
	assert_int_equal(format_relative(NOW - ago, NOW, out, sizeof(out)), COFFER_OK);
	assert_string_equal(out, want);
}

static void test_relative_boundaries(void **state)
{
	(void)state;
	expect_relative(0, "0s ago");
	expect_relative(17, "17s ago");
	expect_relative(59, "59s ago");
	expect_relative(60, "1m ago");
	expect_relative(61, "1m ago");
	expect_relative(3 * 60 + 59, "3m ago");
	expect_relative(59 * 60 + 59, "59m ago");
	expect_relative(60 * 60, "1h ago");
	expect_relative(2 * 3600 + 1, "2h ago");
	expect_relative(23 * 3600, "23h ago");
	expect_relative(24 * 3600 - 1, "23h ago");
	expect_relative(24 * 3600, "1d ago");
	expect_relative(5 * 86400 + 3600, "5d ago");
	expect_relative(400 * 86400, "400d ago");
	/* the future: expiry dates */
	expect_relative(-1, "in 1s");
	expect_relative(-180, "in 3m");
	expect_relative(-30 * 86400, "in 30d");
}

static void test_relative_extremes(void **state)
{
	(void)state;
	char out[FORMAT_RELATIVE_SIZE], tiny[7];
	assert_int_equal(format_relative(INT64_MIN, INT64_MAX, out, sizeof(out)), COFFER_OK);
	assert_string_equal(out, "213503982334601d ago");
	assert_int_equal(format_relative(INT64_MAX, INT64_MIN, out, sizeof(out)), COFFER_OK);
	assert_string_equal(out, "in 213503982334601d");
	/* refuses to truncate */
	assert_int_equal(format_relative(NOW - 17, NOW, tiny, sizeof(tiny)), COFFER_ERR_TOO_LARGE);
	assert_int_equal(format_relative(NOW - 1, NOW, tiny, sizeof(tiny)), COFFER_OK);
	assert_string_equal(tiny, "1s ago");
}

static void expect_rfc3339(int64_t t, const char *want)
{
	char out[FORMAT_RFC3339_SIZE];
	int64_t back = 0;
	assert_int_equal(format_rfc3339(t, out, sizeof(out)), COFFER_OK);
	assert_string_equal(out, want);
	assert_int_equal(strlen(out) + 1, FORMAT_RFC3339_SIZE);
	assert_int_equal(format_parse_rfc3339(out, &back), COFFER_OK);
	assert_true(back == t);
}

static void test_rfc3339_format(void **state)
{
	(void)state;
	char small[FORMAT_RFC3339_SIZE - 1];
	expect_rfc3339(0, "1970-01-01T00:00:00Z");
	expect_rfc3339(NOW, "2026-11-26T10:00:00Z");
	expect_rfc3339(1709251199, "2024-02-29T23:59:59Z");
	expect_rfc3339(-1, "1969-12-31T23:59:59Z");
	expect_rfc3339(253402300799, "9999-12-31T23:59:59Z");
	expect_rfc3339(-62135596800, "0001-01-01T00:00:00Z");
	assert_int_equal(format_rfc3339(NOW, small, sizeof(small)), COFFER_ERR_TOO_LARGE);
	assert_int_equal(format_rfc3339(253402300800, small, sizeof(small)), COFFER_ERR_INVALID);
	/* every day of four years round-trips */
	for (int64_t t = NOW - 4 * 366 * 86400; t < NOW; t += 86400 + 3671) {
		char out[FORMAT_RFC3339_SIZE];
		int64_t back;
		assert_int_equal(format_rfc3339(t, out, sizeof(out)), COFFER_OK);
		assert_int_equal(format_parse_rfc3339(out, &back), COFFER_OK);
		assert_true(back == t);
	}
}

static void test_rfc3339_parse(void **state)
{
	(void)state;
	int64_t t = 42;
	assert_int_equal(format_parse_rfc3339("2026-11-26T10:00:00Z", &t), COFFER_OK);
	assert_true(t == NOW);
	assert_int_equal(format_parse_rfc3339("2026-11-26t10:00:00z", &t), COFFER_OK);
	assert_true(t == NOW);
	assert_int_equal(format_parse_rfc3339("2026-11-26T10:00:00.123456Z", &t), COFFER_OK);
	assert_true(t == NOW);
	assert_int_equal(format_parse_rfc3339("2026-11-26T12:30:00+02:30", &t), COFFER_OK);
	assert_true(t == NOW);
	assert_int_equal(format_parse_rfc3339("2026-11-26T09:00:00-01:00", &t), COFFER_OK);
	assert_true(t == NOW);
	assert_int_equal(format_parse_rfc3339("2000-02-29T00:00:00Z", &t), COFFER_OK);
	assert_int_equal(format_parse_rfc3339("2016-12-31T23:59:60Z", &t), COFFER_OK); /* leap second */

	static const char *const bad[] = {
		"",
		"2026-11-26",
		"2026-11-26T10:00:00",       /* no zone */
		"2026-11-26 10:00:00Z",      /* space */
		"2026-11-26T10:00:00Z ",     /* trailing */
		"2026-11-26T10:00:00.Z",     /* empty fraction */
		"2026-11-26T10:00:00+0200",  /* offset without ':' */
		"2026-13-01T00:00:00Z",
		"2026-00-01T00:00:00Z",
		"2026-02-29T00:00:00Z",      /* not a leap year */
		"1900-02-29T00:00:00Z",
		"2026-04-31T00:00:00Z",
		"2026-11-26T24:00:00Z",
		"2026-11-26T10:60:00Z",
		"0000-01-01T00:00:00Z",
		"+026-11-26T10:00:00Z",
		"2026-11-26T10:00:00+24:00",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		t = 42;
		assert_int_equal(format_parse_rfc3339(bad[i], &t), COFFER_ERR_INVALID);
		assert_true(t == 42); /* untouched on failure */
	}
	assert_int_equal(format_parse_rfc3339(NULL, &t), COFFER_ERR_INVALID);
}

static void test_when(void **state)
{
	(void)state;
	char out[FORMAT_RELATIVE_SIZE], tiny[5];
	format_when("2026-11-26T09:57:00Z", NOW, "-", out, sizeof(out));
	assert_string_equal(out, "3m ago");
	format_when(NULL, NOW, "never", out, sizeof(out));
	assert_string_equal(out, "never");
	format_when("yesterday", NOW, "-", out, sizeof(out));
	assert_string_equal(out, "yesterday");
	format_when("yesterday", NOW, "-", tiny, sizeof(tiny));
	assert_string_equal(tiny, "yest");
}

static void expect_table(struct format_table *t, const char *want)
{
	struct buf b;
	buf_init(&b, 1 << 16);
	assert_int_equal(buf_adds(&b, "> "), COFFER_OK); /* rendering appends */
	assert_int_equal(format_table_render(t, &b), COFFER_OK);
	assert_string_equal(b.ptr, want);
	buf_release(&b);
}

static void test_table_widths(void **state)
{
	(void)state;
	static const char *const headers[] = { "NAME", "DIGEST", "DATE" };
	struct format_table t;
	assert_int_equal(format_table_init(&t, 3, headers), COFFER_OK);
	expect_table(&t, "> NAME  DIGEST  DATE\n");
	const char *r1[] = { "A", "abc", "1m ago" };
	const char *r2[] = { "LONGER_NAME", "x", NULL };
	const char *r3[] = { "\xc3\xa9t\xc3\xa9", "digest-wider-than-header", "17s ago" }; /* "été": 3 characters */
	assert_int_equal(format_table_add(&t, r1), COFFER_OK);
	assert_int_equal(format_table_add(&t, r2), COFFER_OK);
	assert_int_equal(format_table_add(&t, r3), COFFER_OK);
	assert_int_equal(t.n_rows, 3);
	expect_table(&t, "> NAME         DIGEST                    DATE\n"
			 "A            abc                       1m ago\n"
			 "LONGER_NAME  x                         -\n"
			 "\xc3\xa9t\xc3\xa9          digest-wider-than-header  17s ago\n");
	format_table_release(&t);
}

static void test_table_cells(void **state)
{
	(void)state;
	static const char *const headers[] = { "A", "B" };
	struct format_table t;
	char big[FORMAT_CELL_MAX + 100];
	assert_int_equal(format_table_init(&t, 2, headers), COFFER_OK);
	/* control characters from a peer cannot reach the terminal */
	const char *r1[] = { "x\x1b[31mred\x07", "tab\there\n" };
	assert_int_equal(format_table_add(&t, r1), COFFER_OK);
	expect_table(&t, "> A           B\nx?[31mred?  tab?here?\n");
	format_table_release(&t);

	/* a cell past FORMAT_CELL_MAX is cut, ending in "..." */
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(format_table_init(&t, 2, headers), COFFER_OK);
	const char *r2[] = { "1", big };
	assert_int_equal(format_table_add(&t, r2), COFFER_OK);
	assert_int_equal(strlen(t.cells[3]), FORMAT_CELL_MAX);
	assert_memory_equal(t.cells[3] + FORMAT_CELL_MAX - 3, "...", 3);
	format_table_release(&t);

	/* many rows: the table grows */
	assert_int_equal(format_table_init(&t, 2, headers), COFFER_OK);
	for (int i = 0; i < 1000; i++) {
		char n[16];
		assert_int_equal(fmt_into(n, sizeof(n), "%d", i), COFFER_OK);
		const char *r[] = { n, "v" };
		assert_int_equal(format_table_add(&t, r), COFFER_OK);
	}
	assert_int_equal(t.n_rows, 1000);
	assert_string_equal(t.cells[2 * 1000], "999");
	format_table_release(&t);

	assert_int_equal(format_table_init(&t, 0, headers), COFFER_ERR_INVALID);
	assert_int_equal(format_table_init(&t, FORMAT_TABLE_COLS_MAX + 1, headers), COFFER_ERR_INVALID);
}

static void test_table_render_limit(void **state)
{
	(void)state;
	static const char *const headers[] = { "NAME", "VALUE" };
	struct format_table t;
	struct buf b;
	assert_int_equal(format_table_init(&t, 2, headers), COFFER_OK);
	buf_init(&b, 8);
	assert_int_equal(buf_adds(&b, "keep"), COFFER_OK);
	assert_int_equal(format_table_render(&t, &b), COFFER_ERR_TOO_LARGE);
	assert_string_equal(b.ptr, "keep"); /* left as it was */
	assert_int_equal(b.len, 4);
	buf_release(&b);
	format_table_release(&t);
}

static void test_url_segment(void **state)
{
	(void)state;
	char out[32], four[4];
	assert_int_equal(format_url_segment("web-1_x~", out, sizeof(out)), COFFER_OK);
	assert_string_equal(out, "web-1_x~");
	assert_int_equal(format_url_segment("a b/c?d#e&f=g", out, sizeof(out)), COFFER_OK);
	assert_string_equal(out, "a%20b%2Fc%3Fd%23e%26f%3Dg");
	assert_int_equal(format_url_segment("..", out, sizeof(out)), COFFER_OK);
	assert_string_equal(out, "%2E%2E");
	assert_int_equal(format_url_segment("\xc3\xa9%", out, sizeof(out)), COFFER_OK);
	assert_string_equal(out, "%C3%A9%25");
	assert_int_equal(format_url_segment("", out, sizeof(out)), COFFER_OK);
	assert_string_equal(out, "");
	/* exact fit and one past */
	assert_int_equal(format_url_segment("abc", four, sizeof(four)), COFFER_OK);
	assert_string_equal(four, "abc");
	assert_int_equal(format_url_segment("abcd", four, sizeof(four)), COFFER_ERR_TOO_LARGE);
	assert_int_equal(format_url_segment("a/", four, sizeof(four)), COFFER_ERR_TOO_LARGE);
	assert_int_equal(format_url_segment("/", four, sizeof(four)), COFFER_OK);
	assert_string_equal(four, "%2F");
}

static void expect_duration(uint64_t ms, const char *want)
{
	char out[FORMAT_DURATION_SIZE];
	uint64_t back = 0;
	assert_int_equal(format_duration(ms, out, sizeof(out)), COFFER_OK);
	assert_string_equal(out, want);
	assert_int_equal(parse_duration_ms(out, UINT64_MAX, &back), COFFER_OK);
	assert_true(back == ms);
}

static void test_duration(void **state)
{
	(void)state;
	char small[4];
	expect_duration(0, "0s");
	expect_duration(1, "1ms");
	expect_duration(500, "500ms");
	expect_duration(1000, "1s");
	expect_duration(2500, "2s500ms");
	expect_duration(30000, "30s");
	expect_duration(60000, "1m");
	expect_duration(90000, "1m30s");
	expect_duration(3600000, "1h");
	expect_duration(3600000 + 1, "1h1ms");
	expect_duration((uint64_t)26 * 3600000, "1d2h");
	expect_duration(UINT64_MAX, "213503982334d14h25m51s615ms");
	assert_true(strlen("213503982334d14h25m51s615ms") < FORMAT_DURATION_SIZE);
	/* refuses to truncate, and leaves an empty string */
	assert_int_equal(format_duration(90000, small, sizeof(small)), COFFER_ERR_TOO_LARGE);
	assert_string_equal(small, "");
	assert_int_equal(format_duration(1000, small, sizeof(small)), COFFER_OK);
	assert_string_equal(small, "1s");
}

static void expect_step(const char *id, const char *step, int64_t left, const char *want)
{
	char out[FORMAT_STEP_SIZE];
	assert_int_equal(format_machine_step(id, step, left, out, sizeof(out)), COFFER_OK);
	assert_string_equal(out, want);
}

static void test_machine_step(void **state)
{
	(void)state;
	char big_id[200], out[FORMAT_STEP_SIZE], tiny[16];
	expect_step("9f2c", "replacing", 0, "machine 9f2c: replacing");
	expect_step("9f2c", "watching", 25000, "machine 9f2c: started, watching (25s left)");
	expect_step("9f2c", "watching", 24001, "machine 9f2c: started, watching (25s left)"); /* rounded up */
	expect_step("9f2c", "watching", 999, "machine 9f2c: started, watching (1s left)");
	expect_step("9f2c", "watching", 0, "machine 9f2c: started, watching (0s left)");
	expect_step("9f2c", "watching", -5, "machine 9f2c: started, watching (0s left)");
	expect_step("9f2c", "passed", 0, "machine 9f2c: passed");
	expect_step("9f2c", "rolled_back", 0, "machine 9f2c: rolled back");
	expect_step("9f2c", "waiting", 0, "machine 9f2c: waiting");
	expect_step("9f2c", "later\x1b[2J", 0, "machine 9f2c: later?[2J");  /* a peer cannot clear the screen */
	expect_step("a\nb", NULL, 0, "machine a?b: ?");
	expect_step(NULL, "passed", 0, "machine ?: passed");
	/* a huge id is cut: the line always fits in FORMAT_STEP_SIZE */
	memset(big_id, 'f', sizeof(big_id) - 1);
	big_id[sizeof(big_id) - 1] = '\0';
	assert_int_equal(format_machine_step(big_id, "watching", INT64_MAX, out, sizeof(out)), COFFER_OK);
	assert_int_equal(strlen(out), strlen("machine : started, watching (9223372036854776s left)") + FORMAT_STEP_ID_MAX);
	assert_int_equal(format_machine_step("9f2c", "replacing", 0, tiny, sizeof(tiny)), COFFER_ERR_TOO_LARGE);
}

static void test_first_line(void **state)
{
	(void)state;
	char out[16], tiny[3] = "ab";
	format_first_line("machine 1 exited\nlast output:\nboom", "-", out, sizeof(out));
	assert_string_equal(out, "machine 1 ex..."); /* 12 bytes, "..." and the NUL */
	format_first_line("exited 1\nlast output:\n", "-", out, sizeof(out));
	assert_string_equal(out, "exited 1");
	format_first_line("crlf\r\nnext", "-", out, sizeof(out));
	assert_string_equal(out, "crlf");
	format_first_line(NULL, "-", out, sizeof(out));
	assert_string_equal(out, "-");
	format_first_line("", "-", out, sizeof(out));
	assert_string_equal(out, "");
	format_first_line("exactly15chars!\nmore", "-", out, sizeof(out));
	assert_string_equal(out, "exactly15chars!");
	format_first_line("sixteen chars!!!", "-", out, sizeof(out));
	assert_string_equal(out, "sixteen char...");
	format_first_line("tab\there\x1b", "-", out, sizeof(out));
	assert_string_equal(out, "tab?here?");
	/* not cut inside a UTF-8 sequence: 8 "é" are 16 bytes, 6 fit before "..." */
	format_first_line("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", "-", out, sizeof(out));
	assert_string_equal(out, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9...");
	format_first_line("abc", "-", tiny, sizeof(tiny)); /* too small: left alone */
	assert_string_equal(tiny, "ab");
}

static void test_terminal_text(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 48);
	assert_int_equal(format_terminal_text("exited 1\nlast output:\n\tDB=***\x1b[31m\r\x7f", &b), COFFER_OK);
	assert_string_equal(b.ptr, "exited 1\nlast output:\n\tDB=***?[31m??");
	buf_reset(&b);
	assert_int_equal(buf_adds(&b, "keep"), COFFER_OK);
	assert_int_equal(format_terminal_text("this is far longer than the forty-eight bytes that b may hold", &b), COFFER_ERR_TOO_LARGE);
	assert_string_equal(b.ptr, "keep");
	assert_int_equal(b.len, 4);
	buf_release(&b);
}

static void expect_argv(const char *const *argv, size_t n, const char *want)
{
	struct buf b;
	buf_init(&b, 1024);
	assert_int_equal(format_argv(argv, n, &b), COFFER_OK);
	assert_string_equal(b.ptr, want);
	buf_release(&b);
}

static void test_argv(void **state)
{
	(void)state;
	const char *plain[] = { "./web", "--port=8080", "-v", "a/b.c:d@e%f+g,h" };
	expect_argv(plain, 4, "./web --port=8080 -v a/b.c:d@e%f+g,h");
	const char *quoted[] = { "sh", "-c", "echo hi; exit 1", "", "it's", "$HOME", "a\nb" };
	expect_argv(quoted, 7, "sh -c 'echo hi; exit 1' '' 'it'\\''s' '$HOME' 'a?b'");
	expect_argv(quoted, 0, "");
	struct buf b;
	buf_init(&b, 8);
	assert_int_equal(buf_adds(&b, "x"), COFFER_OK);
	assert_int_equal(format_argv(quoted, 3, &b), COFFER_ERR_TOO_LARGE);
	assert_string_equal(b.ptr, "x");
	buf_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_relative_boundaries),
		cmocka_unit_test(test_relative_extremes),
		cmocka_unit_test(test_rfc3339_format),
		cmocka_unit_test(test_rfc3339_parse),
		cmocka_unit_test(test_when),
		cmocka_unit_test(test_table_widths),
		cmocka_unit_test(test_table_cells),
		cmocka_unit_test(test_table_render_limit),
		cmocka_unit_test(test_url_segment),
		cmocka_unit_test(test_duration),
		cmocka_unit_test(test_machine_step),
		cmocka_unit_test(test_first_line),
		cmocka_unit_test(test_terminal_text),
		cmocka_unit_test(test_argv),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
