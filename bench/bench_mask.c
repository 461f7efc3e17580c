/*
 * bench_mask — the cost of live masking (docs/RUNPATH.md "Output and its
 * masking"): a machine writing MB mebibytes of output with SECRETS secret
 * values in it, through the real masker process (`COFFER agent
 * mask-output`, as machine_start runs it) into a log file, against the same
 * bytes written straight to the log file (the unmasked path).
 *
 *   bench_mask COFFER LOGFILE MB SECRETS
 *
 * The output is lines of printable text; one line in 64 holds one of the
 * values (32 characters each), so the masker finds and replaces about
 * MB * 16 Ki / 64 of them. Prints "mask.unmasked" and "mask.masked" (MB/s,
 * with the bytes and values) and "mask.ratio" (masked / unmasked).
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "bench_util.h"
#include "fs.h"
#include "parse.h"
#include "banned.h"

#define VALUE_LEN 32
#define BLOCK ((size_t)1 << 20)  /* the output is this block again and again */
#define WRITE_SIZE 4096          /* bytes of one write of the machine */
#define LINE_LEN 64
#define MB_MAX 100000
#define SECRETS_MAX 4096
#define EXTRA_SIZE 160

static char values[SECRETS_MAX][VALUE_LEN + 1];

static void fill(unsigned char *b, size_t secrets)
{
	static const char alpha[] = "abcdefghijklmnopqrstuvwxyz0123456789 =:,.-";
	size_t line = 0;
	for (size_t at = 0; at + LINE_LEN <= BLOCK; at += LINE_LEN, line++) {
		for (size_t i = 0; i < LINE_LEN - 1; i++)
			b[at + i] = (unsigned char)alpha[randombytes_uniform(sizeof(alpha) - 1)];
		if (line % 64 == 0)
			memcpy(b + at + 8, values[randombytes_uniform((uint32_t)secrets)], VALUE_LEN);
		b[at + LINE_LEN - 1] = '\n';
	}
}

static int write_out(int fd, const unsigned char *b, size_t total)
{
	for (size_t done = 0; done < total; done += WRITE_SIZE)
		if (fs_write_all(fd, b + done % BLOCK, WRITE_SIZE))
			return -1;
	return 0;
}

static int run_masked(const char *coffer, const char *log, const unsigned char *b, size_t total, size_t secrets,
		      double *mbps)
{
	int pp[2], sv[2];
	pid_t pid;
	posix_spawn_file_actions_t fa;
	char *const argv[] = { (char *)coffer, (char *)"agent", (char *)"mask-output", NULL };
	char *const envp[] = { NULL };
	int lf = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	if (lf < 0 || pipe2(pp, O_CLOEXEC) || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) ||
	    posix_spawn_file_actions_init(&fa) || posix_spawn_file_actions_adddup2(&fa, pp[0], 0) ||
	    posix_spawn_file_actions_adddup2(&fa, lf, 1) || posix_spawn_file_actions_adddup2(&fa, sv[1], 3) ||
	    posix_spawn(&pid, coffer, &fa, NULL, argv, envp))
		return bench_fail("cannot start the masker %s: %s\n", coffer, strerror(errno));
	posix_spawn_file_actions_destroy(&fa);
	close(pp[0]);
	close(sv[1]);
	close(lf);
	uint32_t n = (uint32_t)secrets, len = VALUE_LEN;
	int bad = fs_write_all(sv[0], &n, sizeof(n)) != COFFER_OK;
	for (size_t k = 0; k < secrets && !bad; k++)
		bad = fs_write_all(sv[0], &len, sizeof(len)) || fs_write_all(sv[0], values[k], VALUE_LEN);
	char ready = 0;
	if (bad || read(sv[0], &ready, 1) != 1)
		return bench_fail("the masker did not take the values\n");
	close(sv[0]);
	uint64_t t0 = bench_now_ns();
	bad = write_out(pp[1], b, total);
	close(pp[1]);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	uint64_t ns = bench_now_ns() - t0;
	if (bad || !WIFEXITED(status) || WEXITSTATUS(status))
		return bench_fail("the masker failed (status %d)\n", status);
	*mbps = (double)total / (1 << 20) / ((double)ns / 1e9);
	return 0;
}

static int run_unmasked(const char *log, const unsigned char *b, size_t total, double *mbps)
{
	int lf = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	if (lf < 0)
		return bench_fail("cannot open %s: %s\n", log, strerror(errno));
	uint64_t t0 = bench_now_ns();
	int bad = write_out(lf, b, total);
	close(lf);
	uint64_t ns = bench_now_ns() - t0;
	if (bad)
		return bench_fail("cannot write %s\n", log);
	*mbps = (double)total / (1 << 20) / ((double)ns / 1e9);
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t mb, secrets;
	char extra[EXTRA_SIZE];
	double masked = 0, unmasked = 0;
	if (argc != 5 || parse_uint64(argv[3], MB_MAX, &mb) || parse_uint64(argv[4], SECRETS_MAX, &secrets) || !mb || !secrets)
		return bench_fail("usage: bench_mask COFFER LOGFILE MB SECRETS\n");
	if (sodium_init() < 0)
		return bench_fail("sodium_init failed\n");
	for (size_t k = 0; k < secrets; k++) {
		for (size_t i = 0; i < VALUE_LEN; i++)
			values[k][i] = (char)('A' + randombytes_uniform(26));
	}
	unsigned char *b = malloc(BLOCK);
	if (!b)
		return bench_fail("out of memory\n");
	fill(b, secrets);
	size_t total = (size_t)mb << 20;
	if (run_unmasked(argv[2], b, total, &unmasked) || run_masked(argv[1], argv[2], b, total, secrets, &masked))
		return 1;
	unlink(argv[2]);
	free(b);
	snprintf(extra, sizeof(extra), ",\"mb\":%llu,\"secrets\":%llu", (unsigned long long)mb,
		 (unsigned long long)secrets);
	bench_print_rate("mask.unmasked", unmasked, "MB/s", extra);
	bench_print_rate("mask.masked", masked, "MB/s", extra);
	bench_print_rate("mask.ratio", masked / unmasked, "x", extra);
	return 0;
}
