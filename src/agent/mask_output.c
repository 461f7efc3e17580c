#include "mask_output.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <sodium.h>

#include "fs.h"
#include "mask.h"
#include "secret.h"

#include "banned.h"

#define EXIT_SETUP 2   /* no values, or no memory for them: nothing was read */
#define EXIT_WRITE 1   /* some output could not be written to out.log */
#define OUT_BUF ((size_t)64 << 10) /* masked output (no value: plain memory) */

static int read_full(int fd, void *p, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, (char *)p + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

/* Masked bytes on their way to out.log: gathered, written once per read of the pipe (or when full). */
struct sink {
	unsigned char buf[OUT_BUF];
	size_t len;
	int failed;
};

static void sink_flush(struct sink *s)
{
	if (s->len && fs_write_all(STDOUT_FILENO, s->buf, s->len))
		s->failed = 1; /* dropped: the machine must not block on its log */
	s->len = 0;
}

static int emit_log(void *ctx, const unsigned char *p, size_t n)
{
	struct sink *s = ctx;
	if (s->len + n > sizeof(s->buf))
		sink_flush(s);
	if (n >= sizeof(s->buf)) {
		if (fs_write_all(STDOUT_FILENO, p, n))
			s->failed = 1;
		return 0;
	}
	memcpy(s->buf + s->len, p, n);
	s->len += n;
	return 0;
}

int agent_mask_output(void)
{
	struct secret **values = NULL;
	struct secret *chunk = NULL;
	struct mask_stream *ms = NULL;
	static struct sink sink;
	uint32_t n = 0;
	int ex = EXIT_SETUP;

	prctl(PR_SET_DUMPABLE, 0);
	(void)close_range(MASK_VALUES_FD + 1, ~0U, 0);
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	if (sodium_init() < 0 || read_full(MASK_VALUES_FD, &n, sizeof(n)) || n > MASK_VALUES_MAX)
		goto out;
	values = calloc((size_t)n + 1, sizeof(*values));
	if (!values)
		goto out;
	for (uint32_t k = 0; k < n; k++) {
		uint32_t len;
		if (read_full(MASK_VALUES_FD, &len, sizeof(len)) || len > MASK_VALUE_MAX ||
		    secret_new(len, &values[k]) || read_full(MASK_VALUES_FD, secret_bytes(values[k]), len))
			goto out;
	}
	if (mask_stream_new((const struct secret *const *)values, n, emit_log, &sink, &ms) ||
	    secret_new(MASK_CHUNK, &chunk))
		goto out;
	/* the stream holds its own copies */
	for (uint32_t k = 0; k < n; k++) {
		secret_free(values[k]);
		values[k] = NULL;
	}
	char ready = MASK_READY;
	if (fs_write_all(MASK_VALUES_FD, &ready, 1))
		goto out;
	close(MASK_VALUES_FD);
	for (;;) {
		ssize_t r = read(STDIN_FILENO, secret_bytes(chunk), MASK_CHUNK);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (mask_feed(ms, secret_cbytes(chunk), (size_t)r))
			break;
		sink_flush(&sink); /* what can be written is in out.log before the next read waits */
	}
	if (mask_finish(ms))
		sink.failed = 1;
	sink_flush(&sink);
	ex = sink.failed ? EXIT_WRITE : 0;
out:
	secret_free(chunk);
	mask_stream_free(ms);
	if (values) {
		for (uint32_t k = 0; k < n; k++)
			secret_free(values[k]);
		free(values);
	}
	return ex;
}
