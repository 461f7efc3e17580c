/* Unit tests of src/cli/dotenv.c: the .env parser, bounded stdin reads and the request body. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "buf.h"
#include "dotenv.h"

static enum coffer_err parse_len(const char *text, size_t len, struct dotenv *d, struct dotenv_error *err)
{
	dotenv_init(d);
	memset(err, 0, sizeof(*err));
	return dotenv_parse((const unsigned char *)text, len, d, err);
}

static enum coffer_err parse(const char *text, struct dotenv *d, struct dotenv_error *err)
{
	return parse_len(text, strlen(text), d, err);
}

static void value_is_len(const struct dotenv *d, const char *name, const char *want, size_t len)
{
	const struct dotenv_entry *e = dotenv_find(d, name);
	assert_non_null(e);
	assert_non_null(e->value);
	assert_int_equal(secret_len(e->value), len);
	assert_memory_equal(secret_cbytes(e->value), want, len);
}

static void value_is(const struct dotenv *d, const char *name, const char *want)
{
	value_is_len(d, name, want, strlen(want));
}

/* Parses text (len 0: strlen), expects a failure on `line` with `message`, and no trace of `secret` in the message. */
static void expect_error(const char *text, size_t len, enum coffer_err rc, size_t line, const char *message,
			 const char *secret)
{
	struct dotenv d;
	struct dotenv_error err;
	assert_int_equal(parse_len(text, len ? len : strlen(text), &d, &err), rc);
	assert_int_equal(err.line, line);
	assert_string_equal(err.message, message);
	if (secret)
		assert_null(strstr(err.message, secret));
	dotenv_release(&d);
}

static void test_plain_lines(void **state)
{
	(void)state;
	struct dotenv d;
	struct dotenv_error err;
	assert_int_equal(parse("A=1\nB=two words\nC_3=x\n", &d, &err), COFFER_OK);
	assert_int_equal(d.n, 3);
	assert_string_equal(d.entries[0].name, "A");
	assert_string_equal(d.entries[1].name, "B");
	assert_string_equal(d.entries[2].name, "C_3");
	value_is(&d, "A", "1");
	value_is(&d, "B", "two words");
	value_is(&d, "C_3", "x");
	assert_null(dotenv_find(&d, "D"));
	dotenv_release(&d);
	assert_int_equal(d.n, 0);
	/* no final newline */
	assert_int_equal(parse("A=1", &d, &err), COFFER_OK);
	value_is(&d, "A", "1");
	dotenv_release(&d);
	/* nothing at all */
	assert_int_equal(parse("", &d, &err), COFFER_OK);
	assert_int_equal(d.n, 0);
	dotenv_release(&d);
}

static void test_comments_and_blank_lines(void **state)
{
	(void)state;
	struct dotenv d;
	struct dotenv_error err;
	assert_int_equal(parse("# a comment\n\n   \n\t# indented comment\nA=1\n#B=2\n\n", &d, &err), COFFER_OK);
	assert_int_equal(d.n, 1);
	value_is(&d, "A", "1");
	dotenv_release(&d);
}

static void test_spaces_and_export(void **state)
{
	(void)state;
	struct dotenv d;
	struct dotenv_error err;
	assert_int_equal(parse("  A = spaced value  \nexport B=b\n\texport \t C =\tc\nexport=e1\nexport = e2\nexporter=x\n",
			       &d, &err),
			 COFFER_OK);
	value_is(&d, "A", "spaced value");
	value_is(&d, "B", "b");
	value_is(&d, "C", "c");
	value_is(&d, "export", "e2"); /* a variable named export, set twice: the last wins */
	value_is(&d, "exporter", "x");
	assert_int_equal(d.n, 5);
	dotenv_release(&d);
}

static void test_first_equals_hash_and_empty(void **state)
{
	(void)state;
	struct dotenv d;
	struct dotenv_error err;
	assert_int_equal(parse("URL=postgres://u:p@h/db?sslmode=require&x=1#frag\nHASH=abc #not a comment\n"
			       "E=\nF=   \nQ='a=b#c'\n",
			       &d, &err),
			 COFFER_OK);
	value_is(&d, "URL", "postgres://u:p@h/db?sslmode=require&x=1#frag");
	value_is(&d, "HASH", "abc"); /* " #" starts a comment (reported: test_comment_notes) */
	value_is(&d, "E", "");
	value_is(&d, "F", "");
	value_is(&d, "Q", "a=b#c");
	dotenv_release(&d);
}

static void test_double_quotes(void **state)
{
	(void)state;
	struct dotenv d;
	struct dotenv_error err;
	assert_int_equal(parse("A=\"line1\\nline2\\r\\tq\\\"q\\\\b\\x\"\n"
			       "B=\"  kept spaces  \"   # a comment\n"
			       "C=\"\"\n"
			       "D=\"has # and = and 'single'\"\n"
			       "E=\"ends with backslash \\\\\"\n",
			       &d, &err),
			 COFFER_OK);
	/* as dotenv reads them: only \n and \r are escapes, every other backslash stays */
	value_is(&d, "A", "line1\nline2\r\\tq\\\"q\\\\b\\x");
	value_is(&d, "B", "  kept spaces  ");
	value_is(&d, "C", "");
	value_is(&d, "D", "has # and = and 'single'");
	value_is(&d, "E", "ends with backslash \\\\");
	dotenv_release(&d);
}

static void test_single_quotes(void **state)
{
	(void)state;
	struct dotenv d;
	struct dotenv_error err;
	assert_int_equal(parse("A='no \\n escapes \"here\"'\nB=''\nC='x' # comment\n", &d, &err), COFFER_OK);
	value_is(&d, "A", "no \\n escapes \"here\"");
	value_is(&d, "B", "");
	value_is(&d, "C", "x");
	dotenv_release(&d);
}

static void test_triple_quotes(void **state)
{
	(void)state;
	struct dotenv d;
	struct dotenv_error err;
	assert_int_equal(parse("KEY=\"\"\"\n-----BEGIN KEY-----\nAAAA=\n# not a comment\n\n-----END KEY-----\n\"\"\"\n"
			       "TWO=\"\"\"first\nsecond\"\"\"\n"
			       "ONE=\"\"\"on one line\"\"\"\n"
			       "EMPTY=\"\"\"\"\"\"\n"
			       "SPACES=\"\"\"   \nx\"\"\"   \n"
			       "AFTER=ok\n",
			       &d, &err),
			 COFFER_OK);
	value_is(&d, "KEY", "-----BEGIN KEY-----\nAAAA=\n# not a comment\n\n-----END KEY-----\n");
	value_is(&d, "TWO", "first\nsecond");
	value_is(&d, "ONE", "on one line");
	value_is(&d, "EMPTY", "");
	value_is(&d, "SPACES", "x");
	value_is(&d, "AFTER", "ok");
	assert_int_equal(d.n, 6);
	dotenv_release(&d);
}

static void test_crlf(void **state)
{
	(void)state;
	struct dotenv d;
	struct dotenv_error err;
	assert_int_equal(parse("# comment\r\n\r\nA=1\r\nB=\"x y\"\r\nC=\"\"\"\r\nl1\r\nl2\"\"\"\r\nD=a=b#c\r\n", &d, &err),
			 COFFER_OK);
	value_is(&d, "A", "1");
	value_is(&d, "B", "x y");
	value_is(&d, "C", "l1\nl2");
	value_is(&d, "D", "a=b#c");
	assert_int_equal(d.n, 4);
	dotenv_release(&d);
}

static void test_last_wins(void **state)
{
	(void)state;
	struct dotenv d;
	struct dotenv_error err;
	assert_int_equal(parse("A=1\nB=2\nA=3\n", &d, &err), COFFER_OK);
	assert_int_equal(d.n, 2);
	assert_string_equal(d.entries[0].name, "A"); /* keeps its first place */
	value_is(&d, "A", "3");
	value_is(&d, "B", "2");
	dotenv_release(&d);
}

static void test_multiline_quotes_backquotes_bom(void **state)
{
	(void)state;
	struct dotenv d;
	struct dotenv_error err;
	assert_int_equal(parse("\xef\xbb\xbf" "A=\"l1\r\nl2 \\\" still\nl3\" # c\n"
			       "B='x\ny'\nC=`back \"q\" 'q'`\nD='it\\'s'\nE=after\n",
			       &d, &err),
			 COFFER_OK);
	value_is(&d, "A", "l1\nl2 \\\" still\nl3");
	value_is(&d, "B", "x\ny");
	value_is(&d, "C", "back \"q\" 'q'");
	value_is(&d, "D", "it\\'s");
	value_is(&d, "E", "after");
	assert_int_equal(d.n, 5);
	dotenv_release(&d);
	/* a line number after a multi-line value is the file's */
	expect_error("A=\"1\n2\n3\"\nbad line\n", 0, COFFER_ERR_INVALID, 4, "line 4: no '=' in line", NULL);
}

static void on_note(void *ctx, size_t line, const char *name, size_t len)
{
	char *seen = ctx;
	size_t n = strlen(seen);
	snprintf(seen + n, 64 - n, "%zu:%.*s ", line, (int)len, name);
}

static void test_comment_notes(void **state)
{
	(void)state;
	struct dotenv d;
	struct dotenv_error err;
	char seen[64] = "";
	dotenv_init(&d);
	d.note = on_note;
	d.note_ctx = seen;
	assert_int_equal(dotenv_parse((const unsigned char *)"A=x\nB=pass #word\nC=\"y # z\"\nD=a#b\nE=\t# all\n", 42,
				      &d, &err),
			 COFFER_OK);
	value_is(&d, "B", "pass");
	value_is(&d, "D", "a#b");
	value_is(&d, "E", "");
	assert_string_equal(seen, "2:B 5:E ");
	dotenv_release(&d);
}

static void test_errors_name_the_line(void **state)
{
	(void)state;
	static const char nul_line[] = "A=1\nB=se\0cretnul\n";
	expect_error("A=1\nB=2\nsupersecretvalue\n", 0, COFFER_ERR_INVALID, 3, "line 3: no '=' in line",
		     "supersecretvalue");
	expect_error("A=1\n1BAD=secretvalue\n", 0, COFFER_ERR_INVALID, 2,
		     "line 2: invalid name (letters, digits and '_', not starting with a digit)", "secretvalue");
	expect_error("A-B=secretvalue\n", 0, COFFER_ERR_INVALID, 1,
		     "line 1: invalid name (letters, digits and '_', not starting with a digit)", "A-B");
	expect_error("=secretvalue\n", 0, COFFER_ERR_INVALID, 1,
		     "line 1: invalid name (letters, digits and '_', not starting with a digit)", "secretvalue");
	expect_error("A=1\r\n\r\nK=\"\"\"\r\nsecretline\r\nmore\r\n", 0, COFFER_ERR_INVALID, 3,
		     "line 3: unterminated \"\"\" (no line ends with \"\"\")", "secretline");
	expect_error("A=\"secretunterminated\n", 0, COFFER_ERR_INVALID, 1,
		     "line 1: unterminated double quote", "secretunterminated");
	expect_error("A=1\nB=`secret\nmore\n", 0, COFFER_ERR_INVALID, 2, "line 2: unterminated backquote", "secret");
	expect_error("A=\"secret\nmore\"x\n", 0, COFFER_ERR_INVALID, 2,
		     "line 2: unexpected text after the closing quote", "secret");
	expect_error("\nA='secretunterminated\n", 0, COFFER_ERR_INVALID, 2, "line 2: unterminated single quote",
		     "secretunterminated");
	expect_error("A=\"x\"secretafter\n", 0, COFFER_ERR_INVALID, 1,
		     "line 1: unexpected text after the closing quote", "secretafter");
	expect_error(nul_line, sizeof(nul_line) - 1, COFFER_ERR_INVALID, 2, "line 2: NUL byte in line", "cretnul");
	expect_error("export secretword\n", 0, COFFER_ERR_INVALID, 1, "line 1: no '=' in line", "secretword");
}

static void test_long_lines(void **state)
{
	(void)state;
	struct dotenv d;
	struct dotenv_error err;
	size_t size = DOTENV_LINE_MAX + 64;
	char *text = malloc(size);
	assert_non_null(text);

	/* a comment line of exactly DOTENV_LINE_MAX bytes, then one byte more */
	memcpy(text, "A=1\n#", 5);
	memset(text + 5, 's', DOTENV_LINE_MAX - 1);
	memcpy(text + 4 + DOTENV_LINE_MAX, "\nB=2\n", 5);
	assert_int_equal(parse_len(text, 4 + DOTENV_LINE_MAX + 5, &d, &err), COFFER_OK);
	value_is(&d, "B", "2");
	dotenv_release(&d);
	memset(text + 5, 's', DOTENV_LINE_MAX);
	memcpy(text + 5 + DOTENV_LINE_MAX, "\r\nB=2\n", 6); /* the CR does not count */
	expect_error(text, 5 + DOTENV_LINE_MAX + 6, COFFER_ERR_TOO_LARGE, 2, "line 2: line too long", "sss");

	/* a value of exactly DOTENV_VALUE_MAX bytes, then one byte more */
	memcpy(text, "V=", 2);
	memset(text + 2, 'v', DOTENV_VALUE_MAX);
	assert_int_equal(parse_len(text, 2 + DOTENV_VALUE_MAX, &d, &err), COFFER_OK);
	assert_int_equal(secret_len(dotenv_find(&d, "V")->value), DOTENV_VALUE_MAX);
	dotenv_release(&d);
	memset(text + 2, 'v', DOTENV_VALUE_MAX + 1);
	expect_error(text, 3 + DOTENV_VALUE_MAX, COFFER_ERR_TOO_LARGE, 1, "line 1: value longer than 65536 bytes",
		     "vvv");

	/* a """ value past the limit names its first line */
	memcpy(text, "\nV=\"\"\"\n", 7);
	memset(text + 7, 'v', DOTENV_VALUE_MAX);
	memcpy(text + 7 + DOTENV_VALUE_MAX, "\nw\"\"\"\n", 6);
	expect_error(text, 13 + DOTENV_VALUE_MAX, COFFER_ERR_TOO_LARGE, 2, "line 2: value longer than 65536 bytes",
		     "vvv");
	free(text);
}

static void test_names_and_put(void **state)
{
	(void)state;
	char name[DOTENV_NAME_MAX + 2];
	struct dotenv d;
	struct secret *v;

	assert_true(dotenv_name_valid("A", 1));
	assert_true(dotenv_name_valid("_a1", 3));
	assert_true(dotenv_name_valid("abc", 2)); /* only len bytes count */
	assert_false(dotenv_name_valid("1A", 2));
	assert_false(dotenv_name_valid("", 0));
	assert_false(dotenv_name_valid("A-B", 3));
	assert_false(dotenv_name_valid("A B", 3));
	assert_false(dotenv_name_valid("\xc3\xa9", 2));
	memset(name, 'N', sizeof(name));
	assert_true(dotenv_name_valid(name, DOTENV_NAME_MAX));
	assert_false(dotenv_name_valid(name, DOTENV_NAME_MAX + 1));

	dotenv_init(&d);
	assert_int_equal(secret_from("x", 1, &v), COFFER_OK);
	assert_int_equal(dotenv_put(&d, "bad-name", 8, v), COFFER_ERR_INVALID); /* v is freed */
	assert_int_equal(d.n, 0);
	for (int i = 0; i < DOTENV_ENTRIES_MAX; i++) {
		char n[16];
		assert_int_equal(fmt_into(n, sizeof(n), "N%d", i), COFFER_OK);
		assert_int_equal(dotenv_put(&d, n, strlen(n), NULL), COFFER_OK);
	}
	assert_int_equal(dotenv_put(&d, "N7", 2, NULL), COFFER_OK); /* a known name still fits */
	assert_int_equal(secret_from("x", 1, &v), COFFER_OK);
	assert_int_equal(dotenv_put(&d, "ONE_MORE", 8, v), COFFER_ERR_TOO_LARGE);
	assert_int_equal(d.n, DOTENV_ENTRIES_MAX);
	dotenv_release(&d);
}

static FILE *file_of(size_t len, char fill)
{
	FILE *f = tmpfile();
	assert_non_null(f);
	for (size_t i = 0; i < len; i++)
		assert_int_equal(fputc(fill, f), fill);
	rewind(f);
	return f;
}

static void test_read_limit(void **state)
{
	(void)state;
	struct secret *s = NULL;
	FILE *f = file_of(DOTENV_VALUE_MAX, 'q');
	assert_int_equal(dotenv_read(f, DOTENV_VALUE_MAX, &s), COFFER_OK);
	assert_int_equal(secret_len(s), DOTENV_VALUE_MAX);
	assert_int_equal(secret_cbytes(s)[DOTENV_VALUE_MAX - 1], 'q');
	secret_free(s);
	fclose(f);

	s = NULL;
	f = file_of(DOTENV_VALUE_MAX + 1, 'q');
	assert_int_equal(dotenv_read(f, DOTENV_VALUE_MAX, &s), COFFER_ERR_TOO_LARGE);
	assert_null(s);
	fclose(f);

	f = file_of(0, 'q');
	assert_int_equal(dotenv_read(f, DOTENV_VALUE_MAX, &s), COFFER_OK);
	assert_int_equal(secret_len(s), 0);
	secret_free(s);
	fclose(f);

	f = file_of(3, 'q');
	assert_int_equal(dotenv_read(f, 2, &s), COFFER_ERR_TOO_LARGE);
	fclose(f);
}

static void test_parse_file(void **state)
{
	(void)state;
	struct dotenv d;
	struct dotenv_error err = { 0, "" };
	FILE *f = tmpfile();
	assert_non_null(f);
	fputs("A=1\nB=\"two\"\n", f);
	rewind(f);
	dotenv_init(&d);
	assert_int_equal(dotenv_parse_file(f, &d, &err), COFFER_OK);
	value_is(&d, "A", "1");
	value_is(&d, "B", "two");
	dotenv_release(&d);
	fclose(f);

	f = tmpfile();
	fputs("A=1\nsecretonly\n", f);
	rewind(f);
	dotenv_init(&d);
	assert_int_equal(dotenv_parse_file(f, &d, &err), COFFER_ERR_INVALID);
	assert_string_equal(err.message, "line 2: no '=' in line");
	dotenv_release(&d);
	fclose(f);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_lines),
		cmocka_unit_test(test_comments_and_blank_lines),
		cmocka_unit_test(test_spaces_and_export),
		cmocka_unit_test(test_first_equals_hash_and_empty),
		cmocka_unit_test(test_double_quotes),
		cmocka_unit_test(test_single_quotes),
		cmocka_unit_test(test_triple_quotes),
		cmocka_unit_test(test_crlf),
		cmocka_unit_test(test_last_wins),
		cmocka_unit_test(test_errors_name_the_line),
		cmocka_unit_test(test_long_lines),
		cmocka_unit_test(test_names_and_put),
		cmocka_unit_test(test_read_limit),
		cmocka_unit_test(test_parse_file),
		cmocka_unit_test(test_multiline_quotes_backquotes_bom),
		cmocka_unit_test(test_comment_notes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
