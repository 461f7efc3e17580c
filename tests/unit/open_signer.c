#include "open_signer.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <sodium.h>

void test_deployer_make(const struct keeper_keys *keys, struct store *s, const char *org_id, const char *app_id,
			const char *role, struct test_deployer *out)
{
	struct store_deployer d;
	memset(&d, 0, sizeof(d));
	memset(out, 0, sizeof(*out));
	assert_int_equal(secret_new(DEPLOYER_SK_LEN, &out->sk), COFFER_OK);
	assert_int_equal(crypto_sign_keypair(out->pk, secret_bytes(out->sk)), 0);
	store_new_id(out->id);
	memcpy(d.id, out->id, sizeof(d.id));
	assert_int_equal(str_copy(d.org_id, sizeof(d.org_id), org_id), COFFER_OK);
	assert_int_equal(str_copy(d.app_id, sizeof(d.app_id), app_id), COFFER_OK);
	assert_int_equal(str_copy(d.role, sizeof(d.role), role), COFFER_OK);
	assert_int_equal(str_copy(d.name, sizeof(d.name), "test-deployer"), COFFER_OK);
	memcpy(d.public_key, out->pk, sizeof(d.public_key));
	d.created_at = (int64_t)time(NULL) * 1000;
	struct deployer_cert c = { d.id, d.org_id, d.app_id, d.role, d.public_key };
	assert_int_equal(deployer_cert_sign(keys->signing, &c, d.cert), COFFER_OK);
	assert_int_equal(keeper_deployer_mac(keys, &d, d.mac), COFFER_OK);
	assert_int_equal(store_deployer_put(s, &d), COFFER_OK);
}

void test_deployer_free(struct test_deployer *d)
{
	secret_free(d->sk);
	memset(d, 0, sizeof(*d));
}

void test_sign_text(struct store *s, const struct test_deployer *d, const char *app_id, const char *text, size_t len)
{
	char hash[DEPLOYER_HASH_HEX_SIZE], sig[DEPLOYER_SIG_B64_SIZE];
	deployer_hash_hex(text, len, hash);
	assert_int_equal(deployer_sign(d->sk, text, len, sig), COFFER_OK);
	assert_int_equal(store_signature_add(s, app_id, hash, d->id, sig), COFFER_OK);
}

void test_sign_open(struct store *s, const struct test_deployer *d, const char *app_id, uint64_t release,
		    uint64_t version)
{
	struct store_release r = { 0 };
	struct store_secret_list l = { 0 };
	char *text = NULL;
	size_t len = 0;

	assert_int_equal(store_release_get(s, app_id, release, &r), COFFER_OK);
	if (version)
		assert_int_equal(store_secrets_get(s, app_id, version, &l), COFFER_OK);
	const char *manifest = version ? l.manifest_text : NULL;
	assert_true(!version || manifest);
	assert_int_equal(deployer_release_text(app_id, r.config, strlen(r.config), version, manifest,
					       manifest ? strlen(manifest) : 0, &text, &len),
			 COFFER_OK);
	test_sign_text(s, d, app_id, text, len);
	if (manifest)
		test_sign_text(s, d, app_id, manifest, strlen(manifest));
	free(text);
	store_secret_list_release(&l);
	store_release_clear(&r);
}

void test_digest(const struct keeper_keys *keys, const char *app_id, const char *value, size_t len,
		 char out[DIGEST_HEX_LEN + 1])
{
	struct secret *dk = NULL, *v = NULL;
	assert_int_equal(digest_app_key(keys->digest, app_id, &dk), COFFER_OK);
	assert_int_equal(secret_from(value, len, &v), COFFER_OK);
	assert_int_equal(digest_value(dk, v, out), COFFER_OK);
	secret_free(v);
	secret_free(dk);
}
