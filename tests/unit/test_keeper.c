/*
 * test_keeper.c — the keeper: its state folder and master key, the keys it
 * derives, POST /v1/app-keys through its own server on 127.0.0.1:0 (SQLite
 * store in a temp folder), and app key loading against a store that lies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "boottoken.h"
#include "buf.h"
#include "delivery.h"
#include "encode.h"
#include "fs.h"
#include "http_client.h"
#include "http_server.h"
#include "json.h"
#include "keeper.h"
#include "log.h"
#include "open_signer.h"
#include "secret.h"
#include "store.h"
#include "vault.h"

#define PATH_SIZE 512
#define ONE_MB ((size_t)1 << 20)
#define RAW_REPLY_MAX 8192
#define RAW_REQUEST_MAX 16384
#define HEX32_SIZE (HEX_LEN(32) + 1)
#define RACERS 8

/* An enrolled host of the fixture, with its private keys. */
struct test_host {
	char id[STORE_ID_SIZE];
	struct secret *sign_sk; /* Ed25519, 64-byte form */
	struct secret *seal_sk; /* X25519 */
};

static struct {
	char dir[PATH_SIZE];
	char state[PATH_SIZE];
	char db_path[PATH_SIZE];
	char db_url[PATH_SIZE];
	char ready[PATH_SIZE];
	char log_path[PATH_SIZE];
	char base_url[64];
	char credential_hex[HEX32_SIZE];
	unsigned char keeper_pub[JWS_PK_LEN]; /* read back from keeper.pub */
	struct keeper_paths paths;
	struct keeper *keeper;
	struct store *store; /* the test's own connection */
	struct store_org org;
	int log_fd;
	unsigned app_seq;
	struct secret *boot_sk;        /* the api's boot-token key, loaded from api.boot.key as the api does */
	struct test_host host_a, host_b;
	struct test_deployer deployer; /* an admin of the org for every app: signs what the open tests open */
} fx;

/* ---- helpers ---- */

static void read_text(const char *path, struct buf *b)
{
	buf_init(b, ONE_MB);
	assert_int_equal(fs_read_file(path, b), COFFER_OK);
}

static mode_t file_mode(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return st.st_mode & 07777;
}

static void write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	unlink(path);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

/* A new app in the test org; its id goes to id. */
static void new_app(char id[STORE_ID_SIZE])
{
	char name[64];
	struct store_app app;
	assert_true(snprintf(name, sizeof(name), "app-%u", ++fx.app_seq) < (int)sizeof(name));
	assert_int_equal(store_app_create(fx.store, fx.org.id, name, 0, &app), COFFER_OK);
	memcpy(id, app.id, STORE_ID_SIZE);
}

static struct keeper_keys derive_keys(void)
{
	struct secret *master = NULL;
	struct keeper_keys keys;
	assert_int_equal(keeper_master_from_file(fx.paths.key, &master), COFFER_OK);
	assert_int_equal(keeper_keys_derive(master, &keys), COFFER_OK);
	secret_free(master);
	return keys;
}

/* POST /v1/app-keys {"app_id": app_id} with the given bearer token (NULL: none). */
static int post_app_key(const char *token, const char *app_id, json_t **out)
{
	struct http_client *c = NULL;
	struct buf resp;
	char body[512];
	int status = 0;
	assert_true(snprintf(body, sizeof(body), "{\"app_id\":\"%s\"}", app_id) < (int)sizeof(body));
	assert_int_equal(http_client_new(fx.base_url, 10000, &c), COFFER_OK);
	if (token) {
		struct secret *t = NULL;
		assert_int_equal(secret_from(token, strlen(token), &t), COFFER_OK);
		assert_int_equal(http_client_set_token(c, t), COFFER_OK);
		secret_free(t);
	}
	buf_init(&resp, ONE_MB);
	assert_int_equal(http_client_request(c, "POST", "/v1/app-keys", body, strlen(body), ONE_MB, &status, &resp),
			 COFFER_OK);
	*out = NULL;
	if (resp.len)
		assert_int_equal(json_parse_limited(resp.ptr, resp.len, ONE_MB, 8, out, NULL), COFFER_OK);
	buf_release(&resp);
	http_client_free(c);
	return status;
}

static void assert_error_code(const json_t *doc, const char *code)
{
	json_t *err = NULL;
	const char *got = NULL;
	assert_non_null(doc);
	assert_int_equal(json_get_object(doc, "error", 1, &err, NULL), COFFER_OK);
	assert_int_equal(json_get_string(err, "code", 1, &got, NULL, NULL), COFFER_OK);
	assert_string_equal(got, code);
}

/* A raw request, so that any Authorization header can be sent; returns the status. */
static int raw_post(const char *auth_line, const char *body)
{
	struct sockaddr_in sa;
	struct timeval tv = { .tv_sec = 10, .tv_usec = 0 };
	char req[RAW_REQUEST_MAX], reply[RAW_REPLY_MAX];
	int fd = socket(AF_INET, SOCK_STREAM, 0), status = 0;
	assert_true(fd >= 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(keeper_port(fx.keeper));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	int n = snprintf(req, sizeof(req),
			 "POST /v1/app-keys HTTP/1.1\r\nHost: keeper\r\n%s%sContent-Type: application/json\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
			 auth_line ? auth_line : "", auth_line ? "\r\n" : "", strlen(body), body);
	assert_true(n > 0 && n < (int)sizeof(req));
	assert_int_equal(send(fd, req, (size_t)n, 0), n);
	ssize_t got = recv(fd, reply, sizeof(reply) - 1, 0);
	assert_true(got > 12);
	reply[got] = '\0';
	assert_int_equal(sscanf(reply, "HTTP/1.1 %d", &status), 1);
	close(fd);
	return status;
}

/* Rewrites one blob of an app key row behind the store's back (an attacker with write access). */
static void tamper_row(const char *app_id, int wrapped, const void *blob, size_t len)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	const char *sql = wrapped ? "UPDATE app_keys SET wrapped_private = ?1 WHERE app_id = ?2 AND version = 1"
				  : "UPDATE app_keys SET public_key = ?1 WHERE app_id = ?2 AND version = 1";
	assert_int_equal(sqlite3_open(fx.db_path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_busy_timeout(db, 10000), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_bind_blob(st, 1, blob, (int)len, SQLITE_TRANSIENT), SQLITE_OK);
	assert_int_equal(sqlite3_bind_text(st, 2, app_id, -1, SQLITE_TRANSIENT), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	assert_int_equal(sqlite3_changes(db), 1);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void get_row(const char *app_id, struct store_app_key *row)
{
	assert_int_equal(store_app_key_get(fx.store, app_id, 1, row), COFFER_OK);
}

static int log_contains(const char *needle)
{
	struct buf b;
	read_text(fx.log_path, &b);
	int found = strstr(b.ptr, needle) != NULL;
	buf_release(&b);
	return found;
}

/* ---- the state folder and the master key ---- */

static void test_init_files(void **state)
{
	(void)state;
	struct buf pub, cred, key_before, key_after;
	struct keeper_keys keys = derive_keys();
	char hex[HEX32_SIZE];

	assert_int_equal(file_mode(fx.state) & 0777, 0700);
	assert_int_equal(file_mode(fx.paths.key), 0600);
	assert_int_equal(file_mode(fx.paths.pub), 0644);
	assert_int_equal(file_mode(fx.paths.credential), 0600);

	read_text(fx.paths.key, &key_before);
	assert_int_equal(key_before.len, VAULT_MASTER_LEN);
	read_text(fx.paths.pub, &pub);
	assert_int_equal(pub.len, HEX_LEN(JWS_PK_LEN) + 1);
	assert_int_equal(pub.ptr[pub.len - 1], '\n');
	assert_int_equal(hex_encode(keys.signing_pk, JWS_PK_LEN, hex, sizeof(hex)), COFFER_OK);
	assert_memory_equal(pub.ptr, hex, HEX_LEN(JWS_PK_LEN));
	read_text(fx.paths.credential, &cred);
	assert_int_equal(cred.len, HEX_LEN(VAULT_CREDENTIAL_LEN) + 1);
	assert_int_equal(hex_encode(secret_cbytes(keys.credential), VAULT_CREDENTIAL_LEN, hex, sizeof(hex)),
			 COFFER_OK);
	assert_memory_equal(cred.ptr, hex, HEX_LEN(VAULT_CREDENTIAL_LEN));
	sodium_memzero(hex, sizeof(hex));

	/* A second init keeps the key as it was, and has nothing to add. */
	struct keeper_paths again;
	int existed = 0;
	unsigned added = 99;
	assert_int_equal(keeper_init(fx.state, &again, &existed, &added), COFFER_OK);
	assert_int_equal(existed, 1);
	assert_int_equal(added, 0);
	assert_string_equal(again.boot_key, fx.paths.boot_key);
	read_text(fx.paths.key, &key_after);
	assert_int_equal(key_after.len, key_before.len);
	assert_memory_equal(key_after.ptr, key_before.ptr, key_before.len);
	assert_int_equal(file_mode(fx.paths.key), 0600);

	/* A fresh folder gets a different master key. */
	char other[PATH_SIZE];
	struct keeper_paths op;
	struct buf other_key;
	assert_true(snprintf(other, sizeof(other), "%s/other/nested", fx.dir) < (int)sizeof(other));
	assert_int_equal(keeper_init(other, &op, NULL, NULL), COFFER_OK);
	read_text(op.key, &other_key);
	assert_int_equal(other_key.len, VAULT_MASTER_LEN);
	assert_memory_not_equal(other_key.ptr, key_before.ptr, VAULT_MASTER_LEN);

	buf_release(&other_key);
	buf_release(&key_after);
	buf_release(&key_before);
	buf_release(&cred);
	buf_release(&pub);
	keeper_keys_release(&keys);
}

static void test_master_file_refused(void **state)
{
	(void)state;
	char path[PATH_SIZE];
	struct buf key;
	struct secret *m = NULL;
	assert_true(snprintf(path, sizeof(path), "%s/copy.key", fx.dir) < (int)sizeof(path));
	read_text(fx.paths.key, &key);

	write_file(path, key.ptr, key.len, 0644);
	assert_int_equal(keeper_master_from_file(path, &m), COFFER_ERR_FORBIDDEN);
	assert_null(m);
	write_file(path, key.ptr, key.len, 0640);
	assert_int_equal(keeper_master_from_file(path, &m), COFFER_ERR_FORBIDDEN);
	write_file(path, key.ptr, key.len, 0602);
	assert_int_equal(keeper_master_from_file(path, &m), COFFER_ERR_FORBIDDEN);
	write_file(path, key.ptr, 16, 0600);
	assert_int_equal(keeper_master_from_file(path, &m), COFFER_ERR_INVALID);
	write_file(path, "0123456789012345678901234567890123456789", 40, 0600);
	assert_int_equal(keeper_master_from_file(path, &m), COFFER_ERR_INVALID);
	assert_null(m);
	unlink(path);
	assert_int_equal(keeper_master_from_file(path, &m), COFFER_ERR_NOT_FOUND);

	/* The same bytes at 0600 are accepted. */
	write_file(path, key.ptr, key.len, 0600);
	assert_int_equal(keeper_master_from_file(path, &m), COFFER_OK);
	assert_int_equal(secret_len(m), VAULT_MASTER_LEN);
	assert_memory_equal(secret_cbytes(m), key.ptr, VAULT_MASTER_LEN);
	secret_free(m);
	unlink(path);
	buf_release(&key);
}

static void test_master_env(void **state)
{
	(void)state;
	unsigned char raw[VAULT_MASTER_LEN];
	char hex[HEX_LEN(VAULT_MASTER_LEN) + 1];
	struct secret *m = NULL;

	unsetenv(KEEPER_MASTER_ENV);
	assert_int_equal(keeper_master_from_env(&m), COFFER_ERR_NOT_FOUND);

	randombytes_buf(raw, sizeof(raw));
	assert_int_equal(hex_encode(raw, sizeof(raw), hex, sizeof(hex)), COFFER_OK);
	assert_int_equal(setenv(KEEPER_MASTER_ENV, hex, 1), 0);
	assert_int_equal(keeper_master_from_env(&m), COFFER_OK);
	assert_null(getenv(KEEPER_MASTER_ENV));
	assert_int_equal(secret_len(m), VAULT_MASTER_LEN);
	assert_memory_equal(secret_cbytes(m), raw, sizeof(raw));
	secret_free(m);
	m = NULL;

	/* Too short, not hex: refused, and unset all the same. */
	hex[HEX_LEN(VAULT_MASTER_LEN) - 2] = '\0';
	assert_int_equal(setenv(KEEPER_MASTER_ENV, hex, 1), 0);
	assert_int_equal(keeper_master_from_env(&m), COFFER_ERR_INVALID);
	assert_null(getenv(KEEPER_MASTER_ENV));
	assert_int_equal(setenv(KEEPER_MASTER_ENV, "zz", 1), 0);
	assert_int_equal(keeper_master_from_env(&m), COFFER_ERR_INVALID);
	assert_null(getenv(KEEPER_MASTER_ENV));
	assert_null(m);
	sodium_memzero(raw, sizeof(raw));
	sodium_memzero(hex, sizeof(hex));
}

static void test_start_errors(void **state)
{
	(void)state;
	struct secret *master = NULL;
	struct keeper *k = NULL;
	assert_int_equal(keeper_master_from_file(fx.paths.key, &master), COFFER_OK);
	struct keeper_config bad_store = { .store_url = "mysql://nowhere", .listen = "127.0.0.1:0" };
	assert_int_equal(keeper_start(&bad_store, master, &k), COFFER_ERR_INVALID);
	assert_null(k);
	char busy[64];
	assert_true(snprintf(busy, sizeof(busy), "127.0.0.1:%u", (unsigned)keeper_port(fx.keeper)) <
		    (int)sizeof(busy));
	struct keeper_config taken = { .store_url = fx.db_url, .listen = busy };
	assert_int_equal(keeper_start(&taken, master, &k), COFFER_ERR_IO);
	assert_null(k);
	secret_free(master);
}

/* ---- the server ---- */

static void test_ready_file(void **state)
{
	(void)state;
	struct buf b;
	char want[64];
	read_text(fx.ready, &b);
	assert_true(snprintf(want, sizeof(want), "http://127.0.0.1:%u\n", (unsigned)keeper_port(fx.keeper)) <
		    (int)sizeof(want));
	assert_true(keeper_port(fx.keeper) != 0);
	assert_string_equal(b.ptr, want);
	assert_int_equal(file_mode(fx.ready), 0644);
	buf_release(&b);
}

static void test_health(void **state)
{
	(void)state;
	struct http_client *c = NULL;
	json_t *doc = NULL;
	const char *s = NULL;
	static const char *const fields[] = { "status", "role", "version", NULL };
	assert_int_equal(http_client_new(fx.base_url, 10000, &c), COFFER_OK);
	assert_int_equal(http_client_call_json(c, "GET", "/v1/health", NULL, 0, &doc, NULL, 0), COFFER_OK);
	assert_int_equal(json_check_fields(doc, fields, NULL), COFFER_OK);
	assert_int_equal(json_get_string(doc, "status", 1, &s, NULL, NULL), COFFER_OK);
	assert_string_equal(s, "ok");
	assert_int_equal(json_get_string(doc, "role", 1, &s, NULL, NULL), COFFER_OK);
	assert_string_equal(s, "keeper");
	assert_int_equal(json_get_string(doc, "version", 1, &s, NULL, NULL), COFFER_OK);
	assert_string_equal(s, "0.1.0");
	json_decref(doc);
	http_client_free(c);
}

static void test_app_keys_unauthenticated(void **state)
{
	(void)state;
	char app[STORE_ID_SIZE], body[128], line[256], wrong[HEX32_SIZE];
	unsigned char rnd[32];
	struct store_app_key row;
	json_t *doc = NULL;

	new_app(app);
	assert_true(snprintf(body, sizeof(body), "{\"app_id\":\"%s\"}", app) < (int)sizeof(body));

	assert_int_equal(post_app_key(NULL, app, &doc), 401);
	assert_error_code(doc, "unauthenticated");
	json_decref(doc);

	randombytes_buf(rnd, sizeof(rnd));
	assert_int_equal(hex_encode(rnd, sizeof(rnd), wrong, sizeof(wrong)), COFFER_OK);
	assert_int_equal(post_app_key(wrong, app, &doc), 401);
	assert_error_code(doc, "unauthenticated");
	json_decref(doc);

	/* The right credential with its last digit changed. */
	memcpy(wrong, fx.credential_hex, sizeof(wrong));
	wrong[HEX_LEN(32) - 1] = wrong[HEX_LEN(32) - 1] == '0' ? '1' : '0';
	assert_int_equal(post_app_key(wrong, app, &doc), 401);
	json_decref(doc);
	/* Truncated or padded: not the credential. */
	memcpy(wrong, fx.credential_hex, sizeof(wrong));
	wrong[HEX_LEN(32) - 1] = '\0';
	assert_int_equal(post_app_key(wrong, app, &doc), 401);
	json_decref(doc);
	assert_true(snprintf(line, sizeof(line), "Authorization: Bearer %s0", fx.credential_hex) < (int)sizeof(line));
	assert_int_equal(raw_post(line, body), 401);
	assert_true(snprintf(line, sizeof(line), "Authorization: Basic %s", fx.credential_hex) < (int)sizeof(line));
	assert_int_equal(raw_post(line, body), 401);
	assert_true(snprintf(line, sizeof(line), "Authorization: %s", fx.credential_hex) < (int)sizeof(line));
	assert_int_equal(raw_post(line, body), 401);
	assert_int_equal(raw_post("Authorization: Bearer", body), 401);
	assert_int_equal(raw_post(NULL, body), 401);

	/* Nothing was created. */
	assert_int_equal(store_app_key_get(fx.store, app, 1, &row), COFFER_ERR_NOT_FOUND);
	assert_int_equal(store_app_key_get(fx.store, app, 0, &row), COFFER_ERR_NOT_FOUND);

	/* The same raw request with the right credential goes through. */
	assert_true(snprintf(line, sizeof(line), "Authorization: Bearer %s", fx.credential_hex) < (int)sizeof(line));
	assert_int_equal(raw_post(line, body), 201);
	assert_int_equal(store_app_key_get(fx.store, app, 1, &row), COFFER_OK);
}

static void b64_field(const json_t *doc, const char *key, unsigned char *out, size_t len)
{
	const char *s = NULL;
	size_t slen = 0;
	struct buf b;
	assert_int_equal(json_get_string(doc, key, 1, &s, &slen, NULL), COFFER_OK);
	buf_init(&b, 1024);
	assert_int_equal(b64url_decode(s, slen, &b), COFFER_OK);
	assert_int_equal(b.len, len);
	memcpy(out, b.ptr, len);
	buf_release(&b);
}

static void test_app_keys_create_once(void **state)
{
	(void)state;
	static const char *const fields[] = { "app_id", "version", "public_key", "signature", NULL };
	char app[STORE_ID_SIZE];
	unsigned char pk[HPKE_PK_LEN], sig[VAULT_SIG_LEN];
	struct store_app_key row, row2;
	json_t *doc = NULL;
	const char *got_id = NULL;
	int64_t version = 0;

	new_app(app);
	assert_int_equal(post_app_key(fx.credential_hex, app, &doc), 201);
	assert_int_equal(json_check_fields(doc, fields, NULL), COFFER_OK);
	assert_int_equal(json_get_string(doc, "app_id", 1, &got_id, NULL, NULL), COFFER_OK);
	assert_string_equal(got_id, app);
	assert_int_equal(json_get_int(doc, "version", 1, 0, 100, &version, NULL), COFFER_OK);
	assert_int_equal(version, 1);
	b64_field(doc, "public_key", pk, sizeof(pk));
	b64_field(doc, "signature", sig, sizeof(sig));
	json_decref(doc);

	/* The signature verifies with keeper.pub, for this app and version only. */
	assert_int_equal(vault_app_key_verify(fx.keeper_pub, app, 1, pk, sig), COFFER_OK);
	assert_int_equal(vault_app_key_verify(fx.keeper_pub, app, 2, pk, sig), COFFER_ERR_CRYPTO);

	/* The row: public_key = pk || sig, wrapped key of the documented length. */
	get_row(app, &row);
	assert_int_equal(row.version, 1);
	assert_int_equal(row.public_key_len, KEEPER_PK_BLOB_LEN);
	assert_memory_equal(row.public_key, pk, HPKE_PK_LEN);
	assert_memory_equal(row.public_key + HPKE_PK_LEN, sig, VAULT_SIG_LEN);
	assert_int_equal(row.wrapped_private_len, KEEPER_WRAPPED_LEN);
	assert_int_equal(vault_app_key_verify(fx.keeper_pub, app, 1, row.public_key, row.public_key + HPKE_PK_LEN),
			 COFFER_OK);

	/* A second call is a conflict and changes nothing. */
	assert_int_equal(post_app_key(fx.credential_hex, app, &doc), 409);
	assert_error_code(doc, "conflict");
	json_decref(doc);
	get_row(app, &row2);
	assert_memory_equal(row2.public_key, row.public_key, KEEPER_PK_BLOB_LEN);
	assert_memory_equal(row2.wrapped_private, row.wrapped_private, row.wrapped_private_len);
	struct store_app_key none;
	assert_int_equal(store_app_key_get(fx.store, app, 2, &none), COFFER_ERR_NOT_FOUND);
}

static void test_app_keys_bad_requests(void **state)
{
	(void)state;
	json_t *doc = NULL;
	char line[256];
	struct store_app_key row;

	/* An id the store does not know. */
	assert_int_equal(post_app_key(fx.credential_hex, "0123456789abcdef01234567", &doc), 404);
	assert_error_code(doc, "not_found");
	json_decref(doc);
	/* Not an id at all. */
	assert_int_equal(post_app_key(fx.credential_hex, "a b", &doc), 400);
	assert_error_code(doc, "invalid_argument");
	json_decref(doc);
	assert_int_equal(post_app_key(fx.credential_hex, "", &doc), 400);
	json_decref(doc);

	/* Unknown fields, a missing or mistyped app_id, and bodies that are not JSON objects. */
	char app[STORE_ID_SIZE], body[256];
	new_app(app);
	assert_true(snprintf(line, sizeof(line), "Authorization: Bearer %s", fx.credential_hex) < (int)sizeof(line));
	assert_true(snprintf(body, sizeof(body), "{\"app_id\":\"%s\",\"version\":2}", app) < (int)sizeof(body));
	assert_int_equal(raw_post(line, body), 400);
	assert_int_equal(raw_post(line, "{}"), 400);
	assert_int_equal(raw_post(line, "{\"app_id\":7}"), 400);
	assert_int_equal(raw_post(line, "[]"), 400);
	assert_int_equal(raw_post(line, "not json"), 400);
	assert_int_equal(store_app_key_get(fx.store, app, 1, &row), COFFER_ERR_NOT_FOUND);

	/* A body over 4 KiB is refused before anything is read into JSON. */
	char *big = malloc(KEEPER_APP_KEYS_BODY_MAX + 64);
	assert_non_null(big);
	int n = snprintf(big, KEEPER_APP_KEYS_BODY_MAX + 64, "{\"app_id\":\"%s\",\"pad\":\"", app);
	memset(big + n, 'x', KEEPER_APP_KEYS_BODY_MAX);
	memcpy(big + n + KEEPER_APP_KEYS_BODY_MAX - 3, "\"}", 3);
	assert_int_equal(raw_post(line, big), 413);
	free(big);
	assert_int_equal(store_app_key_get(fx.store, app, 1, &row), COFFER_ERR_NOT_FOUND);
}

struct racer {
	const char *app;
	int status;
};

static void *race_main(void *arg)
{
	struct racer *r = arg;
	json_t *doc = NULL;
	r->status = post_app_key(fx.credential_hex, r->app, &doc);
	json_decref(doc);
	return NULL;
}

static void test_app_keys_concurrent_create(void **state)
{
	(void)state;
	char app[STORE_ID_SIZE];
	pthread_t th[RACERS];
	struct racer r[RACERS];
	int created = 0, conflicts = 0;
	struct store_app_key row;

	new_app(app);
	for (int i = 0; i < RACERS; i++) {
		r[i].app = app;
		r[i].status = 0;
		assert_int_equal(pthread_create(&th[i], NULL, race_main, &r[i]), 0);
	}
	for (int i = 0; i < RACERS; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		created += r[i].status == 201;
		conflicts += r[i].status == 409;
	}
	assert_int_equal(created, 1);
	assert_int_equal(conflicts, RACERS - 1);
	get_row(app, &row);
	assert_int_equal(vault_app_key_verify(fx.keeper_pub, app, 1, row.public_key, row.public_key + HPKE_PK_LEN),
			 COFFER_OK);
}

/* ---- app keys against a store that lies ---- */

static void test_load_own_key(void **state)
{
	(void)state;
	struct keeper_keys keys = derive_keys();
	struct keeper_app_key made;
	struct secret *sk = NULL, *value = NULL, *opened = NULL;
	unsigned char pk[HPKE_PK_LEN];
	struct buf sealed;
	char app[STORE_ID_SIZE];

	new_app(app);
	assert_int_equal(keeper_app_key_create(&keys, fx.store, app, &made), COFFER_OK);
	assert_string_equal(made.app_id, app);
	assert_int_equal(made.version, 1);
	assert_int_equal(vault_app_key_verify(fx.keeper_pub, app, 1, made.public_key, made.signature), COFFER_OK);
	assert_int_equal(keeper_app_key_create(&keys, fx.store, app, &made), COFFER_ERR_CONFLICT);
	assert_int_equal(keeper_app_key_create(&keys, fx.store, "0123456789abcdef01234567", &made),
			 COFFER_ERR_NOT_FOUND);

	assert_int_equal(keeper_app_key_load(&keys, fx.store, app, 1, &sk), COFFER_OK);
	assert_int_equal(secret_len(sk), HPKE_SK_LEN);
	assert_int_equal(hpke_public_key(sk, pk), COFFER_OK);
	assert_memory_equal(pk, made.public_key, HPKE_PK_LEN);

	/* What the api seals to the public key, the loaded key opens. */
	buf_init(&sealed, 4096);
	assert_int_equal(secret_from("hunter2", 7, &value), COFFER_OK);
	assert_int_equal(vault_seal_value(made.public_key, app, "DB_PASSWORD", 1, "0123456789abcdef01234567", value,
					  &sealed),
			 COFFER_OK);
	assert_int_equal(vault_open_value(sk, app, "DB_PASSWORD", 1, "0123456789abcdef01234567", sealed.ptr, sealed.len,
					  &opened),
			 COFFER_OK);
	assert_true(secret_equal(opened, value));

	/* The version asked for must exist and be a real version. */
	struct secret *none = NULL;
	assert_int_equal(keeper_app_key_load(&keys, fx.store, app, 2, &none), COFFER_ERR_NOT_FOUND);
	assert_int_equal(keeper_app_key_load(&keys, fx.store, app, 0, &none), COFFER_ERR_INVALID);
	assert_null(none);

	/* A keeper with another master key cannot open it. */
	struct secret *other_master = NULL;
	struct keeper_keys other;
	assert_int_equal(secret_new(VAULT_MASTER_LEN, &other_master), COFFER_OK);
	randombytes_buf(secret_bytes(other_master), VAULT_MASTER_LEN);
	assert_int_equal(keeper_keys_derive(other_master, &other), COFFER_OK);
	assert_int_equal(keeper_app_key_load(&other, fx.store, app, 1, &none), COFFER_ERR_CRYPTO);
	assert_null(none);
	keeper_keys_release(&other);
	secret_free(other_master);

	secret_free(opened);
	secret_free(value);
	buf_release(&sealed);
	secret_free(sk);
	keeper_keys_release(&keys);
}

static void test_load_row_moved_to_another_app(void **state)
{
	(void)state;
	struct keeper_keys keys = derive_keys();
	struct keeper_app_key made;
	struct store_app_key row_a;
	struct secret *sk = NULL;
	char a[STORE_ID_SIZE], b[STORE_ID_SIZE], needle[128];

	new_app(a);
	new_app(b);
	assert_int_equal(keeper_app_key_create(&keys, fx.store, a, &made), COFFER_OK);
	get_row(a, &row_a);
	/* App A's whole row, copied onto app B (which has no key). */
	assert_int_equal(store_app_key_put(fx.store, b, 1, row_a.public_key, row_a.public_key_len,
					   row_a.wrapped_private, row_a.wrapped_private_len, row_a.org_sig),
			 COFFER_OK);
	assert_int_equal(keeper_app_key_load(&keys, fx.store, b, 1, &sk), COFFER_ERR_CRYPTO);
	assert_null(sk);
	assert_true(snprintf(needle, sizeof(needle), "event=app_key_tampered app_id=%s version=1", b) <
		    (int)sizeof(needle));
	assert_true(log_contains(needle));

	/* And relabelled as another version of A itself. */
	assert_int_equal(store_app_key_put(fx.store, a, 2, row_a.public_key, row_a.public_key_len,
					   row_a.wrapped_private, row_a.wrapped_private_len, row_a.org_sig),
			 COFFER_OK);
	assert_int_equal(keeper_app_key_load(&keys, fx.store, a, 2, &sk), COFFER_ERR_CRYPTO);
	assert_null(sk);

	/*
	 * Even with a public key blob the keeper did sign for B (or for A v3),
	 * A's wrapped key does not open there: the unwrap binds app and version
	 * by itself, not only through the signature.
	 */
	unsigned char blob[KEEPER_PK_BLOB_LEN];
	char c[STORE_ID_SIZE];
	new_app(c);
	memcpy(blob, made.public_key, HPKE_PK_LEN);
	assert_int_equal(vault_app_key_sign(keys.signing, c, 1, blob, blob + HPKE_PK_LEN), COFFER_OK);
	assert_int_equal(store_app_key_put(fx.store, c, 1, blob, sizeof(blob), row_a.wrapped_private,
					   row_a.wrapped_private_len, row_a.org_sig),
			 COFFER_OK);
	assert_int_equal(keeper_app_key_load(&keys, fx.store, c, 1, &sk), COFFER_ERR_CRYPTO);
	assert_null(sk);
	assert_true(snprintf(needle, sizeof(needle), "app_id=%s version=1 check=unwrap", c) < (int)sizeof(needle));
	assert_true(log_contains(needle));
	assert_int_equal(vault_app_key_sign(keys.signing, a, 3, blob, blob + HPKE_PK_LEN), COFFER_OK);
	assert_int_equal(store_app_key_put(fx.store, a, 3, blob, sizeof(blob), row_a.wrapped_private,
					   row_a.wrapped_private_len, row_a.org_sig),
			 COFFER_OK);
	assert_int_equal(keeper_app_key_load(&keys, fx.store, a, 3, &sk), COFFER_ERR_CRYPTO);
	assert_null(sk);
	assert_true(snprintf(needle, sizeof(needle), "app_id=%s version=3 check=unwrap", a) < (int)sizeof(needle));
	assert_true(log_contains(needle));

	/* A's own row still loads. */
	assert_int_equal(keeper_app_key_load(&keys, fx.store, a, 1, &sk), COFFER_OK);
	secret_free(sk);
	keeper_keys_release(&keys);
}

static void test_load_public_key_swapped(void **state)
{
	(void)state;
	struct keeper_keys keys = derive_keys();
	struct keeper_app_key made_a, made_b;
	struct store_app_key row_a, row_b;
	struct secret *sk = NULL, *evil_sk = NULL;
	unsigned char blob[KEEPER_PK_BLOB_LEN];
	char a[STORE_ID_SIZE], b[STORE_ID_SIZE];

	new_app(a);
	new_app(b);
	assert_int_equal(keeper_app_key_create(&keys, fx.store, a, &made_a), COFFER_OK);
	assert_int_equal(keeper_app_key_create(&keys, fx.store, b, &made_b), COFFER_OK);
	get_row(a, &row_a);
	get_row(b, &row_b);

	/* B's genuine, keeper-signed public key blob put in A's row. */
	tamper_row(a, 0, row_b.public_key, row_b.public_key_len);
	assert_int_equal(keeper_app_key_load(&keys, fx.store, a, 1, &sk), COFFER_ERR_CRYPTO);
	assert_null(sk);

	/* An attacker's own public key with A's signature. */
	assert_int_equal(hpke_generate_keypair(&evil_sk, blob), COFFER_OK);
	memcpy(blob + HPKE_PK_LEN, made_a.signature, VAULT_SIG_LEN);
	tamper_row(a, 0, blob, sizeof(blob));
	assert_int_equal(keeper_app_key_load(&keys, fx.store, a, 1, &sk), COFFER_ERR_CRYPTO);

	/* A's true public key with B's signature: only the signature is wrong. */
	memcpy(blob, made_a.public_key, HPKE_PK_LEN);
	memcpy(blob + HPKE_PK_LEN, made_b.signature, VAULT_SIG_LEN);
	tamper_row(a, 0, blob, sizeof(blob));
	assert_int_equal(keeper_app_key_load(&keys, fx.store, a, 1, &sk), COFFER_ERR_CRYPTO);

	/* A public key the keeper signed for A, but not the pair of A's wrapped key. */
	memcpy(blob, made_b.public_key, HPKE_PK_LEN);
	assert_int_equal(vault_app_key_sign(keys.signing, a, 1, blob, blob + HPKE_PK_LEN), COFFER_OK);
	tamper_row(a, 0, blob, sizeof(blob));
	assert_int_equal(keeper_app_key_load(&keys, fx.store, a, 1, &sk), COFFER_ERR_CRYPTO);

	/* The public key alone, without its signature. */
	tamper_row(a, 0, made_a.public_key, HPKE_PK_LEN);
	assert_int_equal(keeper_app_key_load(&keys, fx.store, a, 1, &sk), COFFER_ERR_CRYPTO);
	assert_null(sk);

	/* Put back, it loads again: the refusals were the swaps. */
	tamper_row(a, 0, row_a.public_key, row_a.public_key_len);
	assert_int_equal(keeper_app_key_load(&keys, fx.store, a, 1, &sk), COFFER_OK);
	secret_free(sk);
	secret_free(evil_sk);
	keeper_keys_release(&keys);
}

static void test_load_wrapped_bit_flipped(void **state)
{
	(void)state;
	struct keeper_keys keys = derive_keys();
	struct keeper_app_key made;
	struct store_app_key row;
	struct secret *sk = NULL;
	unsigned char flipped[STORE_KEY_BLOB_MAX];
	char a[STORE_ID_SIZE];

	new_app(a);
	assert_int_equal(keeper_app_key_create(&keys, fx.store, a, &made), COFFER_OK);
	get_row(a, &row);
	/* One bit in the nonce, the ciphertext and the tag, each in turn. */
	static const size_t at[] = { 0, KEYWRAP_NONCE_LEN + 5, KEEPER_WRAPPED_LEN - 1 };
	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		memcpy(flipped, row.wrapped_private, row.wrapped_private_len);
		flipped[at[i]] ^= 0x01;
		tamper_row(a, 1, flipped, row.wrapped_private_len);
		assert_int_equal(keeper_app_key_load(&keys, fx.store, a, 1, &sk), COFFER_ERR_CRYPTO);
		assert_null(sk);
	}
	/* Truncated. */
	tamper_row(a, 1, row.wrapped_private, KEYWRAP_OVERHEAD - 1);
	assert_int_equal(keeper_app_key_load(&keys, fx.store, a, 1, &sk), COFFER_ERR_CRYPTO);
	tamper_row(a, 1, row.wrapped_private, row.wrapped_private_len);
	assert_int_equal(keeper_app_key_load(&keys, fx.store, a, 1, &sk), COFFER_OK);
	secret_free(sk);
	keeper_keys_release(&keys);
}

/* ---- the api's boot-token key ---- */

static void test_boot_key_file(void **state)
{
	(void)state;
	struct keeper_keys keys = derive_keys();
	struct secret *master = NULL, *seed = NULL, *other_sk = NULL;
	unsigned char other_pk[JWS_PK_LEN];
	struct buf file, tok, again;
	struct boottoken_claims in, got;
	char hex[HEX32_SIZE];
	int existed = 0;
	unsigned added = 0;

	/* 64 hex characters of vault_api_boot_seed and a newline, 0600. */
	assert_int_equal(file_mode(fx.paths.boot_key), 0600);
	read_text(fx.paths.boot_key, &file);
	assert_int_equal(file.len, HEX_LEN(VAULT_BOOT_SEED_LEN) + 1);
	assert_int_equal(file.ptr[file.len - 1], '\n');
	assert_int_equal(keeper_master_from_file(fx.paths.key, &master), COFFER_OK);
	assert_int_equal(vault_api_boot_seed(master, &seed), COFFER_OK);
	assert_int_equal(hex_encode(secret_cbytes(seed), VAULT_BOOT_SEED_LEN, hex, sizeof(hex)), COFFER_OK);
	assert_memory_equal(file.ptr, hex, HEX_LEN(VAULT_BOOT_SEED_LEN));
	/* Not the credential, not the keeper's own key. */
	assert_memory_not_equal(secret_cbytes(seed), secret_cbytes(keys.credential), VAULT_BOOT_SEED_LEN);
	assert_memory_not_equal(keys.boot_pk, keys.signing_pk, JWS_PK_LEN);

	/* A token minted with the key the api loads from the file verifies under the keeper's boot_pk. */
	memset(&in, 0, sizeof(in));
	assert_int_equal(str_copy(in.app, sizeof(in.app), "app_1"), COFFER_OK);
	assert_int_equal(str_copy(in.machine, sizeof(in.machine), "machine_1"), COFFER_OK);
	assert_int_equal(str_copy(in.host, sizeof(in.host), "host_1"), COFFER_OK);
	in.release = 3;
	in.secrets_version = 2;
	buf_init(&tok, JWS_TOKEN_MAX);
	assert_int_equal(boottoken_mint(fx.boot_sk, &in, (int64_t)time(NULL), &tok, NULL), COFFER_OK);
	assert_int_equal(boottoken_verify(keys.boot_pk, tok.ptr, tok.len, (int64_t)time(NULL), &got), COFFER_OK);
	assert_string_equal(got.machine, "machine_1");
	/* ... and one minted with any other key does not. */
	assert_int_equal(jws_generate_key(&other_sk, other_pk), COFFER_OK);
	assert_int_equal(boottoken_mint(other_sk, &in, (int64_t)time(NULL), &tok, NULL), COFFER_OK);
	assert_int_equal(boottoken_verify(keys.boot_pk, tok.ptr, tok.len, (int64_t)time(NULL), &got),
			 COFFER_ERR_CRYPTO);

	/* A state folder without api.boot.key gets it from init, the same, and nothing else changes. */
	assert_int_equal(unlink(fx.paths.boot_key), 0);
	assert_int_equal(keeper_init(fx.state, NULL, &existed, &added), COFFER_OK);
	assert_int_equal(existed, 1);
	assert_int_equal(added, 1);
	assert_int_equal(file_mode(fx.paths.boot_key), 0600);
	read_text(fx.paths.boot_key, &again);
	assert_int_equal(again.len, file.len);
	assert_memory_equal(again.ptr, file.ptr, file.len);
	buf_release(&again);
	/* An existing file is never overwritten, even one that is not the derived key. */
	write_file(fx.paths.boot_key, "not a key\n", 10, 0600);
	assert_int_equal(keeper_init(fx.state, NULL, &existed, &added), COFFER_OK);
	assert_int_equal(added, 0);
	read_text(fx.paths.boot_key, &again);
	assert_string_equal(again.ptr, "not a key\n");
	buf_release(&again);
	write_file(fx.paths.boot_key, file.ptr, file.len, 0600);

	sodium_memzero(hex, sizeof(hex));
	buf_release(&tok);
	buf_release(&file);
	secret_free(other_sk);
	secret_free(seed);
	secret_free(master);
	keeper_keys_release(&keys);
}

/* ---- POST /v1/open ---- */

#define VALUE_DB "postgres://app:pw-7f3a9c@db.internal/app"
#define VALUE_KEY "sk-live-91c2e0d4"
#define OPEN_REPLY_MAX ((size_t)4 << 20)

struct open_world {
	char app[STORE_ID_SIZE];
	char app_name[STORE_NAME_SIZE];
	unsigned char app_pk[HPKE_PK_LEN];
	uint64_t version; /* the secrets version with DB_URL and API_KEY */
	struct store_machine machine;
	char config_hash[DELIVERY_SPEC_HASH_SIZE]; /* of release 1's config: what deliveries are bound to */
};

#define WORLD_CONFIG "{\"cmd\":[\"web\"],\"count\":1,\"env\":{},\"grace_ms\":30000}"

static void put_secrets(const char *app, const unsigned char pk[HPKE_PK_LEN], const char *aad_app, uint64_t *version)
{
	static const char *const names[] = { "DB_URL", "API_KEY" };
	static const char *const values[] = { VALUE_DB, VALUE_KEY };
	struct store_secret_change ch[2];
	struct buf ct[2];
	char ids[2][STORE_ID_SIZE], digests[2][DIGEST_HEX_LEN + 1];
	struct keeper_keys keys = derive_keys();
	for (int i = 0; i < 2; i++) {
		test_digest(&keys, app, values[i], strlen(values[i]), digests[i]);
		struct secret *v = NULL;
		buf_init(&ct[i], 4096);
		store_new_id(ids[i]);
		assert_int_equal(secret_from(values[i], strlen(values[i]), &v), COFFER_OK);
		assert_int_equal(vault_seal_value(pk, aad_app, names[i], 1, ids[i], v, &ct[i]), COFFER_OK);
		secret_free(v);
		ch[i] = (struct store_secret_change){ .name = names[i],
						      .ciphertext = (const unsigned char *)ct[i].ptr,
						      .ciphertext_len = ct[i].len,
						      .digest = digests[i],
						      .key_version = 1,
						      .value_id = ids[i] };
	}
	assert_int_equal(store_secrets_put(fx.store, app, ch, 2, "test", "staged", NULL, version), COFFER_OK);
	buf_release(&ct[0]);
	buf_release(&ct[1]);
	keeper_keys_release(&keys);
}

/* An app with a key and two secrets, and one machine of it on host h. */
static void world_new(struct open_world *w, const char *host_id)
{
	struct keeper_keys keys = derive_keys();
	struct keeper_app_key made;
	struct store_app app;
	memset(w, 0, sizeof(*w));
	new_app(w->app);
	assert_int_equal(store_app_get(fx.store, w->app, &app), COFFER_OK);
	memcpy(w->app_name, app.name, sizeof(w->app_name));
	assert_int_equal(keeper_app_key_create(&keys, fx.store, w->app, &made), COFFER_OK);
	memcpy(w->app_pk, made.public_key, HPKE_PK_LEN);
	put_secrets(w->app, w->app_pk, w->app, &w->version);
	uint64_t release = 0;
	assert_int_equal(store_release_create(fx.store, w->app, WORLD_CONFIG, w->version, 0, 0, "test", &release),
			 COFFER_OK);
	assert_int_equal(release, 1);
	unsigned char h[crypto_hash_sha256_BYTES];
	crypto_hash_sha256(h, (const unsigned char *)WORLD_CONFIG, strlen(WORLD_CONFIG));
	sodium_bin2hex(w->config_hash, sizeof(w->config_hash), h, sizeof(h));
	assert_int_equal(store_machine_create(fx.store, w->app, host_id, 1, &w->machine), COFFER_OK);
	test_sign_open(fx.store, &fx.deployer, w->app, 1, w->version); /* as the CLI does at deploy */
	keeper_keys_release(&keys);
}

static void mint_with(const struct secret *sk, const char *app, const char *machine, const char *host,
		      uint64_t version, int64_t now, int64_t exp, struct buf *tok, struct boottoken_claims *minted)
{
	struct boottoken_claims in;
	memset(&in, 0, sizeof(in));
	assert_int_equal(str_copy(in.app, sizeof(in.app), app), COFFER_OK);
	assert_int_equal(str_copy(in.machine, sizeof(in.machine), machine), COFFER_OK);
	assert_int_equal(str_copy(in.host, sizeof(in.host), host), COFFER_OK);
	in.release = 1;
	in.secrets_version = version;
	in.exp = exp;
	buf_init(tok, JWS_TOKEN_MAX);
	assert_int_equal(boottoken_mint(sk, &in, now, tok, minted), COFFER_OK);
}

/* A good token for the world's machine on its host. */
static void mint_good(const struct open_world *w, struct buf *tok, struct boottoken_claims *minted)
{
	mint_with(fx.boot_sk, w->app, w->machine.id, w->machine.host_id, w->version, (int64_t)time(NULL), 0, tok,
		  minted);
}

/* POST /v1/open of these body bytes, signed as host_id with sign_sk; returns the status. */
static int open_http_raw(const char *host_id, const struct secret *sign_sk, const struct buf *body, json_t **out)
{
	struct http_client *c = NULL;
	struct hostauth_headers hh;
	struct buf resp;
	int status = 0;

	struct hostauth_request r = { "POST", "/v1/open", body->ptr, body->len };
	assert_int_equal(hostauth_sign_headers(sign_sk, host_id, &r, (int64_t)time(NULL), &hh), COFFER_OK);
	assert_int_equal(http_client_new(fx.base_url, 10000, &c), COFFER_OK);
	assert_int_equal(http_client_add_header(c, HOSTAUTH_HEADER_HOST, hh.host), COFFER_OK);
	assert_int_equal(http_client_add_header(c, HOSTAUTH_HEADER_TIMESTAMP, hh.timestamp), COFFER_OK);
	assert_int_equal(http_client_add_header(c, HOSTAUTH_HEADER_NONCE, hh.nonce), COFFER_OK);
	assert_int_equal(http_client_add_header(c, HOSTAUTH_HEADER_SIGNATURE, hh.signature), COFFER_OK);
	buf_init(&resp, OPEN_REPLY_MAX);
	assert_int_equal(http_client_request(c, "POST", "/v1/open", body->ptr, body->len, OPEN_REPLY_MAX, &status,
					     &resp),
			 COFFER_OK);
	*out = NULL;
	if (resp.len)
		assert_int_equal(json_parse_limited(resp.ptr, resp.len, OPEN_REPLY_MAX, 8, out, NULL), COFFER_OK);
	buf_release(&resp);
	http_client_free(c);
	return status;
}

/* POST /v1/open {"token": token} signed as host_id (sign_sk may be any key: the unknown-host case). */
static int open_http(const char *host_id, const struct secret *sign_sk, const char *token, json_t **out)
{
	struct buf body;
	buf_init(&body, KEEPER_OPEN_BODY_MAX);
	assert_int_equal(buf_addf(&body, "{\"token\":\"%s\"}", token), COFFER_OK);
	int status = open_http_raw(host_id, sign_sk, &body, out);
	buf_release(&body);
	return status;
}

static void assert_error(const json_t *doc, const char *code, const char *message)
{
	json_t *err = NULL;
	const char *got = NULL;
	assert_error_code(doc, code);
	assert_int_equal(json_get_object(doc, "error", 1, &err, NULL), COFFER_OK);
	assert_int_equal(json_get_string(err, "message", 1, &got, NULL, NULL), COFFER_OK);
	assert_string_equal(got, message);
}

/*
 * The last audit event: secrets.open by actor, for app (NULL: none), with
 * this outcome; its detail holds every string of `has` and no value.
 */
static void assert_last_open_event(const char *actor, const char *app, const char *outcome, const char *const has[])
{
	struct store_audit_list l = { 0 };
	assert_int_equal(store_audit_list(fx.store, NULL, &l), COFFER_OK);
	assert_true(l.n > 0);
	const struct store_audit_event *ev = &l.items[l.n - 1].ev;
	assert_string_equal(ev->action, "secrets.open");
	assert_string_equal(ev->actor, actor);
	assert_string_equal(ev->app, app ? app : "");
	if (app)
		assert_string_equal(ev->org_id, fx.org.id);
	assert_string_equal(ev->outcome, outcome);
	assert_int_equal(strlen(ev->request_id), HTTP_REQUEST_ID_LEN);
	for (size_t i = 0; has && has[i]; i++)
		assert_non_null(strstr(ev->detail, has[i]));
	assert_null(strstr(ev->detail, VALUE_DB));
	assert_null(strstr(ev->detail, VALUE_KEY));
	assert_null(strstr(ev->detail, "pw-7f3a9c"));
	store_audit_list_release(&l);
}

/* Expects a refusal with this status, code and message, and no sealed answer. */
static void expect_refused(const char *host_id, const struct secret *sign_sk, const char *token, int status,
			   const char *code, const char *message)
{
	json_t *doc = NULL;
	assert_int_equal(open_http(host_id, sign_sk, token, &doc), status);
	assert_error(doc, code, message);
	assert_null(json_object_get(doc, "sealed"));
	json_decref(doc);
}

static void actor_of(const char *host_id, char actor[64])
{
	assert_true(snprintf(actor, 64, "host:%s", host_id) < 64);
}

static void outcome_of(const char *why, char outcome[128])
{
	assert_true(snprintf(outcome, 128, "refused: %s", why) < 128);
}

static void test_open_good(void **state)
{
	(void)state;
	struct open_world w;
	struct boottoken_claims minted;
	struct buf tok, sealed;
	struct delivery_list got;
	json_t *doc = NULL;
	const char *b64 = NULL;
	size_t b64_len = 0;
	char actor[64], version[64];

	world_new(&w, fx.host_a.id);
	mint_good(&w, &tok, &minted);
	assert_int_equal(open_http(fx.host_a.id, fx.host_a.sign_sk, tok.ptr, &doc), 200);
	static const char *const fields[] = { "sealed", NULL };
	assert_int_equal(json_check_fields(doc, fields, NULL), COFFER_OK);
	assert_int_equal(json_get_string(doc, "sealed", 1, &b64, &b64_len, NULL), COFFER_OK);
	buf_init(&sealed, OPEN_REPLY_MAX);
	assert_int_equal(b64url_decode(b64, b64_len, &sealed), COFFER_OK);
	json_decref(doc);
	/* No value crosses the socket in the clear. */
	assert_null(memmem(sealed.ptr, sealed.len, VALUE_DB, strlen(VALUE_DB)));

	/* The host's seal key opens exactly the stored values, for this machine and token. */
	delivery_list_init(&got);
	assert_int_equal(delivery_open(fx.host_a.seal_sk, fx.host_a.id, w.machine.id, minted.jti, w.config_hash, sealed.ptr,
				       sealed.len, &got),
			 COFFER_OK);
	assert_int_equal(got.n, 2);
	assert_string_equal(got.items[0].name, "API_KEY");
	assert_int_equal(secret_len(got.items[0].value), strlen(VALUE_KEY));
	assert_memory_equal(secret_cbytes(got.items[0].value), VALUE_KEY, strlen(VALUE_KEY));
	assert_string_equal(got.items[1].name, "DB_URL");
	assert_int_equal(secret_len(got.items[1].value), strlen(VALUE_DB));
	assert_memory_equal(secret_cbytes(got.items[1].value), VALUE_DB, strlen(VALUE_DB));
	delivery_list_release(&got);
	/* ... and for no other machine, and no other host's key. */
	assert_int_equal(delivery_open(fx.host_a.seal_sk, fx.host_a.id, "another_machine", minted.jti, w.config_hash, sealed.ptr,
				       sealed.len, &got),
			 COFFER_ERR_CRYPTO);
	assert_int_equal(delivery_open(fx.host_b.seal_sk, fx.host_a.id, w.machine.id, minted.jti, w.config_hash, sealed.ptr,
				       sealed.len, &got),
			 COFFER_ERR_CRYPTO);
	/* ... nor for another config than the release's (one the api changed): the agent would not start it. */
	char other_hash[DELIVERY_SPEC_HASH_SIZE];
	memcpy(other_hash, w.config_hash, sizeof(other_hash));
	other_hash[0] = other_hash[0] == '0' ? '1' : '0';
	assert_int_equal(delivery_open(fx.host_a.seal_sk, fx.host_a.id, w.machine.id, minted.jti, other_hash,
				       sealed.ptr, sealed.len, &got),
			 COFFER_ERR_CRYPTO);

	/* One audit event: names, machine, host, release and version; no value. */
	actor_of(fx.host_a.id, actor);
	assert_true(snprintf(version, sizeof(version), "\"version\":%llu", (unsigned long long)w.version) <
		    (int)sizeof(version));
	char deployer[128];
	assert_true(snprintf(deployer, sizeof(deployer), "\"deployer\":\"%s\",\"manifest_deployer\":\"%s\"",
			     fx.deployer.id, fx.deployer.id) < (int)sizeof(deployer));
	const char *const has[] = { "\"names\":[\"API_KEY\",\"DB_URL\"]", w.machine.id, fx.host_a.id,
				    "\"release\":1", version, deployer, NULL };
	assert_last_open_event(actor, w.app_name, "ok", has);
	assert_true(log_contains("event=secrets_opened"));
	buf_release(&sealed);
	buf_release(&tok);
}

static void test_open_replayed_request(void **state)
{
	(void)state;
	struct open_world w;
	struct buf tok, body, resp;
	struct hostauth_headers hh;
	struct http_client *c = NULL;
	int status = 0;

	world_new(&w, fx.host_a.id);
	mint_good(&w, &tok, NULL);
	buf_init(&body, KEEPER_OPEN_BODY_MAX);
	assert_int_equal(buf_addf(&body, "{\"token\":\"%s\"}", tok.ptr), COFFER_OK);
	struct hostauth_request r = { "POST", "/v1/open", body.ptr, body.len };
	assert_int_equal(hostauth_sign_headers(fx.host_a.sign_sk, fx.host_a.id, &r, (int64_t)time(NULL), &hh),
			 COFFER_OK);
	assert_int_equal(http_client_new(fx.base_url, 10000, &c), COFFER_OK);
	assert_int_equal(http_client_add_header(c, HOSTAUTH_HEADER_HOST, hh.host), COFFER_OK);
	assert_int_equal(http_client_add_header(c, HOSTAUTH_HEADER_TIMESTAMP, hh.timestamp), COFFER_OK);
	assert_int_equal(http_client_add_header(c, HOSTAUTH_HEADER_NONCE, hh.nonce), COFFER_OK);
	assert_int_equal(http_client_add_header(c, HOSTAUTH_HEADER_SIGNATURE, hh.signature), COFFER_OK);
	buf_init(&resp, OPEN_REPLY_MAX);
	assert_int_equal(http_client_request(c, "POST", "/v1/open", body.ptr, body.len, 0, &status, &resp), COFFER_OK);
	assert_int_equal(status, 200);
	assert_int_equal(http_client_request(c, "POST", "/v1/open", body.ptr, body.len, 0, &status, &resp), COFFER_OK);
	/* The same signed request again: the gate's nonce cache refuses it, and the refusal is audited. */
	assert_int_equal(status, 401);
	const char *const has[] = { fx.host_a.id, "claimed_host", NULL };
	assert_last_open_event("anonymous", NULL, "refused: request replayed", has);
	buf_release(&resp);
	http_client_free(c);
	buf_release(&body);
	buf_release(&tok);
}

static void test_open_token_of_another_key(void **state)
{
	(void)state;
	struct open_world w;
	struct secret *sk = NULL;
	unsigned char pk[JWS_PK_LEN];
	struct buf tok;
	char actor[64];

	world_new(&w, fx.host_a.id);
	assert_int_equal(jws_generate_key(&sk, pk), COFFER_OK);
	mint_with(sk, w.app, w.machine.id, fx.host_a.id, w.version, (int64_t)time(NULL), 0, &tok, NULL);
	expect_refused(fx.host_a.id, fx.host_a.sign_sk, tok.ptr, 401, "unauthenticated", "invalid boot token");
	actor_of(fx.host_a.id, actor);
	const char *const has[] = { fx.host_a.id, NULL };
	assert_last_open_event(actor, NULL, "refused: invalid boot token", has);
	/* The keeper's own signing key is not the api's boot key either. */
	struct keeper_keys keys = derive_keys();
	buf_release(&tok);
	mint_with(keys.signing, w.app, w.machine.id, fx.host_a.id, w.version, (int64_t)time(NULL), 0, &tok, NULL);
	expect_refused(fx.host_a.id, fx.host_a.sign_sk, tok.ptr, 401, "unauthenticated", "invalid boot token");
	/* Not a token at all. */
	expect_refused(fx.host_a.id, fx.host_a.sign_sk, "abc.def.ghi", 401, "unauthenticated", "invalid boot token");
	keeper_keys_release(&keys);
	buf_release(&tok);
	secret_free(sk);
}

static void test_open_token_expired(void **state)
{
	(void)state;
	struct open_world w;
	struct buf tok;
	char actor[64], outcome[128];
	int64_t then = (int64_t)time(NULL) - 700;

	world_new(&w, fx.host_a.id);
	mint_with(fx.boot_sk, w.app, w.machine.id, fx.host_a.id, w.version, then, then + 600, &tok, NULL);
	expect_refused(fx.host_a.id, fx.host_a.sign_sk, tok.ptr, 401, "unauthenticated",
		       "boot token expired or not yet valid");
	actor_of(fx.host_a.id, actor);
	outcome_of("boot token expired or not yet valid", outcome);
	assert_last_open_event(actor, NULL, outcome, NULL);
	buf_release(&tok);
}

static void test_open_token_for_another_host(void **state)
{
	(void)state;
	struct open_world w;
	struct buf tok;
	char actor[64], outcome[128];

	/* A machine on host B, its good token: host A presents it. */
	world_new(&w, fx.host_b.id);
	mint_good(&w, &tok, NULL);
	expect_refused(fx.host_a.id, fx.host_a.sign_sk, tok.ptr, 403, "forbidden", "boot token is for another host");
	actor_of(fx.host_a.id, actor);
	outcome_of("boot token is for another host", outcome);
	const char *const has[] = { w.machine.id, NULL };
	assert_last_open_event(actor, w.app_name, outcome, has);
	/* Host B itself is served. */
	json_t *doc = NULL;
	assert_int_equal(open_http(fx.host_b.id, fx.host_b.sign_sk, tok.ptr, &doc), 200);
	json_decref(doc);
	buf_release(&tok);
}

static void test_open_machine_destroyed(void **state)
{
	(void)state;
	struct open_world w;
	struct buf tok;
	json_t *doc = NULL;
	char actor[64];

	world_new(&w, fx.host_a.id);
	mint_good(&w, &tok, NULL);
	assert_int_equal(open_http(fx.host_a.id, fx.host_a.sign_sk, tok.ptr, &doc), 200);
	json_decref(doc);
	/* Destroyed: the same token, well within its lifetime, is refused at once. */
	assert_int_equal(store_machine_destroy(fx.store, w.machine.id), COFFER_OK);
	expect_refused(fx.host_a.id, fx.host_a.sign_sk, tok.ptr, 409, "conflict", "machine is destroyed");
	actor_of(fx.host_a.id, actor);
	const char *const has[] = { w.machine.id, NULL };
	assert_last_open_event(actor, w.app_name, "refused: machine is destroyed", has);
	/* And a fresh token for it too. */
	buf_release(&tok);
	mint_good(&w, &tok, NULL);
	expect_refused(fx.host_a.id, fx.host_a.sign_sk, tok.ptr, 409, "conflict", "machine is destroyed");
	buf_release(&tok);
}

/* Moves a machine behind the keeper's back (the api rescheduled it, or a store writer did). */
static void move_machine(const char *machine_id, const char *host_id)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	assert_int_equal(sqlite3_open(fx.db_path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_busy_timeout(db, 10000), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "UPDATE machines SET host_id = ?1 WHERE id = ?2", -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_bind_text(st, 1, host_id, -1, SQLITE_TRANSIENT), SQLITE_OK);
	assert_int_equal(sqlite3_bind_text(st, 2, machine_id, -1, SQLITE_TRANSIENT), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	assert_int_equal(sqlite3_changes(db), 1);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void test_open_machine_moved(void **state)
{
	(void)state;
	struct open_world w;
	struct buf tok;
	char actor[64];

	struct store_machine on_b;
	world_new(&w, fx.host_a.id);
	actor_of(fx.host_a.id, actor);
	/* A token for host A naming a machine of host B. */
	assert_int_equal(store_machine_create(fx.store, w.app, fx.host_b.id, 1, &on_b), COFFER_OK);
	mint_with(fx.boot_sk, w.app, on_b.id, fx.host_a.id, w.version, (int64_t)time(NULL), 0, &tok, NULL);
	expect_refused(fx.host_a.id, fx.host_a.sign_sk, tok.ptr, 403, "forbidden", "machine is not on this host");
	assert_last_open_event(actor, w.app_name, "refused: machine is not on this host", NULL);
	buf_release(&tok);
	/* A machine moved in the store (its row edited) is refused as tampered, and audited. */
	mint_good(&w, &tok, NULL);
	move_machine(w.machine.id, fx.host_b.id);
	expect_refused(fx.host_a.id, fx.host_a.sign_sk, tok.ptr, 500, "row_tampered",
		       "machine row failed authentication (tampered)");
	assert_last_open_event(actor, w.app_name, "refused: machine row failed authentication (tampered)", NULL);
	/* Back on host A (the row as it was sealed), the same token opens again. */
	move_machine(w.machine.id, fx.host_a.id);
	json_t *doc = NULL;
	assert_int_equal(open_http(fx.host_a.id, fx.host_a.sign_sk, tok.ptr, &doc), 200);
	json_decref(doc);
	buf_release(&tok);
}

/* A secrets version row edited in the store (its status, here) is refused as tampered, and audited. */
static void test_open_version_row_edited(void **state)
{
	(void)state;
	struct open_world w;
	struct buf tok;
	char actor[64], sql[256];
	sqlite3 *db = NULL;
	world_new(&w, fx.host_a.id);
	actor_of(fx.host_a.id, actor);
	mint_good(&w, &tok, NULL);
	assert_true(snprintf(sql, sizeof(sql), "UPDATE secret_versions SET status = 'deployed' WHERE app_id = '%s'",
			     w.app) < (int)sizeof(sql));
	assert_int_equal(sqlite3_open(fx.db_path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_busy_timeout(db, 10000), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_changes(db), 1);
	sqlite3_close(db);
	expect_refused(fx.host_a.id, fx.host_a.sign_sk, tok.ptr, 500, "row_tampered",
		       "secrets version row failed authentication (tampered)");
	assert_last_open_event(actor, w.app_name, "refused: secrets version row failed authentication (tampered)", NULL);
	buf_release(&tok);
}

static void test_open_machine_of_another_app(void **state)
{
	(void)state;
	struct open_world a, b;
	struct buf tok;
	char actor[64];

	world_new(&a, fx.host_a.id);
	world_new(&b, fx.host_a.id);
	/* A token of app A (and its secrets version) naming app B's machine, on the right host. */
	mint_with(fx.boot_sk, a.app, b.machine.id, fx.host_a.id, a.version, (int64_t)time(NULL), 0, &tok, NULL);
	expect_refused(fx.host_a.id, fx.host_a.sign_sk, tok.ptr, 403, "forbidden", "machine belongs to another app");
	actor_of(fx.host_a.id, actor);
	const char *const has[] = { b.machine.id, NULL };
	assert_last_open_event(actor, a.app_name, "refused: machine belongs to another app", has);
	buf_release(&tok);
}

static void test_open_unknown_machine(void **state)
{
	(void)state;
	struct open_world w;
	struct buf tok;
	char actor[64], ghost[STORE_ID_SIZE];

	world_new(&w, fx.host_a.id);
	store_new_id(ghost);
	mint_with(fx.boot_sk, w.app, ghost, fx.host_a.id, w.version, (int64_t)time(NULL), 0, &tok, NULL);
	expect_refused(fx.host_a.id, fx.host_a.sign_sk, tok.ptr, 404, "not_found", "unknown machine");
	actor_of(fx.host_a.id, actor);
	assert_last_open_event(actor, w.app_name, "refused: unknown machine", NULL);
	buf_release(&tok);
}

static void test_open_unknown_version(void **state)
{
	(void)state;
	struct open_world w;
	struct buf tok;

	world_new(&w, fx.host_a.id);
	mint_with(fx.boot_sk, w.app, w.machine.id, fx.host_a.id, w.version + 5, (int64_t)time(NULL), 0, &tok, NULL);
	expect_refused(fx.host_a.id, fx.host_a.sign_sk, tok.ptr, 404, "not_found", "unknown secrets version");
	buf_release(&tok);
}

static void test_open_unknown_host(void **state)
{
	(void)state;
	struct open_world w;
	struct secret *sk = NULL;
	unsigned char pk[JWS_PK_LEN];
	struct buf tok;
	char ghost[STORE_ID_SIZE];

	world_new(&w, fx.host_a.id);
	mint_good(&w, &tok, NULL);
	/* A host id the registry does not know, with a key of its own. */
	store_new_id(ghost);
	assert_int_equal(jws_generate_key(&sk, pk), COFFER_OK);
	expect_refused(ghost, sk, tok.ptr, 401, "unauthenticated", "unknown host");
	const char *const has[] = { ghost, "claimed_host", NULL };
	assert_last_open_event("anonymous", NULL, "refused: unknown host", has);
	/* Host A's id, signed with another key. */
	expect_refused(fx.host_a.id, sk, tok.ptr, 401, "unauthenticated", "request signature does not verify");
	assert_last_open_event("anonymous", NULL, "refused: request signature does not verify", NULL);
	buf_release(&tok);
	secret_free(sk);
}

static void test_open_bad_bodies(void **state)
{
	(void)state;
	struct buf body;
	json_t *doc = NULL;
	char actor[64];

	actor_of(fx.host_a.id, actor);
	buf_init(&body, KEEPER_OPEN_BODY_MAX * 2);
	/* Well signed, but no token: 400, audited as the host's refused open. */
	assert_int_equal(buf_adds(&body, "{\"tok\":\"x\"}"), COFFER_OK);
	assert_int_equal(open_http_raw(fx.host_a.id, fx.host_a.sign_sk, &body, &doc), 400);
	assert_error_code(doc, "invalid_argument");
	json_decref(doc);
	assert_last_open_event(actor, NULL, "refused: malformed request body", NULL);
	buf_reset(&body);
	assert_int_equal(buf_adds(&body, "not json"), COFFER_OK);
	assert_int_equal(open_http_raw(fx.host_a.id, fx.host_a.sign_sk, &body, &doc), 400);
	json_decref(doc);
	/* Over 4 KiB: 413 before the gate reads it, audited too. */
	buf_reset(&body);
	assert_int_equal(buf_adds(&body, "{\"token\":\""), COFFER_OK);
	while (body.len < KEEPER_OPEN_BODY_MAX + 8)
		assert_int_equal(buf_addch(&body, 'a'), COFFER_OK);
	assert_int_equal(buf_adds(&body, "\"}"), COFFER_OK);
	assert_int_equal(open_http_raw(fx.host_a.id, fx.host_a.sign_sk, &body, &doc), 413);
	json_decref(doc);
	assert_last_open_event("anonymous", NULL, "refused: too_large", NULL);
	buf_release(&body);
}

/* Sets the ciphertext of one name of one version (a store writer). */
static void set_ciphertext(const char *app, uint64_t version, const char *name, const unsigned char *ct, size_t len)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	const char *sql = "UPDATE secret_values SET ciphertext = ?1 WHERE id = (SELECT value_id FROM secret_entries"
			  " WHERE app_id = ?2 AND version = ?3 AND name = ?4)";
	assert_int_equal(sqlite3_open(fx.db_path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_busy_timeout(db, 10000), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_bind_blob(st, 1, ct, (int)len, SQLITE_TRANSIENT), SQLITE_OK);
	assert_int_equal(sqlite3_bind_text(st, 2, app, -1, SQLITE_TRANSIENT), SQLITE_OK);
	assert_int_equal(sqlite3_bind_int64(st, 3, (sqlite3_int64)version), SQLITE_OK);
	assert_int_equal(sqlite3_bind_text(st, 4, name, -1, SQLITE_TRANSIENT), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	assert_int_equal(sqlite3_changes(db), 1);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void copy_ciphertext(const char *app, uint64_t version, const char *name, struct buf *out)
{
	struct store_secret_list l = { 0 };
	assert_int_equal(store_secrets_get(fx.store, app, version, &l), COFFER_OK);
	buf_init(out, 4096);
	for (size_t i = 0; i < l.n; i++)
		if (strcmp(l.items[i].name, name) == 0)
			assert_int_equal(buf_add(out, l.items[i].ciphertext, l.items[i].ciphertext_len), COFFER_OK);
	assert_true(out->len > 0);
	store_secret_list_release(&l);
}

static void expect_tamper_refused(const struct open_world *w, const char *name)
{
	struct buf tok;
	char actor[64], needle[256];
	mint_good(w, &tok, NULL);
	expect_refused(fx.host_a.id, fx.host_a.sign_sk, tok.ptr, 400, "verification_failed",
		       "secret failed verification");
	actor_of(fx.host_a.id, actor);
	/* The refusal names the secrets and the one that failed (never a value). */
	char failed[128];
	assert_true(snprintf(failed, sizeof(failed), "\"failed\":{\"name\":\"%s\",\"check\":\"ciphertext\"}", name) <
		    (int)sizeof(failed));
	const char *const has[] = { "\"names\":[\"API_KEY\",\"DB_URL\"]", failed, NULL };
	assert_last_open_event(actor, w->app_name, "refused: secret failed verification", has);
	assert_true(snprintf(needle, sizeof(needle), "event=secret_open_refused app_id=%s name=%s", w->app, name) <
		    (int)sizeof(needle));
	assert_true(log_contains(needle));
	assert_false(log_contains(VALUE_DB));
	assert_false(log_contains(VALUE_KEY));
	buf_release(&tok);
}

static void test_open_ciphertext_moved_to_another_name(void **state)
{
	(void)state;
	struct open_world w;
	struct buf db, key;

	world_new(&w, fx.host_a.id);
	copy_ciphertext(w.app, w.version, "DB_URL", &db);
	copy_ciphertext(w.app, w.version, "API_KEY", &key);
	/* DB_URL's genuine ciphertext (same app, same key) put under API_KEY: the whole open is refused. */
	set_ciphertext(w.app, w.version, "API_KEY", (const unsigned char *)db.ptr, db.len);
	expect_tamper_refused(&w, "API_KEY");
	/* Put back, it opens. */
	set_ciphertext(w.app, w.version, "API_KEY", (const unsigned char *)key.ptr, key.len);
	struct buf tok;
	json_t *doc = NULL;
	mint_good(&w, &tok, NULL);
	assert_int_equal(open_http(fx.host_a.id, fx.host_a.sign_sk, tok.ptr, &doc), 200);
	json_decref(doc);
	buf_release(&tok);
	buf_release(&key);
	buf_release(&db);
}

static void test_open_ciphertext_moved_to_another_app(void **state)
{
	(void)state;
	struct open_world a, b;
	struct buf ct;
	uint64_t v = 0;

	world_new(&a, fx.host_a.id);
	world_new(&b, fx.host_a.id);
	/* App B's DB_URL row copied into app A. */
	copy_ciphertext(b.app, b.version, "DB_URL", &ct);
	set_ciphertext(a.app, a.version, "DB_URL", (const unsigned char *)ct.ptr, ct.len);
	expect_tamper_refused(&a, "DB_URL");
	buf_release(&ct);

	/*
	 * Sealed to A's own key but bound to app B (what an api confused
	 * about apps would store): A's key alone does not make it A's.
	 */
	put_secrets(a.app, a.app_pk, b.app, &v);
	a.version = v;
	test_sign_open(fx.store, &fx.deployer, a.app, 1, v);
	expect_tamper_refused(&a, "API_KEY");
}

/* A ciphertext cut short (under the seal's overhead, or by one byte) refuses the whole open. */
static void test_open_ciphertext_truncated(void **state)
{
	(void)state;
	struct open_world w;
	struct buf key;

	world_new(&w, fx.host_a.id);
	copy_ciphertext(w.app, w.version, "API_KEY", &key);
	set_ciphertext(w.app, w.version, "API_KEY", (const unsigned char *)key.ptr, 10);
	expect_tamper_refused(&w, "API_KEY");
	set_ciphertext(w.app, w.version, "API_KEY", (const unsigned char *)key.ptr, key.len - 1);
	expect_tamper_refused(&w, "API_KEY");
	buf_release(&key);
}

static void test_open_direct_empty_version(void **state)
{
	(void)state;
	struct keeper_keys keys = derive_keys();
	struct open_world w;
	struct boottoken_claims minted;
	struct store_host h;
	struct delivery_list got;
	struct buf tok, sealed;
	const char *why = "unset";

	/* A token minted when the app had no secrets (version 0) opens an empty list, not the head. */
	world_new(&w, fx.host_a.id);
	test_sign_open(fx.store, &fx.deployer, w.app, 1, 0);
	mint_with(fx.boot_sk, w.app, w.machine.id, fx.host_a.id, 0, (int64_t)time(NULL), 0, &tok, &minted);
	assert_int_equal(keeper_host_load(&keys, fx.store, fx.host_a.id, &h), COFFER_OK);
	buf_init(&sealed, DELIVERY_SEALED_MAX);
	assert_int_equal(keeper_open(&keys, fx.store, &h, tok.ptr, tok.len, (int64_t)time(NULL), NULL, &sealed, &why),
			 COFFER_OK);
	assert_null(why);
	delivery_list_init(&got);
	assert_int_equal(delivery_open(fx.host_a.seal_sk, fx.host_a.id, w.machine.id, minted.jti, w.config_hash, sealed.ptr,
				       sealed.len, &got),
			 COFFER_OK);
	assert_int_equal(got.n, 0);
	delivery_list_release(&got);

	/* A refusal leaves *sealed as it was. */
	assert_int_equal(store_machine_destroy(fx.store, w.machine.id), COFFER_OK);
	size_t before = sealed.len;
	assert_int_equal(keeper_open(&keys, fx.store, &h, tok.ptr, tok.len, (int64_t)time(NULL), NULL, &sealed, &why),
			 COFFER_ERR_CONFLICT);
	assert_string_equal(why, "machine is destroyed");
	assert_int_equal(sealed.len, before);
	buf_release(&sealed);
	buf_release(&tok);
	keeper_keys_release(&keys);
}

/* ---- host revocation and key rotation ---- */

static int enrol_host(const char *name, struct test_host *h);

/* A rotation request of host h from its current keys (sign_sk, pk) to new ones. */
static void rekey_request(const struct test_host *h, const unsigned char old_pk[32], const struct secret *new_sk,
			  const unsigned char new_pk[32], const unsigned char seal_pk[32], struct keeper_rekey_request *r)
{
	memset(r, 0, sizeof(*r));
	memcpy(r->host_id, h->id, sizeof(r->host_id));
	memcpy(r->old_sign_pk, old_pk, 32);
	memcpy(r->sign_pk, new_pk, 32);
	memcpy(r->seal_pk, seal_pk, 32);
	struct hostauth_rekey proof = { r->host_id, r->old_sign_pk, r->sign_pk, r->seal_pk };
	assert_int_equal(hostauth_rekey_sign(h->sign_sk, &proof, r->sig_old), COFFER_OK);
	assert_int_equal(hostauth_rekey_sign(new_sk, &proof, r->sig_new), COFFER_OK);
}

static void test_host_rekey_and_revoke(void **state)
{
	(void)state;
	struct secret *master = NULL, *new_sk = NULL, *new_seal = NULL, *third_sk = NULL;
	struct keeper_keys keys = { 0 };
	struct test_host h = { 0 };
	struct store_host row, before;
	struct keeper_rekey_request r;
	struct keeper_enrolled out, again;
	unsigned char old_pk[32], new_pk[32], seal_pk[32], third_pk[32];
	const char *why = NULL;

	assert_int_equal(enrol_host("rk-1", &h), 0);
	assert_int_equal(keeper_master_from_file(fx.paths.key, &master), COFFER_OK);
	assert_int_equal(keeper_keys_derive(master, &keys), COFFER_OK);
	assert_int_equal(keeper_host_load(&keys, fx.store, h.id, &before), COFFER_OK);
	memcpy(old_pk, before.sign_pk, sizeof(old_pk));
	assert_int_equal(jws_generate_key(&new_sk, new_pk), COFFER_OK);
	assert_int_equal(hpke_generate_keypair(&new_seal, seal_pk), COFFER_OK);

	/* a proof whose new signature is another key's: refused, the row unchanged */
	rekey_request(&h, old_pk, new_sk, new_pk, seal_pk, &r);
	r.sig_new[0] ^= 1;
	assert_int_equal(keeper_host_rekey(&keys, fx.store, &r, &out, &why), COFFER_ERR_UNAUTH);
	assert_string_equal(why, "key rotation proof does not verify");
	assert_int_equal(keeper_host_load(&keys, fx.store, h.id, &row), COFFER_OK);
	assert_memory_equal(row.sign_pk, old_pk, 32);
	rekey_request(&h, old_pk, new_sk, new_pk, seal_pk, &r);
	r.sig_old[5] ^= 1; /* the host's own key did not sign it */
	assert_int_equal(keeper_host_rekey(&keys, fx.store, &r, &out, &why), COFFER_ERR_UNAUTH);
	assert_string_equal(why, "key rotation proof does not verify");

	/* the good one: new keys, MAC and cert of the same issue time; a retry answers the same */
	rekey_request(&h, old_pk, new_sk, new_pk, seal_pk, &r);
	assert_int_equal(keeper_host_rekey(&keys, fx.store, &r, &out, &why), COFFER_OK);
	assert_int_equal(keeper_host_load(&keys, fx.store, h.id, &row), COFFER_OK);
	assert_memory_equal(row.sign_pk, new_pk, 32);
	assert_memory_equal(row.seal_pk, seal_pk, 32);
	assert_memory_equal(row.cert, out.cert, sizeof(out.cert));
	assert_int_equal(row.enrolled_at, before.enrolled_at);
	assert_int_equal(keeper_host_rekey(&keys, fx.store, &r, &again, &why), COFFER_OK);
	assert_memory_equal(again.cert, out.cert, sizeof(out.cert));

	/* the old key cannot move the host anywhere else now */
	assert_int_equal(jws_generate_key(&third_sk, third_pk), COFFER_OK);
	rekey_request(&h, old_pk, third_sk, third_pk, seal_pk, &r);
	assert_int_equal(keeper_host_rekey(&keys, fx.store, &r, &out, &why), COFFER_ERR_UNAUTH);
	assert_string_equal(why, "the old key is not the host's");

	/* revoked: refused for good, and a row set back to ready by a store writer fails its MAC */
	assert_int_equal(keeper_host_revoke(&keys, fx.store, h.id, &row), COFFER_OK);
	assert_string_equal(row.state, "revoked");
	assert_int_equal(keeper_host_revoke(&keys, fx.store, h.id, NULL), COFFER_OK);
	secret_free(h.sign_sk);
	h.sign_sk = new_sk;
	new_sk = NULL;
	rekey_request(&h, new_pk, third_sk, third_pk, seal_pk, &r);
	assert_int_equal(keeper_host_rekey(&keys, fx.store, &r, &out, &why), COFFER_ERR_UNAUTH);
	assert_string_equal(why, "host is revoked");
	snprintf(row.state, sizeof(row.state), "%s", "ready");
	assert_int_equal(store_host_update(fx.store, &row), COFFER_OK);
	assert_int_equal(keeper_host_load(&keys, fx.store, h.id, &row), COFFER_ERR_CRYPTO);

	secret_free(third_sk);
	secret_free(new_seal);
	secret_free(h.sign_sk);
	secret_free(h.seal_sk);
	keeper_keys_release(&keys);
	secret_free(master);
}

/* ---- fixture ---- */

/* Enrols a host directly (keeper_host_enrol), as POST /v1/hosts/enrol would. */
static int enrol_host(const char *name, struct test_host *h)
{
	struct secret *master = NULL, *join = NULL;
	struct keeper_keys keys = { 0 };
	struct keeper_enrol_request req;
	struct keeper_enrolled out;
	const char *why = NULL;
	int ok = -1;

	memset(&req, 0, sizeof(req));
	if (keeper_master_from_file(fx.paths.key, &master) || keeper_keys_derive(master, &keys) ||
	    keeper_join_token_make(&keys, 60000, &join) || jws_generate_key(&h->sign_sk, req.sign_pk) ||
	    hpke_generate_keypair(&h->seal_sk, req.seal_pk))
		goto out;
	req.join_token = (const char *)secret_cbytes(join);
	req.join_token_len = secret_len(join);
	req.name = name;
	if (hostauth_enrol_proof_sign(h->sign_sk, req.join_token, req.join_token_len, name, req.proof) ||
	    keeper_host_enrol(&keys, fx.store, &req, (int64_t)time(NULL) * 1000, &out, &why))
		goto out;
	memcpy(h->id, out.host_id, sizeof(h->id));
	ok = 0;
out:
	secret_free(join);
	keeper_keys_release(&keys);
	secret_free(master);
	return ok;
}

/* The boot-token key from api.boot.key: hex seed -> Ed25519 key, what the api's --boot-key does. */
static int load_boot_key(void)
{
	struct buf b;
	struct secret *seed = NULL;
	unsigned char pk[JWS_PK_LEN];
	int ok = -1;
	buf_init(&b, 4096);
	if (fs_read_file(fx.paths.boot_key, &b) || b.len != HEX_LEN(JWS_SEED_LEN) + 1 ||
	    secret_new(JWS_SEED_LEN, &seed) || hex_decode(b.ptr, HEX_LEN(JWS_SEED_LEN), secret_bytes(seed), JWS_SEED_LEN) ||
	    jws_key_from_seed(seed, &fx.boot_sk, pk))
		goto out;
	ok = 0;
out:
	sodium_memzero(b.ptr, b.len);
	buf_release(&b);
	secret_free(seed);
	return ok;
}

static int setup(void **state)
{
	(void)state;
	struct secret *master = NULL;
	struct buf b;
	memset(&fx, 0, sizeof(fx));
	snprintf(fx.dir, sizeof(fx.dir), "/tmp/coffer-test-keeper.XXXXXX");
	if (!mkdtemp(fx.dir))
		return -1;
	if (fmt_into(fx.state, sizeof(fx.state), "%s/state", fx.dir) ||
	    fmt_into(fx.db_path, sizeof(fx.db_path), "%s/coffer.db", fx.dir) ||
	    fmt_into(fx.db_url, sizeof(fx.db_url), "sqlite:%s", fx.db_path) ||
	    fmt_into(fx.ready, sizeof(fx.ready), "%s/ready", fx.dir) ||
	    fmt_into(fx.log_path, sizeof(fx.log_path), "%s/log", fx.dir))
		return -1;
	fx.log_fd = open(fx.log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (fx.log_fd < 0)
		return -1;
	log_set_fd(fx.log_fd);
	log_set_role("keeper");

	if (keeper_init(fx.state, &fx.paths, NULL, NULL))
		return -1;
	buf_init(&b, 4096);
	if (fs_read_file(fx.paths.credential, &b) || b.len != HEX_LEN(32) + 1)
		return -1;
	memcpy(fx.credential_hex, b.ptr, HEX_LEN(32));
	if (fs_read_file(fx.paths.pub, &b) || hex_decode(b.ptr, HEX_LEN(32), fx.keeper_pub, sizeof(fx.keeper_pub)))
		return -1;
	/* The test's connection writes like the api: with the rows key the keeper wrote for it. */
	unsigned char rows_key[STORE_ROW_KEY_LEN];
	if (fs_read_file(fx.paths.rows_key, &b) || b.len != HEX_LEN(32) + 1 ||
	    hex_decode(b.ptr, HEX_LEN(32), rows_key, sizeof(rows_key)))
		return -1;
	buf_release(&b);

	if (store_open(fx.db_url, &fx.store))
		return -1;
	for (int t = 0; t < STORE_TABLE__COUNT; t++)
		if (store_auth_key(fx.store, (enum store_table)t, rows_key))
			return -1;
	sodium_memzero(rows_key, sizeof(rows_key));
	if (store_org_create(fx.store, "org", &fx.org))
		return -1;
	struct keeper_keys keys = derive_keys();
	test_deployer_make(&keys, fx.store, fx.org.id, DEPLOYER_ALL_APPS, DEPLOYER_ROLE_ADMIN, &fx.deployer);
	keeper_keys_release(&keys);
	if (keeper_master_from_file(fx.paths.key, &master))
		return -1;
	struct keeper_config cfg = { .store_url = fx.db_url, .listen = "127.0.0.1:0", .ready_file = fx.ready };
	enum coffer_err rc = keeper_start(&cfg, master, &fx.keeper);
	secret_free(master);
	if (rc)
		return -1;
	snprintf(fx.base_url, sizeof(fx.base_url), "http://127.0.0.1:%u", (unsigned)keeper_port(fx.keeper));
	if (load_boot_key() || enrol_host("host-a", &fx.host_a) || enrol_host("host-b", &fx.host_b))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[PATH_SIZE + 16];
	keeper_stop(fx.keeper);
	store_close(fx.store);
	secret_free(fx.boot_sk);
	test_deployer_free(&fx.deployer);
	secret_free(fx.host_a.sign_sk);
	secret_free(fx.host_a.seal_sk);
	secret_free(fx.host_b.sign_sk);
	secret_free(fx.host_b.seal_sk);
	log_set_fd(2);
	close(fx.log_fd);
	sodium_memzero(fx.credential_hex, sizeof(fx.credential_hex));
	if (snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx.dir) < (int)sizeof(cmd) && system(cmd) != 0)
		return -1;
	return 0;
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_files),
		cmocka_unit_test(test_master_file_refused),
		cmocka_unit_test(test_master_env),
		cmocka_unit_test(test_start_errors),
		cmocka_unit_test(test_ready_file),
		cmocka_unit_test(test_health),
		cmocka_unit_test(test_app_keys_unauthenticated),
		cmocka_unit_test(test_app_keys_create_once),
		cmocka_unit_test(test_app_keys_bad_requests),
		cmocka_unit_test(test_app_keys_concurrent_create),
		cmocka_unit_test(test_load_own_key),
		cmocka_unit_test(test_load_row_moved_to_another_app),
		cmocka_unit_test(test_load_public_key_swapped),
		cmocka_unit_test(test_load_wrapped_bit_flipped),
		cmocka_unit_test(test_boot_key_file),
		cmocka_unit_test(test_open_good),
		cmocka_unit_test(test_open_replayed_request),
		cmocka_unit_test(test_open_token_of_another_key),
		cmocka_unit_test(test_open_token_expired),
		cmocka_unit_test(test_open_token_for_another_host),
		cmocka_unit_test(test_open_machine_destroyed),
		cmocka_unit_test(test_open_machine_moved),
		cmocka_unit_test(test_open_version_row_edited),
		cmocka_unit_test(test_open_machine_of_another_app),
		cmocka_unit_test(test_open_unknown_machine),
		cmocka_unit_test(test_open_unknown_version),
		cmocka_unit_test(test_open_unknown_host),
		cmocka_unit_test(test_open_bad_bodies),
		cmocka_unit_test(test_open_ciphertext_moved_to_another_name),
		cmocka_unit_test(test_open_ciphertext_moved_to_another_app),
		cmocka_unit_test(test_open_ciphertext_truncated),
		cmocka_unit_test(test_open_direct_empty_version),
		cmocka_unit_test(test_host_rekey_and_revoke),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
