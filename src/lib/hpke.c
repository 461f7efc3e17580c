#include "hpke.h"

#include <sodium.h>
#include <stdint.h>
#include <string.h>

#include "hkdf.h"

#include "banned.h"

#define MODE_BASE 0x00
#define SEQ_LIMIT UINT64_MAX /* a context stops before using this sequence number */
#define INFO_CACHE_MAX 64    /* longest info whose hashes a thread keeps */

static const unsigned char version_label[] = { 'H', 'P', 'K', 'E', '-', 'v', '1' };
static const unsigned char kem_suite[] = { 'K', 'E', 'M', HPKE_KEM_ID >> 8, HPKE_KEM_ID & 0xff };
static const unsigned char hpke_suite[] = {
	'H', 'P', 'K', 'E', HPKE_KEM_ID >> 8, HPKE_KEM_ID & 0xff,
	HPKE_KDF_ID >> 8, HPKE_KDF_ID & 0xff, HPKE_AEAD_ID >> 8, HPKE_AEAD_ID & 0xff,
};

struct suite {
	const unsigned char *id;
	size_t len;
};

static const struct suite kem = { kem_suite, sizeof(kem_suite) };
static const struct suite hpke = { hpke_suite, sizeof(hpke_suite) };

/* Allocated with sodium_malloc; the size is a multiple of 8 so the
 * uint64_t stays aligned. */
struct hpke_ctx {
	uint64_t seq;
	enum hpke_role role;
	unsigned char key[HPKE_KEY_LEN];
	unsigned char base_nonce[HPKE_NONCE_LEN];
	unsigned char exporter_secret[HPKE_SECRET_LEN];
};

static void labeled_extract(const struct suite *s, const void *salt, size_t salt_len,
			    const char *label, const void *ikm, size_t ikm_len,
			    unsigned char prk[HKDF_SHA256_LEN])
{
	const struct hkdf_part parts[] = {
		{ version_label, sizeof(version_label) },
		{ s->id, s->len },
		{ label, strlen(label) },
		{ ikm, ikm_len },
	};

	hkdf_extract_parts(salt, salt_len, parts, sizeof(parts) / sizeof(parts[0]), prk);
}

static enum coffer_err labeled_expand(const struct suite *s, const unsigned char prk[HKDF_SHA256_LEN],
				      const char *label, const void *info, size_t info_len,
				      void *out, size_t len)
{
	if (len > HKDF_SHA256_OKM_MAX)
		return COFFER_ERR_INVALID;
	const unsigned char l2[2] = { (unsigned char)(len >> 8), (unsigned char)len };
	const struct hkdf_part parts[] = {
		{ l2, sizeof(l2) },
		{ version_label, sizeof(version_label) },
		{ s->id, s->len },
		{ label, strlen(label) },
		{ info, info_len },
	};

	return hkdf_expand_parts(prk, parts, sizeof(parts) / sizeof(parts[0]), out, len);
}

/* DeriveKeyPair's private half (RFC 9180 §7.1.3, X25519 needs no retry). */
static enum coffer_err derive_sk(const unsigned char *ikm, size_t ikm_len,
				 unsigned char sk[HPKE_SK_LEN])
{
	unsigned char prk[HKDF_SHA256_LEN];
	enum coffer_err rc;

	labeled_extract(&kem, NULL, 0, "dkp_prk", ikm, ikm_len, prk);
	rc = labeled_expand(&kem, prk, "sk", NULL, 0, sk, HPKE_SK_LEN);
	sodium_memzero(prk, sizeof(prk));
	return rc;
}

/* X25519, refusing an all-zero output (RFC 9180 §7.1.4). */
static enum coffer_err dh(const unsigned char sk[HPKE_SK_LEN], const unsigned char pk[HPKE_PK_LEN],
			  unsigned char out[HPKE_SECRET_LEN])
{
	if (crypto_scalarmult_curve25519(out, sk, pk) != 0 || sodium_is_zero(out, HPKE_SECRET_LEN)) {
		sodium_memzero(out, HPKE_SECRET_LEN);
		return COFFER_ERR_CRYPTO;
	}
	return COFFER_OK;
}

static enum coffer_err public_of(const unsigned char sk[HPKE_SK_LEN], unsigned char pk[HPKE_PK_LEN])
{
	if (crypto_scalarmult_curve25519_base(pk, sk) != 0 || sodium_is_zero(pk, HPKE_PK_LEN))
		return COFFER_ERR_CRYPTO;
	return COFFER_OK;
}

static enum coffer_err extract_and_expand(const unsigned char dhv[HPKE_SECRET_LEN],
					  const unsigned char enc[HPKE_ENC_LEN],
					  const unsigned char pkR[HPKE_PK_LEN],
					  unsigned char shared_secret[HPKE_SECRET_LEN])
{
	unsigned char prk[HKDF_SHA256_LEN];
	unsigned char kem_context[HPKE_ENC_LEN + HPKE_PK_LEN];
	enum coffer_err rc;

	memcpy(kem_context, enc, HPKE_ENC_LEN);
	memcpy(kem_context + HPKE_ENC_LEN, pkR, HPKE_PK_LEN);
	labeled_extract(&kem, NULL, 0, "eae_prk", dhv, HPKE_SECRET_LEN, prk);
	rc = labeled_expand(&kem, prk, "shared_secret", kem_context, sizeof(kem_context),
			    shared_secret, HPKE_SECRET_LEN);
	sodium_memzero(prk, sizeof(prk));
	return rc;
}

static enum coffer_err encap(const unsigned char pkR[HPKE_PK_LEN], const unsigned char skE[HPKE_SK_LEN],
			     unsigned char enc[HPKE_ENC_LEN],
			     unsigned char shared_secret[HPKE_SECRET_LEN])
{
	unsigned char dhv[HPKE_SECRET_LEN];
	unsigned char pkE[HPKE_PK_LEN];
	enum coffer_err rc;

	rc = public_of(skE, pkE);
	if (rc)
		goto out;
	rc = dh(skE, pkR, dhv);
	if (rc)
		goto out;
	rc = extract_and_expand(dhv, pkE, pkR, shared_secret);
	if (rc)
		goto out;
	memcpy(enc, pkE, HPKE_ENC_LEN);
out:
	sodium_memzero(dhv, sizeof(dhv));
	return rc;
}

/* known_pkR: skR's public key when the caller has it (saves a multiplication), else NULL. */
static enum coffer_err decap(const unsigned char enc[HPKE_ENC_LEN], const unsigned char skR[HPKE_SK_LEN],
			     const unsigned char *known_pkR, unsigned char shared_secret[HPKE_SECRET_LEN])
{
	unsigned char dhv[HPKE_SECRET_LEN];
	unsigned char pkR[HPKE_PK_LEN];
	enum coffer_err rc;

	rc = dh(skR, enc, dhv);
	if (rc)
		goto out;
	if (known_pkR)
		memcpy(pkR, known_pkR, HPKE_PK_LEN);
	else
		rc = public_of(skR, pkR);
	if (rc)
		goto out;
	rc = extract_and_expand(dhv, enc, pkR, shared_secret);
out:
	sodium_memzero(dhv, sizeof(dhv));
	return rc;
}

/*
 * psk_id_hash and info_hash of the key schedule context. Both are public
 * and the same for every message of one info (the keeper opens thousands
 * under one), so each thread keeps the last pair: two HMACs fewer a setup.
 */
static void context_hashes(const void *info, size_t info_len, unsigned char psk_id_hash[HPKE_SECRET_LEN],
			   unsigned char info_hash[HPKE_SECRET_LEN])
{
	static _Thread_local struct {
		int set;
		size_t info_len;
		unsigned char info[INFO_CACHE_MAX];
		unsigned char psk_id_hash[HPKE_SECRET_LEN];
		unsigned char info_hash[HPKE_SECRET_LEN];
	} last;

	if (last.set && last.info_len == info_len && (info_len == 0 || memcmp(last.info, info, info_len) == 0)) {
		memcpy(psk_id_hash, last.psk_id_hash, HPKE_SECRET_LEN);
		memcpy(info_hash, last.info_hash, HPKE_SECRET_LEN);
		return;
	}
	labeled_extract(&hpke, NULL, 0, "psk_id_hash", NULL, 0, psk_id_hash);
	labeled_extract(&hpke, NULL, 0, "info_hash", info, info_len, info_hash);
	if (info_len <= INFO_CACHE_MAX) {
		last.set = 1;
		last.info_len = info_len;
		if (info_len)
			memcpy(last.info, info, info_len);
		memcpy(last.psk_id_hash, psk_id_hash, HPKE_SECRET_LEN);
		memcpy(last.info_hash, info_hash, HPKE_SECRET_LEN);
	}
}

/*
 * The key schedule into *ctx (the caller's secure or wiped memory);
 * exporter 0 leaves the exporter secret out (single-shot callers never export).
 */
static enum coffer_err schedule(enum hpke_role role, const unsigned char shared_secret[HPKE_SECRET_LEN],
				const void *info, size_t info_len, int exporter, struct hpke_ctx *ctx,
				struct hpke_kat *kat)
{
	unsigned char ksc[HPKE_KSC_LEN];
	unsigned char secret[HPKE_SECRET_LEN];
	enum coffer_err rc;

	ksc[0] = MODE_BASE;
	context_hashes(info, info_len, ksc + 1, ksc + 1 + HPKE_SECRET_LEN);
	labeled_extract(&hpke, shared_secret, HPKE_SECRET_LEN, "secret", NULL, 0, secret);

	sodium_memzero(ctx, sizeof(*ctx));
	ctx->role = role;
	ctx->seq = 0;
	rc = labeled_expand(&hpke, secret, "key", ksc, sizeof(ksc), ctx->key, HPKE_KEY_LEN);
	if (rc)
		goto out;
	rc = labeled_expand(&hpke, secret, "base_nonce", ksc, sizeof(ksc), ctx->base_nonce,
			    HPKE_NONCE_LEN);
	if (rc)
		goto out;
	if (exporter)
		rc = labeled_expand(&hpke, secret, "exp", ksc, sizeof(ksc), ctx->exporter_secret,
				    HPKE_SECRET_LEN);
	if (rc)
		goto out;
	if (kat) {
		memcpy(kat->shared_secret, shared_secret, HPKE_SECRET_LEN);
		memcpy(kat->key_schedule_context, ksc, HPKE_KSC_LEN);
		memcpy(kat->secret, secret, HPKE_SECRET_LEN);
		memcpy(kat->key, ctx->key, HPKE_KEY_LEN);
		memcpy(kat->base_nonce, ctx->base_nonce, HPKE_NONCE_LEN);
		memcpy(kat->exporter_secret, ctx->exporter_secret, HPKE_SECRET_LEN);
	}
out:
	if (rc)
		sodium_memzero(ctx, sizeof(*ctx));
	sodium_memzero(secret, sizeof(secret));
	sodium_memzero(ksc, sizeof(ksc));
	return rc;
}

/* A context in sodium_malloc memory, for the callers that keep one (hpke_setup_*). */
static enum coffer_err alloc_ctx(struct hpke_ctx **out)
{
	struct hpke_ctx *ctx = sodium_malloc(sizeof(*ctx));
	if (!ctx)
		return COFFER_ERR_NOMEM;
	sodium_memzero(ctx, sizeof(*ctx));
	*out = ctx;
	return COFFER_OK;
}

/* skE NULL: a random ephemeral key (GenerateKeyPair). */
static enum coffer_err setup_s(const unsigned char pkR[HPKE_PK_LEN], const struct secret *ikmE,
			       const void *info, size_t info_len, int exporter, unsigned char enc[HPKE_ENC_LEN],
			       struct hpke_ctx *ctx, struct hpke_kat *kat)
{
	unsigned char skE[HPKE_SK_LEN];
	unsigned char shared_secret[HPKE_SECRET_LEN];
	unsigned char e[HPKE_ENC_LEN];
	enum coffer_err rc;

	if (info_len && !info)
		return COFFER_ERR_INVALID;
	if (ikmE) {
		if (secret_len(ikmE) < HPKE_IKM_MIN_LEN)
			return COFFER_ERR_INVALID;
		rc = derive_sk(secret_cbytes(ikmE), secret_len(ikmE), skE);
		if (rc)
			goto out;
	} else {
		randombytes_buf(skE, sizeof(skE));
	}
	rc = encap(pkR, skE, e, shared_secret);
	if (rc)
		goto out;
	rc = schedule(HPKE_SENDER, shared_secret, info, info_len, exporter, ctx, kat);
	if (rc)
		goto out;
	memcpy(enc, e, HPKE_ENC_LEN);
out:
	sodium_memzero(shared_secret, sizeof(shared_secret));
	sodium_memzero(skE, sizeof(skE));
	return rc;
}

/* pkR: skR's public key, or NULL to compute it. */
static enum coffer_err setup_r(const unsigned char enc[HPKE_ENC_LEN], const struct secret *skR,
			       const unsigned char *pkR, const void *info, size_t info_len, int exporter,
			       struct hpke_ctx *ctx, struct hpke_kat *kat)
{
	unsigned char shared_secret[HPKE_SECRET_LEN];
	enum coffer_err rc;

	if ((info_len && !info) || secret_len(skR) != HPKE_SK_LEN)
		return COFFER_ERR_INVALID;
	rc = decap(enc, secret_cbytes(skR), pkR, shared_secret);
	if (rc)
		goto out;
	rc = schedule(HPKE_RECEIVER, shared_secret, info, info_len, exporter, ctx, kat);
out:
	sodium_memzero(shared_secret, sizeof(shared_secret));
	return rc;
}

/* setup_s or setup_r into a new context in sodium_malloc memory. */
static enum coffer_err setup_alloc(int sender, const unsigned char key[HPKE_PK_LEN], const struct secret *ikmE,
				   const struct secret *skR, const void *info, size_t info_len,
				   unsigned char enc[HPKE_ENC_LEN], struct hpke_ctx **out, struct hpke_kat *kat)
{
	struct hpke_ctx *ctx = NULL;
	enum coffer_err rc = alloc_ctx(&ctx);
	if (rc)
		return rc;
	if (sender)
		rc = setup_s(key, ikmE, info, info_len, 1, enc, ctx, kat);
	else
		rc = setup_r(key, skR, NULL, info, info_len, 1, ctx, kat);
	if (rc) {
		hpke_ctx_free(ctx);
		return rc;
	}
	*out = ctx;
	return COFFER_OK;
}

enum coffer_err hpke_derive_keypair(const struct secret *ikm, struct secret **sk,
				    unsigned char pk[HPKE_PK_LEN])
{
	struct secret *key = NULL;
	unsigned char p[HPKE_PK_LEN];
	enum coffer_err rc;

	if (secret_len(ikm) < HPKE_IKM_MIN_LEN)
		return COFFER_ERR_INVALID;
	rc = secret_new(HPKE_SK_LEN, &key);
	if (rc)
		goto out;
	rc = derive_sk(secret_cbytes(ikm), secret_len(ikm), secret_bytes(key));
	if (rc)
		goto out;
	rc = public_of(secret_cbytes(key), p);
	if (rc)
		goto out;
	memcpy(pk, p, HPKE_PK_LEN);
	*sk = key;
	key = NULL;
out:
	secret_free(key);
	return rc;
}

enum coffer_err hpke_generate_keypair(struct secret **sk, unsigned char pk[HPKE_PK_LEN])
{
	struct secret *key = NULL;
	unsigned char p[HPKE_PK_LEN];
	enum coffer_err rc;

	rc = secret_new(HPKE_SK_LEN, &key);
	if (rc)
		goto out;
	randombytes_buf(secret_bytes(key), HPKE_SK_LEN);
	rc = public_of(secret_cbytes(key), p);
	if (rc)
		goto out;
	memcpy(pk, p, HPKE_PK_LEN);
	*sk = key;
	key = NULL;
out:
	secret_free(key);
	return rc;
}

enum coffer_err hpke_public_key(const struct secret *sk, unsigned char pk[HPKE_PK_LEN])
{
	if (secret_len(sk) != HPKE_SK_LEN)
		return COFFER_ERR_INVALID;
	return public_of(secret_cbytes(sk), pk);
}

enum coffer_err hpke_setup_s(const unsigned char pkR[HPKE_PK_LEN], const void *info, size_t info_len,
			     unsigned char enc[HPKE_ENC_LEN], struct hpke_ctx **ctx)
{
	return setup_alloc(1, pkR, NULL, NULL, info, info_len, enc, ctx, NULL);
}

enum coffer_err hpke_setup_s_derand(const unsigned char pkR[HPKE_PK_LEN], const struct secret *ikmE,
				    const void *info, size_t info_len,
				    unsigned char enc[HPKE_ENC_LEN], struct hpke_ctx **ctx,
				    struct hpke_kat *kat)
{
	if (!ikmE)
		return COFFER_ERR_INVALID;
	return setup_alloc(1, pkR, ikmE, NULL, info, info_len, enc, ctx, kat);
}

enum coffer_err hpke_setup_r(const unsigned char enc[HPKE_ENC_LEN], const struct secret *skR,
			     const void *info, size_t info_len, struct hpke_ctx **ctx)
{
	return setup_alloc(0, enc, NULL, skR, info, info_len, NULL, ctx, NULL);
}

enum coffer_err hpke_setup_r_kat(const unsigned char enc[HPKE_ENC_LEN], const struct secret *skR,
				 const void *info, size_t info_len, struct hpke_ctx **ctx,
				 struct hpke_kat *kat)
{
	return setup_alloc(0, enc, NULL, skR, info, info_len, NULL, ctx, kat);
}

void hpke_ctx_free(struct hpke_ctx *ctx)
{
	if (ctx)
		sodium_free(ctx); /* wipes */
}

enum hpke_role hpke_ctx_role(const struct hpke_ctx *ctx)
{
	return ctx->role;
}

uint64_t hpke_ctx_seq(const struct hpke_ctx *ctx)
{
	return ctx->seq;
}

enum coffer_err hpke_ctx_advance(struct hpke_ctx *ctx, uint64_t seq)
{
	if (seq < ctx->seq)
		return COFFER_ERR_INVALID;
	ctx->seq = seq;
	return COFFER_OK;
}

/* nonce = base_nonce XOR I2OSP(seq, Nn) */
static void message_nonce(const struct hpke_ctx *ctx, unsigned char nonce[HPKE_NONCE_LEN])
{
	memcpy(nonce, ctx->base_nonce, HPKE_NONCE_LEN);
	for (size_t i = 0; i < sizeof(ctx->seq); i++)
		nonce[HPKE_NONCE_LEN - 1 - i] ^= (unsigned char)(ctx->seq >> (8 * i));
}

/* Appends Seal(aad, pt) to b; the sequence moves on only on success. */
static enum coffer_err seal_append(struct hpke_ctx *ctx, const void *aad, size_t aad_len,
				   const struct secret *pt, struct buf *b)
{
	unsigned char nonce[HPKE_NONCE_LEN];
	unsigned long long ct_len = 0;
	size_t pt_len = secret_len(pt);
	enum coffer_err rc;

	if (ctx->role != HPKE_SENDER)
		return COFFER_ERR_USAGE;
	if (aad_len && !aad)
		return COFFER_ERR_INVALID;
	if (ctx->seq >= SEQ_LIMIT)
		return COFFER_ERR_TOO_LARGE;
	if (pt_len > crypto_aead_chacha20poly1305_ietf_MESSAGEBYTES_MAX ||
	    pt_len > SIZE_MAX - HPKE_TAG_LEN)
		return COFFER_ERR_TOO_LARGE;
	rc = buf_grow(b, pt_len + HPKE_TAG_LEN);
	if (rc)
		return rc;
	message_nonce(ctx, nonce);
	crypto_aead_chacha20poly1305_ietf_encrypt((unsigned char *)b->ptr + b->len, &ct_len,
						  secret_cbytes(pt), pt_len, aad, aad_len, NULL,
						  nonce, ctx->key);
	b->len += (size_t)ct_len;
	b->ptr[b->len] = '\0';
	ctx->seq++;
	return COFFER_OK;
}

enum coffer_err hpke_ctx_seal(struct hpke_ctx *ctx, const void *aad, size_t aad_len,
			      const struct secret *pt, struct buf *ct)
{
	struct buf tmp;
	enum coffer_err rc;

	buf_init(&tmp, ct->max);
	rc = seal_append(ctx, aad, aad_len, pt, &tmp);
	if (rc)
		goto out;
	buf_release(ct);
	*ct = tmp;
	buf_init(&tmp, ct->max);
out:
	buf_release(&tmp);
	return rc;
}

/* Open(aad, ct) into pt, exactly ct_len - HPKE_TAG_LEN bytes; pt is wiped on failure. */
static enum coffer_err open_into(struct hpke_ctx *ctx, const void *aad, size_t aad_len, const void *ct,
				 size_t ct_len, unsigned char *pt)
{
	unsigned char nonce[HPKE_NONCE_LEN];
	unsigned long long pt_len = 0;

	if (ctx->role != HPKE_RECEIVER)
		return COFFER_ERR_USAGE;
	if ((aad_len && !aad) || ct_len < HPKE_TAG_LEN || !ct)
		return COFFER_ERR_INVALID;
	if (ctx->seq >= SEQ_LIMIT)
		return COFFER_ERR_TOO_LARGE;
	message_nonce(ctx, nonce);
	if (crypto_aead_chacha20poly1305_ietf_decrypt(pt, &pt_len, NULL, ct, ct_len, aad, aad_len, nonce,
						      ctx->key) != 0 ||
	    pt_len != ct_len - HPKE_TAG_LEN) {
		sodium_memzero(pt, ct_len - HPKE_TAG_LEN);
		return COFFER_ERR_CRYPTO;
	}
	ctx->seq++;
	return COFFER_OK;
}

enum coffer_err hpke_ctx_open(struct hpke_ctx *ctx, const void *aad, size_t aad_len, const void *ct,
			      size_t ct_len, struct secret **pt)
{
	struct secret *p = NULL;
	enum coffer_err rc;

	if (ctx->role != HPKE_RECEIVER)
		return COFFER_ERR_USAGE;
	if ((aad_len && !aad) || ct_len < HPKE_TAG_LEN || !ct)
		return COFFER_ERR_INVALID;
	rc = secret_new(ct_len - HPKE_TAG_LEN, &p);
	if (rc)
		goto out;
	rc = open_into(ctx, aad, aad_len, ct, ct_len, secret_bytes(p));
	if (rc)
		goto out;
	*pt = p;
	p = NULL;
out:
	secret_free(p);
	return rc;
}

enum coffer_err hpke_ctx_export(const struct hpke_ctx *ctx, const void *exporter_context,
				size_t exporter_context_len, size_t len, struct secret **out)
{
	struct secret *s = NULL;
	enum coffer_err rc;

	if ((exporter_context_len && !exporter_context) || len == 0 || len > HPKE_EXPORT_MAX)
		return COFFER_ERR_INVALID;
	rc = secret_new(len, &s);
	if (rc)
		goto out;
	rc = labeled_expand(&hpke, ctx->exporter_secret, "sec", exporter_context,
			    exporter_context_len, secret_bytes(s), len);
	if (rc)
		goto out;
	*out = s;
	s = NULL;
out:
	secret_free(s);
	return rc;
}

enum coffer_err hpke_seal(const unsigned char pkR[HPKE_PK_LEN], const void *info, size_t info_len,
			  const void *aad, size_t aad_len, const struct secret *pt, struct buf *out)
{
	unsigned char enc[HPKE_ENC_LEN];
	struct hpke_ctx ctx; /* on the stack, wiped: no secure allocation per seal */
	struct buf tmp;
	enum coffer_err rc;

	buf_init(&tmp, out->max);
	rc = setup_s(pkR, NULL, info, info_len, 0, enc, &ctx, NULL);
	if (rc)
		goto out;
	rc = buf_add(&tmp, enc, sizeof(enc));
	if (rc)
		goto out;
	rc = seal_append(&ctx, aad, aad_len, pt, &tmp);
	if (rc)
		goto out;
	buf_release(out);
	*out = tmp;
	buf_init(&tmp, out->max);
out:
	buf_release(&tmp);
	sodium_memzero(&ctx, sizeof(ctx));
	return rc;
}

enum coffer_err hpke_open_into(const struct secret *skR, const unsigned char *pkR, const void *info,
			       size_t info_len, const void *aad, size_t aad_len, const void *in, size_t in_len,
			       struct secret *pt)
{
	const unsigned char *p = in;
	struct hpke_ctx ctx; /* on the stack, wiped: no secure allocation per open */
	enum coffer_err rc;

	if (!pt)
		return COFFER_ERR_INVALID;
	sodium_memzero(&ctx, sizeof(ctx));
	if (!in || in_len < HPKE_ENC_LEN + HPKE_TAG_LEN || secret_len(pt) != in_len - HPKE_ENC_LEN - HPKE_TAG_LEN)
		rc = COFFER_ERR_INVALID;
	else
		rc = setup_r(p, skR, pkR, info, info_len, 0, &ctx, NULL);
	if (!rc)
		rc = open_into(&ctx, aad, aad_len, p + HPKE_ENC_LEN, in_len - HPKE_ENC_LEN, secret_bytes(pt));
	if (rc)
		sodium_memzero(secret_bytes(pt), secret_len(pt));
	sodium_memzero(&ctx, sizeof(ctx));
	return rc;
}

enum coffer_err hpke_open(const struct secret *skR, const void *info, size_t info_len,
			  const void *aad, size_t aad_len, const void *in, size_t in_len,
			  struct secret **pt)
{
	struct secret *p = NULL;
	enum coffer_err rc;

	if (!in || in_len < HPKE_ENC_LEN + HPKE_TAG_LEN)
		return COFFER_ERR_INVALID;
	rc = secret_new(in_len - HPKE_ENC_LEN - HPKE_TAG_LEN, &p);
	if (rc)
		goto out;
	rc = hpke_open_into(skR, NULL, info, info_len, aad, aad_len, in, in_len, p);
	if (rc)
		goto out;
	*pt = p;
	p = NULL;
out:
	secret_free(p);
	return rc;
}
