#include "jws.h"

#include <sodium.h>
#include <stdint.h>
#include <string.h>

#include "encode.h"

#include "banned.h"

#define ALG "EdDSA"
#define SIG_B64_LEN B64URL_LEN(JWS_SIG_LEN)
#define HEADER_B64_MAX B64URL_LEN(JWS_HEADER_MAX)
#define SEGMENTS 3
#define B64URL_SLACK 3 /* b64url_decode asks for up to 3 bytes more than it writes */

/* [A-Za-z0-9._-]{1,JWS_KID_MAX}: needs no JSON escaping. */
static int kid_ok(const char *kid, size_t len)
{
	if (len == 0 || len > JWS_KID_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = kid[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

/* The 64-byte libsodium key of a seed or of a 64-byte key whose public half
 * matches its seed. */
static enum coffer_err full_key(const struct secret *sk, unsigned char full[JWS_SK_LEN],
				unsigned char pk[JWS_PK_LEN])
{
	unsigned char seed[JWS_SEED_LEN];
	enum coffer_err rc = COFFER_OK;

	if (secret_len(sk) == JWS_SEED_LEN) {
		memcpy(seed, secret_cbytes(sk), JWS_SEED_LEN);
	} else if (secret_len(sk) == JWS_SK_LEN) {
		crypto_sign_ed25519_sk_to_seed(seed, secret_cbytes(sk));
	} else {
		return COFFER_ERR_INVALID;
	}
	if (crypto_sign_ed25519_seed_keypair(pk, full, seed) != 0) {
		rc = COFFER_ERR_CRYPTO;
		goto out;
	}
	if (secret_len(sk) == JWS_SK_LEN &&
	    !ct_equal(secret_cbytes(sk) + JWS_SEED_LEN, pk, JWS_PK_LEN)) {
		rc = COFFER_ERR_INVALID;
		goto out;
	}
out:
	if (rc)
		sodium_memzero(full, JWS_SK_LEN);
	sodium_memzero(seed, sizeof(seed));
	return rc;
}

enum coffer_err jws_key_from_seed(const struct secret *seed, struct secret **sk,
				  unsigned char pk[JWS_PK_LEN])
{
	struct secret *key = NULL;
	unsigned char p[JWS_PK_LEN];
	enum coffer_err rc;

	if (secret_len(seed) != JWS_SEED_LEN)
		return COFFER_ERR_INVALID;
	rc = secret_new(JWS_SK_LEN, &key);
	if (rc)
		goto out;
	rc = full_key(seed, secret_bytes(key), p);
	if (rc)
		goto out;
	memcpy(pk, p, JWS_PK_LEN);
	*sk = key;
	key = NULL;
out:
	secret_free(key);
	return rc;
}

enum coffer_err jws_generate_key(struct secret **sk, unsigned char pk[JWS_PK_LEN])
{
	struct secret *seed = NULL;
	enum coffer_err rc;

	rc = secret_new(JWS_SEED_LEN, &seed);
	if (rc)
		return rc;
	randombytes_buf(secret_bytes(seed), JWS_SEED_LEN);
	rc = jws_key_from_seed(seed, sk, pk);
	secret_free(seed);
	return rc;
}

enum coffer_err jws_public_key(const struct secret *sk, unsigned char pk[JWS_PK_LEN])
{
	unsigned char full[JWS_SK_LEN];
	unsigned char p[JWS_PK_LEN];
	enum coffer_err rc;

	rc = full_key(sk, full, p);
	sodium_memzero(full, sizeof(full));
	if (rc)
		return rc;
	memcpy(pk, p, JWS_PK_LEN);
	return COFFER_OK;
}

/* Appends BASE64URL(data) to b. */
static enum coffer_err add_b64url(struct buf *b, const void *data, size_t len)
{
	struct buf enc;
	enum coffer_err rc;

	buf_init(&enc, b->max);
	rc = b64url_encode(data, len, &enc);
	if (!rc)
		rc = buf_add(b, enc.ptr, enc.len);
	buf_release(&enc);
	return rc;
}

enum coffer_err jws_sign(const struct secret *sk, const char *kid, const void *payload,
			 size_t payload_len, struct buf *out)
{
	unsigned char full[JWS_SK_LEN];
	unsigned char pk[JWS_PK_LEN];
	unsigned char sig[JWS_SIG_LEN];
	struct buf header, tok;
	enum coffer_err rc;

	buf_init(&header, JWS_HEADER_MAX);
	buf_init(&tok, out->max < JWS_TOKEN_MAX ? out->max : JWS_TOKEN_MAX);
	if ((kid && !kid_ok(kid, strnlen(kid, JWS_KID_MAX + 1))) || (payload_len && !payload)) {
		rc = COFFER_ERR_INVALID;
		goto out;
	}
	rc = full_key(sk, full, pk);
	if (rc)
		goto out;

	if (kid)
		rc = buf_addf(&header, "{\"alg\":\"" ALG "\",\"kid\":\"%s\"}", kid);
	else
		rc = buf_adds(&header, "{\"alg\":\"" ALG "\"}");
	if (rc)
		goto out;
	if ((rc = add_b64url(&tok, header.ptr, header.len)) || (rc = buf_addch(&tok, '.')) ||
	    (rc = add_b64url(&tok, payload, payload_len)))
		goto out;
	crypto_sign_ed25519_detached(sig, NULL, (const unsigned char *)tok.ptr, tok.len, full);
	if ((rc = buf_addch(&tok, '.')) || (rc = add_b64url(&tok, sig, sizeof(sig))))
		goto out;

	size_t max = out->max;
	buf_release(out);
	*out = tok;
	out->max = max;
	buf_init(&tok, max);
out:
	sodium_memzero(full, sizeof(full));
	buf_release(&tok);
	buf_release(&header);
	return rc;
}

/* A decoded header: a JSON object with alg "EdDSA" and nothing else but an
 * optional kid and typ. */
static enum coffer_err check_header(const char *h, size_t len)
{
	enum coffer_err rc = COFFER_ERR_INVALID;
	json_error_t err;
	const char *name;
	json_t *value;
	int have_alg = 0;

	json_t *obj = json_loadb(h, len, JSON_REJECT_DUPLICATES, &err);
	if (!obj || !json_is_object(obj))
		goto out;
	json_object_foreach(obj, name, value) {
		if (!json_is_string(value))
			goto out;
		const char *s = json_string_value(value);
		size_t n = json_string_length(value);
		if (strcmp(name, "alg") == 0) {
			if (n != strlen(ALG) || memcmp(s, ALG, n) != 0)
				goto out;
			have_alg = 1;
		} else if (strcmp(name, "kid") == 0) {
			if (!kid_ok(s, n))
				goto out;
		} else if (strcmp(name, "typ") == 0) {
			if (n == 0 || n > JWS_TYP_MAX || memchr(s, '\0', n))
				goto out;
		} else {
			goto out; /* crit, jwk, jku, x5u, b64, ...: refused */
		}
	}
	if (have_alg)
		rc = COFFER_OK;
out:
	json_decref(obj);
	return rc;
}

enum coffer_err jws_verify_sig(const unsigned char pk[JWS_PK_LEN], const char *token,
			       size_t token_len, struct buf *payload)
{
	const char *dot[SEGMENTS - 1];
	struct buf header, body, sig;
	enum coffer_err rc = COFFER_ERR_INVALID;
	size_t ndots = 0;

	/* room for the decoder's slack; the decoded lengths are checked */
	buf_init(&header, JWS_HEADER_MAX + B64URL_SLACK);
	buf_init(&body, JWS_TOKEN_MAX);
	buf_init(&sig, JWS_SIG_LEN + B64URL_SLACK);
	if (!token || token_len == 0 || token_len > JWS_TOKEN_MAX)
		goto out;
	for (size_t i = 0; i < token_len; i++) {
		if (token[i] != '.')
			continue;
		if (ndots == SEGMENTS - 1)
			goto out; /* a fourth segment */
		dot[ndots++] = token + i;
	}
	if (ndots != SEGMENTS - 1)
		goto out;

	const char *h = token, *p = dot[0] + 1, *s = dot[1] + 1;
	size_t h_len = (size_t)(dot[0] - h), p_len = (size_t)(dot[1] - p);
	size_t s_len = (size_t)(token + token_len - s);

	if (h_len == 0 || h_len > HEADER_B64_MAX || s_len != SIG_B64_LEN)
		goto out;
	if ((rc = b64url_decode(h, h_len, &header)) || (rc = check_header(header.ptr, header.len)) ||
	    (rc = b64url_decode(s, s_len, &sig)) || (rc = b64url_decode(p, p_len, &body))) {
		rc = rc == COFFER_ERR_NOMEM ? rc : COFFER_ERR_INVALID;
		goto out;
	}
	if (header.len > JWS_HEADER_MAX || sig.len != JWS_SIG_LEN) {
		rc = COFFER_ERR_INVALID;
		goto out;
	}
	if (body.len > payload->max) {
		rc = COFFER_ERR_TOO_LARGE;
		goto out;
	}
	if (crypto_sign_ed25519_verify_detached((const unsigned char *)sig.ptr,
						(const unsigned char *)token, (size_t)(dot[1] - token),
						pk) != 0) {
		rc = COFFER_ERR_CRYPTO;
		goto out;
	}
	size_t max = payload->max;
	buf_release(payload);
	*payload = body;
	payload->max = max;
	buf_init(&body, max);
	rc = COFFER_OK;
out:
	buf_release(&sig);
	buf_release(&body);
	buf_release(&header);
	return rc;
}

/* An optional integer claim: 0 absent, 1 present (in *v), -1 malformed. */
static int int_claim(json_t *obj, const char *name, int64_t *v)
{
	json_t *c = json_object_get(obj, name);
	if (!c)
		return 0;
	if (!json_is_integer(c))
		return -1;
	*v = (int64_t)json_integer_value(c);
	return 1;
}

enum coffer_err jws_verify_claims(const void *payload, size_t payload_len, int64_t now,
				  json_t **claims)
{
	enum coffer_err rc = COFFER_ERR_INVALID;
	json_error_t err;
	int64_t exp = 0, nbf = 0, iat = 0;
	int has_exp, has_nbf, has_iat;
	json_t *obj = NULL;

	if (!payload || payload_len == 0 || payload_len > JWS_TOKEN_MAX)
		goto out;
	obj = json_loadb(payload, payload_len, JSON_REJECT_DUPLICATES, &err);
	if (!obj || !json_is_object(obj))
		goto out;
	has_exp = int_claim(obj, "exp", &exp);
	has_nbf = int_claim(obj, "nbf", &nbf);
	has_iat = int_claim(obj, "iat", &iat);
	if (has_exp < 0 || has_nbf < 0 || has_iat < 0)
		goto out;
	if (has_exp && has_iat && exp < iat)
		goto out;
	/* now + skew, saturated */
	int64_t later = now > INT64_MAX - JWS_CLOCK_SKEW_S ? INT64_MAX : now + JWS_CLOCK_SKEW_S;
	if ((has_exp && exp <= now) || (has_nbf && nbf > later) || (has_iat && iat > later)) {
		rc = COFFER_ERR_UNAUTH;
		goto out;
	}
	rc = COFFER_OK;
	if (claims) {
		*claims = obj;
		obj = NULL;
	}
out:
	json_decref(obj);
	return rc;
}

enum coffer_err jws_verify(const unsigned char pk[JWS_PK_LEN], const char *token, size_t token_len,
			   int64_t now, struct buf *payload)
{
	struct buf body;
	enum coffer_err rc;

	buf_init(&body, payload->max);
	rc = jws_verify_sig(pk, token, token_len, &body);
	if (rc)
		goto out;
	/* JSON may start with whitespace: skip it, or " {...}" would dodge the claims */
	size_t first = strspn(body.ptr, " \t\r\n");
	if (first < body.len && body.ptr[first] == '{') {
		rc = jws_verify_claims(body.ptr, body.len, now, NULL);
		if (rc)
			goto out;
	}
	buf_release(payload);
	*payload = body;
	buf_init(&body, payload->max);
out:
	buf_release(&body);
	return rc;
}
