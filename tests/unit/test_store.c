/* Unit tests of the store: one suite, run against SQLite (argv[1] "sqlite")
 * and PostgreSQL (argv[1] "pg", server from COFFER_TEST_PG_URL). Each test
 * gets a fresh database: a new temp folder (SQLite) or a new schema chosen
 * with options=-csearch_path (PostgreSQL), dropped afterwards. Raw SQL
 * through a separate connection plays the attacker with write access. */
#include <errno.h>
#include <pthread.h>
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
#include <libpq-fe.h>
#include <sodium.h>
#include <sqlite3.h>

#include "err.h"
#include "log.h"
#include "store.h"

#define URL_SIZE 1024
#define SQL_SIZE 512
#define CONC_THREADS 20
#define CONC_CHANGES 50
#define CONC_TOTAL (CONC_THREADS * CONC_CHANGES)
#define OPEN_THREADS 8
#define AUDIT_THREADS 8
#define AUDIT_PER_THREAD 25
#define RELEASE_THREADS 8
#define RELEASE_ROUNDS 3
#define HOLD_US 200000       /* how long a test holds a write transaction while another writer waits */
#define CKPT_PUTS 600        /* secrets changes that write well past a WAL checkpoint */
#define LATEST 14            /* the schema version this binary migrates to */
static const unsigned char org_sig[STORE_APP_ORG_SIG_LEN] = { 7 }; /* an app key's org signature, opaque here */
#define CKPT_WAL_MAX_FRAMES 1400 /* the store checkpoints at 1000 frames; a commit adds a few */
#define SQLITE_FRAME_BYTES (4096 + 24)

static int use_pg;
static const char *pg_base_url;

/* The current test's database. */
static struct {
	char url[URL_SIZE];
	char dir[256];
	char path[300];
	char schema[64];
} db;

/* ---- per-test databases and raw access ---- */

static void quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

static void pg_admin(const char *sql)
{
	PGconn *c = PQconnectdb(pg_base_url);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	PQsetNoticeProcessor(c, quiet, NULL);
	PGresult *r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		fail_msg("pg admin: %s", PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
}

static void fresh_db(void)
{
	unsigned char rnd[6];
	char hex[sizeof(rnd) * 2 + 1];
	char sql[SQL_SIZE];
	memset(&db, 0, sizeof(db));
	if (!use_pg) {
		snprintf(db.dir, sizeof(db.dir), "/tmp/coffer-store-test.XXXXXX");
		assert_non_null(mkdtemp(db.dir));
		assert_true(snprintf(db.path, sizeof(db.path), "%s/coffer.db", db.dir) < (int)sizeof(db.path));
		assert_true(snprintf(db.url, sizeof(db.url), "sqlite:%s", db.path) < (int)sizeof(db.url));
		return;
	}
	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2hex(hex, sizeof(hex), rnd, sizeof(rnd));
	snprintf(db.schema, sizeof(db.schema), "coffer_t_%s", hex);
	snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", db.schema);
	pg_admin(sql);
	assert_true(snprintf(db.url, sizeof(db.url), "%s%coptions=-csearch_path%%3D%s", pg_base_url,
			     strchr(pg_base_url, '?') ? '&' : '?', db.schema) < (int)sizeof(db.url));
}

static void drop_db(void)
{
	char p[400];
	if (use_pg) {
		char sql[SQL_SIZE];
		snprintf(sql, sizeof(sql), "DROP SCHEMA %s CASCADE", db.schema);
		pg_admin(sql);
		return;
	}
	const char *suffix[] = { "", "-wal", "-shm" };
	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s%s", db.path, suffix[i]);
		unlink(p);
	}
	rmdir(db.dir);
}

/* Runs SQL on a connection of its own; returns the first column of the first row as an integer. */
static long long raw(const char *sql)
{
	long long v = 0;
	if (use_pg) {
		PGconn *c = PQconnectdb(db.url);
		assert_int_equal(PQstatus(c), CONNECTION_OK);
		PQsetNoticeProcessor(c, quiet, NULL);
		PGresult *r = PQexec(c, sql);
		ExecStatusType st = PQresultStatus(r);
		if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
			fail_msg("raw sql failed: %s: %s", sql, PQerrorMessage(c));
		if (st == PGRES_TUPLES_OK && PQntuples(r) > 0)
			v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		else if (st == PGRES_COMMAND_OK)
			v = strtoll(PQcmdTuples(r), NULL, 10);
		PQclear(r);
		PQfinish(c);
		return v;
	}
	sqlite3 *c;
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_open(db.path, &c), SQLITE_OK);
	sqlite3_busy_timeout(c, 10000);
	if (sqlite3_prepare_v2(c, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("raw sql failed: %s: %s", sql, sqlite3_errmsg(c));
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	else if (rc == SQLITE_DONE)
		v = sqlite3_changes(c);
	else
		fail_msg("raw sql failed: %s: %s", sql, sqlite3_errmsg(c));
	sqlite3_finalize(st);
	sqlite3_close(c);
	return v;
}

/* The row MAC key every connection of these tests gets, for every table (row authentication). */
static const unsigned char test_rows_key[STORE_ROW_KEY_LEN] = "coffer-test-rows-key-32-bytes!!";

static enum coffer_err give_keys(struct store *s)
{
	enum coffer_err rc = COFFER_OK;
	for (int t = 0; t < STORE_TABLE__COUNT && rc == COFFER_OK; t++)
		rc = store_auth_key(s, (enum store_table)t, test_rows_key);
	return rc;
}

/* store_open, then every row key. */
static enum coffer_err open_keyed(const char *url, struct store **out)
{
	enum coffer_err rc = store_open(url, out);
	if (rc == COFFER_OK && (rc = give_keys(*out)) != COFFER_OK) {
		store_close(*out);
		*out = NULL;
	}
	return rc;
}

static struct store *open_store(void)
{
	struct store *s = NULL;
	assert_int_equal(open_keyed(db.url, &s), COFFER_OK);
	assert_non_null(s);
	return s;
}

static int setup(void **state)
{
	fresh_db();
	*state = open_store();
	return 0;
}

static int setup_fresh(void **state)
{
	fresh_db();
	*state = NULL;
	return 0;
}

static int teardown(void **state)
{
	store_close(*state);
	drop_db();
	return 0;
}

static void make_app(struct store *s, const char *org_name, const char *app_name, struct store_org *org,
		     struct store_app *app)
{
	if (store_org_get_by_name(s, org_name, org) != COFFER_OK)
		assert_int_equal(store_org_create(s, org_name, org), COFFER_OK);
	assert_int_equal(store_app_create(s, org->id, app_name, 0, app), COFFER_OK);
}

static struct store_secret_change set(const char *name, const char *ct, const char *digest)
{
	return (struct store_secret_change){ .name = name, .ciphertext = (const unsigned char *)ct,
					     .ciphertext_len = strlen(ct), .digest = digest, .key_version = 1 };
}

static struct store_secret_change unset(const char *name)
{
	return (struct store_secret_change){ .name = name, .remove = 1 };
}

static const struct store_secret *find(const struct store_secret_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->items[i].name, name) == 0)
			return &l->items[i];
	return NULL;
}

static void assert_value(const struct store_secret_list *l, const char *name, const char *ct)
{
	const struct store_secret *e = find(l, name);
	if (!e)
		fail_msg("name %s missing from version %llu", name, (unsigned long long)l->version);
	assert_int_equal(e->ciphertext_len, strlen(ct));
	assert_memory_equal(e->ciphertext, ct, strlen(ct));
}

/* ---- open and migrations ---- */

static void test_migrations_once(void **state)
{
	struct store *s = *state;
	long long n = raw("SELECT count(*) FROM schema_migrations");
	long long at = raw("SELECT sum(applied_at) FROM schema_migrations");
	assert_true(n >= 1);
	assert_int_equal(n, (long long)store_schema_version(s));
	assert_int_equal(raw("SELECT max(version) FROM schema_migrations"), n);
	/* every table of the data model exists now */
	const char *tables[] = { "orgs", "tokens", "apps", "app_keys", "secret_versions", "secret_values",
				 "secret_entries", "releases", "machines", "hosts", "audit_events",
				 "join_tokens_used", "leases", "deployers", "signatures" };
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		char sql[SQL_SIZE];
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", tables[i]);
		assert_int_equal(raw(sql), 0);
	}
	for (int i = 0; i < 2; i++) {
		struct store *again = open_store();
		store_close(again);
	}
	assert_int_equal(raw("SELECT count(*) FROM schema_migrations"), n);
	assert_int_equal(raw("SELECT sum(applied_at) FROM schema_migrations"), at);
	assert_string_equal(store_backend_name(s), use_pg ? "postgres" : "sqlite");
}

/* Takes a store at schema version 14 back to 13: tokens record no rotation. */
static void undo_migration_14(void)
{
	raw("ALTER TABLE tokens DROP COLUMN rotated_at");
	raw("DELETE FROM schema_migrations WHERE version = 14");
}

/* Takes a store at schema version 13 back to 12: no spent boot tokens. */
static void undo_migration_13(void)
{
	undo_migration_14();
	raw("DROP TABLE boot_tokens_spent");
	raw("DELETE FROM schema_migrations WHERE version = 13");
}

/* Takes a store at schema version 12 back to 11: no kms_keys. */
static void undo_migration_12(void)
{
	undo_migration_13();
	raw("DROP TABLE kms_keys");
	raw("DELETE FROM schema_migrations WHERE version = 12");
}

/* Takes a store at schema version 10 back to version 9: no deployers, no signatures. */
static void undo_migration_11(void)
{
	undo_migration_12();
	raw("ALTER TABLE app_keys DROP COLUMN org_sig");
	raw("DELETE FROM schema_migrations WHERE version = 11");
}

static void undo_migration_10(void)
{
	undo_migration_11();
	raw("DROP TABLE signatures");
	raw("DROP TABLE deployers");
	raw("DELETE FROM schema_migrations WHERE version = 10");
}

/* Takes a store at the latest schema version back to version 8: its apps lose their MACs. */
static void undo_migration_9(void)
{
	undo_migration_10();
	raw("ALTER TABLE apps DROP COLUMN mac");
	raw("DELETE FROM schema_migrations WHERE version = 9");
}

/* Takes a store at the latest schema version back to version 7: its rows lose their MACs. */
static void undo_migration_8(void)
{
	undo_migration_9();
	raw("ALTER TABLE tokens DROP COLUMN mac");
	raw("ALTER TABLE machines DROP COLUMN mac");
	raw("ALTER TABLE releases DROP COLUMN mac");
	raw("ALTER TABLE secret_versions DROP COLUMN mac");
	raw("DELETE FROM schema_migrations WHERE version = 8");
}

/* Takes a store at the latest schema version back to version 6. */
static void undo_migration_7(void)
{
	undo_migration_8();
	raw("ALTER TABLE secret_versions DROP COLUMN manifest");
	raw("DELETE FROM schema_migrations WHERE version = 7");
}

/* Takes a store at the latest schema version back to version 5. */
static void undo_migration_6(void)
{
	undo_migration_7();
	raw("DROP TABLE host_nonces");
	raw("DELETE FROM schema_migrations WHERE version = 6");
}

/* Takes a store at the latest schema version back to version 4. */
static void undo_migration_5(void)
{
	undo_migration_6();
	raw("DROP TABLE leases");
	raw("DELETE FROM schema_migrations WHERE version = 5");
}

/* Takes a store at schema version 5 back to version 3. */
static void undo_migration_4(void)
{
	undo_migration_5();
	raw("ALTER TABLE machines DROP COLUMN tail");
	raw("DELETE FROM schema_migrations WHERE version = 4");
}

/* Takes a store at schema version 5 back to version 2, as a binary of that time left it. */
static void undo_migration_3(void)
{
	undo_migration_4();
	raw("DROP INDEX releases_status");
	raw("ALTER TABLE machines DROP COLUMN started_at");
	raw("ALTER TABLE machines DROP COLUMN restarts");
	raw("ALTER TABLE releases DROP COLUMN previous_version");
	raw("ALTER TABLE releases DROP COLUMN previous_secrets");
	raw("ALTER TABLE releases DROP COLUMN progress");
	raw("DELETE FROM schema_migrations WHERE version = 3");
}

/* KMS keys: one row per version, authenticated as a whole; rm takes every version. */
static void test_kms_keys(void **state)
{
	struct store *s = *state;
	struct store_org org;
	struct store_app app;
	struct store_kms_key k = { 0 }, got;
	struct store_kms_key_list l = { 0 };
	make_app(s, "acme", "web", &org, &app);
	memcpy(k.app_id, app.id, sizeof(k.app_id));
	strcpy(k.name, "sig");
	strcpy(k.type, "ed25519");
	k.version = 1;
	memset(k.public_key, 7, 32);
	k.public_key_len = 32;
	memset(k.wrapped, 9, 72);
	k.wrapped_len = 72;
	assert_int_equal(store_kms_key_put(s, &k), COFFER_OK);
	assert_int_equal(store_kms_key_put(s, &k), COFFER_ERR_CONFLICT);
	k.version = 2;
	k.public_key_len = 0; /* none: stored empty */
	assert_int_equal(store_kms_key_put(s, &k), COFFER_OK);
	assert_int_equal(store_kms_key_get(s, app.id, "sig", 0, &got), COFFER_OK);
	assert_int_equal(got.version, 2);
	assert_int_equal(got.public_key_len, 0);
	assert_int_equal(store_kms_key_get(s, app.id, "sig", 1, &got), COFFER_OK);
	assert_int_equal(got.public_key_len, 32);
	assert_int_equal(got.wrapped_len, 72);
	assert_string_equal(got.type, "ed25519");
	assert_int_equal(store_kms_key_get(s, app.id, "nope", 0, &got), COFFER_ERR_NOT_FOUND);
	assert_int_equal(store_kms_key_get(s, app.id, "", 0, &got), COFFER_ERR_INVALID);
	/* an unknown app is the foreign key's */
	memcpy(k.app_id, "000000000000000000000000", 25);
	assert_int_not_equal(store_kms_key_put(s, &k), COFFER_OK);
	/* an edited row is refused on read */
	raw("UPDATE kms_keys SET type = 'aead' WHERE version = 1");
	assert_int_equal(store_kms_key_get(s, app.id, "sig", 1, &got), COFFER_ERR_TAMPERED);
	assert_int_equal(store_kms_key_list(s, app.id, &l), COFFER_ERR_TAMPERED);
	raw("UPDATE kms_keys SET type = 'ed25519' WHERE version = 1");
	assert_int_equal(store_kms_key_list(s, app.id, &l), COFFER_OK);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.items[0].version, 1);
	store_kms_key_list_release(&l);
	assert_int_equal(store_kms_key_delete(s, app.id, "sig"), COFFER_OK);
	assert_int_equal(store_kms_key_delete(s, app.id, "sig"), COFFER_ERR_NOT_FOUND);
	assert_int_equal(store_kms_key_get(s, app.id, "sig", 0, &got), COFFER_ERR_NOT_FOUND);
}

/* A store left at schema version 1 (what the first release wrote) is brought up to date, its rows kept. */
static void test_migration_2_upgrade(void **state)
{
	struct store *s = *state;
	struct store_org org;
	struct store_host h;
	assert_int_equal(store_schema_version(s), LATEST);
	assert_int_equal(store_org_create(s, "kept", &org), COFFER_OK);
	store_close(s);
	*state = NULL;
	undo_migration_3();
	raw("DROP TABLE join_tokens_used");
	raw("ALTER TABLE hosts DROP COLUMN cert");
	raw("DELETE FROM schema_migrations WHERE version = 2");
	assert_int_equal(raw("SELECT max(version) FROM schema_migrations"), 1);
	s = open_store();
	*state = s;
	assert_int_equal(raw("SELECT max(version) FROM schema_migrations"), LATEST);
	assert_int_equal(raw("SELECT count(*) FROM join_tokens_used"), 0);
	assert_int_equal(raw("SELECT count(cert) FROM hosts"), 0);
	assert_int_equal(store_org_get_by_name(s, "kept", &org), COFFER_OK);
	assert_int_equal(store_host_get_by_name(s, "none", &h), COFFER_ERR_NOT_FOUND);
}

/* A store at schema version 2 is brought to 3: its machines and releases are kept, with the new defaults. */
static void test_migration_3_upgrade(void **state)
{
	struct store *s = *state;
	struct store_org org;
	struct store_app app;
	struct store_machine m, got;
	struct store_release r = { 0 };
	uint64_t v;
	make_app(s, "acme", "web", &org, &app);
	assert_int_equal(store_machine_create(s, app.id, "host-1", 0, &m), COFFER_OK);
	assert_int_equal(store_release_create(s, app.id, "{\"count\":1}", 0, 0, 0, "alice", &v), COFFER_OK);
	store_close(s);
	*state = NULL;
	undo_migration_3();
	assert_int_equal(raw("SELECT max(version) FROM schema_migrations"), 2);
	/* what a version 2 binary could write: a release with a status and a reason */
	assert_int_equal(raw("UPDATE releases SET reason = 'old', status = 'succeeded'"), 1);
	s = open_store();
	*state = s;
	assert_int_equal(raw("SELECT max(version) FROM schema_migrations"), LATEST);
	assert_int_equal(raw("SELECT count(*) FROM schema_migrations"), LATEST);
	/* the rows are kept, with the new defaults; but they carry no MAC (before schema 8): refused */
	assert_int_equal(raw("SELECT count(*) FROM machines WHERE restarts = 0 AND started_at IS NULL"), 1);
	assert_int_equal(raw("SELECT count(*) FROM releases WHERE progress = '{}' AND previous_version = 0"), 1);
	assert_int_equal(store_machine_get(s, m.id, &got), COFFER_ERR_TAMPERED);
	assert_int_equal(store_release_get(s, app.id, 1, &r), COFFER_ERR_TAMPERED);
	assert_null(r.config);
	/* so does the app's (before schema 9): no release is made on it */
	assert_int_equal(store_release_create(s, app.id, "{}", 0, 1, 0, "alice", &v), COFFER_ERR_TAMPERED);
	assert_int_equal(raw("SELECT count(*) FROM releases"), 1);
}

/* A store at schema version 3 is brought to 4 (and 5): its machines are kept, without a tail. */
static void test_migration_4_upgrade(void **state)
{
	struct store *s = *state;
	struct store_org org;
	struct store_app app;
	struct store_machine m, got;
	struct buf tail;
	make_app(s, "acme", "web", &org, &app);
	assert_int_equal(store_machine_create(s, app.id, "host-1", 0, &m), COFFER_OK);
	assert_int_equal(store_machine_report(s, m.id, "started", 0, 7, -1, 0, 1700000001000LL), COFFER_OK);
	store_close(s);
	*state = NULL;
	undo_migration_4();
	assert_int_equal(raw("SELECT max(version) FROM schema_migrations"), 3);
	s = open_store();
	*state = s;
	assert_int_equal(raw("SELECT max(version) FROM schema_migrations"), LATEST);
	assert_int_equal(raw("SELECT count(tail) FROM machines"), 0);
	assert_int_equal(raw("SELECT count(*) FROM machines WHERE state = 'started' AND pid = 7"), 1);
	assert_int_equal(store_machine_get(s, m.id, &got), COFFER_ERR_TAMPERED); /* no MAC: before schema 8 */
	buf_init(&tail, STORE_MACHINE_TAIL_MAX);
	assert_int_equal(buf_adds(&tail, "stale"), COFFER_OK);
	assert_int_equal(store_machine_tail(s, m.id, &tail), COFFER_OK);
	assert_int_equal(tail.len, 0);
	buf_release(&tail);
}

/* A store at schema version 4 is brought to 5: a leases table, empty, and its rows kept. */
static void test_migration_5_upgrade(void **state)
{
	struct store *s = *state;
	struct store_org org;
	struct store_app app;
	int held = -1;
	make_app(s, "acme", "web", &org, &app);
	store_close(s);
	*state = NULL;
	undo_migration_5();
	assert_int_equal(raw("SELECT max(version) FROM schema_migrations"), 4);
	s = open_store();
	*state = s;
	assert_int_equal(raw("SELECT max(version) FROM schema_migrations"), LATEST);
	assert_int_equal(raw("SELECT count(*) FROM leases"), 0);
	assert_int_equal(raw("SELECT count(*) FROM apps WHERE name = 'web'"), 1);
	assert_int_equal(store_app_get_by_name(s, "web", &app), COFFER_ERR_TAMPERED); /* no MAC: before schema 9 */
	assert_int_equal(store_lease_acquire(s, "releases", "api-1", 60000, &held), COFFER_OK);
	assert_int_equal(held, 1);
}

/* ---- row authentication ---- */

static void token_in(struct store_token *in, const char *org_id, unsigned char fill, const char *role)
{
	memset(in, 0, sizeof(*in));
	snprintf(in->org_id, sizeof(in->org_id), "%s", org_id);
	memset(in->hash, fill, sizeof(in->hash));
	snprintf(in->role, sizeof(in->role), "%s", role);
}

/* An edited, moved or MAC-less token row is refused by every read, and a write to it changes nothing. */
static void test_row_auth_tokens(void **state)
{
	struct store *s = *state;
	struct store_org org;
	struct store_token in, tok, got;
	struct store_token_list l = { 0 };
	char sql[SQL_SIZE];
	assert_int_equal(store_org_create(s, "acme", &org), COFFER_OK);
	token_in(&in, org.id, 0x11, "read");
	assert_int_equal(store_token_insert(s, &in, &tok), COFFER_OK);
	assert_int_equal(store_token_get_by_hash(s, in.hash, &got), COFFER_OK);
	assert_string_equal(got.role, "read");

	/* a read token made admin in the store */
	snprintf(sql, sizeof(sql), "UPDATE tokens SET role = 'admin' WHERE id = '%s'", tok.id);
	assert_int_equal(raw(sql), 1);
	assert_int_equal(store_token_get_by_hash(s, in.hash, &got), COFFER_ERR_TAMPERED);
	assert_int_equal(store_token_list(s, org.id, &l), COFFER_ERR_TAMPERED);
	assert_null(l.items);
	/* an update verifies the row first: the edited row is not sealed anew (laundered) */
	assert_int_equal(store_token_revoke(s, org.id, tok.id), COFFER_ERR_TAMPERED);
	assert_int_equal(raw("SELECT count(*) FROM tokens WHERE revoked_at IS NULL AND role = 'admin'"), 1);
	assert_int_equal(store_token_get_by_hash(s, in.hash, &got), COFFER_ERR_TAMPERED);
	/* put back as it was, it verifies again */
	snprintf(sql, sizeof(sql), "UPDATE tokens SET role = 'read' WHERE id = '%s'", tok.id);
	assert_int_equal(raw(sql), 1);
	assert_int_equal(store_token_get_by_hash(s, in.hash, &got), COFFER_OK);
	/* the MAC binds the primary key: the row moved to another id is refused */
	snprintf(sql, sizeof(sql), "UPDATE tokens SET id = 'ffffffffffffffffffffffff' WHERE id = '%s'", tok.id);
	assert_int_equal(raw(sql), 1);
	assert_int_equal(store_token_get_by_hash(s, in.hash, &got), COFFER_ERR_TAMPERED);
	snprintf(sql, sizeof(sql), "UPDATE tokens SET id = '%s'", tok.id);
	assert_int_equal(raw(sql), 1);
	assert_int_equal(store_token_get_by_hash(s, in.hash, &got), COFFER_OK);
	/* a row without a MAC (written before schema version 8, or forged) */
	assert_int_equal(raw("UPDATE tokens SET mac = NULL"), 1);
	assert_int_equal(store_token_get_by_hash(s, in.hash, &got), COFFER_ERR_TAMPERED);
}

/* A trigger a store writer adds (to edit a row between its write and its seal) refuses every authenticated write. */
static void test_row_auth_trigger(void **state)
{
	struct store *s = *state;
	struct store_org org;
	struct store_token in, tok, got;
	assert_int_equal(store_org_create(s, "acme", &org), COFFER_OK);
	token_in(&in, org.id, 0x22, "read");
	assert_int_equal(store_token_insert(s, &in, &tok), COFFER_OK);
	if (use_pg) {
		raw("CREATE FUNCTION evil() RETURNS trigger LANGUAGE plpgsql AS "
		    "$$ BEGIN UPDATE tokens SET role = 'admin' WHERE id = NEW.id AND role <> 'admin'; RETURN NULL; END $$");
		raw("CREATE TRIGGER evil AFTER UPDATE ON tokens FOR EACH ROW EXECUTE FUNCTION evil()");
	} else {
		raw("CREATE TRIGGER evil AFTER UPDATE ON tokens BEGIN "
		    "UPDATE tokens SET role = 'admin' WHERE id = NEW.id AND role <> 'admin'; END");
	}
	/* the revoke would be read back as an admin token and sealed: refused, rolled back */
	assert_int_equal(store_token_revoke(s, org.id, tok.id), COFFER_ERR_TAMPERED);
	token_in(&in, org.id, 0x23, "read");
	assert_int_equal(store_token_insert(s, &in, &got), COFFER_ERR_TAMPERED);
	raw(use_pg ? "DROP TRIGGER evil ON tokens" : "DROP TRIGGER evil");
	assert_int_equal(store_token_get_by_hash(s, tok.hash, &got), COFFER_OK);
	assert_string_equal(got.role, "read");
	assert_int_equal(got.revoked_at, 0);
	assert_int_equal(raw("SELECT count(*) FROM tokens"), 1);
}

/* A connection with another key refuses the rows; one without a key reads and writes nothing. */
static void test_row_auth_keys(void **state)
{
	struct store *s = *state, *other = NULL;
	struct store_org org;
	struct store_token in, tok, got;
	unsigned char wrong[STORE_ROW_KEY_LEN];
	assert_int_equal(store_org_create(s, "acme", &org), COFFER_OK);
	token_in(&in, org.id, 0x22, "admin");
	assert_int_equal(store_token_insert(s, &in, &tok), COFFER_OK);

	assert_int_equal(store_open(db.url, &other), COFFER_OK);
	assert_int_equal(store_token_get_by_hash(other, in.hash, &got), COFFER_ERR_INTERNAL);
	assert_int_equal(store_token_key_check(other), COFFER_ERR_INTERNAL);
	in.hash[0] = 0x23;
	assert_int_equal(store_token_insert(other, &in, &got), COFFER_ERR_INTERNAL);
	assert_int_equal(raw("SELECT count(*) FROM tokens"), 1);
	memset(wrong, 0x5a, sizeof(wrong));
	assert_int_equal(store_auth_key(other, STORE_TABLE_TOKENS, wrong), COFFER_OK);
	assert_int_equal(store_token_get_by_hash(other, tok.hash, &got), COFFER_ERR_TAMPERED);
	assert_int_equal(store_token_key_check(other), COFFER_ERR_TAMPERED);
	assert_int_equal(store_token_key_check(s), COFFER_OK);
	assert_int_equal(store_auth_key(other, STORE_TABLE__COUNT, wrong), COFFER_ERR_INVALID);
	store_close(other);
}

/* Machines, releases and secrets versions: an edit is refused by reads and by the update path alike. */
static void test_row_auth_run_rows(void **state)
{
	struct store *s = *state;
	struct store_org org;
	struct store_app app;
	struct store_machine m, got;
	struct store_machine_list ml = { 0 };
	struct store_release r = { 0 };
	struct store_secret_list sl = { 0 };
	struct store_secret_change c = set("A", "ct-a", "digest-a");
	uint64_t v, sv;
	char sql[SQL_SIZE];
	make_app(s, "acme", "web", &org, &app);
	assert_int_equal(store_machine_create(s, app.id, "host-1", 0, &m), COFFER_OK);
	assert_int_equal(store_machine_report(s, m.id, "started", 0, 7, -1, 0, 1700000001000LL), COFFER_OK);
	assert_int_equal(store_machine_get(s, m.id, &got), COFFER_OK);
	assert_int_equal(got.pid, 7);

	/* a machine moved to another host */
	snprintf(sql, sizeof(sql), "UPDATE machines SET host_id = 'host-2' WHERE id = '%s'", m.id);
	assert_int_equal(raw(sql), 1);
	assert_int_equal(store_machine_get(s, m.id, &got), COFFER_ERR_TAMPERED);
	assert_int_equal(store_machine_list_by_host(s, "host-2", &ml), COFFER_ERR_TAMPERED);
	assert_int_equal(store_machine_report(s, m.id, "stopped", 0, 0, 0, 0, 0), COFFER_ERR_TAMPERED);
	assert_int_equal(store_machine_destroy(s, m.id), COFFER_ERR_TAMPERED);
	assert_int_equal(raw("SELECT count(*) FROM machines WHERE state = 'started' AND host_id = 'host-2'"), 1);
	assert_int_equal(store_machine_get(s, m.id, &got), COFFER_ERR_TAMPERED);

	/* a destroyed machine edited back to started */
	snprintf(sql, sizeof(sql), "UPDATE machines SET host_id = 'host-1' WHERE id = '%s'", m.id);
	assert_int_equal(raw(sql), 1);
	assert_int_equal(store_machine_destroy(s, m.id), COFFER_OK);
	assert_int_equal(store_machine_get(s, m.id, &got), COFFER_OK);
	assert_string_equal(got.state, "destroyed");
	assert_int_equal(raw("UPDATE machines SET state = 'started'"), 1);
	assert_int_equal(store_machine_get(s, m.id, &got), COFFER_ERR_TAMPERED);

	/* a release sent back to an older secrets version */
	assert_int_equal(store_secrets_put(s, app.id, &c, 1, "alice", "deployed", NULL, &sv), COFFER_OK);
	assert_int_equal(store_secrets_put(s, app.id, &c, 1, "alice", "deployed", NULL, &sv), COFFER_OK);
	assert_int_equal(store_release_create(s, app.id, "{}", sv, 0, 0, "alice", &v), COFFER_OK);
	assert_int_equal(store_release_get(s, app.id, v, &r), COFFER_OK);
	assert_int_equal(r.secrets_version, 2);
	store_release_clear(&r);
	assert_int_equal(raw("UPDATE releases SET secrets_version = 1"), 1);
	assert_int_equal(store_release_get(s, app.id, v, &r), COFFER_ERR_TAMPERED);
	assert_int_equal(store_release_update(s, app.id, v, "succeeded", NULL, NULL), COFFER_ERR_TAMPERED);
	assert_int_equal(raw("SELECT count(*) FROM releases WHERE status = 'pending'"), 1);
	assert_int_equal(store_app_set_current_release(s, app.id, v, 0), COFFER_ERR_TAMPERED);

	/* a secrets version's row edited */
	assert_int_equal(store_secrets_get(s, app.id, 1, &sl), COFFER_OK);
	store_secret_list_release(&sl);
	assert_int_equal(raw("UPDATE secret_versions SET actor = 'mallory' WHERE version = 1"), 1);
	assert_int_equal(store_secrets_get(s, app.id, 1, &sl), COFFER_ERR_TAMPERED);
	assert_int_equal(store_secrets_set_status(s, app.id, 1, "staged"), COFFER_ERR_TAMPERED);
	assert_int_equal(store_secrets_set_head(s, app.id, 1), COFFER_ERR_TAMPERED);
	assert_int_equal(store_secrets_get(s, app.id, 2, &sl), COFFER_OK);
	store_secret_list_release(&sl);
}

/*
 * The apps row: moved into another org, or its secrets head set back, it is
 * refused by every read and by the write paths, which change nothing.
 */
static void test_row_auth_apps(void **state)
{
	struct store *s = *state;
	struct store_org org, other;
	struct store_app app, got;
	struct store_app_list al = { 0 };
	struct store_secret_list sl = { 0 };
	struct store_secret_change c1 = set("A", "ct-a-1", "digest-a-1"), c2 = set("A", "ct-a-2", "digest-a-2");
	uint64_t v, rel;
	char sql[SQL_SIZE];
	make_app(s, "acme", "web", &org, &app);
	assert_int_equal(store_org_create(s, "evil", &other), COFFER_OK);
	assert_int_equal(store_secrets_put(s, app.id, &c1, 1, "alice", "deployed", NULL, &v), COFFER_OK);
	assert_int_equal(store_secrets_put(s, app.id, &c2, 1, "alice", "deployed", NULL, &v), COFFER_OK);
	assert_int_equal(v, 2);
	/* the write paths seal what they write: set head, set current release */
	assert_int_equal(store_secrets_set_head(s, app.id, 2), COFFER_OK);
	assert_int_equal(store_release_create(s, app.id, "{}", 2, 0, 0, "alice", &rel), COFFER_OK);
	assert_int_equal(store_app_set_current_release(s, app.id, rel, 2), COFFER_OK);
	assert_int_equal(store_app_get(s, app.id, &got), COFFER_OK);
	assert_int_equal(got.secrets_head, 2);
	assert_int_equal(got.deployed_version, 2);
	assert_int_equal(got.current_release, rel);

	/* moved into another org */
	snprintf(sql, sizeof(sql), "UPDATE apps SET org_id = '%s' WHERE id = '%s'", other.id, app.id);
	assert_int_equal(raw(sql), 1);
	assert_int_equal(store_app_get_by_name(s, "web", &got), COFFER_ERR_TAMPERED);
	assert_int_equal(store_app_get(s, app.id, &got), COFFER_ERR_TAMPERED);
	assert_int_equal(store_app_list(s, other.id, &al), COFFER_ERR_TAMPERED);
	assert_null(al.items);
	assert_int_equal(store_secrets_put(s, app.id, &c1, 1, "mallory", "deployed", NULL, &v), COFFER_ERR_TAMPERED);
	assert_int_equal(store_secrets_set_head(s, app.id, 2), COFFER_ERR_TAMPERED);
	assert_int_equal(store_app_set_current_release(s, app.id, rel, 2), COFFER_ERR_TAMPERED);
	assert_int_equal(store_app_destroy(s, app.id), COFFER_ERR_TAMPERED);
	assert_int_equal(raw("SELECT count(*) FROM secret_versions"), 2);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM apps WHERE org_id = '%s'", other.id);
	assert_int_equal(raw(sql), 1);
	/* put back, it verifies again */
	snprintf(sql, sizeof(sql), "UPDATE apps SET org_id = '%s' WHERE id = '%s'", org.id, app.id);
	assert_int_equal(raw(sql), 1);
	assert_int_equal(store_app_get_by_name(s, "web", &got), COFFER_OK);

	/* its secrets head set back to the older version */
	assert_int_equal(raw("UPDATE apps SET secrets_head = 1"), 1);
	assert_int_equal(store_app_get(s, app.id, &got), COFFER_ERR_TAMPERED);
	assert_int_equal(store_secrets_get(s, app.id, 0, &sl), COFFER_ERR_TAMPERED);
	assert_null(sl.items);
	/* no version is made on the older head, and the update path does not seal the edit anew */
	assert_int_equal(store_secrets_put(s, app.id, &c1, 1, "alice", "deployed", NULL, &v), COFFER_ERR_TAMPERED);
	assert_int_equal(store_secrets_set_head(s, app.id, 1), COFFER_ERR_TAMPERED);
	assert_int_equal(store_release_create(s, app.id, "{}", 1, 0, 0, "alice", &v), COFFER_ERR_TAMPERED);
	assert_int_equal(raw("SELECT count(*) FROM secret_versions"), 2);
	assert_int_equal(raw("SELECT count(*) FROM releases"), 1);
	assert_int_equal(store_app_get(s, app.id, &got), COFFER_ERR_TAMPERED);
	assert_int_equal(raw("UPDATE apps SET secrets_head = 2"), 1);
	assert_int_equal(store_secrets_get(s, app.id, 0, &sl), COFFER_OK);
	assert_value(&sl, "A", "ct-a-2");
	store_secret_list_release(&sl);

	/* the grace period and the deployed version are covered too */
	assert_int_equal(raw("UPDATE apps SET grace_ms = 1"), 1);
	assert_int_equal(store_app_get(s, app.id, &got), COFFER_ERR_TAMPERED);
	assert_int_equal(raw("UPDATE apps SET grace_ms = 30000, deployed_version = 1"), 1);
	assert_int_equal(store_app_get(s, app.id, &got), COFFER_ERR_TAMPERED);
	assert_int_equal(raw("UPDATE apps SET deployed_version = 2"), 1);
	assert_int_equal(store_app_get(s, app.id, &got), COFFER_OK);
	/* a row without a MAC */
	assert_int_equal(raw("UPDATE apps SET mac = NULL"), 1);
	assert_int_equal(store_app_get_by_name(s, "web", &got), COFFER_ERR_TAMPERED);
}

/* A store at schema version 6 is brought to 8: its versions are kept, without a manifest or a MAC, which nothing trusts. */
static void test_migration_7_upgrade(void **state)
{
	struct store *s = *state;
	struct store_org org;
	struct store_app app;
	struct store_secret_list l = { 0 };
	uint64_t v;
	struct store_secret_change c1[] = { set("DB_URL", "ct-db-1", "d-db-1") };
	make_app(s, "acme", "web", &org, &app);
	assert_int_equal(store_secrets_put(s, app.id, c1, 1, "alice", "staged", NULL, &v), COFFER_OK);
	store_close(s);
	*state = NULL;
	undo_migration_7();
	assert_int_equal(raw("SELECT max(version) FROM schema_migrations"), 6);
	s = open_store();
	*state = s;
	assert_int_equal(raw("SELECT max(version) FROM schema_migrations"), LATEST);
	assert_int_equal(raw("SELECT count(manifest) FROM secret_versions"), 0);
	/* the version row has no MAC either (before schema 8): refused */
	assert_int_equal(store_secrets_get(s, app.id, 0, &l), COFFER_ERR_TAMPERED);
	/* a version made on such a head would vouch for entries nobody vouched for: refused, nothing stored */
	assert_int_not_equal(store_secrets_put(s, app.id, c1, 1, "alice", "staged", NULL, &v), COFFER_OK);
	assert_int_equal(raw("SELECT count(*) FROM secret_versions"), 1);
}

/*
 * Each version's manifest: every name -> its value row and digest, in the
 * canonical text; the next version's is the head's manifest with the
 * changes, never the head's entries as the store holds them.
 */
static void test_secrets_manifest(void **state)
{
	struct store *s = *state;
	struct store_org org;
	struct store_app app;
	struct store_secret_list l = { 0 };
	uint64_t v1, v2;
	char sql[SQL_SIZE * 2], text[SQL_SIZE];
	const char *id = "00112233445566778899aabb";

	make_app(s, "acme", "web", &org, &app);
	struct store_secret_change c1[] = {
		set("DB_URL", "ct-db-1", "d-db-1"),
		set("API_KEY", "ct-api-1", "d-api-1"),
	};
	c1[1].value_id = id;
	assert_int_equal(store_secrets_put(s, app.id, c1, 2, "alice", "staged", NULL, &v1), COFFER_OK);
	assert_int_equal(store_secrets_get(s, app.id, v1, &l), COFFER_OK);
	assert_true(l.manifest_ok);
	assert_int_equal(l.manifest_n, 2);
	assert_string_equal(l.manifest[0].name, "API_KEY");
	assert_string_equal(l.manifest[0].value_id, id); /* the caller's id: the one it sealed for */
	assert_string_equal(l.items[0].value_id, id);
	assert_string_equal(l.manifest[0].digest, "d-api-1");
	assert_string_equal(l.manifest[1].name, "DB_URL");
	assert_string_equal(l.manifest[1].value_id, l.items[1].value_id);
	assert_int_equal(strlen(l.items[1].value_id), STORE_ID_LEN);
	snprintf(text, sizeof(text),
		 "coffer secrets manifest v1\napp %s\nversion 1\nAPI_KEY %s d-api-1\nDB_URL %s d-db-1\n", app.id, id,
		 l.items[1].value_id);
	store_secret_list_release(&l);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM secret_versions WHERE manifest = '%s'", text);
	assert_int_equal(raw(sql), 1);

	/* names and ids a manifest cannot hold are refused before anything is stored */
	struct store_secret_change bad[] = { set("A B", "ct", "d") };
	assert_int_equal(store_secrets_put(s, app.id, bad, 1, "x", "staged", NULL, &v2), COFFER_ERR_INVALID);
	struct store_secret_change badid[] = { set("OK", "ct", "d") };
	badid[0].value_id = "not-an-id";
	assert_int_equal(store_secrets_put(s, app.id, badid, 1, "x", "staged", NULL, &v2), COFFER_ERR_INVALID);
	assert_int_equal(raw("SELECT count(*) FROM secret_versions"), 1);

	/* v1's API_KEY entry pointed at DB_URL's row in the store: v2's manifest keeps the genuine mapping */
	snprintf(sql, sizeof(sql),
		 "UPDATE secret_entries SET value_id = (SELECT value_id FROM secret_entries WHERE name = 'DB_URL') "
		 "WHERE name = 'API_KEY'");
	assert_int_equal(raw(sql), 1);
	struct store_secret_change c2[] = { set("NEW", "ct-new", "d-new"), unset("DB_URL"), set("B", "ct-b", "d-b"),
					    unset("B") };
	assert_int_equal(store_secrets_put(s, app.id, c2, 4, "bob", "staged", NULL, &v2), COFFER_OK);
	assert_int_equal(store_secrets_get(s, app.id, v2, &l), COFFER_OK);
	assert_true(l.manifest_ok);
	assert_int_equal(l.manifest_n, 2);
	assert_string_equal(l.manifest[0].name, "API_KEY");
	assert_string_equal(l.manifest[0].value_id, id);
	assert_string_equal(l.manifest[1].name, "NEW");
	assert_string_not_equal(l.items[0].value_id, id); /* the edited entry was copied; the manifest says so */
	store_secret_list_release(&l);

	/* an edited manifest, or one of another version, fails the row's authentication */
	snprintf(sql, sizeof(sql), "UPDATE secret_versions SET manifest = replace(manifest, 'd-api-1', 'd-api-1 ') "
				   "WHERE version = 2");
	assert_int_equal(raw(sql), 1);
	assert_int_equal(store_secrets_get(s, app.id, v2, &l), COFFER_ERR_TAMPERED);
	snprintf(sql, sizeof(sql), "UPDATE secret_versions SET manifest = (SELECT manifest FROM secret_versions "
				   "WHERE version = 1) WHERE version = 2");
	assert_int_equal(raw(sql), 1);
	assert_int_equal(store_secrets_get(s, app.id, v2, &l), COFFER_ERR_TAMPERED);

	/* and no version is made on such a head */
	assert_int_not_equal(store_secrets_put(s, app.id, c1, 1, "x", "staged", NULL, &v1), COFFER_OK);
	assert_int_equal(raw("SELECT count(*) FROM secret_versions"), 2);
}

/*
 * The manifest a change makes, built without the store (what the CLI signs
 * and the api checks), is the one store_secrets_put_signed stores; another
 * expected text (the head moved since) stores nothing.
 */
static void test_secrets_manifest_signed(void **state)
{
	struct store *s = *state;
	struct store_org org;
	struct store_app app;
	struct store_secret_version v = { 0 };
	struct buf want, other;
	uint64_t max = 0, v1 = 0, v2 = 0;
	struct store_secret_change c1[] = { set("DB_URL", "ct-db-1", "d-db-1"), set("API_KEY", "ct-api-1", "d-api-1") };
	struct store_secret_change c2[] = { set("NEW", "ct-new", "d-new"), unset("DB_URL") };

	buf_init(&want, STORE_MANIFEST_MAX);
	buf_init(&other, STORE_MANIFEST_MAX);
	make_app(s, "acme", "web", &org, &app);
	c1[0].value_id = "00112233445566778899aab0";
	c1[1].value_id = "00112233445566778899aab1";
	c2[0].value_id = "00112233445566778899aab2";
	assert_int_equal(store_secrets_version_max(s, app.id, &max), COFFER_OK);
	assert_int_equal(max, 0);
	assert_int_equal(store_manifest_next(app.id, 0, NULL, 1, c1, 2, &want), COFFER_OK);
	assert_int_equal(store_secrets_put_signed(s, app.id, c1, 2, "alice", "staged", NULL, want.ptr, &v1), COFFER_OK);
	assert_int_equal(store_secrets_version_get(s, app.id, v1, &v), COFFER_OK);
	assert_string_equal(v.manifest, want.ptr);

	/* the next one, from v1's text: a change signed against version 1 of the head */
	assert_int_equal(store_manifest_next(app.id, 1, v.manifest, 2, c2, 2, &want), COFFER_OK);
	/* another writer moves the head first: the signed text is no longer what would be made */
	struct store_secret_change bob[] = { set("DB_URL", "ct-db-2", "d-db-2") };
	assert_int_equal(store_secrets_put(s, app.id, bob, 1, "bob", "staged", NULL, &v2), COFFER_OK);
	assert_int_equal(store_secrets_put_signed(s, app.id, c2, 2, "alice", "staged", NULL, want.ptr, &v2),
			 COFFER_ERR_CONFLICT);
	assert_int_equal(raw("SELECT count(*) FROM secret_versions"), 2);
	assert_int_equal(store_secrets_version_max(s, app.id, &max), COFFER_OK);
	assert_int_equal(max, 2);
	/* signed again against the head as it is now, it is stored */
	store_secret_version_clear(&v);
	assert_int_equal(store_secrets_version_get(s, app.id, 2, &v), COFFER_OK);
	assert_int_equal(store_manifest_next(app.id, 2, v.manifest, 3, c2, 2, &other), COFFER_OK);
	assert_int_equal(store_secrets_put_signed(s, app.id, c2, 2, "alice", "staged", NULL, other.ptr, &v2), COFFER_OK);
	assert_int_equal(v2, 3);
	/* a head text that does not parse, and a set without its value id, are refused */
	assert_int_equal(store_manifest_next(app.id, 2, "nope", 3, c2, 2, &want), COFFER_ERR_CRYPTO);
	c2[0].value_id = NULL;
	assert_int_equal(store_manifest_next(app.id, 2, v.manifest, 3, c2, 2, &want), COFFER_ERR_INVALID);
	store_secret_version_clear(&v);
	buf_release(&want);
	buf_release(&other);
}

static void test_schema_newer_refused(void **state)
{
	struct store *s = *state, *other = NULL;
	char sql[SQL_SIZE];
	snprintf(sql, sizeof(sql), "INSERT INTO schema_migrations (version, applied_at) VALUES (%llu, 0)",
		 (unsigned long long)store_schema_version(s) + 1);
	raw(sql);
	assert_int_equal(store_open(db.url, &other), COFFER_ERR_STORE);
	assert_null(other);
}

static void *open_thread(void *arg)
{
	struct store *s = NULL;
	enum coffer_err *rc = arg;
	*rc = store_open(db.url, &s);
	store_close(s);
	return NULL;
}

static void test_open_concurrent(void **state)
{
	(void)state;
	pthread_t t[OPEN_THREADS];
	enum coffer_err rc[OPEN_THREADS];
	for (int i = 0; i < OPEN_THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, open_thread, &rc[i]), 0);
	for (int i = 0; i < OPEN_THREADS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(rc[i], COFFER_OK);
	}
	struct store *s = open_store();
	long long n = (long long)store_schema_version(s);
	store_close(s);
	assert_int_equal(raw("SELECT count(*) FROM schema_migrations"), n);
	assert_int_equal(raw("SELECT count(DISTINCT version) FROM schema_migrations"), n);
}

static void test_open_bad_urls(void **state)
{
	(void)state;
	struct store *s = NULL;
	assert_int_equal(store_open("", &s), COFFER_ERR_INVALID);
	assert_int_equal(store_open("sqlite:", &s), COFFER_ERR_INVALID);
	assert_int_equal(store_open("mysql://u@h/db", &s), COFFER_ERR_INVALID);
	assert_int_equal(store_open("sqlite:/nonexistent-coffer-dir/x.db", &s), COFFER_ERR_IO);
	if (use_pg)
		assert_int_equal(store_open("postgres://coffer@127.0.0.1:1/none?connect_timeout=2", &s),
				 COFFER_ERR_UNAVAILABLE);
	assert_null(s);
}

static void test_sqlite_file_private(void **state)
{
	(void)state;
	struct stat st;
	if (use_pg)
		skip();
	assert_int_equal(stat(db.path, &st), 0);
	assert_int_equal(st.st_mode & 077, 0);
	/* a plain path works as well as sqlite:PATH */
	struct store *s = NULL;
	assert_int_equal(store_open(db.path, &s), COFFER_OK);
	store_close(s);
}

/* ---- orgs and tokens ---- */

static void test_orgs_tokens(void **state)
{
	struct store *s = *state;
	struct store_org org, org2, got;
	struct store_app app;
	struct store_token in = { 0 }, tok, tok2, found;
	struct store_token_list list = { 0 };

	assert_int_equal(store_org_create(s, "acme", &org), COFFER_OK);
	assert_int_equal(strlen(org.id), STORE_ID_LEN);
	assert_int_equal(store_org_create(s, "acme", &org2), COFFER_ERR_CONFLICT);
	assert_int_equal(store_org_create(s, "", &org2), COFFER_ERR_INVALID);
	assert_int_equal(store_org_create(s, "other", &org2), COFFER_OK);
	assert_int_equal(store_org_get_by_name(s, "acme", &got), COFFER_OK);
	assert_string_equal(got.id, org.id);
	assert_int_equal(got.created_at, org.created_at);
	assert_int_equal(store_org_get(s, org2.id, &got), COFFER_OK);
	assert_string_equal(got.name, "other");
	assert_int_equal(store_org_get_by_name(s, "nope", &got), COFFER_ERR_NOT_FOUND);

	snprintf(in.org_id, sizeof(in.org_id), "%s", org.id);
	memset(in.hash, 0xab, sizeof(in.hash));
	snprintf(in.role, sizeof(in.role), "admin");
	snprintf(in.description, sizeof(in.description), "first admin");
	assert_int_equal(store_token_insert(s, &in, &tok), COFFER_OK);
	assert_int_equal(strlen(tok.id), STORE_ID_LEN);
	assert_true(tok.created_at > 0);
	/* same hash again */
	assert_int_equal(store_token_insert(s, &in, &tok2), COFFER_ERR_CONFLICT);
	/* unknown role */
	in.hash[0] = 1;
	snprintf(in.role, sizeof(in.role), "root");
	assert_int_equal(store_token_insert(s, &in, &tok2), COFFER_ERR_INVALID);
	/* an app-scoped deploy token with an expiry */
	make_app(s, "acme", "web", &org, &app);
	snprintf(in.role, sizeof(in.role), "deploy");
	snprintf(in.app_id, sizeof(in.app_id), "%s", app.id);
	in.expires_at = 4102444800000LL;
	assert_int_equal(store_token_insert(s, &in, &tok2), COFFER_OK);
	/* an unknown org */
	in.hash[0] = 2;
	snprintf(in.org_id, sizeof(in.org_id), "000000000000000000000000");
	assert_int_equal(store_token_insert(s, &in, &found), COFFER_ERR_NOT_FOUND);

	assert_int_equal(store_token_get_by_hash(s, tok2.hash, &found), COFFER_OK);
	assert_string_equal(found.id, tok2.id);
	assert_string_equal(found.role, "deploy");
	assert_string_equal(found.app_id, app.id);
	assert_int_equal(found.expires_at, 4102444800000LL);
	assert_int_equal(found.revoked_at, 0);
	assert_int_equal(store_token_get_by_hash(s, tok.hash, &found), COFFER_OK);
	assert_string_equal(found.app_id, "");
	assert_int_equal(found.expires_at, 0);
	assert_string_equal(found.description, "first admin");
	unsigned char none[STORE_HASH_LEN] = { 0 };
	assert_int_equal(store_token_get_by_hash(s, none, &found), COFFER_ERR_NOT_FOUND);

	assert_int_equal(store_token_list(s, org.id, &list), COFFER_OK);
	assert_int_equal(list.n, 2);
	store_token_list_release(&list);
	assert_int_equal(store_token_list(s, org2.id, &list), COFFER_OK);
	assert_int_equal(list.n, 0);
	store_token_list_release(&list);

	/* revoking is scoped to the org, and idempotent */
	assert_int_equal(store_token_revoke(s, org2.id, tok.id), COFFER_ERR_NOT_FOUND);
	assert_int_equal(store_token_revoke(s, org.id, "nope"), COFFER_ERR_NOT_FOUND);
	assert_int_equal(store_token_revoke(s, org.id, tok.id), COFFER_OK);
	assert_int_equal(store_token_get_by_hash(s, tok.hash, &found), COFFER_OK);
	assert_true(found.revoked_at > 0);
	int64_t first = found.revoked_at;
	assert_int_equal(store_token_revoke(s, org.id, tok.id), COFFER_OK);
	assert_int_equal(store_token_get_by_hash(s, tok.hash, &found), COFFER_OK);
	assert_int_equal(found.revoked_at, first);
	assert_int_equal(store_token_get_by_hash(s, tok2.hash, &found), COFFER_OK);
	assert_int_equal(found.revoked_at, 0);

	/* rotation: the old token's expiry brought forward, never pushed back, and the new one stored, together */
	struct store_token fresh = tok2, made, listed;
	fresh.hash[0] = 3;
	int64_t until = (int64_t)time(NULL) * 1000 + 60000;
	assert_int_equal(store_token_rotate(s, org.id, tok2.id, until, &fresh, &made), COFFER_OK);
	assert_string_not_equal(made.id, tok2.id);
	assert_int_equal(store_token_get_by_hash(s, tok2.hash, &found), COFFER_OK);
	assert_int_equal(found.expires_at, until);
	assert_int_equal(store_token_get_by_hash(s, made.hash, &listed), COFFER_OK);
	assert_string_equal(listed.role, "deploy");
	assert_string_equal(listed.app_id, app.id);
	assert_true(found.rotated_at > 0);
	assert_int_equal(store_token_get(s, org.id, tok2.id, &listed), COFFER_OK);
	assert_int_equal(listed.rotated_at, found.rotated_at);
	assert_int_equal(store_token_get(s, org2.id, tok2.id, &listed), COFFER_ERR_NOT_FOUND);
	/* a rotated token is not rotated again, and its expiry stays */
	fresh.hash[0] = 4;
	assert_int_equal(store_token_rotate(s, org.id, tok2.id, until + 60000, &fresh, &made), COFFER_ERR_NOT_FOUND);
	assert_int_equal(store_token_get_by_hash(s, fresh.hash, &listed), COFFER_ERR_NOT_FOUND);
	assert_int_equal(store_token_get_by_hash(s, tok2.hash, &found), COFFER_OK);
	assert_int_equal(found.expires_at, until);
	/* a revoked token, or another org's, is not rotated, and nothing new is stored */
	fresh.hash[0] = 5;
	assert_int_equal(store_token_rotate(s, org.id, tok.id, until, &fresh, &made), COFFER_ERR_NOT_FOUND);
	assert_int_equal(store_token_get_by_hash(s, fresh.hash, &found), COFFER_ERR_NOT_FOUND);
	snprintf(fresh.org_id, sizeof(fresh.org_id), "%s", org2.id);
	assert_int_equal(store_token_rotate(s, org2.id, tok2.id, until, &fresh, &made), COFFER_ERR_NOT_FOUND);
	assert_int_equal(store_token_get_by_hash(s, fresh.hash, &found), COFFER_ERR_NOT_FOUND);
	/* the mark is authenticated: clearing or setting it in the store is refused on read */
	char sql[256];
	snprintf(sql, sizeof(sql), "UPDATE tokens SET rotated_at = NULL WHERE id = '%s'", tok2.id);
	raw(sql);
	assert_int_equal(store_token_get_by_hash(s, tok2.hash, &found), COFFER_ERR_TAMPERED);
	snprintf(sql, sizeof(sql), "UPDATE tokens SET rotated_at = 1 WHERE id = '%s'", made.id);
	raw(sql);
	assert_int_equal(store_token_get_by_hash(s, made.hash, &found), COFFER_ERR_TAMPERED);
}

/* ---- apps ---- */

static void test_apps(void **state)
{
	struct store *s = *state;
	struct store_org org, org2;
	struct store_app a, b, c, got;
	struct store_app_list list = { 0 };
	uint64_t v;
	unsigned char pk[32] = { 1 }, wrapped[72] = { 2 };

	make_app(s, "acme", "web", &org, &a);
	assert_int_equal(a.secrets_head, 0);
	assert_int_equal(a.grace_ms, STORE_GRACE_MS_DEFAULT);
	assert_int_equal(store_app_create(s, org.id, "api", 5000, &b), COFFER_OK);
	assert_int_equal(b.grace_ms, 5000);
	assert_int_equal(store_app_create(s, org.id, "Zed", 0, &c), COFFER_OK);
	/* names are global: another org cannot take one either */
	assert_int_equal(store_org_create(s, "other", &org2), COFFER_OK);
	assert_int_equal(store_app_create(s, org2.id, "web", 0, &got), COFFER_ERR_CONFLICT);
	assert_int_equal(store_app_create(s, org.id, "web", 0, &got), COFFER_ERR_CONFLICT);
	assert_int_equal(store_app_create(s, "000000000000000000000000", "x", 0, &got), COFFER_ERR_NOT_FOUND);

	assert_int_equal(store_app_get_by_name(s, "web", &got), COFFER_OK);
	assert_string_equal(got.id, a.id);
	assert_string_equal(got.org_id, org.id);
	assert_int_equal(store_app_get(s, b.id, &got), COFFER_OK);
	assert_string_equal(got.name, "api");
	assert_int_equal(store_app_get_by_name(s, "nope", &got), COFFER_ERR_NOT_FOUND);

	/* sorted bytewise: upper case first */
	assert_int_equal(store_app_list(s, org.id, &list), COFFER_OK);
	assert_int_equal(list.n, 3);
	assert_string_equal(list.items[0].name, "Zed");
	assert_string_equal(list.items[1].name, "api");
	assert_string_equal(list.items[2].name, "web");
	store_app_list_release(&list);
	assert_int_equal(store_app_list(s, org2.id, &list), COFFER_OK);
	assert_int_equal(list.n, 0);
	store_app_list_release(&list);

	/* destroy removes the app's keys, secrets and scoped tokens; the audit log stays */
	struct store_secret_change ch[] = { set("A", "ct-a", "d-a"), set("B", "ct-b", "d-b") };
	assert_int_equal(store_app_key_put(s, a.id, 1, pk, sizeof(pk), wrapped, sizeof(wrapped), org_sig), COFFER_OK);
	assert_int_equal(store_secrets_put(s, a.id, ch, 2, "alice", "staged", NULL, &v), COFFER_OK);
	struct store_token in = { 0 }, tok;
	snprintf(in.org_id, sizeof(in.org_id), "%s", org.id);
	snprintf(in.role, sizeof(in.role), "deploy");
	snprintf(in.app_id, sizeof(in.app_id), "%s", a.id);
	memset(in.hash, 7, sizeof(in.hash));
	assert_int_equal(store_token_insert(s, &in, &tok), COFFER_OK);
	struct store_audit_event ev = { .org_id = org.id, .actor = "alice", .action = "app.destroy", .app = "web",
					.outcome = "ok" };
	assert_int_equal(store_audit_append(s, &ev, NULL), COFFER_OK);
	assert_true(raw("SELECT count(*) FROM secret_values") > 0);

	assert_int_equal(store_app_destroy(s, a.id), COFFER_OK);
	assert_int_equal(store_app_get(s, a.id, &got), COFFER_ERR_NOT_FOUND);
	assert_int_equal(store_app_destroy(s, a.id), COFFER_ERR_NOT_FOUND);
	assert_int_equal(raw("SELECT count(*) FROM secret_values"), 0);
	assert_int_equal(raw("SELECT count(*) FROM secret_entries"), 0);
	assert_int_equal(raw("SELECT count(*) FROM secret_versions"), 0);
	assert_int_equal(raw("SELECT count(*) FROM app_keys"), 0);
	assert_int_equal(store_token_get_by_hash(s, in.hash, &tok), COFFER_ERR_NOT_FOUND);
	assert_int_equal(raw("SELECT count(*) FROM audit_events"), 1);
	assert_int_equal(store_app_get(s, b.id, &got), COFFER_OK);

	/* the name is free again, for a new app with a new id and nothing of the old one */
	assert_int_equal(store_app_create(s, org2.id, "web", 0, &got), COFFER_OK);
	assert_string_not_equal(got.id, a.id);
	assert_int_equal(got.secrets_head, 0);
	struct store_secret_list sl = { 0 };
	assert_int_equal(store_secrets_get(s, got.id, 0, &sl), COFFER_OK);
	assert_int_equal(sl.n, 0);
	assert_int_equal(sl.version, 0);
	store_secret_list_release(&sl);
}

static void test_app_keys(void **state)
{
	struct store *s = *state;
	struct store_org org;
	struct store_app app;
	struct store_app_key k;
	unsigned char pk1[32], pk2[32], w1[72], w2[72], big[STORE_KEY_BLOB_MAX + 1] = { 0 };

	randombytes_buf(pk1, sizeof(pk1));
	randombytes_buf(pk2, sizeof(pk2));
	randombytes_buf(w1, sizeof(w1));
	randombytes_buf(w2, sizeof(w2));
	make_app(s, "acme", "web", &org, &app);
	assert_int_equal(store_app_key_get(s, app.id, 0, &k), COFFER_ERR_NOT_FOUND);
	assert_int_equal(store_app_key_put(s, app.id, 1, pk1, sizeof(pk1), w1, sizeof(w1), org_sig), COFFER_OK);
	assert_int_equal(store_app_key_put(s, app.id, 1, pk2, sizeof(pk2), w2, sizeof(w2), org_sig), COFFER_ERR_CONFLICT);
	assert_int_equal(store_app_key_put(s, app.id, 2, pk2, sizeof(pk2), w2, sizeof(w2), org_sig), COFFER_OK);
	assert_int_equal(store_app_key_put(s, "000000000000000000000000", 1, pk1, sizeof(pk1), w1, sizeof(w1), org_sig),
			 COFFER_ERR_NOT_FOUND);
	assert_int_equal(store_app_key_put(s, app.id, 3, big, sizeof(big), w1, sizeof(w1), org_sig), COFFER_ERR_TOO_LARGE);
	assert_int_equal(store_app_key_put(s, app.id, 0, pk1, sizeof(pk1), w1, sizeof(w1), org_sig), COFFER_ERR_INVALID);

	assert_int_equal(store_app_key_get(s, app.id, 1, &k), COFFER_OK);
	assert_string_equal(k.app_id, app.id);
	assert_int_equal(k.version, 1);
	assert_int_equal(k.public_key_len, sizeof(pk1));
	assert_memory_equal(k.public_key, pk1, sizeof(pk1));
	assert_int_equal(k.wrapped_private_len, sizeof(w1));
	assert_memory_equal(k.wrapped_private, w1, sizeof(w1));
	assert_int_equal(store_app_key_get(s, app.id, 0, &k), COFFER_OK);
	assert_int_equal(k.version, 2);
	assert_memory_equal(k.public_key, pk2, sizeof(pk2));
	assert_memory_equal(k.wrapped_private, w2, sizeof(w2));
	assert_int_equal(k.org_sig_len, sizeof(org_sig));
	assert_memory_equal(k.org_sig, org_sig, sizeof(org_sig));
	assert_int_equal(store_app_key_get(s, app.id, 3, &k), COFFER_ERR_NOT_FOUND);
	/* every key has its org signature: none to bind, and a bound one is not bound again */
	struct store_app_key_list unbound = { 0 };
	assert_int_equal(store_app_key_unbound(s, &unbound), COFFER_OK);
	assert_int_equal(unbound.n, 0);
	store_app_key_list_release(&unbound);
	assert_int_equal(store_app_key_bind(s, app.id, 1, org_sig), COFFER_ERR_NOT_FOUND);
}

/* ---- secrets ---- */

static void test_secrets_versions(void **state)
{
	struct store *s = *state;
	struct store_org org;
	struct store_app app;
	struct store_secret_list l = { 0 };
	struct store_secret_version_list h = { 0 };
	uint64_t v1, v2, v3, v4, count, bytes;
	/* ciphertexts are arbitrary bytes, NUL included */
	static const unsigned char bin[] = { 0x00, 0xff, 0x10, 0x00, 0x7f };

	make_app(s, "acme", "web", &org, &app);
	struct store_secret_change c1[] = {
		set("DB_URL", "ct-db-1", "d-db-1"),
		set("API_KEY", "ct-api-1", "d-api-1"),
		{ .name = "BLOB", .ciphertext = bin, .ciphertext_len = sizeof(bin), .digest = "d-bin", .key_version = 7 },
	};
	assert_int_equal(store_secrets_put(s, app.id, c1, 3, "alice", "staged", NULL, &v1), COFFER_OK);
	assert_int_equal(v1, 1);
	assert_int_equal(store_secrets_get(s, app.id, 0, &l), COFFER_OK);
	assert_int_equal(l.version, 1);
	assert_string_equal(l.status, "staged");
	assert_string_equal(l.actor, "alice");
	assert_int_equal(l.n, 3);
	/* sorted by name */
	assert_string_equal(l.items[0].name, "API_KEY");
	assert_string_equal(l.items[1].name, "BLOB");
	assert_string_equal(l.items[2].name, "DB_URL");
	assert_value(&l, "DB_URL", "ct-db-1");
	assert_value(&l, "API_KEY", "ct-api-1");
	assert_int_equal(l.items[1].ciphertext_len, sizeof(bin));
	assert_memory_equal(l.items[1].ciphertext, bin, sizeof(bin));
	assert_int_equal(l.items[1].key_version, 7);
	assert_string_equal(l.items[0].digest, "d-api-1");
	assert_int_equal(l.items[0].key_version, 1);
	int64_t db_first = find(&l, "DB_URL")->created_at;
	assert_true(db_first > 0);
	assert_int_equal(find(&l, "DB_URL")->updated_at, db_first);
	store_secret_list_release(&l);
	assert_int_equal(store_secrets_stats(s, app.id, 0, &count, &bytes), COFFER_OK);
	assert_int_equal(count, 3);
	assert_int_equal(bytes, strlen("ct-db-1") + strlen("ct-api-1") + sizeof(bin));

	/* update one name: the others keep their value rows */
	usleep(5000);
	struct store_secret_change c2[] = { set("DB_URL", "ct-db-2", "d-db-2") };
	assert_int_equal(store_secrets_put(s, app.id, c2, 1, "bob", "staged", NULL, &v2), COFFER_OK);
	assert_int_equal(v2, 2);
	assert_int_equal(store_secrets_get(s, app.id, v2, &l), COFFER_OK);
	assert_int_equal(l.n, 3);
	assert_value(&l, "DB_URL", "ct-db-2");
	assert_value(&l, "API_KEY", "ct-api-1");
	assert_string_equal(find(&l, "DB_URL")->digest, "d-db-2");
	assert_int_equal(find(&l, "DB_URL")->created_at, db_first);
	assert_true(find(&l, "DB_URL")->updated_at > db_first);
	store_secret_list_release(&l);
	/* 3 values for v1 and one new one; the mapping was copied, not the ciphertexts */
	assert_int_equal(raw("SELECT count(*) FROM secret_values"), 4);

	/* delete a name */
	struct store_secret_change c3[] = { unset("API_KEY") };
	assert_int_equal(store_secrets_put(s, app.id, c3, 1, "bob", "staged", NULL, &v3), COFFER_OK);
	assert_int_equal(store_secrets_get(s, app.id, 0, &l), COFFER_OK);
	assert_int_equal(l.version, v3);
	assert_int_equal(l.n, 2);
	assert_null(find(&l, "API_KEY"));
	store_secret_list_release(&l);

	/* delete a name that is not there: fine, a new version with the same names */
	struct store_secret_change c4[] = { unset("NEVER_SET") };
	assert_int_equal(store_secrets_put(s, app.id, c4, 1, "carol", "deployed", NULL, &v4), COFFER_OK);
	assert_int_equal(v4, 4);
	assert_int_equal(store_secrets_get(s, app.id, 0, &l), COFFER_OK);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.status, "deployed");
	store_secret_list_release(&l);

	/* history in order; old versions unchanged */
	assert_int_equal(store_secrets_history(s, app.id, &h), COFFER_OK);
	assert_int_equal(h.n, 4);
	for (size_t i = 0; i < h.n; i++)
		assert_int_equal(h.items[i].version, i + 1);
	assert_string_equal(h.items[0].actor, "alice");
	assert_string_equal(h.items[1].actor, "bob");
	assert_string_equal(h.items[3].actor, "carol");
	assert_string_equal(h.items[3].status, "deployed");
	store_secret_version_list_release(&h);
	assert_int_equal(store_secrets_get(s, app.id, v1, &l), COFFER_OK);
	assert_int_equal(l.n, 3);
	assert_value(&l, "DB_URL", "ct-db-1");
	assert_value(&l, "API_KEY", "ct-api-1");
	store_secret_list_release(&l);

	struct store_app got;
	assert_int_equal(store_app_get(s, app.id, &got), COFFER_OK);
	assert_int_equal(got.secrets_head, 4);
	assert_int_equal(store_secrets_get(s, app.id, 99, &l), COFFER_ERR_NOT_FOUND);
	assert_int_equal(store_secrets_get(s, "000000000000000000000000", 0, &l), COFFER_ERR_NOT_FOUND);
	assert_int_equal(store_secrets_history(s, "000000000000000000000000", &h), COFFER_ERR_NOT_FOUND);
	assert_int_equal(store_secrets_put(s, "000000000000000000000000", c2, 1, "x", "staged", NULL, &v4),
			 COFFER_ERR_NOT_FOUND);

	/* a later change to the same name wins */
	struct store_secret_change c5[] = { set("X", "first", "d1"), set("X", "second", "d2"), unset("DB_URL"),
					    set("DB_URL", "ct-db-3", "d-db-3") };
	assert_int_equal(store_secrets_put(s, app.id, c5, 4, "dave", "staged", NULL, &v4), COFFER_OK);
	assert_int_equal(store_secrets_get(s, app.id, v4, &l), COFFER_OK);
	assert_value(&l, "X", "second");
	assert_value(&l, "DB_URL", "ct-db-3");
	store_secret_list_release(&l);
}

static void test_secrets_all_or_nothing(void **state)
{
	struct store *s = *state;
	struct store_org org;
	struct store_app app, got;
	struct store_secret_list l = { 0 };
	struct store_secret_version_list h = { 0 };
	uint64_t v;

	make_app(s, "acme", "web", &org, &app);
	struct store_secret_change c1[] = { set("A", "ct-a", "d-a") };
	assert_int_equal(store_secrets_put(s, app.id, c1, 1, "alice", "staged", NULL, &v), COFFER_OK);
	long long values = raw("SELECT count(*) FROM secret_values");
	long long entries = raw("SELECT count(*) FROM secret_entries");

	/* the last element breaks a constraint of the schema (an empty name): nothing of the others stays */
	uint64_t untouched = 12345;
	struct store_secret_change bad[] = { set("B", "ct-b", "d-b"), unset("A"), set("", "ct-x", "d-x") };
	assert_int_equal(store_secrets_put(s, app.id, bad, 3, "mallory", "staged", NULL, &untouched),
			 COFFER_ERR_INVALID);
	assert_int_equal(untouched, 12345);
	assert_int_equal(store_app_get(s, app.id, &got), COFFER_OK);
	assert_int_equal(got.secrets_head, 1);
	assert_int_equal(store_secrets_history(s, app.id, &h), COFFER_OK);
	assert_int_equal(h.n, 1);
	store_secret_version_list_release(&h);
	assert_int_equal(raw("SELECT count(*) FROM secret_values"), values);
	assert_int_equal(raw("SELECT count(*) FROM secret_entries"), entries);
	assert_int_equal(store_secrets_get(s, app.id, 0, &l), COFFER_OK);
	assert_int_equal(l.n, 1);
	assert_value(&l, "A", "ct-a");
	store_secret_list_release(&l);

	/* limits are checked on the new version inside the transaction */
	struct store_secret_limits lim = { .max_count = 2 };
	struct store_secret_change two[] = { set("B", "ct-b", "d-b"), set("C", "ct-c", "d-c") };
	assert_int_equal(store_secrets_put(s, app.id, two, 2, "alice", "staged", &lim, &v), COFFER_ERR_TOO_LARGE);
	assert_int_equal(store_secrets_put(s, app.id, two, 1, "alice", "staged", &lim, &v), COFFER_OK);
	assert_int_equal(v, 2);
	/* "ct-a" + "ct-b" = 8 bytes, less 3 bytes of overhead each = 2 */
	lim = (struct store_secret_limits){ .max_bytes = 3, .per_value_overhead = 3 };
	assert_int_equal(store_secrets_put(s, app.id, c1, 1, "alice", "staged", &lim, &v), COFFER_OK);
	struct store_secret_change grow[] = { set("A", "ct-aa", "d-aa"), set("B", "ct-bb", "d-bb") };
	assert_int_equal(store_secrets_put(s, app.id, grow, 2, "alice", "staged", &lim, &v), COFFER_ERR_TOO_LARGE);
	assert_int_equal(store_app_get(s, app.id, &got), COFFER_OK);
	assert_int_equal(got.secrets_head, 3);

	/* inputs refused before anything starts */
	assert_int_equal(store_secrets_put(s, app.id, c1, 0, "alice", "staged", NULL, &v), COFFER_ERR_INVALID);
	struct store_secret_change nodigest[] = { { .name = "A", .ciphertext = (const unsigned char *)"x",
						    .ciphertext_len = 1 } };
	assert_int_equal(store_secrets_put(s, app.id, nodigest, 1, "alice", "staged", NULL, &v), COFFER_ERR_INVALID);
	char longname[STORE_NAME_SIZE + 1];
	memset(longname, 'N', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	struct store_secret_change toolong[] = { set(longname, "ct", "d") };
	assert_int_equal(store_secrets_put(s, app.id, toolong, 1, "alice", "staged", NULL, &v), COFFER_ERR_TOO_LARGE);
	assert_int_equal(store_app_get(s, app.id, &got), COFFER_OK);
	assert_int_equal(got.secrets_head, 3);
}

static void test_secrets_head_and_status(void **state)
{
	struct store *s = *state;
	struct store_org org;
	struct store_app app, got;
	struct store_secret_list l = { 0 };
	struct store_secret_version_list h = { 0 };
	uint64_t v;

	make_app(s, "acme", "web", &org, &app);
	struct store_secret_change c1[] = { set("A", "ct-a1", "d") };
	struct store_secret_change c2[] = { set("B", "ct-b2", "d") };
	struct store_secret_change c3[] = { set("C", "ct-c3", "d") };
	assert_int_equal(store_secrets_put(s, app.id, c1, 1, "u", "deployed", NULL, &v), COFFER_OK);
	assert_int_equal(store_secrets_put(s, app.id, c2, 1, "u", "pending", NULL, &v), COFFER_OK);
	assert_int_equal(v, 2);

	/* a failed release: the version is marked and the head goes back */
	assert_int_equal(store_secrets_set_status(s, app.id, 2, "failed"), COFFER_OK);
	assert_int_equal(store_secrets_set_head(s, app.id, 1), COFFER_OK);
	assert_int_equal(store_app_get(s, app.id, &got), COFFER_OK);
	assert_int_equal(got.secrets_head, 1);

	/* the next version is numbered after the highest and built on the head */
	assert_int_equal(store_secrets_put(s, app.id, c3, 1, "u", "staged", NULL, &v), COFFER_OK);
	assert_int_equal(v, 3);
	assert_int_equal(store_secrets_get(s, app.id, 0, &l), COFFER_OK);
	assert_int_equal(l.version, 3);
	assert_int_equal(l.n, 2);
	assert_value(&l, "A", "ct-a1");
	assert_value(&l, "C", "ct-c3");
	assert_null(find(&l, "B"));
	store_secret_list_release(&l);
	assert_int_equal(store_secrets_history(s, app.id, &h), COFFER_OK);
	assert_int_equal(h.n, 3);
	assert_string_equal(h.items[1].status, "failed");
	assert_string_equal(h.items[2].status, "staged");
	store_secret_version_list_release(&h);

	assert_int_equal(store_secrets_set_head(s, app.id, 9), COFFER_ERR_NOT_FOUND);
	assert_int_equal(store_secrets_set_status(s, app.id, 9, "failed"), COFFER_ERR_NOT_FOUND);
	assert_int_equal(store_secrets_set_head(s, "000000000000000000000000", 1), COFFER_ERR_NOT_FOUND);
	assert_int_equal(store_app_get(s, app.id, &got), COFFER_OK);
	assert_int_equal(got.secrets_head, 3);
	/* head 0: no secrets */
	assert_int_equal(store_secrets_set_head(s, app.id, 0), COFFER_OK);
	assert_int_equal(store_secrets_get(s, app.id, 0, &l), COFFER_OK);
	assert_int_equal(l.version, 0);
	assert_int_equal(l.n, 0);
	store_secret_list_release(&l);
}

/* ---- concurrency: 20 writers on one app ---- */

struct writer {
	int id;
	const char *app_id;
	enum coffer_err rc;
	int step;
	uint64_t versions[CONC_CHANGES];
};

static void *writer_thread(void *arg)
{
	struct writer *w = arg;
	struct store *s = NULL;
	char name[64], ct[64];
	w->rc = open_keyed(db.url, &s);
	for (w->step = 0; w->rc == COFFER_OK && w->step < CONC_CHANGES; w->step++) {
		snprintf(name, sizeof(name), "T%02d_%02d", w->id, w->step);
		snprintf(ct, sizeof(ct), "ct-%02d-%02d", w->id, w->step);
		struct store_secret_change c = set(name, ct, "digest");
		w->rc = store_secrets_put(s, w->app_id, &c, 1, "writer", "staged", NULL, &w->versions[w->step]);
	}
	store_close(s);
	return NULL;
}

static void test_concurrent_writers(void **state)
{
	struct store *s = *state;
	struct store_org org;
	struct store_app app, got;
	struct store_secret_list l = { 0 };
	static struct writer w[CONC_THREADS];
	static unsigned char seen[CONC_TOTAL + 1];
	pthread_t t[CONC_THREADS];
	uint64_t count, bytes;
	char name[64], ct[64];

	make_app(s, "acme", "web", &org, &app);
	memset(seen, 0, sizeof(seen));
	for (int i = 0; i < CONC_THREADS; i++) {
		w[i] = (struct writer){ .id = i, .app_id = app.id };
		assert_int_equal(pthread_create(&t[i], NULL, writer_thread, &w[i]), 0);
	}
	for (int i = 0; i < CONC_THREADS; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < CONC_THREADS; i++) {
		if (w[i].rc != COFFER_OK)
			fail_msg("writer %d failed at change %d: %s", i, w[i].step, coffer_err_name(w[i].rc));
		for (int j = 0; j < CONC_CHANGES; j++) {
			uint64_t v = w[i].versions[j];
			assert_true(v >= 1 && v <= CONC_TOTAL);
			assert_int_equal(seen[v], 0); /* no version handed out twice */
			seen[v] = 1;
			if (j)
				assert_true(v > w[i].versions[j - 1]);
		}
	}
	/* exactly 1,000 versions; the head is the last */
	assert_int_equal(raw("SELECT count(*) FROM secret_versions"), CONC_TOTAL);
	assert_int_equal(store_app_get(s, app.id, &got), COFFER_OK);
	assert_int_equal(got.secrets_head, CONC_TOTAL);
	/* no lost update: version v holds exactly v names */
	for (uint64_t v = 1; v <= CONC_TOTAL; v++) {
		assert_int_equal(store_secrets_stats(s, app.id, v, &count, &bytes), COFFER_OK);
		assert_int_equal(count, v);
	}
	assert_int_equal(store_secrets_get(s, app.id, 0, &l), COFFER_OK);
	assert_int_equal(l.version, CONC_TOTAL);
	assert_int_equal(l.n, CONC_TOTAL);
	for (int i = 0; i < CONC_THREADS; i++)
		for (int j = 0; j < CONC_CHANGES; j++) {
			snprintf(name, sizeof(name), "T%02d_%02d", i, j);
			snprintf(ct, sizeof(ct), "ct-%02d-%02d", i, j);
			assert_value(&l, name, ct);
		}
	store_secret_list_release(&l);
	/* an early version is still readable as it was */
	uint64_t first = w[0].versions[0];
	assert_int_equal(store_secrets_get(s, app.id, first, &l), COFFER_OK);
	assert_int_equal(l.n, first);
	assert_value(&l, "T00_00", "ct-00-00");
	store_secret_list_release(&l);
}

/* ---- hosts and join tokens ---- */

static struct store_host host_row(const char *name, unsigned char fill)
{
	struct store_host h;
	memset(&h, 0, sizeof(h));
	store_new_id(h.id);
	snprintf(h.name, sizeof(h.name), "%s", name);
	memset(h.sign_pk, fill, sizeof(h.sign_pk));
	memset(h.seal_pk, fill + 1, sizeof(h.seal_pk));
	memset(h.mac, fill + 2, sizeof(h.mac));
	snprintf(h.state, sizeof(h.state), "ready");
	h.enrolled_at = 1700000000000LL + fill;
	h.cert_len = 72;
	memset(h.cert, fill + 3, h.cert_len);
	return h;
}

static void assert_host_equal(const struct store_host *a, const struct store_host *b)
{
	assert_string_equal(a->id, b->id);
	assert_string_equal(a->name, b->name);
	assert_memory_equal(a->sign_pk, b->sign_pk, sizeof(a->sign_pk));
	assert_memory_equal(a->seal_pk, b->seal_pk, sizeof(a->seal_pk));
	assert_memory_equal(a->mac, b->mac, sizeof(a->mac));
	assert_string_equal(a->state, b->state);
	assert_int_equal(a->enrolled_at, b->enrolled_at);
	assert_int_equal(a->cert_len, b->cert_len);
	assert_memory_equal(a->cert, b->cert, a->cert_len);
}

static void test_hosts(void **state)
{
	struct store *s = *state;
	struct store_host a = host_row("web-2", 0x10), b = host_row("web-10", 0x20), got, dup;
	struct store_host_list l = { 0 };
	char id[STORE_ID_SIZE], sql[SQL_SIZE];

	store_new_id(id);
	assert_int_equal(strlen(id), STORE_ID_LEN);
	assert_int_equal(strspn(id, "0123456789abcdef"), STORE_ID_LEN);
	assert_string_not_equal(id, a.id);

	assert_int_equal(store_host_list(s, &l), COFFER_OK);
	assert_int_equal(l.n, 0);
	assert_int_equal(store_host_put(s, &a), COFFER_OK);
	assert_int_equal(store_host_put(s, &b), COFFER_OK);
	/* the id and the name are each unique */
	dup = host_row("other", 0x30);
	memcpy(dup.id, a.id, sizeof(dup.id));
	assert_int_equal(store_host_put(s, &dup), COFFER_ERR_CONFLICT);
	dup = host_row("web-2", 0x30);
	assert_int_equal(store_host_put(s, &dup), COFFER_ERR_CONFLICT);
	dup = host_row("", 0x30);
	assert_int_equal(store_host_put(s, &dup), COFFER_ERR_INVALID);
	dup = host_row("x", 0x30);
	dup.state[0] = '\0';
	assert_int_equal(store_host_put(s, &dup), COFFER_ERR_INVALID);
	dup = host_row("x", 0x30);
	dup.cert_len = sizeof(dup.cert) + 1;
	assert_int_equal(store_host_put(s, &dup), COFFER_ERR_TOO_LARGE);
	assert_int_equal(raw("SELECT count(*) FROM hosts"), 2);

	assert_int_equal(store_host_get(s, a.id, &got), COFFER_OK);
	assert_host_equal(&got, &a);
	assert_int_equal(got.last_heartbeat, 0);
	assert_int_equal(store_host_get_by_name(s, "web-10", &got), COFFER_OK);
	assert_host_equal(&got, &b);
	assert_int_equal(store_host_get(s, "000000000000000000000000", &got), COFFER_ERR_NOT_FOUND);
	assert_int_equal(store_host_get_by_name(s, "web-3", &got), COFFER_ERR_NOT_FOUND);

	/* by name, bytewise: "web-10" before "web-2" */
	assert_int_equal(store_host_list(s, &l), COFFER_OK);
	assert_int_equal(l.n, 2);
	assert_host_equal(&l.items[0], &b);
	assert_host_equal(&l.items[1], &a);
	store_host_list_release(&l);
	assert_null(l.items);

	/* a heartbeat moves last_heartbeat and nothing else */
	assert_int_equal(store_host_heartbeat(s, a.id, 1700000005000LL), COFFER_OK);
	assert_int_equal(store_host_get(s, a.id, &got), COFFER_OK);
	assert_int_equal(got.last_heartbeat, 1700000005000LL);
	assert_host_equal(&got, &a);
	assert_int_equal(store_host_get(s, b.id, &got), COFFER_OK);
	assert_int_equal(got.last_heartbeat, 0);
	assert_int_equal(store_host_heartbeat(s, "000000000000000000000000", 1), COFFER_ERR_NOT_FOUND);
	assert_int_equal(store_host_heartbeat(s, a.id, 0), COFFER_ERR_INVALID);

	/* a row whose key is not 32 bytes cannot be read */
	snprintf(sql, sizeof(sql), use_pg ? "UPDATE hosts SET sign_pk = '\\x0102'::bytea WHERE id = '%s'"
					  : "UPDATE hosts SET sign_pk = X'0102' WHERE id = '%s'",
		 b.id);
	assert_int_equal(raw(sql), 1);
	assert_int_equal(store_host_get(s, b.id, &got), COFFER_ERR_STORE);
	assert_int_equal(store_host_list(s, &l), COFFER_ERR_STORE);
	assert_null(l.items);
}

/* A nonce is taken once per host until its row expires; expired rows are purged on the next use. */
static void test_host_nonces(void **state)
{
	struct store *s = *state;
	const char *n1 = "00112233445566778899aabbccddeeff";
	assert_int_equal(store_host_nonce_use(s, "h1", n1, 1100, 1000), COFFER_OK);
	assert_int_equal(store_host_nonce_use(s, "h1", n1, 1100, 1000), COFFER_ERR_CONFLICT);
	assert_int_equal(store_host_nonce_use(s, "h1", n1, 1150, 1100), COFFER_ERR_CONFLICT); /* still live at 1100 */
	assert_int_equal(store_host_nonce_use(s, "h2", n1, 1100, 1000), COFFER_OK);        /* another host's */
	assert_int_equal(raw("SELECT count(*) FROM host_nonces"), 2);
	assert_int_equal(store_host_nonce_use(s, "h3", "ffee", 1300, 1200), COFFER_OK); /* purges the two */
	assert_int_equal(raw("SELECT count(*) FROM host_nonces"), 1);
	assert_int_equal(store_host_nonce_use(s, "h1", n1, 1300, 1200), COFFER_OK);
	assert_int_equal(store_host_nonce_use(s, "h1", "", 1300, 1200), COFFER_ERR_INVALID);
	assert_int_equal(store_host_nonce_use(s, "h1", "aa", 1100, 1200), COFFER_ERR_INVALID);
}

/* Boot tokens are spent once (schema version 13); rows past exp are purged. */
static void test_boot_tokens_spent(void **state)
{
	struct store *s = *state;
	const char *j1 = "00112233445566778899aabbccddeeff", *j2 = "ffeeddccbbaa99887766554433221100";
	int spent = -1;
	assert_int_equal(store_boot_token_spend(s, j1, 1100, 1000, &spent), COFFER_OK);
	assert_int_equal(spent, 0);
	assert_int_equal(store_boot_token_spend(s, j1, 1100, 1000, &spent), COFFER_ERR_CONFLICT);
	assert_int_equal(spent, 1);
	assert_int_equal(store_boot_token_spend(s, j2, 1200, 1000, &spent), COFFER_OK);
	assert_int_equal(spent, 0);
	assert_int_equal(raw("SELECT count(*) FROM boot_tokens_spent"), 2);
	/* j1 expired before 1101: purged (its token can never open again), j2 kept and still spent */
	assert_int_equal(store_boot_token_spend(s, j2, 1200, 1101, &spent), COFFER_ERR_CONFLICT);
	assert_int_equal(spent, 1);
	assert_int_equal(raw("SELECT count(*) FROM boot_tokens_spent"), 1);
	assert_int_equal(store_boot_token_spend(s, "", 1200, 1000, &spent), COFFER_ERR_INVALID);
	assert_int_equal(spent, 0);
	assert_int_equal(store_boot_token_spend(s, j1, 0, 1000, &spent), COFFER_ERR_INVALID);
}

static void test_join_tokens(void **state)
{
	struct store *s = *state;
	char long_id[STORE_JOIN_TOKEN_ID_MAX + 2];
	assert_int_equal(store_join_token_use(s, "0123456789abcdef0123456789abcdef"), COFFER_OK);
	assert_int_equal(store_join_token_use(s, "0123456789abcdef0123456789abcdef"), COFFER_ERR_CONFLICT);
	assert_int_equal(store_join_token_use(s, "fedcba9876543210fedcba9876543210"), COFFER_OK);
	assert_int_equal(raw("SELECT count(*) FROM join_tokens_used"), 2);
	assert_true(raw("SELECT min(used_at) FROM join_tokens_used") > 1700000000000LL);
	assert_int_equal(store_join_token_use(s, ""), COFFER_ERR_INVALID);
	memset(long_id, 'a', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';
	assert_int_equal(store_join_token_use(s, long_id), COFFER_ERR_TOO_LARGE);
	assert_int_equal(raw("SELECT count(*) FROM join_tokens_used"), 2);
}

/* ---- deployers and signatures (schema version 10) ---- */

static struct store_deployer deployer_row(const char *org_id, const char *app_id, const char *role, const char *name,
					  unsigned char fill)
{
	struct store_deployer d;
	memset(&d, 0, sizeof(d));
	store_new_id(d.id);
	snprintf(d.org_id, sizeof(d.org_id), "%s", org_id);
	snprintf(d.app_id, sizeof(d.app_id), "%s", app_id);
	snprintf(d.role, sizeof(d.role), "%s", role);
	snprintf(d.name, sizeof(d.name), "%s", name);
	memset(d.public_key, fill, sizeof(d.public_key));
	memset(d.cert, fill + 1, sizeof(d.cert));
	memset(d.mac, fill + 2, sizeof(d.mac));
	d.created_at = 1700000000000LL + fill;
	return d;
}

static void assert_deployer_equal(const struct store_deployer *a, const struct store_deployer *b)
{
	assert_string_equal(a->id, b->id);
	assert_string_equal(a->org_id, b->org_id);
	assert_string_equal(a->app_id, b->app_id);
	assert_string_equal(a->role, b->role);
	assert_string_equal(a->name, b->name);
	assert_memory_equal(a->public_key, b->public_key, sizeof(a->public_key));
	assert_memory_equal(a->cert, b->cert, sizeof(a->cert));
	assert_int_equal(a->created_at, b->created_at);
	assert_int_equal(a->revoked_at, b->revoked_at);
	assert_memory_equal(a->mac, b->mac, sizeof(a->mac));
}

static void test_deployers(void **state)
{
	struct store *s = *state;
	struct store_org org, other;
	struct store_app app;
	struct store_deployer_list l = { 0 };
	struct store_deployer got, bad;
	unsigned char mac[STORE_DEPLOYER_MAC_LEN];

	make_app(s, "acme", "web", &org, &app);
	assert_int_equal(store_org_create(s, "globex", &other), COFFER_OK);
	struct store_deployer a = deployer_row(org.id, "*", "admin", "alice", 0x10);
	struct store_deployer b = deployer_row(org.id, app.id, "deploy", "ci", 0x20);
	struct store_deployer c = deployer_row(other.id, "*", "deploy", "bob", 0x30);

	assert_int_equal(store_deployer_list(s, org.id, &l), COFFER_OK);
	assert_int_equal(l.n, 0);
	assert_int_equal(store_deployer_put(s, &b), COFFER_OK);
	assert_int_equal(store_deployer_put(s, &a), COFFER_OK);
	assert_int_equal(store_deployer_put(s, &c), COFFER_OK);
	assert_int_equal(store_deployer_put(s, &a), COFFER_ERR_CONFLICT);
	/* refused shapes: role, empty fields, an unknown org, negative times */
	bad = deployer_row(org.id, "*", "read", "x", 0x40);
	assert_int_equal(store_deployer_put(s, &bad), COFFER_ERR_INVALID);
	bad = deployer_row(org.id, "*", "admin", "", 0x40);
	assert_int_equal(store_deployer_put(s, &bad), COFFER_ERR_INVALID);
	bad = deployer_row(org.id, "", "admin", "x", 0x40);
	assert_int_equal(store_deployer_put(s, &bad), COFFER_ERR_INVALID);
	bad = deployer_row(org.id, "*", "admin", "x", 0x40);
	bad.revoked_at = -1;
	assert_int_equal(store_deployer_put(s, &bad), COFFER_ERR_INVALID);
	bad = deployer_row("000000000000000000000000", "*", "admin", "x", 0x40);
	assert_int_equal(store_deployer_put(s, &bad), COFFER_ERR_NOT_FOUND);
	assert_int_equal(raw("SELECT count(*) FROM deployers"), 3);

	assert_int_equal(store_deployer_get(s, a.id, &got), COFFER_OK);
	assert_deployer_equal(&got, &a);
	assert_int_equal(store_deployer_get(s, "000000000000000000000000", &got), COFFER_ERR_NOT_FOUND);

	/* the org's, oldest first; another org's are not listed */
	assert_int_equal(store_deployer_list(s, org.id, &l), COFFER_OK);
	assert_int_equal(l.n, 2);
	assert_deployer_equal(&l.items[0], &a);
	assert_deployer_equal(&l.items[1], &b);
	store_deployer_list_release(&l);
	assert_null(l.items);

	/* by public key, across orgs, oldest first (one key may be enrolled twice) */
	struct store_deployer a2 = deployer_row(other.id, "*", "deploy", "alice2", 0x10);
	a2.created_at = a.created_at + 1;
	assert_int_equal(store_deployer_put(s, &a2), COFFER_OK);
	assert_int_equal(store_deployer_list_by_key(s, a.public_key, &l), COFFER_OK);
	assert_int_equal(l.n, 2);
	assert_deployer_equal(&l.items[0], &a);
	assert_deployer_equal(&l.items[1], &a2);
	store_deployer_list_release(&l);
	memset(bad.public_key, 0x99, sizeof(bad.public_key));
	assert_int_equal(store_deployer_list_by_key(s, bad.public_key, &l), COFFER_OK);
	assert_int_equal(l.n, 0);
	assert_int_equal(store_deployer_list_by_key(s, NULL, &l), COFFER_ERR_INVALID);
	(void)raw("DELETE FROM deployers WHERE name = 'alice2'");

	/* revocation sets the time and the keeper's new MAC, nothing else */
	memset(mac, 0x77, sizeof(mac));
	assert_int_equal(store_deployer_revoke(s, b.id, 1700000009000LL, mac), COFFER_OK);
	assert_int_equal(store_deployer_get(s, b.id, &got), COFFER_OK);
	b.revoked_at = 1700000009000LL;
	memcpy(b.mac, mac, sizeof(mac));
	assert_deployer_equal(&got, &b);
	assert_int_equal(store_deployer_get(s, a.id, &got), COFFER_OK);
	assert_deployer_equal(&got, &a);
	assert_int_equal(store_deployer_revoke(s, "000000000000000000000000", 1, mac), COFFER_ERR_NOT_FOUND);
	assert_int_equal(store_deployer_revoke(s, a.id, 0, mac), COFFER_ERR_INVALID);
}

static void test_signatures(void **state)
{
	struct store *s = *state;
	struct store_org org;
	struct store_app app, app2;
	struct store_signature_list l = { 0 };
	const char *h1 = "2846fdee06e402e6349bab9849e841e1daf8fb1107bef0563ffabf73c3d5739d";
	const char *h2 = "8014384897a4b5c244f7b2ea013dfa998b5dd84c064df6531107cc186744787b";
	const char *sig1 =
		"5VZDAMNgrHKQhuLMgG6CioSHfx645dl02HPgZSJJAVVfuIIVkKM7rMYeOXAc-bRr0lv18FlbviRlUUFDjnoQCw";
	const char *sig2 =
		"AVZDAMNgrHKQhuLMgG6CioSHfx645dl02HPgZSJJAVVfuIIVkKM7rMYeOXAc-bRr0lv18FlbviRlUUFDjnoQCw";

	make_app(s, "acme", "web", &org, &app);
	make_app(s, "acme", "api", &org, &app2);
	assert_int_equal(store_signature_list(s, app.id, h1, &l), COFFER_OK);
	assert_int_equal(l.n, 0);
	assert_int_equal(store_signature_add(s, app.id, h1, "dep_a", sig1), COFFER_OK);
	/* the same row again is fine; another signature by the same signer is not */
	assert_int_equal(store_signature_add(s, app.id, h1, "dep_a", sig1), COFFER_OK);
	assert_int_equal(store_signature_add(s, app.id, h1, "dep_a", sig2), COFFER_ERR_CONFLICT);
	assert_int_equal(store_signature_add(s, app.id, h1, "dep_b", sig2), COFFER_OK);
	assert_int_equal(store_signature_add(s, app.id, h2, "dep_a", sig2), COFFER_OK);
	assert_int_equal(store_signature_add(s, app2.id, h1, "dep_a", sig2), COFFER_OK);
	assert_int_equal(raw("SELECT count(*) FROM signatures"), 4);

	assert_int_equal(store_signature_list(s, app.id, h1, &l), COFFER_OK);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.items[0].app_id, app.id);
	assert_string_equal(l.items[0].text_hash, h1);
	assert_string_equal(l.items[0].signer, "dep_a");
	assert_string_equal(l.items[0].signature, sig1);
	assert_true(l.items[0].created_at > 1700000000000LL);
	assert_string_equal(l.items[1].signer, "dep_b");
	assert_string_equal(l.items[1].signature, sig2);
	store_signature_list_release(&l);
	assert_null(l.items);
	assert_int_equal(store_signature_list(s, app2.id, h2, &l), COFFER_OK);
	assert_int_equal(l.n, 0);

	/* refused shapes, an unknown app */
	assert_int_equal(store_signature_add(s, app.id, "2846FDEE06e402e6349bab9849e841e1daf8fb1107bef0563ffabf73c3d5739d",
					     "dep_a", sig1),
			 COFFER_ERR_INVALID);
	assert_int_equal(store_signature_add(s, app.id, "2846", "dep_a", sig1), COFFER_ERR_INVALID);
	assert_int_equal(store_signature_add(s, app.id, h2, "dep_c", "5VZD+MNg"), COFFER_ERR_INVALID);
	assert_int_equal(store_signature_add(s, app.id, h2, "dep_c",
					     "5VZDAMNgrHKQhuLMgG6CioSHfx645dl02HPgZSJJAVVfuIIVkKM7rMYeOXAc+bRr0lv18FlbviRlUUFDjnoQCw"),
			 COFFER_ERR_INVALID);
	assert_int_equal(store_signature_add(s, app.id, h2, "", sig1), COFFER_ERR_INVALID);
	assert_int_equal(store_signature_add(s, NULL, h2, "dep_c", sig1), COFFER_ERR_INVALID);
	assert_int_equal(store_signature_add(s, "000000000000000000000000", h2, "dep_c", sig1), COFFER_ERR_NOT_FOUND);
	assert_int_equal(raw("SELECT count(*) FROM signatures"), 4);

	/* the signatures go with their app */
	assert_int_equal(store_app_destroy(s, app.id), COFFER_OK);
	assert_int_equal(raw("SELECT count(*) FROM signatures"), 1);
	/* a text stuffed with signatures lists the 16 oldest (what the keeper looks at) */
	for (int i = 0; i < 20; i++) {
		char signer[16];
		assert_true(snprintf(signer, sizeof(signer), "dep_x%02d", i) < (int)sizeof(signer));
		assert_int_equal(store_signature_add(s, app2.id, h2, signer, sig1), COFFER_OK);
	}
	assert_int_equal(store_signature_list(s, app2.id, h2, &l), COFFER_OK);
	assert_int_equal(l.n, 16);
	store_signature_list_release(&l);
}

/* A store at schema version 9 gets the two tables, its rows kept. */
static void test_migration_10_upgrade(void **state)
{
	struct store *s = *state;
	struct store_org org;
	struct store_app app;
	make_app(s, "acme", "web", &org, &app);
	store_close(s);
	*state = NULL;
	undo_migration_10();
	assert_int_equal(raw("SELECT max(version) FROM schema_migrations"), 9);
	s = open_store();
	*state = s;
	assert_int_equal(raw("SELECT max(version) FROM schema_migrations"), LATEST);
	assert_int_equal(raw("SELECT count(*) FROM deployers"), 0);
	assert_int_equal(store_signature_add(s, app.id, "2846fdee06e402e6349bab9849e841e1daf8fb1107bef0563ffabf73c3d5739d",
					     "dep_a",
					     "5VZDAMNgrHKQhuLMgG6CioSHfx645dl02HPgZSJJAVVfuIIVkKM7rMYeOXAc-bRr0lv18FlbviRlUUFDjnoQCw"),
			 COFFER_OK);
}

/* A store at schema version 10 is brought to 11: its app keys are kept, with no org signature until the keeper's. */
static void test_migration_11_upgrade(void **state)
{
	struct store *s = *state;
	struct store_org org;
	struct store_app app;
	struct store_app_key k;
	struct store_app_key_list l = { 0 };
	const unsigned char pk[8] = { 1 }, w[8] = { 2 };
	make_app(s, "acme", "web", &org, &app);
	assert_int_equal(store_app_key_put(s, app.id, 1, pk, sizeof(pk), w, sizeof(w), org_sig), COFFER_OK);
	store_close(s);
	*state = NULL;
	undo_migration_11();
	assert_int_equal(raw("SELECT max(version) FROM schema_migrations"), 10);
	s = open_store();
	*state = s;
	assert_int_equal(raw("SELECT max(version) FROM schema_migrations"), LATEST);
	assert_int_equal(store_app_key_get(s, app.id, 1, &k), COFFER_OK);
	assert_int_equal(k.org_sig_len, 0);
	assert_memory_equal(k.public_key, pk, sizeof(pk));
	assert_int_equal(store_app_key_unbound(s, &l), COFFER_OK);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.items[0].app_id, app.id);
	store_app_key_list_release(&l);
	/* bound once: then it has its signature, and is not bound again */
	assert_int_equal(store_app_key_bind(s, app.id, 1, org_sig), COFFER_OK);
	assert_int_equal(store_app_key_get(s, app.id, 1, &k), COFFER_OK);
	assert_int_equal(k.org_sig_len, sizeof(org_sig));
	assert_int_equal(store_app_key_bind(s, app.id, 1, org_sig), COFFER_ERR_NOT_FOUND);
	assert_int_equal(store_app_key_unbound(s, &l), COFFER_OK);
	assert_int_equal(l.n, 0);
	store_app_key_list_release(&l);
}

/* ---- leases ---- */

#define LEASE_TTL_MS 60000
#define LEASE_SHORT_MS 50
#define LEASE_FENCE_MS 1000

static void test_leases(void **state)
{
	struct store *s = *state;
	long long until;
	int held = -1;

	/* a free lease is taken, and only by its first taker while it has not expired */
	assert_int_equal(store_lease_acquire(s, "releases", "api-1", LEASE_TTL_MS, &held), COFFER_OK);
	assert_int_equal(held, 1);
	assert_int_equal(raw("SELECT count(*) FROM leases WHERE name = 'releases' AND holder = 'api-1'"), 1);
	until = raw("SELECT expires_at FROM leases WHERE name = 'releases'");
	assert_true(until > 1700000000000LL + LEASE_TTL_MS);
	held = -1;
	assert_int_equal(store_lease_acquire(s, "releases", "api-2", LEASE_TTL_MS, &held), COFFER_OK);
	assert_int_equal(held, 0);
	assert_int_equal(raw("SELECT count(*) FROM leases WHERE holder = 'api-1'"), 1);
	assert_int_equal(raw("SELECT expires_at FROM leases WHERE name = 'releases'"), until);
	/* another name is another lease */
	assert_int_equal(store_lease_acquire(s, "scheduler", "api-2", LEASE_TTL_MS, &held), COFFER_OK);
	assert_int_equal(held, 1);

	/* its holder renews it: the same holder, a later expiry */
	usleep(2000);
	assert_int_equal(store_lease_acquire(s, "releases", "api-1", LEASE_TTL_MS, &held), COFFER_OK);
	assert_int_equal(held, 1);
	assert_true(raw("SELECT expires_at FROM leases WHERE name = 'releases'") > until);

	/* a short lease, once expired, goes to the next taker, and its old holder cannot take it back */
	assert_int_equal(store_lease_acquire(s, "short", "api-1", LEASE_SHORT_MS, &held), COFFER_OK);
	assert_int_equal(held, 1);
	assert_int_equal(store_lease_acquire(s, "short", "api-2", LEASE_TTL_MS, &held), COFFER_OK);
	assert_int_equal(held, 0);
	usleep((LEASE_SHORT_MS + 20) * 1000);
	assert_int_equal(store_lease_acquire(s, "short", "api-2", LEASE_TTL_MS, &held), COFFER_OK);
	assert_int_equal(held, 1);
	assert_int_equal(raw("SELECT count(*) FROM leases WHERE name = 'short' AND holder = 'api-2'"), 1);
	assert_int_equal(store_lease_acquire(s, "short", "api-1", LEASE_TTL_MS, &held), COFFER_OK);
	assert_int_equal(held, 0);

	/* the fence: held only by its holder before expiry, inside a transaction, and not renewed */
	assert_int_equal(store_tx_begin(s), COFFER_OK);
	held = -1;
	assert_int_equal(store_lease_check(s, "releases", "api-1", &held), COFFER_OK);
	assert_int_equal(held, 1);
	assert_int_equal(store_lease_check(s, "releases", "api-2", &held), COFFER_OK);
	assert_int_equal(held, 0);
	assert_int_equal(store_lease_check(s, "short", "api-1", &held), COFFER_OK); /* taken over */
	assert_int_equal(held, 0);
	assert_int_equal(store_lease_check(s, "never", "api-1", &held), COFFER_OK);
	assert_int_equal(held, 0);
	assert_int_equal(store_tx_end(s, COFFER_OK), COFFER_OK);
	assert_int_equal(store_lease_acquire(s, "expired", "api-1", LEASE_SHORT_MS, &held), COFFER_OK);
	assert_int_equal(held, 1);
	until = raw("SELECT expires_at FROM leases WHERE name = 'expired'");
	usleep((LEASE_SHORT_MS + 20) * 1000);
	assert_int_equal(store_tx_begin(s), COFFER_OK);
	assert_int_equal(store_lease_check(s, "expired", "api-1", &held), COFFER_OK);
	assert_int_equal(held, 0);
	assert_int_equal(store_tx_end(s, COFFER_OK), COFFER_OK);
	assert_int_equal(raw("SELECT expires_at FROM leases WHERE name = 'expired'"), until);
	assert_int_equal(store_lease_check(s, NULL, "api-1", &held), COFFER_ERR_INVALID);

	/* release: only by its holder; then anyone may take it */
	assert_int_equal(store_lease_release(s, "releases", "api-2"), COFFER_ERR_NOT_FOUND);
	assert_int_equal(store_lease_release(s, "releases", "api-1"), COFFER_OK);
	assert_int_equal(store_lease_release(s, "releases", "api-1"), COFFER_ERR_NOT_FOUND);
	assert_int_equal(raw("SELECT count(*) FROM leases WHERE name = 'releases'"), 0);
	assert_int_equal(store_lease_acquire(s, "releases", "api-2", LEASE_TTL_MS, &held), COFFER_OK);
	assert_int_equal(held, 1);
	assert_int_equal(store_lease_release(s, "never", "api-1"), COFFER_ERR_NOT_FOUND);

	/* checks before any SQL; *held is not written on an error */
	held = -1;
	assert_int_equal(store_lease_acquire(s, "releases", "api-1", 0, &held), COFFER_ERR_INVALID);
	assert_int_equal(store_lease_acquire(s, "releases", "api-1", -1, &held), COFFER_ERR_INVALID);
	assert_int_equal(store_lease_acquire(s, "releases", "api-1", INT64_MAX, &held), COFFER_ERR_INVALID);
	assert_int_equal(store_lease_acquire(s, "", "api-1", LEASE_TTL_MS, &held), COFFER_ERR_INVALID);
	assert_int_equal(store_lease_acquire(s, "releases", "", LEASE_TTL_MS, &held), COFFER_ERR_INVALID);
	assert_int_equal(store_lease_acquire(s, NULL, "api-1", LEASE_TTL_MS, &held), COFFER_ERR_INVALID);
	assert_int_equal(store_lease_release(s, "releases", NULL), COFFER_ERR_INVALID);
	assert_int_equal(held, -1);
	{
		char long_name[STORE_NAME_MAX + 2];
		memset(long_name, 'a', sizeof(long_name) - 1);
		long_name[sizeof(long_name) - 1] = '\0';
		assert_int_equal(store_lease_acquire(s, long_name, "api-1", LEASE_TTL_MS, &held), COFFER_ERR_TOO_LARGE);
		assert_int_equal(store_lease_acquire(s, "releases", long_name, LEASE_TTL_MS, &held),
				 COFFER_ERR_TOO_LARGE);
	}
	assert_int_equal(held, -1);
}

/* A taker of an expired lease while its old holder's fenced transaction is open. */
struct late_taker {
	int held;
	int done; /* under lease_mu */
};

static pthread_mutex_t lease_mu = PTHREAD_MUTEX_INITIALIZER;

static void *late_take(void *p)
{
	struct late_taker *t = p;
	struct store *s = open_store();
	int held = -1;
	assert_int_equal(store_lease_acquire(s, "fence", "api-2", LEASE_TTL_MS, &held), COFFER_OK);
	store_close(s);
	pthread_mutex_lock(&lease_mu);
	t->held = held;
	t->done = 1;
	pthread_mutex_unlock(&lease_mu);
	return NULL;
}

/*
 * The fence holds while its transaction is open: a holder that checked
 * the lease and then stalled past its expiry still finishes its
 * transaction before another takes the lease.
 */
static void test_lease_fence_blocks_taker(void **state)
{
	struct store *s = *state;
	struct late_taker t = { .held = -1 };
	pthread_t th;
	int held = -1, done;
	/* long enough that the check below comes before the expiry on a loaded machine */
	assert_int_equal(store_lease_acquire(s, "fence", "api-1", LEASE_FENCE_MS, &held), COFFER_OK);
	assert_int_equal(held, 1);
	assert_int_equal(store_tx_begin(s), COFFER_OK);
	assert_int_equal(store_lease_check(s, "fence", "api-1", &held), COFFER_OK);
	assert_int_equal(held, 1);
	usleep((LEASE_FENCE_MS + 50) * 1000); /* expired now */
	assert_int_equal(pthread_create(&th, NULL, late_take, &t), 0);
	usleep(300000);
	pthread_mutex_lock(&lease_mu);
	done = t.done;
	pthread_mutex_unlock(&lease_mu);
	assert_int_equal(done, 0); /* it waits for the fenced transaction */
	assert_int_equal(store_tx_end(s, COFFER_OK), COFFER_OK);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(t.held, 1);
	assert_int_equal(raw("SELECT count(*) FROM leases WHERE name = 'fence' AND holder = 'api-2'"), 1);
}

#define LEASE_THREADS 8
#define LEASE_ROUNDS 20

struct lease_arg {
	int id;
	int won; /* rounds in which this thread held the lease */
};

static int lease_round_winners[LEASE_ROUNDS];

/* Every thread tries to take lease "round-N" of each round: exactly one must win each. */
static void *lease_taker(void *p)
{
	struct lease_arg *a = p;
	struct store *s = open_store();
	char holder[32], name[32];
	snprintf(holder, sizeof(holder), "api-%d", a->id);
	for (int r = 0; r < LEASE_ROUNDS; r++) {
		int held = -1;
		snprintf(name, sizeof(name), "round-%d", r);
		assert_int_equal(store_lease_acquire(s, name, holder, LEASE_TTL_MS, &held), COFFER_OK);
		if (held) {
			a->won++;
			pthread_mutex_lock(&lease_mu);
			lease_round_winners[r]++;
			pthread_mutex_unlock(&lease_mu);
		}
	}
	store_close(s);
	return NULL;
}

/* Concurrent takers from separate connections: the conditional upsert lets one win each lease. */
static void test_lease_concurrent(void **state)
{
	pthread_t t[LEASE_THREADS];
	struct lease_arg args[LEASE_THREADS];
	(void)state;
	memset(lease_round_winners, 0, sizeof(lease_round_winners));
	for (int i = 0; i < LEASE_THREADS; i++) {
		args[i] = (struct lease_arg){ .id = i };
		assert_int_equal(pthread_create(&t[i], NULL, lease_taker, &args[i]), 0);
	}
	for (int i = 0; i < LEASE_THREADS; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	for (int r = 0; r < LEASE_ROUNDS; r++)
		assert_int_equal(lease_round_winners[r], 1);
	assert_int_equal(raw("SELECT count(*) FROM leases"), LEASE_ROUNDS);
}

/* ---- machines ---- */

static int has_machine(const struct store_machine_list *l, const char *id)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->items[i].id, id) == 0)
			return 1;
	return 0;
}

static void test_machines(void **state)
{
	struct store *s = *state;
	struct store_org org;
	struct store_app web, api;
	struct store_machine m1, m2, m3, got;
	struct store_machine_list l = { 0 };
	const char *none = "000000000000000000000000";

	make_app(s, "acme", "web", &org, &web);
	make_app(s, "acme", "api", &org, &api);
	assert_int_equal(store_machine_create(s, web.id, "host-1", 1, &m1), COFFER_OK);
	assert_int_equal(store_machine_create(s, web.id, "host-2", 1, &m2), COFFER_OK);
	assert_int_equal(store_machine_create(s, api.id, "host-1", 0, &m3), COFFER_OK);
	assert_int_equal(strlen(m1.id), STORE_ID_LEN);
	assert_string_not_equal(m1.id, m2.id);
	assert_string_equal(m1.state, "created");
	assert_int_equal(store_machine_create(s, none, "host-1", 0, &got), COFFER_ERR_NOT_FOUND);
	assert_int_equal(store_machine_create(s, web.id, "", 0, &got), COFFER_ERR_INVALID);
	assert_int_equal(raw("SELECT count(*) FROM machines"), 3);

	assert_int_equal(store_machine_get(s, m1.id, &got), COFFER_OK);
	assert_string_equal(got.id, m1.id);
	assert_string_equal(got.app_id, web.id);
	assert_string_equal(got.host_id, "host-1");
	assert_string_equal(got.state, "created");
	assert_int_equal(got.desired_release, 1);
	assert_int_equal(got.running_release, 0);
	assert_int_equal(got.pid, 0);
	assert_int_equal(got.exit_status, -1);
	assert_int_equal(got.exit_signal, 0);
	assert_int_equal(got.started_at, 0);
	assert_int_equal(got.restarts, 0);
	assert_int_equal(got.created_at, m1.created_at);
	assert_true(got.created_at > 1700000000000LL);
	assert_int_equal(store_machine_get(s, none, &got), COFFER_ERR_NOT_FOUND);

	/* by app and by host, across apps */
	assert_int_equal(store_machine_list_by_app(s, web.id, &l), COFFER_OK);
	assert_int_equal(l.n, 2);
	assert_true(has_machine(&l, m1.id) && has_machine(&l, m2.id));
	store_machine_list_release(&l);
	assert_int_equal(store_machine_list_by_host(s, "host-1", &l), COFFER_OK);
	assert_int_equal(l.n, 2);
	assert_true(has_machine(&l, m1.id) && has_machine(&l, m3.id));
	store_machine_list_release(&l);
	assert_null(l.items);
	assert_int_equal(store_machine_list_by_host(s, "host-3", &l), COFFER_OK);
	assert_int_equal(l.n, 0);

	/* desired, then what the agent reports */
	assert_int_equal(store_machine_set_desired(s, m1.id, 2), COFFER_OK);
	assert_int_equal(store_machine_set_desired(s, none, 2), COFFER_ERR_NOT_FOUND);
	assert_int_equal(store_machine_report(s, m1.id, "starting", 2, 0, -1, 0, 0), COFFER_OK);
	assert_int_equal(store_machine_get(s, m1.id, &got), COFFER_OK);
	assert_int_equal(got.desired_release, 2);
	assert_int_equal(got.running_release, 2);
	assert_string_equal(got.state, "starting");
	assert_int_equal(store_machine_report(s, m1.id, "started", 2, 4242, -1, 0, 1700000001000LL), COFFER_OK);
	assert_int_equal(store_machine_get(s, m1.id, &got), COFFER_OK);
	assert_string_equal(got.state, "started");
	assert_int_equal(got.pid, 4242);
	assert_int_equal(got.started_at, 1700000001000LL);
	assert_int_equal(got.restarts, 0);
	assert_true(got.updated_at >= got.created_at);
	/* the same start told twice is not a restart */
	assert_int_equal(store_machine_report(s, m1.id, "started", 2, 4242, -1, 0, 1700000001000LL), COFFER_OK);
	assert_int_equal(store_machine_report(s, m1.id, "failed", 2, 0, 3, 0, 0), COFFER_OK);
	assert_int_equal(store_machine_get(s, m1.id, &got), COFFER_OK);
	assert_string_equal(got.state, "failed");
	assert_int_equal(got.exit_status, 3);
	assert_int_equal(got.pid, 0);
	assert_int_equal(got.started_at, 1700000001000LL); /* 0 keeps it */
	assert_int_equal(got.restarts, 0);
	/* started again, same release: one restart */
	assert_int_equal(store_machine_report(s, m1.id, "started", 2, 4300, -1, 0, 1700000002000LL), COFFER_OK);
	assert_int_equal(store_machine_report(s, m1.id, "stopped", 2, 0, -1, 15, 0), COFFER_OK);
	assert_int_equal(store_machine_get(s, m1.id, &got), COFFER_OK);
	assert_int_equal(got.restarts, 1);
	assert_int_equal(got.exit_signal, 15);
	assert_int_equal(got.exit_status, -1);
	/* a start of another release is a deploy, not a restart */
	assert_int_equal(store_machine_report(s, m1.id, "started", 3, 4400, -1, 0, 1700000003000LL), COFFER_OK);
	assert_int_equal(store_machine_get(s, m1.id, &got), COFFER_OK);
	assert_int_equal(got.restarts, 1);
	assert_int_equal(got.running_release, 3);
	assert_int_equal(got.started_at, 1700000003000LL);
	/* "starting" for another release clears the old start time: its first start is no restart */
	assert_int_equal(store_machine_report(s, m1.id, "starting", 5, 0, -1, 0, 0), COFFER_OK);
	assert_int_equal(store_machine_get(s, m1.id, &got), COFFER_OK);
	assert_int_equal(got.started_at, 0);
	assert_int_equal(store_machine_report(s, m1.id, "started", 5, 4500, -1, 0, 1700000004000LL), COFFER_OK);
	assert_int_equal(store_machine_get(s, m1.id, &got), COFFER_OK);
	assert_int_equal(got.restarts, 1);
	assert_int_equal(got.started_at, 1700000004000LL);
	/* a restart of it is counted; "starting" of the same release keeps the time */
	assert_int_equal(store_machine_report(s, m1.id, "starting", 5, 0, -1, 0, 0), COFFER_OK);
	assert_int_equal(store_machine_get(s, m1.id, &got), COFFER_OK);
	assert_int_equal(got.started_at, 1700000004000LL);
	assert_int_equal(store_machine_report(s, m1.id, "started", 5, 4600, -1, 0, 1700000005000LL), COFFER_OK);
	assert_int_equal(store_machine_get(s, m1.id, &got), COFFER_OK);
	assert_int_equal(got.restarts, 2);
	/* back to release 3 as before */
	assert_int_equal(store_machine_report(s, m1.id, "started", 3, 4400, -1, 0, 1700000003000LL), COFFER_OK);

	/* a state outside the seven is refused, and nothing changes */
	assert_int_equal(store_machine_report(s, m1.id, "running", 3, 1, -1, 0, 0), COFFER_ERR_INVALID);
	assert_int_equal(store_machine_report(s, m1.id, "", 3, 1, -1, 0, 0), COFFER_ERR_INVALID);
	assert_int_equal(store_machine_report(s, m1.id, NULL, 3, 1, -1, 0, 0), COFFER_ERR_INVALID);
	assert_int_equal(store_machine_report(s, m1.id, "Started", 3, 1, -1, 0, 0), COFFER_ERR_INVALID);
	assert_int_equal(store_machine_get(s, m1.id, &got), COFFER_OK);
	assert_string_equal(got.state, "started");
	assert_int_equal(got.pid, 4400);
	assert_int_equal(store_machine_report(s, none, "started", 3, 1, -1, 0, 0), COFFER_ERR_NOT_FOUND);

	/* destroyed: still readable, out of its host's list, and final */
	assert_int_equal(store_machine_destroy(s, m1.id), COFFER_OK);
	assert_int_equal(store_machine_destroy(s, m1.id), COFFER_OK);
	assert_int_equal(store_machine_destroy(s, none), COFFER_ERR_NOT_FOUND);
	assert_int_equal(store_machine_get(s, m1.id, &got), COFFER_OK);
	assert_string_equal(got.state, "destroyed");
	assert_int_equal(store_machine_list_by_host(s, "host-1", &l), COFFER_OK);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.items[0].id, m3.id);
	store_machine_list_release(&l);
	assert_int_equal(store_machine_list_by_app(s, web.id, &l), COFFER_OK);
	assert_int_equal(l.n, 2);
	assert_true(has_machine(&l, m1.id));
	store_machine_list_release(&l);
	assert_int_equal(store_machine_report(s, m1.id, "started", 3, 1, -1, 0, 0), COFFER_ERR_CONFLICT);
	assert_int_equal(store_machine_set_desired(s, m1.id, 4), COFFER_ERR_CONFLICT);
	assert_int_equal(store_machine_get(s, m1.id, &got), COFFER_OK);
	assert_string_equal(got.state, "destroyed");
	assert_int_equal(got.desired_release, 2);
}

/* The tail of a machine's last exit: set, replaced, cleared, bounded, final once destroyed. */
static void test_machine_tail(void **state)
{
	struct store *s = *state;
	struct store_org org;
	struct store_app web;
	struct store_machine m, got;
	struct buf t, small;
	char *big;
	const char *none = "000000000000000000000000";

	make_app(s, "acme", "web", &org, &web);
	assert_int_equal(store_machine_create(s, web.id, "host-1", 1, &m), COFFER_OK);
	buf_init(&t, STORE_MACHINE_TAIL_MAX);
	assert_int_equal(store_machine_tail(s, m.id, &t), COFFER_OK);
	assert_int_equal(t.len, 0);
	assert_int_equal(raw("SELECT count(tail) FROM machines"), 0);

	assert_int_equal(store_machine_set_tail(s, m.id, "line 1\nDB_URL=***\n"), COFFER_OK);
	assert_int_equal(store_machine_tail(s, m.id, &t), COFFER_OK);
	assert_string_equal(t.ptr, "line 1\nDB_URL=***\n");
	assert_int_equal(store_machine_set_tail(s, m.id, "second"), COFFER_OK);
	assert_int_equal(store_machine_tail(s, m.id, &t), COFFER_OK);
	assert_string_equal(t.ptr, "second");
	/* the tail is not part of the report: a report keeps it, and the row is otherwise unchanged */
	assert_int_equal(store_machine_report(s, m.id, "stopped", 1, 0, 2, 0, 0), COFFER_OK);
	assert_int_equal(store_machine_tail(s, m.id, &t), COFFER_OK);
	assert_string_equal(t.ptr, "second");
	assert_int_equal(store_machine_get(s, m.id, &got), COFFER_OK);
	assert_int_equal(got.exit_status, 2);
	/* a tail that does not fit the caller's buffer: TOO_LARGE, the buffer as it was */
	buf_init(&small, 3);
	assert_int_equal(buf_adds(&small, "ab"), COFFER_OK);
	assert_int_equal(store_machine_tail(s, m.id, &small), COFFER_ERR_TOO_LARGE);
	assert_string_equal(small.ptr, "ab");
	buf_release(&small);

	/* the size limit, exactly */
	big = malloc(STORE_MACHINE_TAIL_MAX + 2);
	assert_non_null(big);
	memset(big, 'x', STORE_MACHINE_TAIL_MAX + 1);
	big[STORE_MACHINE_TAIL_MAX + 1] = '\0';
	assert_int_equal(store_machine_set_tail(s, m.id, big), COFFER_ERR_TOO_LARGE);
	assert_int_equal(store_machine_tail(s, m.id, &t), COFFER_OK);
	assert_string_equal(t.ptr, "second");
	big[STORE_MACHINE_TAIL_MAX] = '\0';
	assert_int_equal(store_machine_set_tail(s, m.id, big), COFFER_OK);
	assert_int_equal(store_machine_tail(s, m.id, &t), COFFER_OK);
	assert_int_equal(t.len, STORE_MACHINE_TAIL_MAX);
	free(big);

	/* NULL clears */
	assert_int_equal(store_machine_set_tail(s, m.id, NULL), COFFER_OK);
	assert_int_equal(raw("SELECT count(tail) FROM machines"), 0);
	assert_int_equal(store_machine_tail(s, m.id, &t), COFFER_OK);
	assert_int_equal(t.len, 0);

	assert_int_equal(store_machine_set_tail(s, none, "x"), COFFER_ERR_NOT_FOUND);
	assert_int_equal(store_machine_tail(s, none, &t), COFFER_ERR_NOT_FOUND);
	assert_int_equal(store_machine_set_tail(s, NULL, "x"), COFFER_ERR_INVALID);
	/* destroyed is final: no new tail, the last one still readable */
	assert_int_equal(store_machine_set_tail(s, m.id, "last"), COFFER_OK);
	assert_int_equal(store_machine_destroy(s, m.id), COFFER_OK);
	assert_int_equal(store_machine_set_tail(s, m.id, "later"), COFFER_ERR_CONFLICT);
	assert_int_equal(store_machine_tail(s, m.id, &t), COFFER_OK);
	assert_string_equal(t.ptr, "last");
	buf_release(&t);
}

static const struct store_host_load *load_of(const struct store_host_load_list *l, const char *host)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->items[i].host_id, host) == 0)
			return &l->items[i];
	return NULL;
}

/* Live machines per host, of every app and of the one asked about; destroyed ones do not count. */
static void test_machine_load(void **state)
{
	struct store *s = *state;
	struct store_org org;
	struct store_app web, api;
	struct store_machine m;
	struct store_host_load_list l = { 0 };
	const struct store_host_load *h;

	make_app(s, "acme", "web", &org, &web);
	make_app(s, "acme", "api", &org, &api);
	assert_int_equal(store_machine_load(s, web.id, &l), COFFER_OK);
	assert_int_equal(l.n, 0);
	assert_int_equal(store_machine_create(s, web.id, "host-a", 1, &m), COFFER_OK);
	assert_int_equal(store_machine_create(s, web.id, "host-a", 1, &m), COFFER_OK);
	assert_int_equal(store_machine_create(s, api.id, "host-a", 1, &m), COFFER_OK);
	assert_int_equal(store_machine_create(s, api.id, "host-b", 1, &m), COFFER_OK);
	assert_int_equal(store_machine_create(s, api.id, "host-c", 1, &m), COFFER_OK);
	assert_int_equal(store_machine_destroy(s, m.id), COFFER_OK);
	assert_int_equal(store_machine_load(s, web.id, &l), COFFER_OK);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.items[0].host_id, "host-a");
	h = load_of(&l, "host-a");
	assert_non_null(h);
	assert_int_equal(h->machines, 3);
	assert_int_equal(h->app_machines, 2);
	h = load_of(&l, "host-b");
	assert_non_null(h);
	assert_int_equal(h->machines, 1);
	assert_int_equal(h->app_machines, 0);
	assert_null(load_of(&l, "host-c"));
	store_host_load_list_release(&l);
	assert_null(l.items);
	assert_int_equal(store_machine_load(s, api.id, &l), COFFER_OK);
	assert_int_equal(load_of(&l, "host-a")->app_machines, 1);
	assert_int_equal(load_of(&l, "host-b")->app_machines, 1);
	store_host_load_list_release(&l);
	assert_int_equal(store_machine_load(s, NULL, &l), COFFER_ERR_INVALID);
}

/* The caller's transaction: all its changes or none; the functions inside join it. */
static void test_caller_transaction(void **state)
{
	struct store *s = *state;
	struct store_org org;
	struct store_app web;
	struct store_machine m1, m2, got;
	struct store_release r = { 0 };
	uint64_t v;
	const char *none = "000000000000000000000000";

	make_app(s, "acme", "web", &org, &web);
	assert_int_equal(store_release_create(s, web.id, "{}", 0, 0, 0, "alice", &v), COFFER_OK);
	assert_int_equal(store_machine_create(s, web.id, "host-1", 0, &m1), COFFER_OK);

	/* committed together */
	assert_int_equal(store_tx_begin(s), COFFER_OK);
	assert_int_equal(store_tx_begin(s), COFFER_ERR_INTERNAL); /* not nested */
	assert_int_equal(store_app_lock(s, web.id), COFFER_OK);
	assert_int_equal(store_machine_create(s, web.id, "host-1", v, &m2), COFFER_OK);
	assert_int_equal(store_machine_set_desired(s, m1.id, v), COFFER_OK);
	assert_int_equal(store_release_update(s, web.id, v, "running", NULL, "{\"p\":1}"), COFFER_OK);
	assert_int_equal(store_tx_end(s, COFFER_OK), COFFER_OK);
	assert_int_equal(raw("SELECT count(*) FROM machines"), 2);
	assert_int_equal(store_release_get(s, web.id, v, &r), COFFER_OK);
	assert_string_equal(r.progress, "{\"p\":1}");
	store_release_clear(&r);

	/* the caller gives up: nothing of it stays, the nested functions' commits included */
	assert_int_equal(store_tx_begin(s), COFFER_OK);
	assert_int_equal(store_machine_destroy(s, m2.id), COFFER_OK);
	assert_int_equal(store_release_update(s, web.id, v, "running", NULL, "{\"p\":2}"), COFFER_OK);
	assert_int_equal(store_tx_end(s, COFFER_ERR_CONFLICT), COFFER_ERR_CONFLICT);
	assert_int_equal(store_machine_get(s, m2.id, &got), COFFER_OK);
	assert_string_equal(got.state, "created");
	assert_int_equal(store_release_get(s, web.id, v, &r), COFFER_OK);
	assert_string_equal(r.progress, "{\"p\":1}");
	store_release_clear(&r);

	/* a failure inside rolls the whole transaction back even if the caller says OK */
	assert_int_equal(store_tx_begin(s), COFFER_OK);
	assert_int_equal(store_machine_destroy(s, m2.id), COFFER_OK);
	assert_int_equal(store_app_set_current_release(s, web.id, 99, 0), COFFER_ERR_NOT_FOUND);
	assert_int_equal(store_tx_end(s, COFFER_OK), COFFER_ERR_NOT_FOUND);
	assert_int_equal(store_machine_get(s, m2.id, &got), COFFER_OK);
	assert_string_equal(got.state, "created");
	/* a statement that fails (an unknown app) spoils it too */
	assert_int_equal(store_tx_begin(s), COFFER_OK);
	assert_int_equal(store_machine_destroy(s, m2.id), COFFER_OK);
	assert_int_equal(store_machine_create(s, none, "host-1", 0, &got), COFFER_ERR_NOT_FOUND);
	assert_int_not_equal(store_tx_end(s, COFFER_OK), COFFER_OK);
	assert_int_equal(store_machine_get(s, m2.id, &got), COFFER_OK);
	assert_string_equal(got.state, "created");

	/* the lock is only for a caller's transaction; the store works on afterwards */
	assert_int_equal(store_app_lock(s, web.id), COFFER_ERR_INTERNAL);
	assert_int_equal(store_tx_end(s, COFFER_OK), COFFER_ERR_INTERNAL);
	assert_int_equal(store_tx_begin(s), COFFER_OK);
	assert_int_equal(store_app_lock(s, none), COFFER_ERR_NOT_FOUND);
	assert_int_equal(store_tx_end(s, COFFER_ERR_NOT_FOUND), COFFER_ERR_NOT_FOUND);
	assert_int_equal(store_machine_destroy(s, m2.id), COFFER_OK);
	assert_int_equal(store_machine_get(s, m2.id, &got), COFFER_OK);
	assert_string_equal(got.state, "destroyed");
}

/* ---- releases ---- */

static void test_releases(void **state)
{
	struct store *s = *state;
	struct store_org org;
	struct store_app web, api, got;
	struct store_release r = { 0 };
	struct store_release_list l = { 0 };
	const char *config = "{\"cmd\":[\"run\",\"--port\",\"8080\"],\"env\":{\"MODE\":\"prod\"},\"count\":2}";
	struct store_secret_change c1[] = { set("A", "ct-a1", "d") };
	uint64_t v = 0, sv;
	char *big;

	make_app(s, "acme", "web", &org, &web);
	make_app(s, "acme", "api", &org, &api);
	assert_int_equal(store_secrets_put(s, web.id, c1, 1, "u", "staged", NULL, &sv), COFFER_OK);

	assert_int_equal(store_release_create(s, web.id, config, sv, 0, 0, "alice", &v), COFFER_OK);
	assert_int_equal(v, 1);
	assert_int_equal(store_release_get(s, web.id, 1, &r), COFFER_OK);
	assert_string_equal(r.app_id, web.id);
	assert_int_equal(r.version, 1);
	assert_string_equal(r.config, config);
	assert_int_equal(r.secrets_version, sv);
	assert_string_equal(r.status, "pending");
	assert_string_equal(r.reason, "");
	assert_string_equal(r.actor, "alice");
	assert_string_equal(r.progress, "{}");
	assert_true(r.created_at > 1700000000000LL);
	assert_int_equal(r.updated_at, r.created_at);
	store_release_clear(&r);

	/* one release per app at a time: pending blocks, running blocks */
	v = 99;
	assert_int_equal(store_release_create(s, web.id, "{}", sv, 1, sv, "bob", &v), COFFER_ERR_CONFLICT);
	assert_int_equal(v, 99);
	assert_int_equal(store_release_update(s, web.id, 1, "running", NULL, "{\"moving\":\"m1\"}"), COFFER_OK);
	assert_int_equal(store_release_create(s, web.id, "{}", sv, 1, sv, "bob", &v), COFFER_ERR_CONFLICT);
	assert_int_equal(raw("SELECT count(*) FROM releases"), 1);
	assert_int_equal(store_release_get(s, web.id, 1, &r), COFFER_OK);
	assert_string_equal(r.status, "running");
	assert_string_equal(r.progress, "{\"moving\":\"m1\"}");
	assert_string_equal(r.reason, "");
	store_release_clear(&r);
	/* another app is not blocked, and numbers its own releases */
	assert_int_equal(store_release_create(s, api.id, "{}", 0, 0, 0, "bob", &v), COFFER_OK);
	assert_int_equal(v, 1);
	assert_int_equal(store_release_create(s, "000000000000000000000000", "{}", 0, 0, 0, "bob", &v),
			 COFFER_ERR_NOT_FOUND);

	/* what a controller resumes */
	assert_int_equal(store_release_running(s, &l), COFFER_OK);
	assert_int_equal(l.n, 2);
	{
		/* created in the same millisecond, they may come in either order */
		size_t w = strcmp(l.items[0].app_id, web.id) == 0 ? 0 : 1;
		assert_string_equal(l.items[w].app_id, web.id);
		assert_string_equal(l.items[w].status, "running");
		assert_int_equal(l.items[w].version, 1);
		assert_string_equal(l.items[1 - w].app_id, api.id);
		assert_string_equal(l.items[1 - w].status, "pending");
	}
	store_release_list_release(&l);
	assert_null(l.items);

	/* finished: NULL keeps reason and progress; it cannot run again */
	assert_int_equal(store_release_update(s, web.id, 1, "succeeded", NULL, NULL), COFFER_OK);
	assert_int_equal(store_release_update(s, web.id, 1, "running", NULL, NULL), COFFER_ERR_CONFLICT);
	assert_int_equal(store_release_update(s, web.id, 1, "pending", NULL, NULL), COFFER_ERR_CONFLICT);
	assert_int_equal(store_release_update(s, web.id, 1, "done", NULL, NULL), COFFER_ERR_INVALID);
	assert_int_equal(store_release_update(s, web.id, 1, NULL, NULL, NULL), COFFER_ERR_INVALID);
	assert_int_equal(store_release_update(s, web.id, 9, "failed", NULL, NULL), COFFER_ERR_NOT_FOUND);
	assert_int_equal(store_release_get(s, web.id, 1, &r), COFFER_OK);
	assert_string_equal(r.status, "succeeded");
	assert_string_equal(r.progress, "{\"moving\":\"m1\"}");
	store_release_clear(&r);
	assert_int_equal(store_release_get(s, web.id, 9, &r), COFFER_ERR_NOT_FOUND);
	assert_int_equal(store_release_get(s, web.id, 0, &r), COFFER_ERR_INVALID);

	/* the next one is numbered max + 1 and records where to go back to */
	assert_int_equal(store_release_create(s, web.id, "{\"count\":3}", sv, 1, sv, "bob", &v), COFFER_OK);
	assert_int_equal(v, 2);
	assert_int_equal(store_release_update(s, web.id, 2, "failed", "machine m1 exited with status 1", "{}"),
			 COFFER_OK);
	assert_int_equal(store_release_create(s, web.id, "{}", sv, 1, sv, "carol", &v), COFFER_OK);
	assert_int_equal(v, 3);
	assert_int_equal(store_release_get(s, web.id, 2, &r), COFFER_OK);
	assert_string_equal(r.status, "failed");
	assert_string_equal(r.reason, "machine m1 exited with status 1");
	assert_int_equal(r.previous_version, 1);
	assert_int_equal(r.previous_secrets, sv);
	assert_string_equal(r.actor, "bob");
	store_release_clear(&r);
	/* a later progress note keeps the reason */
	assert_int_equal(store_release_update(s, web.id, 2, "failed", NULL, "{\"rolled_back\":[\"m1\"]}"), COFFER_OK);
	assert_int_equal(store_release_get(s, web.id, 2, &r), COFFER_OK);
	assert_string_equal(r.reason, "machine m1 exited with status 1");
	assert_string_equal(r.progress, "{\"rolled_back\":[\"m1\"]}");
	store_release_clear(&r);

	/* newest first */
	assert_int_equal(store_release_list(s, web.id, &l), COFFER_OK);
	assert_int_equal(l.n, 3);
	assert_int_equal(l.items[0].version, 3);
	assert_int_equal(l.items[1].version, 2);
	assert_int_equal(l.items[2].version, 1);
	assert_string_equal(l.items[2].config, config);
	assert_string_equal(l.items[0].actor, "carol");
	store_release_list_release(&l);
	assert_int_equal(store_release_list(s, "000000000000000000000000", &l), COFFER_OK);
	assert_int_equal(l.n, 0);

	/* a config past its size is refused before any SQL */
	big = malloc(STORE_RELEASE_TEXT_MAX + 2);
	assert_non_null(big);
	memset(big, 'x', STORE_RELEASE_TEXT_MAX + 1);
	big[STORE_RELEASE_TEXT_MAX + 1] = '\0';
	assert_int_equal(store_release_create(s, api.id, big, 0, 0, 0, "bob", &v), COFFER_ERR_TOO_LARGE);
	assert_int_equal(store_release_update(s, web.id, 3, "failed", big, NULL), COFFER_ERR_TOO_LARGE);
	free(big);

	/* current release and deployed secrets move together, to things that exist */
	assert_int_equal(store_app_set_current_release(s, web.id, 1, sv), COFFER_OK);
	assert_int_equal(store_app_get(s, web.id, &got), COFFER_OK);
	assert_int_equal(got.current_release, 1);
	assert_int_equal(got.deployed_version, sv);
	assert_int_equal(store_app_set_current_release(s, web.id, 9, sv), COFFER_ERR_NOT_FOUND);
	assert_int_equal(store_app_set_current_release(s, web.id, 2, sv + 5), COFFER_ERR_NOT_FOUND);
	assert_int_equal(store_app_set_current_release(s, "000000000000000000000000", 0, 0), COFFER_ERR_NOT_FOUND);
	assert_int_equal(store_app_get(s, web.id, &got), COFFER_OK);
	assert_int_equal(got.current_release, 1);
	assert_int_equal(got.deployed_version, sv);
	assert_int_equal(store_app_set_current_release(s, web.id, 2, 0), COFFER_OK);
	assert_int_equal(store_app_get(s, web.id, &got), COFFER_OK);
	assert_int_equal(got.current_release, 2);
	assert_int_equal(got.deployed_version, 0);
	assert_int_equal(store_app_get(s, api.id, &got), COFFER_OK);
	assert_int_equal(got.current_release, 0);
}

/* ---- concurrency: release creators racing on one app ---- */

struct creator {
	const char *app_id;
	pthread_barrier_t *start;
	enum coffer_err rc;
	uint64_t version;
};

static void *creator_thread(void *arg)
{
	struct creator *c = arg;
	struct store *s = NULL;
	c->rc = open_keyed(db.url, &s);
	pthread_barrier_wait(c->start);
	if (c->rc == COFFER_OK)
		c->rc = store_release_create(s, c->app_id, "{}", 0, 0, 0, "racer", &c->version);
	store_close(s);
	return NULL;
}

static void test_release_concurrent(void **state)
{
	struct store *s = *state;
	struct store_org org;
	struct store_app app;
	struct creator c[RELEASE_THREADS];
	pthread_t t[RELEASE_THREADS];
	pthread_barrier_t start;

	make_app(s, "acme", "web", &org, &app);
	for (uint64_t round = 1; round <= RELEASE_ROUNDS; round++) {
		int won = 0, refused = 0;
		uint64_t winner = 0;
		assert_int_equal(pthread_barrier_init(&start, NULL, RELEASE_THREADS), 0);
		for (int i = 0; i < RELEASE_THREADS; i++) {
			c[i] = (struct creator){ .app_id = app.id, .start = &start };
			assert_int_equal(pthread_create(&t[i], NULL, creator_thread, &c[i]), 0);
		}
		for (int i = 0; i < RELEASE_THREADS; i++) {
			pthread_join(t[i], NULL);
			if (c[i].rc == COFFER_OK) {
				won++;
				winner = c[i].version;
			} else if (c[i].rc == COFFER_ERR_CONFLICT) {
				refused++;
			}
		}
		pthread_barrier_destroy(&start);
		assert_int_equal(won, 1);
		assert_int_equal(refused, RELEASE_THREADS - 1);
		assert_int_equal(winner, round);
		assert_int_equal(raw("SELECT count(*) FROM releases"), (long long)round);
		/* the winner finishes: the next round may start one more */
		assert_int_equal(store_release_update(s, app.id, winner, "succeeded", NULL, NULL), COFFER_OK);
	}
}

/* ---- audit ---- */

static void append_events(struct store *s, int n)
{
	static const char *apps[] = { "web", "api" };
	char action[32], rid[32];
	for (int i = 1; i <= n; i++) {
		uint64_t seq = 0;
		snprintf(action, sizeof(action), "secrets.set.%d", i);
		snprintf(rid, sizeof(rid), "req-%d", i);
		struct store_audit_event ev = { .org_id = "org1", .actor = "alice", .action = action,
						.app = apps[i % 2], .detail = "{\"names\":[\"A\"]}",
						.outcome = "ok", .request_id = rid };
		assert_int_equal(store_audit_append(s, &ev, &seq), COFFER_OK);
		assert_int_equal(seq, (uint64_t)i);
	}
}

static void test_audit_chain(void **state)
{
	struct store *s = *state;
	struct store_audit_list l = { 0 };
	struct store_audit_filter f = { 0 };
	unsigned char zero[STORE_HASH_LEN] = { 0 }, h[STORE_HASH_LEN], head[STORE_HASH_LEN];
	uint64_t broken = 0, head_seq = 99;

	assert_int_equal(store_audit_verify(s, &broken), COFFER_OK);
	assert_int_equal(store_audit_head(s, &head_seq, head), COFFER_OK);
	assert_int_equal(head_seq, 0);
	assert_memory_equal(head, zero, sizeof(zero));
	append_events(s, 6);
	/* NULL fields are stored as "" */
	struct store_audit_event bare = { .ts = 1234, .action = "bare" };
	uint64_t seq;
	assert_int_equal(store_audit_append(s, &bare, &seq), COFFER_OK);
	assert_int_equal(seq, 7);

	assert_int_equal(store_audit_list(s, &f, &l), COFFER_OK);
	assert_int_equal(l.n, 7);
	assert_memory_equal(l.items[0].prev_hash, zero, sizeof(zero));
	/* the chain is the documented one */
	assert_int_equal(store_audit_hash(1, &l.items[0].ev, zero, h), COFFER_OK);
	assert_memory_equal(l.items[0].hash, h, sizeof(h));
	for (size_t i = 1; i < l.n; i++) {
		assert_int_equal(l.items[i].seq, i + 1);
		assert_memory_equal(l.items[i].prev_hash, l.items[i - 1].hash, STORE_HASH_LEN);
	}
	assert_string_equal(l.items[2].ev.action, "secrets.set.3");
	assert_string_equal(l.items[2].ev.request_id, "req-3");
	assert_string_equal(l.items[2].ev.detail, "{\"names\":[\"A\"]}");
	assert_true(l.items[2].ev.ts > 0);
	assert_string_equal(l.items[6].ev.org_id, "");
	assert_int_equal(l.items[6].ev.ts, 1234);
	assert_int_equal(store_audit_head(s, &head_seq, head), COFFER_OK);
	assert_int_equal(head_seq, 7);
	assert_memory_equal(head, l.items[6].hash, STORE_HASH_LEN);
	/* a changed field changes the hash; so does a changed seq or prev */
	struct store_audit_event changed = l.items[0].ev;
	changed.actor = "mallory";
	assert_int_equal(store_audit_hash(1, &changed, zero, h), COFFER_OK);
	assert_memory_not_equal(l.items[0].hash, h, sizeof(h));
	assert_int_equal(store_audit_hash(2, &l.items[0].ev, zero, h), COFFER_OK);
	assert_memory_not_equal(l.items[0].hash, h, sizeof(h));
	/* field boundaries are unambiguous: ("ab","c") differs from ("a","bc") */
	struct store_audit_event x = { .ts = 1, .actor = "ab", .action = "c" };
	struct store_audit_event y = { .ts = 1, .actor = "a", .action = "bc" };
	unsigned char hx[STORE_HASH_LEN], hy[STORE_HASH_LEN];
	assert_int_equal(store_audit_hash(1, &x, zero, hx), COFFER_OK);
	assert_int_equal(store_audit_hash(1, &y, zero, hy), COFFER_OK);
	assert_memory_not_equal(hx, hy, sizeof(hx));
	store_audit_list_release(&l);

	/* filters: app, after, limit, org */
	f.app = "web";
	assert_int_equal(store_audit_list(s, &f, &l), COFFER_OK);
	assert_int_equal(l.n, 3);
	for (size_t i = 0; i < l.n; i++)
		assert_string_equal(l.items[i].ev.app, "web");
	store_audit_list_release(&l);
	f = (struct store_audit_filter){ .after_seq = 2, .limit = 3 };
	assert_int_equal(store_audit_list(s, &f, &l), COFFER_OK);
	assert_int_equal(l.n, 3);
	assert_int_equal(l.items[0].seq, 3);
	assert_int_equal(l.items[2].seq, 5);
	store_audit_list_release(&l);
	f = (struct store_audit_filter){ .org_id = "org1" };
	assert_int_equal(store_audit_list(s, &f, &l), COFFER_OK);
	assert_int_equal(l.n, 6);
	store_audit_list_release(&l);

	assert_int_equal(store_audit_verify(s, &broken), COFFER_OK);

	/* an attacker with write access changes what event 3 says */
	assert_int_equal(raw("UPDATE audit_events SET action = 'secrets.get' WHERE seq = 3"), 1);
	assert_int_equal(store_audit_verify(s, &broken), COFFER_ERR_CRYPTO);
	assert_int_equal(broken, 3);
}

static void test_audit_delete_detected(void **state)
{
	struct store *s = *state;
	uint64_t broken = 0;
	append_events(s, 5);
	assert_int_equal(store_audit_verify(s, &broken), COFFER_OK);
	assert_int_equal(raw("DELETE FROM audit_events WHERE seq = 3"), 1);
	assert_int_equal(store_audit_verify(s, &broken), COFFER_ERR_CRYPTO);
	assert_int_equal(broken, 3);
	/* the first event gone */
	assert_int_equal(raw("DELETE FROM audit_events WHERE seq = 1"), 1);
	assert_int_equal(store_audit_verify(s, &broken), COFFER_ERR_CRYPTO);
	assert_int_equal(broken, 1);
}

/* The anchor's check: the event at an anchored seq, and the chain's extension from it. */
static void test_audit_verify_from_anchor(void **state)
{
	struct store *s = *state;
	static const unsigned char zero[STORE_HASH_LEN];
	unsigned char h3[STORE_HASH_LEN], end_hash[STORE_HASH_LEN], head[STORE_HASH_LEN], h[STORE_HASH_LEN];
	uint64_t end = 0, broken = 0, seq = 0;

	assert_int_equal(store_audit_event_hash(s, 1, h), COFFER_ERR_NOT_FOUND);
	assert_int_equal(store_audit_event_hash(s, 0, h), COFFER_ERR_INVALID);
	/* the empty log: genesis is its own end */
	assert_int_equal(store_audit_verify_from(s, 0, zero, &end, end_hash, &broken), COFFER_OK);
	assert_int_equal(end, 0);
	assert_memory_equal(end_hash, zero, sizeof(zero));

	append_events(s, 5);
	assert_int_equal(store_audit_event_hash(s, 3, h3), COFFER_OK);
	assert_int_equal(store_audit_head(s, &seq, head), COFFER_OK);
	assert_int_equal(store_audit_verify_from(s, 3, h3, &end, end_hash, &broken), COFFER_OK);
	assert_int_equal(end, 5);
	assert_memory_equal(end_hash, head, sizeof(head));
	assert_int_equal(store_audit_verify_from(s, 0, zero, &end, end_hash, &broken), COFFER_OK);
	assert_int_equal(end, 5);
	/* at the end: nothing follows, the anchor is the end */
	assert_int_equal(store_audit_verify_from(s, 5, head, &end, end_hash, &broken), COFFER_OK);
	assert_int_equal(end, 5);
	/* another anchor hash at 3: event 4 does not chain from it */
	assert_int_equal(store_audit_verify_from(s, 3, zero, &end, end_hash, &broken), COFFER_ERR_CRYPTO);
	assert_int_equal(broken, 4);
	/* a cut tail: event 5 is gone */
	assert_int_equal(raw("DELETE FROM audit_events WHERE seq > 4"), 1);
	assert_int_equal(store_audit_event_hash(s, 5, h), COFFER_ERR_NOT_FOUND);
	assert_int_equal(store_audit_verify_from(s, 3, h3, &end, end_hash, &broken), COFFER_OK);
	assert_int_equal(end, 4);
}

static void test_audit_rehash_detected(void **state)
{
	struct store *s = *state;
	struct store_audit_list l = { 0 };
	struct store_audit_filter f = { 0 };
	unsigned char h[STORE_HASH_LEN];
	char hex[STORE_HASH_LEN * 2 + 1], sql[SQL_SIZE];
	uint64_t broken = 0;

	append_events(s, 4);
	assert_int_equal(store_audit_list(s, &f, &l), COFFER_OK);
	/* event 2 rewritten with a hash that matches its new fields: event 3's link breaks */
	struct store_audit_event forged = l.items[1].ev;
	forged.actor = "mallory";
	assert_int_equal(store_audit_hash(2, &forged, l.items[1].prev_hash, h), COFFER_OK);
	store_audit_list_release(&l);
	sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
	if (use_pg)
		snprintf(sql, sizeof(sql),
			 "UPDATE audit_events SET actor = 'mallory', hash = '\\x%s'::bytea WHERE seq = 2", hex);
	else
		snprintf(sql, sizeof(sql), "UPDATE audit_events SET actor = 'mallory', hash = X'%s' WHERE seq = 2", hex);
	assert_int_equal(raw(sql), 1);
	assert_int_equal(store_audit_verify(s, &broken), COFFER_ERR_CRYPTO);
	assert_int_equal(broken, 3);
}

struct appender {
	int id;
	enum coffer_err rc;
};

static void *appender_thread(void *arg)
{
	struct appender *a = arg;
	struct store *s = NULL;
	char rid[32];
	a->rc = open_keyed(db.url, &s);
	for (int i = 0; a->rc == COFFER_OK && i < AUDIT_PER_THREAD; i++) {
		snprintf(rid, sizeof(rid), "%d-%d", a->id, i);
		struct store_audit_event ev = { .actor = "t", .action = "x", .request_id = rid };
		a->rc = store_audit_append(s, &ev, NULL);
	}
	store_close(s);
	return NULL;
}

static void test_audit_concurrent(void **state)
{
	struct store *s = *state;
	struct appender a[AUDIT_THREADS];
	pthread_t t[AUDIT_THREADS];
	uint64_t broken = 0, seq;
	unsigned char head[STORE_HASH_LEN];
	for (int i = 0; i < AUDIT_THREADS; i++) {
		a[i] = (struct appender){ .id = i };
		assert_int_equal(pthread_create(&t[i], NULL, appender_thread, &a[i]), 0);
	}
	for (int i = 0; i < AUDIT_THREADS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(a[i].rc, COFFER_OK);
	}
	assert_int_equal(raw("SELECT count(*) FROM audit_events"), AUDIT_THREADS * AUDIT_PER_THREAD);
	assert_int_equal(store_audit_head(s, &seq, head), COFFER_OK);
	assert_int_equal(seq, AUDIT_THREADS * AUDIT_PER_THREAD);
	assert_int_equal(store_audit_verify(s, &broken), COFFER_OK);
}

/* ---- group commit (store_group_run) ---- */

/* A change as the api makes one: a new secrets version and its audit event, in one change. */
struct gchange {
	const char *app_id;
	struct store_secret_change c;
	struct store_audit_event ev;
	uint64_t version;
	struct gate *gate; /* set: the change waits at the gate first (test_group_fails_alone) */
};

struct gate {
	struct store_group *g;
	uint64_t want; /* queued changes to wait for */
	int entered;   /* the gate's change runs (atomic) */
};

static enum coffer_err gchange_run(struct store *s, void *arg)
{
	struct gchange *gc = arg;
	if (gc->gate) {
		/* the leader's first change holds the batch open until the others are queued behind it */
		struct store_group_stats st = { 0 };
		__atomic_store_n(&gc->gate->entered, 1, __ATOMIC_SEQ_CST);
		for (int i = 0; i < 60000; i++) {
			store_group_stats(gc->gate->g, &st);
			if (st.queued >= gc->gate->want)
				break;
			usleep(1000);
		}
	}
	enum coffer_err rc = store_secrets_put(s, gc->app_id, &gc->c, 1, "writer", "staged", NULL, &gc->version);
	if (rc == COFFER_OK)
		rc = store_audit_append(s, &gc->ev, NULL);
	return rc;
}

#define GROUP_THREADS 16
#define GROUP_CHANGES 15
#define GROUP_TOTAL (GROUP_THREADS * GROUP_CHANGES)

struct gwriter {
	int id;
	const char *app_id;
	struct store_group *g;
	enum coffer_err rc;
	int step;
	char names[GROUP_CHANGES][32];
	uint64_t versions[GROUP_CHANGES];
};

static void *gwriter_thread(void *arg)
{
	struct gwriter *w = arg;
	struct store *s = NULL;
	char ct[64];
	w->rc = open_keyed(db.url, &s);
	if (w->rc == COFFER_OK)
		store_group_attach(s, w->g);
	for (w->step = 0; w->rc == COFFER_OK && w->step < GROUP_CHANGES; w->step++) {
		snprintf(w->names[w->step], sizeof(w->names[w->step]), "G%02d_%02d", w->id, w->step);
		snprintf(ct, sizeof(ct), "ct-%02d-%02d", w->id, w->step);
		struct gchange gc = { .app_id = w->app_id, .c = set(w->names[w->step], ct, "digest"),
				      .ev = { .actor = "writer", .action = "secrets.set", .detail = w->names[w->step] } };
		w->rc = store_group_run(s, gchange_run, &gc);
		w->versions[w->step] = gc.version;
	}
	store_close(s);
	return NULL;
}

/*
 * 16 writers, each with its own connection, one group: each gets its own
 * result (the version that holds its name), the versions are 1..N with no
 * gap, each version's audit event is chained.
 */
static void test_group_concurrent(void **state)
{
	struct store *s = *state;
	struct store_org org;
	struct store_app app;
	struct store_group *g = NULL;
	struct store_group_stats st;
	static struct gwriter w[GROUP_THREADS];
	static unsigned char seen[GROUP_TOTAL + 1];
	pthread_t t[GROUP_THREADS];
	uint64_t broken = 0;

	make_app(s, "acme", "web", &org, &app);
	assert_int_equal(store_group_new(&g), COFFER_OK);
	memset(seen, 0, sizeof(seen));
	for (int i = 0; i < GROUP_THREADS; i++) {
		w[i] = (struct gwriter){ .id = i, .app_id = app.id, .g = g };
		assert_int_equal(pthread_create(&t[i], NULL, gwriter_thread, &w[i]), 0);
	}
	for (int i = 0; i < GROUP_THREADS; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < GROUP_THREADS; i++) {
		if (w[i].rc != COFFER_OK)
			fail_msg("writer %d failed at change %d: %s", i, w[i].step, coffer_err_name(w[i].rc));
		for (int j = 0; j < GROUP_CHANGES; j++) {
			struct store_secret_list l = { 0 };
			uint64_t v = w[i].versions[j];
			assert_true(v >= 1 && v <= GROUP_TOTAL);
			assert_int_equal(seen[v], 0);
			seen[v] = 1;
			/* the version the writer was told is the one its change made: the name is new there */
			assert_int_equal(store_secrets_get(s, app.id, v, &l), COFFER_OK);
			assert_int_equal(l.n, v);
			int found = 0;
			for (size_t k = 0; k < l.n; k++)
				found |= strcmp(l.items[k].name, w[i].names[j]) == 0;
			assert_true(found);
			store_secret_list_release(&l);
			if (v > 1) {
				assert_int_equal(store_secrets_get(s, app.id, v - 1, &l), COFFER_OK);
				for (size_t k = 0; k < l.n; k++)
					assert_string_not_equal(l.items[k].name, w[i].names[j]);
				store_secret_list_release(&l);
			}
		}
	}
	assert_int_equal(raw("SELECT count(*) FROM secret_versions"), GROUP_TOTAL);
	assert_int_equal(raw("SELECT max(version) FROM secret_versions"), GROUP_TOTAL);
	assert_int_equal(raw("SELECT count(*) FROM audit_events"), GROUP_TOTAL);
	assert_int_equal(store_audit_verify(s, &broken), COFFER_OK);
	store_group_stats(g, &st);
	assert_int_equal(st.changes, GROUP_TOTAL);
	assert_int_equal(st.queued, 0);
	print_message("group: %llu changes in %llu commits\n", (unsigned long long)st.changes,
		      (unsigned long long)st.commits);
	/* (how many commits depends on timing: that a batch holds several is test_group_fails_alone's, behind a gate) */
	store_group_free(g);
}

#define FAIL_WRITERS 6 /* behind the gate: 5 good changes and one that fails */

struct fwriter {
	struct store *s;
	struct gchange gc;
	enum coffer_err rc;
};

static void *fwriter_thread(void *arg)
{
	struct fwriter *f = arg;
	f->rc = store_group_run(f->s, gchange_run, &f->gc);
	return NULL;
}

/*
 * One batch of six changes, one of which fails inside the database (a
 * value id that exists: the statement fails, and PostgreSQL aborts the
 * transaction up to the savepoint): it fails alone, with nothing of it
 * stored; the five others are committed, in one commit, with contiguous
 * versions and a chain that verifies.
 */
static void test_group_fails_alone(void **state)
{
	struct store *s = *state;
	struct store_org org;
	struct store_app app;
	struct store_group *g = NULL;
	struct store_group_stats st;
	struct store_secret_list l = { 0 };
	static struct fwriter f[FAIL_WRITERS + 1];
	static char names[FAIL_WRITERS + 1][16];
	pthread_t t[FAIL_WRITERS + 1];
	struct gate gate;
	uint64_t v0 = 0, broken = 0;
	int failing = 3;

	make_app(s, "acme", "web", &org, &app);
	struct store_secret_change first = set("FIRST", "ct-first", "digest");
	assert_int_equal(store_secrets_put(s, app.id, &first, 1, "t", "staged", NULL, &v0), COFFER_OK);
	assert_int_equal(store_secrets_get(s, app.id, 0, &l), COFFER_OK);
	assert_int_equal(l.n, 1);
	static char taken[STORE_ID_SIZE];
	memcpy(taken, l.items[0].value_id, sizeof(taken));
	store_secret_list_release(&l);

	assert_int_equal(store_group_new(&g), COFFER_OK);
	gate = (struct gate){ g, FAIL_WRITERS, 0 };
	for (int i = 0; i <= FAIL_WRITERS; i++) {
		snprintf(names[i], sizeof(names[i]), "N%d", i);
		assert_int_equal(open_keyed(db.url, &f[i].s), COFFER_OK);
		store_group_attach(f[i].s, g);
		f[i].gc = (struct gchange){ .app_id = app.id, .c = set(names[i], "ct", "digest"),
					    .ev = { .actor = "t", .action = "secrets.set", .detail = names[i] } };
		if (i == 0)
			f[i].gc.gate = &gate; /* the leader of the first batch, alone in it */
		if (i == failing)
			f[i].gc.c.value_id = taken;
	}
	assert_int_equal(pthread_create(&t[0], NULL, fwriter_thread, &f[0]), 0);
	/* the others queue once the gate's batch runs */
	for (int k = 0; k < 60000 && !__atomic_load_n(&gate.entered, __ATOMIC_SEQ_CST); k++)
		usleep(1000);
	for (int i = 1; i <= FAIL_WRITERS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, fwriter_thread, &f[i]), 0);
	for (int i = 0; i <= FAIL_WRITERS; i++)
		pthread_join(t[i], NULL);

	for (int i = 0; i <= FAIL_WRITERS; i++) {
		if (i == failing) {
			assert_int_not_equal(f[i].rc, COFFER_OK);
			continue;
		}
		if (f[i].rc != COFFER_OK)
			fail_msg("change %d failed: %s", i, coffer_err_name(f[i].rc));
	}
	/* the gate's batch, then one batch of all six */
	store_group_stats(g, &st);
	assert_int_equal(st.changes, FAIL_WRITERS + 1);
	assert_int_equal(st.commits, 2);
	/* versions 2..7 for the six good changes (1 is FIRST), none for the failed one */
	assert_int_equal(raw("SELECT count(*) FROM secret_versions"), FAIL_WRITERS + 1);
	assert_int_equal(raw("SELECT max(version) FROM secret_versions"), FAIL_WRITERS + 1);
	assert_int_equal(raw("SELECT count(*) FROM secret_values WHERE name = 'N3'"), 0);
	assert_int_equal(raw("SELECT count(*) FROM audit_events WHERE detail = 'N3'"), 0);
	assert_int_equal(raw("SELECT count(*) FROM audit_events"), FAIL_WRITERS);
	assert_int_equal(store_audit_verify(s, &broken), COFFER_OK);
	assert_int_equal(store_secrets_get(s, app.id, 0, &l), COFFER_OK);
	assert_int_equal(l.version, FAIL_WRITERS + 1);
	assert_int_equal(l.n, FAIL_WRITERS + 1); /* FIRST and the six good names */
	store_secret_list_release(&l);
	for (int i = 0; i <= FAIL_WRITERS; i++)
		store_close(f[i].s);
	store_group_free(g);
}

#define NONCE_WRITERS 5 /* behind the gate: four nonces, one of them twice */

struct nwriter {
	struct store *s;
	const char *host, *nonce;
	enum coffer_err rc;
};

static void *nwriter_thread(void *arg)
{
	struct nwriter *w = arg;
	w->rc = store_host_nonce_use(w->s, w->host, w->nonce, 1100, 1000);
	return NULL;
}

/*
 * Host nonces are changes of the group: signed requests in flight together
 * share one commit (the gate's batch, then one batch of the five), a nonce
 * used twice in one batch is taken by one and refused to the other (the
 * second sees the first's row in the transaction), and a replay on another
 * connection, outside any group, is refused too.
 */
static void test_group_nonces(void **state)
{
	struct store *s = *state;
	struct store_org org;
	struct store_app app;
	struct store_group *g = NULL;
	struct store_group_stats st;
	static struct nwriter w[NONCE_WRITERS];
	static const char *const nonces[NONCE_WRITERS] = { "n0", "n1", "n2", "n1", "n3" };
	struct fwriter lead = { 0 };
	pthread_t t[NONCE_WRITERS + 1];
	struct gate gate;
	int ok = 0, replays = 0;

	make_app(s, "acme", "web", &org, &app);
	assert_int_equal(store_group_new(&g), COFFER_OK);
	gate = (struct gate){ g, NONCE_WRITERS, 0 };
	assert_int_equal(open_keyed(db.url, &lead.s), COFFER_OK);
	store_group_attach(lead.s, g);
	lead.gc = (struct gchange){ .app_id = app.id, .c = set("LEAD", "ct", "digest"), .gate = &gate,
				    .ev = { .actor = "t", .action = "secrets.set", .detail = "LEAD" } };
	for (int i = 0; i < NONCE_WRITERS; i++) {
		w[i] = (struct nwriter){ .host = "h1", .nonce = nonces[i] };
		assert_int_equal(open_keyed(db.url, &w[i].s), COFFER_OK);
		store_group_attach(w[i].s, g);
	}
	assert_int_equal(pthread_create(&t[0], NULL, fwriter_thread, &lead), 0);
	for (int k = 0; k < 60000 && !__atomic_load_n(&gate.entered, __ATOMIC_SEQ_CST); k++)
		usleep(1000);
	for (int i = 0; i < NONCE_WRITERS; i++)
		assert_int_equal(pthread_create(&t[i + 1], NULL, nwriter_thread, &w[i]), 0);
	for (int i = 0; i <= NONCE_WRITERS; i++)
		pthread_join(t[i], NULL);

	assert_int_equal(lead.rc, COFFER_OK);
	for (int i = 0; i < NONCE_WRITERS; i++) {
		if (w[i].rc == COFFER_OK)
			ok++;
		else if (w[i].rc == COFFER_ERR_CONFLICT && strcmp(w[i].nonce, "n1") == 0)
			replays++;
		else
			fail_msg("nonce %d (%s): %s", i, w[i].nonce, coffer_err_name(w[i].rc));
	}
	assert_int_equal(ok, NONCE_WRITERS - 1);
	assert_int_equal(replays, 1);
	store_group_stats(g, &st);
	assert_int_equal(st.changes, NONCE_WRITERS + 1);
	assert_int_equal(st.commits, 2); /* the gate's, then the five nonces in one */
	assert_int_equal(raw("SELECT count(*) FROM host_nonces"), NONCE_WRITERS - 1);
	/* committed: another connection, no group, refuses each again */
	for (int i = 0; i < NONCE_WRITERS; i++)
		assert_int_equal(store_host_nonce_use(s, "h1", nonces[i], 1100, 1000), COFFER_ERR_CONFLICT);
	for (int i = 0; i < NONCE_WRITERS; i++)
		store_close(w[i].s);
	store_close(lead.s);
	store_group_free(g);
}

/* ---- the process's write lock (SQLite) and its release on every path ---- */

struct waiter {
	const char *app_id;
	enum coffer_err rc;
	int done;
	uint64_t version;
};

static void *waiter_thread(void *arg)
{
	struct waiter *w = arg;
	struct store *s = NULL;
	struct store_secret_change c = set("WAITED", "ct-w", "digest");
	w->rc = open_keyed(db.url, &s);
	if (w->rc == COFFER_OK)
		w->rc = store_secrets_put(s, w->app_id, &c, 1, "waiter", "staged", NULL, &w->version);
	store_close(s);
	__atomic_store_n(&w->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/*
 * After each failing or finished write on connection a, a write on connection
 * b of the same thread must go through at once: a lock that a path kept would
 * make it wait SQLITE_BUSY_MS and fail with COFFER_ERR_UNAVAILABLE.
 */
static void test_write_lock_released(void **state)
{
	struct store *a = *state, *b = open_store();
	struct store_org org, other;
	struct store_app web;
	struct store_machine m;
	struct store_secret_list l = { 0 };
	struct store_secret_change two[] = { set("A", "ct-a", "d"), set("B", "ct-b", "d") };
	const struct store_secret_limits one = { .max_count = 1 };
	const char *none = "000000000000000000000000";
	struct waiter w;
	pthread_t t;
	uint64_t v;

	make_app(a, "acme", "web", &org, &web);
	/* an autocommit write that fails */
	assert_int_equal(store_org_create(a, "acme", &other), COFFER_ERR_CONFLICT);
	assert_int_equal(store_org_create(b, "o1", &other), COFFER_OK);
	/* a function's own transaction, failing before and after its first write */
	assert_int_equal(store_secrets_put(a, none, two, 1, "x", "staged", NULL, &v), COFFER_ERR_NOT_FOUND);
	assert_int_equal(store_org_create(b, "o2", &other), COFFER_OK);
	assert_int_equal(store_secrets_put(a, web.id, two, 2, "x", "staged", &one, &v), COFFER_ERR_TOO_LARGE);
	assert_int_equal(store_org_create(b, "o3", &other), COFFER_OK);
	/* a function's own transaction that commits */
	assert_int_equal(store_secrets_put(a, web.id, two, 1, "x", "staged", NULL, &v), COFFER_OK);
	assert_int_equal(store_org_create(b, "o4", &other), COFFER_OK);
	/* the caller's transaction: given up, failed inside, committed */
	assert_int_equal(store_tx_begin(a), COFFER_OK);
	assert_int_equal(store_machine_create(a, web.id, "host-1", 0, &m), COFFER_OK);
	assert_int_equal(store_tx_end(a, COFFER_ERR_CONFLICT), COFFER_ERR_CONFLICT);
	assert_int_equal(store_org_create(b, "o5", &other), COFFER_OK);
	assert_int_equal(store_tx_begin(a), COFFER_OK);
	assert_int_equal(store_org_create(a, "acme", &other), COFFER_ERR_CONFLICT);
	assert_int_equal(store_tx_end(a, COFFER_OK), COFFER_ERR_CONFLICT);
	assert_int_equal(store_org_create(b, "o6", &other), COFFER_OK);
	assert_int_equal(store_tx_begin(a), COFFER_OK);
	assert_int_equal(store_machine_create(a, web.id, "host-1", 0, &m), COFFER_OK);
	assert_int_equal(store_tx_end(a, COFFER_OK), COFFER_OK);
	assert_int_equal(store_org_create(b, "o7", &other), COFFER_OK);
	/* reads take no lock */
	assert_int_equal(store_tx_begin(a), COFFER_OK);
	assert_int_equal(store_app_lock(a, web.id), COFFER_OK);
	assert_int_equal(store_secrets_get(b, web.id, 0, &l), COFFER_OK);
	assert_int_equal(l.version, v);
	store_secret_list_release(&l);
	/* a writer of another thread waits for the transaction, then goes through */
	w = (struct waiter){ .app_id = web.id };
	assert_int_equal(pthread_create(&t, NULL, waiter_thread, &w), 0);
	usleep(HOLD_US);
	assert_int_equal(__atomic_load_n(&w.done, __ATOMIC_SEQ_CST), 0);
	assert_int_equal(store_tx_end(a, COFFER_OK), COFFER_OK);
	pthread_join(t, NULL);
	assert_int_equal(w.rc, COFFER_OK);
	assert_int_equal(w.version, v + 1);
	assert_int_equal(raw("SELECT count(*) FROM orgs"), 8);
	store_close(b);
}

/* The store checkpoints the WAL itself (SQLite's automatic checkpoint is off): it stays bounded. */
static void test_sqlite_wal_checkpointed(void **state)
{
	struct store *s = *state;
	struct store_org org;
	struct store_app web;
	struct stat st;
	char wal[sizeof(db.path) + 8], ct[32];
	uint64_t v;

	if (use_pg)
		skip();
	make_app(s, "acme", "web", &org, &web);
	for (int i = 0; i < CKPT_PUTS; i++) {
		snprintf(ct, sizeof(ct), "ct-%d", i);
		struct store_secret_change c = set("S", ct, "digest");
		assert_int_equal(store_secrets_put(s, web.id, &c, 1, "x", "staged", NULL, &v), COFFER_OK);
	}
	assert_int_equal(v, CKPT_PUTS);
	snprintf(wal, sizeof(wal), "%s-wal", db.path);
	assert_int_equal(stat(wal, &st), 0);
	assert_true(st.st_size > 0);
	assert_true(st.st_size <= (off_t)CKPT_WAL_MAX_FRAMES * SQLITE_FRAME_BYTES);
	/* and what was checkpointed reads back */
	assert_int_equal(raw("SELECT max(version) FROM secret_versions"), CKPT_PUTS);
}

int main(int argc, char **argv)
{
	const char *ci = getenv("CI");
	if (argc != 2 || (strcmp(argv[1], "sqlite") != 0 && strcmp(argv[1], "pg") != 0)) {
		fprintf(stderr, "usage: test_store sqlite|pg\n");
		return 2;
	}
	use_pg = strcmp(argv[1], "pg") == 0;
	if (use_pg) {
		pg_base_url = getenv("COFFER_TEST_PG_URL");
		if (!pg_base_url || !*pg_base_url) {
			if (ci && *ci) {
				fprintf(stderr, "store-pg: COFFER_TEST_PG_URL is not set, and CI needs this suite\n");
				return 1;
			}
			printf("store-pg: skipped: COFFER_TEST_PG_URL is not set (no PostgreSQL server)\n");
			return 77;
		}
	}
	if (sodium_init() < 0)
		return 1;
	log_set_level(LOG_ERROR);
	if (getenv("COFFER_TEST_FILTER")) /* one test or a few while working on them, e.g. "test_group_*" */
		cmocka_set_test_filter(getenv("COFFER_TEST_FILTER"));

	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_migrations_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_schema_newer_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_row_auth_tokens, setup, teardown),
		cmocka_unit_test_setup_teardown(test_row_auth_trigger, setup, teardown),
		cmocka_unit_test_setup_teardown(test_row_auth_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_row_auth_run_rows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_concurrent, setup_fresh, teardown),
		cmocka_unit_test_setup_teardown(test_open_bad_urls, setup_fresh, teardown),
		cmocka_unit_test_setup_teardown(test_sqlite_file_private, setup, teardown),
		cmocka_unit_test_setup_teardown(test_orgs_tokens, setup, teardown),
		cmocka_unit_test_setup_teardown(test_apps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_row_auth_apps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_app_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_secrets_versions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_secrets_all_or_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_secrets_head_and_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_writers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migration_2_upgrade, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migration_3_upgrade, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hosts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_nonces, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_nonces, setup, teardown),
		cmocka_unit_test_setup_teardown(test_boot_tokens_spent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_join_tokens, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deployers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_signatures, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migration_10_upgrade, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migration_11_upgrade, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kms_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_machines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_machine_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_machine_load, setup, teardown),
		cmocka_unit_test_setup_teardown(test_caller_transaction, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migration_4_upgrade, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migration_5_upgrade, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migration_7_upgrade, setup, teardown),
		cmocka_unit_test_setup_teardown(test_secrets_manifest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_secrets_manifest_signed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_leases, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lease_concurrent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lease_fence_blocks_taker, setup, teardown),
		cmocka_unit_test_setup_teardown(test_releases, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release_concurrent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_chain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_delete_detected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_rehash_detected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_verify_from_anchor, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_concurrent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_concurrent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_fails_alone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_lock_released, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sqlite_wal_checkpointed, setup, teardown),
	};
	return cmocka_run_group_tests_name(use_pg ? "store-pg" : "store-sqlite", tests, NULL, NULL);
}
