/*
 * conn_hold — an attacker who opens many TCP connections to a server and
 * holds them, to show that they cannot starve other clients
 * (tests/integration/t0740). Each group of connections comes from its own
 * source addresses (loopback is a /8, so 127.0.0.2 is another client than
 * the tests' 127.0.0.1):
 *
 *   conn_hold HOST PORT SECONDS GROUP...
 *   GROUP = KIND:COUNT:ADDR[,ADDR...]   KIND idle (sends nothing), slow
 *                                       (sends half a request header) or
 *                                       slowtls (sends the start of a TLS
 *                                       ClientHello and never the rest)
 *
 * It connects every group (round-robin over its addresses), prints
 * "ready" on stdout, then watches every connection for SECONDS and prints
 * one line per group:
 *
 *   KIND connected=N early=E late=L open=O late_min_ms=A late_max_ms=B
 *
 * early: closed by the server within EARLY_MS of "ready" (refused by a
 * limit); late: closed after that (the idle timeout), A and B the first
 * and last such close (ms after "ready", -1 when none); open: still open
 * at the end. A connection the server answers is read until it closes.
 * Exit 0, or 2 on a usage or setup error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define GROUPS_MAX 8
#define ADDRS_MAX 64
#define CONNS_MAX 4096
#define CONNECT_MS 5000
#define EARLY_MS 1000
#define SECONDS_MAX 600
#define READ_SIZE 4096
#define HALF_HEADER "GET /v1/apps HTTP/1.1\r\nHost: coffer\r\nX-Slow: "
/* a TLS record header announcing a 512-byte handshake, then a ClientHello's first bytes */
static const unsigned char half_hello[] = { 0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03 };

struct group {
	char kind[8];
	unsigned count;
	struct in_addr addr[ADDRS_MAX];
	unsigned n_addr;
	unsigned connected, early, late;
	int64_t late_min, late_max;
};

struct conn {
	int fd;
	struct group *g;
	int closed;
};

static int64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int fail(const char *what)
{
	fprintf(stderr, "conn_hold: %s\n", what);
	return 2;
}

static int parse_group(char *text, struct group *g)
{
	char *kind = strtok(text, ":"), *count = strtok(NULL, ":"), *addrs = strtok(NULL, ":"), *end, *a;
	unsigned long n;
	if (!kind || !count || !addrs || (strcmp(kind, "idle") && strcmp(kind, "slow") && strcmp(kind, "slowtls")))
		return -1;
	snprintf(g->kind, sizeof(g->kind), "%s", kind);
	errno = 0;
	n = strtoul(count, &end, 10);
	if (errno || *end || n == 0 || n > CONNS_MAX)
		return -1;
	g->count = (unsigned)n;
	for (a = strtok(addrs, ","); a; a = strtok(NULL, ",")) {
		if (g->n_addr >= ADDRS_MAX || inet_pton(AF_INET, a, &g->addr[g->n_addr]) != 1)
			return -1;
		g->n_addr++;
	}
	g->late_min = g->late_max = -1;
	return g->n_addr ? 0 : -1;
}

/* A connection from src to dst, or -1 (the server's backlog may be full). */
static int open_conn(const struct in_addr *src, const struct sockaddr_in *dst)
{
	struct sockaddr_in me = { .sin_family = AF_INET, .sin_addr = *src };
	struct pollfd p;
	int err = 0;
	socklen_t len = sizeof(err);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&me, sizeof(me)) != 0)
		goto bad;
	if (connect(fd, (const struct sockaddr *)dst, sizeof(*dst)) != 0 && errno != EINPROGRESS)
		goto bad;
	p.fd = fd;
	p.events = POLLOUT;
	if (poll(&p, 1, CONNECT_MS) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err)
		goto bad;
	return fd;
bad:
	close(fd);
	return -1;
}

int main(int argc, char **argv)
{
	struct group groups[GROUPS_MAX];
	static struct conn conns[CONNS_MAX];
	static struct pollfd fds[CONNS_MAX];
	struct sockaddr_in dst = { .sin_family = AF_INET };
	size_t n_groups = 0, n = 0;
	char *end;
	unsigned long port, seconds;
	struct rlimit rl;

	memset(groups, 0, sizeof(groups));
	if (argc < 5 || (size_t)(argc - 4) > GROUPS_MAX)
		return fail("usage: conn_hold HOST PORT SECONDS KIND:COUNT:ADDR[,ADDR...]...");
	if (inet_pton(AF_INET, argv[1], &dst.sin_addr) != 1)
		return fail("HOST must be an IPv4 address");
	errno = 0;
	port = strtoul(argv[2], &end, 10);
	if (errno || *end || port == 0 || port > 65535)
		return fail("PORT must be 1 to 65535");
	dst.sin_port = htons((uint16_t)port);
	seconds = strtoul(argv[3], &end, 10);
	if (*end || seconds == 0 || seconds > SECONDS_MAX)
		return fail("SECONDS must be 1 to 600");
	for (int i = 4; i < argc; i++)
		if (parse_group(argv[i], &groups[n_groups++]))
			return fail("a group must be idle|slow:COUNT:ADDR[,ADDR...]");
	/* enough descriptors for every connection */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}

	for (size_t gi = 0; gi < n_groups; gi++) {
		struct group *g = &groups[gi];
		for (unsigned i = 0; i < g->count; i++) {
			if (n >= CONNS_MAX)
				return fail("too many connections");
			int fd = open_conn(&g->addr[i % g->n_addr], &dst);
			if (fd < 0)
				continue;
			const void *half = NULL;
			size_t half_len = 0;
			if (strcmp(g->kind, "slow") == 0) {
				half = HALF_HEADER;
				half_len = sizeof(HALF_HEADER) - 1;
			} else if (strcmp(g->kind, "slowtls") == 0) {
				half = half_hello;
				half_len = sizeof(half_hello);
			}
			if (half && send(fd, half, half_len, MSG_NOSIGNAL) != (ssize_t)half_len) {
				close(fd);
				continue;
			}
			conns[n] = (struct conn){ .fd = fd, .g = g };
			fds[n] = (struct pollfd){ .fd = fd, .events = POLLIN };
			g->connected++;
			n++;
		}
	}
	printf("ready\n");
	fflush(stdout);

	int64_t t0 = now_ms(), stop = t0 + (int64_t)seconds * 1000;
	for (int64_t t = t0; t < stop; t = now_ms()) {
		int r = poll(fds, n, (int)(stop - t));
		if (r < 0 && errno != EINTR)
			return fail("poll failed");
		for (size_t i = 0; r > 0 && i < n; i++) {
			char buf[READ_SIZE];
			if (!fds[i].revents)
				continue;
			ssize_t got = recv(conns[i].fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (got > 0 || (got < 0 && (errno == EAGAIN || errno == EINTR)))
				continue; /* an answer: read on until it closes */
			int64_t at = now_ms() - t0;
			struct group *g = conns[i].g;
			if (at < EARLY_MS) {
				g->early++;
			} else {
				g->late++;
				if (g->late_min < 0)
					g->late_min = at;
				g->late_max = at;
			}
			close(conns[i].fd);
			conns[i].closed = 1;
			fds[i].fd = -1;
		}
	}
	for (size_t gi = 0; gi < n_groups; gi++) {
		struct group *g = &groups[gi];
		printf("%s connected=%u early=%u late=%u open=%u late_min_ms=%lld late_max_ms=%lld\n", g->kind,
		       g->connected, g->early, g->late, g->connected - g->early - g->late, (long long)g->late_min,
		       (long long)g->late_max);
	}
	for (size_t i = 0; i < n; i++)
		if (!conns[i].closed)
			close(conns[i].fd);
	return 0;
}
