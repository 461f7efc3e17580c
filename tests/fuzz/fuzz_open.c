/*
 * HPKE open (hpke.h: how the keeper opens a secret) and key unwrap
 * (keywrap.h: how it opens an app key), under fixed keys.
 *   mode 0: the input is "info_len aad_len info aad ciphertext": open it
 *           with both; if it opens, the plaintext has the length the format
 *           gives it, and both HPKE entry points agree.
 *   mode 1: the input gives info, aad and a plaintext: seal, open (the same
 *           plaintext, through hpke_open and hpke_open_into), then change
 *           one byte of the ciphertext, the info or the aad: refused.
 *   mode 2: the same for keywrap_seal and keywrap_open.
 */
#include "fuzz.h"
#include "hpke.h"
#include "keywrap.h"

static struct secret *skR, *wrap_key;
static unsigned char pkR[HPKE_PK_LEN];

struct parts {
	const uint8_t *info, *aad, *rest;
	size_t info_len, aad_len, rest_len;
};

static void take_parts(const uint8_t *data, size_t size, struct parts *p)
{
	p->info_len = fuzz_byte(&data, &size) % 64;
	p->aad_len = fuzz_byte(&data, &size) % 64;
	p->info = data;
	p->info_len = fuzz_take(&data, &size, p->info_len);
	p->aad = data;
	p->aad_len = fuzz_take(&data, &size, p->aad_len);
	p->rest = data;
	p->rest_len = size;
}

static void check_raw(const struct parts *p)
{
	struct secret *pt = NULL, *into = NULL;
	enum coffer_err rc = hpke_open(skR, p->info, p->info_len, p->aad, p->aad_len, p->rest, p->rest_len, &pt);
	if (p->rest_len >= HPKE_ENC_LEN + HPKE_TAG_LEN) {
		FUZZ_CHECK(secret_new(p->rest_len - HPKE_ENC_LEN - HPKE_TAG_LEN, &into) == COFFER_OK);
		enum coffer_err rc2 = hpke_open_into(skR, pkR, p->info, p->info_len, p->aad, p->aad_len, p->rest,
						     p->rest_len, into);
		FUZZ_CHECK((rc == COFFER_OK) == (rc2 == COFFER_OK));
		if (rc == COFFER_OK)
			FUZZ_CHECK(secret_equal(pt, into));
		secret_free(into);
	} else {
		FUZZ_CHECK(rc != COFFER_OK);
	}
	if (rc == COFFER_OK)
		FUZZ_CHECK(secret_len(pt) == p->rest_len - HPKE_ENC_LEN - HPKE_TAG_LEN);
	else
		FUZZ_CHECK(pt == NULL);
	secret_free(pt);
	pt = NULL;
	rc = keywrap_open(wrap_key, p->aad, p->aad_len, p->rest, p->rest_len, &pt);
	if (rc == COFFER_OK)
		FUZZ_CHECK(secret_len(pt) == p->rest_len - KEYWRAP_OVERHEAD);
	else
		FUZZ_CHECK(pt == NULL);
	secret_free(pt);
}

/* Which byte of (ciphertext, info, aad) to change, and to what; 0 when none can change. */
static uint8_t *pick(uint8_t *ct, size_t ct_len, uint8_t *info, size_t info_len, uint8_t *aad, size_t aad_len,
		     size_t pos)
{
	size_t total = ct_len + info_len + aad_len;
	if (!total)
		return NULL;
	pos %= total;
	if (pos < ct_len)
		return ct + pos;
	pos -= ct_len;
	return pos < info_len ? info + pos : aad + pos - info_len;
}

static void check_seal(const struct parts *p, int wrap)
{
	size_t pos = p->rest_len ? p->rest[0] : 0;
	uint8_t x = p->rest_len > 1 ? p->rest[1] : 1;
	const uint8_t *ptext = p->rest_len > 2 ? p->rest + 2 : NULL;
	size_t pt_len = p->rest_len > 2 ? p->rest_len - 2 : 0;
	uint8_t info[64], aad[64];
	struct secret *pt = NULL, *back = NULL;
	struct buf ct;
	memcpy(info, p->info, p->info_len);
	memcpy(aad, p->aad, p->aad_len);
	if (wrap && pt_len > KEYWRAP_PLAINTEXT_MAX)
		return;
	FUZZ_CHECK(secret_from(ptext ? (const void *)ptext : "", pt_len, &pt) == COFFER_OK);
	buf_init(&ct, (size_t)1 << 20);
	if (wrap) {
		FUZZ_CHECK(keywrap_seal(wrap_key, aad, p->aad_len, pt, &ct) == COFFER_OK);
		FUZZ_CHECK(ct.len == pt_len + KEYWRAP_OVERHEAD);
		FUZZ_CHECK(keywrap_open(wrap_key, aad, p->aad_len, ct.ptr, ct.len, &back) == COFFER_OK);
	} else {
		FUZZ_CHECK(hpke_seal(pkR, info, p->info_len, aad, p->aad_len, pt, &ct) == COFFER_OK);
		FUZZ_CHECK(ct.len == pt_len + HPKE_ENC_LEN + HPKE_TAG_LEN);
		FUZZ_CHECK(hpke_open(skR, info, p->info_len, aad, p->aad_len, ct.ptr, ct.len, &back) == COFFER_OK);
		struct secret *into = NULL;
		FUZZ_CHECK(secret_new(pt_len, &into) == COFFER_OK);
		FUZZ_CHECK(hpke_open_into(skR, NULL, info, p->info_len, aad, p->aad_len, ct.ptr, ct.len, into) ==
			   COFFER_OK);
		FUZZ_CHECK(secret_equal(into, pt));
		secret_free(into);
	}
	FUZZ_CHECK(secret_equal(back, pt));
	secret_free(back);
	back = NULL;
	/* one byte changed: refused (keywrap has no info: a change there changes nothing) */
	uint8_t *at = pick((uint8_t *)ct.ptr, ct.len, info, wrap ? 0 : p->info_len, aad, p->aad_len,
			   pos * 131 + x);
	if (at && x) {
		*at ^= x;
		enum coffer_err rc = wrap ? keywrap_open(wrap_key, aad, p->aad_len, ct.ptr, ct.len, &back)
					  : hpke_open(skR, info, p->info_len, aad, p->aad_len, ct.ptr, ct.len, &back);
		FUZZ_CHECK(rc != COFFER_OK && back == NULL);
	}
	buf_release(&ct);
	secret_free(pt);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	struct secret *ikm = NULL, *master = NULL;
	fuzz_sodium_init();
	if (secret_new(HPKE_IKM_MIN_LEN, &ikm) || secret_new(KDF_MASTER_MIN_LEN, &master))
		abort();
	memset(secret_bytes(ikm), 0x55, HPKE_IKM_MIN_LEN);
	memset(secret_bytes(master), 0x66, KDF_MASTER_MIN_LEN);
	if (hpke_derive_keypair(ikm, &skR, pkR) || keywrap_derive(master, KEYWRAP_LABEL_APP_KEY, &wrap_key))
		abort();
	secret_free(ikm);
	secret_free(master);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct parts p;
	if (size > 8192)
		return 0;
	uint8_t mode = fuzz_byte(&data, &size) % 3;
	take_parts(data, size, &p);
	if (mode == 0)
		check_raw(&p);
	else
		check_seal(&p, mode == 2);
	return 0;
}
