/*
 * test_deployer.c — deployer keys and what they sign (deployer.h): the
 * texts byte for byte, an RFC 8032 signature, sign and verify, one
 * spelling of a signature, a change to any field of a statement or a
 * certificate refused, the key file (0600, made exclusively, refused when
 * others may read it) and which apps a certificate covers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "deployer.h"
#include "secret.h"

#define CONFIG "{\"cmd\":[\"web\"]}"
#define CONFIG_HASH "2846fdee06e402e6349bab9849e841e1daf8fb1107bef0563ffabf73c3d5739d"
#define MANIFEST "API_KEY 1 abc\n"
#define MANIFEST_HASH "8014384897a4b5c244f7b2ea013dfa998b5dd84c064df6531107cc186744787b"

/* RFC 8032 §7.1, test 1 (the empty message). */
#define RFC_SEED "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
#define RFC_PK_B64 "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
#define RFC_SIG_B64 "5VZDAMNgrHKQhuLMgG6CioSHfx645dl02HPgZSJJAVVfuIIVkKM7rMYeOXAc-bRr0lv18FlbviRlUUFDjnoQCw"

static struct secret *key_from_seed(const char *seed_hex, unsigned char pk[DEPLOYER_PK_LEN])
{
	unsigned char seed[32];
	struct secret *sk = NULL;
	assert_int_equal(sodium_hex2bin(seed, sizeof(seed), seed_hex, 64, NULL, NULL, NULL), 0);
	assert_int_equal(secret_new(DEPLOYER_SK_LEN, &sk), COFFER_OK);
	assert_int_equal(crypto_sign_ed25519_seed_keypair(pk, secret_bytes(sk), seed), 0);
	return sk;
}

static struct secret *new_key(unsigned char pk[DEPLOYER_PK_LEN])
{
	struct secret *sk = NULL;
	assert_int_equal(secret_new(DEPLOYER_SK_LEN, &sk), COFFER_OK);
	assert_int_equal(crypto_sign_ed25519_keypair(pk, secret_bytes(sk)), 0);
	return sk;
}

static void test_hash_and_release_text(void **state)
{
	char hex[DEPLOYER_HASH_HEX_SIZE], *t = NULL;
	size_t n = 0;
	(void)state;

	deployer_hash_hex("abc", 3, hex);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	deployer_hash_hex(NULL, 0, hex);
	assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

	assert_int_equal(deployer_release_text("app_1", CONFIG, strlen(CONFIG), 7, MANIFEST, strlen(MANIFEST), &t, &n),
			 COFFER_OK);
	assert_string_equal(t, "coffer release v1\napp app_1\nconfig " CONFIG_HASH "\nsecrets 7\nmanifest " MANIFEST_HASH
			       "\n");
	assert_int_equal(n, strlen(t));
	free(t);
	t = NULL;
	assert_int_equal(deployer_release_text("app_1", CONFIG, strlen(CONFIG), 0, NULL, 0, &t, &n), COFFER_OK);
	assert_string_equal(t, "coffer release v1\napp app_1\nconfig " CONFIG_HASH "\nsecrets 0\nmanifest -\n");
	free(t);
	t = NULL;
	/* the largest version */
	assert_int_equal(deployer_release_text("a", "", 0, UINT64_MAX, "", 0, &t, &n), COFFER_OK);
	assert_non_null(strstr(t, "\nsecrets 18446744073709551615\n"));
	free(t);
	t = NULL;

	/* refused: a manifest with version 0, none with another, bad app ids */
	assert_int_equal(deployer_release_text("app_1", CONFIG, strlen(CONFIG), 0, MANIFEST, strlen(MANIFEST), &t, &n),
			 COFFER_ERR_INVALID);
	assert_int_equal(deployer_release_text("app_1", CONFIG, strlen(CONFIG), 3, NULL, 0, &t, &n), COFFER_ERR_INVALID);
	const char *bad[] = {NULL, "", "App", "a\nb", "a-b", "*",
			     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" /* 65 */};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(deployer_release_text(bad[i], CONFIG, strlen(CONFIG), 0, NULL, 0, &t, &n),
				 COFFER_ERR_INVALID);
	assert_null(t);
	/* 64 characters is a store id */
	assert_int_equal(deployer_release_text("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", CONFIG,
					       strlen(CONFIG), 0, NULL, 0, &t, &n),
			 COFFER_OK);
	free(t);
}

static void test_cert_text(void **state)
{
	unsigned char pk[DEPLOYER_PK_LEN];
	struct secret *sk = key_from_seed(RFC_SEED, pk);
	char *t = NULL;
	size_t n = 0;
	(void)state;

	struct deployer_cert c = {"dep_1", "org_1", "*", DEPLOYER_ROLE_ADMIN, pk};
	assert_int_equal(deployer_cert_text(&c, &t, &n), COFFER_OK);
	assert_string_equal(t, "coffer deployer v1\nid dep_1\norg org_1\napp *\nrole admin\nkey " RFC_PK_B64 "\n");
	assert_int_equal(n, strlen(t));
	free(t);
	t = NULL;
	c.app_id = "app_2";
	c.role = DEPLOYER_ROLE_DEPLOY;
	assert_int_equal(deployer_cert_text(&c, &t, &n), COFFER_OK);
	assert_string_equal(t, "coffer deployer v1\nid dep_1\norg org_1\napp app_2\nrole deploy\nkey " RFC_PK_B64 "\n");
	free(t);
	t = NULL;

	struct deployer_cert bad[] = {
		{"", "org_1", "*", "admin", pk},      {"dep_1", "Org", "*", "admin", pk},
		{"dep_1", "org_1", "**", "admin", pk}, {"dep_1", "org_1", "", "admin", pk},
		{"dep_1", "org_1", "*", "root", pk},   {"dep_1", "org_1", "*", "Admin", pk},
		{"dep_1", "org_1", "*", NULL, pk},     {"dep_1", "org_1", NULL, "admin", pk},
		{"d\n1", "org_1", "*", "admin", pk},   {"dep_1", "org_1", "*", "admin", NULL},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(deployer_cert_text(&bad[i], &t, &n), COFFER_ERR_INVALID);
	assert_null(t);
	secret_free(sk);
}

static void test_sign_verify(void **state)
{
	unsigned char pk[DEPLOYER_PK_LEN], other_pk[DEPLOYER_PK_LEN];
	struct secret *sk = key_from_seed(RFC_SEED, pk);
	struct secret *other = new_key(other_pk);
	char sig[DEPLOYER_SIG_B64_SIZE], respelled[DEPLOYER_SIG_B64_SIZE];
	(void)state;

	/* RFC 8032's vector, in base64url */
	assert_int_equal(deployer_sign(sk, NULL, 0, sig), COFFER_OK);
	assert_string_equal(sig, RFC_SIG_B64);
	assert_int_equal(deployer_verify(pk, "", 0, sig), COFFER_OK);
	assert_int_equal(deployer_verify(pk, "x", 1, sig), COFFER_ERR_CRYPTO);
	assert_int_equal(deployer_verify(other_pk, "", 0, sig), COFFER_ERR_CRYPTO);

	assert_int_equal(deployer_sign(sk, MANIFEST, strlen(MANIFEST), sig), COFFER_OK);
	assert_int_equal(strlen(sig), DEPLOYER_SIG_B64_LEN);
	assert_int_equal(deployer_verify(pk, MANIFEST, strlen(MANIFEST), sig), COFFER_OK);
	assert_int_equal(deployer_verify(pk, MANIFEST, strlen(MANIFEST) - 1, sig), COFFER_ERR_CRYPTO);
	assert_int_equal(deployer_verify(other_pk, MANIFEST, strlen(MANIFEST), sig), COFFER_ERR_CRYPTO);
	/* absent, empty, cut, too long, padded, standard base64 */
	assert_int_equal(deployer_verify(pk, MANIFEST, strlen(MANIFEST), NULL), COFFER_ERR_CRYPTO);
	assert_int_equal(deployer_verify(pk, MANIFEST, strlen(MANIFEST), ""), COFFER_ERR_CRYPTO);
	memcpy(respelled, sig, sizeof(sig));
	respelled[DEPLOYER_SIG_B64_LEN - 1] = '\0';
	assert_int_equal(deployer_verify(pk, MANIFEST, strlen(MANIFEST), respelled), COFFER_ERR_CRYPTO);
	char longer[DEPLOYER_SIG_B64_SIZE + 2];
	memcpy(longer, sig, DEPLOYER_SIG_B64_LEN);
	memcpy(longer + DEPLOYER_SIG_B64_LEN, "==", 3);
	assert_int_equal(deployer_verify(pk, MANIFEST, strlen(MANIFEST), longer), COFFER_ERR_CRYPTO);
	/* the last character carries 2 unused bits: setting them is a second spelling */
	memcpy(respelled, sig, sizeof(sig));
	const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t last = (size_t)(strchr(alphabet, sig[DEPLOYER_SIG_B64_LEN - 1]) - alphabet);
	respelled[DEPLOYER_SIG_B64_LEN - 1] = alphabet[last | 1];
	if (respelled[DEPLOYER_SIG_B64_LEN - 1] == sig[DEPLOYER_SIG_B64_LEN - 1])
		respelled[DEPLOYER_SIG_B64_LEN - 1] = alphabet[last | 2];
	assert_int_equal(deployer_verify(pk, MANIFEST, strlen(MANIFEST), respelled), COFFER_ERR_CRYPTO);
	/* a '_' spelled as a byte 0x80..0xff, which a lax decoder takes; '+' and '/' of standard base64 */
	char *under = NULL;
	char text[] = "0000";
	for (int i = 0; !under && i < 4096; i++) {
		text[0] = "0123456789abcdef"[i % 16];
		text[1] = "0123456789abcdef"[(i / 16) % 16];
		text[2] = "0123456789abcdef"[(i / 256) % 16];
		assert_int_equal(deployer_sign(sk, text, 4, sig), COFFER_OK);
		under = memchr(sig, '_', DEPLOYER_SIG_B64_LEN - 1);
	}
	assert_non_null(under);
	assert_int_equal(deployer_verify(pk, text, 4, sig), COFFER_OK);
	memcpy(respelled, sig, sizeof(sig));
	respelled[under - sig] = (char)0x80;
	assert_int_equal(deployer_verify(pk, text, 4, respelled), COFFER_ERR_CRYPTO);
	respelled[under - sig] = '/';
	assert_int_equal(deployer_verify(pk, text, 4, respelled), COFFER_ERR_CRYPTO);

	/* what cannot sign */
	assert_int_equal(deployer_sign(NULL, "x", 1, sig), COFFER_ERR_INVALID);
	struct secret *short_key = NULL;
	assert_int_equal(secret_new(32, &short_key), COFFER_OK);
	assert_int_equal(deployer_sign(short_key, "x", 1, sig), COFFER_ERR_INVALID);
	secret_free(short_key);
	secret_free(sk);
	secret_free(other);
}

/* Each field of a statement and of a certificate changed: the signature no longer verifies. */
static void test_every_field_bound(void **state)
{
	unsigned char pk[DEPLOYER_PK_LEN], other_pk[DEPLOYER_PK_LEN];
	struct secret *sk = new_key(pk);
	struct secret *other = new_key(other_pk);
	char sig[DEPLOYER_SIG_B64_SIZE], *t = NULL;
	size_t n = 0;
	(void)state;

	assert_int_equal(deployer_release_text("app_1", CONFIG, strlen(CONFIG), 7, MANIFEST, strlen(MANIFEST), &t, &n),
			 COFFER_OK);
	assert_int_equal(deployer_sign(sk, t, n, sig), COFFER_OK);
	assert_int_equal(deployer_verify(pk, t, n, sig), COFFER_OK);
	free(t);
	struct {
		const char *app, *config, *manifest;
		uint64_t version;
	} stmts[] = {
		{"app_2", CONFIG, MANIFEST, 7},
		{"app_1", "{\"cmd\":[\"sh\"]}", MANIFEST, 7},
		{"app_1", CONFIG, MANIFEST, 8},
		{"app_1", CONFIG, "API_KEY 2 abc\n", 7},
		{"app_1", CONFIG, NULL, 0},
	};
	for (size_t i = 0; i < sizeof(stmts) / sizeof(stmts[0]); i++) {
		t = NULL;
		assert_int_equal(deployer_release_text(stmts[i].app, stmts[i].config, strlen(stmts[i].config),
						       stmts[i].version, stmts[i].manifest,
						       stmts[i].manifest ? strlen(stmts[i].manifest) : 0, &t, &n),
				 COFFER_OK);
		assert_int_equal(deployer_verify(pk, t, n, sig), COFFER_ERR_CRYPTO);
		free(t);
	}

	struct deployer_cert c = {"dep_1", "org_1", "app_1", DEPLOYER_ROLE_DEPLOY, pk};
	assert_int_equal(deployer_cert_text(&c, &t, &n), COFFER_OK);
	assert_int_equal(deployer_sign(sk, t, n, sig), COFFER_OK);
	assert_int_equal(deployer_verify(pk, t, n, sig), COFFER_OK);
	free(t);
	struct deployer_cert certs[] = {
		{"dep_2", "org_1", "app_1", DEPLOYER_ROLE_DEPLOY, pk},
		{"dep_1", "org_2", "app_1", DEPLOYER_ROLE_DEPLOY, pk},
		{"dep_1", "org_1", "app_2", DEPLOYER_ROLE_DEPLOY, pk},
		{"dep_1", "org_1", DEPLOYER_ALL_APPS, DEPLOYER_ROLE_DEPLOY, pk},
		{"dep_1", "org_1", "app_1", DEPLOYER_ROLE_ADMIN, pk},
		{"dep_1", "org_1", "app_1", DEPLOYER_ROLE_DEPLOY, other_pk},
	};
	for (size_t i = 0; i < sizeof(certs) / sizeof(certs[0]); i++) {
		t = NULL;
		assert_int_equal(deployer_cert_text(&certs[i], &t, &n), COFFER_OK);
		assert_int_equal(deployer_verify(pk, t, n, sig), COFFER_ERR_CRYPTO);
		free(t);
	}
	secret_free(sk);
	secret_free(other);
}

static void test_key_file(void **state)
{
	char dir[] = "/tmp/coffer-test-deployer-XXXXXX", path[256], other[256];
	unsigned char pk[DEPLOYER_PK_LEN], pk2[DEPLOYER_PK_LEN], loaded_pk[DEPLOYER_PK_LEN];
	struct secret *sk = NULL;
	struct stat st;
	char text[80];
	(void)state;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/deployer.key", dir);
	snprintf(other, sizeof(other), "%s/open.key", dir);

	assert_int_equal(deployer_key_create(path, pk), COFFER_OK);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	/* 64 lower-case hex and a newline */
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	size_t got = fread(text, 1, sizeof(text), f);
	fclose(f);
	assert_int_equal(got, 65);
	assert_int_equal(text[64], '\n');
	for (int i = 0; i < 64; i++)
		assert_non_null(strchr("0123456789abcdef", text[i]));

	/* made exclusively: a second create keeps the first key */
	memcpy(pk2, pk, sizeof(pk));
	assert_int_equal(deployer_key_create(path, pk2), COFFER_ERR_CONFLICT);
	assert_memory_equal(pk2, pk, sizeof(pk));
	assert_int_equal(deployer_key_load(path, &sk, loaded_pk), COFFER_OK);
	assert_memory_equal(loaded_pk, pk, sizeof(pk));
	assert_int_equal(secret_len(sk), DEPLOYER_SK_LEN);
	/* the loaded key signs for its public key */
	char sig[DEPLOYER_SIG_B64_SIZE];
	assert_int_equal(deployer_sign(sk, "t", 1, sig), COFFER_OK);
	assert_int_equal(deployer_verify(pk, "t", 1, sig), COFFER_OK);
	secret_free(sk);
	sk = NULL;

	/* a file others may read is refused; a missing one is not found; a bad one is invalid */
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(deployer_key_load(path, &sk, loaded_pk), COFFER_ERR_FORBIDDEN);
	assert_null(sk);
	assert_int_equal(deployer_key_load(other, &sk, loaded_pk), COFFER_ERR_NOT_FOUND);
	int fd = open(other, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "abcd\n", 5), 5);
	close(fd);
	assert_int_equal(deployer_key_load(other, &sk, loaded_pk), COFFER_ERR_INVALID);
	assert_null(sk);

	unlink(path);
	unlink(other);
	rmdir(dir);
}

/* The keeper's certificate: made with its key, checked with its public key, bound to every field. */
static void test_cert_sign_verify(void **state)
{
	unsigned char keeper_pk[DEPLOYER_PK_LEN], other_pk[DEPLOYER_PK_LEN], pk[DEPLOYER_PK_LEN], pk2[DEPLOYER_PK_LEN];
	struct secret *keeper = new_key(keeper_pk), *other = new_key(other_pk), *dep = new_key(pk), *dep2 = new_key(pk2);
	unsigned char cert[DEPLOYER_SIG_LEN];
	char *t = NULL;
	size_t n = 0;
	(void)state;

	struct deployer_cert c = {"dep_1", "org_1", "*", DEPLOYER_ROLE_ADMIN, pk};
	assert_int_equal(deployer_cert_sign(keeper, &c, cert), COFFER_OK);
	assert_int_equal(deployer_cert_verify(keeper_pk, &c, cert), COFFER_OK);
	/* the same signature as deployer_sign over the text */
	char sig[DEPLOYER_SIG_B64_SIZE], cert_b64[DEPLOYER_SIG_B64_SIZE];
	assert_int_equal(deployer_cert_text(&c, &t, &n), COFFER_OK);
	assert_int_equal(deployer_sign(keeper, t, n, sig), COFFER_OK);
	free(t);
	sodium_bin2base64(cert_b64, sizeof(cert_b64), cert, sizeof(cert), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	assert_string_equal(sig, cert_b64);
	/* another keeper; each field changed */
	assert_int_equal(deployer_cert_verify(other_pk, &c, cert), COFFER_ERR_CRYPTO);
	struct deployer_cert changed[] = {
		{"dep_2", "org_1", "*", DEPLOYER_ROLE_ADMIN, pk},    {"dep_1", "org_2", "*", DEPLOYER_ROLE_ADMIN, pk},
		{"dep_1", "org_1", "app", DEPLOYER_ROLE_ADMIN, pk},  {"dep_1", "org_1", "*", DEPLOYER_ROLE_DEPLOY, pk},
		{"dep_1", "org_1", "*", DEPLOYER_ROLE_ADMIN, pk2},   {"dep_1", "org_1", "*", "root", pk},
	};
	for (size_t i = 0; i < sizeof(changed) / sizeof(changed[0]); i++)
		assert_int_equal(deployer_cert_verify(keeper_pk, &changed[i], cert), COFFER_ERR_CRYPTO);
	cert[0] ^= 1;
	assert_int_equal(deployer_cert_verify(keeper_pk, &c, cert), COFFER_ERR_CRYPTO);
	/* a deployer's own signature over its cert text is not the keeper's */
	assert_int_equal(deployer_cert_sign(dep, &c, cert), COFFER_OK);
	assert_int_equal(deployer_cert_verify(keeper_pk, &c, cert), COFFER_ERR_CRYPTO);
	assert_int_equal(deployer_cert_sign(keeper, &changed[5], cert), COFFER_ERR_INVALID);
	secret_free(keeper);
	secret_free(other);
	secret_free(dep);
	secret_free(dep2);
}

/* The keeper's binding of an app to its org: its exact text, and nothing else verifies. */
static void test_app_org(void **state)
{
	unsigned char keeper_pk[DEPLOYER_PK_LEN], other_pk[DEPLOYER_PK_LEN], sig[DEPLOYER_SIG_LEN];
	struct secret *keeper = new_key(keeper_pk), *other = new_key(other_pk);
	const char text[] = "coffer app org v1\napp app_1\norg org_1\n";
	char b64[DEPLOYER_SIG_B64_SIZE], want[DEPLOYER_SIG_B64_SIZE];
	(void)state;

	assert_int_equal(deployer_app_org_sign(keeper, "app_1", "org_1", sig), COFFER_OK);
	assert_int_equal(deployer_app_org_verify(keeper_pk, "app_1", "org_1", sig), COFFER_OK);
	assert_int_equal(deployer_sign(keeper, text, strlen(text), want), COFFER_OK);
	sodium_bin2base64(b64, sizeof(b64), sig, sizeof(sig), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	assert_string_equal(b64, want);
	assert_int_equal(deployer_app_org_verify(keeper_pk, "app_1", "org_2", sig), COFFER_ERR_CRYPTO);
	assert_int_equal(deployer_app_org_verify(keeper_pk, "app_2", "org_1", sig), COFFER_ERR_CRYPTO);
	assert_int_equal(deployer_app_org_verify(other_pk, "app_1", "org_1", sig), COFFER_ERR_CRYPTO);
	assert_int_equal(deployer_app_org_verify(keeper_pk, "app_1", "org_1\napp x", sig), COFFER_ERR_CRYPTO);
	assert_int_equal(deployer_app_org_verify(keeper_pk, NULL, "org_1", sig), COFFER_ERR_CRYPTO);
	assert_int_equal(deployer_app_org_sign(keeper, "*", "org_1", sig), COFFER_ERR_INVALID);
	/* another keeper's binding of the same app and org */
	assert_int_equal(deployer_app_org_sign(other, "app_1", "org_1", sig), COFFER_OK);
	assert_int_equal(deployer_app_org_verify(keeper_pk, "app_1", "org_1", sig), COFFER_ERR_CRYPTO);
	secret_free(keeper);
	secret_free(other);
}

static void test_enrol_text(void **state)
{
	unsigned char pk[DEPLOYER_PK_LEN];
	struct secret *sk = key_from_seed(RFC_SEED, pk), *t = NULL;
	(void)state;

	assert_int_equal(deployer_enrol_text("cdt_abc", 7, "alice@laptop", pk, &t), COFFER_OK);
	const char *want = "coffer deployer enrol v1\ncdt_abc\nalice@laptop\n" RFC_PK_B64 "\n";
	assert_int_equal(secret_len(t), strlen(want));
	assert_memory_equal(secret_cbytes(t), want, strlen(want));
	secret_free(t);
	t = NULL;
	assert_int_equal(deployer_enrol_text("cdt_abc", 0, "alice", pk, &t), COFFER_ERR_INVALID);
	assert_int_equal(deployer_enrol_text("cdt\nabc", 7, "alice", pk, &t), COFFER_ERR_INVALID);
	assert_int_equal(deployer_enrol_text("cdt_abc", 7, "", pk, &t), COFFER_ERR_INVALID);
	assert_int_equal(deployer_enrol_text("cdt_abc", 7, "a\nb", pk, &t), COFFER_ERR_INVALID);
	assert_int_equal(deployer_enrol_text("cdt_abc", 7, NULL, pk, &t), COFFER_ERR_INVALID);
	assert_null(t);
	secret_free(sk);
}

static void test_covers(void **state)
{
	(void)state;
	assert_true(deployer_covers("org_1", "*", "org_1", "app_1"));
	assert_true(deployer_covers("org_1", "app_1", "org_1", "app_1"));
	assert_false(deployer_covers("org_1", "app_2", "org_1", "app_1"));
	assert_false(deployer_covers("org_1", "*", "org_2", "app_1"));
	assert_false(deployer_covers("org_1", "app_1", "org_2", "app_1"));
	assert_false(deployer_covers("org_1", "", "org_1", "app_1"));
	assert_false(deployer_covers("org_1", "**", "org_1", "app_1"));
	assert_false(deployer_covers(NULL, "*", "org_1", "app_1"));
	assert_false(deployer_covers("org_1", NULL, "org_1", "app_1"));
	assert_false(deployer_covers("org_1", "*", NULL, "app_1"));
	assert_false(deployer_covers("org_1", "*", "org_1", NULL));
	assert_false(deployer_covers("", "*", "", "app_1"));
	/* an app named "*" does not exist: a cert for "*" never matches it by its id */
	assert_false(deployer_covers("org_1", "*", "org_1", "*"));
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_and_release_text), cmocka_unit_test(test_cert_text),
		cmocka_unit_test(test_sign_verify),           cmocka_unit_test(test_every_field_bound),
		cmocka_unit_test(test_key_file),              cmocka_unit_test(test_covers),
		cmocka_unit_test(test_cert_sign_verify),      cmocka_unit_test(test_enrol_text),
		cmocka_unit_test(test_app_org),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
