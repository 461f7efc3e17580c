/*
 * bench_boot — the boot row's peers and its floor: how long it takes to
 * start a process with 50 secrets in its environment the ways people do
 * it without coffer, and with no secrets at all.
 *
 *   bench_boot run NAME N -- COMMAND [ARGS...]
 *       fork, exec COMMAND (PATH lookup), wait for it: N times (after one
 *       run not counted). The floor is `run floor.fork_exec N -- /bin/true`;
 *       dotenvx is `run ... -- dotenvx run -f .env -- /bin/true`.
 *   bench_boot decrypt-exec NAME N -- COMMAND [ARGS...]
 *       fork, exec COMMAND with its stdout in a pipe (a decryptor printing
 *       NAME=VALUE lines: `age -d`, `systemd-creds decrypt`), read it all,
 *       wait for it, make the environment of those lines, then fork, execve
 *       /bin/true with it and wait: what a wrapper script would do. N times.
 *
 * Each iteration ends when the last process has exited. One JSON line
 * (bench_util.h) with "vars": the variables the last iteration passed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "bench_util.h"
#include "buf.h"
#include "parse.h"
#include "banned.h"

#define RUNS_MAX 1000000
#define OUTPUT_MAX ((size_t)4 << 20) /* a decryptor's output */
#define READ_CHUNK 65536
#define ENV_MAX 4096                 /* variables passed to /bin/true */
#define EXTRA_SIZE 64
#define TRUE_PATH "/bin/true"

extern char **environ;

/* Forks and execs argv (PATH lookup) with env; stdout to out_fd (-1: /dev/null). Returns the pid or -1. */
static pid_t spawn(char *const argv[], char *const env[], int out_fd)
{
	pid_t pid = fork();
	int null_fd;

	if (pid != 0)
		return pid;
	null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null_fd < 0)
		_exit(127);
	dup2(null_fd, 0);
	dup2(out_fd >= 0 ? out_fd : null_fd, 1);
	dup2(null_fd, 2);
	if (env)
		execve(argv[0], argv, env);
	else
		execvp(argv[0], argv);
	_exit(127);
}

/* Waits for pid; 0 when it exited with status 0. */
static int reap(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static int run_once(char *const argv[])
{
	pid_t pid = spawn(argv, NULL, -1);
	return pid < 0 ? -1 : reap(pid);
}

/* Runs argv with its stdout into out (reset first). */
static int capture(char *const argv[], struct buf *out)
{
	char chunk[READ_CHUNK];
	int fds[2];
	pid_t pid;
	ssize_t r;
	int bad = 0;

	buf_reset(out);
	if (pipe2(fds, O_CLOEXEC))
		return -1;
	pid = spawn(argv, NULL, fds[1]);
	close(fds[1]);
	if (pid < 0) {
		close(fds[0]);
		return -1;
	}
	for (;;) {
		r = read(fds[0], chunk, sizeof(chunk));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (!bad && buf_add(out, chunk, (size_t)r))
			bad = 1;
	}
	close(fds[0]);
	sodium_memzero(chunk, sizeof(chunk));
	return reap(pid) || bad ? -1 : 0;
}

/* Splits text into NAME=VALUE lines (in place) for an execve environment; returns the count or -1. */
static int make_env(char *text, size_t len, char *env[ENV_MAX + 1])
{
	int n = 0;
	size_t i = 0;

	while (i < len) {
		char *line = text + i;
		char *nl = memchr(line, '\n', len - i);
		size_t l = nl ? (size_t)(nl - line) : len - i;
		line[l] = '\0';
		i += l + 1;
		if (l == 0 || line[0] == '#' || !strchr(line, '='))
			continue;
		if (n == ENV_MAX)
			return -1;
		env[n++] = line;
	}
	env[n] = NULL;
	return n;
}

int main(int argc, char **argv)
{
	struct bench_samples s;
	struct bench_stats st;
	struct buf out;
	char *env[ENV_MAX + 1];
	char *true_argv[] = { TRUE_PATH, NULL };
	char extra[EXTRA_SIZE];
	char **cmd;
	int64_t n;
	int decrypt, vars = 0, ex = 1;

	bench_samples_init(&s);
	buf_init_wiping(&out, OUTPUT_MAX);
	if (sodium_init() < 0)
		return bench_fail("libsodium failed to initialise");
	if (argc < 6 || strcmp(argv[4], "--") != 0 || parse_int64(argv[3], 1, RUNS_MAX, &n) ||
	    (strcmp(argv[1], "run") != 0 && strcmp(argv[1], "decrypt-exec") != 0))
		return bench_fail("usage: bench_boot run|decrypt-exec NAME N -- COMMAND [ARGS...]");
	decrypt = strcmp(argv[1], "decrypt-exec") == 0;
	cmd = argv + 5;

	for (int64_t i = -1; i < n; i++) { /* i == -1: a run not counted (caches, page faults) */
		uint64_t t0 = bench_now_ns();
		if (!decrypt) {
			if (run_once(cmd)) {
				bench_fail("%s: '%s' failed", argv[2], cmd[0]);
				goto out;
			}
		} else {
			pid_t pid;
			if (capture(cmd, &out)) {
				bench_fail("%s: '%s' failed", argv[2], cmd[0]);
				goto out;
			}
			vars = make_env(out.ptr, out.len, env);
			if (vars < 0 || (pid = spawn(true_argv, env, -1)) < 0 || reap(pid)) {
				bench_fail("%s: exec of %s failed", argv[2], TRUE_PATH);
				goto out;
			}
			buf_reset(&out); /* wipes: buf_init_wiping */
		}
		if (i >= 0 && bench_samples_add(&s, bench_now_ns() - t0)) {
			bench_fail("out of memory");
			goto out;
		}
	}
	snprintf(extra, sizeof(extra), ",\"vars\":%d", vars);
	bench_stats_of(&s, &st);
	bench_print_stats(argv[2], &st, extra);
	ex = 0;
out:
	buf_release(&out);
	bench_samples_release(&s);
	return ex;
}
