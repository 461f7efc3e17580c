/* Unit tests of the base of the core library: errors, buffers, parsers,
 * secure memory, logging, files and encodings. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "buf.h"
#include "encode.h"
#include "err.h"
#include "fs.h"
#include "log.h"
#include "monotime.h"
#include "parse.h"
#include "secret.h"

static void test_err_table(void **state)
{
	(void)state;
	assert_int_equal(coffer_err_http_status(COFFER_OK), 200);
	assert_int_equal(coffer_err_exit_code(COFFER_OK), 0);
	assert_int_equal(coffer_err_http_status(COFFER_ERR_NOT_FOUND), 404);
	assert_int_equal(coffer_err_http_status(COFFER_ERR_UNAUTH), 401);
	assert_int_equal(coffer_err_http_status(COFFER_ERR_FORBIDDEN), 403);
	assert_int_equal(coffer_err_http_status(COFFER_ERR_CONFLICT), 409);
	assert_int_equal(coffer_err_http_status(COFFER_ERR_TOO_LARGE), 413);
	assert_int_equal(coffer_err_exit_code(COFFER_ERR_USAGE), 2);
	/* auth, not found and conflict have exit codes of their own */
	int seen[256] = { 0 };
	seen[coffer_err_exit_code(COFFER_ERR_UNAUTH)]++;
	seen[coffer_err_exit_code(COFFER_ERR_NOT_FOUND)]++;
	seen[coffer_err_exit_code(COFFER_ERR_CONFLICT)]++;
	seen[0]++, seen[1]++, seen[2]++;
	for (int i = 0; i < 256; i++)
		assert_true(seen[i] <= 1);
	/* every code has a distinct name that maps back to itself */
	for (int i = 0; i < COFFER_ERR__COUNT; i++) {
		assert_non_null(coffer_strerror((enum coffer_err)i));
		assert_int_equal(coffer_err_from_name(coffer_err_name((enum coffer_err)i)), i);
	}
	assert_int_equal(coffer_err_from_name("no_such_code"), COFFER_ERR_PROTOCOL);
	assert_string_equal(coffer_strerror(COFFER_ERR__COUNT), "unknown error");
}

static void test_buf_limits(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 8);
	assert_string_equal(b.ptr, "");
	assert_int_equal(buf_adds(&b, "abcd"), COFFER_OK);
	assert_int_equal(buf_addf(&b, "%d", 1234), COFFER_OK);
	assert_string_equal(b.ptr, "abcd1234");
	/* one byte past the maximum fails and leaves the content unchanged */
	assert_int_equal(buf_addch(&b, 'x'), COFFER_ERR_TOO_LARGE);
	assert_int_equal(buf_addf(&b, "%s", "y"), COFFER_ERR_TOO_LARGE);
	assert_int_equal(b.len, 8);
	assert_string_equal(b.ptr, "abcd1234");
	buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.ptr, "");
	buf_release(&b);

	char small[4];
	assert_int_equal(fmt_into(small, sizeof(small), "%s", "abc"), COFFER_OK);
	assert_string_equal(small, "abc");
	assert_int_equal(fmt_into(small, sizeof(small), "%s", "abcd"), COFFER_ERR_TOO_LARGE);
	assert_string_equal(small, "");
	assert_int_equal(str_copy(small, sizeof(small), "abcd"), COFFER_ERR_TOO_LARGE);
	assert_int_equal(str_copy(small, sizeof(small), "ab"), COFFER_OK);
	assert_string_equal(small, "ab");
}

static void test_buf_wiping(void **state)
{
	(void)state;
	struct buf b;
	buf_init_wiping(&b, 1 << 20);
	assert_int_equal(buf_adds(&b, "secret-bytes"), COFFER_OK);
	char *old = b.ptr;
	/* growing keeps the content and the mode */
	for (int i = 0; i < 200; i++)
		assert_int_equal(buf_adds(&b, "0123456789"), COFFER_OK);
	assert_true(b.wipe);
	assert_memory_equal(b.ptr, "secret-bytes0123", 16);
	assert_true(old != b.ptr);
	char *p = b.ptr;
	size_t len = b.len;
	buf_reset(&b);
	/* reset wipes what was there, not just the first byte */
	for (size_t i = 0; i < len; i++)
		assert_int_equal(p[i], 0);
	assert_true(b.wipe);
	buf_release(&b);
	assert_true(b.wipe);
}

static void test_parse_int(void **state)
{
	(void)state;
	int64_t v = 42;
	uint64_t u = 42;
	assert_int_equal(parse_int64("123", 0, 1000, &v), COFFER_OK);
	assert_int_equal(v, 123);
	assert_int_equal(parse_int64("-5", -10, 10, &v), COFFER_OK);
	assert_int_equal(v, -5);
	assert_int_equal(parse_int64("-9223372036854775808", INT64_MIN, INT64_MAX, &v), COFFER_OK);
	assert_true(v == INT64_MIN);
	assert_int_equal(parse_int64("9223372036854775808", INT64_MIN, INT64_MAX, &v), COFFER_ERR_INVALID);
	v = 7;
	const char *bad[] = { "", " 1", "1 ", "+1", "0x10", "1e3", "12a", "-", "--1", NULL };
	for (int i = 0; bad[i]; i++)
		assert_int_equal(parse_int64(bad[i], -100, 100, &v), COFFER_ERR_INVALID);
	assert_int_equal(v, 7); /* untouched on failure */
	assert_int_equal(parse_int64("-1", 0, 100, &v), COFFER_ERR_INVALID);
	assert_int_equal(parse_int64("101", 0, 100, &v), COFFER_ERR_INVALID);
	assert_int_equal(parse_int64("100", 0, 100, &v), COFFER_OK);
	assert_int_equal(parse_uint64("18446744073709551615", UINT64_MAX, &u), COFFER_OK);
	assert_true(u == UINT64_MAX);
	assert_int_equal(parse_uint64("18446744073709551616", UINT64_MAX, &u), COFFER_ERR_INVALID);
	assert_int_equal(parse_uint64("-1", UINT64_MAX, &u), COFFER_ERR_INVALID);
	/* a single digit above a small maximum (max - d must not wrap) */
	u = 1;
	assert_int_equal(parse_uint64("7", 5, &u), COFFER_ERR_INVALID);
	assert_int_equal(parse_uint64("9", 0, &u), COFFER_ERR_INVALID);
	assert_int_equal(parse_uint64("16", 15, &u), COFFER_ERR_INVALID);
	assert_int_equal(u, 1);
	assert_int_equal(parse_uint64("5", 5, &u), COFFER_OK);
	assert_int_equal(u, 5);
	assert_int_equal(parse_uint64("0", 0, &u), COFFER_OK);
	assert_int_equal(u, 0);
	assert_int_equal(parse_int64("7", -3, 5, &v), COFFER_ERR_INVALID);
	assert_int_equal(parse_int64("-7", -5, 5, &v), COFFER_ERR_INVALID);
}

static void test_parse_duration(void **state)
{
	(void)state;
	uint64_t ms = 1;
	assert_int_equal(parse_duration_ms("30s", UINT64_MAX, &ms), COFFER_OK);
	assert_int_equal(ms, 30000);
	assert_int_equal(parse_duration_ms("2m", UINT64_MAX, &ms), COFFER_OK);
	assert_int_equal(ms, 120000);
	assert_int_equal(parse_duration_ms("1h", UINT64_MAX, &ms), COFFER_OK);
	assert_int_equal(ms, 3600000);
	assert_int_equal(parse_duration_ms("1h30m", UINT64_MAX, &ms), COFFER_OK);
	assert_int_equal(ms, 5400000);
	assert_int_equal(parse_duration_ms("500ms", UINT64_MAX, &ms), COFFER_OK);
	assert_int_equal(ms, 500);
	assert_int_equal(parse_duration_ms("7d", UINT64_MAX, &ms), COFFER_OK);
	assert_int_equal(ms, 7ULL * 86400000);
	ms = 9;
	const char *bad[] = { "", "30", "s", "3x", "1.5h", "-1s", " 1s", "1s ", "1S", "99999999999999999999s", NULL };
	for (int i = 0; bad[i]; i++)
		assert_int_equal(parse_duration_ms(bad[i], UINT64_MAX, &ms), COFFER_ERR_INVALID);
	assert_int_equal(ms, 9);
	/* the maximum is inclusive */
	assert_int_equal(parse_duration_ms("10s", 10000, &ms), COFFER_OK);
	assert_int_equal(parse_duration_ms("10001ms", 10000, &ms), COFFER_ERR_INVALID);
}

static void test_parse_size_hostport(void **state)
{
	(void)state;
	uint64_t n = 0;
	assert_int_equal(parse_size("64KiB", UINT64_MAX, &n), COFFER_OK);
	assert_int_equal(n, 65536);
	assert_int_equal(parse_size("1M", UINT64_MAX, &n), COFFER_OK);
	assert_int_equal(n, 1048576);
	assert_int_equal(parse_size("512", UINT64_MAX, &n), COFFER_OK);
	assert_int_equal(n, 512);
	assert_int_equal(parse_size("1MiB", 1048576, &n), COFFER_OK);
	assert_int_equal(parse_size("1025KiB", 1048576, &n), COFFER_ERR_INVALID);
	assert_int_equal(parse_size("1 M", UINT64_MAX, &n), COFFER_ERR_INVALID);
	assert_int_equal(parse_size("1T", UINT64_MAX, &n), COFFER_ERR_INVALID);

	char host[64];
	uint16_t port = 0;
	assert_int_equal(parse_host_port("127.0.0.1:8080", host, sizeof(host), &port), COFFER_OK);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 8080);
	assert_int_equal(parse_host_port("[::1]:0", host, sizeof(host), &port), COFFER_OK);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 0);
	assert_int_equal(parse_host_port("localhost:65536", host, sizeof(host), &port), COFFER_ERR_INVALID);
	assert_int_equal(parse_host_port("localhost", host, sizeof(host), &port), COFFER_ERR_INVALID);
	assert_int_equal(parse_host_port(":80", host, sizeof(host), &port), COFFER_ERR_INVALID);
	assert_int_equal(parse_host_port("::1:80", host, sizeof(host), &port), COFFER_ERR_INVALID);
}

static void test_secret(void **state)
{
	(void)state;
	struct secret *a = NULL, *b = NULL, *c = NULL;
	assert_int_equal(secret_from("hunter2", 7, &a), COFFER_OK);
	assert_int_equal(secret_len(a), 7);
	assert_memory_equal(secret_cbytes(a), "hunter2", 7);
	assert_int_equal(secret_dup(a, &b), COFFER_OK);
	assert_true(secret_equal(a, b));
	secret_bytes(b)[0] ^= 1;
	assert_false(secret_equal(a, b));
	assert_int_equal(secret_truncate(a, 3), COFFER_OK);
	assert_int_equal(secret_len(a), 3);
	assert_int_equal(secret_cbytes(a)[3], 0); /* the tail is wiped */
	assert_int_equal(secret_truncate(a, 4), COFFER_ERR_INVALID);
	assert_false(secret_has_nul(a));
	assert_int_equal(secret_from("a\0b", 3, &c), COFFER_OK);
	assert_true(secret_has_nul(c));
	assert_true(ct_equal("abc", "abc", 3));
	assert_false(ct_equal("abc", "abd", 3));
	secret_free(a);
	secret_free(b);
	secret_free(c);
	secret_free(NULL);
	assert_int_equal(secret_new(0, &a), COFFER_OK);
	assert_int_equal(secret_len(a), 0);
	secret_free(a);
}

static char *read_all_fd(int fd)
{
	static char out[8192];
	lseek(fd, 0, SEEK_SET);
	ssize_t n = read(fd, out, sizeof(out) - 1);
	out[n < 0 ? 0 : n] = '\0';
	return out;
}

static void test_log(void **state)
{
	(void)state;
	char path[] = "/tmp/coffer-test-log-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	log_set_fd(fd);
	log_set_role("test");
	log_set_level(LOG_INFO);
	log_debug("hidden", LF_S("k", "v"));
	log_info("started", LF_S("addr", "127.0.0.1"), LF_I("port", 8080), LF_S("note", "two words"),
		 LF_S("nl", "a\nb\"c"));
	log_warn("bare");
	log_set_fd(2);
	const char *out = read_all_fd(fd);
	close(fd);
	assert_null(strstr(out, "hidden"));
	assert_non_null(strstr(out, " level=info role=test event=started addr=127.0.0.1 port=8080 "
				    "note=\"two words\" nl=\"a\\nb\\\"c\"\n"));
	assert_non_null(strstr(out, "level=warn role=test event=bare\n"));
	/* exactly two lines: one per event */
	int lines = 0;
	for (const char *p = out; *p; p++)
		lines += *p == '\n';
	assert_int_equal(lines, 2);
	enum log_level lv;
	assert_int_equal(log_level_parse("error", &lv), 0);
	assert_int_equal(lv, LOG_ERROR);
	assert_int_equal(log_level_parse("verbose", &lv), -1);
}

static void test_fs(void **state)
{
	(void)state;
	char dir[] = "/tmp/coffer-test-fs-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[256], nested[256];
	assert_int_equal(fmt_into(path, sizeof(path), "%s/key", dir), COFFER_OK);
	assert_int_equal(fmt_into(nested, sizeof(nested), "%s/a/b/c", dir), COFFER_OK);
	assert_int_equal(fs_mkdir_p(nested, 0700), COFFER_OK);
	struct stat st;
	assert_int_equal(stat(nested, &st), 0);
	assert_true(S_ISDIR(st.st_mode));

	mode_t old = umask(0);
	assert_int_equal(fs_write_atomic(path, "0123456789", 10, 0600, 1), COFFER_OK);
	umask(old);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* exclusive refuses to replace */
	assert_int_equal(fs_write_atomic(path, "x", 1, 0600, 1), COFFER_ERR_CONFLICT);
	struct secret *s = NULL;
	assert_int_equal(fs_read_private(path, 64, &s), COFFER_OK);
	assert_int_equal(secret_len(s), 10);
	assert_memory_equal(secret_cbytes(s), "0123456789", 10);
	secret_free(s);
	s = NULL;
	assert_int_equal(fs_read_private(path, 9, &s), COFFER_ERR_TOO_LARGE);
	/* a key file others can read is refused */
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(fs_read_private(path, 64, &s), COFFER_ERR_FORBIDDEN);
	assert_null(s);
	/* non-exclusive replaces, and no temporary file is left behind */
	assert_int_equal(fs_write_atomic(path, "new", 3, 0600, 0), COFFER_OK);
	struct buf b;
	buf_init(&b, 2);
	assert_int_equal(fs_read_file(path, &b), COFFER_ERR_TOO_LARGE);
	b.max = 64;
	assert_int_equal(fs_read_file(path, &b), COFFER_OK);
	assert_string_equal(b.ptr, "new");
	buf_release(&b);
	char cmd[512];
	assert_int_equal(fmt_into(cmd, sizeof(cmd), "test $(ls -A %s | wc -l) -eq 2 && rm -rf %s", dir, dir),
			 COFFER_OK);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(fs_read_file(path, &b), COFFER_ERR_NOT_FOUND);
}

static void test_hex(void **state)
{
	(void)state;
	unsigned char in[3] = { 0x00, 0xab, 0xff };
	char out[7];
	assert_int_equal(hex_encode(in, 3, out, sizeof(out)), COFFER_OK);
	assert_string_equal(out, "00abff");
	assert_int_equal(hex_encode(in, 3, out, 6), COFFER_ERR_TOO_LARGE);
	unsigned char back[3] = { 0 };
	assert_int_equal(hex_decode("00ABff", 6, back, 3), COFFER_OK);
	assert_memory_equal(back, in, 3);
	assert_int_equal(hex_decode("00abf", 5, back, 3), COFFER_ERR_INVALID);
	assert_int_equal(hex_decode("00abfg", 6, back, 3), COFFER_ERR_INVALID);
	struct buf b;
	buf_init(&b, 16);
	assert_int_equal(hex_decode_buf("0102", 4, &b), COFFER_OK);
	assert_int_equal(b.len, 2);
	assert_int_equal(hex_decode_buf("010", 3, &b), COFFER_ERR_INVALID);
	buf_release(&b);
}

static void test_b64url(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 1024);
	assert_int_equal(b64url_encode("\xfb\xff", 2, &b), COFFER_OK);
	assert_string_equal(b.ptr, "-_8");
	assert_int_equal(b64url_decode("-_8", 3, &b), COFFER_OK);
	assert_int_equal(b.len, 2);
	assert_memory_equal(b.ptr, "\xfb\xff", 2);
	/* padding, the standard alphabet, whitespace, a lone char and
	 * non-zero trailing bits are all refused */
	const char *bad[] = { "-_8=", "+/8", "-_ 8", "A", "-_9", NULL };
	for (int i = 0; bad[i]; i++)
		assert_int_equal(b64url_decode(bad[i], strlen(bad[i]), &b), COFFER_ERR_INVALID);
	assert_int_equal(b64url_decode("", 0, &b), COFFER_OK);
	assert_int_equal(b.len, 0);
	/* libsodium 1.0.18 reads any byte 0x80-0xFF as '_': one spelling only */
	for (int c = 0x80; c <= 0xff; c++) {
		char s[4] = { '-', '_', '_', '_' };
		s[3] = (char)c;
		assert_int_equal(b64url_decode(s, 4, &b), COFFER_ERR_INVALID);
		s[1] = (char)c;
		assert_int_equal(b64url_decode(s, 2, &b), COFFER_ERR_INVALID);
	}
	assert_int_equal(b64url_decode("-___", 4, &b), COFFER_OK);
	buf_release(&b);
}

/* The standard alphabet with padding (secret values), as strict. */
static void test_b64_std(void **state)
{
	(void)state;
	unsigned char out[8];
	size_t n = 0;
	assert_int_equal(b64_decode_into(B64_STD, "+/8=", 4, out, sizeof(out), &n), COFFER_OK);
	assert_int_equal(n, 2);
	assert_memory_equal(out, "\xfb\xff", 2);
	assert_int_equal(b64_decode_into(B64_STD, "QQ==", 4, out, sizeof(out), &n), COFFER_OK);
	assert_int_equal(n, 1);
	assert_int_equal(b64_decode_into(B64_STD, "", 0, out, sizeof(out), &n), COFFER_OK);
	assert_int_equal(n, 0);
	/* unpadded, the url alphabet, bad trailing bits, padding inside, too much padding */
	const char *bad[] = { "+/8", "-_8=", "+/9=", "QR==", "QQ=A", "Q===", "====", "QQ==QQ==", " QQ=", NULL };
	for (int i = 0; bad[i]; i++)
		assert_int_equal(b64_decode_into(B64_STD, bad[i], strlen(bad[i]), out, sizeof(out), &n), COFFER_ERR_INVALID);
	for (int c = 0x80; c <= 0xff; c++) {
		char s[4] = { 'A', 'A', 'A', (char)c };
		assert_int_equal(b64_decode_into(B64_STD, s, 4, out, sizeof(out), &n), COFFER_ERR_INVALID);
	}
	assert_int_equal(b64_decode_into(B64_STD, "AAAAAAAA", 8, out, 5, &n), COFFER_ERR_TOO_LARGE);
}

/* Hex key files: the key or the hex as written, a final newline allowed; the length, the digits and the mode checked. */
static void test_fs_hex_key(void **state)
{
	(void)state;
	char dir[] = "/tmp/coffer-test-hexkey-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[256];
	assert_int_equal(fmt_into(path, sizeof(path), "%s/key", dir), COFFER_OK);
	struct secret *s = NULL;
	assert_int_equal(fs_read_hex_key(path, 4, &s), COFFER_ERR_NOT_FOUND);

	assert_int_equal(fs_write_atomic(path, "0a1B2c3D\r\n", 10, 0600, 0), COFFER_OK);
	assert_int_equal(fs_read_hex_key(path, 4, &s), COFFER_OK);
	const unsigned char want[4] = { 0x0a, 0x1b, 0x2c, 0x3d };
	assert_int_equal(secret_len(s), 4);
	assert_memory_equal(secret_cbytes(s), want, 4);
	secret_free(s);
	s = NULL;
	assert_int_equal(fs_read_hex_text(path, 4, &s), COFFER_OK);
	assert_int_equal(secret_len(s), 8);
	assert_memory_equal(secret_cbytes(s), "0a1B2c3D", 8);
	secret_free(s);
	s = NULL;

	/* the wrong length (short, long, something after it), not hex */
	assert_int_equal(fs_read_hex_key(path, 5, &s), COFFER_ERR_INVALID);
	assert_int_equal(fs_read_hex_text(path, 3, &s), COFFER_ERR_INVALID);
	assert_int_equal(fs_write_atomic(path, "0a1b2c3d x\n", 11, 0600, 0), COFFER_OK);
	assert_int_equal(fs_read_hex_key(path, 4, &s), COFFER_ERR_INVALID);
	assert_int_equal(fs_write_atomic(path, "0a1b2c3g\n", 9, 0600, 0), COFFER_OK);
	assert_int_equal(fs_read_hex_key(path, 4, &s), COFFER_ERR_INVALID);
	assert_int_equal(fs_read_hex_text(path, 4, &s), COFFER_ERR_INVALID);
	assert_null(s);

	/* a file group or others may read is refused before its content is looked at */
	mode_t old = umask(0);
	assert_int_equal(fs_write_atomic(path, "0a1b2c3d\n", 9, 0640, 0), COFFER_OK);
	umask(old);
	assert_int_equal(fs_read_hex_key(path, 4, &s), COFFER_ERR_FORBIDDEN);
	assert_int_equal(fs_read_hex_text(path, 4, &s), COFFER_ERR_FORBIDDEN);
	assert_null(s);

	/* larger than any key file */
	char big[FS_HEX_KEY_FILE_MAX + 2];
	memset(big, 'a', sizeof(big));
	assert_int_equal(fs_write_atomic(path, big, sizeof(big), 0600, 0), COFFER_OK);
	assert_int_equal(fs_read_hex_key(path, 4, &s), COFFER_ERR_TOO_LARGE);
	assert_null(s);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

/* Big-endian numbers: the byte order, the low bytes only, and back. */
static void test_be(void **state)
{
	(void)state;
	unsigned char b[8];
	const unsigned char want[8] = { 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08 };
	be_put(b, 0x0102030405060708ULL, 8);
	assert_memory_equal(b, want, 8);
	assert_int_equal(be_get(b, 8), 0x0102030405060708ULL);
	memset(b, 0xee, sizeof(b));
	be_put(b, 0xaabbccddULL, 2);
	assert_int_equal(b[0], 0xcc);
	assert_int_equal(b[1], 0xdd);
	assert_int_equal(b[2], 0xee);
	assert_int_equal(be_get(b, 2), 0xccdd);
	assert_int_equal(be_get(want + 4, 4), 0x05060708);
}

/* Deadlines: the nanoseconds carry into the seconds, a negative wait is now, and the clock does not go back. */
static void test_monotime(void **state)
{
	(void)state;
	struct timespec before, at, neg;
	int64_t t0 = monotime_ms();
	clock_gettime(CLOCK_MONOTONIC, &before);
	monotime_deadline_in(&at, 2999);
	assert_true(at.tv_nsec >= 0 && at.tv_nsec < 1000000000L);
	int64_t gap_ms = (int64_t)(at.tv_sec - before.tv_sec) * 1000 + (at.tv_nsec - before.tv_nsec) / 1000000;
	assert_true(gap_ms >= 2999 && gap_ms < 2999 + 1000);
	monotime_deadline_in(&neg, -5000);
	assert_true(neg.tv_nsec >= 0 && neg.tv_nsec < 1000000000L);
	assert_true(neg.tv_sec > before.tv_sec || (neg.tv_sec == before.tv_sec && neg.tv_nsec >= before.tv_nsec));
	assert_true(neg.tv_sec < at.tv_sec);
	assert_true(monotime_ms() >= t0);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_err_table),	 cmocka_unit_test(test_buf_limits), cmocka_unit_test(test_buf_wiping),
		cmocka_unit_test(test_parse_int),	 cmocka_unit_test(test_parse_duration),
		cmocka_unit_test(test_parse_size_hostport), cmocka_unit_test(test_secret),
		cmocka_unit_test(test_log),		 cmocka_unit_test(test_fs), cmocka_unit_test(test_fs_hex_key),
		cmocka_unit_test(test_hex),		 cmocka_unit_test(test_b64url),
		cmocka_unit_test(test_b64_std),	 cmocka_unit_test(test_monotime),
		cmocka_unit_test(test_be),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
