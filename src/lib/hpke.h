/*
 * hpke.h — HPKE (RFC 9180), mode_base only, one suite:
 *   KEM  DHKEM(X25519, HKDF-SHA256)  kem_id  0x0020
 *   KDF  HKDF-SHA256                 kdf_id  0x0001
 *   AEAD ChaCha20-Poly1305           aead_id 0x0003
 * built on libsodium (X25519, HMAC-SHA256 through hkdf.h, ChaCha20-Poly1305-IETF).
 *
 * Construction, exactly as the RFC:
 *   LabeledExtract(salt, label, ikm)   = Extract(salt, "HPKE-v1" || suite_id || label || ikm)
 *   LabeledExpand(prk, label, info, L) = Expand(prk, I2OSP(L, 2) || "HPKE-v1" || suite_id
 *                                              || label || info, L)
 *   KEM suite_id  = "KEM"  || 0x0020
 *   HPKE suite_id = "HPKE" || 0x0020 || 0x0001 || 0x0003
 *   DeriveKeyPair(ikm): sk = LabeledExpand(LabeledExtract("", "dkp_prk", ikm), "sk", "", 32)
 *   Encap/Decap: dh = X25519(sk, pk), refused if all zero (§7.1.4);
 *     shared_secret = LabeledExpand(LabeledExtract("", "eae_prk", dh), "shared_secret",
 *                                   enc || pkR, 32)
 *   KeySchedule: context = 0x00 || LabeledExtract("", "psk_id_hash", "")
 *                               || LabeledExtract("", "info_hash", info)
 *     secret = LabeledExtract(shared_secret, "secret", "")
 *     key = LabeledExpand(secret, "key", context, 32)
 *     base_nonce = LabeledExpand(secret, "base_nonce", context, 12)
 *     exporter_secret = LabeledExpand(secret, "exp", context, 32)
 *   message seq: nonce = base_nonce XOR I2OSP(seq, 12); seq starts at 0 and
 *     counts successful seals (sender) or opens (receiver).
 *   Export(ctx, L) = LabeledExpand(exporter_secret, "sec", exporter_context, L)
 *
 * Wire layout of the single-shot form: enc (32) || ciphertext || tag (16).
 *
 * Ownership: private keys are struct secret (32 raw bytes, as DeriveKeyPair
 * gives them; X25519 clamps on use); public keys and enc are plain 32-byte
 * arrays. A struct hpke_ctx lives in sodium_malloc memory and hpke_ctx_free
 * wipes it. Plaintexts come in and go out as struct secret; ciphertexts go
 * out in a caller's struct buf, replaced only on success and bounded by its max.
 *
 * Errors: COFFER_ERR_INVALID for malformed input (wrong sizes, truncated
 * ciphertext), COFFER_ERR_CRYPTO for a failed open or a refused DH output,
 * COFFER_ERR_TOO_LARGE when a context's sequence is used up or a size passes
 * a limit, COFFER_ERR_USAGE for a receiver context used to seal or back.
 */
#ifndef COFFER_HPKE_H
#define COFFER_HPKE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "secret.h"

#define HPKE_KEM_ID 0x0020
#define HPKE_KDF_ID 0x0001
#define HPKE_AEAD_ID 0x0003

#define HPKE_PK_LEN 32     /* Npk */
#define HPKE_SK_LEN 32     /* Nsk */
#define HPKE_ENC_LEN 32    /* Nenc */
#define HPKE_SECRET_LEN 32 /* Nsecret = Nh */
#define HPKE_KEY_LEN 32    /* Nk */
#define HPKE_NONCE_LEN 12  /* Nn */
#define HPKE_TAG_LEN 16    /* Nt */
#define HPKE_KSC_LEN (1 + 2 * HPKE_SECRET_LEN) /* key_schedule_context */
#define HPKE_EXPORT_MAX (255 * HPKE_SECRET_LEN)
#define HPKE_IKM_MIN_LEN HPKE_SK_LEN /* DeriveKeyPair wants at least Nsk bytes */

enum hpke_role { HPKE_SENDER, HPKE_RECEIVER };

struct hpke_ctx;

/* DeriveKeyPair(ikm): ikm of at least HPKE_IKM_MIN_LEN bytes. */
COFFER_MUST_CHECK enum coffer_err hpke_derive_keypair(const struct secret *ikm,
						      struct secret **sk,
						      unsigned char pk[HPKE_PK_LEN]);
/* A fresh random key pair. */
COFFER_MUST_CHECK enum coffer_err hpke_generate_keypair(struct secret **sk,
							unsigned char pk[HPKE_PK_LEN]);
/* The public key of a private key. */
COFFER_MUST_CHECK enum coffer_err hpke_public_key(const struct secret *sk,
						  unsigned char pk[HPKE_PK_LEN]);

/* SetupBaseS(pkR, info) with a random ephemeral key: writes enc and *ctx. */
COFFER_MUST_CHECK enum coffer_err hpke_setup_s(const unsigned char pkR[HPKE_PK_LEN],
					       const void *info, size_t info_len,
					       unsigned char enc[HPKE_ENC_LEN],
					       struct hpke_ctx **ctx);
/* SetupBaseR(enc, skR, info). */
COFFER_MUST_CHECK enum coffer_err hpke_setup_r(const unsigned char enc[HPKE_ENC_LEN],
					       const struct secret *skR, const void *info,
					       size_t info_len, struct hpke_ctx **ctx);
/* Wipes and frees; NULL is allowed. */
void hpke_ctx_free(struct hpke_ctx *ctx);

enum hpke_role hpke_ctx_role(const struct hpke_ctx *ctx);
/* The sequence number the next seal or open will use. */
uint64_t hpke_ctx_seq(const struct hpke_ctx *ctx);
/*
 * Moves the sequence forward to seq (a receiver that knows a message's
 * number; tests). Never backwards, so a sender cannot reuse a nonce:
 * COFFER_ERR_INVALID if seq is below the current one.
 */
COFFER_MUST_CHECK enum coffer_err hpke_ctx_advance(struct hpke_ctx *ctx, uint64_t seq);

/* ContextS.Seal: ct (ciphertext || tag) replaces the content of *ct. The
 * sequence moves on only on success; UINT64_MAX is never used. */
COFFER_MUST_CHECK enum coffer_err hpke_ctx_seal(struct hpke_ctx *ctx, const void *aad,
						size_t aad_len, const struct secret *pt,
						struct buf *ct);
/* ContextR.Open. */
COFFER_MUST_CHECK enum coffer_err hpke_ctx_open(struct hpke_ctx *ctx, const void *aad,
						size_t aad_len, const void *ct, size_t ct_len,
						struct secret **pt);
/* Context.Export(exporter_context, len), len 1..HPKE_EXPORT_MAX. */
COFFER_MUST_CHECK enum coffer_err hpke_ctx_export(const struct hpke_ctx *ctx,
						  const void *exporter_context,
						  size_t exporter_context_len, size_t len,
						  struct secret **out);

/* Single shot: out = enc || Seal(seq 0). */
COFFER_MUST_CHECK enum coffer_err hpke_seal(const unsigned char pkR[HPKE_PK_LEN],
					    const void *info, size_t info_len, const void *aad,
					    size_t aad_len, const struct secret *pt,
					    struct buf *out);
/* Single shot: in = enc || ciphertext || tag. */
COFFER_MUST_CHECK enum coffer_err hpke_open(const struct secret *skR, const void *info,
					    size_t info_len, const void *aad, size_t aad_len,
					    const void *in, size_t in_len, struct secret **pt);

/*
 * Single shot into the caller's secret pt, which must be exactly
 * in_len - HPKE_ENC_LEN - HPKE_TAG_LEN bytes (a carved secret_arena secret,
 * say): no secure allocation, the context on the stack and wiped. pkR is
 * skR's public key when the caller holds it (one X25519 fewer per open; a
 * wrong one only makes the open fail), or NULL. pt is wiped on failure.
 */
COFFER_MUST_CHECK enum coffer_err hpke_open_into(const struct secret *skR, const unsigned char *pkR,
						 const void *info, size_t info_len, const void *aad,
						 size_t aad_len, const void *in, size_t in_len,
						 struct secret *pt);

/*
 * Known-answer hooks, for the tests that reproduce RFC 9180's vectors and
 * for nothing else. hpke_setup_s_derand is SetupBaseS with the ephemeral key
 * DeriveKeyPair(ikmE). Both fill *kat (when not NULL) with the intermediate
 * values of the setup; kat holds secrets and the caller wipes it.
 */
struct hpke_kat {
	unsigned char shared_secret[HPKE_SECRET_LEN];
	unsigned char key_schedule_context[HPKE_KSC_LEN];
	unsigned char secret[HPKE_SECRET_LEN];
	unsigned char key[HPKE_KEY_LEN];
	unsigned char base_nonce[HPKE_NONCE_LEN];
	unsigned char exporter_secret[HPKE_SECRET_LEN];
};

COFFER_MUST_CHECK enum coffer_err hpke_setup_s_derand(const unsigned char pkR[HPKE_PK_LEN],
						      const struct secret *ikmE,
						      const void *info, size_t info_len,
						      unsigned char enc[HPKE_ENC_LEN],
						      struct hpke_ctx **ctx, struct hpke_kat *kat);
COFFER_MUST_CHECK enum coffer_err hpke_setup_r_kat(const unsigned char enc[HPKE_ENC_LEN],
						   const struct secret *skR, const void *info,
						   size_t info_len, struct hpke_ctx **ctx,
						   struct hpke_kat *kat);

#endif
