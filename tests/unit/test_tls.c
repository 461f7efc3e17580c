/*
 * test_tls.c — TLS on the links (tls.h, the TLS parts of http_server.h and
 * http_client.h): loopback hosts; certificates made with tls_make_ca and
 * tls_make_cert served by http_server and verified by http_client; the
 * client's words for an untrusted, expired or other-name certificate; a
 * server refusing plain HTTP off loopback and bad key files; a client
 * refusing http:// off loopback before connecting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "fs.h"
#include "http_client.h"
#include "http_server.h"
#include "tls.h"

#define DAY 86400
#define PATH 512

static char dir[] = "/tmp/coffer-test-tls-XXXXXX";

static void path(char *out, const char *name)
{
	assert_true(snprintf(out, PATH, "%s/%s", dir, name) < PATH);
}

static enum coffer_err h_ping(struct http_request *req, void *ctx)
{
	(void)ctx;
	return http_reply(req, 200, "application/json", "{\"ok\":true}", 11);
}

static const struct http_route routes[] = { { "GET", "/v1/ping", 0, 0, h_ping, "ping" } };

/* CA "name" and a server certificate "name-srv" from it for names, valid from nb to na (days from now). */
static void make(const char *ca, const char *srv, const char *const *names, size_t n, long nb, long na)
{
	char c[PATH], k[PATH], sc[PATH], sk[PATH], tmp[PATH];
	time_t now = time(NULL);
	path(c, ca);
	assert_true(snprintf(tmp, PATH, "%s.key", c) < PATH);
	memcpy(k, tmp, PATH);
	assert_true(snprintf(tmp, PATH, "%s.pem", c) < PATH);
	memcpy(c, tmp, PATH);
	if (access(c, F_OK) != 0)
		assert_int_equal(tls_make_ca(c, k, "test CA", now - DAY, now + 365 * DAY), COFFER_OK);
	path(sc, srv);
	assert_true(snprintf(tmp, PATH, "%s.pem", sc) < PATH);
	memcpy(sk, sc, PATH);
	memcpy(sc, tmp, PATH);
	assert_true(snprintf(tmp, PATH, "%s.key", sk) < PATH);
	memcpy(sk, tmp, PATH);
	assert_int_equal(tls_make_cert(c, k, sc, sk, names, n, now + nb * DAY, now + na * DAY), COFFER_OK);
}

/* Serves srv.pem/srv.key on 127.0.0.1:0; *url gets "https://127.0.0.1:PORT". */
static struct http_server *serve(const char *srv, char *url, size_t size)
{
	char cert[PATH], key[PATH], name[PATH];
	struct http_server *s = NULL;
	assert_true(snprintf(name, PATH, "%s.pem", srv) < PATH);
	path(cert, name);
	assert_true(snprintf(name, PATH, "%s.key", srv) < PATH);
	path(key, name);
	struct http_server_config cfg = { .listen = "127.0.0.1:0", .tls_cert_file = cert, .tls_key_file = key };
	assert_int_equal(http_server_start(&cfg, routes, 1, NULL, &s), COFFER_OK);
	assert_true((size_t)snprintf(url, size, "https://127.0.0.1:%u", (unsigned)http_server_port(s)) < size);
	return s;
}

/* GET /v1/ping at url with the CA "ca" (NULL: the system's); returns the result, *err the client's words. */
static enum coffer_err ping(const char *url, const char *ca, char *err, size_t err_size)
{
	char ca_file[PATH];
	struct http_client *c = NULL;
	struct buf resp;
	int status = 0;
	if (ca) {
		char name[PATH];
		assert_true(snprintf(name, PATH, "%s.pem", ca) < PATH);
		path(ca_file, name);
	}
	assert_int_equal(http_client_set_ca_file(ca ? ca_file : NULL), COFFER_OK);
	assert_int_equal(http_client_new(url, 5000, &c), COFFER_OK);
	buf_init(&resp, 4096);
	enum coffer_err rc = http_client_request(c, "GET", "/v1/ping", NULL, 0, 0, &status, &resp);
	if (!rc)
		assert_int_equal(status, 200);
	assert_true((size_t)snprintf(err, err_size, "%s", http_client_last_error(c)) < err_size);
	buf_release(&resp);
	http_client_free(c);
	return rc;
}

static void test_loopback(void **state)
{
	(void)state;
	const char *yes[] = { "localhost", "LocalHost", "127.0.0.1", "127.1.2.3", "::1", "[::1]" };
	const char *no[] = { "0.0.0.0", "::", "[::]", "10.0.0.1", "128.0.0.1", "localhost.example", "example.org",
			     "::ffff:127.0.0.1", "", "[::1" };
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		assert_true(tls_host_is_loopback(yes[i]));
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		assert_false(tls_host_is_loopback(no[i]));
	assert_false(tls_host_is_loopback(NULL));
}

static void test_verified_link(void **state)
{
	(void)state;
	const char *names[] = { "localhost", "127.0.0.1", "::1" };
	char url[128], err[HTTP_CLIENT_ERROR_MAX], ready[PATH], line[256];
	make("ca", "good", names, 3, -1, 30);
	struct http_server *s = serve("good", url, sizeof(url));
	assert_int_equal(ping(url, "ca", err, sizeof(err)), COFFER_OK);
	assert_string_equal(err, "");
	/* the ready file says https */
	path(ready, "ready");
	assert_int_equal(http_server_write_ready_file(s, "127.0.0.1:0", ready), COFFER_OK);
	FILE *f = fopen(ready, "r");
	assert_non_null(f);
	assert_non_null(fgets(line, sizeof(line), f));
	fclose(f);
	assert_int_equal(strncmp(line, "https://127.0.0.1:", 18), 0);
	/* the system's trust store does not know this CA */
	assert_int_equal(ping(url, NULL, err, sizeof(err)), COFFER_ERR_CRYPTO);
	assert_non_null(strstr(err, "is not signed by a CA this system trusts"));
	http_server_stop(s);
}

static void test_bad_certificates(void **state)
{
	(void)state;
	const char *names[] = { "localhost", "127.0.0.1" };
	const char *other[] = { "api.example.org", "192.0.2.7" };
	char url[128], err[HTTP_CLIENT_ERROR_MAX], want[PATH + 64], ca_file[PATH];
	struct http_server *s;

	make("ca", "expired", names, 2, -10, -1);
	s = serve("expired", url, sizeof(url));
	assert_int_equal(ping(url, "ca", err, sizeof(err)), COFFER_ERR_CRYPTO);
	/* the date is the certificate's notAfter, read by a second handshake */
	char date[32];
	time_t na = time(NULL) - DAY;
	struct tm tm;
	assert_non_null(gmtime_r(&na, &tm));
	assert_true(strftime(date, sizeof(date), "%Y-%m-%d %H:%M", &tm) > 0);
	assert_true((size_t)snprintf(want, sizeof(want), "the certificate of %s has expired (not after %s", url + 8,
				     date) < sizeof(want));
	assert_int_equal(strncmp(err, want, strlen(want)), 0);
	assert_non_null(strstr(err, " UTC)"));
	http_server_stop(s);

	make("ca", "later", names, 2, 2, 30);
	s = serve("later", url, sizeof(url));
	assert_int_equal(ping(url, "ca", err, sizeof(err)), COFFER_ERR_CRYPTO);
	assert_non_null(strstr(err, "is not valid yet"));
	http_server_stop(s);

	make("ca", "othername", other, 2, -1, 30);
	s = serve("othername", url, sizeof(url));
	assert_int_equal(ping(url, "ca", err, sizeof(err)), COFFER_ERR_CRYPTO);
	assert_true((size_t)snprintf(want, sizeof(want), "the certificate of %s is for another name", url + 8) <
		    sizeof(want));
	assert_string_equal(err, want);
	http_server_stop(s);

	make("ca2", "untrusted", names, 2, -1, 30);
	s = serve("untrusted", url, sizeof(url));
	assert_int_equal(ping(url, "ca", err, sizeof(err)), COFFER_ERR_CRYPTO);
	path(ca_file, "ca.pem");
	assert_true((size_t)snprintf(want, sizeof(want), "the certificate of %s is not signed by the CA in '%s'",
				     url + 8, ca_file) < sizeof(want));
	assert_string_equal(err, want);
	assert_int_equal(ping(url, "ca2", err, sizeof(err)), COFFER_OK);
	http_server_stop(s);
}

static void test_plain_refused_off_loopback(void **state)
{
	(void)state;
	char err[HTTP_CLIENT_ERROR_MAX], why[HTTP_TLS_WHY_MAX];
	struct http_server *s = NULL;
	const char *plain_ok[] = { "127.0.0.1:0", "localhost:0", "[::1]:0" };
	const char *plain_no[] = { "0.0.0.0:0", "[::]:0", "192.0.2.1:0" };

	for (size_t i = 0; i < sizeof(plain_ok) / sizeof(plain_ok[0]); i++) {
		struct http_server_config cfg = { .listen = plain_ok[i] };
		assert_int_equal(http_server_check_tls(&cfg, why, sizeof(why)), COFFER_OK);
	}
	for (size_t i = 0; i < sizeof(plain_no) / sizeof(plain_no[0]); i++) {
		struct http_server_config cfg = { .listen = plain_no[i] };
		assert_int_equal(http_server_check_tls(&cfg, why, sizeof(why)), COFFER_ERR_FORBIDDEN);
		assert_non_null(strstr(why, "refusing to serve plain HTTP"));
		assert_int_equal(http_server_start(&cfg, routes, 1, NULL, &s), COFFER_ERR_FORBIDDEN);
		assert_null(s);
	}
	/* the client: nothing is sent to 192.0.2.1 (TEST-NET-1: a connect would time out, not be refused) */
	struct http_client *c = NULL;
	struct buf resp;
	int status = 0;
	assert_int_equal(http_client_new("http://192.0.2.1:4680", 60000, &c), COFFER_OK);
	buf_init(&resp, 4096);
	time_t t0 = time(NULL);
	assert_int_equal(http_client_request(c, "GET", "/v1/ping", NULL, 0, 0, &status, &resp), COFFER_ERR_FORBIDDEN);
	assert_true(time(NULL) - t0 < 2);
	assert_true((size_t)snprintf(err, sizeof(err), "%s", http_client_last_error(c)) < sizeof(err));
	assert_string_equal(err, "refusing plain http:// to 192.0.2.1:4680, which is not a loopback address: use https://");
	buf_release(&resp);
	http_client_free(c);
	/* https:// there is allowed (it would be verified) */
	assert_int_equal(http_client_new("https://192.0.2.1:4680", 1000, &c), COFFER_OK);
	http_client_free(c);
}

static void test_bad_tls_files(void **state)
{
	(void)state;
	const char *names[] = { "localhost" };
	char cert[PATH], key[PATH], open_key[PATH], other_key[PATH], why[HTTP_TLS_WHY_MAX];
	struct buf b;
	make("ca", "files", names, 1, -1, 30);
	make("ca", "files2", names, 1, -1, 30);
	path(cert, "files.pem");
	path(key, "files.key");
	path(other_key, "files2.key");
	path(open_key, "open.key");
	struct http_server_config cfg = { .listen = "0.0.0.0:0", .tls_cert_file = cert };
	assert_int_equal(http_server_check_tls(&cfg, why, sizeof(why)), COFFER_ERR_USAGE);
	assert_string_equal(why, "give both --tls-cert and --tls-key, or neither");
	cfg.tls_key_file = key;
	assert_int_equal(http_server_check_tls(&cfg, why, sizeof(why)), COFFER_OK);
	/* a key others may read */
	buf_init(&b, 65536);
	assert_int_equal(fs_read_file(key, &b), COFFER_OK);
	assert_int_equal(fs_write_atomic(open_key, b.ptr, b.len, 0644, 0), COFFER_OK);
	buf_release(&b);
	cfg.tls_key_file = open_key;
	assert_int_equal(http_server_check_tls(&cfg, why, sizeof(why)), COFFER_ERR_FORBIDDEN);
	assert_non_null(strstr(why, "may be read or written by group or others"));
	/* another certificate's key */
	cfg.tls_key_file = other_key;
	assert_int_equal(http_server_check_tls(&cfg, why, sizeof(why)), COFFER_ERR_CRYPTO);
	assert_non_null(strstr(why, "do not load as a PEM certificate and its key"));
	/* no such file */
	cfg.tls_cert_file = "/nonexistent/cert.pem";
	cfg.tls_key_file = key;
	assert_int_equal(http_server_check_tls(&cfg, why, sizeof(why)), COFFER_ERR_NOT_FOUND);
	/* a CA file that cannot be read is refused when set */
	assert_int_equal(http_client_set_ca_file("/nonexistent/ca.pem"), COFFER_ERR_NOT_FOUND);
}

static void test_make_cert_refusals(void **state)
{
	(void)state;
	char c[PATH], k[PATH], sc[PATH], sk[PATH];
	const char *bad[] = { "two words" };
	const char *ok[] = { "localhost" };
	time_t now = time(NULL);
	path(c, "ca.pem");
	path(k, "ca.key");
	path(sc, "x.pem");
	path(sk, "x.key");
	make("ca", "seed", ok, 1, -1, 1);
	assert_int_equal(tls_make_cert(c, k, sc, sk, bad, 1, now, now + DAY), COFFER_ERR_INVALID);
	assert_int_equal(tls_make_cert(c, k, sc, sk, ok, 0, now, now + DAY), COFFER_ERR_INVALID);
	assert_int_equal(tls_make_cert(c, k, sc, sk, ok, 1, now, now), COFFER_ERR_INVALID);
	assert_int_equal(tls_make_cert("/nonexistent/ca.pem", k, sc, sk, ok, 1, now, now + DAY), COFFER_ERR_NOT_FOUND);
	struct stat st;
	assert_int_equal(stat(k, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[PATH + 16];
	(void)state;
	if (snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir) < (int)sizeof(cmd))
		return system(cmd) == 0 ? 0 : -1;
	return -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loopback),
		cmocka_unit_test(test_verified_link),
		cmocka_unit_test(test_bad_certificates),
		cmocka_unit_test(test_plain_refused_off_loopback),
		cmocka_unit_test(test_bad_tls_files),
		cmocka_unit_test(test_make_cert_refusals),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
