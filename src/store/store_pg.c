/*
 * The PostgreSQL backend (libpq): a driver for the store (see
 * store_backend.h). It runs the shared statements (store_sql.def), or
 * PostgreSQL's own text where one is given (bytewise ordering asked for
 * with COLLATE "C", and locks: a secrets writer locks the app row with
 * SELECT ... FOR UPDATE, migrators and audit appenders take
 * transaction-scoped advisory locks), with ?N parameters written $N. Statements are prepared once per
 * connection (PQprepare) and run with PQexecPrepared: text parameters, blobs
 * as binary, results in binary.
 */
#include <endian.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "encode.h"
#include "log.h"
#include "store_backend.h"

#include "banned.h"

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
		return store_cell_set(cell, STORE_V_INT, (int64_t)be_get(p, 8), NULL, 0);
	case PG_OID_INT4:
		if (len != 4)
			return COFFER_ERR_STORE;
		return store_cell_set(cell, STORE_V_INT, (int32_t)(uint32_t)be_get(p, 4), NULL, 0);
	case PG_OID_INT2:
		if (len != 2)
			return COFFER_ERR_STORE;
		return store_cell_set(cell, STORE_V_INT, (int16_t)(uint16_t)be_get(p, 2), NULL, 0);
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

/*
 * Prepares statement q as `name`: PostgreSQL's own text if it has one, else
 * the shared one, with each ?N parameter written $N (the same length).
 */
static enum coffer_err prepare(struct pg *c, enum store_q q, const char *name)
{
	const char *text = store_stmts[q].pg ? store_stmts[q].pg : store_stmts[q].sql;
	size_t len = strlen(text);
	enum coffer_err err = COFFER_OK;
	PGresult *res;
	char *pg = malloc(len + 1);
	if (!pg)
		return COFFER_ERR_NOMEM;
	for (size_t i = 0; i <= len; i++)
		pg[i] = text[i] == '?' && text[i + 1] >= '0' && text[i + 1] <= '9' ? '$' : text[i];
	res = PQprepare(c->conn, name, pg, 0, NULL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		err = pg_error(c->conn, res, (int)q);
	PQclear(res);
	free(pg);
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
		err = prepare(c, q, name);
		if (err)
			return err;
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
	.migrations = store_pg_migrations,
	.open = pg_open,
	.close = pg_close,
	.begin = pg_begin,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.exec = pg_exec,
	.script = pg_script,
};
