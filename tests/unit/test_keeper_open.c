/*
 * test_keeper_open.c — the keeper's checks at open added by issue 12
 * (docs/CRYPTO.md "Opening for a host"), through keeper_open over a SQLite
 * store, with the store written as a compromised api could write it (the
 * rows key, the app's public key, signature rows):
 *   - the release's statement and the version's manifest must each be
 *     signed by a deployer in the keeper's registry (MAC, cert), live (not
 *     revoked in the row nor in the keeper's own file), covering the app;
 *   - every opened value's digest is the manifest's, has no NUL and is at
 *     most 64 KiB;
 *   - refusals are audited with the check, and every open names the
 *     deployers it relied on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "boottoken.h"
#include "buf.h"
#include "delivery.h"
#include "deployer.h"
#include "digest.h"
#include "fs.h"
#include "hpke.h"
#include "jws.h"
#include "keeper.h"
#include "kms.h"
#include "log.h"
#include "open_signer.h"
#include "store.h"
#include "store_int.h"
#include "vault.h"

#define PATH_SIZE 512
#define ITEMS_MAX 10 /* per put_version */
#define CONFIG "{\"cmd\":[\"web\"],\"count\":1,\"env\":{},\"grace_ms\":30000}"
#define CONFIG_SWAPPED "{\"cmd\":[\"sh\",\"-c\",\"env\"],\"count\":1,\"env\":{},\"grace_ms\":30000}"
#define VALUE_A "pw-a-5c1d77e0"
#define VALUE_B "pw-b-0e9f3a21"
#define REQUEST_ID "0123456789abcdef0123456789abcdef"
#define WHY_STATEMENT "release not signed by a live deployer of this app"
#define WHY_MANIFEST "secrets manifest not signed by a live deployer of this app"
#define WHY_SECRET "secret failed verification"
#define WHY_APP_ORG "app's org binding failed verification"

static struct {
	char dir[PATH_SIZE];
	struct store *s;
	struct keeper_keys keys;
	struct secret *boot_sk; /* the api's boot-token key */
	struct store_org org, other_org;
	struct store_host host;
	struct secret *host_seal_sk;
	struct test_deployer admin; /* the org's, for every app */
	int log_fd;
	int64_t last_open_ns;     /* how long the last keeper_open took */
	int64_t last_open_cpu_ns; /* and the CPU time of this thread it took (a loaded machine inflates the other) */
} fx;

static int64_t clock_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* One app with a key, a secrets version (A, B), release 1 of CONFIG at that version, a machine on the host. */
struct world {
	struct store_app app;
	unsigned char app_pk[HPKE_PK_LEN];
	uint64_t version;
	struct store_machine machine;
};

struct item {
	const char *name;
	const char *value; /* sealed */
	size_t len;
	const char *digest_of; /* the digest stored is of this value (NULL: of value) */
	size_t digest_len;
};

/* A new secrets version of the app: the head with these items set (sealed with key version 1). */
static uint64_t put_version(const struct world *w, const struct item *items, size_t n)
{
	struct store_secret_change ch[ITEMS_MAX];
	struct buf ct[ITEMS_MAX];
	char ids[ITEMS_MAX][STORE_ID_SIZE], digests[ITEMS_MAX][DIGEST_HEX_LEN + 1];
	uint64_t version = 0;
	assert_true(n <= ITEMS_MAX);
	for (size_t i = 0; i < n; i++) {
		struct secret *v = NULL;
		buf_init(&ct[i], (size_t)2 << 20);
		store_new_id(ids[i]);
		assert_int_equal(secret_from(items[i].value, items[i].len, &v), COFFER_OK);
		assert_int_equal(vault_seal_value(w->app_pk, w->app.id, items[i].name, 1, ids[i], v, &ct[i]), COFFER_OK);
		secret_free(v);
		if (items[i].digest_of)
			test_digest(&fx.keys, w->app.id, items[i].digest_of, items[i].digest_len, digests[i]);
		else
			test_digest(&fx.keys, w->app.id, items[i].value, items[i].len, digests[i]);
		ch[i] = (struct store_secret_change){ .name = items[i].name,
						      .ciphertext = (const unsigned char *)ct[i].ptr,
						      .ciphertext_len = ct[i].len,
						      .digest = digests[i],
						      .key_version = 1,
						      .value_id = ids[i] };
	}
	assert_int_equal(store_secrets_put(fx.s, w->app.id, ch, n, "test", "staged", NULL, &version), COFFER_OK);
	for (size_t i = 0; i < n; i++)
		buf_release(&ct[i]);
	return version;
}

static void world_new(struct world *w, int sign)
{
	static unsigned seq;
	char name[64];
	struct keeper_app_key made;
	uint64_t release = 0;
	const struct item items[] = { { "A", VALUE_A, strlen(VALUE_A), NULL, 0 },
				      { "B", VALUE_B, strlen(VALUE_B), NULL, 0 } };

	memset(w, 0, sizeof(*w));
	assert_true(snprintf(name, sizeof(name), "app-%u", ++seq) < (int)sizeof(name));
	assert_int_equal(store_app_create(fx.s, fx.org.id, name, 0, &w->app), COFFER_OK);
	assert_int_equal(keeper_app_key_create(&fx.keys, fx.s, w->app.id, &made), COFFER_OK);
	memcpy(w->app_pk, made.public_key, HPKE_PK_LEN);
	w->version = put_version(w, items, 2);
	assert_int_equal(store_release_create(fx.s, w->app.id, CONFIG, w->version, 0, 0, "test", &release), COFFER_OK);
	assert_int_equal(release, 1);
	assert_int_equal(store_machine_create(fx.s, w->app.id, fx.host.id, 1, &w->machine), COFFER_OK);
	if (sign)
		test_sign_open(fx.s, &fx.admin, w->app.id, 1, w->version);
}

/* keeper_open of a fresh token for the world's machine, release and version; *why; the delivery's count on success. */
static enum coffer_err open_as(const struct world *w, uint64_t release, uint64_t version, const char **why,
			       size_t *count)
{
	struct boottoken_claims in, minted;
	struct buf tok, sealed;
	int64_t now = (int64_t)time(NULL);

	memset(&in, 0, sizeof(in));
	assert_int_equal(str_copy(in.app, sizeof(in.app), w->app.id), COFFER_OK);
	assert_int_equal(str_copy(in.machine, sizeof(in.machine), w->machine.id), COFFER_OK);
	assert_int_equal(str_copy(in.host, sizeof(in.host), fx.host.id), COFFER_OK);
	in.release = release;
	in.secrets_version = version;
	buf_init(&tok, JWS_TOKEN_MAX);
	buf_init(&sealed, DELIVERY_SEALED_MAX);
	assert_int_equal(boottoken_mint(fx.boot_sk, &in, now, &tok, &minted), COFFER_OK);
	*why = "unset";
	int64_t t0 = clock_ns(CLOCK_MONOTONIC), c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	enum coffer_err rc = keeper_open(&fx.keys, fx.s, &fx.host, tok.ptr, tok.len, now, REQUEST_ID, &sealed, why);
	fx.last_open_cpu_ns = clock_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
	fx.last_open_ns = clock_ns(CLOCK_MONOTONIC) - t0;
	if (rc == COFFER_OK) {
		struct store_release r = { 0 };
		struct delivery_list l;
		char hash[DEPLOYER_HASH_HEX_SIZE];
		assert_int_equal(store_release_get(fx.s, w->app.id, release, &r), COFFER_OK);
		deployer_hash_hex(r.config, strlen(r.config), hash);
		delivery_list_init(&l);
		assert_int_equal(delivery_open(fx.host_seal_sk, fx.host.id, w->machine.id, minted.jti, hash, sealed.ptr,
					       sealed.len, &l),
				 COFFER_OK);
		if (count)
			*count = l.n;
		delivery_list_release(&l);
		store_release_clear(&r);
	} else {
		assert_int_equal(sealed.len, 0);
	}
	buf_release(&sealed);
	buf_release(&tok);
	return rc;
}

/* The last audit event is the world's open with this outcome, and its detail holds every string of has. */
static void assert_last_event(const struct world *w, const char *outcome, const char *const has[])
{
	struct store_audit_list l = { 0 };
	assert_int_equal(store_audit_list(fx.s, NULL, &l), COFFER_OK);
	assert_true(l.n > 0);
	const struct store_audit_event *ev = &l.items[l.n - 1].ev;
	assert_string_equal(ev->action, KEEPER_OPEN_ACTION);
	assert_string_equal(ev->app, w->app.name);
	assert_string_equal(ev->outcome, outcome);
	for (size_t i = 0; has && has[i]; i++)
		if (!strstr(ev->detail, has[i]))
			fail_msg("'%s' not in the detail %s", has[i], ev->detail);
	assert_null(strstr(ev->detail, VALUE_A));
	assert_null(strstr(ev->detail, VALUE_B));
	store_audit_list_release(&l);
}

static void expect_refused(const struct world *w, uint64_t release, uint64_t version, enum coffer_err code,
			   const char *why_want, const char *const has[])
{
	const char *why = NULL;
	char outcome[256];
	assert_int_equal(open_as(w, release, version, &why, NULL), code);
	assert_non_null(why);
	assert_string_equal(why, why_want);
	assert_true(snprintf(outcome, sizeof(outcome), "refused: %s", why_want) < (int)sizeof(outcome));
	assert_last_event(w, outcome, has);
}

static void quoted(char *out, size_t size, const char *key, const char *value)
{
	assert_true(snprintf(out, size, "\"%s\":\"%s\"", key, value) < (int)size);
}

/* ---- signatures ---- */

static void test_signed_opens_and_names_deployers(void **state)
{
	(void)state;
	struct world w;
	const char *why = NULL;
	size_t n = 0;
	char dep[128], mdep[128];

	world_new(&w, 1);
	assert_int_equal(open_as(&w, 1, w.version, &why, &n), COFFER_OK);
	assert_null(why);
	assert_int_equal(n, 2);
	quoted(dep, sizeof(dep), "deployer", fx.admin.id);
	quoted(mdep, sizeof(mdep), "manifest_deployer", fx.admin.id);
	const char *const has[] = { dep, mdep, "\"names\":[\"A\",\"B\"]", NULL };
	assert_last_event(&w, "ok", has);

	/* a deployer limited to this very app signs as well; a second signer does not matter */
	struct test_deployer mine;
	test_deployer_make(&fx.keys, fx.s, fx.org.id, w.app.id, DEPLOYER_ROLE_DEPLOY, &mine);
	struct world v;
	world_new(&v, 0);
	struct test_deployer scoped;
	test_deployer_make(&fx.keys, fx.s, fx.org.id, v.app.id, DEPLOYER_ROLE_DEPLOY, &scoped);
	test_sign_open(fx.s, &scoped, v.app.id, 1, v.version);
	assert_int_equal(open_as(&v, 1, v.version, &why, &n), COFFER_OK);
	quoted(dep, sizeof(dep), "deployer", scoped.id);
	const char *const has2[] = { dep, NULL };
	assert_last_event(&v, "ok", has2);
	test_deployer_free(&scoped);
	test_deployer_free(&mine);
}

static void test_version_zero_needs_only_the_statement(void **state)
{
	(void)state;
	struct world w;
	const char *why = NULL;
	size_t n = 5;

	world_new(&w, 0);
	expect_refused(&w, 1, 0, COFFER_ERR_FORBIDDEN, WHY_STATEMENT, NULL);
	test_sign_open(fx.s, &fx.admin, w.app.id, 1, 0);
	assert_int_equal(open_as(&w, 1, 0, &why, &n), COFFER_OK);
	assert_int_equal(n, 0);
	const char *const has[] = { "\"manifest_deployer\":null", NULL };
	assert_last_event(&w, "ok", has);
}

static void test_unsigned_refused(void **state)
{
	(void)state;
	struct world w;
	char config_hash[DEPLOYER_HASH_HEX_SIZE];

	/* nothing signed: refused before any value is opened */
	world_new(&w, 0);
	deployer_hash_hex(CONFIG, strlen(CONFIG), config_hash);
	const char *const has[] = { "\"check\":\"statement_signature\"", "\"deployer\":null", config_hash, NULL };
	expect_refused(&w, 1, w.version, COFFER_ERR_FORBIDDEN, WHY_STATEMENT, has);

	/* the statement signed, the manifest not */
	struct store_release r = { 0 };
	struct store_secret_list l = { 0 };
	char *text = NULL, dep[128];
	size_t len = 0;
	assert_int_equal(store_release_get(fx.s, w.app.id, 1, &r), COFFER_OK);
	assert_int_equal(store_secrets_get(fx.s, w.app.id, w.version, &l), COFFER_OK);
	assert_int_equal(deployer_release_text(w.app.id, r.config, strlen(r.config), w.version, l.manifest_text,
					       strlen(l.manifest_text), &text, &len),
			 COFFER_OK);
	test_sign_text(fx.s, &fx.admin, w.app.id, text, len);
	quoted(dep, sizeof(dep), "deployer", fx.admin.id);
	const char *const has2[] = { "\"check\":\"manifest_signature\"", dep, "\"manifest_deployer\":null", NULL };
	expect_refused(&w, 1, w.version, COFFER_ERR_FORBIDDEN, WHY_MANIFEST, has2);

	/* the manifest signed, the statement not (another world) */
	struct world v;
	world_new(&v, 0);
	struct store_secret_list m = { 0 };
	assert_int_equal(store_secrets_get(fx.s, v.app.id, v.version, &m), COFFER_OK);
	test_sign_text(fx.s, &fx.admin, v.app.id, m.manifest_text, strlen(m.manifest_text));
	expect_refused(&v, 1, v.version, COFFER_ERR_FORBIDDEN, WHY_STATEMENT, NULL);
	store_secret_list_release(&m);
	free(text);
	store_secret_list_release(&l);
	store_release_clear(&r);
}

/* A signature row naming a key the keeper never enrolled, or a registry row the keeper did not write. */
static void test_foreign_keys_refused(void **state)
{
	(void)state;
	struct world w;
	struct test_deployer ghost;
	char refused[256];

	/* a key never enrolled: its id is in no registry row */
	world_new(&w, 0);
	memset(&ghost, 0, sizeof(ghost));
	assert_int_equal(secret_new(DEPLOYER_SK_LEN, &ghost.sk), COFFER_OK);
	assert_int_equal(crypto_sign_keypair(ghost.pk, secret_bytes(ghost.sk)), 0);
	store_new_id(ghost.id);
	test_sign_open(fx.s, &ghost, w.app.id, 1, w.version);
	assert_true(snprintf(refused, sizeof(refused), "{\"deployer\":\"%s\",\"text\":\"statement\",\"why\":\"unknown deployer\"}",
			     ghost.id) < (int)sizeof(refused));
	const char *const has[] = { refused, NULL };
	expect_refused(&w, 1, w.version, COFFER_ERR_FORBIDDEN, WHY_STATEMENT, has);

	/* a registry row written by the store's writer: no keeper MAC (all zero), a cert by another key */
	struct store_deployer d;
	memset(&d, 0, sizeof(d));
	memcpy(d.id, ghost.id, sizeof(d.id));
	memcpy(d.org_id, fx.org.id, sizeof(d.org_id));
	assert_int_equal(str_copy(d.app_id, sizeof(d.app_id), DEPLOYER_ALL_APPS), COFFER_OK);
	assert_int_equal(str_copy(d.role, sizeof(d.role), DEPLOYER_ROLE_ADMIN), COFFER_OK);
	assert_int_equal(str_copy(d.name, sizeof(d.name), "forged"), COFFER_OK);
	memcpy(d.public_key, ghost.pk, sizeof(d.public_key));
	d.created_at = 1;
	struct deployer_cert c = { d.id, d.org_id, d.app_id, d.role, d.public_key };
	assert_int_equal(deployer_cert_sign(ghost.sk, &c, d.cert), COFFER_OK); /* self-certified */
	assert_int_equal(store_deployer_put(fx.s, &d), COFFER_OK);
	assert_true(snprintf(refused, sizeof(refused), "{\"deployer\":\"%s\",\"text\":\"statement\",\"why\":\"deployer record failed verification\"}",
			     ghost.id) < (int)sizeof(refused));
	const char *const has2[] = { refused, NULL };
	expect_refused(&w, 1, w.version, COFFER_ERR_FORBIDDEN, WHY_STATEMENT, has2);
	test_deployer_free(&ghost);
}

static void test_deployer_of_another_app_or_org_refused(void **state)
{
	(void)state;
	struct world w, other;
	struct test_deployer scoped, foreign;
	char refused[256];

	world_new(&w, 0);
	world_new(&other, 0);
	/* certified for another app of the same org */
	test_deployer_make(&fx.keys, fx.s, fx.org.id, other.app.id, DEPLOYER_ROLE_ADMIN, &scoped);
	test_sign_open(fx.s, &scoped, w.app.id, 1, w.version);
	assert_true(snprintf(refused, sizeof(refused), "{\"deployer\":\"%s\",\"text\":\"statement\",\"why\":\"deployer does not cover this app\"}",
			     scoped.id) < (int)sizeof(refused));
	const char *const has[] = { refused, NULL };
	expect_refused(&w, 1, w.version, COFFER_ERR_FORBIDDEN, WHY_STATEMENT, has);
	/* an admin of every app of another org */
	test_deployer_make(&fx.keys, fx.s, fx.other_org.id, DEPLOYER_ALL_APPS, DEPLOYER_ROLE_ADMIN, &foreign);
	test_sign_open(fx.s, &foreign, w.app.id, 1, w.version);
	expect_refused(&w, 1, w.version, COFFER_ERR_FORBIDDEN, WHY_STATEMENT, has);
	test_deployer_free(&foreign);
	test_deployer_free(&scoped);
}

/* Runs sql on the store's database, as a store writer (no MAC is made). */
static void raw_sql(const char *sql)
{
	char path[PATH_SIZE + 16];
	sqlite3 *db = NULL;
	assert_true(snprintf(path, sizeof(path), "%s/coffer.db", fx.dir) < (int)sizeof(path));
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 10000);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

/* The app row moved to org_id and sealed again with the rows key: what an api holding api.rows.key can do. */
static void move_app(const struct world *w, const char *org_id)
{
	char sql[256];
	struct store_app got;
	const struct store_val key[] = { VT(w->app.id) };
	assert_true(snprintf(sql, sizeof(sql), "UPDATE apps SET org_id = '%s' WHERE id = '%s'", org_id, w->app.id) <
		    (int)sizeof(sql));
	raw_sql(sql);
	assert_int_equal(store_row_seal(fx.s, &store_app_entity, key, 1), COFFER_OK);
	assert_int_equal(store_app_get(fx.s, w->app.id, &got), COFFER_OK); /* its MAC verifies */
	assert_string_equal(got.org_id, org_id);
}

/*
 * The app row moved to another org (with a valid rows MAC) and everything
 * signed by an admin of that org: the keeper's own binding of the app to
 * its org refuses it. A key without the binding is refused too, and bound
 * once, at the first start, from what the store says then (trust on first
 * use); the marker file keeps it from being bound again.
 */
static void test_app_moved_to_another_org(void **state)
{
	(void)state;
	struct world w, plain;
	struct test_deployer foreign;
	char sql[256], marker[PATH_SIZE + 32];
	const char *why = NULL;
	const char *const has[] = { "\"check\":\"app_org\"", NULL };

	world_new(&w, 1);
	assert_int_equal(open_as(&w, 1, w.version, &why, NULL), COFFER_OK);
	test_deployer_make(&fx.keys, fx.s, fx.other_org.id, DEPLOYER_ALL_APPS, DEPLOYER_ROLE_ADMIN, &foreign);
	move_app(&w, fx.other_org.id);
	test_sign_open(fx.s, &foreign, w.app.id, 1, w.version);
	expect_refused(&w, 1, w.version, COFFER_ERR_FORBIDDEN, WHY_APP_ORG, has);
	/* moved back, its own org's signatures open it again */
	move_app(&w, fx.org.id);
	assert_int_equal(open_as(&w, 1, w.version, &why, NULL), COFFER_OK);

	/* a key with no binding (made before it existed, or its binding removed): refused */
	world_new(&plain, 1);
	assert_true(snprintf(sql, sizeof(sql), "UPDATE app_keys SET org_sig = NULL WHERE app_id = '%s'",
			     plain.app.id) < (int)sizeof(sql));
	raw_sql(sql);
	expect_refused(&plain, 1, plain.version, COFFER_ERR_FORBIDDEN, WHY_APP_ORG, has);
	/* the first start binds it to the org its row names then, and leaves its marker */
	assert_true(snprintf(marker, sizeof(marker), "%s/%s", fx.dir, KEEPER_APP_ORGS_FILE) < (int)sizeof(marker));
	assert_int_equal(keeper_app_orgs_bind(&fx.keys, fx.s, marker), COFFER_OK);
	assert_int_equal(access(marker, F_OK), 0);
	assert_int_equal(open_as(&plain, 1, plain.version, &why, NULL), COFFER_OK);
	/* removed again, then moved: a later start binds nothing, so neither its org nor the moved one opens */
	raw_sql(sql);
	move_app(&plain, fx.other_org.id);
	test_sign_open(fx.s, &foreign, plain.app.id, 1, plain.version);
	assert_int_equal(keeper_app_orgs_bind(&fx.keys, fx.s, marker), COFFER_OK);
	expect_refused(&plain, 1, plain.version, COFFER_ERR_FORBIDDEN, WHY_APP_ORG, has);
	assert_int_equal(unlink(marker), 0);
	test_deployer_free(&foreign);
}

/* A release signed for one app, its signature row moved to another app: it verifies over no text of that app. */
static void test_signature_moved_to_another_app(void **state)
{
	(void)state;
	struct world a, b;
	struct store_signature_list sigs = { 0 };
	struct store_release r = { 0 };
	struct store_secret_list l = { 0 };
	char *text = NULL, hash[DEPLOYER_HASH_HEX_SIZE], refused[256];
	size_t len = 0;

	world_new(&a, 1);
	world_new(&b, 0);
	/* A's statement and manifest signatures, copied to B's texts (under B's hashes) */
	assert_int_equal(store_release_get(fx.s, a.app.id, 1, &r), COFFER_OK);
	assert_int_equal(store_secrets_get(fx.s, a.app.id, a.version, &l), COFFER_OK);
	assert_int_equal(deployer_release_text(a.app.id, r.config, strlen(r.config), a.version, l.manifest_text,
					       strlen(l.manifest_text), &text, &len),
			 COFFER_OK);
	deployer_hash_hex(text, len, hash);
	assert_int_equal(store_signature_list(fx.s, a.app.id, hash, &sigs), COFFER_OK);
	assert_int_equal(sigs.n, 1);
	free(text);
	store_secret_list_release(&l);
	assert_int_equal(store_secrets_get(fx.s, b.app.id, b.version, &l), COFFER_OK);
	assert_int_equal(deployer_release_text(b.app.id, r.config, strlen(r.config), b.version, l.manifest_text,
					       strlen(l.manifest_text), &text, &len),
			 COFFER_OK);
	deployer_hash_hex(text, len, hash);
	assert_int_equal(store_signature_add(fx.s, b.app.id, hash, sigs.items[0].signer, sigs.items[0].signature),
			 COFFER_OK);
	assert_true(snprintf(refused, sizeof(refused), "{\"deployer\":\"%s\",\"text\":\"statement\",\"why\":\"signature does not verify\"}",
			     fx.admin.id) < (int)sizeof(refused));
	const char *const has[] = { refused, NULL };
	expect_refused(&b, 1, b.version, COFFER_ERR_FORBIDDEN, WHY_STATEMENT, has);
	/* and A's token is A's: a machine of B with A's app id in its token is refused before */
	free(text);
	store_signature_list_release(&sigs);
	store_secret_list_release(&l);
	store_release_clear(&r);
}

/* An old signed release with a newer secrets version, or the other way round; a config the api swapped. */
static void test_replayed_and_swapped_refused(void **state)
{
	(void)state;
	struct world w;
	const char *why = NULL;
	const struct item newer[] = { { "A", "new-a", 5, NULL, 0 } };
	uint64_t release = 0;

	world_new(&w, 1); /* release 1 signed with version w.version */
	uint64_t v2 = put_version(&w, newer, 1);
	/* release 1's token with the newer version: that statement was never signed (its manifest is) */
	struct store_secret_list l = { 0 };
	assert_int_equal(store_secrets_get(fx.s, w.app.id, v2, &l), COFFER_OK);
	test_sign_text(fx.s, &fx.admin, w.app.id, l.manifest_text, strlen(l.manifest_text));
	store_secret_list_release(&l);
	expect_refused(&w, 1, v2, COFFER_ERR_FORBIDDEN, WHY_STATEMENT, NULL);

	/* release 2 signed with the newer version; its token with the older version is refused */
	assert_int_equal(store_release_update(fx.s, w.app.id, 1, "succeeded", NULL, NULL), COFFER_OK);
	assert_int_equal(store_release_create(fx.s, w.app.id, CONFIG "\n", v2, 1, w.version, "test", &release),
			 COFFER_OK);
	assert_int_equal(release, 2);
	test_sign_open(fx.s, &fx.admin, w.app.id, 2, v2);
	assert_int_equal(open_as(&w, 2, v2, &why, NULL), COFFER_OK);
	expect_refused(&w, 2, w.version, COFFER_ERR_FORBIDDEN, WHY_STATEMENT, NULL);

	/* release 3: the api's own config (another command) with the signed secrets version */
	assert_int_equal(store_release_update(fx.s, w.app.id, 2, "succeeded", NULL, NULL), COFFER_OK);
	assert_int_equal(store_release_create(fx.s, w.app.id, CONFIG_SWAPPED, v2, 2, v2, "test", &release), COFFER_OK);
	assert_int_equal(release, 3);
	expect_refused(&w, 3, v2, COFFER_ERR_FORBIDDEN, WHY_STATEMENT, NULL);

	/* rollback: a new release with release 1's config and version relies on release 1's signatures */
	assert_int_equal(store_release_update(fx.s, w.app.id, 3, "failed", NULL, NULL), COFFER_OK);
	assert_int_equal(store_release_create(fx.s, w.app.id, CONFIG, w.version, 3, v2, "test", &release), COFFER_OK);
	assert_int_equal(open_as(&w, release, w.version, &why, NULL), COFFER_OK);
}

/* Read-once: a token opens once; its second open is refused, audited, and nothing is delivered. */
static void test_token_read_once(void **state)
{
	(void)state;
	struct world w;
	struct boottoken_claims in, minted;
	struct buf tok, sealed;
	const char *why = NULL;
	int64_t now = (int64_t)time(NULL);

	world_new(&w, 1);
	memset(&in, 0, sizeof(in));
	assert_int_equal(str_copy(in.app, sizeof(in.app), w.app.id), COFFER_OK);
	assert_int_equal(str_copy(in.machine, sizeof(in.machine), w.machine.id), COFFER_OK);
	assert_int_equal(str_copy(in.host, sizeof(in.host), fx.host.id), COFFER_OK);
	in.release = 1;
	in.secrets_version = w.version;
	buf_init(&tok, JWS_TOKEN_MAX);
	buf_init(&sealed, DELIVERY_SEALED_MAX);
	assert_int_equal(boottoken_mint(fx.boot_sk, &in, now, &tok, &minted), COFFER_OK);
	assert_int_equal(keeper_open(&fx.keys, fx.s, &fx.host, tok.ptr, tok.len, now, REQUEST_ID, &sealed, &why),
			 COFFER_OK);
	assert_true(sealed.len > 0);
	buf_reset(&sealed);
	assert_int_equal(keeper_open(&fx.keys, fx.s, &fx.host, tok.ptr, tok.len, now, REQUEST_ID, &sealed, &why),
			 COFFER_ERR_UNAUTH);
	assert_string_equal(why, "boot token already used");
	assert_int_equal(sealed.len, 0);
	assert_last_event(&w, "refused: boot token already used", NULL);
	/* another token of the same machine still opens */
	assert_int_equal(open_as(&w, 1, w.version, &why, NULL), COFFER_OK);

	/*
	 * A conflict that is not the token's (what PostgreSQL reports for a
	 * serialisation failure or a deadlock; here a unique key a trigger on
	 * the audit table hits): not "already used", a failure to retry, and
	 * the token is not spent: it opens once the store lets it.
	 */
	raw_sql("CREATE TABLE t_clash (k INTEGER PRIMARY KEY); INSERT INTO t_clash VALUES (1);"
		"CREATE TRIGGER t_clash_audit BEFORE INSERT ON audit_events BEGIN INSERT INTO t_clash VALUES (1); END;");
	assert_int_equal(boottoken_mint(fx.boot_sk, &in, now, &tok, &minted), COFFER_OK);
	buf_reset(&sealed);
	why = NULL;
	assert_int_equal(keeper_open(&fx.keys, fx.s, &fx.host, tok.ptr, tok.len, now, REQUEST_ID, &sealed, &why),
			 COFFER_ERR_UNAVAILABLE);
	assert_null(why);
	assert_int_equal(sealed.len, 0);
	raw_sql("DROP TRIGGER t_clash_audit; DROP TABLE t_clash;");
	assert_int_equal(keeper_open(&fx.keys, fx.s, &fx.host, tok.ptr, tok.len, now, REQUEST_ID, &sealed, &why),
			 COFFER_OK);
	assert_true(sealed.len > 0);
	buf_release(&sealed);
	buf_release(&tok);
}

static void test_revoked_refused(void **state)
{
	(void)state;
	struct world w, v;
	struct test_deployer d, e;
	const char *why = NULL;
	char refused[256], path[PATH_SIZE + 32];

	world_new(&w, 0);
	test_deployer_make(&fx.keys, fx.s, fx.org.id, DEPLOYER_ALL_APPS, DEPLOYER_ROLE_DEPLOY, &d);
	test_sign_open(fx.s, &d, w.app.id, 1, w.version);
	assert_int_equal(open_as(&w, 1, w.version, &why, NULL), COFFER_OK);
	/* revoked: at once, for a release signed before */
	assert_int_equal(keeper_deployer_revoke(&fx.keys, fx.s, d.id, (int64_t)time(NULL) * 1000, &why), COFFER_OK);
	assert_true(snprintf(refused, sizeof(refused), "{\"deployer\":\"%s\",\"text\":\"statement\",\"why\":\"deployer key revoked\"}",
			     d.id) < (int)sizeof(refused));
	const char *const has[] = { refused, NULL };
	expect_refused(&w, 1, w.version, COFFER_ERR_FORBIDDEN, WHY_STATEMENT, has);

	/* revoked in the keeper's own file only (a store writer put the row back as it was before) */
	world_new(&v, 0);
	test_deployer_make(&fx.keys, fx.s, fx.org.id, DEPLOYER_ALL_APPS, DEPLOYER_ROLE_DEPLOY, &e);
	test_sign_open(fx.s, &e, v.app.id, 1, v.version);
	assert_true(snprintf(path, sizeof(path), "%s/%s", fx.dir, KEEPER_DEPLOYERS_REVOKED_FILE) < (int)sizeof(path));
	assert_int_equal(str_copy(fx.keys.deployers_revoked, sizeof(fx.keys.deployers_revoked), path), COFFER_OK);
	assert_int_equal(open_as(&v, 1, v.version, &why, NULL), COFFER_OK);
	char line[STORE_ID_SIZE + 2];
	assert_true(snprintf(line, sizeof(line), "%s\n", e.id) < (int)sizeof(line));
	assert_int_equal(fs_write_atomic(path, line, strlen(line), 0600, 0), COFFER_OK);
	expect_refused(&v, 1, v.version, COFFER_ERR_FORBIDDEN, WHY_STATEMENT, NULL);
	/* the file unreadable: no open (fails closed, not a refusal of the signature) */
	assert_int_equal(chmod(path, 0), 0);
	if (access(path, R_OK) != 0) { /* root reads it anyway */
		assert_int_not_equal(open_as(&v, 1, v.version, &why, NULL), COFFER_OK);
	}
	unlink(path);
	fx.keys.deployers_revoked[0] = '\0';
	test_deployer_free(&e);
	test_deployer_free(&d);
}

/* deployer_verify remembers what verified (deployer.c): a remembered triple never lets another text or key through. */
static void test_verification_cache(void **state)
{
	(void)state;
	struct test_deployer a, b;
	char sig[DEPLOYER_SIG_B64_SIZE];
	const char text[] = "coffer release v1\napp x\n", other[] = "coffer release v1\napp y\n";

	test_deployer_make(&fx.keys, fx.s, fx.org.id, DEPLOYER_ALL_APPS, DEPLOYER_ROLE_DEPLOY, &a);
	test_deployer_make(&fx.keys, fx.s, fx.org.id, DEPLOYER_ALL_APPS, DEPLOYER_ROLE_DEPLOY, &b);
	assert_int_equal(deployer_sign(a.sk, text, strlen(text), sig), COFFER_OK);
	for (int i = 0; i < 3; i++) { /* the first verifies, the others are remembered */
		assert_int_equal(deployer_verify(a.pk, text, strlen(text), sig), COFFER_OK);
		assert_int_equal(deployer_verify(a.pk, other, strlen(other), sig), COFFER_ERR_CRYPTO);
		assert_int_equal(deployer_verify(b.pk, text, strlen(text), sig), COFFER_ERR_CRYPTO);
		assert_int_equal(deployer_verify(a.pk, text, strlen(text) - 1, sig), COFFER_ERR_CRYPTO);
	}
	test_deployer_free(&b);
	test_deployer_free(&a);
}

/* ---- values ---- */

/* A value the api sealed itself under the signed manifest's value row: its digest is not the signed one. */
static void test_value_not_the_signed_one(void **state)
{
	(void)state;
	struct world w;
	const struct item items[] = { { "A", "the-api-s-value", 15, VALUE_A, strlen(VALUE_A) },
				      { "B", VALUE_B, strlen(VALUE_B), NULL, 0 } };

	world_new(&w, 0);
	uint64_t v = put_version(&w, items, 2);
	test_sign_open(fx.s, &fx.admin, w.app.id, 1, v);
	const char *const has[] = { "\"failed\":{\"name\":\"A\",\"check\":\"value_digest\"}", NULL };
	expect_refused(&w, 1, v, COFFER_ERR_CRYPTO, WHY_SECRET, has);
}

static void test_value_limits(void **state)
{
	(void)state;
	struct world w;
	char *big = malloc(DELIVERY_VALUE_MAX + 1);
	assert_non_null(big);
	memset(big, 'x', DELIVERY_VALUE_MAX + 1);

	world_new(&w, 0);
	/* a NUL inside, with its own (matching) digest */
	const struct item nul[] = { { "A", "a\0b", 3, NULL, 0 } };
	uint64_t v = put_version(&w, nul, 1);
	test_sign_open(fx.s, &fx.admin, w.app.id, 1, v);
	const char *const has[] = { "\"failed\":{\"name\":\"A\",\"check\":\"value_nul\"}", NULL };
	expect_refused(&w, 1, v, COFFER_ERR_CRYPTO, WHY_SECRET, has);

	/* one byte over 64 KiB */
	const struct item over[] = { { "A", big, DELIVERY_VALUE_MAX + 1, NULL, 0 } };
	v = put_version(&w, over, 1);
	test_sign_open(fx.s, &fx.admin, w.app.id, 1, v);
	const char *const has2[] = { "\"failed\":{\"name\":\"A\",\"check\":\"value_too_large\"}", NULL };
	expect_refused(&w, 1, v, COFFER_ERR_CRYPTO, WHY_SECRET, has2);

	/* exactly 64 KiB opens */
	const struct item max[] = { { "A", big, DELIVERY_VALUE_MAX, NULL, 0 } };
	v = put_version(&w, max, 1);
	test_sign_open(fx.s, &fx.admin, w.app.id, 1, v);
	const char *why = NULL;
	size_t n = 0;
	assert_int_equal(open_as(&w, 1, v, &why, &n), COFFER_OK);
	assert_int_equal(n, 2); /* A, and B kept from the first version */
	free(big);
}

/* ---- cost ---- */

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/*
 * The cost of an open (keeper_open alone on SQLite, its audit append included),
 * measured only when COFFER_OPEN_BENCH=N is set: N opens of a version of
 * 10 values, after N/10 not counted, with the keeper's revocation file in
 * place; the medians of wall and thread CPU time in microseconds on stdout. With TMPDIR on a
 * tmpfs the store's fsyncs cost nothing, so the open is at its cheapest and
 * the checks' share at its largest. Run it on a tree without the signature
 * checks for the figure beside it.
 */
static void test_open_cost(void **state)
{
	(void)state;
	const char *env = getenv("COFFER_OPEN_BENCH");
	int n = env ? atoi(env) : 0;
	if (n <= 0)
		skip();
	struct world w;
	struct item items[10];
	char names[10][8], values[10][64], path[PATH_SIZE + 32];
	world_new(&w, 0);
	for (int i = 0; i < 10; i++) {
		snprintf(names[i], sizeof(names[i]), "S%d", i);
		snprintf(values[i], sizeof(values[i]), "value-%d-0123456789abcdef0123456789abcdef", i);
		items[i] = (struct item){ names[i], values[i], strlen(values[i]), NULL, 0 };
	}
	uint64_t v = put_version(&w, items, 10);
	test_sign_open(fx.s, &fx.admin, w.app.id, 1, v);
	assert_true(snprintf(path, sizeof(path), "%s/%s", fx.dir, KEEPER_DEPLOYERS_REVOKED_FILE) < (int)sizeof(path));
	assert_int_equal(fs_write_atomic(path, "a0\na1\na2\n", 9, 0600, 0), COFFER_OK);
	assert_int_equal(str_copy(fx.keys.deployers_revoked, sizeof(fx.keys.deployers_revoked), path), COFFER_OK);
	int64_t *t = calloc((size_t)n, sizeof(*t)), *c = calloc((size_t)n, sizeof(*c));
	assert_non_null(t);
	assert_non_null(c);
	for (int i = -(n / 10); i < n; i++) {
		const char *why = NULL;
		assert_int_equal(open_as(&w, 1, v, &why, NULL), COFFER_OK);
		if (i >= 0) { /* keeper_open alone: not the token's minting nor the test's own open */
			t[i] = fx.last_open_ns;
			c[i] = fx.last_open_cpu_ns;
		}
	}
	qsort(t, (size_t)n, sizeof(*t), cmp_i64);
	qsort(c, (size_t)n, sizeof(*c), cmp_i64);
	printf("open_cost opens=%d median_us=%.1f cpu_median_us=%.1f\n", n, (double)t[n / 2] / 1000.0,
	       (double)c[n / 2] / 1000.0);
	free(c);
	free(t);
	fx.keys.deployers_revoked[0] = '\0';
}

/* keeper_kms_run of op with key `name` for the world's app: *out (a fresh buf) and the version used. */
static enum coffer_err kms_op(const struct world *w, const char *op, const char *name, const void *data, size_t len,
			      const void *sig, size_t sig_len, struct buf *out, int *valid, uint64_t *version)
{
	struct keeper_kms_request r = { op, name, data, len, sig, sig_len };
	const char *why = NULL;
	buf_init(out, KMS_ENVELOPE_MAX);
	return keeper_kms_run(&fx.keys, fx.s, w->app.id, &r, out, valid, version, &why);
}

/*
 * A machine's grant to use its app's KMS keys: the checks of an open
 * without a token (signed release, live deployer, its host, not
 * destroyed); and the keys it uses: newest to sign and encrypt, the
 * envelope's version to verify and decrypt, each type only for its ops.
 */
static void test_kms_grant_and_use(void **state)
{
	(void)state;
	struct world w, v;
	struct test_deployer d;
	struct store_kms_key k;
	struct store_host elsewhere = fx.host;
	char app[STORE_ID_SIZE];
	const char *why = NULL;
	struct buf sig1, sig2, out, ct;
	uint64_t version = 0;
	int valid = 0;

	buf_init(&out, KMS_ENVELOPE_MAX);
	/* nothing signed: no grant */
	world_new(&w, 0);
	assert_int_equal(keeper_kms_grant(&fx.keys, fx.s, &fx.host, w.machine.id, app, &why), COFFER_ERR_FORBIDDEN);
	assert_string_equal(why, WHY_STATEMENT);
	/* signed by a live deployer: granted, for the machine's own app; revoked: refused at once */
	test_deployer_make(&fx.keys, fx.s, fx.org.id, DEPLOYER_ALL_APPS, DEPLOYER_ROLE_DEPLOY, &d);
	test_sign_open(fx.s, &d, w.app.id, 1, w.version);
	assert_int_equal(keeper_kms_grant(&fx.keys, fx.s, &fx.host, w.machine.id, app, &why), COFFER_OK);
	assert_string_equal(app, w.app.id);
	assert_int_equal(keeper_deployer_revoke(&fx.keys, fx.s, d.id, (int64_t)time(NULL) * 1000, &why), COFFER_OK);
	assert_int_equal(keeper_kms_grant(&fx.keys, fx.s, &fx.host, w.machine.id, app, &why), COFFER_ERR_FORBIDDEN);
	test_deployer_free(&d);

	world_new(&v, 1);
	assert_int_equal(keeper_kms_grant(&fx.keys, fx.s, &fx.host, v.machine.id, app, &why), COFFER_OK);
	/* another host, an unknown machine */
	store_new_id(elsewhere.id);
	assert_int_equal(keeper_kms_grant(&fx.keys, fx.s, &elsewhere, v.machine.id, app, &why), COFFER_ERR_FORBIDDEN);
	assert_string_equal(why, "machine is not on this host");
	assert_int_equal(keeper_kms_grant(&fx.keys, fx.s, &fx.host, "0123456789abcdef01234567", app, &why),
			 COFFER_ERR_NOT_FOUND);

	/* ed25519: made, signs with the newest version, verifies every version still stored */
	assert_int_equal(keeper_kms_make(&fx.keys, fx.s, v.app.id, "sig", "ed25519", &k), COFFER_OK);
	assert_int_equal(k.version, 1);
	assert_int_equal(k.public_key_len, KMS_PUBLIC_KEY_LEN);
	assert_int_equal(k.wrapped_len, KEYWRAP_OVERHEAD + KMS_KEY_LEN);
	unsigned char pk1[KMS_PUBLIC_KEY_LEN];
	memcpy(pk1, k.public_key, sizeof(pk1));
	assert_int_equal(keeper_kms_make(&fx.keys, fx.s, v.app.id, "sig", "ed25519", &k), COFFER_ERR_CONFLICT);
	assert_int_equal(kms_op(&v, "sign", "sig", "m", 1, NULL, 0, &sig1, &valid, &version), COFFER_OK);
	assert_int_equal(version, 1);
	assert_int_equal(kms_verify_public(pk1, sig1.ptr, sig1.len, "m", 1), COFFER_OK);
	assert_int_equal(keeper_kms_make(&fx.keys, fx.s, v.app.id, "sig", NULL, &k), COFFER_OK); /* rotate */
	assert_int_equal(k.version, 2);
	assert_int_equal(kms_op(&v, "sign", "sig", "m", 1, NULL, 0, &sig2, &valid, &version), COFFER_OK);
	assert_int_equal(version, 2);
	assert_int_equal(kms_verify_public(k.public_key, sig2.ptr, sig2.len, "m", 1), COFFER_OK);
	assert_int_equal(kms_verify_public(pk1, sig2.ptr, sig2.len, "m", 1), COFFER_ERR_CRYPTO);
	buf_release(&out);
	assert_int_equal(kms_op(&v, "verify", "sig", "m", 1, sig1.ptr, sig1.len, &out, &valid, &version), COFFER_OK);
	assert_true(valid);
	assert_int_equal(version, 1);
	buf_release(&out);
	assert_int_equal(kms_op(&v, "verify", "sig", "x", 1, sig1.ptr, sig1.len, &out, &valid, &version), COFFER_OK);
	assert_false(valid);
	buf_release(&out);
	/* an ed25519 key does not encrypt; an unknown key or op is not found */
	assert_int_equal(kms_op(&v, "encrypt", "sig", "m", 1, NULL, 0, &out, &valid, &version), COFFER_ERR_INVALID);
	buf_release(&out);
	assert_int_equal(kms_op(&v, "sign", "nope", "m", 1, NULL, 0, &out, &valid, &version), COFFER_ERR_NOT_FOUND);
	buf_release(&out);
	assert_int_equal(kms_op(&v, "export", "sig", "m", 1, NULL, 0, &out, &valid, &version), COFFER_ERR_NOT_FOUND);
	buf_release(&out);
	/* another app has no key of that name: a key is only ever its own app's */
	assert_int_equal(kms_op(&w, "sign", "sig", "m", 1, NULL, 0, &out, &valid, &version), COFFER_ERR_NOT_FOUND);
	buf_release(&out);

	/* aead: a round trip across a rotation */
	assert_int_equal(keeper_kms_make(&fx.keys, fx.s, v.app.id, "box", "aead", &k), COFFER_OK);
	assert_int_equal(k.public_key_len, 0);
	assert_int_equal(kms_op(&v, "encrypt", "box", "plain", 5, NULL, 0, &ct, &valid, &version), COFFER_OK);
	assert_int_equal(keeper_kms_make(&fx.keys, fx.s, v.app.id, "box", NULL, &k), COFFER_OK);
	assert_int_equal(kms_op(&v, "decrypt", "box", ct.ptr, ct.len, NULL, 0, &out, &valid, &version), COFFER_OK);
	assert_int_equal(version, 1);
	assert_int_equal(out.len, 5);
	assert_memory_equal(out.ptr, "plain", 5);
	buf_release(&out);
	/* a key row edited in the store: refused */
	raw_sql("UPDATE kms_keys SET type = 'hmac-sha256' WHERE name = 'box' AND version = 1");
	assert_int_equal(kms_op(&v, "decrypt", "box", ct.ptr, ct.len, NULL, 0, &out, &valid, &version),
			 COFFER_ERR_TAMPERED);
	buf_release(&out);

	/* destroyed: refused at once */
	assert_int_equal(store_machine_destroy(fx.s, v.machine.id), COFFER_OK);
	assert_int_equal(keeper_kms_grant(&fx.keys, fx.s, &fx.host, v.machine.id, app, &why), COFFER_ERR_CONFLICT);
	assert_string_equal(why, "machine is destroyed");
	buf_release(&ct);
	buf_release(&sig2);
	buf_release(&sig1);
}

/* ---- fixture ---- */

static int setup(void **state)
{
	(void)state;
	struct secret *master = NULL, *seed = NULL;
	unsigned char pk[JWS_PK_LEN];
	char url[PATH_SIZE + 16], path[PATH_SIZE + 16];

	memset(&fx, 0, sizeof(fx));
	const char *tmp = getenv("TMPDIR"); /* the cost run uses a tmpfs: no disk noise in the figure */
	snprintf(fx.dir, sizeof(fx.dir), "%s/coffer-test-keeper-open.XXXXXX", tmp && tmp[0] == '/' ? tmp : "/tmp");
	if (!mkdtemp(fx.dir) || snprintf(path, sizeof(path), "%s/log", fx.dir) >= (int)sizeof(path))
		return -1;
	fx.log_fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (fx.log_fd < 0)
		return -1;
	log_set_fd(fx.log_fd);
	log_set_role("keeper");
	if (secret_new(VAULT_MASTER_LEN, &master))
		return -1;
	randombytes_buf(secret_bytes(master), secret_len(master));
	if (keeper_keys_derive(master, &fx.keys) || vault_api_boot_seed(master, &seed) ||
	    jws_key_from_seed(seed, &fx.boot_sk, pk))
		return -1;
	secret_free(seed);
	secret_free(master);
	if (snprintf(url, sizeof(url), "sqlite:%s/coffer.db", fx.dir) >= (int)sizeof(url) || store_open(url, &fx.s))
		return -1;
	for (int t = 0; t < STORE_TABLE__COUNT; t++)
		if (store_auth_key(fx.s, (enum store_table)t, secret_cbytes(fx.keys.rows)))
			return -1;
	if (store_org_create(fx.s, "org", &fx.org) || store_org_create(fx.s, "other", &fx.other_org))
		return -1;
	unsigned char sign_pk[HPKE_PK_LEN];
	struct secret *sign_sk = NULL;
	if (hpke_generate_keypair(&fx.host_seal_sk, fx.host.seal_pk) || hpke_generate_keypair(&sign_sk, sign_pk))
		return -1;
	secret_free(sign_sk);
	store_new_id(fx.host.id);
	memcpy(fx.host.sign_pk, sign_pk, sizeof(fx.host.sign_pk));
	if (str_copy(fx.host.name, sizeof(fx.host.name), "host-a") ||
	    str_copy(fx.host.state, sizeof(fx.host.state), "ready"))
		return -1;
	fx.host.enrolled_at = 1;
	if (store_host_put(fx.s, &fx.host))
		return -1;
	test_deployer_make(&fx.keys, fx.s, fx.org.id, DEPLOYER_ALL_APPS, DEPLOYER_ROLE_ADMIN, &fx.admin);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[PATH_SIZE + 16];
	store_close(fx.s);
	test_deployer_free(&fx.admin);
	keeper_keys_release(&fx.keys);
	secret_free(fx.boot_sk);
	secret_free(fx.host_seal_sk);
	log_set_fd(2);
	close(fx.log_fd);
	if (snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx.dir) < (int)sizeof(cmd) && system(cmd) != 0)
		return -1;
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_signed_opens_and_names_deployers),
		cmocka_unit_test(test_version_zero_needs_only_the_statement),
		cmocka_unit_test(test_unsigned_refused),
		cmocka_unit_test(test_foreign_keys_refused),
		cmocka_unit_test(test_deployer_of_another_app_or_org_refused),
		cmocka_unit_test(test_signature_moved_to_another_app),
		cmocka_unit_test(test_app_moved_to_another_org),
		cmocka_unit_test(test_replayed_and_swapped_refused),
		cmocka_unit_test(test_token_read_once),
		cmocka_unit_test(test_revoked_refused),
		cmocka_unit_test(test_verification_cache),
		cmocka_unit_test(test_value_not_the_signed_one),
		cmocka_unit_test(test_value_limits),
		cmocka_unit_test(test_kms_grant_and_use),
		cmocka_unit_test(test_open_cost),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, setup, teardown);
}
