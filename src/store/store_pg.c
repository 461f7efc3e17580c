/*
 * The PostgreSQL backend (libpq): a driver for store.c (see
 * store_backend.h). Its SQL mirrors store_sqlite.c statement for statement;
 * only the dialect differs (BIGINT/BYTEA, $N parameters, bytewise ordering
 * asked for with COLLATE "C", and locks: a secrets writer locks the app row
 * with SELECT ... FOR UPDATE, migrators and audit appenders take
 * transaction-scoped advisory locks). Statements are prepared once per
 * connection (PQprepare) and run with PQexecPrepared: text parameters, blobs
 * as binary, results in binary.
 */
#include <endian.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "store_backend.h"

#include "banned.h"

/* Advisory lock keys (per database): one for migrations, one for the audit chain. */
#define PG_LOCK_MIGRATE "7157030526551164929"
#define PG_LOCK_AUDIT "7157030526551164930"

#define PG_OID_BOOL 16
#define PG_OID_BYTEA 17
#define PG_OID_NAME 19
#define PG_OID_INT8 20
#define PG_OID_INT2 21
#define PG_OID_INT4 23
#define PG_OID_TEXT 25
#define PG_OID_BPCHAR 1042
#define PG_OID_VARCHAR 1043
#define PG_OID_VOID 2278

#define PG_STMT_NAME_SIZE 32
#define PG_INT_TEXT_SIZE 24
#define PG_MESSAGE_MAX 200

/* Schema version 1. Times are unix milliseconds; ids are text. */
static const char migration_1[] =
	"CREATE TABLE orgs ("
	" id TEXT PRIMARY KEY,"
	" name TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 255),"
	" created_at BIGINT NOT NULL);"
	"CREATE TABLE apps ("
	" id TEXT PRIMARY KEY,"
	" org_id TEXT NOT NULL REFERENCES orgs (id),"
	" name TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 255),"
	" created_at BIGINT NOT NULL,"
	" secrets_head BIGINT NOT NULL DEFAULT 0,"
	" deployed_version BIGINT NOT NULL DEFAULT 0,"
	" current_release BIGINT NOT NULL DEFAULT 0,"
	" grace_ms BIGINT NOT NULL DEFAULT 30000 CHECK (grace_ms >= 0));"
	"CREATE INDEX apps_org ON apps (org_id, name);"
	"CREATE TABLE tokens ("
	" id TEXT PRIMARY KEY,"
	" org_id TEXT NOT NULL REFERENCES orgs (id),"
	" hash BYTEA NOT NULL UNIQUE CHECK (octet_length(hash) = 32),"
	" role TEXT NOT NULL CHECK (role IN ('admin', 'deploy', 'read')),"
	" app_id TEXT REFERENCES apps (id) ON DELETE CASCADE,"
	" expires_at BIGINT,"
	" revoked_at BIGINT,"
	" created_at BIGINT NOT NULL,"
	" description TEXT NOT NULL DEFAULT '');"
	"CREATE INDEX tokens_org ON tokens (org_id, created_at);"
	"CREATE INDEX tokens_app ON tokens (app_id);"
	"CREATE TABLE app_keys ("
	" app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,"
	" version BIGINT NOT NULL CHECK (version >= 1),"
	" public_key BYTEA NOT NULL,"
	" wrapped_private BYTEA NOT NULL,"
	" created_at BIGINT NOT NULL,"
	" PRIMARY KEY (app_id, version));"
	"CREATE TABLE secret_versions ("
	" app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,"
	" version BIGINT NOT NULL CHECK (version >= 1),"
	" created_at BIGINT NOT NULL,"
	" actor TEXT NOT NULL,"
	" status TEXT NOT NULL,"
	" PRIMARY KEY (app_id, version));"
	"CREATE TABLE secret_values ("
	" id TEXT PRIMARY KEY,"
	" app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,"
	" name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 255),"
	" ciphertext BYTEA NOT NULL,"
	" digest TEXT NOT NULL,"
	" key_version BIGINT NOT NULL,"
	" created_at BIGINT NOT NULL);"
	"CREATE INDEX secret_values_app ON secret_values (app_id);"
	"CREATE TABLE secret_entries ("
	" app_id TEXT NOT NULL,"
	" version BIGINT NOT NULL,"
	" name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 255),"
	/*
	 * Not a foreign key: the index it needs would make every version copy
	 * write one random page per name. Entries are written only by
	 * store_secrets_put, and go away with their version (and values with
	 * their app).
	 */
	" value_id TEXT NOT NULL,"
	" first_set_at BIGINT NOT NULL,"
	" PRIMARY KEY (app_id, version, name),"
	" FOREIGN KEY (app_id, version) REFERENCES secret_versions (app_id, version) ON DELETE CASCADE);"
	"CREATE TABLE releases ("
	" app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,"
	" version BIGINT NOT NULL CHECK (version >= 1),"
	" config TEXT NOT NULL DEFAULT '{}',"
	" secrets_version BIGINT NOT NULL DEFAULT 0,"
	" status TEXT NOT NULL,"
	" reason TEXT NOT NULL DEFAULT '',"
	" actor TEXT NOT NULL DEFAULT '',"
	" created_at BIGINT NOT NULL,"
	" updated_at BIGINT NOT NULL,"
	" PRIMARY KEY (app_id, version));"
	"CREATE TABLE hosts ("
	" id TEXT PRIMARY KEY,"
	" name TEXT NOT NULL UNIQUE,"
	" sign_pk BYTEA NOT NULL,"
	" seal_pk BYTEA NOT NULL,"
	" mac BYTEA NOT NULL,"
	" state TEXT NOT NULL,"
	" enrolled_at BIGINT NOT NULL,"
	" last_heartbeat BIGINT);"
	"CREATE TABLE machines ("
	" id TEXT PRIMARY KEY,"
	" app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,"
	" host_id TEXT,"
	" desired_release BIGINT NOT NULL DEFAULT 0,"
	" running_release BIGINT NOT NULL DEFAULT 0,"
	" state TEXT NOT NULL,"
	" exit_status BIGINT,"
	" exit_signal BIGINT,"
	" pid BIGINT,"
	" created_at BIGINT NOT NULL,"
	" updated_at BIGINT NOT NULL);"
	"CREATE INDEX machines_app ON machines (app_id);"
	"CREATE INDEX machines_host ON machines (host_id);"
	"CREATE TABLE audit_events ("
	" seq BIGINT PRIMARY KEY CHECK (seq >= 1),"
	" ts BIGINT NOT NULL,"
	" org_id TEXT NOT NULL,"
	" actor TEXT NOT NULL,"
	" action TEXT NOT NULL,"
	" app TEXT NOT NULL,"
	" detail TEXT NOT NULL,"
	" outcome TEXT NOT NULL,"
	" request_id TEXT NOT NULL,"
	" prev_hash BYTEA NOT NULL,"
	" hash BYTEA NOT NULL);"
	"CREATE INDEX audit_org ON audit_events (org_id, seq);"
	"CREATE INDEX audit_app ON audit_events (app, seq);";

/*
 * Schema version 2: hosts. The keeper creates a host row and authenticates
 * it (its MAC column, under a master subkey); cert is the keeper's
 * certificate over the host's identity, which the api verifies with the
 * keeper's public key (hostauth.h). join_tokens_used makes each join token
 * single-use: its id is inserted when the token is spent.
 */
static const char migration_2[] =
	"ALTER TABLE hosts ADD COLUMN cert BYTEA;"
	"CREATE TABLE join_tokens_used ("
	" id TEXT PRIMARY KEY,"
	" used_at BIGINT NOT NULL);";

/*
 * Schema version 3: the run path. A machine records when it last started
 * and how often its release was started again; a release records what to
 * go back to (previous_version, previous_secrets) and its controller's
 * progress (JSON text), so that an api killed at any point resumes from
 * the store. releases_status finds the pending and running releases.
 */
static const char migration_3[] =
	"ALTER TABLE machines ADD COLUMN started_at BIGINT;"
	"ALTER TABLE machines ADD COLUMN restarts BIGINT NOT NULL DEFAULT 0;"
	"ALTER TABLE releases ADD COLUMN previous_version BIGINT NOT NULL DEFAULT 0;"
	"ALTER TABLE releases ADD COLUMN previous_secrets BIGINT NOT NULL DEFAULT 0;"
	"ALTER TABLE releases ADD COLUMN progress TEXT NOT NULL DEFAULT '{}';"
	"CREATE INDEX releases_status ON releases (status, app_id);";

/* Schema version 4: a machine keeps the masked output tail of its last exit or failure report. */
static const char migration_4[] = "ALTER TABLE machines ADD COLUMN tail TEXT;";

static const char *const migrations[] = { migration_1, migration_2, migration_3, migration_4 };

static const char *const sql[STORE_Q__COUNT] = {
	[STORE_Q_MIGRATE_LOCK] = "SELECT pg_advisory_xact_lock(" PG_LOCK_MIGRATE ")",
	[STORE_Q_MIGRATION_MAX] = "SELECT coalesce(max(version), 0)::bigint FROM schema_migrations",
	[STORE_Q_MIGRATION_INSERT] = "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
	[STORE_Q_ORG_INSERT] = "INSERT INTO orgs (id, name, created_at) VALUES ($1, $2, $3)",
	[STORE_Q_ORG_BY_NAME] = "SELECT id, name, created_at FROM orgs WHERE name = $1",
	[STORE_Q_ORG_BY_ID] = "SELECT id, name, created_at FROM orgs WHERE id = $1",
	[STORE_Q_TOKEN_INSERT] = "INSERT INTO tokens (id, org_id, hash, role, app_id, expires_at, created_at, "
				 "description) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
	[STORE_Q_TOKEN_BY_HASH] = "SELECT " STORE_TOKEN_COLS " FROM tokens WHERE hash = $1",
	[STORE_Q_TOKEN_LIST] = "SELECT " STORE_TOKEN_COLS " FROM tokens WHERE org_id = $1 ORDER BY created_at, id",
	[STORE_Q_TOKEN_REVOKE] = "UPDATE tokens SET revoked_at = coalesce(revoked_at, $3) "
				 "WHERE id = $1 AND org_id = $2 RETURNING id",
	[STORE_Q_APP_INSERT] = "INSERT INTO apps (id, org_id, name, created_at, grace_ms) VALUES ($1, $2, $3, $4, $5)",
	[STORE_Q_APP_BY_NAME] = "SELECT " STORE_APP_COLS " FROM apps WHERE name = $1",
	[STORE_Q_APP_BY_ID] = "SELECT " STORE_APP_COLS " FROM apps WHERE id = $1",
	[STORE_Q_APP_LIST] = "SELECT " STORE_APP_COLS " FROM apps WHERE org_id = $1 ORDER BY name COLLATE \"C\"",
	[STORE_Q_APP_DELETE] = "DELETE FROM apps WHERE id = $1 RETURNING id",
	[STORE_Q_APP_LOCK] = "SELECT secrets_head FROM apps WHERE id = $1 FOR UPDATE",
	[STORE_Q_APP_SET_HEAD] = "UPDATE apps SET secrets_head = $2 WHERE id = $1",
	[STORE_Q_KEY_INSERT] = "INSERT INTO app_keys (app_id, version, public_key, wrapped_private, created_at) "
			       "VALUES ($1, $2, $3, $4, $5)",
	[STORE_Q_KEY_GET] = "SELECT " STORE_KEY_COLS " FROM app_keys WHERE app_id = $1 AND version = $2",
	[STORE_Q_KEY_LATEST] = "SELECT " STORE_KEY_COLS " FROM app_keys WHERE app_id = $1 "
			       "ORDER BY version DESC LIMIT 1",
	[STORE_Q_VERSION_MAX] = "SELECT coalesce(max(version), 0)::bigint FROM secret_versions WHERE app_id = $1",
	[STORE_Q_VERSION_INSERT] = "INSERT INTO secret_versions (app_id, version, created_at, actor, status) "
				   "VALUES ($1, $2, $3, $4, $5)",
	[STORE_Q_VERSION_GET] = "SELECT " STORE_VERSION_COLS " FROM secret_versions "
				"WHERE app_id = $1 AND version = $2",
	[STORE_Q_VERSION_LIST] = "SELECT " STORE_VERSION_COLS " FROM secret_versions WHERE app_id = $1 "
				 "ORDER BY version",
	[STORE_Q_VERSION_SET_STATUS] = "UPDATE secret_versions SET status = $3 WHERE app_id = $1 AND version = $2 "
				       "RETURNING version",
	[STORE_Q_VALUE_INSERT] = "INSERT INTO secret_values (id, app_id, name, ciphertext, digest, key_version, "
				 "created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
	[STORE_Q_ENTRY_COPY] = "INSERT INTO secret_entries (app_id, version, name, value_id, first_set_at) "
			       "SELECT app_id, $3::bigint, name, value_id, first_set_at FROM secret_entries "
			       "WHERE app_id = $1 AND version = $2",
	[STORE_Q_ENTRY_UPSERT] = "INSERT INTO secret_entries (app_id, version, name, value_id, first_set_at) "
				 "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (app_id, version, name) "
				 "DO UPDATE SET value_id = excluded.value_id",
	[STORE_Q_ENTRY_DELETE] = "DELETE FROM secret_entries WHERE app_id = $1 AND version = $2 AND name = $3",
	[STORE_Q_ENTRY_LIST] = "SELECT e.name, v.ciphertext, v.digest, v.key_version, e.first_set_at, v.created_at "
			       "FROM secret_entries e JOIN secret_values v ON v.id = e.value_id "
			       "WHERE e.app_id = $1 AND e.version = $2 ORDER BY e.name COLLATE \"C\"",
	[STORE_Q_ENTRY_STATS] = "SELECT count(*)::bigint, coalesce(sum(octet_length(v.ciphertext)), 0)::bigint "
				"FROM secret_entries e JOIN secret_values v ON v.id = e.value_id "
				"WHERE e.app_id = $1 AND e.version = $2",
	[STORE_Q_AUDIT_LOCK] = "SELECT pg_advisory_xact_lock(" PG_LOCK_AUDIT ")",
	[STORE_Q_AUDIT_LAST] = "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1",
	[STORE_Q_AUDIT_INSERT] = "INSERT INTO audit_events (" STORE_AUDIT_COLS ") "
				 "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
	[STORE_Q_AUDIT_LIST] = "SELECT " STORE_AUDIT_COLS " FROM audit_events "
			       "WHERE seq > $1 AND ($2::text = '' OR org_id = $2) AND ($3::text = '' OR app = $3) "
			       "ORDER BY seq LIMIT $4",
	[STORE_Q_HOST_INSERT] = "INSERT INTO hosts (id, name, sign_pk, seal_pk, mac, state, enrolled_at, cert) "
				"VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
	[STORE_Q_HOST_BY_ID] = "SELECT " STORE_HOST_COLS " FROM hosts WHERE id = $1",
	[STORE_Q_HOST_BY_NAME] = "SELECT " STORE_HOST_COLS " FROM hosts WHERE name = $1",
	[STORE_Q_HOST_LIST] = "SELECT " STORE_HOST_COLS " FROM hosts ORDER BY name COLLATE \"C\"",
	[STORE_Q_HOST_HEARTBEAT] = "UPDATE hosts SET last_heartbeat = $2 WHERE id = $1 RETURNING id",
	[STORE_Q_JOIN_TOKEN_INSERT] = "INSERT INTO join_tokens_used (id, used_at) VALUES ($1, $2)",
	[STORE_Q_MACHINE_INSERT] = "INSERT INTO machines (id, app_id, host_id, desired_release, state, created_at, "
				   "updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)",
	[STORE_Q_MACHINE_BY_ID] = "SELECT " STORE_MACHINE_COLS " FROM machines WHERE id = $1",
	[STORE_Q_MACHINE_BY_APP] = "SELECT " STORE_MACHINE_COLS " FROM machines WHERE app_id = $1 "
				   "ORDER BY created_at, id",
	[STORE_Q_MACHINE_BY_HOST] = "SELECT " STORE_MACHINE_COLS " FROM machines "
				    "WHERE host_id = $1 AND state <> 'destroyed' ORDER BY created_at, id",
	[STORE_Q_MACHINE_SET_DESIRED] = "UPDATE machines SET desired_release = $2, updated_at = $3 "
					"WHERE id = $1 AND state <> 'destroyed' RETURNING id",
	/* The right-hand sides read the row as it was: a restart is a new start of the same release. */
	[STORE_Q_MACHINE_REPORT] = "UPDATE machines SET restarts = restarts + CASE WHEN $2::text = 'started' "
				   "AND started_at IS NOT NULL AND $7::bigint IS NOT NULL AND started_at <> $7::bigint "
				   "AND running_release = $3::bigint THEN 1 ELSE 0 END, "
				   "state = $2, running_release = $3, pid = $4, exit_status = $5, "
				   "exit_signal = $6, started_at = CASE WHEN $7::bigint IS NOT NULL THEN $7::bigint "
				   "WHEN running_release <> $3::bigint THEN NULL ELSE started_at END, updated_at = $8 "
				   "WHERE id = $1 AND state <> 'destroyed' RETURNING id",
	[STORE_Q_MACHINE_DESTROY] = "UPDATE machines SET updated_at = CASE WHEN state = 'destroyed' "
				    "THEN updated_at ELSE $2 END, state = 'destroyed' WHERE id = $1 RETURNING id",
	[STORE_Q_RELEASE_ACTIVE] = "SELECT version FROM releases WHERE app_id = $1 "
				   "AND status IN ('pending', 'running') LIMIT 1",
	[STORE_Q_RELEASE_MAX] = "SELECT coalesce(max(version), 0)::bigint FROM releases WHERE app_id = $1",
	[STORE_Q_RELEASE_INSERT] = "INSERT INTO releases (app_id, version, config, secrets_version, status, actor, "
				   "created_at, updated_at, previous_version, previous_secrets) "
				   "VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9)",
	[STORE_Q_RELEASE_GET] = "SELECT " STORE_RELEASE_COLS " FROM releases WHERE app_id = $1 AND version = $2",
	[STORE_Q_RELEASE_LIST] = "SELECT " STORE_RELEASE_COLS " FROM releases WHERE app_id = $1 "
				 "ORDER BY version DESC",
	[STORE_Q_RELEASE_RUNNING] = "SELECT " STORE_RELEASE_COLS " FROM releases "
				    "WHERE status IN ('pending', 'running') ORDER BY created_at, app_id",
	[STORE_Q_RELEASE_UPDATE] = "UPDATE releases SET status = $3, reason = coalesce($4, reason), "
				   "progress = coalesce($5, progress), updated_at = $6 "
				   "WHERE app_id = $1 AND version = $2 RETURNING version",
	[STORE_Q_APP_SET_RELEASE] = "UPDATE apps SET current_release = $2, deployed_version = $3 "
				    "WHERE id = $1 RETURNING id",
	[STORE_Q_MACHINE_SET_TAIL] = "UPDATE machines SET tail = $2 WHERE id = $1 AND state <> 'destroyed' RETURNING id",
	[STORE_Q_MACHINE_TAIL] = "SELECT tail FROM machines WHERE id = $1",
	[STORE_Q_MACHINE_LOAD] = "SELECT host_id, count(*)::bigint, sum(CASE WHEN app_id = $1 THEN 1 ELSE 0 END)::bigint "
				 "FROM machines WHERE state <> 'destroyed' GROUP BY host_id ORDER BY host_id COLLATE \"C\"",
};

struct pg {
	PGconn *conn;
	unsigned char prepared[STORE_Q__COUNT];
};

static int has_class(const char *state, const char *cls)
{
	return state && strncmp(state, cls, 2) == 0;
}

/* One line of a libpq message, without its newline, for the log. */
static void one_line(const char *msg, char *out, size_t size)
{
	size_t n = 0;
	if (msg)
		while (msg[n] && msg[n] != '\n' && n + 1 < size) {
			out[n] = msg[n];
			n++;
		}
	out[n] = '\0';
}

/*
 * The one place libpq errors become coffer errors: by SQLSTATE when the
 * server answered, else by the connection's state. Logged: the SQLSTATE,
 * the constraint's name and the primary message, never the DETAIL (which
 * can quote values).
 */
static enum coffer_err pg_error(PGconn *conn, const PGresult *res, int statement)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *constraint = res ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME) : NULL;
	char msg[PG_MESSAGE_MAX];
	enum coffer_err e;

	if (!conn || PQstatus(conn) != CONNECTION_OK)
		e = COFFER_ERR_UNAVAILABLE;
	else if (!state)
		e = res ? COFFER_ERR_STORE : COFFER_ERR_NOMEM;
	else if (strcmp(state, "23505") == 0)
		e = COFFER_ERR_CONFLICT; /* unique_violation */
	else if (strcmp(state, "23503") == 0)
		e = COFFER_ERR_NOT_FOUND; /* foreign_key_violation */
	else if (has_class(state, "23") || has_class(state, "22"))
		e = COFFER_ERR_INVALID; /* other integrity violations, data exceptions */
	else if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0)
		e = COFFER_ERR_CONFLICT; /* serialization failure, deadlock: a concurrent change won */
	else if (has_class(state, "08") || has_class(state, "53") || has_class(state, "57"))
		e = COFFER_ERR_UNAVAILABLE; /* connection, resources, operator intervention */
	else
		e = COFFER_ERR_STORE;

	one_line(res && PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
			 ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
			 : (conn ? PQerrorMessage(conn) : "out of memory"),
		 msg, sizeof(msg));
	if (has_class(state, "23"))
		log_debug("store_constraint", LF_S("backend", "postgres"), LF_I("statement", statement),
			  LF_S("sqlstate", state), LF_S("constraint", constraint ? constraint : ""),
			  LF_S("message", msg));
	else
		log_warn("store_error", LF_S("backend", "postgres"), LF_I("statement", statement),
			 LF_S("sqlstate", state ? state : ""), LF_S("message", msg));
	return e;
}

static void quiet_notices(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

static void pg_close(void *conn)
{
	struct pg *c = conn;
	if (!c)
		return;
	PQfinish(c->conn);
	free(c);
}

/* Runs a fixed command or script (transaction control, migrations); never input. */
static enum coffer_err pg_script(void *conn, const char *text)
{
	struct pg *c = conn;
	enum coffer_err err = COFFER_OK;
	PGresult *res = PQexec(c->conn, text);
	ExecStatusType st = PQresultStatus(res);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		err = pg_error(c->conn, res, -1);
	PQclear(res);
	return err;
}

static enum coffer_err pg_open(const char *url, void **out)
{
	struct pg *c;
	enum coffer_err err = COFFER_OK;

	for (size_t i = 0; i < STORE_Q__COUNT; i++)
		if (!sql[i])
			return COFFER_ERR_INTERNAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return COFFER_ERR_NOMEM;
	c->conn = PQconnectdb(url);
	if (!c->conn || PQstatus(c->conn) != CONNECTION_OK) {
		err = pg_error(c->conn, NULL, -1);
		goto out;
	}
	PQsetNoticeProcessor(c->conn, quiet_notices, NULL);
	/* Times are integers and names bytes: only the encoding matters. */
	if (PQsetClientEncoding(c->conn, "UTF8") != 0) {
		err = pg_error(c->conn, NULL, -1);
		goto out;
	}
	*out = c;
	c = NULL;
out:
	pg_close(c);
	return err;
}

static enum coffer_err pg_begin(void *conn, int write)
{
	(void)write; /* writers lock what they write (FOR UPDATE, advisory locks) */
	return pg_script(conn, "BEGIN");
}

static enum coffer_err pg_commit(void *conn)
{
	struct pg *c = conn;
	enum coffer_err err = COFFER_OK;
	PGresult *res = PQexec(c->conn, "COMMIT");
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		err = pg_error(c->conn, res, -1);
	else if (strcmp(PQcmdStatus(res), "COMMIT") != 0)
		err = COFFER_ERR_STORE; /* the transaction had failed: COMMIT rolled it back */
	PQclear(res);
	return err;
}

static void pg_rollback(void *conn)
{
	struct pg *c = conn;
	if (PQtransactionStatus(c->conn) != PQTRANS_IDLE)
		PQclear(PQexec(c->conn, "ROLLBACK"));
}

static uint64_t be_uint(const unsigned char *p, int len)
{
	uint64_t v = 0;
	for (int i = 0; i < len; i++)
		v = (v << 8) | p[i];
	return v;
}

/* Converts one binary result value. */
static enum coffer_err read_value(const PGresult *res, int row, int col, struct store_cell *cell)
{
	const unsigned char *p = (const unsigned char *)PQgetvalue(res, row, col);
	int len = PQgetlength(res, row, col);
	if (PQgetisnull(res, row, col))
		return COFFER_OK;
	switch (PQftype(res, col)) {
	case PG_OID_INT8:
		if (len != 8)
			return COFFER_ERR_STORE;
		return store_cell_set(cell, STORE_V_INT, (int64_t)be_uint(p, 8), NULL, 0);
	case PG_OID_INT4:
		if (len != 4)
			return COFFER_ERR_STORE;
		return store_cell_set(cell, STORE_V_INT, (int32_t)(uint32_t)be_uint(p, 4), NULL, 0);
	case PG_OID_INT2:
		if (len != 2)
			return COFFER_ERR_STORE;
		return store_cell_set(cell, STORE_V_INT, (int16_t)(uint16_t)be_uint(p, 2), NULL, 0);
	case PG_OID_BOOL:
		if (len != 1)
			return COFFER_ERR_STORE;
		return store_cell_set(cell, STORE_V_INT, p[0] != 0, NULL, 0);
	case PG_OID_TEXT:
	case PG_OID_VARCHAR:
	case PG_OID_BPCHAR:
	case PG_OID_NAME:
		return store_cell_set(cell, STORE_V_TEXT, 0, p, (size_t)len);
	case PG_OID_BYTEA:
		return store_cell_set(cell, STORE_V_BLOB, 0, p, (size_t)len);
	case PG_OID_VOID:
		return COFFER_OK;
	default:
		return COFFER_ERR_STORE;
	}
}

static enum coffer_err read_rows(const PGresult *res, struct store_rows *rows)
{
	int nrows = PQntuples(res), ncols = PQnfields(res);
	enum coffer_err err = COFFER_OK;
	rows->ncols = (size_t)ncols;
	for (int r = 0; r < nrows && ncols > 0 && err == COFFER_OK; r++) {
		struct store_cell *row;
		err = store_rows_add(rows, &row);
		for (int c = 0; c < ncols && err == COFFER_OK; c++)
			err = read_value(res, r, c, &row[c]);
	}
	return err;
}

static enum coffer_err pg_exec(void *conn, enum store_q q, const struct store_val *params, size_t n,
			       struct store_rows *rows)
{
	struct pg *c = conn;
	char name[PG_STMT_NAME_SIZE];
	char ints[STORE_MAX_PARAMS][PG_INT_TEXT_SIZE];
	const char *values[STORE_MAX_PARAMS];
	int lengths[STORE_MAX_PARAMS], formats[STORE_MAX_PARAMS];
	enum coffer_err err;
	PGresult *res;
	ExecStatusType st;

	if (n > STORE_MAX_PARAMS)
		return COFFER_ERR_INTERNAL;
	err = fmt_into(name, sizeof(name), "coffer_q%d", (int)q);
	if (err)
		return err;
	if (!c->prepared[q]) {
		res = PQprepare(c->conn, name, sql[q], 0, NULL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			err = pg_error(c->conn, res, (int)q);
			PQclear(res);
			return err;
		}
		PQclear(res);
		c->prepared[q] = 1;
	}
	for (size_t i = 0; i < n; i++) {
		const struct store_val *v = &params[i];
		lengths[i] = 0;
		formats[i] = 0;
		switch (v->type) {
		case STORE_V_NULL:
			values[i] = NULL;
			break;
		case STORE_V_INT:
			err = fmt_into(ints[i], sizeof(ints[i]), "%lld", (long long)v->i);
			if (err)
				return err;
			values[i] = ints[i];
			break;
		case STORE_V_TEXT:
			values[i] = v->p;
			break;
		case STORE_V_BLOB:
			if (v->len > INT32_MAX)
				return COFFER_ERR_TOO_LARGE;
			values[i] = v->len ? v->p : "";
			lengths[i] = (int)v->len;
			formats[i] = 1;
			break;
		}
	}
	res = PQexecPrepared(c->conn, name, (int)n, values, lengths, formats, 1);
	st = PQresultStatus(res);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		err = pg_error(c->conn, res, (int)q);
	else if (rows && st == PGRES_TUPLES_OK)
		err = read_rows(res, rows);
	PQclear(res);
	return err;
}

const struct store_backend store_pg_backend = {
	.name = "postgres",
	.migrations = migrations,
	.n_migrations = sizeof(migrations) / sizeof(migrations[0]),
	.open = pg_open,
	.close = pg_close,
	.begin = pg_begin,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.exec = pg_exec,
	.script = pg_script,
};
