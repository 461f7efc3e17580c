/*
 * Raw HTTP into the api server: the real routes, gate and handlers
 * (api_start) over a SQLite store in a temporary folder, with one org, an
 * admin token and an app "web" (no keeper: what needs one fails). Each
 * input is sent as it is on a new loopback connection, with "@T" replaced
 * by "Bearer <the admin token>" so that the fuzzer reaches the handlers.
 * Properties: the server answers with a well-formed status line or closes;
 * an answer from coffer (not libmicrohttpd's own 400) carries an
 * X-Request-Id, and when it is an error its body is
 * {"error":{"code":...,"message":...}}; no answer ever holds the token;
 * and the server keeps serving (a health check every 64 inputs).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "fuzz.h"
#include "log.h"

#define RESPONSE_MAX ((size_t)1 << 20)
/* a hang, not a slow answer on a busy machine (the server drops an idle connection after 10 s) */
#define IO_TIMEOUT_MS 45000
#define MARK "@T"

static struct api *api;
static uint16_t port;
static char bearer[16 + API_TOKEN_LEN];

static char dir[256];

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

/* The folder goes at exit (SQLite's open files with it); after a crash it stays for a look. */
static void remove_dir(void)
{
	if (nftw(dir, remove_one, 8, FTW_DEPTH | FTW_PHYS))
		fprintf(stderr, "fuzz_http: cannot remove %s\n", dir);
}

static void write_file(const char *dir, const char *name, const char *text, mode_t mode)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) || chmod(path, mode))
		abort();
}

/* One org, its admin token (into bearer) and an app "web", as `coffer api bootstrap` would. */
static void bootstrap(const char *url)
{
	struct store *s = NULL;
	struct store_org org;
	struct store_app app;
	struct store_token t = { 0 };
	struct secret *token = NULL;
	static const unsigned char rows_key[STORE_ROW_KEY_LEN] = { [0 ... STORE_ROW_KEY_LEN - 1] = 0x42 };
	if (store_open(url, &s))
		abort();
	for (int i = 0; i < STORE_TABLE__COUNT; i++) /* the api's rows key (rows.key below) */
		if (store_auth_key(s, (enum store_table)i, rows_key))
			abort();
	if (store_org_create(s, "fuzz", &org) ||
	    str_copy(t.org_id, sizeof(t.org_id), org.id) || str_copy(t.role, sizeof(t.role), "admin") ||
	    api_token_mint(&token, t.hash) || store_token_insert(s, &t, &t) ||
	    store_app_create(s, org.id, "web", 0, &app))
		abort();
	snprintf(bearer, sizeof(bearer), "Bearer %.*s", (int)secret_len(token), (const char *)secret_cbytes(token));
	secret_free(token);
	store_close(s);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	static char url[300], pub[300], cred[300], rows[300], digest[300];
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	char why[256];
	fuzz_sodium_init();
	json_use_wiping_allocator();
	log_set_level(LOG_OFF);
	snprintf(dir, sizeof(dir), "%s/coffer-fuzz-http.XXXXXX", base);
	if (!mkdtemp(dir) || atexit(remove_dir))
		abort();
	snprintf(url, sizeof(url), "sqlite:%s/store.db", dir);
	snprintf(pub, sizeof(pub), "%s/keeper.pub", dir);
	snprintf(cred, sizeof(cred), "%s/keeper.credential", dir);
	write_file(dir, "keeper.pub", "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29\n", 0644);
	write_file(dir, "keeper.credential", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", 0600);
	snprintf(rows, sizeof(rows), "%s/rows.key", dir);
	snprintf(digest, sizeof(digest), "%s/digest.key", dir);
	write_file(dir, "rows.key", "4242424242424242424242424242424242424242424242424242424242424242\n", 0600);
	write_file(dir, "digest.key", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", 0600);
	bootstrap(url);
	struct api_config cfg = { .state_dir = dir, .store_url = url, .listen = "127.0.0.1:0",
				  .keeper_url = "http://127.0.0.1:1", .keeper_pub_file = pub,
				  .keeper_credential_file = cred, .rows_key_file = rows, .digest_key_file = digest };
	if (api_start(&cfg, &api, why, sizeof(why))) {
		fprintf(stderr, "fuzz_http: cannot start the api: %s\n", why);
		abort();
	}
	port = api_port(api);
	return 0;
}

/* Sends req on a new connection, half-closes, reads the answer (NUL-terminated, *len bytes). */
static char *exchange(const char *req, size_t req_len, size_t *len)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	FUZZ_CHECK(fd >= 0);
	FUZZ_CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	for (size_t off = 0; off < req_len;) {
		ssize_t n = send(fd, req + off, req_len - off, MSG_NOSIGNAL);
		if (n <= 0)
			break; /* the server may close early (a refused request): fine */
		off += (size_t)n;
	}
	shutdown(fd, SHUT_WR);
	char *out = malloc(RESPONSE_MAX + 1);
	FUZZ_CHECK(out);
	*len = 0;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = poll(&p, 1, IO_TIMEOUT_MS);
		if (r < 0 && errno == EINTR) /* libFuzzer's timer */
			continue;
		FUZZ_CHECK(r > 0); /* the server neither answered nor closed: it hangs */
		ssize_t n = recv(fd, out + *len, RESPONSE_MAX - *len, 0);
		if (n <= 0 || *len + (size_t)n >= RESPONSE_MAX) {
			*len += n > 0 ? (size_t)n : 0;
			break;
		}
		*len += (size_t)n;
	}
	out[*len] = '\0';
	close(fd);
	return out;
}

/* Each answer in out (keep-alive may give more than one) is checked. */
static void check_answers(const char *out, size_t len)
{
	const char *p = out, *end = out + len;
	FUZZ_CHECK(!memmem(out, len, bearer + 7, strlen(bearer + 7)));
	while (p < end) {
		int status = 0;
		FUZZ_CHECK(end - p >= 12 && (memcmp(p, "HTTP/1.1 ", 9) == 0 || memcmp(p, "HTTP/1.0 ", 9) == 0));
		FUZZ_CHECK(sscanf(p + 9, "%3d", &status) == 1 && status >= 100 && status <= 599);
		const char *hend = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
		FUZZ_CHECK(hend);
		size_t hlen = (size_t)(hend - p), body_len = 0;
		if (!memmem(p, hlen, "\r\nX-Request-Id: ", 16)) {
			/*
			 * libmicrohttpd's own answer to a malformed request; it
			 * closes the connection after it (and its 400 for a
			 * missing Host repeats its head: not ours to parse).
			 */
			FUZZ_CHECK(status == 400 || status == 413 || status == 414 || status == 431 || status == 500 ||
				   status == 501 || status == 505);
			break;
		}
		const char *cl = memmem(p, hlen, "\r\nContent-Length: ", 18);
		FUZZ_CHECK(cl && sscanf(cl + 18, "%zu", &body_len) == 1);
		const char *body = hend + 4;
		FUZZ_CHECK((size_t)(end - body) >= body_len);
		if (status >= 400) {
			json_error_t jerr;
			json_t *doc = json_loadb(body, body_len, 0, &jerr), *e = json_object_get(doc, "error");
			FUZZ_CHECK(json_is_string(json_object_get(e, "code")) &&
				   json_is_string(json_object_get(e, "message")));
			json_decref(doc);
		}
		p = body + body_len;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned count;
	if (size > 65536)
		return 0;
	/* the input with each MARK replaced by the bearer */
	size_t blen = strlen(bearer), cap = size + 1 + (size / 2 + 1) * blen, n = 0, len;
	char *req = malloc(cap);
	FUZZ_CHECK(req);
	for (size_t i = 0; i < size; i++) {
		if (i + 1 < size && data[i] == MARK[0] && data[i + 1] == MARK[1]) {
			memcpy(req + n, bearer, blen);
			n += blen;
			i++;
		} else {
			req[n++] = (char)data[i];
		}
	}
	char *out = exchange(req, n, &len);
	check_answers(out, len);
	free(out);
	free(req);
	if (++count % 64 == 0) {
		static const char health[] = "GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
		out = exchange(health, sizeof(health) - 1, &len);
		FUZZ_CHECK(len > 12 && memcmp(out, "HTTP/1.1 200", 12) == 0);
		free(out);
	}
	return 0;
}
