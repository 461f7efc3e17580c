/*
 * tamper_proxy — a man in the middle on loopback for the security tests
 * (tests/integration/t0730-agent-wire.bats): relays TCP connections to an
 * upstream port and, while FLAGFILE exists, rewrites every FROM in what
 * the upstream answers into TO (the same length, so an HTTP answer keeps
 * its Content-Length). It is what anyone on the path of a plain-HTTP link
 * can do: change a machine's command in the api's assignments.
 *
 *   tamper_proxy READYFILE UPSTREAM_PORT FLAGFILE FROM TO
 *
 * Listens on 127.0.0.1 on a port the kernel picks and writes
 * "http://127.0.0.1:PORT" to READYFILE; appends one line "rewrote" to
 * FLAGFILE.log per rewrite. A thread per connection; ends on SIGTERM.
 * FROM split over two reads is still found: the last bytes of a read are
 * held back until more come or the upstream is quiet for HOLD_MS.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define BUF_SIZE 65536
#define HOLD_MS 20

static const char *flag_file, *from, *to;
static size_t pat_len;
static int upstream_port;
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

static int send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void note_rewrite(void)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s.log", flag_file);
	pthread_mutex_lock(&log_mu);
	FILE *f = fopen(path, "a");
	if (f) {
		fputs("rewrote\n", f);
		fclose(f);
	}
	pthread_mutex_unlock(&log_mu);
}

/* Rewrites FROM into TO in p[0..n) while the flag file exists. */
static void tamper(char *p, size_t n)
{
	struct stat st;
	if (stat(flag_file, &st) != 0 || n < pat_len)
		return;
	for (size_t i = 0; i + pat_len <= n; i++)
		if (memcmp(p + i, from, pat_len) == 0) {
			memcpy(p + i, to, pat_len);
			note_rewrite();
			i += pat_len - 1;
		}
}

struct conn {
	int client, upstream;
};

static void *relay(void *arg)
{
	struct conn *c = arg;
	static __thread char down[BUF_SIZE + 256];
	char up[BUF_SIZE];
	size_t held = 0; /* bytes of down not sent yet */
	for (;;) {
		struct pollfd p[2] = { { c->client, POLLIN, 0 }, { c->upstream, POLLIN, 0 } };
		int r = poll(p, 2, held ? HOLD_MS : -1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		if (r == 0) { /* the upstream is quiet: what was held goes now */
			if (send_all(c->client, down, held))
				break;
			held = 0;
			continue;
		}
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = recv(c->client, up, sizeof(up), 0);
			if (n <= 0 || send_all(c->upstream, up, (size_t)n))
				break;
		}
		if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = recv(c->upstream, down + held, BUF_SIZE, 0);
			if (n <= 0) {
				if (held)
					(void)send_all(c->client, down, held);
				break;
			}
			held += (size_t)n;
			tamper(down, held);
			/* keep the last pat_len - 1 bytes: FROM may go on in the next read */
			size_t keep = held < pat_len - 1 ? held : pat_len - 1;
			if (send_all(c->client, down, held - keep))
				break;
			memmove(down, down + held - keep, keep);
			held = keep;
		}
	}
	close(c->client);
	close(c->upstream);
	free(c);
	return NULL;
}

int main(int argc, char **argv)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	int ls;
	if (argc != 6 || strlen(argv[4]) != strlen(argv[5]) || strlen(argv[4]) == 0 || strlen(argv[4]) > 200) {
		fprintf(stderr, "usage: tamper_proxy READYFILE UPSTREAM_PORT FLAGFILE FROM TO (FROM and TO of one length)\n");
		return 2;
	}
	upstream_port = atoi(argv[2]);
	flag_file = argv[3];
	from = argv[4];
	to = argv[5];
	pat_len = strlen(from);
	signal(SIGPIPE, SIG_IGN);
	ls = socket(AF_INET, SOCK_STREAM, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) || listen(ls, 64) ||
	    getsockname(ls, (struct sockaddr *)&a, &alen)) {
		perror("tamper_proxy: listen");
		return 2;
	}
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp", argv[1]);
	FILE *f = fopen(tmp, "w");
	if (!f || fprintf(f, "http://127.0.0.1:%u\n", (unsigned)ntohs(a.sin_port)) < 0 || fclose(f) ||
	    rename(tmp, argv[1])) {
		perror("tamper_proxy: ready file");
		return 2;
	}
	for (;;) {
		int cl = accept(ls, NULL, NULL);
		if (cl < 0) {
			if (errno == EINTR)
				continue;
			perror("tamper_proxy: accept");
			return 2;
		}
		struct sockaddr_in u;
		memset(&u, 0, sizeof(u));
		u.sin_family = AF_INET;
		u.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		u.sin_port = htons((uint16_t)upstream_port);
		int us = socket(AF_INET, SOCK_STREAM, 0);
		struct conn *c = malloc(sizeof(*c));
		pthread_t t;
		if (us < 0 || !c || connect(us, (struct sockaddr *)&u, sizeof(u))) {
			close(cl);
			if (us >= 0)
				close(us);
			free(c);
			continue;
		}
		c->client = cl;
		c->upstream = us;
		if (pthread_create(&t, NULL, relay, c)) {
			close(cl);
			close(us);
			free(c);
			continue;
		}
		pthread_detach(t);
	}
}
