/*
 * test_keeper_deployers.c — the keeper's deployer registry
 * (keeper_deployers.c) over a SQLite store, without a server: tokens (an
 * edit, another keeper's, expired, used twice), enrolment (the proof by
 * another key, an unknown org or app), keeper_deployer_live (the row's
 * MAC and cert, each column edited, revocation in the row and in the
 * local file, the row put back as it was before its revocation) and
 * revocation.
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

#include <sodium.h>
#include <sqlite3.h>

#include "deployer.h"
#include "fs.h"
#include "keeper.h"
#include "log.h"

static struct {
	char dir[128];
	char db_url[192];
	struct keeper_keys keys, other_keys;
	struct store *s;
	struct store_org org, org2;
	struct store_app app, app2;
} fx;

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void derive(struct keeper_keys *k)
{
	struct secret *master = NULL;
	assert_int_equal(secret_new(VAULT_MASTER_LEN, &master), COFFER_OK);
	randombytes_buf(secret_bytes(master), VAULT_MASTER_LEN);
	assert_int_equal(keeper_keys_derive(master, k), COFFER_OK);
	secret_free(master);
}

static int setup(void **state)
{
	char log_path[256];
	(void)state;
	memset(&fx, 0, sizeof(fx));
	snprintf(fx.dir, sizeof(fx.dir), "/tmp/coffer-test-kdep.XXXXXX");
	if (!mkdtemp(fx.dir))
		return -1;
	snprintf(fx.db_url, sizeof(fx.db_url), "sqlite:%s/coffer.db", fx.dir);
	snprintf(log_path, sizeof(log_path), "%s/log", fx.dir);
	FILE *f = fopen(log_path, "a");
	if (!f)
		return -1;
	log_set_fd(fileno(f)); /* the file stays open for the program's life */
	derive(&fx.keys);
	derive(&fx.other_keys);
	snprintf(fx.keys.deployers_revoked, sizeof(fx.keys.deployers_revoked), "%s/%s", fx.dir,
		 KEEPER_DEPLOYERS_REVOKED_FILE);
	if (store_open(fx.db_url, &fx.s) || store_auth_key(fx.s, STORE_TABLE_APPS, secret_cbytes(fx.keys.rows)) ||
	    store_org_create(fx.s, "acme", &fx.org) || store_org_create(fx.s, "globex", &fx.org2) ||
	    store_app_create(fx.s, fx.org.id, "web", 0, &fx.app) ||
	    store_app_create(fx.s, fx.org2.id, "other", 0, &fx.app2))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	char cmd[256];
	(void)state;
	store_close(fx.s);
	keeper_keys_release(&fx.keys);
	keeper_keys_release(&fx.other_keys);
	log_set_fd(2);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx.dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* A new key and its enrolment request for token (its proof signed by the key, or by prover when given). */
struct candidate {
	struct secret *sk;
	unsigned char pk[DEPLOYER_PK_LEN];
	char proof[DEPLOYER_SIG_B64_SIZE];
	struct keeper_deployer_enrol_request req;
};

static void candidate_new(struct candidate *c, const struct secret *token, const char *name,
			  const struct secret *prover)
{
	struct secret *text = NULL;
	memset(c, 0, sizeof(*c));
	assert_int_equal(secret_new(DEPLOYER_SK_LEN, &c->sk), COFFER_OK);
	assert_int_equal(crypto_sign_ed25519_keypair(c->pk, secret_bytes(c->sk)), 0);
	assert_int_equal(deployer_enrol_text((const char *)secret_cbytes(token), secret_len(token), name, c->pk, &text),
			 COFFER_OK);
	assert_int_equal(deployer_sign(prover ? prover : c->sk, secret_cbytes(text), secret_len(text), c->proof),
			 COFFER_OK);
	secret_free(text);
	c->req = (struct keeper_deployer_enrol_request){ (const char *)secret_cbytes(token), secret_len(token), name,
							 { 0 }, c->proof };
	memcpy(c->req.public_key, c->pk, sizeof(c->pk));
}

static struct secret *token_for(const struct keeper_keys *k, const char *org, const char *app, const char *role,
				uint64_t ttl_ms)
{
	struct secret *t = NULL;
	assert_int_equal(keeper_deployer_token_make(k, org, app, role, ttl_ms, &t), COFFER_OK);
	return t;
}

static void test_tokens(void **state)
{
	struct keeper_deployer_grant g;
	(void)state;
	struct secret *t = token_for(&fx.keys, fx.org.id, "*", DEPLOYER_ROLE_ADMIN, 60000);
	const char *text = (const char *)secret_cbytes(t);
	size_t n = secret_len(t);

	assert_int_equal(strncmp(text, "cdt_", 4), 0);
	assert_int_equal(keeper_deployer_token_verify(&fx.keys, text, n, now_ms(), &g), COFFER_OK);
	assert_string_equal(g.org_id, fx.org.id);
	assert_string_equal(g.app_id, "*");
	assert_string_equal(g.role, "admin");
	assert_int_equal(strlen(g.token_id), 32);
	assert_true(g.expires_at > now_ms() + 50000 && g.expires_at <= now_ms() + 60000);
	/* another keeper's key; expired; each character edited */
	assert_int_equal(keeper_deployer_token_verify(&fx.other_keys, text, n, now_ms(), &g), COFFER_ERR_CRYPTO);
	assert_int_equal(keeper_deployer_token_verify(&fx.keys, text, n, now_ms() + 61000, &g), COFFER_ERR_UNAUTH);
	char edited[KEEPER_DEPLOYER_TOKEN_MAX + 1];
	for (size_t i = 4; i < n; i++) {
		memcpy(edited, text, n);
		edited[i] = edited[i] == 'A' ? 'B' : 'A';
		assert_int_not_equal(keeper_deployer_token_verify(&fx.keys, edited, n, now_ms(), &g), COFFER_OK);
	}
	memcpy(edited, text, n);
	edited[0] = 'x';
	assert_int_equal(keeper_deployer_token_verify(&fx.keys, edited, n, now_ms(), &g), COFFER_ERR_INVALID);
	assert_int_not_equal(keeper_deployer_token_verify(&fx.keys, text, n - 1, now_ms(), &g), COFFER_OK);
	secret_free(t);

	/* what cannot be a token */
	struct secret *none = NULL;
	assert_int_equal(keeper_deployer_token_make(&fx.keys, fx.org.id, "*", "read", 1000, &none), COFFER_ERR_INVALID);
	assert_int_equal(keeper_deployer_token_make(&fx.keys, "", "*", "admin", 1000, &none), COFFER_ERR_INVALID);
	assert_int_equal(keeper_deployer_token_make(&fx.keys, fx.org.id, "a b", "admin", 1000, &none),
			 COFFER_ERR_INVALID);
	assert_int_equal(keeper_deployer_token_make(&fx.keys, fx.org.id, "*", "admin", 0, &none), COFFER_ERR_INVALID);
	assert_null(none);
}

static void test_enrol_and_live(void **state)
{
	struct candidate c, thief, late;
	struct store_deployer d, got;
	const char *why = NULL;
	(void)state;
	struct secret *t = token_for(&fx.keys, fx.org.id, fx.app.id, DEPLOYER_ROLE_DEPLOY, 60000);

	/* a proof signed by another key than the one enrolled */
	struct secret *other = NULL;
	unsigned char other_pk[DEPLOYER_PK_LEN];
	assert_int_equal(secret_new(DEPLOYER_SK_LEN, &other), COFFER_OK);
	assert_int_equal(crypto_sign_ed25519_keypair(other_pk, secret_bytes(other)), 0);
	candidate_new(&thief, t, "mallory", other);
	assert_int_equal(keeper_deployer_enrol(&fx.keys, fx.s, &thief.req, now_ms(), &d, &why), COFFER_ERR_UNAUTH);
	assert_string_equal(why, "enrolment proof does not verify");
	/* a bad name */
	candidate_new(&late, t, "-x", NULL);
	assert_int_equal(keeper_deployer_enrol(&fx.keys, fx.s, &late.req, now_ms(), &d, &why), COFFER_ERR_INVALID);
	secret_free(late.sk);

	candidate_new(&c, t, "ci@build-1", NULL);
	assert_int_equal(keeper_deployer_enrol(&fx.keys, fx.s, &c.req, now_ms(), &d, &why), COFFER_OK);
	assert_string_equal(d.org_id, fx.org.id);
	assert_string_equal(d.app_id, fx.app.id);
	assert_string_equal(d.role, "deploy");
	assert_string_equal(d.name, "ci@build-1");
	assert_memory_equal(d.public_key, c.pk, sizeof(c.pk));
	assert_int_equal(d.revoked_at, 0);
	/* the keeper's cert verifies with its public key */
	struct deployer_cert cert = { d.id, d.org_id, d.app_id, d.role, d.public_key };
	assert_int_equal(deployer_cert_verify(fx.keys.signing_pk, &cert, d.cert), COFFER_OK);
	assert_int_equal(keeper_deployer_live(&fx.keys, fx.s, d.id, &got, &why), COFFER_OK);
	assert_memory_equal(&got, &d, sizeof(d));
	/* used twice: refused, even by the right key with a fresh proof */
	candidate_new(&late, t, "again", NULL);
	assert_int_equal(keeper_deployer_enrol(&fx.keys, fx.s, &late.req, now_ms(), &d, &why), COFFER_ERR_UNAUTH);
	assert_string_equal(why, "deployer token already used");
	secret_free(late.sk);
	/* expired */
	struct secret *t2 = token_for(&fx.keys, fx.org.id, "*", DEPLOYER_ROLE_ADMIN, 1000);
	candidate_new(&late, t2, "late", NULL);
	assert_int_equal(keeper_deployer_enrol(&fx.keys, fx.s, &late.req, now_ms() + 2000, &d, &why),
			 COFFER_ERR_UNAUTH);
	assert_string_equal(why, "deployer token expired");
	secret_free(late.sk);
	secret_free(t2);
	/* an app of another org: refused (and the token not spent) */
	t2 = token_for(&fx.keys, fx.org.id, fx.app2.id, DEPLOYER_ROLE_ADMIN, 60000);
	candidate_new(&late, t2, "cross", NULL);
	assert_int_equal(keeper_deployer_enrol(&fx.keys, fx.s, &late.req, now_ms(), &d, &why), COFFER_ERR_NOT_FOUND);
	assert_string_equal(why, "the token's app no longer exists");
	secret_free(late.sk);
	secret_free(t2);
	/* another keeper's token */
	t2 = token_for(&fx.other_keys, fx.org.id, "*", DEPLOYER_ROLE_ADMIN, 60000);
	candidate_new(&late, t2, "forged", NULL);
	assert_int_equal(keeper_deployer_enrol(&fx.keys, fx.s, &late.req, now_ms(), &d, &why), COFFER_ERR_UNAUTH);
	assert_string_equal(why, "invalid deployer token");
	secret_free(late.sk);
	secret_free(t2);
	assert_int_equal(keeper_deployer_live(&fx.keys, fx.s, "000000000000000000000000", NULL, &why),
			 COFFER_ERR_NOT_FOUND);
	assert_string_equal(why, "unknown deployer");

	secret_free(c.sk);
	secret_free(thief.sk);
	secret_free(other);
	secret_free(t);
}

/* Enrols a deployer of the test org for every app; its row goes to d. */
static void enrol(struct store_deployer *d, const char *name)
{
	struct candidate c;
	const char *why = NULL;
	struct secret *t = token_for(&fx.keys, fx.org.id, "*", DEPLOYER_ROLE_ADMIN, 60000);
	candidate_new(&c, t, name, NULL);
	assert_int_equal(keeper_deployer_enrol(&fx.keys, fx.s, &c.req, now_ms(), d, &why), COFFER_OK);
	secret_free(c.sk);
	secret_free(t);
}

/* Each column of the row edited in the store (as the api could): refused as tampered. */
static void test_row_edited(void **state)
{
	struct store_deployer d, e;
	const char *why = NULL;
	(void)state;
	enrol(&d, "alice");
	for (int col = 0; col < 8; col++) {
		e = d;
		store_new_id(e.id); /* a copy of the row under another id, each with one column changed */
		switch (col) {
		case 0: break; /* the id itself */
		case 1: memcpy(e.org_id, fx.org2.id, sizeof(e.org_id)); break;
		case 2: memcpy(e.app_id, fx.app.id, sizeof(e.app_id)); break;
		case 3: memcpy(e.role, "deploy", 7); break;
		case 4: memcpy(e.name, "bob", 4); break;
		case 5: e.public_key[0] ^= 1; break;
		case 6: e.created_at += 1; break;
		case 7: e.revoked_at = 0; e.cert[0] ^= 1; break;
		}
		assert_int_equal(store_deployer_put(fx.s, &e), COFFER_OK);
		assert_int_equal(keeper_deployer_live(&fx.keys, fx.s, e.id, NULL, &why), COFFER_ERR_CRYPTO);
		assert_string_equal(why, "deployer record failed verification");
	}
	/* a row whose MAC is recomputed by someone without the registry key (another keeper's) */
	e = d;
	store_new_id(e.id);
	assert_int_equal(keeper_deployer_mac(&fx.other_keys, &e, e.mac), COFFER_OK);
	assert_int_equal(store_deployer_put(fx.s, &e), COFFER_OK);
	assert_int_equal(keeper_deployer_live(&fx.keys, fx.s, e.id, NULL, &why), COFFER_ERR_CRYPTO);
	/* with the right MAC but a cert of another keeper: still refused */
	e = d;
	store_new_id(e.id);
	struct deployer_cert c = { e.id, e.org_id, e.app_id, e.role, e.public_key };
	assert_int_equal(deployer_cert_sign(fx.other_keys.signing, &c, e.cert), COFFER_OK);
	assert_int_equal(keeper_deployer_mac(&fx.keys, &e, e.mac), COFFER_OK);
	assert_int_equal(store_deployer_put(fx.s, &e), COFFER_OK);
	assert_int_equal(keeper_deployer_live(&fx.keys, fx.s, e.id, NULL, &why), COFFER_ERR_CRYPTO);
	/* the original is untouched */
	assert_int_equal(keeper_deployer_live(&fx.keys, fx.s, d.id, NULL, &why), COFFER_OK);
}

static void test_revoke(void **state)
{
	struct store_deployer d, before, got;
	const char *why = NULL;
	struct stat st;
	(void)state;
	enrol(&d, "bob");
	assert_int_equal(store_deployer_get(fx.s, d.id, &before), COFFER_OK);
	assert_int_equal(keeper_deployer_revoked_locally(&fx.keys, d.id), 0);
	assert_int_equal(keeper_deployer_revoke(&fx.keys, fx.s, d.id, now_ms(), &why), COFFER_OK);
	assert_int_equal(keeper_deployer_live(&fx.keys, fx.s, d.id, &got, &why), COFFER_ERR_UNAUTH);
	assert_string_equal(why, "deployer key revoked");
	assert_true(got.revoked_at > 0);
	assert_int_equal(keeper_deployer_revoked_locally(&fx.keys, d.id), 1);
	assert_int_equal(stat(fx.keys.deployers_revoked, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	/* again: fine, the first time kept, one line in the file */
	int64_t first = got.revoked_at;
	assert_int_equal(keeper_deployer_revoke(&fx.keys, fx.s, d.id, now_ms() + 5000, &why), COFFER_OK);
	assert_int_equal(store_deployer_get(fx.s, d.id, &got), COFFER_OK);
	assert_int_equal(got.revoked_at, first);
	struct buf b;
	buf_init(&b, 4096);
	assert_int_equal(fs_read_file(fx.keys.deployers_revoked, &b), COFFER_OK);
	char line[STORE_ID_SIZE + 1];
	snprintf(line, sizeof(line), "%s\n", d.id);
	assert_non_null(strstr(b.ptr, line));
	assert_null(strstr(strstr(b.ptr, line) + 1, line));
	buf_release(&b);

	/* the row put back as it was before its revocation, with its old (valid) MAC: still revoked */
	sqlite3 *db = NULL;
	char mac_hex[2 * STORE_DEPLOYER_MAC_LEN + 1], full[512];
	sodium_bin2hex(mac_hex, sizeof(mac_hex), before.mac, sizeof(before.mac));
	snprintf(full, sizeof(full), "UPDATE deployers SET revoked_at = 0, mac = X'%s' WHERE id = '%s'", mac_hex, d.id);
	assert_int_equal(sqlite3_open(fx.db_url + strlen("sqlite:"), &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 10000);
	assert_int_equal(sqlite3_exec(db, full, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_deployer_get(fx.s, d.id, &got), COFFER_OK);
	assert_memory_equal(&got, &before, sizeof(got));
	assert_int_equal(keeper_deployer_live(&fx.keys, fx.s, d.id, NULL, &why), COFFER_ERR_UNAUTH);
	assert_string_equal(why, "deployer key revoked");
	/* without the local file the restored row would pass: the file is what refuses it */
	struct keeper_keys no_file = fx.keys;
	no_file.deployers_revoked[0] = '\0';
	assert_int_equal(keeper_deployer_live(&no_file, fx.s, d.id, NULL, &why), COFFER_OK);

	/* an id is matched by whole lines only */
	struct store_deployer e;
	enrol(&e, "carol");
	assert_int_equal(keeper_deployer_live(&fx.keys, fx.s, e.id, NULL, &why), COFFER_OK);
	/* an unreadable file fails closed */
	assert_int_equal(chmod(fx.keys.deployers_revoked, 0), 0);
	if (access(fx.keys.deployers_revoked, R_OK) != 0) {
		assert_int_equal(keeper_deployer_live(&fx.keys, fx.s, e.id, NULL, &why), COFFER_ERR_IO);
		assert_string_equal(why, "deployer revocation list unreadable");
	}
	assert_int_equal(chmod(fx.keys.deployers_revoked, 0600), 0);
	assert_int_equal(keeper_deployer_revoke(&fx.keys, fx.s, "000000000000000000000000", now_ms(), &why),
			 COFFER_ERR_NOT_FOUND);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tokens),
		cmocka_unit_test(test_enrol_and_live),
		cmocka_unit_test(test_row_edited),
		cmocka_unit_test(test_revoke),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
