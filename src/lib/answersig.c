/* answersig.c — the api's signature over its answers to agents (answersig.h). */
#include <string.h>

#include <sodium.h>

#include "answersig.h"
#include "buf.h"
#include "encode.h"
#include "banned.h"

#define CONTEXT "coffer-answer-v1\n"
#define MESSAGE_MAX 512

_Static_assert(ANSWERSIG_PK_LEN == crypto_sign_ed25519_PUBLICKEYBYTES, "an Ed25519 public key");
_Static_assert(ANSWERSIG_SK_LEN == crypto_sign_ed25519_SECRETKEYBYTES, "an Ed25519 secret key");

static enum coffer_err message(const char *host_id, const char *nonce, int status, const void *body, size_t len,
			       struct buf *out)
{
	unsigned char digest[crypto_hash_sha256_BYTES];
	char hex[crypto_hash_sha256_BYTES * 2 + 1];
	if (!host_id || !*host_id || !nonce || !*nonce || strchr(host_id, '\n') || strchr(nonce, '\n') ||
	    status < 100 || status > 599 || (!body && len))
		return COFFER_ERR_INVALID;
	crypto_hash_sha256(digest, body ? body : (const void *)"", len);
	sodium_bin2hex(hex, sizeof(hex), digest, sizeof(digest));
	return buf_addf(out, "%s%s\n%s\n%d\n%s", CONTEXT, host_id, nonce, status, hex);
}

enum coffer_err answersig_sign(const struct secret *sk, const char *host_id, const char *nonce, int status,
			       const void *body, size_t body_len, char out[ANSWERSIG_B64_SIZE])
{
	unsigned char sig[crypto_sign_ed25519_BYTES];
	struct buf msg;
	enum coffer_err rc = COFFER_ERR_INVALID;

	buf_init(&msg, MESSAGE_MAX);
	if (sk && secret_len(sk) == ANSWERSIG_SK_LEN)
		rc = message(host_id, nonce, status, body, body_len, &msg);
	if (!rc && crypto_sign_ed25519_detached(sig, NULL, (const unsigned char *)msg.ptr, msg.len,
						secret_cbytes(sk)) != 0)
		rc = COFFER_ERR_CRYPTO;
	if (!rc)
		sodium_bin2base64(out, ANSWERSIG_B64_SIZE, sig, sizeof(sig), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	buf_release(&msg);
	return rc;
}

enum coffer_err answersig_verify(const unsigned char pk[ANSWERSIG_PK_LEN], const char *host_id, const char *nonce,
				 int status, const void *body, size_t body_len, const char *sig)
{
	unsigned char raw[crypto_sign_ed25519_BYTES];
	size_t n = 0;
	struct buf msg;
	enum coffer_err rc = COFFER_ERR_CRYPTO;

	/* the one strict decoder: one spelling per signature */
	if (!sig || strlen(sig) != ANSWERSIG_B64_LEN ||
	    b64_decode_into(B64_URL, sig, ANSWERSIG_B64_LEN, raw, sizeof(raw), &n) != COFFER_OK || n != sizeof(raw))
		return COFFER_ERR_CRYPTO;
	buf_init(&msg, MESSAGE_MAX);
	if (message(host_id, nonce, status, body, body_len, &msg) == COFFER_OK &&
	    crypto_sign_ed25519_verify_detached(raw, (const unsigned char *)msg.ptr, msg.len, pk) == 0)
		rc = COFFER_OK;
	buf_release(&msg);
	return rc;
}
