#include "boottoken.h"

#include <inttypes.h>
#include <jansson.h>
#include <sodium.h>
#include <string.h>

#include "encode.h"

#include "banned.h"

enum claim { C_APP, C_MACHINE, C_HOST, C_RELEASE, C_SECRETS_VERSION, C_IAT, C_EXP, C_JTI, C_COUNT };

static const char *const claim_names[C_COUNT] = {
	[C_APP] = "app",
	[C_MACHINE] = "machine",
	[C_HOST] = "host",
	[C_RELEASE] = "release",
	[C_SECRETS_VERSION] = "secrets_version",
	[C_IAT] = "iat",
	[C_EXP] = "exp",
	[C_JTI] = "jti",
};

static int id_ok(const char *s, size_t n)
{
	if (n == 0 || n > BOOTTOKEN_ID_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			return 0;
	}
	return 1;
}

int boottoken_id_ok(const char *s)
{
	return s && id_ok(s, strnlen(s, BOOTTOKEN_ID_MAX + 1));
}

static int jti_ok(const char *s, size_t n)
{
	if (n != BOOTTOKEN_JTI_LEN)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'f') || (c >= '0' && c <= '9')))
			return 0;
	}
	return 1;
}

/* The lifetime rule shared by mint and verify. */
static int lifetime_ok(int64_t iat, int64_t exp)
{
	return iat >= 0 && exp > iat && exp - iat <= BOOTTOKEN_TTL_MAX;
}

enum coffer_err boottoken_mint(const struct secret *sk, const struct boottoken_claims *in, int64_t now,
			       struct buf *token, struct boottoken_claims *minted)
{
	unsigned char raw[BOOTTOKEN_JTI_BYTES];
	struct boottoken_claims c;
	struct buf payload;
	enum coffer_err rc;

	buf_init(&payload, BOOTTOKEN_PAYLOAD_MAX);
	if (!in || !boottoken_id_ok(in->app) || !boottoken_id_ok(in->machine) || !boottoken_id_ok(in->host) ||
	    in->release > INT64_MAX || in->secrets_version > INT64_MAX || now < 0 ||
	    now > INT64_MAX - BOOTTOKEN_TTL_MAX) {
		rc = COFFER_ERR_INVALID;
		goto out;
	}
	c = *in;
	c.iat = now;
	c.exp = in->exp ? in->exp : now + BOOTTOKEN_TTL_DEFAULT;
	if (!lifetime_ok(c.iat, c.exp)) {
		rc = COFFER_ERR_INVALID;
		goto out;
	}
	randombytes_buf(raw, sizeof(raw));
	rc = hex_encode(raw, sizeof(raw), c.jti, sizeof(c.jti));
	if (rc)
		goto out;

	/* every string is [a-z0-9_] or hex: nothing needs escaping */
	rc = buf_addf(&payload,
		      "{\"app\":\"%s\",\"machine\":\"%s\",\"host\":\"%s\",\"release\":%" PRIu64
		      ",\"secrets_version\":%" PRIu64 ",\"iat\":%" PRId64 ",\"exp\":%" PRId64 ",\"jti\":\"%s\"}",
		      c.app, c.machine, c.host, c.release, c.secrets_version, c.iat, c.exp, c.jti);
	if (rc)
		goto out;
	rc = jws_sign(sk, NULL, payload.ptr, payload.len, token);
	if (rc)
		goto out;
	if (minted)
		*minted = c;
out:
	buf_release(&payload);
	return rc;
}

static enum coffer_err string_claim(enum claim which, const char *s, size_t n, struct boottoken_claims *c)
{
	char *dst;
	size_t size;

	switch (which) {
	case C_APP:
		dst = c->app, size = sizeof(c->app);
		break;
	case C_MACHINE:
		dst = c->machine, size = sizeof(c->machine);
		break;
	case C_HOST:
		dst = c->host, size = sizeof(c->host);
		break;
	case C_JTI:
		if (!jti_ok(s, n))
			return COFFER_ERR_INVALID;
		memcpy(c->jti, s, n);
		c->jti[n] = '\0';
		return COFFER_OK;
	default:
		return COFFER_ERR_INVALID;
	}
	if (!id_ok(s, n) || n >= size)
		return COFFER_ERR_INVALID;
	memcpy(dst, s, n);
	dst[n] = '\0';
	return COFFER_OK;
}

static enum coffer_err int_claim(enum claim which, json_int_t v, struct boottoken_claims *c)
{
	if (v < 0)
		return COFFER_ERR_INVALID;
	switch (which) {
	case C_RELEASE:
		c->release = (uint64_t)v;
		break;
	case C_SECRETS_VERSION:
		c->secrets_version = (uint64_t)v;
		break;
	case C_IAT:
		c->iat = (int64_t)v;
		break;
	case C_EXP:
		c->exp = (int64_t)v;
		break;
	default:
		return COFFER_ERR_INVALID;
	}
	return COFFER_OK;
}

/* Exactly the claims of a boot token, each with its type and form. */
static enum coffer_err parse_claims(const char *payload, size_t len, struct boottoken_claims *out)
{
	struct boottoken_claims c;
	enum coffer_err rc = COFFER_ERR_INVALID;
	unsigned seen = 0;
	json_error_t err;
	const char *name;
	json_t *value;

	memset(&c, 0, sizeof(c));
	json_t *obj = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &err);
	if (!obj || !json_is_object(obj))
		goto out;
	json_object_foreach(obj, name, value) {
		enum claim which = C_COUNT;
		for (int i = 0; i < C_COUNT; i++) {
			if (strcmp(name, claim_names[i]) == 0)
				which = (enum claim)i;
		}
		if (which == C_COUNT)
			goto out; /* an unknown claim, nbf included */
		seen |= 1u << which;
		if (which == C_APP || which == C_MACHINE || which == C_HOST || which == C_JTI) {
			if (!json_is_string(value) ||
			    string_claim(which, json_string_value(value), json_string_length(value), &c))
				goto out;
		} else {
			if (!json_is_integer(value) || int_claim(which, json_integer_value(value), &c))
				goto out;
		}
	}
	if (seen != (1u << C_COUNT) - 1 || !lifetime_ok(c.iat, c.exp))
		goto out;
	*out = c;
	rc = COFFER_OK;
out:
	json_decref(obj);
	return rc;
}

enum coffer_err boottoken_verify(const unsigned char pk[JWS_PK_LEN], const char *token, size_t token_len, int64_t now,
				 struct boottoken_claims *out)
{
	struct boottoken_claims c;
	struct buf payload;
	enum coffer_err rc;

	buf_init(&payload, BOOTTOKEN_PAYLOAD_MAX);
	rc = jws_verify_sig(pk, token, token_len, &payload);
	if (rc == COFFER_ERR_TOO_LARGE)
		rc = COFFER_ERR_INVALID; /* no boot token is that long */
	if (rc)
		goto out;
	rc = parse_claims(payload.ptr, payload.len, &c);
	if (rc)
		goto out;
	rc = jws_verify_claims(payload.ptr, payload.len, now, NULL);
	if (rc)
		goto out;
	*out = c;
out:
	buf_release(&payload);
	return rc;
}
