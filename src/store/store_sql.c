/*
 * The store's SQL, once for both databases: the statement table (from
 * store_sql.def) and the numbered list of migrations.
 */
#include <stddef.h>

#include "store_backend.h"

#include "banned.h"

const struct store_stmt store_stmts[STORE_Q__COUNT] = {
#define Q(name, sql_text, pg_text) [STORE_Q_##name] = { sql_text, pg_text },
#include "store_sql.def"
#undef Q
};

/*
 * Each migration is written once, as a macro of the few words the two
 * dialects spell differently: INT (SQLite INTEGER, PostgreSQL BIGINT),
 * BLOB (BLOB, BYTEA), BLEN (length, octet_length) and NOROWID (SQLite's
 * " WITHOUT ROWID", nothing in PostgreSQL). A migration's text must never
 * change once released: the databases that ran it keep what it made.
 */

/*
 * Schema version 1. Times are unix milliseconds; ids are text. Each secrets
 * version is a snapshot: secret_entries maps (app, version, name) to an
 * immutable secret_values row, so a change copies mappings, never
 * ciphertexts. SQLite keeps secret_entries WITHOUT ROWID: its primary key
 * is its order, which keeps a version copy sequential. value_id is not a
 * foreign key: the index it needs would make every version copy write one
 * random page per name. Entries are written only by store_secrets_put, and
 * go away with their version (and values with their app).
 */
#define MIGRATION_1(INT, BLOB, BLEN, NOROWID)                                                           \
	"CREATE TABLE orgs ("                                                                           \
	" id TEXT PRIMARY KEY,"                                                                         \
	" name TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 255),"                            \
	" created_at " INT " NOT NULL);"                                                                \
	"CREATE TABLE apps ("                                                                           \
	" id TEXT PRIMARY KEY,"                                                                         \
	" org_id TEXT NOT NULL REFERENCES orgs (id),"                                                   \
	" name TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 255),"                            \
	" created_at " INT " NOT NULL,"                                                                 \
	" secrets_head " INT " NOT NULL DEFAULT 0,"                                                     \
	" deployed_version " INT " NOT NULL DEFAULT 0,"                                                 \
	" current_release " INT " NOT NULL DEFAULT 0,"                                                  \
	" grace_ms " INT " NOT NULL DEFAULT 30000 CHECK (grace_ms >= 0));"                              \
	"CREATE INDEX apps_org ON apps (org_id, name);"                                                 \
	"CREATE TABLE tokens ("                                                                         \
	" id TEXT PRIMARY KEY,"                                                                         \
	" org_id TEXT NOT NULL REFERENCES orgs (id),"                                                   \
	" hash " BLOB " NOT NULL UNIQUE CHECK (" BLEN "(hash) = 32),"                                   \
	" role TEXT NOT NULL CHECK (role IN ('admin', 'deploy', 'read')),"                              \
	" app_id TEXT REFERENCES apps (id) ON DELETE CASCADE,"                                          \
	" expires_at " INT ","                                                                          \
	" revoked_at " INT ","                                                                          \
	" created_at " INT " NOT NULL,"                                                                 \
	" description TEXT NOT NULL DEFAULT '');"                                                       \
	"CREATE INDEX tokens_org ON tokens (org_id, created_at);"                                       \
	"CREATE INDEX tokens_app ON tokens (app_id);"                                                   \
	"CREATE TABLE app_keys ("                                                                       \
	" app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,"                                 \
	" version " INT " NOT NULL CHECK (version >= 1),"                                               \
	" public_key " BLOB " NOT NULL,"                                                                \
	" wrapped_private " BLOB " NOT NULL,"                                                           \
	" created_at " INT " NOT NULL,"                                                                 \
	" PRIMARY KEY (app_id, version));"                                                              \
	"CREATE TABLE secret_versions ("                                                                \
	" app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,"                                 \
	" version " INT " NOT NULL CHECK (version >= 1),"                                               \
	" created_at " INT " NOT NULL,"                                                                 \
	" actor TEXT NOT NULL,"                                                                         \
	" status TEXT NOT NULL,"                                                                        \
	" PRIMARY KEY (app_id, version));"                                                              \
	"CREATE TABLE secret_values ("                                                                  \
	" id TEXT PRIMARY KEY,"                                                                         \
	" app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,"                                 \
	" name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 255),"                                   \
	" ciphertext " BLOB " NOT NULL,"                                                                \
	" digest TEXT NOT NULL,"                                                                        \
	" key_version " INT " NOT NULL,"                                                                \
	" created_at " INT " NOT NULL);"                                                                \
	"CREATE INDEX secret_values_app ON secret_values (app_id);"                                     \
	"CREATE TABLE secret_entries ("                                                                 \
	" app_id TEXT NOT NULL,"                                                                        \
	" version " INT " NOT NULL,"                                                                    \
	" name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 255),"                                   \
	" value_id TEXT NOT NULL,"                                                                      \
	" first_set_at " INT " NOT NULL,"                                                               \
	" PRIMARY KEY (app_id, version, name),"                                                         \
	" FOREIGN KEY (app_id, version) REFERENCES secret_versions (app_id, version) ON DELETE CASCADE)" \
	NOROWID ";"                                                                                     \
	"CREATE TABLE releases ("                                                                       \
	" app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,"                                 \
	" version " INT " NOT NULL CHECK (version >= 1),"                                               \
	" config TEXT NOT NULL DEFAULT '{}',"                                                           \
	" secrets_version " INT " NOT NULL DEFAULT 0,"                                                  \
	" status TEXT NOT NULL,"                                                                        \
	" reason TEXT NOT NULL DEFAULT '',"                                                             \
	" actor TEXT NOT NULL DEFAULT '',"                                                              \
	" created_at " INT " NOT NULL,"                                                                 \
	" updated_at " INT " NOT NULL,"                                                                 \
	" PRIMARY KEY (app_id, version));"                                                              \
	"CREATE TABLE hosts ("                                                                          \
	" id TEXT PRIMARY KEY,"                                                                         \
	" name TEXT NOT NULL UNIQUE,"                                                                   \
	" sign_pk " BLOB " NOT NULL,"                                                                   \
	" seal_pk " BLOB " NOT NULL,"                                                                   \
	" mac " BLOB " NOT NULL,"                                                                       \
	" state TEXT NOT NULL,"                                                                         \
	" enrolled_at " INT " NOT NULL,"                                                                \
	" last_heartbeat " INT ");"                                                                     \
	"CREATE TABLE machines ("                                                                       \
	" id TEXT PRIMARY KEY,"                                                                         \
	" app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,"                                 \
	" host_id TEXT,"                                                                                \
	" desired_release " INT " NOT NULL DEFAULT 0,"                                                  \
	" running_release " INT " NOT NULL DEFAULT 0,"                                                  \
	" state TEXT NOT NULL,"                                                                         \
	" exit_status " INT ","                                                                         \
	" exit_signal " INT ","                                                                         \
	" pid " INT ","                                                                                 \
	" created_at " INT " NOT NULL,"                                                                 \
	" updated_at " INT " NOT NULL);"                                                                \
	"CREATE INDEX machines_app ON machines (app_id);"                                               \
	"CREATE INDEX machines_host ON machines (host_id);"                                             \
	"CREATE TABLE audit_events ("                                                                   \
	" seq " INT " PRIMARY KEY CHECK (seq >= 1),"                                                    \
	" ts " INT " NOT NULL,"                                                                         \
	" org_id TEXT NOT NULL,"                                                                        \
	" actor TEXT NOT NULL,"                                                                         \
	" action TEXT NOT NULL,"                                                                        \
	" app TEXT NOT NULL,"                                                                           \
	" detail TEXT NOT NULL,"                                                                        \
	" outcome TEXT NOT NULL,"                                                                       \
	" request_id TEXT NOT NULL,"                                                                    \
	" prev_hash " BLOB " NOT NULL,"                                                                 \
	" hash " BLOB " NOT NULL);"                                                                     \
	"CREATE INDEX audit_org ON audit_events (org_id, seq);"                                         \
	"CREATE INDEX audit_app ON audit_events (app, seq);"

/*
 * Schema version 2: hosts. The keeper creates a host row and authenticates
 * it (its MAC column, under a master subkey); cert is the keeper's
 * certificate over the host's identity, which the api verifies with the
 * keeper's public key (hostauth.h). join_tokens_used makes each join token
 * single-use: its id is inserted when the token is spent.
 */
#define MIGRATION_2(INT, BLOB)                                                                          \
	"ALTER TABLE hosts ADD COLUMN cert " BLOB ";"                                                   \
	"CREATE TABLE join_tokens_used ("                                                               \
	" id TEXT PRIMARY KEY,"                                                                         \
	" used_at " INT " NOT NULL);"

/*
 * Schema version 3: the run path. A machine records when it last started
 * and how often its release was started again; a release records what to
 * go back to (previous_version, previous_secrets) and its controller's
 * progress (JSON text), so that an api killed at any point resumes from
 * the store. releases_status finds the pending and running releases.
 */
#define MIGRATION_3(INT)                                                                                \
	"ALTER TABLE machines ADD COLUMN started_at " INT ";"                                           \
	"ALTER TABLE machines ADD COLUMN restarts " INT " NOT NULL DEFAULT 0;"                          \
	"ALTER TABLE releases ADD COLUMN previous_version " INT " NOT NULL DEFAULT 0;"                  \
	"ALTER TABLE releases ADD COLUMN previous_secrets " INT " NOT NULL DEFAULT 0;"                  \
	"ALTER TABLE releases ADD COLUMN progress TEXT NOT NULL DEFAULT '{}';"                          \
	"CREATE INDEX releases_status ON releases (status, app_id);"

/* Schema version 4: a machine keeps the masked output tail of its last exit or failure report. */
#define MIGRATION_4 "ALTER TABLE machines ADD COLUMN tail TEXT;"

/*
 * Schema version 5: leases. A lease names a job that one process at a time
 * may do (one api replica steps releases); its holder keeps it by renewing
 * it before expires_at (unix ms), and anyone may take it after.
 */
#define MIGRATION_5(INT)                                                                                \
	"CREATE TABLE leases ("                                                                         \
	" name TEXT PRIMARY KEY,"                                                                       \
	" holder TEXT NOT NULL,"                                                                        \
	" expires_at " INT " NOT NULL);"

/*
 * Schema version 6: the nonces of signed host requests, kept until their
 * signature's window has passed (expires_at, unix seconds), so a request
 * replayed after a restart, or to another replica, is refused.
 */
#define MIGRATION_6(INT)                                                                                \
	"CREATE TABLE host_nonces ("                                                                    \
	" host_id TEXT NOT NULL,"                                                                       \
	" nonce TEXT NOT NULL,"                                                                         \
	" expires_at " INT " NOT NULL,"                                                                 \
	" PRIMARY KEY (host_id, nonce));"                                                               \
	"CREATE INDEX host_nonces_expiry ON host_nonces (expires_at);"

/*
 * Schema version 7: each secrets version keeps its manifest, the canonical
 * text of its names -> value ids and digests (store.h; docs/CRYPTO.md
 * "Secrets versions: the manifest"), written with the version. Versions
 * made before have none (NULL): the keeper refuses to open them and no
 * new version is made on one.
 */
#define MIGRATION_7 "ALTER TABLE secret_versions ADD COLUMN manifest TEXT;"

/*
 * Schema version 8: row authentication. Every row a role grants access by
 * (tokens, machines, releases, secrets versions) carries mac, an
 * HMAC-SHA256 under a key the store does not hold (docs/STORE.md "Row
 * authentication"). Rows written before this version have none and are
 * refused when read.
 */
#define MIGRATION_8(BLOB)                                                                               \
	"ALTER TABLE tokens ADD COLUMN mac " BLOB ";"                                                   \
	"ALTER TABLE machines ADD COLUMN mac " BLOB ";"                                                 \
	"ALTER TABLE releases ADD COLUMN mac " BLOB ";"                                                 \
	"ALTER TABLE secret_versions ADD COLUMN mac " BLOB ";"

/*
 * Schema version 9: the apps row is authenticated too (its org decides
 * which tokens reach it, its secrets head what the next release deploys).
 * Apps written before this version have no mac and are refused when read.
 */
#define MIGRATION_9(BLOB) "ALTER TABLE apps ADD COLUMN mac " BLOB ";"

/*
 * Schema version 10: deployers and their signatures (docs/CRYPTO.md
 * "Deployers"). The keeper writes each deployer row with mac, its registry
 * MAC over every other column under a master subkey, and cert, its
 * signature over the deployer's certificate text; the store and the api
 * hold neither key. app_id is an app's id or '*' (every app of the org),
 * so it is no foreign key; revoked_at is 0 while the key is live.
 * signatures keeps what deployers signed for an app, keyed by the hex
 * SHA-256 of the signed text: each verifies under a certified key, so it
 * needs no MAC, and goes with its app.
 */
#define MIGRATION_10(INT, BLOB, BLEN, NOROWID)                                                                 \
	"CREATE TABLE deployers ("                                                                      \
	" id TEXT PRIMARY KEY,"                                                                         \
	" org_id TEXT NOT NULL REFERENCES orgs (id),"                                                   \
	" app_id TEXT NOT NULL,"                                                                        \
	" role TEXT NOT NULL CHECK (role IN ('admin', 'deploy')),"                                      \
	" name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 255),"                                   \
	" public_key " BLOB " NOT NULL CHECK (" BLEN "(public_key) = 32),"                             \
	" cert " BLOB " NOT NULL CHECK (" BLEN "(cert) = 64),"                                          \
	" created_at " INT " NOT NULL,"                                                                 \
	" revoked_at " INT " NOT NULL DEFAULT 0,"                                                       \
	" mac " BLOB " NOT NULL CHECK (" BLEN "(mac) = 32));"                                           \
	"CREATE INDEX deployers_org ON deployers (org_id, created_at);"                                 \
	"CREATE TABLE signatures ("                                                                     \
	" app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,"                                 \
	" text_hash TEXT NOT NULL CHECK (length(text_hash) = 64),"                                      \
	" signer TEXT NOT NULL,"                                                                        \
	" signature TEXT NOT NULL CHECK (length(signature) = 86),"                                      \
	" created_at " INT " NOT NULL,"                                                                 \
	" PRIMARY KEY (app_id, text_hash, signer))" NOROWID ";"

/*
 * Schema version 11: the keeper's signature binding an app to its org
 * (deployer.h "app's org"), kept with each app key it makes. Keys made
 * before have none until the keeper signs the org the store names, once
 * (docs/CRYPTO.md "Deployers").
 */
#define MIGRATION_11(BLOB) "ALTER TABLE app_keys ADD COLUMN org_sig " BLOB ";"

/*
 * Schema version 12: keys a machine uses through its agent and never reads
 * (docs/CRYPTO.md "App KMS keys"). The keeper writes every row: the key
 * wrapped under a master subkey with (app, name, type, version) as its
 * associated data, the public key of an ed25519 key (NULL otherwise), and
 * mac, the row MAC (store_write); rm deletes every version of a name.
 */
#define MIGRATION_12(INT, BLOB, BLEN)                                                                   \
	"CREATE TABLE kms_keys ("                                                                       \
	" app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,"                                 \
	" name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 64),"                                    \
	" version " INT " NOT NULL CHECK (version >= 1),"                                               \
	" type TEXT NOT NULL CHECK (type IN ('hmac-sha256', 'aead', 'ed25519')),"                       \
	" public_key " BLOB ","                                                                         \
	" wrapped " BLOB " NOT NULL CHECK (" BLEN "(wrapped) <= 256),"                                  \
	" created_at " INT " NOT NULL,"                                                                 \
	" mac " BLOB ","                                                                                \
	" PRIMARY KEY (app_id, name, version));"

/*
 * Schema version 13: boot tokens spent by the keeper (read-once, docs/RUNPATH.md
 * "Agent <-> keeper"): a token's jti is written with its open's audit event
 * and kept until the token has expired (expires_at, unix seconds), so a
 * replay is refused by every keeper on the store, after a restart too.
 */
#define MIGRATION_13(INT)                                                                               \
	"CREATE TABLE boot_tokens_spent ("                                                              \
	" jti TEXT PRIMARY KEY,"                                                                        \
	" expires_at " INT " NOT NULL,"                                                                 \
	" spent_at " INT " NOT NULL);"                                                                  \
	"CREATE INDEX boot_tokens_spent_expiry ON boot_tokens_spent (expires_at);"

/*
 * Schema version 14: a token records when it was rotated (rotated_at, unix
 * ms; NULL = never). A rotated token is not rotated again, so a leaked
 * token that is still in its overlap cannot mint another one. The column
 * is authenticated when set (COL_AUTH_SET): rows sealed before this
 * version verify as they are.
 */
#define MIGRATION_14(INT) "ALTER TABLE tokens ADD COLUMN rotated_at " INT ";"

/* The list: entry i is schema version i + 1. Append only. */
#define MIGRATIONS(INT, BLOB, BLEN, NOROWID)                                                            \
	{                                                                                               \
		MIGRATION_1(INT, BLOB, BLEN, NOROWID),                                                  \
		MIGRATION_2(INT, BLOB),                                                                 \
		MIGRATION_3(INT),                                                                       \
		MIGRATION_4,                                                                            \
		MIGRATION_5(INT),                                                                       \
		MIGRATION_6(INT),                                                                       \
		MIGRATION_7,                                                                            \
		MIGRATION_8(BLOB),                                                                      \
		MIGRATION_9(BLOB),                                                                      \
		MIGRATION_10(INT, BLOB, BLEN, NOROWID),                                                        \
		MIGRATION_11(BLOB),                                                                     \
		MIGRATION_12(INT, BLOB, BLEN),                                                          \
		MIGRATION_13(INT),                                                                      \
		MIGRATION_14(INT),                                                                      \
	}

const char *const store_sqlite_migrations[] = MIGRATIONS("INTEGER", "BLOB", "length", " WITHOUT ROWID");
const char *const store_pg_migrations[] = MIGRATIONS("BIGINT", "BYTEA", "octet_length", "");
const size_t store_n_migrations = sizeof(store_pg_migrations) / sizeof(store_pg_migrations[0]);

_Static_assert(sizeof(store_sqlite_migrations) == sizeof(store_pg_migrations),
	       "both backends know the same schema versions");
