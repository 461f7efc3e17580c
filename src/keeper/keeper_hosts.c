/*
 * keeper_hosts.c — the host registry: join tokens, enrolment, and loading a
 * host row back with its MAC checked (the store is untrusted).
 */
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "keeper.h"
#include "log.h"
#include "banned.h"

_Static_assert(HOSTAUTH_CERT_LEN <= STORE_HOST_CERT_MAX, "a host cert fits the store");
_Static_assert(HOSTAUTH_PK_LEN == STORE_HOST_KEY_LEN && HOSTAUTH_MAC_LEN == STORE_HOST_MAC_LEN,
	       "host keys and MAC fit the store");
_Static_assert(STORE_ID_LEN <= HOSTAUTH_HOST_ID_MAX, "store ids are host ids");

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int keeper_host_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n > KEEPER_HOST_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || !(c == '_' || c == '.' || c == '-')))
			return 0;
	}
	return 1;
}

enum coffer_err keeper_join_token_make(const struct keeper_keys *keys, uint64_t ttl_ms, struct secret **token)
{
	if (ttl_ms == 0 || ttl_ms > KEEPER_JOIN_TTL_MAX_MS)
		return COFFER_ERR_INVALID;
	return hostauth_join_token_make(keys->join, now_ms() + (int64_t)ttl_ms, token);
}

static struct hostauth_identity identity_of(const struct store_host *h)
{
	return (struct hostauth_identity){ h->id, h->name, h->sign_pk, h->seal_pk };
}

enum coffer_err keeper_host_enrol(const struct keeper_keys *keys, struct store *s,
				  const struct keeper_enrol_request *req, int64_t now, struct keeper_enrolled *out,
				  const char **why)
{
	char join_id[HOSTAUTH_JOIN_ID_HEX_SIZE];
	struct store_host h, existing;
	struct hostauth_identity id;
	int64_t issued_at = now / 1000;
	enum coffer_err rc;

	*why = NULL;
	rc = hostauth_join_token_verify(keys->join, req->join_token, req->join_token_len, now, join_id, NULL);
	if (rc == COFFER_ERR_UNAUTH) {
		*why = "join token expired";
		return COFFER_ERR_UNAUTH;
	}
	if (rc) {
		*why = "invalid join token";
		return COFFER_ERR_UNAUTH;
	}
	if (!keeper_host_name_ok(req->name)) {
		*why = "host name must match " KEEPER_HOST_NAME_RULE;
		return COFFER_ERR_INVALID;
	}
	if (hostauth_enrol_proof_verify(req->sign_pk, req->join_token, req->join_token_len, req->name, req->proof)) {
		*why = "enrolment proof does not verify";
		return COFFER_ERR_UNAUTH;
	}
	/* Checked before the token is spent, so a taken name does not cost the token (a race still may). */
	rc = store_host_get_by_name(s, req->name, &existing);
	if (rc == COFFER_OK) {
		*why = "host name is taken";
		return COFFER_ERR_CONFLICT;
	}
	if (rc != COFFER_ERR_NOT_FOUND)
		return rc;
	rc = store_join_token_use(s, join_id);
	if (rc == COFFER_ERR_CONFLICT) {
		log_warn("join_token_reused", LF_S("join_token_id", join_id));
		*why = "join token already used";
		return COFFER_ERR_UNAUTH;
	}
	if (rc)
		return rc;

	memset(&h, 0, sizeof(h));
	store_new_id(h.id);
	rc = str_copy(h.name, sizeof(h.name), req->name);
	if (!rc)
		rc = str_copy(h.state, sizeof(h.state), KEEPER_HOST_STATE_READY);
	if (rc)
		return rc;
	memcpy(h.sign_pk, req->sign_pk, sizeof(h.sign_pk));
	memcpy(h.seal_pk, req->seal_pk, sizeof(h.seal_pk));
	h.enrolled_at = issued_at * 1000;
	id = identity_of(&h);
	rc = hostauth_registry_mac(keys->registry, &id, h.state, h.mac);
	if (!rc)
		rc = hostauth_cert_sign(keys->signing, &id, issued_at, h.cert);
	if (rc)
		return rc;
	h.cert_len = HOSTAUTH_CERT_LEN;
	rc = store_host_put(s, &h);
	if (rc == COFFER_ERR_CONFLICT) {
		log_warn("join_token_spent_on_conflict", LF_S("join_token_id", join_id), LF_S("name", h.name));
		*why = "host name is taken";
		return rc;
	}
	if (rc)
		return rc;
	log_info("host_enrolled", LF_S("host_id", h.id), LF_S("name", h.name), LF_S("join_token_id", join_id));
	memset(out, 0, sizeof(*out));
	memcpy(out->host_id, h.id, sizeof(out->host_id));
	memcpy(out->name, h.name, sizeof(out->name));
	memcpy(out->cert, h.cert, sizeof(out->cert));
	out->issued_at = issued_at;
	return COFFER_OK;
}

enum coffer_err keeper_host_rekey(const struct keeper_keys *keys, struct store *s,
				  const struct keeper_rekey_request *req, struct keeper_enrolled *out, const char **why)
{
	struct store_host h;
	struct hostauth_identity ident;
	struct hostauth_rekey proof = { req->host_id, req->old_sign_pk, req->sign_pk, req->seal_pk };
	int done;
	enum coffer_err rc;

	*why = NULL;
	rc = keeper_host_load(keys, s, req->host_id, &h);
	if (rc == COFFER_ERR_NOT_FOUND) {
		*why = "unknown host";
		return COFFER_ERR_UNAUTH;
	}
	if (rc)
		return rc;
	if (strcmp(h.state, KEEPER_HOST_STATE_READY) != 0) {
		*why = strcmp(h.state, KEEPER_HOST_STATE_REVOKED) == 0 ? "host is revoked" : "host is not enrolled";
		return COFFER_ERR_UNAUTH;
	}
	if (sodium_memcmp(req->old_sign_pk, req->sign_pk, HOSTAUTH_PK_LEN) == 0) {
		*why = "the new keys are the old ones";
		return COFFER_ERR_INVALID;
	}
	done = sodium_memcmp(h.sign_pk, req->sign_pk, HOSTAUTH_PK_LEN) == 0 &&
	       sodium_memcmp(h.seal_pk, req->seal_pk, HOSTAUTH_PK_LEN) == 0;
	if (!done && sodium_memcmp(h.sign_pk, req->old_sign_pk, HOSTAUTH_PK_LEN) != 0) {
		*why = "the old key is not the host's";
		return COFFER_ERR_UNAUTH;
	}
	if (hostauth_rekey_verify(req->sign_pk, &proof, req->sig_new) != COFFER_OK ||
	    hostauth_rekey_verify(req->old_sign_pk, &proof, req->sig_old) != COFFER_OK) {
		*why = "key rotation proof does not verify";
		return COFFER_ERR_UNAUTH;
	}
	if (!done) {
		memcpy(h.sign_pk, req->sign_pk, sizeof(h.sign_pk));
		memcpy(h.seal_pk, req->seal_pk, sizeof(h.seal_pk));
		ident = identity_of(&h);
		rc = hostauth_registry_mac(keys->registry, &ident, h.state, h.mac);
		if (!rc)
			rc = hostauth_cert_sign(keys->signing, &ident, h.enrolled_at / 1000, h.cert);
		if (rc)
			return rc;
		h.cert_len = HOSTAUTH_CERT_LEN;
		rc = store_host_update(s, &h);
		if (rc)
			return rc;
		log_info("host_rekeyed", LF_S("host_id", h.id), LF_S("name", h.name));
	}
	memset(out, 0, sizeof(*out));
	memcpy(out->host_id, h.id, sizeof(out->host_id));
	memcpy(out->name, h.name, sizeof(out->name));
	memcpy(out->cert, h.cert, sizeof(out->cert));
	out->issued_at = h.enrolled_at / 1000;
	return COFFER_OK;
}

enum coffer_err keeper_host_revoke(const struct keeper_keys *keys, struct store *s, const char *id,
				   struct store_host *out)
{
	struct store_host h;
	struct hostauth_identity ident;
	enum coffer_err rc = keeper_host_load(keys, s, id, &h);
	if (rc)
		return rc;
	if (strcmp(h.state, KEEPER_HOST_STATE_REVOKED) != 0) {
		rc = str_copy(h.state, sizeof(h.state), KEEPER_HOST_STATE_REVOKED);
		ident = identity_of(&h);
		if (!rc)
			rc = hostauth_registry_mac(keys->registry, &ident, h.state, h.mac);
		if (!rc)
			rc = store_host_update(s, &h);
		if (rc)
			return rc;
		log_info("host_revoked", LF_S("host_id", h.id), LF_S("name", h.name));
	}
	if (out)
		*out = h;
	return COFFER_OK;
}

enum coffer_err keeper_host_load(const struct keeper_keys *keys, struct store *s, const char *id,
				 struct store_host *out)
{
	struct store_host h;
	struct hostauth_identity ident;
	/* A row whose keys or MAC are not their size cannot be read at all (COFFER_ERR_STORE). */
	enum coffer_err rc = store_host_get(s, id, &h);
	if (rc)
		return rc;
	ident = identity_of(&h);
	if (strcmp(h.id, id) != 0 || hostauth_registry_verify(keys->registry, &ident, h.state, h.mac) != COFFER_OK) {
		log_warn("host_row_tampered", LF_S("host_id", id), LF_S("check", "registry_mac"));
		return COFFER_ERR_CRYPTO;
	}
	*out = h;
	return COFFER_OK;
}
