/*
 * keeper_deployers.c — the deployer registry: one-time deployer tokens,
 * enrolment, loading a deployer back with every check (MAC, cert,
 * revocation in the row and in the keeper-local file) and revocation. The
 * layouts are in keeper.h.
 */
#include <time.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "encode.h"
#include "fs.h"
#include "keeper.h"
#include "log.h"
#include "banned.h"

#define TOKEN_ID_BYTES 16
#define TOKEN_ROLE_ADMIN 1
#define TOKEN_ROLE_DEPLOY 2
#define TOKEN_MAC_LEN crypto_auth_hmacsha256_BYTES
/* id || expiry || role || two length-prefixed ids || mac */
#define TOKEN_RAW_MAX (TOKEN_ID_BYTES + 8 + 1 + 2 * (1 + STORE_ID_LEN) + TOKEN_MAC_LEN)
#define TOKEN_PREFIX_LEN (sizeof(KEEPER_DEPLOYER_TOKEN_PREFIX) - 1)
#define SPENT_ID_SIZE (TOKEN_PREFIX_LEN + 2 * TOKEN_ID_BYTES + 1)
#define MAC_INPUT_MAX 1024
#define REVOKED_FILE_MAX ((size_t)16 << 20)

_Static_assert(KEEPER_DEPLOYER_KEY_LEN == crypto_auth_hmacsha256_KEYBYTES, "HMAC-SHA256 key");
_Static_assert(STORE_DEPLOYER_MAC_LEN == crypto_auth_hmacsha256_BYTES, "HMAC-SHA256 MAC");
_Static_assert(STORE_DEPLOYER_KEY_LEN == DEPLOYER_PK_LEN && STORE_DEPLOYER_CERT_LEN == DEPLOYER_SIG_LEN,
	       "deployer keys and certs fit the store");
_Static_assert(B64URL_LEN(TOKEN_RAW_MAX) + TOKEN_PREFIX_LEN <= KEEPER_DEPLOYER_TOKEN_MAX, "token length");
_Static_assert(STORE_JOIN_TOKEN_ID_MAX >= SPENT_ID_SIZE - 1, "a spent token id fits the store");

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int keeper_deployer_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n > KEEPER_DEPLOYER_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || !(c == '_' || c == '.' || c == '@' || c == '-')))
			return 0;
	}
	return 1;
}

/* A store id (what the store makes), or "*" where allowed. */
static int id_ok(const char *id, int star)
{
	size_t n = id ? strlen(id) : 0;
	if (star && n == 1 && id[0] == '*')
		return 1;
	if (n == 0 || n > STORE_ID_LEN)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= '0' && id[i] <= '9') || id[i] == '_'))
			return 0;
	return 1;
}

/* ---- tokens ---- */

enum coffer_err keeper_deployer_token_make(const struct keeper_keys *keys, const char *org_id, const char *app_id,
					   const char *role, uint64_t ttl_ms, struct secret **token)
{
	unsigned char raw[TOKEN_RAW_MAX];
	size_t n = 0, org_len, app_len;
	struct secret *t = NULL;
	enum coffer_err rc;

	if (!id_ok(org_id, 0) || !id_ok(app_id, 1) || !role || ttl_ms == 0 || ttl_ms > KEEPER_DEPLOYER_TTL_MAX_MS ||
	    (strcmp(role, DEPLOYER_ROLE_ADMIN) && strcmp(role, DEPLOYER_ROLE_DEPLOY)))
		return COFFER_ERR_INVALID;
	org_len = strlen(org_id);
	app_len = strlen(app_id);
	randombytes_buf(raw, TOKEN_ID_BYTES);
	n = TOKEN_ID_BYTES;
	be_put(raw + n, (uint64_t)(now_ms() + (int64_t)ttl_ms), 8);
	n += 8;
	raw[n++] = strcmp(role, DEPLOYER_ROLE_ADMIN) ? TOKEN_ROLE_DEPLOY : TOKEN_ROLE_ADMIN;
	raw[n++] = (unsigned char)org_len;
	memcpy(raw + n, org_id, org_len);
	n += org_len;
	raw[n++] = (unsigned char)app_len;
	memcpy(raw + n, app_id, app_len);
	n += app_len;
	crypto_auth_hmacsha256(raw + n, raw, n, secret_cbytes(keys->deployer_token));
	n += TOKEN_MAC_LEN;
	rc = secret_new(TOKEN_PREFIX_LEN + B64URL_LEN(n), &t);
	if (!rc) {
		memcpy(secret_bytes(t), KEEPER_DEPLOYER_TOKEN_PREFIX, TOKEN_PREFIX_LEN);
		/* straight into secure memory; the byte after the token is the secret's own NUL */
		sodium_bin2base64((char *)secret_bytes(t) + TOKEN_PREFIX_LEN, B64URL_LEN(n) + 1, raw, n,
				  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
		*token = t;
	}
	sodium_memzero(raw, sizeof(raw));
	return rc;
}

/* Reads a length-prefixed id at raw[*at] (before end) into out. */
static int take_id(const unsigned char *raw, size_t *at, size_t end, char out[STORE_ID_SIZE])
{
	size_t len;
	if (*at >= end)
		return 0;
	len = raw[(*at)++];
	if (len == 0 || len > STORE_ID_LEN || *at + len > end)
		return 0;
	memcpy(out, raw + *at, len);
	out[len] = '\0';
	*at += len;
	return 1;
}

enum coffer_err keeper_deployer_token_verify(const struct keeper_keys *keys, const char *token, size_t token_len,
					     int64_t now, struct keeper_deployer_grant *out)
{
	unsigned char raw[TOKEN_RAW_MAX], mac[TOKEN_MAC_LEN];
	struct keeper_deployer_grant g;
	size_t n = 0, at = 0, body;
	enum coffer_err rc = COFFER_ERR_INVALID;

	memset(&g, 0, sizeof(g));
	if (!token || token_len <= TOKEN_PREFIX_LEN || token_len > KEEPER_DEPLOYER_TOKEN_MAX ||
	    memcmp(token, KEEPER_DEPLOYER_TOKEN_PREFIX, TOKEN_PREFIX_LEN) != 0 ||
	    b64_decode_into(B64_URL, token + TOKEN_PREFIX_LEN, token_len - TOKEN_PREFIX_LEN, raw, sizeof(raw), &n) !=
		    COFFER_OK ||
	    n < TOKEN_ID_BYTES + 8 + 1 + 2 + TOKEN_MAC_LEN)
		goto out;
	body = n - TOKEN_MAC_LEN;
	crypto_auth_hmacsha256(mac, raw, body, secret_cbytes(keys->deployer_token));
	if (!ct_equal(mac, raw + body, TOKEN_MAC_LEN)) {
		rc = COFFER_ERR_CRYPTO;
		goto out;
	}
	/* MAC'd by this keeper: the layout is its own, but read it strictly all the same */
	at = TOKEN_ID_BYTES;
	g.expires_at = (int64_t)be_get(raw + at, 8);
	at += 8;
	switch (raw[at++]) {
	case TOKEN_ROLE_ADMIN:
		memcpy(g.role, DEPLOYER_ROLE_ADMIN, sizeof(DEPLOYER_ROLE_ADMIN));
		break;
	case TOKEN_ROLE_DEPLOY:
		memcpy(g.role, DEPLOYER_ROLE_DEPLOY, sizeof(DEPLOYER_ROLE_DEPLOY));
		break;
	default:
		goto out;
	}
	if (!take_id(raw, &at, body, g.org_id) || !take_id(raw, &at, body, g.app_id) || at != body ||
	    !id_ok(g.org_id, 0) || !id_ok(g.app_id, 1) || g.expires_at < 0)
		goto out;
	if (hex_encode(raw, TOKEN_ID_BYTES, g.token_id, sizeof(g.token_id)))
		goto out;
	if (now >= g.expires_at) {
		rc = COFFER_ERR_UNAUTH;
		goto out;
	}
	*out = g;
	rc = COFFER_OK;
out:
	sodium_memzero(raw, sizeof(raw));
	return rc;
}

/* ---- the registry MAC ---- */

static enum coffer_err add_field(struct buf *b, const void *p, size_t len)
{
	unsigned char l[4];
	be_put(l, len, 4);
	enum coffer_err rc = buf_add(b, l, sizeof(l));
	return rc ? rc : buf_add(b, p, len);
}

enum coffer_err keeper_deployer_mac(const struct keeper_keys *keys, const struct store_deployer *d,
				    unsigned char mac[STORE_DEPLOYER_MAC_LEN])
{
	unsigned char times[16];
	struct buf b;
	enum coffer_err rc;

	if (d->created_at < 0 || d->revoked_at < 0)
		return COFFER_ERR_INVALID;
	be_put(times, (uint64_t)d->created_at, 8);
	be_put(times + 8, (uint64_t)d->revoked_at, 8);
	buf_init(&b, MAC_INPUT_MAX);
	rc = add_field(&b, d->id, strlen(d->id));
	if (!rc)
		rc = add_field(&b, d->org_id, strlen(d->org_id));
	if (!rc)
		rc = add_field(&b, d->app_id, strlen(d->app_id));
	if (!rc)
		rc = add_field(&b, d->role, strlen(d->role));
	if (!rc)
		rc = add_field(&b, d->name, strlen(d->name));
	if (!rc)
		rc = add_field(&b, d->public_key, sizeof(d->public_key));
	if (!rc)
		rc = add_field(&b, d->cert, sizeof(d->cert));
	if (!rc)
		rc = buf_add(&b, times, sizeof(times));
	if (!rc)
		crypto_auth_hmacsha256(mac, (const unsigned char *)b.ptr, b.len, secret_cbytes(keys->deployer_registry));
	buf_release(&b);
	return rc;
}

static struct deployer_cert cert_of(const struct store_deployer *d)
{
	return (struct deployer_cert){ d->id, d->org_id, d->app_id, d->role, d->public_key };
}

/* ---- enrolment ---- */

enum coffer_err keeper_deployer_enrol(const struct keeper_keys *keys, struct store *s,
				      const struct keeper_deployer_enrol_request *req, int64_t now,
				      struct store_deployer *out, const char **why)
{
	struct keeper_deployer_grant g;
	struct store_deployer d;
	struct store_org org;
	struct store_app app;
	struct secret *text = NULL;
	char spent[SPENT_ID_SIZE];
	enum coffer_err rc;

	*why = NULL;
	rc = keeper_deployer_token_verify(keys, req->token, req->token_len, now, &g);
	if (rc == COFFER_ERR_UNAUTH) {
		*why = "deployer token expired";
		return rc;
	}
	if (rc) {
		*why = "invalid deployer token";
		return COFFER_ERR_UNAUTH;
	}
	if (!keeper_deployer_name_ok(req->name)) {
		*why = "deployer name must match " KEEPER_DEPLOYER_NAME_RULE;
		return COFFER_ERR_INVALID;
	}
	rc = deployer_enrol_text(req->token, req->token_len, req->name, req->public_key, &text);
	if (!rc)
		rc = deployer_verify(req->public_key, secret_cbytes(text), secret_len(text), req->proof);
	secret_free(text);
	if (rc) {
		*why = "enrolment proof does not verify";
		return COFFER_ERR_UNAUTH;
	}
	rc = store_org_get(s, g.org_id, &org);
	if (rc == COFFER_ERR_NOT_FOUND)
		*why = "the token's org no longer exists";
	if (rc)
		return rc;
	if (strcmp(g.app_id, DEPLOYER_ALL_APPS) != 0) {
		rc = store_app_get(s, g.app_id, &app);
		if (rc == COFFER_OK && strcmp(app.org_id, g.org_id) != 0)
			rc = COFFER_ERR_NOT_FOUND;
		if (rc == COFFER_ERR_NOT_FOUND)
			*why = "the token's app no longer exists";
		if (rc)
			return rc;
	}
	if (fmt_into(spent, sizeof(spent), "%s%s", KEEPER_DEPLOYER_TOKEN_PREFIX, g.token_id))
		return COFFER_ERR_INTERNAL;
	rc = store_join_token_use(s, spent);
	if (rc == COFFER_ERR_CONFLICT) {
		log_warn("deployer_token_reused", LF_S("token_id", g.token_id));
		*why = "deployer token already used";
		return COFFER_ERR_UNAUTH;
	}
	if (rc)
		return rc;

	memset(&d, 0, sizeof(d));
	store_new_id(d.id);
	memcpy(d.org_id, g.org_id, sizeof(d.org_id));
	memcpy(d.app_id, g.app_id, sizeof(d.app_id));
	memcpy(d.role, g.role, sizeof(d.role));
	rc = str_copy(d.name, sizeof(d.name), req->name);
	if (rc)
		return rc;
	memcpy(d.public_key, req->public_key, sizeof(d.public_key));
	d.created_at = now;
	struct deployer_cert c = cert_of(&d);
	rc = deployer_cert_sign(keys->signing, &c, d.cert);
	if (!rc)
		rc = keeper_deployer_mac(keys, &d, d.mac);
	if (!rc)
		rc = store_deployer_put(s, &d);
	if (rc)
		return rc;
	log_info("deployer_enrolled", LF_S("deployer_id", d.id), LF_S("org_id", d.org_id), LF_S("app_id", d.app_id),
		 LF_S("role", d.role), LF_S("name", d.name), LF_S("token_id", g.token_id));
	*out = d;
	return COFFER_OK;
}

/* ---- loading and revoking ---- */

int keeper_deployer_revoked_locally(const struct keeper_keys *keys, const char *id)
{
	struct buf b;
	int found = 0;
	size_t n = strlen(id);

	if (!keys->deployers_revoked[0])
		return 0;
	buf_init(&b, REVOKED_FILE_MAX);
	enum coffer_err rc = fs_read_file(keys->deployers_revoked, &b);
	if (rc == COFFER_OK) {
		/* one id per line; an id matches a whole line only */
		for (const char *p = b.ptr; !found && p < b.ptr + b.len;) {
			const char *nl = memchr(p, '\n', (size_t)(b.ptr + b.len - p));
			size_t len = nl ? (size_t)(nl - p) : (size_t)(b.ptr + b.len - p);
			found = len == n && memcmp(p, id, n) == 0;
			p += len + 1;
		}
	} else if (rc != COFFER_ERR_NOT_FOUND) {
		found = -1;
	}
	buf_release(&b);
	return found;
}

enum coffer_err keeper_deployer_live(const struct keeper_keys *keys, struct store *s, const char *id,
				     struct store_deployer *out, const char **why)
{
	struct store_deployer d;
	unsigned char mac[STORE_DEPLOYER_MAC_LEN];
	enum coffer_err rc;

	*why = NULL;
	if (!id_ok(id, 0)) {
		*why = "unknown deployer";
		return COFFER_ERR_NOT_FOUND;
	}
	rc = store_deployer_get(s, id, &d);
	if (rc == COFFER_ERR_NOT_FOUND)
		*why = "unknown deployer";
	if (rc)
		return rc;
	struct deployer_cert c = cert_of(&d);
	if (strcmp(d.id, id) != 0 || keeper_deployer_mac(keys, &d, mac) != COFFER_OK ||
	    !ct_equal(mac, d.mac, sizeof(mac)) || deployer_cert_verify(keys->signing_pk, &c, d.cert) != COFFER_OK) {
		log_warn("deployer_row_tampered", LF_S("deployer_id", id));
		*why = "deployer record failed verification";
		return COFFER_ERR_CRYPTO;
	}
	int local = keeper_deployer_revoked_locally(keys, id);
	if (local < 0) {
		log_error("deployers_revoked_unreadable", LF_S("file", keys->deployers_revoked));
		*why = "deployer revocation list unreadable";
		return COFFER_ERR_IO;
	}
	if (d.revoked_at != 0 || local) {
		if (out)
			*out = d;
		*why = "deployer key revoked";
		return COFFER_ERR_UNAUTH;
	}
	if (out)
		*out = d;
	return COFFER_OK;
}

/* Appends "id\n" to the local file in one write, and syncs it. */
static enum coffer_err revoke_locally(const struct keeper_keys *keys, const char *id)
{
	char line[STORE_ID_SIZE + 1];
	enum coffer_err rc;
	if (!keys->deployers_revoked[0])
		return COFFER_OK;
	if (fmt_into(line, sizeof(line), "%s\n", id))
		return COFFER_ERR_INVALID;
	int fd = open(keys->deployers_revoked, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return COFFER_ERR_IO;
	rc = fs_write_all(fd, line, strlen(line));
	if (!rc && fsync(fd) != 0)
		rc = COFFER_ERR_IO;
	if (close(fd) != 0 && !rc)
		rc = COFFER_ERR_IO;
	return rc;
}

enum coffer_err keeper_deployer_revoke(const struct keeper_keys *keys, struct store *s, const char *id, int64_t now,
				       const char **why)
{
	struct store_deployer d;
	unsigned char mac[STORE_DEPLOYER_MAC_LEN];
	enum coffer_err rc = keeper_deployer_live(keys, s, id, &d, why);

	if (rc && rc != COFFER_ERR_UNAUTH)
		return rc;
	*why = NULL;
	rc = keeper_deployer_revoked_locally(keys, id) == 1 ? COFFER_OK : revoke_locally(keys, id);
	if (rc) {
		log_error("deployer_revoke_file_failed", LF_S("deployer_id", id), LF_S("error", coffer_err_name(rc)));
		return rc;
	}
	if (d.revoked_at == 0) {
		d.revoked_at = now > 0 ? now : 1;
		rc = keeper_deployer_mac(keys, &d, mac);
		if (!rc)
			rc = store_deployer_revoke(s, id, d.revoked_at, mac);
		if (rc)
			return rc;
	}
	log_info("deployer_revoked", LF_S("deployer_id", id), LF_S("org_id", d.org_id));
	return COFFER_OK;
}
