#include "machine.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "deliver.h"
#include "fs.h"
#include "log.h"
#include "mask_output.h"
#include "timescale.h"

#include "banned.h"

#define COPY_CHUNK 16384         /* bytes of out.log copied into a rotated file at a time */
#define STAT_MAX 4096            /* bytes of /proc/PID/stat read */
#define BOOT_ID_PATH "/proc/sys/kernel/random/boot_id"
#define PW_BUF_SIZE 16384        /* getpwnam_r scratch */
#define FD_SCAN_MAX 65536        /* fds marked close-on-exec when close_range is missing */
#define POLL_FIRST_MS 1          /* machine_wait without a pidfd polls waitid, backing off to POLL_MAX_MS */
#define POLL_MAX_MS 20
#define WORK_PARENT_MODE 0711
#define WORK_DIR_MODE 0700
#define LOG_DIR_MODE 0700
#define LOG_FILE_MODE 0600
#define MASK "***"

struct machine {
	pid_t pid;
	int pidfd;                 /* pidfd_open(pid): readable once the process has ended; -1 if none */
	int adopted;               /* not our child: started by an earlier agent (machine_adopt) */
	int reaped;                /* exit is set, pid is no longer ours */
	int lost;                  /* somebody else reaped it: never signal pid again */
	struct machine_exit exit;
	int64_t started_ms;        /* monotonic */
	struct machine_ident ident;
	struct deliver_run delivery;  /* what the delivery modes made for this start */
	pid_t mask_pid;            /* the output masker (our child), or -1 */
	int mask_pidfd;
	int masked;                /* started with a masker: this run's out.log holds masked output only */
	int mask_killed;           /* the agent killed it (masker_reap): its signal is no failure */

	/* The logs: the child writes out.log itself (O_APPEND); machine_wait rotates it. */
	int dir_fd;                /* the log folder */
	size_t log_cap;
	unsigned log_files;
	unsigned rotations;        /* during this run, by this agent */
	int warned;
};

/* What the child reports through the close-on-exec pipe when a step fails. */
enum child_stage {
	STAGE_SIGNALS = 1,
	STAGE_SETSID,
	STAGE_STDIO,
	STAGE_SETGROUPS,
	STAGE_SETGID,
	STAGE_SETUID,
	STAGE_CHDIR,
	STAGE_DELIVER,
	STAGE_EXEC,
};

struct child_report {
	int stage;
	int err;
	size_t mode; /* STAGE_DELIVER: the row of the mode that failed */
};

/* Everything the child needs, prepared before vfork: it calls only async-signal-safe functions. */
struct child_ctx {
	char *const *argv;
	char *const *envp;
	const char *path;          /* the PATH of the machine's environment, or NULL */
	const char *work_dir;
	int devnull, log_w, report_w;
	int drop;
	uid_t uid;
	gid_t gid;
	unsigned fd_max;
	struct deliver_run *run;   /* wiped if the child fails before execve */
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static enum coffer_err errno_to_err(int e)
{
	switch (e) {
	case ENOENT:
	case ENOTDIR:
		return COFFER_ERR_NOT_FOUND;
	case EACCES:
	case EPERM:
		return COFFER_ERR_FORBIDDEN;
	case E2BIG:
	case ENAMETOOLONG:
		return COFFER_ERR_TOO_LARGE;
	case ENOMEM:
		return COFFER_ERR_NOMEM;
	default:
		return COFFER_ERR_IO;
	}
}

void machine_error_set(struct machine_error *err, const char *what, const char *subject, int e)
{
	if (!err)
		return;
	char ebuf[128];
	const char *reason = e ? strerror_r(e, ebuf, sizeof(ebuf)) : NULL;
	enum coffer_err rc;
	if (subject && reason)
		rc = fmt_into(err->message, sizeof(err->message), "%s \"%.200s\": %s", what, subject, reason);
	else if (subject)
		rc = fmt_into(err->message, sizeof(err->message), "%s \"%.200s\"", what, subject);
	else if (reason)
		rc = fmt_into(err->message, sizeof(err->message), "%s: %s", what, reason);
	else
		rc = fmt_into(err->message, sizeof(err->message), "%s", what);
	if (rc)
		err->message[0] = '\0';
}

/* ---- the user ---- */

static enum coffer_err resolve_user(const char *user, int *drop, uid_t *uid, gid_t *gid, struct machine_error *err)
{
	int root = geteuid() == 0;
	if (!root && !user) {
		*drop = 0;
		return COFFER_OK;
	}
	const char *name = user ? user : MACHINE_USER_DEFAULT;
	char scratch[PW_BUF_SIZE];
	struct passwd pw, *found = NULL;
	int r = getpwnam_r(name, &pw, scratch, sizeof(scratch), &found);
	if (r || !found) {
		machine_error_set(err, "unknown user", name, r);
		return r == ERANGE ? COFFER_ERR_TOO_LARGE : COFFER_ERR_NOT_FOUND;
	}
	if (!root) {
		if (found->pw_uid != geteuid()) {
			machine_error_set(err, "the agent is not root and cannot run machines as", name, 0);
			return COFFER_ERR_FORBIDDEN;
		}
		*drop = 0;
		return COFFER_OK;
	}
	if (found->pw_uid == 0) {
		machine_error_set(err, "machines never run as root, refused user", name, 0);
		return COFFER_ERR_FORBIDDEN;
	}
	*drop = 1;
	*uid = found->pw_uid;
	*gid = found->pw_gid;
	return COFFER_OK;
}

/* ---- folders ---- */

static enum coffer_err make_work_dir(const char *dir, int drop, uid_t uid, gid_t gid, struct machine_error *err)
{
	char parent[PATH_MAX];
	if (str_copy(parent, sizeof(parent), dir)) {
		machine_error_set(err, "work dir path too long", NULL, 0);
		return COFFER_ERR_TOO_LARGE;
	}
	char *slash = strrchr(parent, '/');
	if (slash && slash != parent) {
		*slash = '\0';
		if (fs_mkdir_p(parent, WORK_PARENT_MODE)) {
			machine_error_set(err, "cannot create the parent of the work dir", parent, errno);
			return COFFER_ERR_IO;
		}
	}
	if (mkdir(dir, WORK_DIR_MODE) && errno != EEXIST) {
		machine_error_set(err, "cannot create the work dir", dir, errno);
		return errno_to_err(errno);
	}
	if (!drop)
		return COFFER_OK;
	/* O_NOFOLLOW: chown the folder itself, never what a link points to. */
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		machine_error_set(err, "cannot open the work dir", dir, errno);
		return errno_to_err(errno);
	}
	int r = fchown(fd, uid, gid);
	int e = errno;
	close(fd);
	if (r) {
		machine_error_set(err, "cannot give the work dir to the machine's user", dir, e);
		return errno_to_err(e);
	}
	return COFFER_OK;
}

/* ---- logs ---- */

static enum coffer_err log_name(unsigned k, char *name, size_t size)
{
	if (k == 0)
		return str_copy(name, size, MACHINE_LOG_NAME);
	return fmt_into(name, size, "%s.%u", MACHINE_LOG_NAME, k);
}

static void log_warn_once(struct machine *m, const char *what, int e)
{
	if (m->warned)
		return;
	m->warned = 1;
	log_warn("machine_log_failed", LF_S("what", what), LF_I("pid", m->pid), LF_I("errno", e));
}

/* out.log, opened for appending (the child's stdout and stderr); -1 if it is not a regular file. */
static int log_open(struct machine *m)
{
	int fd = openat(m->dir_fd, MACHINE_LOG_NAME, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC,
			LOG_FILE_MODE);
	struct stat st;
	if (fd >= 0 && (fstat(fd, &st) || !S_ISREG(st.st_mode))) {
		close(fd);
		errno = EINVAL;
		fd = -1;
	}
	return fd;
}

/* out.log.K -> out.log.K+by for K from log_files down to `first` (0: out.log too); past log_files is dropped. */
static void log_shift(struct machine *m, unsigned first, unsigned by)
{
	char from[32], to[32];
	for (unsigned k = m->log_files + 1; k-- > first;) {
		if (log_name(k, from, sizeof(from)))
			return;
		if (by <= m->log_files && k + by <= m->log_files) {
			if (log_name(k + by, to, sizeof(to)) == COFFER_OK &&
			    renameat(m->dir_fd, from, m->dir_fd, to) && errno != ENOENT)
				log_warn_once(m, "rotate", errno);
		} else if (k > 0 && unlinkat(m->dir_fd, from, 0) && errno != ENOENT) {
			log_warn_once(m, "rotate", errno);
		}
	}
}

/*
 * Where the last log file's worth of text[0..end) starts: at most the cap
 * back, just after a newline when there is one in reach (a longer line is
 * split at the cap).
 */
static size_t log_piece_start(const struct machine *m, const unsigned char *text, size_t end)
{
	if (end <= m->log_cap)
		return 0;
	size_t lo = end - m->log_cap;
	const unsigned char *nl = memchr(text + lo - 1, '\n', end - lo);
	return nl ? (size_t)(nl - text) + 1 : lo;
}

/*
 * The cap (copy and truncate: the child keeps its out.log open): once
 * out.log has grown past log_cap, its last log_files * log_cap bytes are
 * cut into pieces of at most the cap, from the end back (each starts just
 * after a newline where one is in reach; a longer line is split), the
 * pieces become out.log.1 (the newest) and up, the older files move up
 * past them, and out.log is truncated for the child's next writes. What
 * the child writes between the copy and the truncation is lost. The copy
 * is in secure memory, wiped.
 */
static void log_check(struct machine *m)
{
	struct secret *text = NULL;
	char name[32];
	struct stat st;
	int fd = openat(m->dir_fd, MACHINE_LOG_NAME, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || (size_t)st.st_size <= m->log_cap)
		goto out;
	size_t size = (size_t)st.st_size, keep = m->log_cap * m->log_files;
	off_t from = size > keep ? (off_t)(size - keep) : 0;
	size_t n = 0, want = size - (size_t)from;
	if (secret_new(want, &text))
		goto out;
	unsigned char *t = secret_bytes(text);
	while (n < want) {
		ssize_t r = pread(fd, t + n, want - n, from + (off_t)n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	if (ftruncate(fd, 0)) {
		log_warn_once(m, "truncate", errno);
		goto out;
	}
	unsigned pieces = 0;
	for (size_t end = n; end > 0 && pieces < m->log_files; end = log_piece_start(m, t, end))
		pieces++;
	log_shift(m, 1, pieces);
	unsigned k = 1;
	for (size_t end = n, start; end > 0 && k <= pieces; end = start, k++) {
		start = log_piece_start(m, t, end);
		if (log_name(k, name, sizeof(name)))
			break;
		int out = openat(m->dir_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, LOG_FILE_MODE);
		if (out < 0 || fs_write_all(out, t + start, end - start))
			log_warn_once(m, "rotate", errno);
		if (out >= 0)
			close(out);
	}
	m->rotations = m->rotations > UINT_MAX - pieces ? UINT_MAX : m->rotations + pieces;
out:
	secret_free(text);
	close(fd);
}

/* ---- the process ---- */

static int sys_pidfd_open(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* 1 once the process of pidfd has ended (waits up to ms; negative: until it does), 0 while it runs. */
static int pidfd_ended(int pidfd, int ms)
{
	struct pollfd p = { .fd = pidfd, .events = POLLIN };
	int r;
	while ((r = poll(&p, 1, ms)) < 0 && errno == EINTR)
		;
	return r > 0;
}

/* The start time (clock ticks after boot, field 22) and session (field 6) of /proc/PID/stat; -1 if gone. */
static int proc_stat(pid_t pid, uint64_t *start, pid_t *sid)
{
	char path[64], text[STAT_MAX];
	if (fmt_into(path, sizeof(path), "/proc/%d/stat", (int)pid))
		return -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n;
	while ((n = read(fd, text, sizeof(text) - 1)) < 0 && errno == EINTR)
		;
	close(fd);
	if (n <= 0)
		return -1;
	text[n] = '\0';
	/* the command name (field 2) may hold anything: the fields start after its last ')' */
	char *p = strrchr(text, ')');
	if (!p)
		return -1;
	p++;
	unsigned long long v = 0;
	for (int field = 3; field <= 22; field++) {
		while (*p == ' ')
			p++;
		char *end;
		errno = 0;
		v = strtoull(p, &end, 10);
		if (field == 3) {
			end = p + 1; /* the state: one letter */
		} else if (end == p || errno) {
			return -1;
		}
		if (field == 6)
			*sid = (pid_t)v;
		p = end;
	}
	*start = v;
	return 0;
}

static int read_boot_id(char out[MACHINE_BOOT_ID_SIZE])
{
	int fd = open(BOOT_ID_PATH, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n;
	while ((n = read(fd, out, MACHINE_BOOT_ID_SIZE - 1)) < 0 && errno == EINTR)
		;
	close(fd);
	if (n != MACHINE_BOOT_ID_SIZE - 1)
		return -1;
	out[n] = '\0';
	return 0;
}

/* Milliseconds since the process started, from its start time in clock ticks after boot. */
static int64_t age_ms(uint64_t start_ticks)
{
	struct timespec ts;
	long hz = sysconf(_SC_CLK_TCK);
	if (hz <= 0 || clock_gettime(CLOCK_BOOTTIME, &ts))
		return 0;
	int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	int64_t at = (int64_t)(start_ticks * 1000 / (uint64_t)hz);
	return now > at ? now - at : 0;
}

/*
 * A signal to the machine's process group. An own child's group id is held
 * by its zombie until machine_wait reaps it. An adopted machine's group is
 * signalled only while its main process (the group's leader) still runs,
 * which the pidfd says; the leader itself through its pidfd.
 */
static void group_signal(struct machine *m, int sig)
{
	if (m->adopted) {
		if (pidfd_ended(m->pidfd, 0))
			return;
		(void)syscall(SYS_pidfd_send_signal, m->pidfd, sig, NULL, 0);
	}
	kill(-m->pid, sig);
}

/* ---- the child ---- */

__attribute__((noreturn)) static void child_fail_mode(const struct child_ctx *c, int stage, int e, size_t mode)
{
	struct child_report rep = { stage, e, mode };
	ssize_t w;
	do
		w = write(c->report_w, &rep, sizeof(rep));
	while (w < 0 && errno == EINTR);
	deliver_wipe_in_child(c->run);
	_exit(127);
}

__attribute__((noreturn)) static void child_fail(const struct child_ctx *c, int stage, int e)
{
	child_fail_mode(c, stage, e, 0);
}

/* execvp with the machine's own PATH, without malloc. */
static void child_exec(const struct child_ctx *c)
{
	const char *file = c->argv[0];
	if (strchr(file, '/')) {
		execve(file, c->argv, c->envp);
		return;
	}
	const char *path = c->path ? c->path : MACHINE_BASE_PATH;
	size_t flen = strlen(file);
	char full[PATH_MAX];
	int saw_eacces = 0;
	for (const char *p = path;; p++) {
		const char *end = strchr(p, ':');
		if (!end)
			end = p + strlen(p);
		size_t dlen = (size_t)(end - p);
		const char *dir = dlen ? p : ".";
		if (!dlen)
			dlen = 1;
		if (dlen + 1 + flen < sizeof(full)) {
			memcpy(full, dir, dlen);
			full[dlen] = '/';
			memcpy(full + dlen + 1, file, flen + 1);
			execve(full, c->argv, c->envp);
			if (errno == EACCES)
				saw_eacces = 1;
			else if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP && errno != ENAMETOOLONG)
				return;
		}
		if (!*end)
			break;
		p = end;
	}
	errno = saw_eacces ? EACCES : ENOENT;
}

__attribute__((noreturn)) static void child_run(struct child_ctx *c)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	for (int s = 1; s < NSIG; s++) {
		if (s != SIGKILL && s != SIGSTOP)
			sigaction(s, &sa, NULL); /* fails harmlessly for the C library's own */
	}
	sigset_t none;
	sigemptyset(&none);
	if (sigprocmask(SIG_SETMASK, &none, NULL))
		child_fail(c, STAGE_SIGNALS, errno);

	if (setsid() < 0)
		child_fail(c, STAGE_SETSID, errno);

	/* Move the pipe ends above 2 first, in case the agent runs without stdio. */
	if (c->report_w < 3) {
		int r = fcntl(c->report_w, F_DUPFD_CLOEXEC, 3);
		if (r < 0)
			_exit(127); /* nothing to report through */
		c->report_w = r;
	}
	int in = fcntl(c->devnull, F_DUPFD_CLOEXEC, 3);
	int outw = fcntl(c->log_w, F_DUPFD_CLOEXEC, 3);
	if (in < 0 || outw < 0 || dup2(in, 0) < 0 || dup2(outw, 1) < 0 || dup2(outw, 2) < 0)
		child_fail(c, STAGE_STDIO, errno);

	/*
	 * Enter the work dir before dropping to the machine's user: its parents
	 * (the agent's state folder, a home folder) need not be searchable by it.
	 */
	if (chdir(c->work_dir))
		child_fail(c, STAGE_CHDIR, errno);

	/* Before the drop: a mode may need the agent's privileges (deliver.h, step 2). */
	size_t mode = 0;
	int e = deliver_apply_in_child(c->run, &mode);
	if (e)
		child_fail_mode(c, STAGE_DELIVER, e, mode);

	/*
	 * The raw system calls, not the C library's setgroups/setgid/setuid:
	 * in a multi-threaded process those ask every thread to change too,
	 * and this child shares the agent's memory (vfork), so they would
	 * reach for the agent's threads. The kernel's calls change this
	 * process alone, which is all the child is.
	 */
	if (c->drop) {
		if (syscall(SYS_setgroups, 0, NULL))
			child_fail(c, STAGE_SETGROUPS, errno);
		errno = 0;
		if (syscall(SYS_setgid, c->gid) || getgid() != c->gid || getegid() != c->gid)
			child_fail(c, STAGE_SETGID, errno ? errno : EPERM);
		if (syscall(SYS_setuid, c->uid) || getuid() != c->uid || geteuid() != c->uid)
			child_fail(c, STAGE_SETUID, errno ? errno : EPERM);
		if (syscall(SYS_setuid, 0) == 0)
			child_fail(c, STAGE_SETUID, EPERM);
	}

	/*
	 * Close everything above 2 now but the report pipe, which exec closes:
	 * so once the parent sees it close, the machine holds nothing else.
	 */
	unsigned rw = (unsigned)c->report_w;
	if ((rw > 3 && close_range(3, rw - 1, 0)) || close_range(rw + 1, ~0U, 0)) {
		for (unsigned fd = 3; fd < c->fd_max; fd++) {
			if (fd != rw)
				close((int)fd);
		}
	}

	child_exec(c);
	child_fail(c, STAGE_EXEC, errno);
}

/*
 * vfork: the child shares the agent's memory and the calling thread waits
 * until the child has exec-ed or exited, so nothing is copied (no page
 * tables, no copy-on-write faults after, no fork handlers): a start costs
 * what a small process's fork costs. The child changes nothing of the
 * agent's but its own frames below this one, *c and errno, calls no
 * malloc and nothing that reaches other threads (child_run). A function
 * of its own, so that no variable of the caller lives across the vfork.
 */
__attribute__((noinline)) static pid_t spawn(struct child_ctx *c)
{
	pid_t pid = vfork();
	if (pid == 0)
		child_run(c);
	return pid;
}

static const char *stage_text(int stage)
{
	switch (stage) {
	case STAGE_SIGNALS:
		return "cannot reset the signal mask";
	case STAGE_SETSID:
		return "cannot start a session";
	case STAGE_STDIO:
		return "cannot set up stdin, stdout and stderr";
	case STAGE_SETGROUPS:
		return "cannot drop supplementary groups";
	case STAGE_SETGID:
		return "cannot set the machine's group";
	case STAGE_SETUID:
		return "cannot set the machine's user";
	case STAGE_CHDIR:
		return "cannot enter the work dir";
	case STAGE_DELIVER:
		return "cannot deliver the secrets";
	default:
		return "cannot start";
	}
}

/* ---- start, wait, stop ---- */

static enum coffer_err spec_check(const struct machine_spec *spec, struct machine_error *err)
{
	if (!spec->app || !*spec->app || !spec->machine_id || !*spec->machine_id) {
		machine_error_set(err, "app name and machine id are required", NULL, 0);
		return COFFER_ERR_INVALID;
	}
	if (!spec->argv || !spec->argv[0] || !*spec->argv[0]) {
		machine_error_set(err, "no command to run", NULL, 0);
		return COFFER_ERR_INVALID;
	}
	if (!spec->work_dir || spec->work_dir[0] != '/' || !spec->log_dir || spec->log_dir[0] != '/') {
		machine_error_set(err, "the work dir and the log dir must be absolute paths", NULL, 0);
		return COFFER_ERR_INVALID;
	}
	if ((spec->log_cap && spec->log_cap < MACHINE_LOG_CAP_MIN) || spec->log_files > MACHINE_LOG_FILES_MAX) {
		machine_error_set(err, "log cap or number of log files out of range", NULL, 0);
		return COFFER_ERR_INVALID;
	}
	if ((spec->n_env && !spec->env) || (spec->n_secrets && !spec->secrets) ||
	    (spec->n_deliveries && !spec->deliveries)) {
		machine_error_set(err, "env, secrets or deliveries missing", NULL, 0);
		return COFFER_ERR_INVALID;
	}
	return COFFER_OK;
}

/* Opens the log folder for a machine's logs. */
static enum coffer_err logs_dir(struct machine *m, const char *log_dir, size_t log_cap, unsigned log_files,
				struct machine_error *err)
{
	if (fs_mkdir_p(log_dir, LOG_DIR_MODE)) {
		machine_error_set(err, "cannot create the log dir", log_dir, errno);
		return COFFER_ERR_IO;
	}
	m->dir_fd = open(log_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (m->dir_fd < 0) {
		machine_error_set(err, "cannot open the log dir", log_dir, errno);
		return COFFER_ERR_IO;
	}
	m->log_cap = log_cap ? log_cap : MACHINE_LOG_CAP_DEFAULT;
	m->log_files = log_files ? log_files : MACHINE_LOG_FILES_DEFAULT;
	return COFFER_OK;
}

/* Starts this run in a fresh out.log (an earlier run's goes to out.log.1): *fd for the child. */
static enum coffer_err logs_open(struct machine *m, const struct machine_spec *spec, int *fd,
				 struct machine_error *err)
{
	enum coffer_err rc = logs_dir(m, spec->log_dir, spec->log_cap, spec->log_files, err);
	if (rc)
		return rc;
	struct stat st;
	if (fstatat(m->dir_fd, MACHINE_LOG_NAME, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_size > 0)
		log_shift(m, 0, 1);
	*fd = log_open(m);
	if (*fd < 0 || fstat(*fd, &st) || st.st_size != 0) {
		machine_error_set(err, "cannot open the log in", spec->log_dir, errno);
		return COFFER_ERR_IO;
	}
	m->rotations = 0;
	return COFFER_OK;
}

/* Sends all of p[0..n) on the values socket (no SIGPIPE if the masker is gone). */
static int send_all(int fd, const void *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p = (const char *)p + w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * Starts the output masker (mask_output.h) writing to log_fd: *out_w is
 * the write end of the pipe the machine gets as its stdout and stderr.
 * The values go over a socket, never argv or the environment, and the
 * masker answers once it holds them, so a masker that cannot run fails the
 * start instead of the machine's first write.
 */
static enum coffer_err masker_start(struct machine *m, const struct machine_spec *spec, int log_fd, int *out_w,
				    struct machine_error *err)
{
	enum coffer_err rc = COFFER_ERR_IO;
	int pp[2] = { -1, -1 }, sv[2] = { -1, -1 };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	int fa_ok = 0, at_ok = 0;
	char *const argv[] = { (char *)spec->mask_exe, (char *)"agent", (char *)MASK_OUTPUT_ARG, NULL };
	char *const envp[] = { NULL };
	sigset_t none, all;

	if (spec->n_secrets > UINT32_MAX || pipe2(pp, O_CLOEXEC) ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) || posix_spawn_file_actions_init(&fa))
		goto out;
	fa_ok = 1;
	if (posix_spawnattr_init(&at))
		goto out;
	at_ok = 1;
	sigemptyset(&none);
	sigfillset(&all);
	if (posix_spawn_file_actions_adddup2(&fa, pp[0], 0) || posix_spawn_file_actions_adddup2(&fa, log_fd, 1) ||
	    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0) ||
	    posix_spawn_file_actions_adddup2(&fa, sv[1], MASK_VALUES_FD) ||
	    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF) ||
	    posix_spawnattr_setsigmask(&at, &none) || posix_spawnattr_setsigdefault(&at, &all))
		goto out;
	int e = posix_spawn(&m->mask_pid, spec->mask_exe, &fa, &at, argv, envp);
	if (e) {
		m->mask_pid = -1;
		errno = e;
		goto out;
	}
	m->mask_pidfd = sys_pidfd_open(m->mask_pid);
	close(sv[1]);
	sv[1] = -1;
	uint32_t n = (uint32_t)spec->n_secrets;
	int bad = send_all(sv[0], &n, sizeof(n));
	for (size_t k = 0; k < spec->n_secrets && !bad; k++) {
		const struct secret *v = spec->secrets[k].value;
		uint32_t len = v ? (uint32_t)secret_len(v) : 0;
		bad = send_all(sv[0], &len, sizeof(len)) || (len && send_all(sv[0], secret_cbytes(v), len));
	}
	char ready = 0;
	ssize_t r = -1;
	while (!bad && (r = read(sv[0], &ready, 1)) < 0 && errno == EINTR)
		;
	if (bad || r != 1 || ready != MASK_READY) {
		errno = EPIPE;
		goto out;
	}
	*out_w = pp[1];
	pp[1] = -1;
	rc = COFFER_OK;
out:
	if (rc)
		machine_error_set(err, "cannot start the output masker", NULL, errno);
	if (fa_ok)
		posix_spawn_file_actions_destroy(&fa);
	if (at_ok)
		posix_spawnattr_destroy(&at);
	for (int i = 0; i < 2; i++) {
		if (pp[i] >= 0)
			close(pp[i]);
		if (sv[i] >= 0)
			close(sv[i]);
	}
	return rc;
}

/* Reaps the masker if it has ended: 1 when it is gone (or there was none). */
static int masker_gone(struct machine *m)
{
	int status = 0;
	pid_t r;
	if (m->mask_pid <= 0)
		return 1;
	while ((r = waitpid(m->mask_pid, &status, WNOHANG)) < 0 && errno == EINTR)
		;
	if (r == m->mask_pid) {
		if (!m->mask_killed && (!WIFEXITED(status) || WEXITSTATUS(status)))
			log_warn("machine_masker_failed", LF_I("pid", m->pid), LF_I("status", status));
		m->mask_pid = -1;
		return 1;
	}
	return r < 0 && errno == ECHILD ? (m->mask_pid = -1, 1) : 0;
}

/*
 * The masker once the machine has ended: it exits at its pipe's end of
 * file, which the end of the machine's group brings. A process that left
 * the group may hold the pipe open for ever: once the flush deadline
 * (wait_ms) has passed, the masker, which holds every value of the machine,
 * is killed (SIGKILL through its pidfd; it is our unreaped child, so its
 * pid cannot name another process either) and reaped. What the straggler
 * writes after that is lost (EPIPE). Blocks at most wait_ms +
 * MACHINE_MASKER_KILL_WAIT_MS.
 */
static void masker_reap(struct machine *m, int wait_ms)
{
	if (m->mask_pid <= 0)
		return;
	if (m->mask_pidfd >= 0 && wait_ms)
		(void)pidfd_ended(m->mask_pidfd, wait_ms);
	for (int64_t end = now_ms() + (m->mask_pidfd < 0 ? wait_ms : 0); !masker_gone(m);) {
		if (now_ms() >= end)
			break;
		sleep_ms(10); /* no pidfd (an old kernel): polled */
	}
	if (m->mask_pid <= 0)
		return;
	log_warn("machine_masker_killed", LF_I("pid", m->pid), LF_I("masker", m->mask_pid),
		 LF_S("reason", "its pipe is still open after the machine ended"));
	m->mask_killed = 1;
	if (m->mask_pidfd < 0 || syscall(SYS_pidfd_send_signal, m->mask_pidfd, SIGKILL, NULL, 0) != 0)
		kill(m->mask_pid, SIGKILL);
	if (m->mask_pidfd >= 0)
		(void)pidfd_ended(m->mask_pidfd, MACHINE_MASKER_KILL_WAIT_MS);
	for (int64_t end = now_ms() + MACHINE_MASKER_KILL_WAIT_MS; !masker_gone(m) && now_ms() < end;)
		sleep_ms(10);
	if (m->mask_pid > 0)
		log_error("machine_masker_not_reaped", LF_I("pid", m->pid), LF_I("masker", m->mask_pid));
}

static struct machine *machine_new(void)
{
	struct machine *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->pid = m->mask_pid = -1;
	m->pidfd = m->dir_fd = m->mask_pidfd = -1;
	return m;
}

enum coffer_err machine_start(const struct machine_spec *spec, struct machine **out, struct machine_error *err)
{
	enum coffer_err rc;
	int log_w = -1, rep_p[2] = { -1, -1 }, devnull = -1;
	int drop = 0;
	uid_t uid = 0;
	gid_t gid = 0;
	struct machine *m = NULL;

	if (err)
		err->message[0] = '\0';
	rc = spec_check(spec, err);
	if (rc)
		return rc;
	m = machine_new();
	if (!m)
		return COFFER_ERR_NOMEM;

	rc = resolve_user(spec->user, &drop, &uid, &gid, err);
	if (rc)
		goto out;
	rc = make_work_dir(spec->work_dir, drop, uid, gid, err);
	if (rc)
		goto out;
	rc = logs_open(m, spec, &log_w, err);
	if (rc)
		goto out;
	if (spec->mask_exe) {
		int out_w = -1;
		rc = masker_start(m, spec, log_w, &out_w, err);
		if (rc)
			goto out;
		close(log_w); /* the masker has it; the machine gets the pipe */
		log_w = out_w;
		m->masked = 1;
	}
	if (read_boot_id(m->ident.boot_id) || pipe2(rep_p, O_CLOEXEC) ||
	    (devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0) {
		machine_error_set(err, "cannot create pipes", NULL, errno);
		rc = errno_to_err(errno);
		goto out;
	}
	rc = deliver_prepare(&m->delivery, spec, drop, uid, gid, err);
	if (rc)
		goto out;

	struct rlimit nofile;
	unsigned fd_max = FD_SCAN_MAX;
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < FD_SCAN_MAX)
		fd_max = (unsigned)nofile.rlim_cur;
	struct child_ctx c = {
		.argv = (char *const *)spec->argv,
		.envp = (char *const *)(void *)secret_bytes(m->delivery.env),
		.path = m->delivery.path,
		.work_dir = spec->work_dir,
		.devnull = devnull,
		.log_w = log_w,
		.report_w = rep_p[1],
		.drop = drop,
		.uid = uid,
		.gid = gid,
		.fd_max = fd_max,
		.run = &m->delivery,
	};

	/* No signal handler of the agent may run in the child before it resets them. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	m->started_ms = now_ms();
	pid_t pid = spawn(&c);
	int fork_errno = pid < 0 ? errno : 0;
	/* The parent's copy of the environment goes now, whatever happens next. */
	deliver_forked(&m->delivery);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (pid < 0) {
		machine_error_set(err, "cannot fork", NULL, fork_errno);
		rc = errno_to_err(fork_errno);
		goto out;
	}
	m->pid = pid;
	close(rep_p[1]);
	rep_p[1] = -1;

	/* Closed by a successful exec (EOF), or a report of the failed step. */
	struct child_report rep;
	size_t got = 0;
	while (got < sizeof(rep)) {
		ssize_t r = read(rep_p[0], (char *)&rep + got, sizeof(rep) - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	if (got) {
		int status;
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		m->pid = -1;
		if (got < sizeof(rep)) {
			machine_error_set(err, "the child failed before exec", NULL, 0);
			rc = COFFER_ERR_INTERNAL;
		} else if (rep.stage == STAGE_EXEC) {
			machine_error_set(err, "cannot run", spec->argv[0], rep.err);
			rc = errno_to_err(rep.err);
		} else if (rep.stage == STAGE_DELIVER && rep.mode < m->delivery.n_prepared) {
			machine_error_set(err, stage_text(rep.stage), deliver_modes[rep.mode]->name, rep.err);
			rc = errno_to_err(rep.err);
		} else {
			machine_error_set(err, stage_text(rep.stage), rep.stage == STAGE_CHDIR ? spec->work_dir : NULL,
				  rep.err);
			rc = errno_to_err(rep.err);
		}
		goto out;
	}

	/* exec-ed: what identifies this process to a later agent (machine_adopt) */
	m->ident.pid = pid;
	pid_t sid = 0;
	m->pidfd = sys_pidfd_open(pid);
	if (m->pidfd < 0 || proc_stat(pid, &m->ident.start_time, &sid) || sid != pid) {
		machine_error_set(err, "cannot identify the started process", NULL, errno);
		rc = COFFER_ERR_INTERNAL;
		goto out; /* machine_free kills and reaps the child */
	}
	*out = m;
	m = NULL;
out:
	if (devnull >= 0)
		close(devnull);
	if (log_w >= 0)
		close(log_w);
	for (int i = 0; i < 2; i++) {
		if (rep_p[i] >= 0)
			close(rep_p[i]);
	}
	machine_free(m);
	return rc;
}

pid_t machine_pid(const struct machine *m)
{
	return m->pid;
}

const struct machine_ident *machine_identity(const struct machine *m)
{
	return &m->ident;
}

int machine_masked(const struct machine *m)
{
	return m->masked;
}

enum coffer_err machine_adopt(const struct machine_ident *id, const char *log_dir, size_t log_cap,
			      unsigned log_files, struct machine **out, struct machine_error *err)
{
	char boot[MACHINE_BOOT_ID_SIZE];
	uint64_t start = 0;
	pid_t sid = 0;
	enum coffer_err rc;
	if (err)
		err->message[0] = '\0';
	if (!id || id->pid <= 1 || !log_dir || log_dir[0] != '/' || (log_cap && log_cap < MACHINE_LOG_CAP_MIN) ||
	    log_files > MACHINE_LOG_FILES_MAX) {
		machine_error_set(err, "malformed machine identity or log settings", NULL, 0);
		return COFFER_ERR_INVALID;
	}
	struct machine *m = machine_new();
	if (!m)
		return COFFER_ERR_NOMEM;
	/*
	 * The pidfd first, the checks after: if the process it names ended and
	 * its pid was reused in between, either the checks see the newcomer
	 * (another start time or session) or the pidfd says it has ended.
	 */
	m->pidfd = sys_pidfd_open(id->pid);
	if (m->pidfd < 0) {
		machine_error_set(err, "no such process", NULL, errno);
		rc = COFFER_ERR_NOT_FOUND;
		goto out;
	}
	if (read_boot_id(boot) || strcmp(boot, id->boot_id) != 0) {
		machine_error_set(err, "started before this boot", NULL, 0);
		rc = COFFER_ERR_NOT_FOUND;
		goto out;
	}
	if (proc_stat(id->pid, &start, &sid) || start != id->start_time || sid != id->pid ||
	    pidfd_ended(m->pidfd, 0)) {
		machine_error_set(err, "the pid names another process now", NULL, 0);
		rc = COFFER_ERR_NOT_FOUND;
		goto out;
	}
	rc = logs_dir(m, log_dir, log_cap, log_files, err);
	if (rc)
		goto out;
	m->pid = id->pid;
	m->ident = *id;
	m->adopted = 1;
	m->started_ms = now_ms() - age_ms(start);
	log_check(m); /* out.log may have grown while no agent watched it */
	*out = m;
	m = NULL;
out:
	machine_free(m);
	return rc;
}

/* The main process has ended: kill the rest of the group, reap (an own child), take the exit, rotate. */
static void finish(struct machine *m)
{
	int status = 0;
	pid_t r = -1;
	kill(-m->pid, SIGKILL);
	if (!m->adopted) {
		while ((r = waitpid(m->pid, &status, 0)) < 0 && errno == EINTR)
			;
	}
	m->reaped = 1;
	m->exit.running = 0;
	m->exit.unknown = m->adopted;
	m->exit.runtime_ms = now_ms() - m->started_ms;
	if (r == m->pid && WIFSIGNALED(status)) {
		m->exit.signal = WTERMSIG(status);
		m->exit.code = 0;
	} else {
		m->exit.signal = 0;
		m->exit.code = r == m->pid && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	}
	masker_reap(m, MACHINE_MASKER_WAIT_MS);
	log_check(m);
	deliver_cleanup(&m->delivery);
}

/* 1 when the main process has ended (an own child: not reaped yet), 0 while it runs, -1 if it is not our child any more. */
static int ended(struct machine *m, int block)
{
	if (m->adopted)
		return pidfd_ended(m->pidfd, block ? -1 : 0);
	siginfo_t si;
	for (;;) {
		memset(&si, 0, sizeof(si));
		if (waitid(P_PID, (id_t)m->pid, &si, WEXITED | WNOWAIT | (block ? 0 : WNOHANG)) == 0)
			return si.si_pid == m->pid;
		if (errno != EINTR)
			return -1;
	}
}

enum coffer_err machine_wait(struct machine *m, int64_t timeout_ms, struct machine_exit *out)
{
	if (m->lost)
		return COFFER_ERR_INTERNAL;
	if (!m->reaped) {
		int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
		int64_t step = POLL_FIRST_MS;
		log_check(m);
		for (;;) {
			int e = ended(m, timeout_ms < 0);
			if (e < 0) {
				m->lost = 1;
				log_error("machine_lost", LF_I("pid", m->pid));
				return COFFER_ERR_INTERNAL;
			}
			if (e) {
				finish(m);
				break;
			}
			int64_t left = deadline - now_ms();
			if (left <= 0) {
				*out = (struct machine_exit){ .running = 1 };
				return COFFER_OK;
			}
			/* own children have a pidfd once exec-ed: woken at the exit, not at the next poll */
			if (m->pidfd >= 0)
				pidfd_ended(m->pidfd, (int)(POLL_MAX_MS < left ? POLL_MAX_MS : left));
			else
				sleep_ms(step < left ? step : left);
			if (step < POLL_MAX_MS)
				step *= 2;
		}
	}
	*out = m->exit;
	return COFFER_OK;
}

enum coffer_err machine_stop(struct machine *m, int64_t timeout_ms, struct machine_exit *out)
{
	struct machine_exit ex;
	enum coffer_err rc;
	if (m->lost)
		return COFFER_ERR_INTERNAL;
	if (!m->reaped) {
		group_signal(m, SIGTERM);
		rc = machine_wait(m, timeout_ms > 0 ? timeout_ms : MACHINE_STOP_TIMEOUT_DEFAULT_MS, &ex);
		if (rc)
			return rc;
		if (ex.running) {
			group_signal(m, SIGKILL);
			rc = machine_wait(m, MACHINE_KILL_WAIT_MS, &ex);
			if (rc)
				return rc;
			if (ex.running)
				return COFFER_ERR_UNAVAILABLE;
		}
	}
	*out = m->exit;
	return COFFER_OK;
}

void machine_signal(struct machine *m, int sig)
{
	if (m->pid > 0 && !m->reaped && !m->lost)
		group_signal(m, sig);
}

/* Frees m; what the delivery modes made is cleaned up only when `cleanup` (the process has ended). */
static void machine_drop(struct machine *m, int cleanup)
{
	if (cleanup)
		deliver_cleanup(&m->delivery);
	else
		deliver_forked(&m->delivery);
	if (m->pidfd >= 0)
		close(m->pidfd);
	if (m->dir_fd >= 0)
		close(m->dir_fd);
	if (cleanup)
		masker_reap(m, MACHINE_MASKER_WAIT_MS); /* its pipe's writers are gone by now */
	if (m->mask_pidfd >= 0)
		close(m->mask_pidfd);
	free(m);
}

void machine_free(struct machine *m)
{
	if (!m)
		return;
	if (m->pid > 0 && !m->reaped && !m->lost) {
		group_signal(m, SIGKILL);
		if (ended(m, 1) == 1)
			finish(m);
	}
	machine_drop(m, 1);
}

void machine_release(struct machine *m)
{
	if (m)
		machine_drop(m, m->reaped || m->pid <= 0);
}

/* ---- the masked tail ---- */

/*
 * Masks text[0..len) and finds its last `lines` lines. When `whole` is 0
 * the text is only the end of the output: coverage is exact only from
 * offset maxlen - 1 on (an occurrence that reaches further back would start
 * before the text), so *more is set when the window does not start at or
 * after maxlen, or when there are fewer lines than asked, and nothing is
 * appended.
 */
static enum coffer_err mask_window(const unsigned char *text, size_t len, int whole, size_t lines,
				   const struct secret *const *masks, size_t n_masks, struct buf *out, int *more)
{
	enum coffer_err rc = COFFER_OK;
	unsigned char *covered = NULL;
	size_t maxlen = 0;
	size_t out_len = out->len;
	*more = 0;
	if (lines == 0)
		return COFFER_OK;
	if (len == 0) {
		*more = !whole;
		return COFFER_OK;
	}
	covered = calloc(len, 1);
	if (!covered)
		return COFFER_ERR_NOMEM;
	for (size_t k = 0; k < n_masks; k++) {
		size_t mlen = masks[k] ? secret_len(masks[k]) : 0;
		if (mlen == 0 || mlen > len)
			continue;
		if (mlen > maxlen)
			maxlen = mlen;
		const unsigned char *mask = secret_cbytes(masks[k]);
		size_t from = 0, done = 0; /* bytes below `done` are covered already */
		const unsigned char *hit;
		while (from + mlen <= len && (hit = memmem(text + from, len - from, mask, mlen))) {
			size_t at = (size_t)(hit - text);
			size_t lo = at > done ? at : done;
			if (at + mlen > lo)
				memset(covered + lo, 1, at + mlen - lo);
			done = at + mlen;
			from = at + 1; /* overlapping occurrences too */
		}
	}

	/* Back from the end, past the final newline, count unmasked newlines. */
	size_t end = len;
	if (text[end - 1] == '\n' && !covered[end - 1])
		end--;
	size_t start = 0, count = 0;
	int found = 0;
	for (size_t i = end; i > 0; i--) {
		if (text[i - 1] == '\n' && !covered[i - 1] && ++count == lines) {
			start = i;
			found = 1;
			break;
		}
	}
	if (!whole && (!found || start < maxlen)) {
		*more = 1;
		goto out;
	}

	for (size_t i = start; i < len && !rc;) {
		if (covered[i]) {
			while (i < len && covered[i])
				i++;
			rc = buf_adds(out, MASK);
		} else {
			size_t j = i;
			while (j < len && !covered[j])
				j++;
			rc = buf_add(out, text + i, j - i);
			i = j;
		}
	}
out:
	if (rc) {
		out->len = out_len; /* leave out as it was */
		out->ptr[out_len] = '\0';
	}
	sodium_memzero(covered, len);
	free(covered);
	return rc;
}

enum coffer_err machine_mask_tail(const unsigned char *text, size_t len, size_t lines,
				  const struct secret *const *masks, size_t n_masks, struct buf *out)
{
	int more;
	return mask_window(text, len, 1, lines, masks, n_masks, out, &more);
}

/* Reads log file k of the folder in front of *text (a secret that is replaced). */
static enum coffer_err prepend_file(struct machine *m, unsigned k, struct secret **text)
{
	enum coffer_err rc = COFFER_OK;
	char name[32];
	struct secret *joined = NULL;
	rc = log_name(k, name, sizeof(name));
	if (rc)
		return rc;
	int fd = openat(m->dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? COFFER_OK : COFFER_ERR_IO; /* a file lost to a failed rotation */
	struct stat st;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		rc = COFFER_ERR_IO;
		goto out;
	}
	size_t size = (size_t)st.st_size, old = secret_len(*text);
	if (size > m->log_cap + COPY_CHUNK || old > SIZE_MAX - size) {
		rc = COFFER_ERR_TOO_LARGE;
		goto out;
	}
	rc = secret_new(size + old, &joined);
	if (rc)
		goto out;
	size_t got = 0;
	while (got < size) {
		ssize_t r = read(fd, secret_bytes(joined) + got, size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = COFFER_ERR_IO;
			goto out;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	if (old)
		memcpy(secret_bytes(joined) + got, secret_cbytes(*text), old);
	rc = secret_truncate(joined, got + old);
	if (rc)
		goto out;
	secret_free(*text);
	*text = joined;
	joined = NULL;
out:
	secret_free(joined);
	close(fd);
	return rc;
}

enum coffer_err machine_tail(struct machine *m, size_t lines, const struct secret *const *masks, size_t n_masks,
			     struct buf *out)
{
	enum coffer_err rc;
	struct secret *text = NULL;
	int more = 1;
	rc = secret_new(0, &text);
	if (rc)
		return rc;
	if (!m->reaped)
		log_check(m);
	unsigned files = 1 + (m->rotations < m->log_files ? m->rotations : m->log_files);
	for (unsigned k = 0; k < files && more && !rc; k++) {
		rc = prepend_file(m, k, &text);
		if (!rc)
			rc = mask_window(secret_cbytes(text), secret_len(text), k + 1 == files, lines, masks,
					 n_masks, out, &more);
	}
	secret_free(text);
	return rc;
}

int64_t machine_backoff_ms(unsigned restarts)
{
	int64_t ms = MACHINE_BACKOFF_FIRST_MS;
	for (unsigned i = 0; i < restarts && ms < MACHINE_BACKOFF_MAX_MS; i++)
		ms *= 2;
	return ms < MACHINE_BACKOFF_MAX_MS ? ms : MACHINE_BACKOFF_MAX_MS;
}
