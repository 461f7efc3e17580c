/*
 * machine.h — one machine of an app, run by the agent as a real child
 * process: start, wait, stop, captured output, its masked tail, and the
 * restart backoff.
 *
 * Ownership: a struct machine owns its process (its child until reaped, or
 * one it adopted), a pidfd of it, its log folder, and what the delivery
 * modes made for this start until it stops (deliver.h). It keeps nothing of the spec:
 * machine_start reads the spec and the secret values it points to, and the
 * caller still owns (and wipes) them. machine_free kills what is left.
 *
 * The child:
 *   - leads its own session and process group (setsid), so that stop and
 *     cleanup reach every process it starts. A process that leaves the
 *     group (its own setsid or setpgid) escapes; containing that takes
 *     cgroups, which is out of scope here;
 *   - runs in spec->work_dir with HOME set to it. machine_start creates it
 *     (mode 0700; missing parents 0711) and, when the agent is root, chowns
 *     it to the machine's user. The child enters it before it drops to
 *     that user, so the parents need not be searchable by the user (then a
 *     path through them, $HOME included, is not usable by the machine;
 *     relative paths are);
 *   - has stdin from /dev/null, stdout and stderr both on one pipe to its
 *     output masker (spec->mask_exe, mask_output.h: a process of its own
 *     session, not the agent's thread, so the machine outlives its agent),
 *     which appends them to out.log with every secret value of the spec
 *     masked; without mask_exe, both on out.log itself, opened O_APPEND
 *     before exec, unmasked. No other file descriptor;
 *   - starts with an empty signal mask and every signal at its default;
 *   - gets exactly this environment, where a later layer replaces a name
 *     of an earlier one:
 *       1. the clean base: PATH=/usr/local/bin:/usr/bin:/bin, HOME=<work dir>,
 *          LANG=C.UTF-8 (nothing of the agent's own environment);
 *       2. the app's --env pairs (the last of one name wins);
 *       3. the app's secrets that go to the environment (every secret that
 *          no delivery names, and those an "env" delivery names): a secret wins
 *          over an --env of the same name;
 *       4. COFFER_APP_NAME, COFFER_MACHINE_ID, COFFER_RELEASE_VERSION, and
 *          COFFER_KMS_SOCKET when spec->kms_socket is set (agent_kms.h).
 *     Names that start with COFFER_ are reserved: any in layers 2 and 3 is
 *     dropped, so the COFFER_ names a machine sees are always coffer's own;
 *   - when the agent runs as root (effective uid 0), runs as spec->user
 *     ("nobody" by default) with that user's primary group and no
 *     supplementary groups (setgroups, setgid, setuid, in that order, each
 *     checked, and a setuid(0) that must then fail). A user that maps to
 *     uid 0 is refused. When the agent is not root, the machine runs as the
 *     agent's own user; naming another user is refused;
 *   - is looked up, when argv[0] has no '/', in the PATH of its own
 *     environment (an empty PATH entry means the work dir).
 *
 * Failed to start vs exited: machine_start returns only once the child has
 * exec-ed, or with an error and err->message when it could not (a missing
 * command is COFFER_ERR_NOT_FOUND, never an exit status of 127).
 *
 * Delivery: each secret goes to the machine through the delivery modes its
 * deliveries name (struct machine_delivery; none: the environment). The modes
 * are a table, and machine_start goes through it: src/agent/deliver.h says
 * when each step of a mode runs (prepare before the vfork, apply in the child
 * before the privilege drop, cleanup once the machine has stopped or its
 * start failed).
 *
 * Secrets in memory: the environment is built in one sodium_malloc block
 * (and a mode's data for the child in its own) that the parent wipes and
 * frees as soon as vfork returns, i.e. once the child has exec-ed (execve
 * copied it into the new image) or ended. The child shares the agent's
 * memory until then, so no other copy exists; a child that fails before
 * execve wipes the blocks itself.
 *
 * The start: vfork, so the multi-threaded agent copies no page tables and
 * takes no copy-on-write faults per start. The child writes nothing of the
 * agent's memory but errno and the ctx machine_start made for it, calls
 * only async-signal-safe functions, and drops privileges with the raw
 * system calls (the C library's setuid would signal the agent's threads).
 *
 * Output: the child writes out.log in spec->log_dir itself (folder 0700,
 * files 0600, owned by the agent; keep the log dir out of the work dir).
 * The cap is kept by copy and truncate: every machine_wait (the agent calls
 * it every tick) and the end of the machine look at out.log, and once it is
 * past log_cap bytes, its bytes are cut into files of at most the cap (at
 * the last newline that fits; a longer line is split) that become
 * out.log.1 (the newest) and up (out.log.K-1 -> out.log.K ..., past
 * out.log.<log_files> dropped), and out.log is truncated. So a rotated file
 * never exceeds the cap; out.log exceeds it by at most what the machine
 * writes between two looks (while no agent runs, until the next agent
 * adopts it). Each start first rotates a non-empty out.log of an earlier
 * run away, so every run begins in a fresh out.log, and machine_tail reads
 * only the files of this run (of an adopted machine: those rotated since).
 *
 * The end of a machine: when its main process exits, whatever is left of
 * its process group is SIGKILLed before the main process is reaped (its
 * zombie keeps the group id from being reused).
 *
 * Adoption (machine_adopt): a machine started by an earlier agent is taken
 * over from its machine_ident (pid, start time, boot id), which the agent
 * keeps in a file: a pidfd is opened on the pid, then the boot id, the
 * process's start time (/proc/PID/stat field 22) and its session (field 6
 * equal to the pid: it leads its own session) must match; a recycled pid
 * fails one of them or its pidfd says it has ended. An adopted process is
 * not the agent's child: its end is seen on the pidfd and its exit status
 * is unknown (machine_exit.unknown); signals go to its group only while
 * the pidfd says its leader runs.
 *
 * The agent must not set SIGCHLD to SIG_IGN nor reap with waitpid(-1, ...):
 * each machine reaps its own child. One struct machine is used by one
 * thread at a time.
 */
#ifndef COFFER_AGENT_MACHINE_H
#define COFFER_AGENT_MACHINE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "err.h"
#include "secret.h"
#include "timescale.h"

#define MACHINE_BASE_PATH "/usr/local/bin:/usr/bin:/bin"
#define MACHINE_BASE_LANG "C.UTF-8"
#define MACHINE_USER_DEFAULT "nobody"          /* the machines' user when the agent is root */
#define MACHINE_LOG_NAME "out.log"
#define MACHINE_LOG_CAP_DEFAULT ((size_t)1 << 20) /* bytes of one log file */
#define MACHINE_LOG_CAP_MIN ((size_t)16)
#define MACHINE_LOG_FILES_DEFAULT 3u           /* rotated files kept besides out.log */
#define MACHINE_LOG_FILES_MAX 16u
#define MACHINE_NAME_MAX 255                   /* bytes of an environment name */
#define MACHINE_ENV_MAX ((size_t)4 << 20)      /* bytes of the whole environment */
#define MACHINE_STOP_TIMEOUT_DEFAULT_MS 10000  /* machine_stop with a timeout of 0 */
#define MACHINE_KILL_WAIT_MS 5000              /* how long stop waits after SIGKILL */
#define MACHINE_BOOT_ID_SIZE 37                /* /proc/sys/kernel/random/boot_id and a NUL */
#define MACHINE_ERROR_MAX 320
#define MACHINE_MASKER_WAIT_MS 1000           /* how long the end of a machine waits for its masker's flush */
#define MACHINE_MASKER_KILL_WAIT_MS 500       /* then, after its SIGKILL, for its end */
#define MACHINE_TAIL_LINES 20                  /* lines in a release-failure report */
/* the restart back-off; shortened by COFFER_TEST_TIMESCALE, a test knob (timescale.h) */
#define MACHINE_BACKOFF_FIRST_MS ((int64_t)timescale_ms(1000))
#define MACHINE_BACKOFF_MAX_MS ((int64_t)timescale_ms(30000))

/* One --env pair: not secret. */
struct machine_env {
	const char *name;
	const char *value;
};

/* One secret of the app; the value may hold any byte but NUL (the environment's rule). */
struct machine_secret {
	const char *name;
	const struct secret *value;
};

#define MACHINE_DELIVERY_DEFAULT "env" /* where a secret that no delivery names goes */

/*
 * One way one secret reaches the machine: a row of src/agent/deliver_modes.c,
 * by name. A secret that some delivery names goes only where its deliveries
 * say (to be in the environment as well, it needs an "env" one).
 */
struct machine_delivery {
	const char *secret; /* the name of one of spec->secrets */
	const char *mode;   /* NULL: MACHINE_DELIVERY_DEFAULT */
	const char *target; /* where, for a mode that needs it (a file's path); NULL for "env" */
	unsigned perm;      /* permission bits, for a mode that makes files (0: its default); 0 for "env" */
};

struct machine_spec {
	const char *app;                   /* COFFER_APP_NAME */
	const char *machine_id;            /* COFFER_MACHINE_ID */
	int64_t release_version;           /* COFFER_RELEASE_VERSION */
	const char *const *argv;           /* NULL-terminated, argv[0] not empty */
	const struct machine_env *env;     /* --env, in order */
	size_t n_env;
	const struct machine_secret *secrets;
	size_t n_secrets;
	const struct machine_delivery *deliveries; /* none: every secret to MACHINE_DELIVERY_DEFAULT */
	size_t n_deliveries;
	const char *work_dir;              /* absolute */
	const char *log_dir;               /* absolute */
	const char *secrets_dir;           /* absolute: where the "file" mode mounts its tmpfs; NULL: that mode refuses */
	size_t log_cap;                    /* 0: MACHINE_LOG_CAP_DEFAULT */
	unsigned log_files;                /* 0: MACHINE_LOG_FILES_DEFAULT */
	const char *user;                  /* NULL: see the top of this file */
	const char *kms_socket;            /* COFFER_KMS_SOCKET, or NULL: none */
	const char *mask_exe;              /* the masker's program (mask_output.h); NULL: output straight to out.log, unmasked */
};

/* Why a start failed: "cannot run \"web\": No such file or directory". Never a value. */
struct machine_error {
	char message[MACHINE_ERROR_MAX];
};

/*
 * Writes "<what> \"<subject>\": <strerror(e)>" into err (each part only when
 * given: subject NULL, e 0). NULL err is allowed. For machine.c and the
 * delivery modes.
 */
void machine_error_set(struct machine_error *err, const char *what, const char *subject, int e);

struct machine_exit {
	int running;        /* 1: still running, and nothing below is set */
	int unknown;        /* 1: an adopted machine: how it ended is not known (code -1, signal 0) */
	int code;           /* the exit status, when signal is 0 */
	int signal;         /* the signal that ended it, or 0 */
	int64_t runtime_ms; /* from the start to the end */
};

struct machine;

/*
 * Starts a machine; *out only on success. COFFER_ERR_INVALID for a bad spec
 * (names, a NUL in a value, relative folders, an unknown delivery mode, what
 * a mode refuses), COFFER_ERR_TOO_LARGE past
 * MACHINE_ENV_MAX; when the child could not be set up or exec-ed: the errno
 * mapped (ENOENT NOT_FOUND, EACCES or EPERM FORBIDDEN, E2BIG TOO_LARGE,
 * ENOMEM NOMEM, others IO). err (may be NULL) gets a message on failure.
 */
COFFER_MUST_CHECK enum coffer_err machine_start(const struct machine_spec *spec, struct machine **out,
						struct machine_error *err);

/* The main process's id, which is also its process group and session id. */
pid_t machine_pid(const struct machine *m);

/* What identifies a machine's process across agents: what the agent keeps to adopt it later. */
struct machine_ident {
	pid_t pid;
	uint64_t start_time;                  /* /proc/PID/stat field 22: clock ticks after boot */
	char boot_id[MACHINE_BOOT_ID_SIZE];   /* /proc/sys/kernel/random/boot_id */
};

const struct machine_ident *machine_identity(const struct machine *m);

/* 1 when m was started (machine_start) with its output through a masker; 0 otherwise and when adopted. */
int machine_masked(const struct machine *m);

/*
 * Takes over the running machine `id` names (see Adoption above), with its
 * logs in log_dir (log_cap, log_files: as in the spec). *out only on
 * success. COFFER_ERR_NOT_FOUND when the process is gone or is not that
 * machine (another boot, a recycled pid): it is then never signalled.
 */
COFFER_MUST_CHECK enum coffer_err machine_adopt(const struct machine_ident *id, const char *log_dir, size_t log_cap,
						unsigned log_files, struct machine **out, struct machine_error *err);

/*
 * Waits up to timeout_ms (0: just looks; negative: until it ends) for the
 * main process to end. *out is the exit once it has ended (on every later
 * call too), or running = 1. COFFER_ERR_INTERNAL if the child was reaped by
 * someone else.
 */
COFFER_MUST_CHECK enum coffer_err machine_wait(struct machine *m, int64_t timeout_ms, struct machine_exit *out);

/*
 * SIGTERM to the process group; if the main process has not ended after
 * timeout_ms (0: MACHINE_STOP_TIMEOUT_DEFAULT_MS), SIGKILL to the group.
 * *out is the exit. COFFER_ERR_UNAVAILABLE if it still runs
 * MACHINE_KILL_WAIT_MS after the SIGKILL. A machine that had already ended
 * just gives its exit.
 */
COFFER_MUST_CHECK enum coffer_err machine_stop(struct machine *m, int64_t timeout_ms, struct machine_exit *out);

/* sig to the machine's process group, while it runs (no wait). */
void machine_signal(struct machine *m, int sig);

/* SIGKILLs and reaps whatever still runs, frees. NULL is allowed. */
void machine_free(struct machine *m);

/* Frees m and leaves its process running (for a later agent to adopt). NULL is allowed. */
void machine_release(struct machine *m);

/*
 * Appends to out the last `lines` lines this run of the machine wrote, with
 * every occurrence of every mask replaced as in machine_mask_tail. The raw
 * output is read into secure memory and wiped; out only ever gets masked
 * text.
 */
COFFER_MUST_CHECK enum coffer_err machine_tail(struct machine *m, size_t lines, const struct secret *const *masks,
					       size_t n_masks, struct buf *out);

/*
 * The masking of machine_tail on a text in memory: every byte inside any
 * occurrence of any mask (overlapping ones too; empty masks ignored) is
 * covered, each run of covered bytes becomes "***", and then the last
 * `lines` lines are appended to out. Lines end at a newline that is not
 * masked; a last line without a newline counts as a line.
 */
COFFER_MUST_CHECK enum coffer_err machine_mask_tail(const unsigned char *text, size_t len, size_t lines,
						    const struct secret *const *masks, size_t n_masks,
						    struct buf *out);

/*
 * Milliseconds to wait before restart number `restarts` (0 for the first
 * restart): MACHINE_BACKOFF_FIRST_MS doubling up to MACHINE_BACKOFF_MAX_MS,
 * divided by the test timescale (timescale.h).
 * The agent resets its count once a machine has stayed up past its grace
 * window.
 */
int64_t machine_backoff_ms(unsigned restarts);

#endif
