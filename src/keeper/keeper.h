/*
 * keeper.h — the key custodian (`coffer keeper`): its master key and the
 * keys derived from it, app key pairs (made, wrapped, signed, stored, and
 * loaded back with every check), and its HTTP server.
 *
 * The state folder (keeper_init):
 *   keeper.key      the master key: VAULT_MASTER_LEN random bytes, 0600,
 *                   never overwritten
 *   keeper.pub      the keeper's Ed25519 public key (vault_keeper_signing_key),
 *                   64 hex characters and a newline, 0644
 *   api.credential  the api credential (vault_api_credential), 64 hex
 *                   characters and a newline, 0600
 *   api.boot.key    the seed of the api's boot-token signing key
 *                   (vault_api_boot_seed), 64 hex characters and a newline,
 *                   0600; the api reads it with --boot-key. The keeper
 *                   never reads it: it derives the public half itself.
 *
 * An app key row (store_app_key_put) for app id A, key version v:
 *   public_key      = pk (HPKE_PK_LEN, X25519)
 *                     || sig (VAULT_SIG_LEN, vault_app_key_sign(A, v, pk))
 *                     = KEEPER_PK_BLOB_LEN (96) bytes
 *   wrapped_private = keywrap_seal(wrap subkey, vault_app_key_aad(A, v), sk)
 *                     = KEYWRAP_OVERHEAD + HPKE_SK_LEN (72) bytes
 * The store is untrusted: keeper_app_key_load opens the wrapped key only
 * with the AAD of the app and version asked for, and checks that the public
 * key in the row is the unwrapped key's and that the signature verifies.
 *
 * The host registry (hostauth.h has the layouts): a host enrols with a
 * one-time join token (keeper_join_token_make, `coffer keeper join-token`)
 * and a proof that it holds its signing key; keeper_host_enrol writes its
 * row (store_host_put) with state KEEPER_HOST_STATE_READY, the registry MAC
 * over (id, name, sign_pk, seal_pk, state) and the host certificate, which
 * the api verifies with keeper.pub. Every host row the keeper reads goes
 * through keeper_host_load, which refuses (and logs) a row whose MAC does
 * not verify. The keeper never writes last_heartbeat (the api's).
 *
 * Ownership: struct keeper_keys owns its secrets (keeper_keys_release wipes
 * them). A struct keeper owns its keys, its store pool and its server;
 * keeper_stop releases all of it. The master key is only read by
 * keeper_start: the caller frees it as soon as keeper_start returns.
 *
 * Opening (keeper_open, POST /v1/open; docs/RUNPATH.md "Agent <-> keeper"):
 * a host presents a boot token the api minted; the keeper checks it under
 * the public half of the api's boot-token key (derived here, never read
 * from a file), checks the machine in the store at the time of the
 * request, opens the token's secrets version with the app key and seals
 * the values to the host (delivery.h). Every open, refused ones included,
 * is one audit event KEEPER_OPEN_ACTION; values never leave secure memory
 * unsealed and are wiped on every path.
 */
#ifndef COFFER_KEEPER_H
#define COFFER_KEEPER_H

#include <stddef.h>
#include <stdint.h>

#include "anchor.h"
#include "buf.h"
#include "deployer.h"
#include "err.h"
#include "hostauth.h"
#include "hpke.h"
#include "http_phase.h"
#include "jws.h"
#include "keywrap.h"
#include "secret.h"
#include "store.h"
#include "store_pool.h"
#include "vault.h"

#define KEEPER_KEY_FILE "keeper.key"
#define KEEPER_PUB_FILE "keeper.pub"
#define KEEPER_CREDENTIAL_FILE "api.credential"
#define KEEPER_BOOT_KEY_FILE "api.boot.key"
#define KEEPER_ANCHOR_FILE "audit.head" /* the signed audit head (keeper_audit.c) */
#define KEEPER_ROWS_KEY_FILE "api.rows.key"
#define KEEPER_DIGEST_KEY_FILE "api.digest.key"
#define KEEPER_MASTER_ENV "COFFER_KEEPER_MASTER_KEY" /* the master key as 64 hex characters */
#define KEEPER_PATH_MAX 4096

#define KEEPER_APP_KEY_VERSION 1 /* the version POST /v1/app-keys creates */
#define KEEPER_PK_BLOB_LEN (HPKE_PK_LEN + VAULT_SIG_LEN)
#define KEEPER_WRAPPED_LEN (KEYWRAP_OVERHEAD + HPKE_SK_LEN)
#define KEEPER_APP_KEYS_BODY_MAX ((size_t)4 << 10)
#define KEEPER_STORE_CONNS_DEFAULT 4
#define KEEPER_ENROL_BODY_MAX ((size_t)16 << 10)
#define KEEPER_HOST_STATE_READY HTTP_HOST_STATE_READY /* the state the shared host gate admits */
#define KEEPER_HOST_STATE_REVOKED HTTP_HOST_STATE_REVOKED /* for good: no request, no open */
#define KEEPER_HOST_NAME_MAX 63 /* ^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$ */
#define KEEPER_HOST_NAME_RULE "^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
#define KEEPER_JOIN_TTL_DEFAULT_MS ((uint64_t)3600 * 1000)
#define KEEPER_JOIN_TTL_MAX_MS ((uint64_t)7 * 24 * 3600 * 1000)
#define KEEPER_OPEN_BODY_MAX ((size_t)4 << 10) /* {"token": "<boot token>"} */
#define KEEPER_OPEN_ACTION "secrets.open"       /* the audit action of an open */

/* ---- the state folder and the master key ---- */

struct keeper_paths {
	char key[KEEPER_PATH_MAX];
	char pub[KEEPER_PATH_MAX];
	char credential[KEEPER_PATH_MAX];
	char boot_key[KEEPER_PATH_MAX];
	char rows_key[KEEPER_PATH_MAX];
	char digest_key[KEEPER_PATH_MAX];
};

/* The paths of the files of state_dir. COFFER_ERR_TOO_LARGE past KEEPER_PATH_MAX. */
COFFER_MUST_CHECK enum coffer_err keeper_paths_of(const char *state_dir, struct keeper_paths *out);

/*
 * `keeper init`: creates state_dir (0700) and writes keeper.key (a new
 * random master key, exclusive), keeper.pub, api.credential and
 * api.boot.key. When keeper.key exists already it is kept and read
 * (keeper_master_from_file's refusals apply), and only the files derived
 * from it that are missing are written (a folder made before api.boot.key
 * existed gets it): no file is ever overwritten, each is created
 * exclusively, so running init again is harmless. out (may be NULL)
 * receives the paths; *existed (may be NULL) is 1 when the master key was
 * there already, 0 when it was made; *added (may be NULL) counts the files
 * written.
 */
COFFER_MUST_CHECK enum coffer_err keeper_init(const char *state_dir, struct keeper_paths *out, int *existed,
					      unsigned *added);

/*
 * The master key from a key file (fs_read_private): COFFER_ERR_FORBIDDEN if
 * group or others may read or write it, COFFER_ERR_NOT_FOUND if absent,
 * COFFER_ERR_INVALID if it is not VAULT_MASTER_LEN bytes.
 */
COFFER_MUST_CHECK enum coffer_err keeper_master_from_file(const char *path, struct secret **master);
/*
 * The master key from KEEPER_MASTER_ENV (64 hex characters). The variable's
 * text is wiped and the variable unset in every case. COFFER_ERR_NOT_FOUND
 * if it is not set, COFFER_ERR_INVALID if it is not 64 hex characters.
 */
COFFER_MUST_CHECK enum coffer_err keeper_master_from_env(struct secret **master);

/* ---- keys derived from the master key ---- */

struct keeper_keys {
	struct secret *wrap;                   /* keywrap subkey, KEYWRAP_LABEL_APP_KEY */
	struct secret *signing;                /* Ed25519 signing key, 64-byte form */
	unsigned char signing_pk[JWS_PK_LEN];  /* what keeper.pub holds */
	struct secret *credential;             /* the api credential, VAULT_CREDENTIAL_LEN bytes */
	struct secret *join;                   /* join token MAC key (hostauth_join_key) */
	struct secret *registry;               /* host registry MAC key (hostauth_registry_key) */
	unsigned char boot_pk[JWS_PK_LEN];     /* the api's boot-token public key (vault_api_boot_seed) */
	struct secret *rows;                   /* the row MAC key (vault_rows_key), VAULT_ROWS_KEY_LEN bytes */
	struct secret *deployer_token;         /* deployer token MAC key, KEEPER_LABEL_DEPLOYER_TOKEN */
	struct secret *deployer_registry;      /* deployer registry MAC key, KEEPER_LABEL_DEPLOYER_REGISTRY */
	struct secret *digest;                 /* the service digest key (vault_digest_key): values' digests at open */
	struct secret *kms_wrap;               /* keywrap subkey of KMS keys, KDF_LABEL_KMS_KEY_WRAP (kms.h) */
	/*
	 * Not a key: the keeper-local revocation file (KEEPER_DEPLOYERS_REVOKED_FILE
	 * in the state folder), set by keeper_start from keeper_config; "" (tests,
	 * keeper_keys_derive alone): revocation is read from the rows only.
	 */
	char deployers_revoked[KEEPER_PATH_MAX];
};

COFFER_MUST_CHECK enum coffer_err keeper_keys_derive(const struct secret *master, struct keeper_keys *out);
/* Wipes and frees; a zeroed or released struct is fine. */
void keeper_keys_release(struct keeper_keys *k);

/* ---- app keys ---- */

struct keeper_app_key {
	char app_id[STORE_ID_SIZE];
	uint32_t version;
	unsigned char public_key[HPKE_PK_LEN];
	unsigned char signature[VAULT_SIG_LEN];
};

/*
 * Makes key version KEEPER_APP_KEY_VERSION of the app: a fresh X25519 pair,
 * the private key wrapped and the public key signed, stored as above. The
 * only call that makes an app key. COFFER_ERR_NOT_FOUND for an unknown app,
 * COFFER_ERR_CONFLICT if the app has that key version already.
 */
COFFER_MUST_CHECK enum coffer_err keeper_app_key_create(const struct keeper_keys *keys, struct store *s,
							const char *app_id, struct keeper_app_key *out);
/*
 * The private key of version `version` (>= 1) of the app. COFFER_ERR_CRYPTO,
 * logged as tampering (app id and version only), if the wrapped key does
 * not open under this app id and version, if the row's public key is not
 * the unwrapped key's, or if its signature does not verify.
 * COFFER_ERR_NOT_FOUND if there is no such row.
 */
COFFER_MUST_CHECK enum coffer_err keeper_app_key_load(const struct keeper_keys *keys, struct store *s,
						      const char *app_id, uint64_t version, struct secret **sk);
/*
 * keeper_app_key_load into sk, which the caller made of HPKE_SK_LEN bytes
 * (carved from an arena, say), with the public key it checked in pk: no
 * allocation, and the caller needs no multiplication of its own for pk.
 * On failure sk and pk are wiped.
 */
COFFER_MUST_CHECK enum coffer_err keeper_app_key_load_into(const struct keeper_keys *keys, struct store *s,
							   const char *app_id, uint64_t version, struct secret *sk,
							   unsigned char pk[HPKE_PK_LEN]);

/*
 * The app's org binding (deployer.h "app's org"): keeper_app_key_create
 * signs (app, the app row's org) and stores it with the key, since the
 * app row's org is the api's to rewrite. keeper_app_org_check: COFFER_OK
 * when the app's newest key carries the keeper's signature over
 * (app_id, org_id); COFFER_ERR_CRYPTO (logged) when it has none, or one
 * for another org or app, or the app has no key; store errors as they are.
 */
COFFER_MUST_CHECK enum coffer_err keeper_app_org_check(const struct keeper_keys *keys, struct store *s,
						       const char *app_id, const char *org_id);
/*
 * Keys made before the binding (schema version 11) are bound once, at the
 * first keeper start that finds no marker file (KEEPER_APP_ORGS_FILE in
 * the state folder): each gets the signature of the org its app row names
 * then (trust on first use), and the marker is written. With the marker
 * there, nothing is bound again: a key whose signature a store writer
 * removed stays unbound and its app's opens are refused.
 */
#define KEEPER_APP_ORGS_FILE "app-orgs.bound"
COFFER_MUST_CHECK enum coffer_err keeper_app_orgs_bind(const struct keeper_keys *keys, struct store *s,
						       const char *marker_file);

/* ---- hosts ---- */

/* 1 if name matches KEEPER_HOST_NAME_RULE. */
int keeper_host_name_ok(const char *name);

/* A join token valid for ttl_ms (1..KEEPER_JOIN_TTL_MAX_MS) from now, in secure memory. */
COFFER_MUST_CHECK enum coffer_err keeper_join_token_make(const struct keeper_keys *keys, uint64_t ttl_ms,
							 struct secret **token);

/* What a host sends to enrol (POST /v1/hosts/enrol); strings are borrowed. */
struct keeper_enrol_request {
	const char *join_token;
	size_t join_token_len;
	const char *name;
	unsigned char sign_pk[HOSTAUTH_PK_LEN];
	unsigned char seal_pk[HOSTAUTH_PK_LEN];
	unsigned char proof[HOSTAUTH_SIG_LEN]; /* hostauth_enrol_proof_sign */
};

struct keeper_enrolled {
	char host_id[STORE_ID_SIZE];
	char name[STORE_NAME_SIZE];
	unsigned char cert[HOSTAUTH_CERT_LEN];
	int64_t issued_at; /* unix seconds, inside cert */
};

/*
 * Enrols a host at now (unix ms): checks the join token (MAC, expiry), the
 * proof of possession and the name, spends the token (store_join_token_use)
 * and writes the host row with its MAC and cert. Refusals, with *why (never
 * a value): COFFER_ERR_UNAUTH "invalid join token", "join token expired",
 * "join token already used", "enrolment proof does not verify";
 * COFFER_ERR_INVALID for a name outside KEEPER_HOST_NAME_RULE;
 * COFFER_ERR_CONFLICT "host name is taken" (checked before the token is
 * spent). Store errors as themselves (*why NULL).
 */
COFFER_MUST_CHECK enum coffer_err keeper_host_enrol(const struct keeper_keys *keys, struct store *s,
						    const struct keeper_enrol_request *req, int64_t now,
						    struct keeper_enrolled *out, const char **why);
/*
 * The host row of id, with its registry MAC verified. COFFER_ERR_CRYPTO,
 * logged as tampering (host id only), if it does not verify (a forged or
 * edited row); COFFER_ERR_NOT_FOUND if there is none.
 */
COFFER_MUST_CHECK enum coffer_err keeper_host_load(const struct keeper_keys *keys, struct store *s, const char *id,
						   struct store_host *out);
/*
 * Revokes host id for good: its row (which must verify) gets the state
 * KEEPER_HOST_STATE_REVOKED under a new registry MAC, so the shared host
 * gate refuses each of its requests (opens included) from then on.
 * Revoking a revoked host is fine. out (may be NULL) gets the row as it
 * now is. COFFER_ERR_NOT_FOUND, COFFER_ERR_CRYPTO as keeper_host_load.
 */
/* A host's key rotation, as its agent sends it (POST /v1/hosts/rekey; hostauth_rekey). */
struct keeper_rekey_request {
	char host_id[STORE_ID_SIZE];
	unsigned char old_sign_pk[HOSTAUTH_PK_LEN];
	unsigned char sign_pk[HOSTAUTH_PK_LEN];
	unsigned char seal_pk[HOSTAUTH_PK_LEN];
	unsigned char sig_old[HOSTAUTH_SIG_LEN]; /* by the old signing key */
	unsigned char sig_new[HOSTAUTH_SIG_LEN]; /* by the new one */
};

/*
 * Moves a ready host to new keys: its row (which must verify) must hold
 * old_sign_pk, and both signatures must verify; the row gets the new keys,
 * a new registry MAC and a new cert (of the same issue time), and the old
 * keys are refused from then on. Idempotent: when the row holds the new
 * keys already (a retry after a lost answer or a crash) and sig_new
 * verifies, it answers the same. out gets the host as enrolled now.
 * Refusals with *why: COFFER_ERR_UNAUTH "unknown host", "host is revoked",
 * "the old key is not the host's", "key rotation proof does not verify";
 * COFFER_ERR_INVALID "the new keys are the old ones".
 */
COFFER_MUST_CHECK enum coffer_err keeper_host_rekey(const struct keeper_keys *keys, struct store *s,
						    const struct keeper_rekey_request *req, struct keeper_enrolled *out,
						    const char **why);
COFFER_MUST_CHECK enum coffer_err keeper_host_revoke(const struct keeper_keys *keys, struct store *s, const char *id,
						     struct store_host *out);

/* ---- deployers (keeper_deployers.c; deployer.h, docs/CRYPTO.md "Deployers") ---- */

/*
 * The deployer registry. A deployer token (`coffer keeper deployer-token`)
 * is made only with a master subkey, so a store writer cannot mint one:
 *   token key = kdf_subkey(master, KEEPER_LABEL_DEPLOYER_TOKEN, 32)
 *   raw   = id (16 random bytes) || u64be(expires_at, unix ms) || u8(role:
 *           1 admin, 2 deploy) || u8(len) || org id || u8(len) || app id or "*"
 *           || HMAC-SHA256(token key, everything before)
 *   token = "cdt_" || base64url(raw)
 * It is single use through the store (store_join_token_use of "cdt_" and
 * the id in hex). An enrolment (POST /v1/deployers/enrol) writes the row
 * with the keeper's cert (deployer_cert_sign) and its registry MAC:
 *   registry key = kdf_subkey(master, KEEPER_LABEL_DEPLOYER_REGISTRY, 32)
 *   mac = HMAC-SHA256(registry key, L(id) || L(org_id) || L(app_id) || L(role)
 *         || L(name) || L(public_key) || L(cert) || u64be(created_at)
 *         || u64be(revoked_at)),  L(x) = u32be(length of x) || x
 * A revocation updates the row (revoked_at and a new MAC) and appends the
 * id to the keeper-local KEEPER_DEPLOYERS_REVOKED_FILE (fsync'd) first, so
 * a store writer putting back the row as it was (with its old, valid MAC)
 * does not revive the key.
 */
#define KEEPER_LABEL_DEPLOYER_TOKEN "coffer deployer token v1"
#define KEEPER_LABEL_DEPLOYER_REGISTRY "coffer deployer registry v1"
#define KEEPER_DEPLOYER_KEY_LEN 32
#define KEEPER_DEPLOYERS_REVOKED_FILE "deployers.revoked"
#define KEEPER_DEPLOYER_TOKEN_PREFIX "cdt_"
#define KEEPER_DEPLOYER_TOKEN_MAX 256          /* characters */
#define KEEPER_DEPLOYER_TTL_DEFAULT_MS ((uint64_t)3600 * 1000)
#define KEEPER_DEPLOYER_TTL_MAX_MS ((uint64_t)30 * 24 * 3600 * 1000)
#define KEEPER_DEPLOYER_NAME_MAX 63
#define KEEPER_DEPLOYER_NAME_RULE "^[A-Za-z0-9][A-Za-z0-9_.@-]{0,62}$"
#define KEEPER_DEPLOYER_ACTOR_PREFIX "deployer:" /* the audit actor of a deployer: "deployer:<id>" */
#define KEEPER_DEPLOYERS_BODY_MAX ((size_t)16 << 10)

/* 1 if name matches KEEPER_DEPLOYER_NAME_RULE. */
int keeper_deployer_name_ok(const char *name);

/* What a deployer token grants. */
struct keeper_deployer_grant {
	char token_id[2 * 16 + 1];          /* hex */
	int64_t expires_at;                 /* unix ms */
	char org_id[STORE_ID_SIZE];
	char app_id[STORE_ID_SIZE];         /* an app id or DEPLOYER_ALL_APPS */
	char role[STORE_ROLE_SIZE];         /* DEPLOYER_ROLE_ADMIN or DEPLOYER_ROLE_DEPLOY */
};

/*
 * A deployer token for org_id (an id), app_id (an id, or "*") and role,
 * valid for ttl_ms (1..KEEPER_DEPLOYER_TTL_MAX_MS) from now, in secure
 * memory. COFFER_ERR_INVALID for a bad id, role or ttl.
 */
COFFER_MUST_CHECK enum coffer_err keeper_deployer_token_make(const struct keeper_keys *keys, const char *org_id,
							     const char *app_id, const char *role, uint64_t ttl_ms,
							     struct secret **token);
/*
 * Checks a deployer token at now (unix ms): COFFER_ERR_INVALID if it is
 * not one (shape), COFFER_ERR_CRYPTO if its MAC does not verify (edited,
 * another keeper's), COFFER_ERR_UNAUTH if it has expired; out on success.
 */
COFFER_MUST_CHECK enum coffer_err keeper_deployer_token_verify(const struct keeper_keys *keys, const char *token,
							       size_t token_len, int64_t now,
							       struct keeper_deployer_grant *out);

/* The registry MAC of d (every column but mac). */
COFFER_MUST_CHECK enum coffer_err keeper_deployer_mac(const struct keeper_keys *keys, const struct store_deployer *d,
						      unsigned char mac[STORE_DEPLOYER_MAC_LEN]);

/* What a new deployer sends (POST /v1/deployers/enrol); strings are borrowed. */
struct keeper_deployer_enrol_request {
	const char *token;
	size_t token_len;
	const char *name;
	unsigned char public_key[STORE_DEPLOYER_KEY_LEN];
	const char *proof; /* base64url signature over deployer_enrol_text */
};

/*
 * Enrols a deployer at now (unix ms): checks the token (MAC, expiry), the
 * name, the proof of possession, that the org exists and the app (unless
 * "*") is one of its apps, spends the token and writes the row. Refusals,
 * with *why (never a value): COFFER_ERR_UNAUTH "invalid deployer token",
 * "deployer token expired", "deployer token already used", "enrolment
 * proof does not verify"; COFFER_ERR_INVALID for a name outside the rule;
 * COFFER_ERR_NOT_FOUND "the token's org no longer exists", "the token's
 * app no longer exists". Store errors as themselves (*why NULL).
 */
COFFER_MUST_CHECK enum coffer_err keeper_deployer_enrol(const struct keeper_keys *keys, struct store *s,
							const struct keeper_deployer_enrol_request *req, int64_t now,
							struct store_deployer *out, const char **why);

/*
 * The deployer id as the keeper relies on it (for a signed route, and at
 * open for every signature): its row, whose registry MAC and keeper cert
 * verify, not revoked in the row nor in keys->deployers_revoked. Refusals,
 * with *why (fixed texts): COFFER_ERR_NOT_FOUND "unknown deployer";
 * COFFER_ERR_CRYPTO "deployer record failed verification" (logged as
 * tampering: MAC or cert); COFFER_ERR_UNAUTH "deployer key revoked";
 * COFFER_ERR_IO "deployer revocation list unreadable" (fails closed).
 * out (may be NULL) gets the row on success; on "deployer key revoked" it
 * gets the row too (the caller may name it). Store errors as themselves.
 */
COFFER_MUST_CHECK enum coffer_err keeper_deployer_live(const struct keeper_keys *keys, struct store *s,
						       const char *id, struct store_deployer *out, const char **why);
/* 1 if id is in keys->deployers_revoked (-1 when the file cannot be read). */
int keeper_deployer_revoked_locally(const struct keeper_keys *keys, const char *id);

/*
 * Revokes deployer id at now (unix ms): appends it to the local file
 * (fsync'd), then sets the row's revoked_at and MAC (a revoked row keeps
 * its first time). The row must verify (keeper_deployer_live's NOT_FOUND
 * and CRYPTO refusals, with *why).
 */
COFFER_MUST_CHECK enum coffer_err keeper_deployer_revoke(const struct keeper_keys *keys, struct store *s,
							 const char *id, int64_t now, const char **why);

/* ---- opening a machine's secrets for its host ---- */

/*
 * Opens, at now (unix seconds), the secrets the boot token names for the
 * host that presented it. host is that host's row as the caller's gate
 * loaded it (keeper_host_load: its registry MAC verified) after verifying
 * the request's signature under it. Checks, in this order, each refusal
 * with its code and a fixed *why (never a value or a token):
 *   COFFER_ERR_UNAUTH     "invalid boot token" (boottoken_verify under
 *                         keys->boot_pk: another key, malformed, edited);
 *                         "boot token expired or not yet valid"
 *   COFFER_ERR_FORBIDDEN  "boot token is for another host"
 *   COFFER_ERR_NOT_FOUND  "unknown machine" (store_machine_get, now)
 *   COFFER_ERR_CONFLICT   "machine is destroyed"
 *   COFFER_ERR_FORBIDDEN  "machine belongs to another app";
 *                         "machine is not on this host"
 *   COFFER_ERR_NOT_FOUND  "unknown release" (the token's release, whose
 *                         config the delivery is bound to)
 *   COFFER_ERR_NOT_FOUND  "unknown secrets version"
 *   COFFER_ERR_CRYPTO     "secrets manifest failed verification" (the
 *                         version's manifest does not parse for its app and
 *                         version, store.h);
 *                         "secret failed verification": the entries are not
 *                         exactly the manifest's (a name missing or added,
 *                         another value row or digest), or a value does not
 *                         open under (app id, name, key version, value id):
 *                         a ciphertext moved to another name, app or value
 *                         row;
 *                         "app key failed verification" (keeper_app_key_load,
 *                         or no key of the version a ciphertext names).
 *   COFFER_ERR_FORBIDDEN  "release not signed by a live deployer of this
 *                         app": no row of `signatures` for the hash of the
 *                         release statement (deployer_release_text of the
 *                         token's app, the release's config, the token's
 *                         secrets version and its manifest) by a deployer
 *                         that keeper_deployer_live accepts, that covers
 *                         the app (deployer_covers, the app row's org) and
 *                         whose signature verifies; "secrets manifest not
 *                         signed by a live deployer of this app", the same
 *                         for the version's manifest text (version > 0).
 *                         Each signature found and not relied on is logged
 *                         (signature_refused) and named in the detail.
 *   COFFER_ERR_CRYPTO     "secret failed verification" also when an opened
 *                         value's digest (keys->digest's subkey for the
 *                         app) is not the manifest's, it holds a NUL, or it
 *                         is over DELIVERY_VALUE_MAX bytes (over 1 MiB in
 *                         all): checks "value_digest", "value_nul",
 *                         "value_too_large", "values_too_large".
 *                         One secret refuses the whole open; it is logged
 *                         (secret_open_refused: app id, name, check) and
 *                         named in the event's detail ("failed").
 * A secrets version of 0 in the token (the app had none) opens as an empty
 * list. Then the values are sealed (delivery_seal) to host->seal_pk for
 * (host id, machine id, jti, hex SHA-256 of the release's config) into
 * *sealed, replaced only on success.
 * Every call appends one audit event (store_audit_append): action
 * KEEPER_OPEN_ACTION, actor "host:<host id>", org and app (its name) when
 * known, detail {"host","machine","release","version","config","deployer",
 * "manifest_deployer","names":[...]} (the deployers whose signatures the
 * open relied on, null until known or for version 0's manifest)
 * (names only, and only what is known; "failed":{"name","check"} for a
 * secret's refusal, {"check"} for a signature's, and "refused_signatures":
 * [{"deployer","text","why"}]), outcome "ok", "refused: <why>" or
 * "error: <code name>"; request_id (may be NULL) is kept in it. An open
 * whose event cannot be appended is not delivered (the store's error).
 * Store errors pass through with *why NULL.
 */
COFFER_MUST_CHECK enum coffer_err keeper_open(const struct keeper_keys *keys, struct store *s,
					      const struct store_host *host, const char *token, size_t token_len,
					      int64_t now, const char *request_id, struct buf *sealed,
					      const char **why);
/*
 * The audit event of an open refused before keeper_open ran (the request's
 * signature, or its body): actor "host:<host_id>" when verified, else
 * "anonymous" with host_id (may be NULL; kept only when it is a well-formed
 * host id) in the detail as "claimed_host"; outcome "refused: <reason>".
 */
COFFER_MUST_CHECK enum coffer_err keeper_open_audit_refusal(struct store *s, const char *host_id, int verified,
							    const char *reason, const char *request_id);

/* ---- the audit anchor (keeper_audit.c; docs/STORE.md "Audit chain") ---- */

#define KEEPER_ANCHOR_PROBLEM_MAX 256
#define KEEPER_AUDIT_ANCHOR_PATH "/v1/audit/anchor"
/*
 * POST /v1/verify (the api credential): {"app_id", "app", "org_id", "name", "actor",
 * "stored": {"sealed", "key_version", "value_id"}, "candidate": {"sealed",
 * "key_version"}} -> {"match": true|false}. The keeper opens both (the
 * candidate sealed for VAULT_VERIFY_VALUE_ID), compares them in constant
 * time (BLAKE2b of each under a random key, then sodium_memcmp) and wipes
 * them; the audit event names the app, the name, the actor and the
 * outcome, never the candidate.
 */
#define KEEPER_VERIFY_PATH "/v1/verify"
#define KEEPER_VERIFY_BODY_MAX ((size_t)256 << 10)

/*
 * The keeper's signed checkpoint of the audit chain's head (anchor.h),
 * kept at path (KEEPER_ANCHOR_FILE in the state folder; NULL keeps it in
 * memory, for tests). A missing file starts at the empty log, so the first
 * advance checks the whole chain from genesis; a file that does not parse
 * or is not signed by keys->signing_pk is refused (*why says which). A
 * background poker (anchor.h) advances it after pokes; the first runs at
 * once. keys and pool are borrowed and must outlive the anchor.
 */
struct keeper_anchor;
COFFER_MUST_CHECK enum coffer_err keeper_anchor_open(const struct keeper_keys *keys, struct store_pool *pool,
						     const char *path, struct keeper_anchor **out, const char **why);
/*
 * Moves the anchor to the chain's last event if the chain extends it: the
 * anchored event is still there with the anchored hash, and every later
 * event chains from it. Then it signs and saves the new head (atomically).
 * When the chain does not extend it (cut, rewritten, replaced; an attacker
 * can recompute the unkeyed chain but not sign), COFFER_ERR_CONFLICT: the
 * old anchor stays, the problem is logged (audit_chain_broken) and, once
 * until the chain extends again, appended as an audit event. *out gets the
 * anchor held afterwards and problem ("" when none) why it did not move, on
 * COFFER_OK and COFFER_ERR_CONFLICT. Store errors as themselves.
 */
COFFER_MUST_CHECK enum coffer_err keeper_anchor_advance(struct keeper_anchor *a, struct anchor_head *out,
							char *problem, size_t problem_size);
/* Asks for an advance soon, without waiting (after an append). NULL is allowed. */
void keeper_anchor_poke(struct keeper_anchor *a);
/* Runs a pending advance, stops the poker, frees a. NULL is allowed. */
void keeper_anchor_close(struct keeper_anchor *a);

/* ---- the server ---- */

struct keeper_config {
	const char *store_url;   /* store_open URL */
	const char *listen;      /* HOST:PORT; port 0 picks a free port */
	const char *ready_file;  /* NULL, or written with "http(s)://HOST:PORT\n" once listening */
	unsigned store_conns;    /* store connections (1..STORE_POOL_MAX); 0: KEEPER_STORE_CONNS_DEFAULT */
	const char *anchor_file; /* the audit anchor's file (keeper_anchor_open); NULL: in memory */
	const char *tls_cert_file, *tls_key_file; /* PEM; both NULL: plain HTTP on loopback only */
	const char *metrics_listen; /* NULL, or HOST:PORT of the metrics and health listener (metrics_server.h) */
	const char *deployers_revoked_file; /* KEEPER_DEPLOYERS_REVOKED_FILE's path; NULL: none (tests) */
	const char *app_orgs_file; /* KEEPER_APP_ORGS_FILE's path (keeper_app_orgs_bind); NULL: none (tests) */
};

struct keeper;

/*
 * Derives the keys from master, opens the store connections, starts the
 * audit anchor, the HTTP server (GET /v1/health, POST /v1/app-keys, POST
 * /v1/hosts/enrol, GET /v1/hosts/self, POST /v1/open, POST
 * /v1/deployers/enrol, GET /v1/deployers, POST /v1/deployers/:id/revoke,
 * POST /v1/audit/anchor) and writes the ready file.
 */
COFFER_MUST_CHECK enum coffer_err keeper_start(const struct keeper_config *cfg, const struct secret *master,
					       struct keeper **out);
/* The port the server is bound to. */
uint16_t keeper_port(const struct keeper *k);
const struct keeper_keys *keeper_get_keys(const struct keeper *k);
/* The store connections the handlers share (store_pool.h). */
struct store_pool *keeper_store_pool(const struct keeper *k);
/* Stops the server gracefully, closes the store, wipes the keys, frees k. NULL is allowed. */
void keeper_stop(struct keeper *k);

/* ---- app KMS keys (keeper_kms.c; docs/CRYPTO.md "App KMS keys") ---- */

#define KEEPER_KMS_KEYS_BODY_MAX ((size_t)4 << 10)
#define KEEPER_KMS_OP_BODY_MAX ((size_t)96 << 10) /* base64url of KMS_ENVELOPE_MAX and of the data, and names */
#define KEEPER_KMS_ACTION "kms.use"               /* the audit action of a machine's use of a key */
#define KEEPER_KMS_AUDIT_WINDOW_S 60              /* an ok use is audited once per machine, key and op per window */

/*
 * Makes version 1 of the app's key `name` (gen), or the next version of
 * an existing one (rotate: type NULL, the key's own): KMS_KEY_LEN random
 * bytes wrapped under keys->kms_wrap with kms_wrap_aad, stored and sealed.
 * *out is the stored row. COFFER_ERR_CONFLICT: gen of a name that exists,
 * or a rotate that lost to another one made at the same time (its version
 * is taken);
 * COFFER_ERR_NOT_FOUND: an unknown app, or rotate of a key that does not
 * exist.
 */
COFFER_MUST_CHECK enum coffer_err keeper_kms_make(const struct keeper_keys *keys, struct store *s, const char *app_id,
						  const char *name, const char *type, struct store_kms_key *out);

/*
 * The machine's grant to use its app's KMS keys, checked on the store now
 * (keeper_open.c): the machine exists, is on host, is not destroyed, and
 * its release (the one it runs, else the one it is to run) is signed, with
 * the secrets version it names, by a live deployer of its app, as an open
 * checks it. *app (STORE_ID_SIZE) is the machine's app; *why on a refusal.
 */
COFFER_MUST_CHECK enum coffer_err keeper_kms_grant(const struct keeper_keys *keys, struct store *s,
						   const struct store_host *host, const char *machine_id,
						   char app[STORE_ID_SIZE], const char **why);

/* One machine's request: POST /v1/kms/<op>. */
struct keeper_kms_request {
	const char *op;   /* sign, verify, encrypt, decrypt */
	const char *name; /* the key */
	const void *data; /* the data (sign, verify, encrypt) or the envelope (decrypt) */
	size_t len;
	const void *sig; /* verify: the signature envelope */
	size_t sig_len;
};

/*
 * Runs req with the app's key: sign and encrypt with its newest version,
 * verify and decrypt with the version the envelope names. *out gets the
 * envelope (sign, encrypt), the plaintext (decrypt) or nothing (verify);
 * *valid the outcome of verify. COFFER_ERR_NOT_FOUND: no such key (or
 * version); COFFER_ERR_INVALID: an op the key's type does not do;
 * COFFER_ERR_CRYPTO: a ciphertext that does not open or a row that fails.
 */
COFFER_MUST_CHECK enum coffer_err keeper_kms_run(const struct keeper_keys *keys, struct store *s, const char *app_id,
						 const struct keeper_kms_request *req, struct buf *out, int *valid,
						 uint64_t *version, const char **why);

#endif
