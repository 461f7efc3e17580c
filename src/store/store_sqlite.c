/*
 * The SQLite backend: a driver for the store (see store_backend.h). It runs
 * the shared statements (store_sql.def) as they are written, and has no
 * row locks: a writer takes the database's write lock with BEGIN
 * IMMEDIATE, waiting up to SQLITE_BUSY_MS for it.
 *
 * Writers of one process queue on a process-wide lock per database file
 * (struct wlock, found by device and inode) before they ask SQLite for its
 * write lock, and keep it until their transaction ends: so they wait on a
 * mutex, never in SQLite's busy handler, which sleeps 1, 2, 5, 10... ms
 * between polls. Only writers of other processes (the keeper and the api)
 * meet SQLITE_BUSY. The lock also runs WAL checkpoints: SQLite's own
 * automatic checkpoint is off, and a committer that holds the lock
 * checkpoints (PASSIVE) once the WAL passes SQLITE_CKPT_FRAMES, and again
 * only after SQLITE_CKPT_RETRY_FRAMES more if readers kept it from
 * finishing, instead of after every commit.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "store_backend.h"

#include "banned.h"

#define SQLITE_OPEN_RETRY_MS 10 /* between tries of the WAL switch on a busy new file */
#define SQLITE_BUSY_MS 30000
#define SQLITE_FILE_MODE 0600
#define SQLITE_CKPT_FRAMES 1000      /* WAL frames after which a committer checkpoints (SQLite's default) */
#define SQLITE_CKPT_RETRY_FRAMES 200 /* more frames before an unfinished checkpoint is tried again */
#define SQLITE_MS_PER_S 1000
#define SQLITE_NS_PER_MS 1000000L
#define SQLITE_NS_PER_S 1000000000L

/*
 * The process's write lock of one database file, shared by every
 * connection of the process to that file (refs), in a list under wlocks_mu.
 */
struct wlock {
	struct wlock *next;
	dev_t dev;
	ino_t ino;
	unsigned refs;
	pthread_mutex_t mu;
	int ckpt_mark; /* WAL frames at the last checkpoint; under mu */
};

static pthread_mutex_t wlocks_mu = PTHREAD_MUTEX_INITIALIZER;
static struct wlock *wlocks;

struct sq {
	sqlite3 *db;
	struct wlock *wl;
	int held;       /* this connection holds wl->mu */
	int wal_frames; /* the WAL's frames after this connection's last commit; 0 = none since */
	sqlite3_stmt *stmts[STORE_Q__COUNT];
};

/* The one place SQLite result codes become coffer errors. */
static enum coffer_err sq_error(sqlite3 *db, int rc, int statement)
{
	enum coffer_err e;
	switch (rc & 0xff) {
	case SQLITE_CONSTRAINT:
		if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
			e = COFFER_ERR_CONFLICT;
		else if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
			e = COFFER_ERR_NOT_FOUND;
		else
			e = COFFER_ERR_INVALID;
		break;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		e = COFFER_ERR_UNAVAILABLE;
		break;
	case SQLITE_NOMEM:
		e = COFFER_ERR_NOMEM;
		break;
	case SQLITE_TOOBIG:
		e = COFFER_ERR_TOO_LARGE;
		break;
	case SQLITE_IOERR:
	case SQLITE_CANTOPEN:
	case SQLITE_FULL:
	case SQLITE_READONLY:
	case SQLITE_PERM:
		e = COFFER_ERR_IO;
		break;
	default:
		e = COFFER_ERR_STORE;
		break;
	}
	/* SQLite's messages name tables and columns, never bound values. */
	if ((rc & 0xff) == SQLITE_CONSTRAINT)
		log_debug("store_constraint", LF_S("backend", "sqlite"), LF_I("statement", statement),
			  LF_I("code", rc), LF_S("message", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
	else
		log_warn("store_error", LF_S("backend", "sqlite"), LF_I("statement", statement), LF_I("code", rc),
			 LF_S("message", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
	return e;
}

/* The process's write lock of the file at path (which exists), made on first use. */
static enum coffer_err wlock_get(const char *path, struct wlock **out)
{
	struct stat st;
	struct wlock *w;
	enum coffer_err rc = COFFER_OK;

	if (stat(path, &st) != 0) {
		log_error("store_open_failed", LF_S("backend", "sqlite"), LF_S("error", strerror(errno)));
		return COFFER_ERR_IO;
	}
	pthread_mutex_lock(&wlocks_mu);
	for (w = wlocks; w; w = w->next)
		if (w->dev == st.st_dev && w->ino == st.st_ino)
			break;
	if (!w) {
		w = calloc(1, sizeof(*w));
		if (!w) {
			rc = COFFER_ERR_NOMEM;
			goto out;
		}
		if (pthread_mutex_init(&w->mu, NULL)) {
			free(w);
			rc = COFFER_ERR_NOMEM;
			goto out;
		}
		w->dev = st.st_dev;
		w->ino = st.st_ino;
		w->next = wlocks;
		wlocks = w;
	}
	w->refs++;
	*out = w;
out:
	pthread_mutex_unlock(&wlocks_mu);
	return rc;
}

static void wlock_put(struct wlock *w)
{
	struct wlock **p;
	if (!w)
		return;
	pthread_mutex_lock(&wlocks_mu);
	if (--w->refs == 0) {
		for (p = &wlocks; *p != w; p = &(*p)->next)
			;
		*p = w->next;
		pthread_mutex_destroy(&w->mu);
		free(w);
	}
	pthread_mutex_unlock(&wlocks_mu);
}

/*
 * Takes the process's write lock of c's file, waiting at most
 * SQLITE_BUSY_MS like SQLite's busy handler (a thread that writes through
 * two connections to one file at once would otherwise wait forever).
 */
static enum coffer_err wlock_take(struct sq *c)
{
	struct timespec t;
	int rc;
	if (c->held)
		return COFFER_OK;
	clock_gettime(CLOCK_REALTIME, &t);
	t.tv_sec += SQLITE_BUSY_MS / SQLITE_MS_PER_S;
	t.tv_nsec += (SQLITE_BUSY_MS % SQLITE_MS_PER_S) * SQLITE_NS_PER_MS;
	if (t.tv_nsec >= SQLITE_NS_PER_S) {
		t.tv_sec++;
		t.tv_nsec -= SQLITE_NS_PER_S;
	}
	rc = pthread_mutex_timedlock(&c->wl->mu, &t);
	if (rc) {
		log_warn("store_error", LF_S("backend", "sqlite"), LF_S("message", "write lock wait timed out"));
		return COFFER_ERR_UNAVAILABLE;
	}
	c->held = 1;
	return COFFER_OK;
}

/*
 * Gives the write lock back once no transaction is open. A commit that
 * left the WAL past SQLITE_CKPT_FRAMES checkpoints first, still holding
 * the lock, so that no writer of this process adds frames meanwhile and
 * the checkpoint can finish and let the next writer restart the WAL.
 */
static void wlock_drop(struct sq *c)
{
	int frames = c->wal_frames, log_frames = 0, done = 0;
	if (!c->held || !sqlite3_get_autocommit(c->db))
		return;
	c->wal_frames = 0;
	if (frames > 0 && frames < c->wl->ckpt_mark)
		c->wl->ckpt_mark = 0; /* the WAL was restarted */
	if (frames >= SQLITE_CKPT_FRAMES &&
	    (c->wl->ckpt_mark == 0 || frames - c->wl->ckpt_mark >= SQLITE_CKPT_RETRY_FRAMES)) {
		int rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log_frames, &done);
		if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_BUSY)
			log_warn("store_checkpoint_failed", LF_S("backend", "sqlite"), LF_I("code", rc));
		/* Readers may have kept it from finishing: the next try waits for more frames or a restart. */
		c->wl->ckpt_mark = frames;
	}
	c->held = 0;
	pthread_mutex_unlock(&c->wl->mu);
}

/* SQLite calls this after each commit with the WAL's size in frames (it replaces the automatic checkpoint). */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct sq *c = arg;
	(void)db;
	(void)name;
	c->wal_frames = frames;
	return SQLITE_OK;
}

static void sq_close(void *conn)
{
	struct sq *c = conn;
	if (!c)
		return;
	for (size_t i = 0; i < STORE_Q__COUNT; i++)
		sqlite3_finalize(c->stmts[i]);
	sqlite3_close_v2(c->db); /* rolls back an open transaction */
	if (c->held)
		pthread_mutex_unlock(&c->wl->mu);
	wlock_put(c->wl);
	free(c);
}

/* Runs a fixed statement (pragmas, transaction control, migrations); never input. */
static enum coffer_err sq_script(void *conn, const char *text)
{
	struct sq *c = conn;
	int rc = sqlite3_exec(c->db, text, NULL, NULL, NULL);
	return rc == SQLITE_OK ? COFFER_OK : sq_error(c->db, rc, -1);
}

/*
 * Creates the file private to its owner before SQLite opens it (SQLite gives
 * -wal and -shm the same mode). O_EXCL matters: closing any descriptor of a
 * database file drops every POSIX lock this process holds on it, so opening
 * and closing an existing file while other connections of this process hold
 * it would silently release their locks (another process could then
 * checkpoint and delete the WAL under them). An existing file is left alone.
 */
static enum coffer_err create_private(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, SQLITE_FILE_MODE);
	if (fd < 0 && errno == EEXIST)
		return COFFER_OK;
	if (fd < 0) {
		log_error("store_open_failed", LF_S("backend", "sqlite"), LF_S("error", strerror(errno)));
		return COFFER_ERR_IO;
	}
	close(fd);
	return COFFER_OK;
}

/* Notes whether PRAGMA journal_mode answered "wal". */
static int journal_mode_row(void *arg, int ncols, char **values, char **names)
{
	(void)names;
	*(int *)arg = ncols == 1 && values[0] && strcmp(values[0], "wal") == 0;
	return 0;
}

static enum coffer_err sq_open(const char *path, void **out)
{
	static const char *const pragmas[] = {
		"PRAGMA foreign_keys = ON",
		"PRAGMA trusted_schema = OFF",
		"PRAGMA synchronous = FULL",
	};
	int wal = 0;
	struct sq *c;
	int rc;
	enum coffer_err err = create_private(path);
	if (err)
		return err;
	c = calloc(1, sizeof(*c));
	if (!c)
		return COFFER_ERR_NOMEM;
	rc = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL);
	if (rc != SQLITE_OK) {
		err = sq_error(c->db, rc, -1);
		goto out;
	}
	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_timeout(c->db, SQLITE_BUSY_MS);
	err = wlock_get(path, &c->wl);
	if (err)
		goto out;
	/*
	 * Switching a new file to WAL takes a lock that the busy handler does not
	 * wait for: openers racing on a fresh file would see SQLITE_BUSY. Retry
	 * for as long as the busy timeout would have waited.
	 */
	for (int waited = 0;; waited += SQLITE_OPEN_RETRY_MS) {
		wal = 0;
		rc = sqlite3_exec(c->db, "PRAGMA journal_mode = WAL", journal_mode_row, &wal, NULL);
		if ((rc & 0xff) != SQLITE_BUSY || waited >= SQLITE_BUSY_MS)
			break;
		sqlite3_sleep(SQLITE_OPEN_RETRY_MS);
	}
	if (rc != SQLITE_OK) {
		err = sq_error(c->db, rc, -1);
		goto out;
	}
	if (!wal)
		log_warn("store_sqlite_not_wal", LF_S("reason", "the file system refused WAL mode"));
	else
		sqlite3_wal_hook(c->db, wal_hook, c); /* instead of SQLite's automatic checkpoint */
	for (size_t i = 0; i < sizeof(pragmas) / sizeof(pragmas[0]); i++) {
		err = sq_script(c, pragmas[i]);
		if (err)
			goto out;
	}
	*out = c;
	c = NULL;
out:
	sq_close(c);
	return err;
}

/* A write transaction takes the process's write lock first (wlock_take), then SQLite's. */
static enum coffer_err sq_begin(void *conn, int write)
{
	struct sq *c = conn;
	enum coffer_err err;
	if (!write)
		return sq_script(c, "BEGIN");
	err = wlock_take(c);
	if (err)
		return err;
	err = sq_script(c, "BEGIN IMMEDIATE");
	if (err)
		wlock_drop(c);
	return err;
}

/* A failed COMMIT leaves the transaction open, and the lock held, for sq_rollback. */
static enum coffer_err sq_commit(void *conn)
{
	struct sq *c = conn;
	enum coffer_err err = sq_script(c, "COMMIT");
	wlock_drop(c);
	return err;
}

static void sq_rollback(void *conn)
{
	struct sq *c = conn;
	if (!sqlite3_get_autocommit(c->db))
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	wlock_drop(c);
}

static int bind(sqlite3_stmt *st, int i, const struct store_val *v)
{
	switch (v->type) {
	case STORE_V_INT:
		return sqlite3_bind_int64(st, i, v->i);
	case STORE_V_TEXT:
		return sqlite3_bind_text64(st, i, v->p, v->len, SQLITE_STATIC, SQLITE_UTF8);
	case STORE_V_BLOB:
		if (v->len == 0)
			return sqlite3_bind_zeroblob(st, i, 0);
		return sqlite3_bind_blob64(st, i, v->p, v->len, SQLITE_STATIC);
	case STORE_V_NULL:
		return sqlite3_bind_null(st, i);
	}
	return SQLITE_MISUSE;
}

static enum coffer_err read_row(sqlite3_stmt *st, struct store_rows *rows)
{
	struct store_cell *row;
	enum coffer_err rc = store_rows_add(rows, &row);
	for (size_t i = 0; rc == COFFER_OK && i < rows->ncols; i++) {
		int col = (int)i;
		switch (sqlite3_column_type(st, col)) {
		case SQLITE_INTEGER:
			rc = store_cell_set(&row[i], STORE_V_INT, sqlite3_column_int64(st, col), NULL, 0);
			break;
		case SQLITE_TEXT: {
			const unsigned char *p = sqlite3_column_text(st, col);
			if (!p)
				return COFFER_ERR_NOMEM;
			rc = store_cell_set(&row[i], STORE_V_TEXT, 0, p, (size_t)sqlite3_column_bytes(st, col));
			break;
		}
		case SQLITE_BLOB: {
			const void *p = sqlite3_column_blob(st, col);
			size_t len = (size_t)sqlite3_column_bytes(st, col);
			rc = store_cell_set(&row[i], STORE_V_BLOB, 0, p, p ? len : 0);
			break;
		}
		case SQLITE_NULL:
			break;
		default:
			rc = COFFER_ERR_STORE; /* the schema has no floats */
			break;
		}
	}
	return rc;
}

static enum coffer_err sq_exec(void *conn, enum store_q q, const struct store_val *params, size_t n,
			       struct store_rows *rows)
{
	struct sq *c = conn;
	sqlite3_stmt *st = c->stmts[q];
	enum coffer_err err = COFFER_OK;
	int rc;

	if (!st) {
		rc = sqlite3_prepare_v3(c->db, store_stmts[q].sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
		if (rc != SQLITE_OK)
			return sq_error(c->db, rc, (int)q);
		c->stmts[q] = st;
	}
	if (n != (size_t)sqlite3_bind_parameter_count(st))
		return COFFER_ERR_INTERNAL;
	/*
	 * A statement that writes outside a write transaction (autocommit, or a
	 * read transaction that becomes a write) takes the write lock first; it
	 * is given back when no transaction is open any more.
	 */
	if (!sqlite3_stmt_readonly(st)) {
		err = wlock_take(c);
		if (err)
			return err;
	}
	for (size_t i = 0; i < n; i++) {
		rc = bind(st, (int)i + 1, &params[i]);
		if (rc != SQLITE_OK) {
			err = sq_error(c->db, rc, (int)q);
			goto out;
		}
	}
	if (rows)
		rows->ncols = (size_t)sqlite3_column_count(st);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (rows && rows->ncols) {
			err = read_row(st, rows);
			if (err)
				goto out;
		}
	}
	if (rc != SQLITE_DONE)
		err = sq_error(c->db, rc, (int)q);
out:
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	wlock_drop(c);
	return err;
}

const struct store_backend store_sqlite_backend = {
	.name = "sqlite",
	.migrations = store_sqlite_migrations,
	.open = sq_open,
	.close = sq_close,
	.begin = sq_begin,
	.commit = sq_commit,
	.rollback = sq_rollback,
	.exec = sq_exec,
	.script = sq_script,
};
