/*
 * hostauth.c — join tokens, the registry MAC, host certificates, the
 * enrolment proof and signed requests (the layouts are in hostauth.h).
 */
#include "hostauth.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "buf.h"
#include "encode.h"
#include "hkdf.h"
#include "parse.h"
#include "banned.h"

#define JOIN_SIGNED_LEN (HOSTAUTH_JOIN_ID_BYTES + 8) /* id || u64be(expires_at) */
#define IDENTITY_MAX (4 * 4 + 2 * HOSTAUTH_FIELD_MAX + 2 * HOSTAUTH_PK_LEN)
#define CERT_MESSAGE_MAX (sizeof(HOSTAUTH_CERT_CONTEXT) + IDENTITY_MAX + 8)
#define ENROL_TOKEN_MAX 1024
#define SHA256_HEX_LEN (2 * crypto_hash_sha256_BYTES)
#define REQUEST_STRING_MAX                                                                              \
	(sizeof(HOSTAUTH_REQUEST_CONTEXT) + HOSTAUTH_METHOD_MAX + 1 + HOSTAUTH_PATH_MAX + 1 +           \
	 HOSTAUTH_TIMESTAMP_SIZE + HOSTAUTH_NONCE_HEX_LEN + 1 + SHA256_HEX_LEN)
#define REPLAY_CAPACITY_MAX ((size_t)1 << 24)

_Static_assert(HOSTAUTH_JOIN_B64_LEN == (HOSTAUTH_JOIN_RAW_LEN * 4 + 2) / 3, "join token length");
_Static_assert(HOSTAUTH_SIGNATURE_B64_LEN == (HOSTAUTH_SIG_LEN * 4 + 2) / 3, "signature length");
_Static_assert(HOSTAUTH_SK_LEN == crypto_sign_ed25519_SECRETKEYBYTES &&
		       HOSTAUTH_SIG_LEN == crypto_sign_ed25519_BYTES &&
		       HOSTAUTH_PK_LEN == crypto_sign_ed25519_PUBLICKEYBYTES,
	       "Ed25519 sizes");
_Static_assert(HOSTAUTH_KEY_LEN == crypto_auth_hmacsha256_KEYBYTES &&
		       HOSTAUTH_MAC_LEN == crypto_auth_hmacsha256_BYTES,
	       "HMAC-SHA256 sizes");

/* ---- subkeys ---- */

enum coffer_err hostauth_join_key(const struct secret *master, struct secret **key)
{
	return kdf_subkey(master, HOSTAUTH_LABEL_JOIN, NULL, 0, HOSTAUTH_KEY_LEN, key);
}

enum coffer_err hostauth_registry_key(const struct secret *master, struct secret **key)
{
	return kdf_subkey(master, HOSTAUTH_LABEL_REGISTRY, NULL, 0, HOSTAUTH_KEY_LEN, key);
}

/* ---- join tokens ---- */

enum coffer_err hostauth_join_token_make(const struct secret *join_key, int64_t expires_at, struct secret **token)
{
	unsigned char raw[HOSTAUTH_JOIN_RAW_LEN];
	struct secret *t = NULL;
	enum coffer_err rc;

	if (secret_len(join_key) != HOSTAUTH_KEY_LEN || expires_at < 0)
		return COFFER_ERR_INVALID;
	rc = secret_new(HOSTAUTH_JOIN_TOKEN_LEN, &t);
	if (rc)
		return rc;
	randombytes_buf(raw, HOSTAUTH_JOIN_ID_BYTES);
	be_put(raw + HOSTAUTH_JOIN_ID_BYTES, (uint64_t)expires_at, 8);
	crypto_auth_hmacsha256(raw + JOIN_SIGNED_LEN, raw, JOIN_SIGNED_LEN, secret_cbytes(join_key));
	memcpy(secret_bytes(t), HOSTAUTH_JOIN_PREFIX, HOSTAUTH_JOIN_PREFIX_LEN);
	/* Encoded straight into secure memory; the byte after the token is the secret's own NUL. */
	sodium_bin2base64((char *)secret_bytes(t) + HOSTAUTH_JOIN_PREFIX_LEN, HOSTAUTH_JOIN_B64_LEN + 1, raw,
			  sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, sizeof(raw));
	*token = t;
	return COFFER_OK;
}

enum coffer_err hostauth_join_token_verify(const struct secret *join_key, const char *token, size_t token_len,
					   int64_t now, char id_hex[HOSTAUTH_JOIN_ID_HEX_SIZE], int64_t *expires_at)
{
	unsigned char raw[HOSTAUTH_JOIN_RAW_LEN], mac[HOSTAUTH_MAC_LEN];
	size_t raw_len = 0;
	uint64_t expires;
	enum coffer_err rc = COFFER_ERR_INVALID;

	if (secret_len(join_key) != HOSTAUTH_KEY_LEN || !token || token_len != HOSTAUTH_JOIN_TOKEN_LEN ||
	    memcmp(token, HOSTAUTH_JOIN_PREFIX, HOSTAUTH_JOIN_PREFIX_LEN) != 0)
		return COFFER_ERR_INVALID;
	/* Strict: exactly the 75 characters, one spelling (encode.h). */
	if (b64_decode_into(B64_URL, token + HOSTAUTH_JOIN_PREFIX_LEN, HOSTAUTH_JOIN_B64_LEN, raw, sizeof(raw),
			    &raw_len) ||
	    raw_len != sizeof(raw))
		goto out;
	crypto_auth_hmacsha256(mac, raw, JOIN_SIGNED_LEN, secret_cbytes(join_key));
	if (sodium_memcmp(mac, raw + JOIN_SIGNED_LEN, sizeof(mac)) != 0) {
		rc = COFFER_ERR_CRYPTO;
		goto out;
	}
	expires = be_get(raw + HOSTAUTH_JOIN_ID_BYTES, 8);
	if (expires > INT64_MAX || (int64_t)expires <= now) {
		rc = COFFER_ERR_UNAUTH;
		goto out;
	}
	sodium_bin2hex(id_hex, HOSTAUTH_JOIN_ID_HEX_SIZE, raw, HOSTAUTH_JOIN_ID_BYTES);
	if (expires_at)
		*expires_at = (int64_t)expires;
	rc = COFFER_OK;
out:
	sodium_memzero(raw, sizeof(raw));
	sodium_memzero(mac, sizeof(mac));
	return rc;
}

/* ---- identity: the registry MAC and the cert ---- */

static int field_ok(const char *s)
{
	if (!s)
		return 0;
	size_t n = strlen(s);
	return n >= 1 && n <= HOSTAUTH_FIELD_MAX;
}

static int identity_ok(const struct hostauth_identity *h)
{
	return h && field_ok(h->id) && field_ok(h->name) && h->sign_pk && h->seal_pk;
}

/* L(x) = u32be(len) || x */
static enum coffer_err add_field(struct buf *b, const void *p, size_t len)
{
	unsigned char be[4] = { (unsigned char)(len >> 24), (unsigned char)(len >> 16), (unsigned char)(len >> 8),
				(unsigned char)len };
	enum coffer_err rc = buf_add(b, be, sizeof(be));
	return rc ? rc : buf_add(b, p, len);
}

static enum coffer_err add_identity(struct buf *b, const struct hostauth_identity *h)
{
	enum coffer_err rc = add_field(b, h->id, strlen(h->id));
	if (!rc)
		rc = add_field(b, h->name, strlen(h->name));
	if (!rc)
		rc = add_field(b, h->sign_pk, HOSTAUTH_PK_LEN);
	if (!rc)
		rc = add_field(b, h->seal_pk, HOSTAUTH_PK_LEN);
	return rc;
}

enum coffer_err hostauth_registry_mac(const struct secret *registry_key, const struct hostauth_identity *h,
				      const char *state, unsigned char mac[HOSTAUTH_MAC_LEN])
{
	struct buf msg;
	enum coffer_err rc;
	if (secret_len(registry_key) != HOSTAUTH_KEY_LEN || !identity_ok(h) || !field_ok(state))
		return COFFER_ERR_INVALID;
	buf_init(&msg, IDENTITY_MAX + 4 + HOSTAUTH_FIELD_MAX);
	rc = add_identity(&msg, h);
	if (!rc)
		rc = add_field(&msg, state, strlen(state));
	if (!rc)
		crypto_auth_hmacsha256(mac, (const unsigned char *)msg.ptr, msg.len, secret_cbytes(registry_key));
	buf_release(&msg);
	return rc;
}

enum coffer_err hostauth_registry_verify(const struct secret *registry_key, const struct hostauth_identity *h,
					 const char *state, const unsigned char mac[HOSTAUTH_MAC_LEN])
{
	unsigned char want[HOSTAUTH_MAC_LEN];
	enum coffer_err rc = hostauth_registry_mac(registry_key, h, state, want);
	if (!rc && sodium_memcmp(want, mac, sizeof(want)) != 0)
		rc = COFFER_ERR_CRYPTO;
	sodium_memzero(want, sizeof(want));
	return rc;
}

static enum coffer_err cert_message(const struct hostauth_identity *h, int64_t issued_at, struct buf *msg)
{
	unsigned char be[8];
	if (!identity_ok(h) || issued_at < 0)
		return COFFER_ERR_INVALID;
	be_put(be, (uint64_t)issued_at, 8);
	enum coffer_err rc = buf_add(msg, HOSTAUTH_CERT_CONTEXT, sizeof(HOSTAUTH_CERT_CONTEXT)); /* with its NUL */
	if (!rc)
		rc = add_identity(msg, h);
	if (!rc)
		rc = buf_add(msg, be, sizeof(be));
	return rc;
}

enum coffer_err hostauth_cert_sign(const struct secret *keeper_sk, const struct hostauth_identity *h,
				   int64_t issued_at, unsigned char cert[HOSTAUTH_CERT_LEN])
{
	struct buf msg;
	unsigned char out[HOSTAUTH_CERT_LEN];
	enum coffer_err rc;
	if (secret_len(keeper_sk) != HOSTAUTH_SK_LEN)
		return COFFER_ERR_INVALID;
	buf_init(&msg, CERT_MESSAGE_MAX);
	rc = cert_message(h, issued_at, &msg);
	if (!rc) {
		be_put(out, (uint64_t)issued_at, 8);
		if (crypto_sign_ed25519_detached(out + 8, NULL, (const unsigned char *)msg.ptr, msg.len,
						 secret_cbytes(keeper_sk)) != 0)
			rc = COFFER_ERR_CRYPTO;
	}
	if (!rc)
		memcpy(cert, out, sizeof(out));
	buf_release(&msg);
	return rc;
}

enum coffer_err hostauth_cert_verify(const unsigned char keeper_pk[HOSTAUTH_PK_LEN], const struct hostauth_identity *h,
				     const unsigned char *cert, size_t cert_len, int64_t *issued_at)
{
	struct buf msg;
	uint64_t at;
	enum coffer_err rc;
	if (!cert || cert_len != HOSTAUTH_CERT_LEN)
		return COFFER_ERR_INVALID;
	at = be_get(cert, 8);
	if (at > INT64_MAX)
		return COFFER_ERR_INVALID;
	buf_init(&msg, CERT_MESSAGE_MAX);
	rc = cert_message(h, (int64_t)at, &msg);
	if (!rc && crypto_sign_ed25519_verify_detached(cert + 8, (const unsigned char *)msg.ptr, msg.len, keeper_pk) != 0)
		rc = COFFER_ERR_CRYPTO;
	if (!rc && issued_at)
		*issued_at = (int64_t)at;
	buf_release(&msg);
	return rc;
}

/* ---- the enrolment proof ---- */

/* "coffer enrol v1\n" || join token || "\n" || name, in secure memory (it holds the token). */
static enum coffer_err enrol_message(const char *token, size_t token_len, const char *name, struct secret **out)
{
	size_t ctx_len = strlen(HOSTAUTH_ENROL_CONTEXT);
	struct secret *m = NULL;
	if (!token || token_len == 0 || token_len > ENROL_TOKEN_MAX || !field_ok(name))
		return COFFER_ERR_INVALID;
	size_t name_len = strlen(name);
	enum coffer_err rc = secret_new(ctx_len + token_len + 1 + name_len, &m);
	if (rc)
		return rc;
	unsigned char *p = secret_bytes(m);
	memcpy(p, HOSTAUTH_ENROL_CONTEXT, ctx_len);
	memcpy(p + ctx_len, token, token_len);
	p[ctx_len + token_len] = '\n';
	memcpy(p + ctx_len + token_len + 1, name, name_len);
	*out = m;
	return COFFER_OK;
}

enum coffer_err hostauth_enrol_proof_sign(const struct secret *host_sk, const char *join_token, size_t join_token_len,
					  const char *name, unsigned char proof[HOSTAUTH_SIG_LEN])
{
	struct secret *m = NULL;
	unsigned char sig[HOSTAUTH_SIG_LEN];
	if (secret_len(host_sk) != HOSTAUTH_SK_LEN)
		return COFFER_ERR_INVALID;
	enum coffer_err rc = enrol_message(join_token, join_token_len, name, &m);
	if (!rc && crypto_sign_ed25519_detached(sig, NULL, secret_cbytes(m), secret_len(m), secret_cbytes(host_sk)) != 0)
		rc = COFFER_ERR_CRYPTO;
	if (!rc)
		memcpy(proof, sig, sizeof(sig));
	secret_free(m);
	return rc;
}

enum coffer_err hostauth_enrol_proof_verify(const unsigned char sign_pk[HOSTAUTH_PK_LEN], const char *join_token,
					    size_t join_token_len, const char *name,
					    const unsigned char proof[HOSTAUTH_SIG_LEN])
{
	struct secret *m = NULL;
	enum coffer_err rc = enrol_message(join_token, join_token_len, name, &m);
	if (!rc && crypto_sign_ed25519_verify_detached(proof, secret_cbytes(m), secret_len(m), sign_pk) != 0)
		rc = COFFER_ERR_CRYPTO;
	secret_free(m);
	return rc;
}

/* ---- the key rotation proof ---- */

static enum coffer_err rekey_message(const struct hostauth_rekey *r, struct buf *m)
{
	enum coffer_err rc;
	if (!hostauth_host_id_ok(r->host_id))
		return COFFER_ERR_INVALID;
	rc = buf_adds(m, HOSTAUTH_REKEY_CONTEXT);
	if (!rc)
		rc = buf_adds(m, r->host_id);
	if (!rc)
		rc = buf_addch(m, '\n');
	if (!rc)
		rc = buf_add(m, r->old_sign_pk, HOSTAUTH_PK_LEN);
	if (!rc)
		rc = buf_add(m, r->sign_pk, HOSTAUTH_PK_LEN);
	if (!rc)
		rc = buf_add(m, r->seal_pk, HOSTAUTH_PK_LEN);
	return rc;
}

enum coffer_err hostauth_rekey_sign(const struct secret *sk, const struct hostauth_rekey *r,
				    unsigned char sig[HOSTAUTH_SIG_LEN])
{
	struct buf m;
	enum coffer_err rc;
	if (secret_len(sk) != HOSTAUTH_SK_LEN)
		return COFFER_ERR_INVALID;
	buf_init(&m, sizeof(HOSTAUTH_REKEY_CONTEXT) + HOSTAUTH_HOST_ID_MAX + 1 + 3 * HOSTAUTH_PK_LEN);
	rc = rekey_message(r, &m);
	if (!rc && crypto_sign_ed25519_detached(sig, NULL, (const unsigned char *)m.ptr, m.len, secret_cbytes(sk)) != 0)
		rc = COFFER_ERR_CRYPTO;
	buf_release(&m);
	return rc;
}

enum coffer_err hostauth_rekey_verify(const unsigned char pk[HOSTAUTH_PK_LEN], const struct hostauth_rekey *r,
				      const unsigned char sig[HOSTAUTH_SIG_LEN])
{
	struct buf m;
	enum coffer_err rc;
	buf_init(&m, sizeof(HOSTAUTH_REKEY_CONTEXT) + HOSTAUTH_HOST_ID_MAX + 1 + 3 * HOSTAUTH_PK_LEN);
	rc = rekey_message(r, &m);
	if (!rc && crypto_sign_ed25519_verify_detached(sig, (const unsigned char *)m.ptr, m.len, pk) != 0)
		rc = COFFER_ERR_CRYPTO;
	buf_release(&m);
	return rc;
}

/* ---- signed requests ---- */

int hostauth_host_id_ok(const char *id)
{
	size_t n = id ? strlen(id) : 0;
	if (n == 0 || n > HOSTAUTH_HOST_ID_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

static int method_ok(const char *m)
{
	size_t n = m ? strlen(m) : 0;
	if (n == 0 || n > HOSTAUTH_METHOD_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (m[i] < 'A' || m[i] > 'Z')
			return 0;
	return 1;
}

/* A path is one line of printable ASCII starting with '/': the signed string is newline-separated. */
static int path_ok(const char *p)
{
	size_t n = p ? strlen(p) : 0;
	if (n == 0 || n > HOSTAUTH_PATH_MAX || p[0] != '/')
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x21 || (unsigned char)p[i] > 0x7e)
			return 0;
	return 1;
}

static int nonce_ok(const char *n)
{
	if (!n || strlen(n) != HOSTAUTH_NONCE_HEX_LEN)
		return 0;
	for (size_t i = 0; i < HOSTAUTH_NONCE_HEX_LEN; i++)
		if (!((n[i] >= '0' && n[i] <= '9') || (n[i] >= 'a' && n[i] <= 'f')))
			return 0;
	return 1;
}

/* The string a request signature covers (hostauth.h). */
static enum coffer_err request_string(const struct hostauth_request *r, const char *timestamp, const char *nonce,
				      struct buf *out)
{
	unsigned char digest[crypto_hash_sha256_BYTES];
	char digest_hex[SHA256_HEX_LEN + 1];
	if (!r || !method_ok(r->method) || !path_ok(r->path) || (!r->body && r->body_len))
		return COFFER_ERR_INVALID;
	crypto_hash_sha256(digest, r->body ? r->body : (const void *)"", r->body_len);
	sodium_bin2hex(digest_hex, sizeof(digest_hex), digest, sizeof(digest));
	return buf_addf(out, "%s%s\n%s\n%s\n%s\n%s", HOSTAUTH_REQUEST_CONTEXT, r->method, r->path, timestamp, nonce,
			digest_hex);
}

enum coffer_err hostauth_sign_headers_with(const struct secret *host_sk, const char *host_id,
					   const struct hostauth_request *r, int64_t timestamp, const char *nonce,
					   struct hostauth_headers *out)
{
	struct hostauth_headers h;
	unsigned char sig[HOSTAUTH_SIG_LEN];
	struct buf msg;
	enum coffer_err rc;

	if (secret_len(host_sk) != HOSTAUTH_SK_LEN || !hostauth_host_id_ok(host_id) || timestamp < 0 ||
	    !nonce_ok(nonce))
		return COFFER_ERR_INVALID;
	memset(&h, 0, sizeof(h));
	buf_init(&msg, REQUEST_STRING_MAX);
	rc = str_copy(h.host, sizeof(h.host), host_id);
	if (!rc)
		rc = str_copy(h.nonce, sizeof(h.nonce), nonce);
	if (!rc)
		rc = fmt_into(h.timestamp, sizeof(h.timestamp), "%lld", (long long)timestamp);
	if (!rc)
		rc = request_string(r, h.timestamp, h.nonce, &msg);
	if (!rc && crypto_sign_ed25519_detached(sig, NULL, (const unsigned char *)msg.ptr, msg.len,
						secret_cbytes(host_sk)) != 0)
		rc = COFFER_ERR_CRYPTO;
	if (!rc) {
		sodium_bin2base64(h.signature, sizeof(h.signature), sig, sizeof(sig),
				  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
		*out = h;
	}
	buf_release(&msg);
	return rc;
}

enum coffer_err hostauth_sign_headers(const struct secret *host_sk, const char *host_id,
				      const struct hostauth_request *r, int64_t now, struct hostauth_headers *out)
{
	unsigned char raw[HOSTAUTH_NONCE_BYTES];
	char nonce[HOSTAUTH_NONCE_HEX_LEN + 1];
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(nonce, sizeof(nonce), raw, sizeof(raw));
	return hostauth_sign_headers_with(host_sk, host_id, r, now, nonce, out);
}

/* ---- the replay cache ---- */

struct replay_entry {
	unsigned char nonce[HOSTAUTH_NONCE_BYTES];
	int64_t expires; /* the entry is needed while now <= expires */
	uint32_t next;   /* index + 1 of the next entry in its chain or in the free list; 0: none */
};

struct hostauth_replay {
	pthread_mutex_t lock;
	size_t capacity;
	size_t used;
	size_t n_buckets; /* a power of two */
	uint32_t *buckets; /* index + 1 of a chain's first entry; 0: empty */
	struct replay_entry *entries;
	uint32_t free_head;
	unsigned char hash_key[crypto_shorthash_KEYBYTES]; /* random: chains cannot be aimed at */
};

enum coffer_err hostauth_replay_new(size_t capacity, struct hostauth_replay **out)
{
	struct hostauth_replay *c;
	if (capacity == 0)
		capacity = HOSTAUTH_REPLAY_CAPACITY_DEFAULT;
	if (capacity > REPLAY_CAPACITY_MAX)
		return COFFER_ERR_INVALID;
	c = calloc(1, sizeof(*c));
	if (!c)
		return COFFER_ERR_NOMEM;
	c->capacity = capacity;
	c->n_buckets = 1;
	while (c->n_buckets < capacity)
		c->n_buckets <<= 1;
	c->buckets = calloc(c->n_buckets, sizeof(*c->buckets));
	c->entries = calloc(capacity, sizeof(*c->entries));
	if (!c->buckets || !c->entries || pthread_mutex_init(&c->lock, NULL) != 0) {
		free(c->buckets);
		free(c->entries);
		free(c);
		return COFFER_ERR_NOMEM;
	}
	for (size_t i = 0; i < capacity; i++)
		c->entries[i].next = i + 1 < capacity ? (uint32_t)(i + 2) : 0;
	c->free_head = 1;
	randombytes_buf(c->hash_key, sizeof(c->hash_key));
	*out = c;
	return COFFER_OK;
}

void hostauth_replay_free(struct hostauth_replay *c)
{
	if (!c)
		return;
	pthread_mutex_destroy(&c->lock);
	free(c->buckets);
	free(c->entries);
	free(c);
}

size_t hostauth_replay_count(struct hostauth_replay *c)
{
	pthread_mutex_lock(&c->lock);
	size_t n = c->used;
	pthread_mutex_unlock(&c->lock);
	return n;
}

/* Unlinks the expired entries of one chain into the free list. Under the lock. */
static void prune_chain(struct hostauth_replay *c, uint32_t *link, int64_t now)
{
	while (*link) {
		uint32_t idx = *link;
		struct replay_entry *e = &c->entries[idx - 1];
		if (e->expires < now) {
			*link = e->next;
			e->next = c->free_head;
			c->free_head = idx;
			c->used--;
		} else {
			link = &e->next;
		}
	}
}

/*
 * Records a nonce until `expires`. COFFER_ERR_CONFLICT if it is held
 * already, COFFER_ERR_UNAVAILABLE if every slot holds a live nonce.
 */
static enum coffer_err replay_insert(struct hostauth_replay *c, const unsigned char nonce[HOSTAUTH_NONCE_BYTES],
				     int64_t expires, int64_t now)
{
	unsigned char h[crypto_shorthash_BYTES];
	enum coffer_err rc = COFFER_OK;
	crypto_shorthash(h, nonce, HOSTAUTH_NONCE_BYTES, c->hash_key);
	uint64_t hv = be_get(h, 8);
	size_t b = (size_t)(hv & (c->n_buckets - 1));

	pthread_mutex_lock(&c->lock);
	prune_chain(c, &c->buckets[b], now);
	for (uint32_t idx = c->buckets[b]; idx; idx = c->entries[idx - 1].next) {
		if (memcmp(c->entries[idx - 1].nonce, nonce, HOSTAUTH_NONCE_BYTES) == 0) {
			rc = COFFER_ERR_CONFLICT;
			goto out;
		}
	}
	if (!c->free_head)
		for (size_t i = 0; i < c->n_buckets; i++)
			prune_chain(c, &c->buckets[i], now);
	if (!c->free_head) {
		rc = COFFER_ERR_UNAVAILABLE; /* refuse rather than forget a live nonce */
		goto out;
	}
	uint32_t idx = c->free_head;
	struct replay_entry *e = &c->entries[idx - 1];
	c->free_head = e->next;
	memcpy(e->nonce, nonce, HOSTAUTH_NONCE_BYTES);
	e->expires = expires;
	e->next = c->buckets[b];
	c->buckets[b] = idx;
	c->used++;
out:
	pthread_mutex_unlock(&c->lock);
	return rc;
}

enum coffer_err hostauth_verify(const struct hostauth_request *r, const struct hostauth_presented *p,
				const unsigned char sign_pk[HOSTAUTH_PK_LEN], struct hostauth_replay *cache, int64_t now,
				const char **why)
{
	unsigned char sig[HOSTAUTH_SIG_LEN], nonce[HOSTAUTH_NONCE_BYTES];
	size_t sig_len = 0;
	int64_t ts;
	struct buf msg;
	enum coffer_err rc = COFFER_ERR_UNAUTH;

	*why = "missing or malformed host signature headers";
	if (!p || !hostauth_host_id_ok(p->host) || !p->timestamp || strlen(p->timestamp) >= HOSTAUTH_TIMESTAMP_SIZE ||
	    parse_int64(p->timestamp, 0, INT64_MAX, &ts) || !nonce_ok(p->nonce) || !p->signature ||
	    strlen(p->signature) != HOSTAUTH_SIGNATURE_B64_LEN ||
	    b64_decode_into(B64_URL, p->signature, HOSTAUTH_SIGNATURE_B64_LEN, sig, sizeof(sig), &sig_len) ||
	    sig_len != sizeof(sig) || now < 0)
		return COFFER_ERR_UNAUTH;
	if ((ts > now && ts - now > HOSTAUTH_WINDOW_S) || (now > ts && now - ts > HOSTAUTH_WINDOW_S)) {
		*why = "request timestamp outside the allowed window";
		return COFFER_ERR_UNAUTH;
	}
	buf_init(&msg, REQUEST_STRING_MAX);
	if (request_string(r, p->timestamp, p->nonce, &msg))
		goto out; /* a method or path that cannot have been signed */
	if (crypto_sign_ed25519_verify_detached(sig, (const unsigned char *)msg.ptr, msg.len, sign_pk) != 0) {
		*why = "request signature does not verify";
		goto out;
	}
	if (hex_decode(p->nonce, HOSTAUTH_NONCE_HEX_LEN, nonce, sizeof(nonce)))
		goto out;
	/* Only now, signed: junk cannot fill the cache. The entry lives as long as the timestamp is accepted. */
	rc = replay_insert(cache, nonce, ts + HOSTAUTH_WINDOW_S, now);
	if (rc == COFFER_ERR_CONFLICT) {
		*why = "request replayed";
		rc = COFFER_ERR_UNAUTH;
	} else if (rc == COFFER_ERR_UNAVAILABLE) {
		*why = "replay cache full";
	} else {
		*why = NULL;
	}
out:
	buf_release(&msg);
	return rc;
}
