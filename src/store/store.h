/*
 * store.h — coffer's persistent state behind one interface, over SQLite or
 * PostgreSQL.
 *
 * Ownership: a struct store is one database connection, owned by whoever
 * opened it and used by ONE thread at a time (open one per thread). Every
 * struct filled by a store_* call is owned by the caller; the *_list types
 * own their items and are freed with their *_release function, which also
 * accepts a zeroed or already released list. Inputs are only read: the
 * store keeps no pointer to them.
 *
 * The store never sees a plaintext: ciphertexts, wrapped keys and token
 * hashes are opaque bytes to it. Names and digests are not secret. Every
 * statement is prepared with bound parameters; no SQL is built from input.
 * Times are unix milliseconds; ids are STORE_ID_LEN lower-case hex
 * characters made by the store from random bytes.
 *
 * Errors: COFFER_ERR_NOT_FOUND (no such row), COFFER_ERR_CONFLICT (a unique
 * name or key exists already), COFFER_ERR_INVALID (a value the schema
 * refuses, e.g. an empty name or an unknown role), COFFER_ERR_TOO_LARGE (a
 * field past its size below, or a limit passed to store_secrets_put),
 * COFFER_ERR_UNAVAILABLE (the database is busy past the wait, or the server
 * is gone: reopen), COFFER_ERR_STORE (anything else the database refused).
 */
#ifndef COFFER_STORE_H
#define COFFER_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

#define STORE_ID_BYTES 12
#define STORE_ID_LEN (STORE_ID_BYTES * 2)
#define STORE_ID_SIZE (STORE_ID_LEN + 1)
#define STORE_NAME_MAX 255 /* org, app and secret names, in bytes */
#define STORE_NAME_SIZE (STORE_NAME_MAX + 1)
#define STORE_ROLE_SIZE 16
#define STORE_STATUS_SIZE 32
#define STORE_ACTOR_SIZE 256
#define STORE_DESCRIPTION_SIZE 256
#define STORE_DIGEST_SIZE 65     /* digest text, at most 64 characters */
#define STORE_HASH_LEN 32        /* a token hash; an audit chain hash */
#define STORE_KEY_BLOB_MAX 256   /* an app's public key or wrapped private key */
#define STORE_APP_ORG_SIG_LEN 64 /* the keeper's signature binding an app to its org */
#define STORE_CIPHERTEXT_MAX ((size_t)1 << 20)
#define STORE_AUDIT_FIELD_MAX ((size_t)64 << 10)
#define STORE_AUDIT_LIST_MAX 1000 /* most events one store_audit_list returns */
#define STORE_GRACE_MS_DEFAULT 30000
#define STORE_HOST_KEY_LEN 32     /* a host's sign_pk (Ed25519) or seal_pk (X25519) */
#define STORE_HOST_MAC_LEN 32     /* the keeper's registry MAC */
#define STORE_HOST_CERT_MAX 128   /* the keeper's certificate blob */
#define STORE_HOST_STATE_SIZE 16
#define STORE_JOIN_TOKEN_ID_MAX 64 /* a spent join token's id, in characters */
#define STORE_MACHINE_STATE_SIZE 16
#define STORE_RELEASE_TEXT_MAX ((size_t)64 << 10) /* a release's config, reason or progress, in bytes */
#define STORE_MACHINE_TAIL_MAX ((size_t)8 << 10)  /* a machine's output tail, in bytes */

struct store;

/*
 * Opens a store and brings its schema up to date. url is
 *   - "postgres://..." or "postgresql://..." (a libpq URI), or
 *   - "sqlite:PATH" or a plain PATH: a SQLite file, created with mode 0600
 *     if missing, in WAL mode with synchronous=FULL (a commit is on disk when
 *     it returns), foreign keys on and a busy wait of 30 s for writers.
 * Migrations are versioned, recorded in schema_migrations (version,
 * applied_at) and applied once, in one transaction that concurrent openers
 * serialise on (SQLite: BEGIN IMMEDIATE; PostgreSQL: an advisory lock). A
 * database whose schema is newer than this binary is refused.
 * COFFER_ERR_INVALID for an unknown URL scheme. The URL is never logged.
 */
COFFER_MUST_CHECK enum coffer_err store_open(const char *url, struct store **out);
/* Closes the connection (wiping its row keys); NULL is allowed. */
void store_close(struct store *s);

/*
 * Row authentication (docs/STORE.md "Row authentication"). The rows a role
 * grants access by carry an HMAC-SHA256 (mac) under a key the store does
 * not hold: the role that relies on a table gives its key to each
 * connection before it reads or writes that table. Every read of such a
 * table verifies each row and refuses one that does not verify (forged,
 * edited, or written before schema version 8) with COFFER_ERR_TAMPERED and
 * one log line row_tampered (table, key); every write seals the row it
 * wrote, and an update verifies the row as it was first, in the same
 * transaction. Reading or writing a table whose key was not given is
 * COFFER_ERR_INTERNAL (log row_key_missing).
 */
enum store_table {
	STORE_TABLE_TOKENS,
	STORE_TABLE_MACHINES,
	STORE_TABLE_RELEASES,
	STORE_TABLE_SECRET_VERSIONS,
	STORE_TABLE_APPS,
	STORE_TABLE_KMS_KEYS,
	STORE_TABLE__COUNT
};
#define STORE_ROW_KEY_LEN 32
/* Gives s the MAC key of table t (copied; wiped by store_close). */
COFFER_MUST_CHECK enum coffer_err store_auth_key(struct store *s, enum store_table t,
						 const unsigned char key[STORE_ROW_KEY_LEN]);
/* The table's name in SQL ("tokens"); NULL for an unknown table. */
const char *store_table_name(enum store_table t);
/* "sqlite" or "postgres". */
const char *store_backend_name(const struct store *s);
/* The number of migrations this binary knows for s's backend (the schema version). */
uint64_t store_schema_version(const struct store *s);
/* One cheap statement, for a readiness check: COFFER_OK when the database answers. */
COFFER_MUST_CHECK enum coffer_err store_ping(struct store *s);
/*
 * A new id as the store makes them (STORE_ID_LEN lower-case hex characters
 * from random bytes), for rows whose id the caller must know before the row
 * exists (a host: the keeper authenticates its id).
 */
void store_new_id(char id[STORE_ID_SIZE]);

/*
 * Transactions of the caller: every store call between store_tx_begin and
 * store_tx_end runs in ONE write transaction (SQLite: BEGIN IMMEDIATE;
 * PostgreSQL: a transaction), so several changes (a machine created and
 * the release's progress that names it) are stored together or not at
 * all. The functions that open a transaction of their own join the
 * caller's instead. store_tx_end commits when rc is COFFER_OK and no call
 * inside failed, else rolls back; it returns the outcome (rc, the first
 * failure inside, or the commit's error). Not nested.
 */
COFFER_MUST_CHECK enum coffer_err store_tx_begin(struct store *s);
COFFER_MUST_CHECK enum coffer_err store_tx_end(struct store *s, enum coffer_err rc);
/*
 * Inside store_tx_begin/_end: locks the app's row until the end of the
 * transaction (PostgreSQL: SELECT ... FOR UPDATE; SQLite holds the write
 * lock already). COFFER_ERR_NOT_FOUND for an unknown app.
 */
COFFER_MUST_CHECK enum coffer_err store_app_lock(struct store *s, const char *app_id);

/*
 * Group commit (store_group.c, docs/STORE.md "Group commit"): the writes
 * of concurrent writers committed together, in one transaction and one
 * durable commit, each writer answered only once the commit that holds
 * its change is durable.
 *
 * A change is a function that makes store calls on the store it is given
 * (not on its own: it may run on another writer's connection, in that
 * writer's thread, while its own writer waits). store_group_run queues it
 * on the group of s (store_group_attach; a pool's connections share one)
 * and returns its outcome once the commit that holds it is durable. In a
 * batch each change runs inside a savepoint, in queue order: one that
 * fails is rolled back alone (its outcome is its error) and the others
 * commit; when the transaction itself fails, each change runs again in a
 * transaction of its own. A change must therefore be safe to run twice
 * when its first run was rolled back (store calls only, results written to
 * its argument). The store calls inside join the batch's transaction, as
 * inside store_tx_begin: audit events are chained in commit order, a
 * secrets version is max + 1 of what the transaction sees.
 * Without a group (a store opened alone), or inside the caller's
 * transaction, the change runs at once in a transaction of its own (or
 * the caller's).
 */
struct store_group;
struct store_audit_event;
typedef enum coffer_err (*store_change_fn)(struct store *s, void *arg);
COFFER_MUST_CHECK enum coffer_err store_group_new(struct store_group **out);
/* Frees g; no writer may be using it. NULL is allowed. */
void store_group_free(struct store_group *g);
/* The writes of s through store_group_run join g from now on (NULL: none). */
void store_group_attach(struct store *s, struct store_group *g);
COFFER_MUST_CHECK enum coffer_err store_group_run(struct store *s, store_change_fn fn, void *arg);
/* store_audit_append as a change of the group of s. */
COFFER_MUST_CHECK enum coffer_err store_group_audit_append(struct store *s, const struct store_audit_event *ev,
							  uint64_t *seq);
/* What a group did: its commits, the changes they held (changes / commits: the mean batch), and the queue. */
struct store_group_stats {
	uint64_t commits; /* transactions committed by leaders */
	uint64_t changes; /* changes the leaders ran: committed, or failed alone (a lone change: no savepoint) */
	uint64_t queued;  /* changes waiting for the next leader, now */
};
void store_group_stats(struct store_group *g, struct store_group_stats *out);

/* ---- orgs ---- */

struct store_org {
	char id[STORE_ID_SIZE];
	char name[STORE_NAME_SIZE];
	int64_t created_at;
};

/* COFFER_ERR_CONFLICT if the name is taken. */
COFFER_MUST_CHECK enum coffer_err store_org_create(struct store *s, const char *name, struct store_org *out);
COFFER_MUST_CHECK enum coffer_err store_org_get_by_name(struct store *s, const char *name, struct store_org *out);
COFFER_MUST_CHECK enum coffer_err store_org_get(struct store *s, const char *id, struct store_org *out);

/* ---- tokens (stored only as a hash of the token) ---- */

struct store_token {
	char id[STORE_ID_SIZE];
	char org_id[STORE_ID_SIZE];
	unsigned char hash[STORE_HASH_LEN];
	char role[STORE_ROLE_SIZE];         /* "admin", "deploy" or "read" */
	char app_id[STORE_ID_SIZE];         /* "" = every app of the org */
	int64_t expires_at;                 /* 0 = never */
	int64_t revoked_at;                 /* 0 = not revoked */
	int64_t created_at;
	char description[STORE_DESCRIPTION_SIZE];
	int64_t rotated_at;                 /* 0 = never rotated (schema version 14) */
};

/*
 * Stores in's org_id, hash, role, app_id, expires_at and description; out
 * (which may be in) receives the row with its new id and created_at.
 * COFFER_ERR_INVALID for an unknown role, COFFER_ERR_CONFLICT for a hash
 * that exists, COFFER_ERR_NOT_FOUND for an unknown org or app.
 */
COFFER_MUST_CHECK enum coffer_err store_token_insert(struct store *s, const struct store_token *in,
						     struct store_token *out);
/* The token with this hash, revoked or expired ones included: the caller judges. */
COFFER_MUST_CHECK enum coffer_err store_token_get_by_hash(struct store *s, const unsigned char hash[STORE_HASH_LEN],
							  struct store_token *out);

/*
 * Whether the tokens key s was given is this store's: the oldest token row
 * must verify (COFFER_ERR_TAMPERED otherwise); a store without tokens
 * passes. `api bootstrap` checks it before it writes anything.
 */
COFFER_MUST_CHECK enum coffer_err store_token_key_check(struct store *s);

struct store_token_list {
	struct store_token *items;
	size_t n;
};

/* The org's token with this id; COFFER_ERR_NOT_FOUND if the org has none. */
COFFER_MUST_CHECK enum coffer_err store_token_get(struct store *s, const char *org_id, const char *id,
						  struct store_token *out);
/* The org's tokens, oldest first. */
COFFER_MUST_CHECK enum coffer_err store_token_list(struct store *s, const char *org_id, struct store_token_list *out);
void store_token_list_release(struct store_token_list *l);
/*
 * Marks the org's token revoked (now). Revoking a revoked token is fine and
 * keeps the first time. COFFER_ERR_NOT_FOUND if the org has no such token.
 */
COFFER_MUST_CHECK enum coffer_err store_token_revoke(struct store *s, const char *org_id, const char *token_id);
/*
 * Token rotation, in one transaction: the org's live token old_id is marked
 * rotated (now) and expires at old_until at the latest (an earlier expiry
 * is kept), and in is stored as store_token_insert does (out receives it).
 * COFFER_ERR_NOT_FOUND if the org has no such token, or it is revoked or
 * was rotated already; nothing is written then.
 */
COFFER_MUST_CHECK enum coffer_err store_token_rotate(struct store *s, const char *org_id, const char *old_id,
						     int64_t old_until, const struct store_token *in,
						     struct store_token *out);

/* ---- apps ---- */

struct store_app {
	char id[STORE_ID_SIZE];
	char org_id[STORE_ID_SIZE];
	char name[STORE_NAME_SIZE];
	int64_t created_at;
	uint64_t secrets_head;     /* current secrets version; 0 = none */
	uint64_t deployed_version; /* secrets version the app last ran; 0 = none */
	uint64_t current_release;  /* 0 = none */
	int64_t grace_ms;
};

/*
 * App names are unique across the whole store (like Fly): COFFER_ERR_CONFLICT
 * if the name is taken, in any org. grace_ms 0 means STORE_GRACE_MS_DEFAULT.
 */
COFFER_MUST_CHECK enum coffer_err store_app_create(struct store *s, const char *org_id, const char *name,
						   int64_t grace_ms, struct store_app *out);
COFFER_MUST_CHECK enum coffer_err store_app_get_by_name(struct store *s, const char *name, struct store_app *out);
COFFER_MUST_CHECK enum coffer_err store_app_get(struct store *s, const char *id, struct store_app *out);

struct store_app_list {
	struct store_app *items;
	size_t n;
};

/* The org's apps sorted by name (bytewise). */
COFFER_MUST_CHECK enum coffer_err store_app_list(struct store *s, const char *org_id, struct store_app_list *out);
void store_app_list_release(struct store_app_list *l);
/*
 * Deletes the app and everything that hangs from it, in one transaction:
 * keys, secret versions and values, releases, machines and tokens scoped to
 * it. Audit events stay. The name is free again afterwards; a new app of
 * that name has a new id, so nothing of the old one applies to it.
 */
COFFER_MUST_CHECK enum coffer_err store_app_destroy(struct store *s, const char *app_id);

/* ---- app keys (opaque to the store) ---- */

struct store_app_key {
	char app_id[STORE_ID_SIZE];
	uint64_t version;
	unsigned char public_key[STORE_KEY_BLOB_MAX];
	size_t public_key_len;
	unsigned char wrapped_private[STORE_KEY_BLOB_MAX];
	size_t wrapped_private_len;
	int64_t created_at;
	unsigned char org_sig[STORE_APP_ORG_SIG_LEN]; /* the keeper's "app's org" signature (deployer.h) */
	size_t org_sig_len;                           /* 0: none (a key made before schema version 11) */
};
struct store_app_key_list {
	struct store_app_key *items;
	size_t n;
};

/*
 * Stores key version `version` (>= 1) of the app, with org_sig
 * (STORE_APP_ORG_SIG_LEN bytes). COFFER_ERR_CONFLICT if it exists,
 * COFFER_ERR_NOT_FOUND for an unknown app, COFFER_ERR_TOO_LARGE for a blob
 * past STORE_KEY_BLOB_MAX.
 */
COFFER_MUST_CHECK enum coffer_err store_app_key_put(struct store *s, const char *app_id, uint64_t version,
						    const unsigned char *public_key, size_t public_key_len,
						    const unsigned char *wrapped_private, size_t wrapped_private_len,
						    const unsigned char org_sig[STORE_APP_ORG_SIG_LEN]);
/* Key `version` of the app, or its highest version when version is 0. */
COFFER_MUST_CHECK enum coffer_err store_app_key_get(struct store *s, const char *app_id, uint64_t version,
						    struct store_app_key *out);
/* The keys that have no org signature yet (the keeper signs them once, keeper_app_orgs_bind). */
COFFER_MUST_CHECK enum coffer_err store_app_key_unbound(struct store *s, struct store_app_key_list *out);
void store_app_key_list_release(struct store_app_key_list *l);
/* Gives key `version` of the app its org signature: COFFER_ERR_NOT_FOUND if there is no such key without one. */
COFFER_MUST_CHECK enum coffer_err store_app_key_bind(struct store *s, const char *app_id, uint64_t version,
						     const unsigned char org_sig[STORE_APP_ORG_SIG_LEN]);

/* ---- secrets: every change is a new immutable version ---- */

/*
 * One element of a change: set `name` to a ciphertext, or remove it.
 * value_id is the id of the new value row (store_new_id), which the api
 * binds into the ciphertext's associated data (vault.h) before it stores
 * it; NULL lets the store make one (a value nothing opens: store tests).
 */
struct store_secret_change {
	const char *name;
	const unsigned char *ciphertext; /* ignored when remove */
	size_t ciphertext_len;
	const char *digest;              /* ignored when remove */
	uint64_t key_version;            /* ignored when remove */
	int remove;                      /* 1: unset the name (fine if it is not set) */
	const char *value_id;            /* ignored when remove; NULL: a new id */
};

/*
 * Optional limits checked on the new version inside the transaction, so
 * that concurrent changes cannot pass them together. bytes counts the
 * ciphertexts, less per_value_overhead for each (so it can bound the
 * plaintext values when the sealing overhead is fixed). 0 = no limit.
 */
struct store_secret_limits {
	uint64_t max_count;
	uint64_t max_bytes;
	uint64_t per_value_overhead;
};

/*
 * Makes a new secrets version of the app from its head with the changes
 * applied in order (a later change to the same name wins), all or nothing,
 * in one transaction that holds the app's lock (SQLite: BEGIN IMMEDIATE;
 * PostgreSQL: SELECT ... FOR UPDATE on the app row). The new version is one
 * more than the highest version ever made (the head may have been moved
 * back), gets `status` (e.g. "staged") and `actor`, and becomes the head.
 * A set name keeps its first-set time; its value row is new. limits may be
 * NULL. The version's manifest (below) is the head's manifest with the
 * changes applied, not the head's entries: entries edited in the store do
 * not become part of a new manifest. COFFER_ERR_NOT_FOUND for an unknown
 * app, COFFER_ERR_TOO_LARGE past a limit, COFFER_ERR_INVALID for a name or
 * digest that a manifest cannot hold (a space, a control byte) or a
 * value_id that is not an id, COFFER_ERR_CRYPTO when the head's manifest
 * does not parse; on any error nothing is stored and the head is unchanged.
 */
COFFER_MUST_CHECK enum coffer_err store_secrets_put(struct store *s, const char *app_id,
						    const struct store_secret_change *changes, size_t n,
						    const char *actor, const char *status,
						    const struct store_secret_limits *limits, uint64_t *new_version);

/*
 * store_secrets_put, refusing with COFFER_ERR_CONFLICT (nothing stored)
 * unless the new version's manifest is exactly expect_manifest (the text a
 * deployer signed; NULL: no such check).
 */
COFFER_MUST_CHECK enum coffer_err store_secrets_put_signed(struct store *s, const char *app_id,
							   const struct store_secret_change *changes, size_t n,
							   const char *actor, const char *status,
							   const struct store_secret_limits *limits,
							   const char *expect_manifest, uint64_t *new_version);

/*
 * The manifest text store_secrets_put makes for version `version` of
 * app_id from the head (head_version, its manifest text; 0 and NULL when
 * the app has none) and the changes, each set carrying its value_id: into
 * out (reset first). The CLI builds the text it signs with it, the api the
 * one it checks the signature against. COFFER_ERR_INVALID for a change a
 * manifest cannot hold, COFFER_ERR_CRYPTO when head_manifest does not parse.
 */
COFFER_MUST_CHECK enum coffer_err store_manifest_next(const char *app_id, uint64_t head_version,
						      const char *head_manifest, uint64_t version,
						      const struct store_secret_change *changes, size_t n,
						      struct buf *out);

struct store_secret {
	char name[STORE_NAME_SIZE];
	char value_id[STORE_ID_SIZE]; /* the value row (the version it was set in) */
	unsigned char *ciphertext;
	size_t ciphertext_len;
	char digest[STORE_DIGEST_SIZE];
	uint64_t key_version;
	int64_t created_at; /* when the name was first set (kept across updates) */
	int64_t updated_at; /* when this value was set */
};

/*
 * A secrets version's manifest: each name -> the value row it maps to and
 * its digest. Stored as canonical text in secret_versions.manifest:
 *   "coffer secrets manifest v1\n" "app " app_id "\n" "version " N "\n"
 *   then one line per name, sorted bytewise: name " " value_id " " digest "\n"
 * (N in decimal, no leading zero; names and digests hold no space, control
 * byte or DEL). One spelling per manifest: anything else does not parse.
 */
struct store_manifest_item {
	char name[STORE_NAME_SIZE];
	char value_id[STORE_ID_SIZE];
	char digest[STORE_DIGEST_SIZE];
};

#define STORE_MANIFEST_MAX ((size_t)1 << 20) /* a manifest's text, in bytes */

/*
 * Parses text as the manifest of exactly (app_id, version), the canonical
 * spelling only, into *items (malloc'd, the caller's to free; sorted by
 * name) and *n. COFFER_ERR_CRYPTO for anything else (nothing written).
 */
COFFER_MUST_CHECK enum coffer_err store_manifest_parse(const char *app_id, uint64_t version, const char *text,
						       struct store_manifest_item **items, size_t *n);

struct store_secret_list {
	uint64_t version; /* 0 when the app has no secrets version yet */
	int64_t created_at;
	char actor[STORE_ACTOR_SIZE];
	char status[STORE_STATUS_SIZE];
	struct store_secret *items; /* the version's entries, sorted by name, bytewise */
	size_t n;
	/*
	 * The version's manifest, sorted by name. manifest_ok is 1 when it
	 * parsed for exactly this app and version (or version is 0), else 0
	 * with no items: a version made before schema 7, or an edited text.
	 */
	int manifest_ok;
	struct store_manifest_item *manifest;
	size_t manifest_n;
	char *manifest_text; /* the manifest as stored, what a deployer signed (NULL for version 0) */
};

/*
 * The secrets of version `version` of the app, or of its head when version
 * is 0 (an app without secrets gives an empty list with version 0), and
 * the version's manifest as stored: whoever relies on the values checks
 * the entries against it (the keeper, before it opens).
 * COFFER_ERR_NOT_FOUND for an unknown app or version.
 */
COFFER_MUST_CHECK enum coffer_err store_secrets_get(struct store *s, const char *app_id, uint64_t version,
						    struct store_secret_list *out);
void store_secret_list_release(struct store_secret_list *l);

struct store_secret_version {
	uint64_t version;
	int64_t created_at;
	char actor[STORE_ACTOR_SIZE];
	char status[STORE_STATUS_SIZE];
	char *manifest; /* its text ("" when it has none), owned by the list */
};

/* One version's row (MAC checked), its manifest text included: store_secret_version_clear after. */
COFFER_MUST_CHECK enum coffer_err store_secrets_version_get(struct store *s, const char *app_id, uint64_t version,
							    struct store_secret_version *out);
void store_secret_version_clear(struct store_secret_version *v);
/* The highest secrets version the app ever had (0: none): the next one store_secrets_put makes is one more. */
COFFER_MUST_CHECK enum coffer_err store_secrets_version_max(struct store *s, const char *app_id, uint64_t *max);

struct store_secret_version_list {
	struct store_secret_version *items; /* oldest first */
	size_t n;
};

COFFER_MUST_CHECK enum coffer_err store_secrets_history(struct store *s, const char *app_id,
							struct store_secret_version_list *out);
void store_secret_version_list_release(struct store_secret_version_list *l);

/* Number of names and bytes of ciphertext in a version (0 = head). */
COFFER_MUST_CHECK enum coffer_err store_secrets_stats(struct store *s, const char *app_id, uint64_t version,
						      uint64_t *count, uint64_t *bytes);
/* Moves the app's head to an existing version (0 = none). */
COFFER_MUST_CHECK enum coffer_err store_secrets_set_head(struct store *s, const char *app_id, uint64_t version);
/* Sets a version's status ("staged", "deployed", "pending", "failed", "superseded"). */
COFFER_MUST_CHECK enum coffer_err store_secrets_set_status(struct store *s, const char *app_id, uint64_t version,
							   const char *status);

/* ---- hosts (schema version 2) ---- */

/*
 * A host row. The store authenticates nothing: the keeper writes every
 * field but last_heartbeat, with `mac` (its registry MAC) and `cert` (its
 * certificate), and each reader checks what it relies on (hostauth.h).
 * The api writes last_heartbeat only.
 */
struct store_host {
	char id[STORE_ID_SIZE];
	char name[STORE_NAME_SIZE];
	unsigned char sign_pk[STORE_HOST_KEY_LEN];
	unsigned char seal_pk[STORE_HOST_KEY_LEN];
	unsigned char mac[STORE_HOST_MAC_LEN];
	char state[STORE_HOST_STATE_SIZE]; /* "ready", ... */
	int64_t enrolled_at;
	int64_t last_heartbeat; /* 0 = never */
	unsigned char cert[STORE_HOST_CERT_MAX];
	size_t cert_len;
};

/*
 * Inserts the host as given (id from store_new_id; last_heartbeat is not
 * stored: a new host has none). COFFER_ERR_CONFLICT if the id or the name
 * exists, COFFER_ERR_INVALID for an empty id, name or state or a negative
 * time, COFFER_ERR_TOO_LARGE for a field past its size.
 */
COFFER_MUST_CHECK enum coffer_err store_host_put(struct store *s, const struct store_host *h);
/*
 * One host by id or by name. COFFER_ERR_NOT_FOUND if there is none;
 * COFFER_ERR_STORE for a row whose keys or MAC are not their exact size or
 * whose cert is past STORE_HOST_CERT_MAX.
 */
COFFER_MUST_CHECK enum coffer_err store_host_get(struct store *s, const char *id, struct store_host *out);
COFFER_MUST_CHECK enum coffer_err store_host_get_by_name(struct store *s, const char *name, struct store_host *out);

struct store_host_list {
	struct store_host *items; /* by name, bytewise */
	size_t n;
};

COFFER_MUST_CHECK enum coffer_err store_host_list(struct store *s, struct store_host_list *out);
void store_host_list_release(struct store_host_list *l);
/*
 * The keeper's rewrite of host h->id: its keys, MAC, state and cert (a
 * revocation, a key rotation); its name, enrolment time and heartbeat are
 * kept. COFFER_ERR_NOT_FOUND for an unknown host.
 */
COFFER_MUST_CHECK enum coffer_err store_host_update(struct store *s, const struct store_host *h);
/*
 * Sets the host's last_heartbeat (unix ms, > 0), and nothing else: every
 * other field is the keeper's and is authenticated by it.
 * COFFER_ERR_NOT_FOUND for an unknown host.
 */
COFFER_MUST_CHECK enum coffer_err store_host_heartbeat(struct store *s, const char *id, int64_t at);

/*
 * Spends a join token: records its id (1..STORE_JOIN_TOKEN_ID_MAX
 * characters) with the time. COFFER_ERR_CONFLICT if it was spent already,
 * which is what makes a join token single-use.
 */
COFFER_MUST_CHECK enum coffer_err store_join_token_use(struct store *s, const char *id);

/*
 * Records that host_id signed a request with nonce (each 1..STORE_NAME_SIZE-1
 * characters), which stays needed until expires_at (unix seconds), and
 * purges the rows expired at now. COFFER_ERR_CONFLICT when the host used the
 * nonce already and its row has not expired: a replay. Shared by every
 * process on the store (schema version 6), so a replay is refused after a
 * restart and by another replica too.
 */
COFFER_MUST_CHECK enum coffer_err store_host_nonce_use(struct store *s, const char *host_id, const char *nonce,
						       int64_t expires_at, int64_t now);

/*
 * Spends a boot token: records its jti (1..STORE_NAME_SIZE-1 characters)
 * until expires_at (unix seconds), and first purges the rows that expired
 * before purge_before (a token past its exp never opens again, so its row
 * is no longer needed). When the jti was spent already: *spent = 1 and
 * COFFER_ERR_CONFLICT, what makes a boot token read-once, for every keeper
 * on the store (schema version 13). *spent is 0 on every other outcome,
 * COFFER_ERR_CONFLICT included (PostgreSQL reports a serialisation failure
 * or a deadlock so: a concurrent change won, the token is not spent, and
 * the open may be tried again). Meant to run in the same transaction as
 * the open's audit event (keeper_open.c).
 */
COFFER_MUST_CHECK enum coffer_err store_boot_token_spend(struct store *s, const char *jti, int64_t expires_at,
							 int64_t purge_before, int *spent);

/* ---- machines (schema version 3) ---- */

/*
 * A machine: one process of an app on one host. desired_release is what
 * the api wants on it; running_release, state, pid, exit_status,
 * exit_signal and started_at are what its agent last reported. A destroyed
 * machine stays as a row (state "destroyed") so that the keeper can refuse
 * its boot tokens.
 */
struct store_machine {
	char id[STORE_ID_SIZE];
	char app_id[STORE_ID_SIZE];
	char host_id[STORE_ID_SIZE];
	uint64_t desired_release;              /* 0 = none */
	uint64_t running_release;              /* 0 = none */
	char state[STORE_MACHINE_STATE_SIZE];  /* created, starting, started, stopping, stopped, failed, destroyed */
	int64_t pid;                           /* 0 = none */
	int exit_status;                       /* -1 = none */
	int exit_signal;                       /* 0 = none */
	int64_t started_at;                    /* 0 = never */
	uint64_t restarts;                     /* starts of the same release after its first */
	int64_t created_at;
	int64_t updated_at;
};

struct store_machine_list {
	struct store_machine *items; /* by created_at, then id */
	size_t n;
};

/*
 * Creates a machine of the app on the host (a host id, not checked: the
 * store has no foreign key to hosts), in state "created", with a new id.
 * COFFER_ERR_NOT_FOUND for an unknown app, COFFER_ERR_INVALID for an empty
 * host id.
 */
COFFER_MUST_CHECK enum coffer_err store_machine_create(struct store *s, const char *app_id, const char *host_id,
						       uint64_t desired_release, struct store_machine *out);
/* One machine, destroyed ones included. */
COFFER_MUST_CHECK enum coffer_err store_machine_get(struct store *s, const char *id, struct store_machine *out);
/* The app's machines, destroyed ones included. */
COFFER_MUST_CHECK enum coffer_err store_machine_list_by_app(struct store *s, const char *app_id,
							    struct store_machine_list *out);
/* The host's machines that are not destroyed (what its agent is to run). */
COFFER_MUST_CHECK enum coffer_err store_machine_list_by_host(struct store *s, const char *host_id,
							     struct store_machine_list *out);
void store_machine_list_release(struct store_machine_list *l);
/*
 * Sets the release the api wants on the machine. COFFER_ERR_NOT_FOUND for
 * an unknown machine, COFFER_ERR_CONFLICT for a destroyed one.
 */
COFFER_MUST_CHECK enum coffer_err store_machine_set_desired(struct store *s, const char *id, uint64_t release);
/*
 * Records what the agent reports: state (one of the seven above, else
 * COFFER_ERR_INVALID), running_release, pid (0 = none), exit_status (-1 =
 * none), exit_signal (0 = none) and started_at (0 keeps the stored time,
 * unless the report names another release than the stored
 * running_release: that time was the other release's, and is cleared). A
 * "started" report with a new started_at for the release that was running
 * already, and had a start time, counts one restart: the first start of a
 * new release after its "starting" report is not one. COFFER_ERR_NOT_FOUND for an unknown
 * machine, COFFER_ERR_CONFLICT for a destroyed one (destroyed is final).
 */
COFFER_MUST_CHECK enum coffer_err store_machine_report(struct store *s, const char *id, const char *state,
						       uint64_t running_release, int64_t pid, int exit_status,
						       int exit_signal, int64_t started_at);
/*
 * Marks the machine destroyed; the row stays. Destroying a destroyed
 * machine is fine. COFFER_ERR_NOT_FOUND for an unknown machine.
 */
COFFER_MUST_CHECK enum coffer_err store_machine_destroy(struct store *s, const char *id);

/* ---- machines (schema version 4) ---- */

/*
 * Sets the machine's output tail (the masked last lines its agent
 * reported with an exit or a failure), or clears it (tail NULL). At most
 * STORE_MACHINE_TAIL_MAX bytes (else COFFER_ERR_TOO_LARGE), no NUL.
 * COFFER_ERR_NOT_FOUND for an unknown machine, COFFER_ERR_CONFLICT for a
 * destroyed one.
 */
COFFER_MUST_CHECK enum coffer_err store_machine_set_tail(struct store *s, const char *id, const char *tail);
/*
 * The machine's tail into out (reset first; empty when it has none),
 * destroyed machines included. COFFER_ERR_NOT_FOUND for an unknown machine;
 * COFFER_ERR_TOO_LARGE when it does not fit in out->max.
 */
COFFER_MUST_CHECK enum coffer_err store_machine_tail(struct store *s, const char *id, struct buf *out);

/* How many live (not destroyed) machines a host runs: what the scheduler weighs. */
struct store_host_load {
	char host_id[STORE_ID_SIZE];
	uint64_t machines;     /* of every app */
	uint64_t app_machines; /* of the app asked about */
};

struct store_host_load_list {
	struct store_host_load *items; /* by host id; hosts without a live machine are absent */
	size_t n;
};

COFFER_MUST_CHECK enum coffer_err store_machine_load(struct store *s, const char *app_id,
						     struct store_host_load_list *out);
void store_host_load_list_release(struct store_host_load_list *l);

/* ---- releases (schema version 3) ---- */

/*
 * A release of an app. config is JSON text ({"cmd": [...], "env": {...},
 * "count": N, "grace_ms": G}) and progress JSON text kept by the release
 * controller; the store keeps both as given and parses neither. config,
 * reason and progress are owned by the struct (store_release_clear).
 */
struct store_release {
	char app_id[STORE_ID_SIZE];
	uint64_t version;
	char *config;
	uint64_t secrets_version;
	char status[STORE_STATUS_SIZE]; /* pending, running, succeeded, failed */
	char *reason;
	char actor[STORE_ACTOR_SIZE];
	uint64_t previous_version;  /* the release to go back to; 0 = none */
	uint64_t previous_secrets;  /* the secrets head before it; 0 = none */
	char *progress;
	int64_t created_at;
	int64_t updated_at;
};

/* Frees a release's strings and zeroes it; a zeroed release is fine. */
void store_release_clear(struct store_release *r);

struct store_release_list {
	struct store_release *items;
	size_t n;
};

void store_release_list_release(struct store_release_list *l);

/*
 * Creates the app's next release (version = the highest made + 1) with
 * status "pending", progress "{}", in one transaction that holds the app's
 * lock. One release runs per app at a time: COFFER_ERR_CONFLICT (and
 * nothing stored) when the app has a release that is "pending" or
 * "running"; the caller names it (store_release_running or _list).
 * COFFER_ERR_NOT_FOUND for an unknown app, COFFER_ERR_TOO_LARGE for a
 * config past STORE_RELEASE_TEXT_MAX or an actor past STORE_ACTOR_SIZE.
 */
COFFER_MUST_CHECK enum coffer_err store_release_create(struct store *s, const char *app_id, const char *config,
						       uint64_t secrets_version, uint64_t previous_version,
						       uint64_t previous_secrets, const char *actor,
						       uint64_t *version);
COFFER_MUST_CHECK enum coffer_err store_release_get(struct store *s, const char *app_id, uint64_t version,
						    struct store_release *out);
/* The app's releases, newest first (an unknown app has none). */
COFFER_MUST_CHECK enum coffer_err store_release_list(struct store *s, const char *app_id,
						     struct store_release_list *out);
/* Every release, of any app, that is "pending" or "running", oldest first: what a controller resumes. */
COFFER_MUST_CHECK enum coffer_err store_release_running(struct store *s, struct store_release_list *out);
/*
 * Sets a release's status (pending, running, succeeded or failed, else
 * COFFER_ERR_INVALID), reason and progress (NULL keeps either), under the
 * app's lock. A finished release (succeeded or failed) cannot become
 * pending or running again: COFFER_ERR_CONFLICT, so that one release per
 * app at a time holds. COFFER_ERR_NOT_FOUND for an unknown release.
 */
COFFER_MUST_CHECK enum coffer_err store_release_update(struct store *s, const char *app_id, uint64_t version,
						       const char *status, const char *reason,
						       const char *progress);
/*
 * Sets the app's current_release and deployed_version together, in one
 * transaction under the app's lock. Each must exist (0 = none):
 * COFFER_ERR_NOT_FOUND for an unknown app, release or secrets version.
 */
COFFER_MUST_CHECK enum coffer_err store_app_set_current_release(struct store *s, const char *app_id,
								uint64_t release, uint64_t deployed_version);

/* ---- leases (schema version 5) ---- */

/*
 * A lease names a job that one process at a time may do (e.g. stepping
 * releases, with several api replicas). store_lease_acquire takes the lease
 * `name` (1..STORE_NAME_MAX bytes) for `holder` (1..STORE_NAME_MAX bytes)
 * until now + ttl_ms (> 0) when it is free, expired, or held by `holder`
 * already (a renewal), in one conditional upsert, so two takers never both
 * win; *held is 1 when holder has it now, 0 when another holder's lease has
 * not expired (not an error). Expiry is by the wall clocks of the takers.
 * store_lease_release gives it up; COFFER_ERR_NOT_FOUND when holder does not
 * hold it (never taken, released, or taken by another after it expired).
 */
COFFER_MUST_CHECK enum coffer_err store_lease_acquire(struct store *s, const char *name, const char *holder,
						      int64_t ttl_ms, int *held);
COFFER_MUST_CHECK enum coffer_err store_lease_release(struct store *s, const char *name, const char *holder);
/*
 * Inside store_tx_begin/_end (a fence for work done under a lease): *held
 * is 1 when `holder` holds lease `name` and it has not expired, and then
 * it stays held until the transaction ends: the row is locked (PostgreSQL;
 * SQLite holds the write lock already), so a taker after its expiry waits
 * for the end and sees what the transaction wrote. 0 otherwise (not an
 * error). It does not renew the lease.
 */
COFFER_MUST_CHECK enum coffer_err store_lease_check(struct store *s, const char *name, const char *holder, int *held);

/* ---- audit log: an append-only hash chain ---- */

/*
 * An event to append. NULL strings are stored and hashed as "". detail is
 * JSON text naming things (names, digests), never values. ts 0 = now.
 */
struct store_audit_event {
	int64_t ts;
	const char *org_id;
	const char *actor;
	const char *action;
	const char *app;
	const char *detail;
	const char *outcome;
	const char *request_id;
};

/*
 * Event `seq` (1, 2, ...) has hash = SHA-256(prev_hash || E), prev_hash
 * being the hash of event seq - 1 (32 zero bytes for event 1) and E:
 *   L("coffer-audit-v1") || u64be(seq) || u64be(ts as two's complement)
 *   || L(org_id) || L(actor) || L(action) || L(app) || L(detail)
 *   || L(outcome) || L(request_id)
 * where L(s) = u32be(byte length of s) || s. COFFER_ERR_TOO_LARGE for a
 * field past STORE_AUDIT_FIELD_MAX.
 */
COFFER_MUST_CHECK enum coffer_err store_audit_hash(uint64_t seq, const struct store_audit_event *ev,
						   const unsigned char prev_hash[STORE_HASH_LEN],
						   unsigned char out[STORE_HASH_LEN]);

/*
 * Appends an event, numbering and chaining it in one transaction that
 * serialises appenders. seq may be NULL.
 */
COFFER_MUST_CHECK enum coffer_err store_audit_append(struct store *s, const struct store_audit_event *ev,
						     uint64_t *seq);

struct store_audit_row {
	uint64_t seq;
	struct store_audit_event ev; /* strings owned by the list */
	unsigned char prev_hash[STORE_HASH_LEN];
	unsigned char hash[STORE_HASH_LEN];
};

struct store_audit_list {
	struct store_audit_row *items; /* by seq */
	size_t n;
};

/* Which events store_audit_list returns: NULL or "" fields match all; a NULL filter is all. */
struct store_audit_filter {
	const char *org_id;
	const char *app;
	uint64_t after_seq;
	size_t limit; /* 0 or more than STORE_AUDIT_LIST_MAX = STORE_AUDIT_LIST_MAX */
};

COFFER_MUST_CHECK enum coffer_err store_audit_list(struct store *s, const struct store_audit_filter *f,
						   struct store_audit_list *out);
void store_audit_list_release(struct store_audit_list *l);
/* The last event's seq and hash (0 and zeros when the log is empty), to anchor elsewhere. */
COFFER_MUST_CHECK enum coffer_err store_audit_head(struct store *s, uint64_t *seq,
						   unsigned char hash[STORE_HASH_LEN]);
/*
 * Recomputes the chain from genesis. COFFER_OK when every event links;
 * COFFER_ERR_CRYPTO otherwise, with *first_broken_seq set (the one
 * out-parameter written on an error) to the first seq that does not hold:
 * an event whose fields or hash were changed, whose prev_hash does not
 * match, or that is missing (a gap). A chain cut at its end is only seen
 * against a head anchored elsewhere (store_audit_head).
 */
COFFER_MUST_CHECK enum coffer_err store_audit_verify(struct store *s, uint64_t *first_broken_seq);
/*
 * The same check from an anchor: the events after from_seq must chain from
 * from_hash (from_seq 0 and zeros: genesis, as store_audit_verify). On
 * COFFER_OK *end_seq and end_hash are the last event's (the anchor's when
 * no event follows it); COFFER_ERR_CRYPTO and *first_broken_seq as above.
 * It does not read the event at from_seq: store_audit_event_hash does.
 */
COFFER_MUST_CHECK enum coffer_err store_audit_verify_from(struct store *s, uint64_t from_seq,
							  const unsigned char from_hash[STORE_HASH_LEN],
							  uint64_t *end_seq, unsigned char end_hash[STORE_HASH_LEN],
							  uint64_t *first_broken_seq);
/* The stored hash of event seq (>= 1, else COFFER_ERR_INVALID); COFFER_ERR_NOT_FOUND if there is none. */
COFFER_MUST_CHECK enum coffer_err store_audit_event_hash(struct store *s, uint64_t seq,
							 unsigned char hash[STORE_HASH_LEN]);

/* ---- deployers and signatures (schema version 10) ---- */

#define STORE_DEPLOYER_KEY_LEN 32  /* an Ed25519 public key */
#define STORE_DEPLOYER_CERT_LEN 64 /* the keeper's signature over the certificate text */
#define STORE_DEPLOYER_MAC_LEN 32  /* the keeper's registry MAC */
#define STORE_TEXT_HASH_SIZE 65    /* hex SHA-256 of a signed text and its NUL */
#define STORE_SIGNATURE_SIZE 87    /* base64url Ed25519 signature (86) and its NUL */

/*
 * A deployer row (deployer.h). The store authenticates nothing: the keeper
 * writes every field with mac (its registry MAC over all the others) and
 * cert, and checks both whenever it relies on the row.
 */
struct store_deployer {
	char id[STORE_ID_SIZE];
	char org_id[STORE_ID_SIZE];
	char app_id[STORE_ID_SIZE];        /* an app id, or "*" for every app of the org */
	char role[STORE_ROLE_SIZE];        /* "admin" or "deploy" */
	char name[STORE_NAME_SIZE];
	unsigned char public_key[STORE_DEPLOYER_KEY_LEN];
	unsigned char cert[STORE_DEPLOYER_CERT_LEN];
	int64_t created_at;
	int64_t revoked_at;                /* 0 = live */
	unsigned char mac[STORE_DEPLOYER_MAC_LEN];
};

/*
 * Inserts the deployer as given. COFFER_ERR_CONFLICT if the id exists,
 * COFFER_ERR_NOT_FOUND for an unknown org, COFFER_ERR_INVALID for an empty
 * id, app_id or name, a role other than admin and deploy or a negative
 * time, COFFER_ERR_TOO_LARGE for a text past its size.
 */
COFFER_MUST_CHECK enum coffer_err store_deployer_put(struct store *s, const struct store_deployer *d);
/* One deployer; COFFER_ERR_NOT_FOUND if there is none, COFFER_ERR_STORE for a blob not of its exact size. */
COFFER_MUST_CHECK enum coffer_err store_deployer_get(struct store *s, const char *id, struct store_deployer *out);

struct store_deployer_list {
	struct store_deployer *items; /* oldest first */
	size_t n;
};

/* The org's deployers, revoked ones included. */
COFFER_MUST_CHECK enum coffer_err store_deployer_list(struct store *s, const char *org_id,
						      struct store_deployer_list *out);
/* The deployers enrolled with this public key (STORE_DEPLOYER_KEY_LEN bytes), revoked ones included. */
COFFER_MUST_CHECK enum coffer_err store_deployer_list_by_key(struct store *s, const unsigned char *public_key,
							     struct store_deployer_list *out);
void store_deployer_list_release(struct store_deployer_list *l);
/*
 * Sets the deployer's revoked_at (> 0) and its new mac (the keeper's, over
 * the row with that time). COFFER_ERR_NOT_FOUND for an unknown deployer.
 */
COFFER_MUST_CHECK enum coffer_err store_deployer_revoke(struct store *s, const char *id, int64_t revoked_at,
							const unsigned char mac[STORE_DEPLOYER_MAC_LEN]);

/* A deployer's signature over a text of an app, found by the text's hash. */
struct store_signature {
	char app_id[STORE_ID_SIZE];
	char text_hash[STORE_TEXT_HASH_SIZE]; /* lower-case hex SHA-256 of the signed text */
	char signer[STORE_ID_SIZE];           /* the deployer's id */
	char signature[STORE_SIGNATURE_SIZE]; /* base64url, 86 characters */
	int64_t created_at;
};

struct store_signature_list {
	struct store_signature *items; /* oldest first */
	size_t n;
};

/*
 * Stores signer's signature over the app's text with this hash. The same
 * row again is fine (nothing changes); another signature by the same
 * signer over the same text is COFFER_ERR_CONFLICT. COFFER_ERR_NOT_FOUND
 * for an unknown app; COFFER_ERR_INVALID for a text_hash that is not 64
 * lower-case hex characters, a signature that is not 86 base64url
 * characters, or an empty or too long app id or signer.
 */
COFFER_MUST_CHECK enum coffer_err store_signature_add(struct store *s, const char *app_id, const char *text_hash,
						      const char *signer, const char *signature);
/* The signatures of the app's text with this hash, the 16 oldest at most (none is an empty list). */
COFFER_MUST_CHECK enum coffer_err store_signature_list(struct store *s, const char *app_id, const char *text_hash,
						       struct store_signature_list *out);
void store_signature_list_release(struct store_signature_list *l);

/* ---- kms keys (schema version 12; the keeper's, docs/CRYPTO.md "App KMS keys") ---- */

#define STORE_KMS_NAME_SIZE 65 /* a key's name (1 to 64 bytes) and its NUL */
#define STORE_KMS_TYPE_SIZE 16
#define STORE_KMS_BLOB_MAX 256 /* the public key, the wrapped key */

/* One version of one key: authenticated (STORE_TABLE_KMS_KEYS) as a whole. */
struct store_kms_key {
	char app_id[STORE_ID_SIZE];
	char name[STORE_KMS_NAME_SIZE];
	uint64_t version;
	char type[STORE_KMS_TYPE_SIZE]; /* hmac-sha256, aead, ed25519 */
	unsigned char public_key[STORE_KMS_BLOB_MAX];
	size_t public_key_len; /* 0: none (not ed25519) */
	unsigned char wrapped[STORE_KMS_BLOB_MAX];
	size_t wrapped_len;
	int64_t created_at;
};
struct store_kms_key_list {
	struct store_kms_key *items; /* by name (bytewise), then version */
	size_t n;
};

/*
 * Stores one version (k->created_at is set here) and seals it:
 * COFFER_ERR_CONFLICT if that version exists, COFFER_ERR_NOT_FOUND for an
 * unknown app, COFFER_ERR_INVALID for a malformed row.
 */
COFFER_MUST_CHECK enum coffer_err store_kms_key_put(struct store *s, const struct store_kms_key *k);
/* Version `version` of the app's key `name`, or its newest when version is 0; NOT_FOUND if none. */
COFFER_MUST_CHECK enum coffer_err store_kms_key_get(struct store *s, const char *app_id, const char *name,
						    uint64_t version, struct store_kms_key *out);
/* Every version of every key of the app. */
COFFER_MUST_CHECK enum coffer_err store_kms_key_list(struct store *s, const char *app_id, struct store_kms_key_list *out);
void store_kms_key_list_release(struct store_kms_key_list *l);
/* Deletes every version of the key: NOT_FOUND if it has none. */
COFFER_MUST_CHECK enum coffer_err store_kms_key_delete(struct store *s, const char *app_id, const char *name);

#endif
