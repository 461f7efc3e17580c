/*
 * cmd_dev.c — `coffer dev`: every role on this machine, on SQLite, like
 * `vault server -dev`. It creates the keys on first use, starts the keeper
 * and the api as child processes of this one (the same binary), waits until
 * each answers its health check, makes sure an admin token exists, starts
 * the agents (one by default, --agents N; each in DIR/agents/<i>, enrolled
 * with a join token from `coffer keeper join-token` the first time, its
 * identity reused afterwards), prints the export lines, writes them to
 * DIR/env and the CLI's config, and then supervises the roles until
 * interrupted: a role that dies is restarted (at most ROLE_RESTARTS_MAX
 * times a minute), and SIGINT/SIGTERM stop all.
 *
 * TLS: a local CA in DIR/tls (made the first time, kept afterwards: the
 * CLI's config and the agents trust it) issues the keeper's and the api's
 * certificates at every start, for their listen host and the loopback
 * names; the roles are started with them, and every client (the agents,
 * the api's link to the keeper, the CLI through its config) verifies
 * against the CA.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "buf.h"
#include "client.h"
#include "deployer.h"
#include "encode.h"
#include "opts.h"
#include "fs.h"
#include "http_client.h"
#include "log.h"
#include "parse.h"
#include "secret.h"
#include "tls.h"
#include "banned.h"

#define DEV_API_ADDR "127.0.0.1:4680"
#define DEV_KEEPER_ADDR "127.0.0.1:4681"
#define DEV_ORG "personal"
#define PATH_SIZE 4096
#define URL_SIZE 512
#define READY_TIMEOUT_MS 20000
#define STOP_TIMEOUT_MS 5000
#define AGENT_STOP_TIMEOUT_MS 20000 /* an agent stops its machines: SIGTERM, SIGKILL after 10 s */
#define ROLE_RESTARTS_MAX 5
#define TOKEN_FILE_MAX 256
#define DEV_AGENTS_DEFAULT 1
#define DEV_AGENTS_MAX 16
#define DEV_AGENT_NAME_SIZE 32
#define JOIN_TOKEN_MAX 256
#define JOIN_ENV "COFFER_JOIN_TOKEN" /* how the agent is given its join token: never on argv */
#define DEV_CA_NAME "coffer dev CA"
#define DEV_CA_DAYS 3650
#define DEV_CERT_DAYS 397
#define DAY_S 86400
#define CLOCK_SKEW_S 300

struct role {
	const char *name;
	char listen[URL_SIZE]; /* host:port; after the first start, the port it got */
	char ready[PATH_SIZE];
	char url[URL_SIZE];
	char cert[PATH_SIZE], key[PATH_SIZE]; /* its TLS certificate and key (keeper and api) */
	pid_t pid;
	int restarts;
	time_t window_start;
};

struct agent {
	struct role r;
	char dir[PATH_SIZE];             /* DIR/agents/<i> */
	char host_name[DEV_AGENT_NAME_SIZE]; /* dev-<i> */
};

struct dev {
	char dir[PATH_SIZE];
	char store_url[PATH_SIZE + 16];
	char self[PATH_SIZE];
	char ca[PATH_SIZE], ca_key[PATH_SIZE]; /* DIR/tls/ca.pem, ca.key */
	struct role keeper, api;
	struct agent agents[DEV_AGENTS_MAX];
	int n_agents;
	int verbose;               /* -v: the roles' logs on this terminal too, not only in DIR/logs */
	char logs[PATH_SIZE];      /* DIR/logs */
	char config[PATH_SIZE];    /* the CLI's config file this dev writes (COFFER_CONFIG in DIR/env) */
};

static int path_in(char *out, const char *dir, const char *name)
{
	return fmt_into(out, PATH_SIZE, "%s/%s", dir, name) ? -1 : 0;
}

static int default_state_dir(char *out)
{
	const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	if (xdg && *xdg)
		return fmt_into(out, PATH_SIZE, "%s/coffer", xdg) ? -1 : 0;
	if (home && *home)
		return fmt_into(out, PATH_SIZE, "%s/.local/state/coffer", home) ? -1 : 0;
	return -1;
}

/*
 * Starts the role `coffer ARGS...`; join (may be NULL) goes to the child's
 * JOIN_ENV only. Its log (stderr) is appended to DIR/logs/<log>.log, and
 * is this terminal's with -v.
 */
static pid_t spawn_with(const struct dev *d, char *const argv[], const char *log, const char *join)
{
	char path[PATH_SIZE];
	int fd = -1;
	if (!d->verbose && fmt_into(path, sizeof(path), "%s/%s.log", d->logs, log) == COFFER_OK &&
	    (fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) < 0)
		fprintf(stderr, "coffer dev: cannot open %s (%s): the %s's log comes here\n", path, strerror(errno), log);
	pid_t pid = fork();
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if ((join && setenv(JOIN_ENV, join, 1)) || (fd >= 0 && dup2(fd, STDERR_FILENO) < 0))
			_exit(127);
		execv(d->self, argv);
		_exit(127);
	}
	if (fd >= 0)
		close(fd);
	return pid;
}

/* Runs `coffer ARGS...` to its end; its stdout goes to out (if not NULL). */
static int run_capture(const struct dev *d, char *const argv[], struct buf *out)
{
	int fds[2];
	if (pipe(fds))
		return -1;
	pid_t pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execv(d->self, argv);
		_exit(127);
	}
	close(fds[1]);
	char chunk[512];
	ssize_t n;
	while ((n = read(fds[0], chunk, sizeof(chunk))) > 0 || (n < 0 && errno == EINTR))
		if (n > 0 && out && buf_add(out, chunk, (size_t)n))
			break;
	sodium_memzero(chunk, sizeof(chunk));
	close(fds[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static enum coffer_err health_ok(const char *url)
{
	struct http_client *c = NULL;
	enum coffer_err rc = http_client_new(url, 2000, &c);
	if (rc)
		return rc;
	int status = 0;
	struct buf body;
	buf_init(&body, 4096);
	rc = http_client_request(c, "GET", "/v1/health", NULL, 0, body.max, &status, &body);
	if (!rc && (status != 200 || !strstr(body.ptr, "\"ok\"")))
		rc = COFFER_ERR_UNAVAILABLE;
	buf_release(&body);
	http_client_free(c);
	return rc;
}

/* Starts a role and waits for its ready file and its health check. */
static enum coffer_err role_start(struct dev *d, struct role *r)
{
	char state[PATH_SIZE], keeper_pub[PATH_SIZE], keeper_cred[PATH_SIZE], boot_key[PATH_SIZE];
	char rows_key[PATH_SIZE], digest_key[PATH_SIZE];
	if (path_in(state, d->dir, r->name) || path_in(keeper_pub, d->dir, "keeper/keeper.pub") ||
	    path_in(keeper_cred, d->dir, "keeper/api.credential") || path_in(boot_key, d->dir, "keeper/api.boot.key") ||
	    path_in(rows_key, d->dir, "keeper/api.rows.key") || path_in(digest_key, d->dir, "keeper/api.digest.key"))
		return COFFER_ERR_TOO_LARGE;
	unlink(r->ready);
	if (strcmp(r->name, "keeper") == 0) {
		char *argv[] = { "coffer", "keeper", "--state-dir", state, "--store", d->store_url, "--listen",
				 r->listen, "--ready-file", r->ready, "--tls-cert", r->cert, "--tls-key", r->key, NULL };
		r->pid = spawn_with(d, argv, r->name, NULL);
	} else {
		/* the boot-token signing key `keeper init` writes (docs/RUNPATH.md, "Keys") */
		char *argv[] = { "coffer", "api", "--state-dir", state, "--store", d->store_url,
				 "--listen", r->listen, "--keeper", d->keeper.url, "--keeper-pub",
				 keeper_pub, "--keeper-credential", keeper_cred, "--ready-file", r->ready,
				 "--boot-key", boot_key, "--rows-key", rows_key, "--digest-key", digest_key, "--tls-cert",
				 r->cert, "--tls-key", r->key, "--ca", d->ca, NULL };
		r->pid = spawn_with(d, argv, r->name, NULL);
	}
	if (r->pid < 0)
		return COFFER_ERR_IO;
	struct buf url;
	buf_init(&url, URL_SIZE - 1);
	enum coffer_err rc = COFFER_ERR_UNAVAILABLE;
	for (int waited = 0; waited < READY_TIMEOUT_MS; waited += 100) {
		int status;
		if (waitpid(r->pid, &status, WNOHANG) == r->pid) {
			r->pid = 0;
			fprintf(stderr, "coffer dev: %s exited while starting\n", r->name);
			break;
		}
		if (!url.len && fs_read_file(r->ready, &url) == COFFER_OK && url.len) {
			while (url.len && (url.ptr[url.len - 1] == '\n'))
				url.ptr[--url.len] = '\0';
			if (str_copy(r->url, sizeof(r->url), url.ptr))
				break;
			/* keep the port it got, so a restart comes back at the same address */
			const char *hp = strstr(r->url, "://");
			if (hp && str_copy(r->listen, sizeof(r->listen), hp + 3))
				break;
		}
		if (url.len && health_ok(r->url) == COFFER_OK) {
			rc = COFFER_OK;
			break;
		}
		sleep_ms(100);
	}
	buf_release(&url);
	if (!rc)
		fprintf(stderr, "coffer dev: %s ready at %s (pid %d)\n", r->name, r->url, (int)r->pid);
	return rc;
}

/*
 * Starts agent a and waits for its ready file (written once it is
 * registered with the api). The first time (no host.json in its folder)
 * it gets a fresh join token in its environment.
 */
static enum coffer_err agent_start(struct dev *d, struct agent *a)
{
	char keeper_dir[PATH_SIZE], identity[PATH_SIZE];
	struct buf join;
	enum coffer_err rc = COFFER_ERR_UNAVAILABLE;

	if (path_in(keeper_dir, d->dir, "keeper") || path_in(identity, a->dir, "host.json"))
		return COFFER_ERR_TOO_LARGE;
	buf_init_wiping(&join, JOIN_TOKEN_MAX);
	if (access(identity, F_OK) != 0) {
		char *argv[] = { "coffer", "keeper", "join-token", "--state-dir", keeper_dir, NULL };
		int code = run_capture(d, argv, &join);
		while (join.len && (join.ptr[join.len - 1] == '\n' || join.ptr[join.len - 1] == '\r'))
			join.ptr[--join.len] = '\0';
		if (code != 0 || join.len == 0) {
			fprintf(stderr, "coffer dev: could not make a join token (exit %d)\n", code);
			rc = COFFER_ERR_INTERNAL;
			goto out;
		}
	}
	unlink(a->r.ready);
	char *argv[] = { "coffer", "agent", "--api", d->api.url, "--keeper", d->keeper.url, "--state-dir", a->dir,
			 "--name", a->host_name, "--ready-file", a->r.ready, "--ca", d->ca, NULL };
	a->r.pid = spawn_with(d, argv, a->host_name, join.len ? join.ptr : NULL);
	if (a->r.pid < 0) {
		rc = COFFER_ERR_IO;
		goto out;
	}
	for (int waited = 0; waited < READY_TIMEOUT_MS; waited += 100) {
		int status;
		if (waitpid(a->r.pid, &status, WNOHANG) == a->r.pid) {
			a->r.pid = 0;
			fprintf(stderr, "coffer dev: agent %s exited while starting\n", a->host_name);
			break;
		}
		if (access(a->r.ready, F_OK) == 0) {
			rc = COFFER_OK;
			break;
		}
		sleep_ms(100);
	}
	if (!rc)
		fprintf(stderr, "coffer dev: agent %s ready in %s (pid %d)\n", a->host_name, a->dir, (int)a->r.pid);
out:
	buf_release(&join);
	return rc;
}

static void role_stop(struct role *r, int sig)
{
	if (r->pid > 0)
		kill(r->pid, sig);
}

/* SIGTERM to roles[0..n), each reaped within timeout_ms or SIGKILLed. */
static void stop_roles(struct role **roles, size_t n, int timeout_ms)
{
	for (size_t i = 0; i < n; i++)
		role_stop(roles[i], SIGTERM);
	for (int waited = 0; waited < timeout_ms; waited += 50) {
		int alive = 0;
		for (size_t i = 0; i < n; i++) {
			if (roles[i]->pid > 0 && waitpid(roles[i]->pid, NULL, WNOHANG) == roles[i]->pid)
				roles[i]->pid = 0;
			alive += roles[i]->pid > 0;
		}
		if (!alive)
			return;
		sleep_ms(50);
	}
	for (size_t i = 0; i < n; i++) {
		role_stop(roles[i], SIGKILL);
		if (roles[i]->pid > 0)
			waitpid(roles[i]->pid, NULL, 0);
		roles[i]->pid = 0;
	}
}

/*
 * The agents first (each stops its machines and reports them stopped to
 * the api, which must still be up), then the api, then the keeper: the
 * store ends with the machines' real state.
 */
static void stop_all(struct dev *d)
{
	struct role *roles[DEV_AGENTS_MAX];
	size_t n = 0;
	for (int i = 0; i < d->n_agents; i++)
		roles[n++] = &d->agents[i].r;
	stop_roles(roles, n, AGENT_STOP_TIMEOUT_MS);
	roles[0] = &d->api;
	stop_roles(roles, 1, STOP_TIMEOUT_MS);
	roles[0] = &d->keeper;
	stop_roles(roles, 1, STOP_TIMEOUT_MS);
}

/* The host of a listen address, with the loopback names, as a certificate's names. */
static enum coffer_err cert_names(const char *listen, char *host, size_t host_size, const char **names, size_t *n)
{
	uint16_t port;
	enum coffer_err rc = parse_host_port(listen, host, host_size, &port);
	if (rc)
		return rc;
	*n = 0;
	names[(*n)++] = "localhost";
	names[(*n)++] = "127.0.0.1";
	names[(*n)++] = "::1";
	if (strcmp(host, "localhost") != 0 && strcmp(host, "127.0.0.1") != 0 && strcmp(host, "::1") != 0)
		names[(*n)++] = host;
	return COFFER_OK;
}

/*
 * DIR/tls: the CA (made once, kept), and fresh certificates for the keeper
 * and the api that name their listen hosts; the CA is what every client
 * of this dev setup is given.
 */
static enum coffer_err tls_setup(struct dev *d)
{
	char dir[PATH_SIZE], host[PATH_SIZE];
	const char *names[4];
	size_t n = 0;
	time_t now = time(NULL);
	struct role *roles[] = { &d->keeper, &d->api };
	enum coffer_err rc = path_in(dir, d->dir, "tls") ? COFFER_ERR_TOO_LARGE : fs_mkdir_p(dir, 0700);

	if (!rc && (path_in(d->ca, dir, "ca.pem") || path_in(d->ca_key, dir, "ca.key")))
		rc = COFFER_ERR_TOO_LARGE;
	if (!rc && access(d->ca, F_OK) != 0)
		rc = tls_make_ca(d->ca, d->ca_key, DEV_CA_NAME, now - CLOCK_SKEW_S, now + (time_t)DEV_CA_DAYS * DAY_S);
	for (size_t i = 0; !rc && i < sizeof(roles) / sizeof(roles[0]); i++) {
		struct role *r = roles[i];
		if (fmt_into(r->cert, sizeof(r->cert), "%s/%s.pem", dir, r->name) ||
		    fmt_into(r->key, sizeof(r->key), "%s/%s.key", dir, r->name))
			rc = COFFER_ERR_TOO_LARGE;
		if (!rc)
			rc = cert_names(r->listen, host, sizeof(host), names, &n);
		if (!rc)
			rc = tls_make_cert(d->ca, d->ca_key, r->cert, r->key, names, n, now - CLOCK_SKEW_S,
					   now + (time_t)DEV_CERT_DAYS * DAY_S);
	}
	if (!rc)
		rc = http_client_set_ca_file(d->ca); /* the health checks */
	return rc;
}

/*
 * The admin token of the dev org: made by `coffer api bootstrap` the first
 * time and kept in DIR/admin.token (0600), which later runs read back.
 */
static enum coffer_err admin_token(struct dev *d, struct secret **token)
{
	char path[PATH_SIZE], rows_key[PATH_SIZE];
	if (path_in(path, d->dir, "admin.token") || path_in(rows_key, d->dir, "keeper/api.rows.key"))
		return COFFER_ERR_TOO_LARGE;
	struct secret *t = NULL;
	enum coffer_err rc = fs_read_private(path, TOKEN_FILE_MAX, &t);
	if (rc == COFFER_ERR_NOT_FOUND) {
		struct buf out;
		buf_init_wiping(&out, TOKEN_FILE_MAX);
		char *argv[] = { "coffer", "api", "bootstrap", "--store", d->store_url, "--rows-key", rows_key,
				 "--org", DEV_ORG, NULL };
		int code = run_capture(d, argv, &out);
		while (out.len && (out.ptr[out.len - 1] == '\n' || out.ptr[out.len - 1] == '\r'))
			out.ptr[--out.len] = '\0';
		if (code != 0 || out.len == 0) {
			fprintf(stderr, "coffer dev: could not create the admin token (exit %d)%s\n", code,
				code == coffer_err_exit_code(COFFER_ERR_CONFLICT)
					? "; the org exists but DIR/admin.token is gone: use a new --state-dir"
					: "");
			rc = COFFER_ERR_INTERNAL;
		} else {
			rc = fs_write_atomic(path, out.ptr, out.len, 0600, 1);
			if (!rc)
				rc = secret_from(out.ptr, out.len, &t);
		}
		buf_release(&out);
	}
	if (!rc) {
		/* one line, no trailing newline */
		size_t n = secret_len(t);
		while (n && (secret_cbytes(t)[n - 1] == '\n' || secret_cbytes(t)[n - 1] == '\r'))
			n--;
		rc = secret_truncate(t, n);
	}
	if (rc) {
		secret_free(t);
		return rc;
	}
	*token = t;
	return COFFER_OK;
}

/* The export lines, on stdout and in DIR/env (0600: it holds the token). */
static enum coffer_err publish(struct dev *d, const struct secret *token)
{
	char path[PATH_SIZE];
	struct buf env;
	buf_init_wiping(&env, 4096);
	enum coffer_err rc = path_in(path, d->dir, "env") ? COFFER_ERR_TOO_LARGE : COFFER_OK;
	if (!rc)
		rc = buf_addf(&env, "export COFFER_CONFIG=%s\nexport COFFER_API_URL=%s\nexport COFFER_CA=%s\n"
				    "export COFFER_TOKEN=",
			      d->config, d->api.url, d->ca);
	if (!rc)
		rc = buf_add(&env, secret_cbytes(token), secret_len(token));
	if (!rc)
		rc = buf_adds(&env, "\n");
	if (!rc)
		rc = fs_write_atomic(path, env.ptr, env.len, 0600, 0);
	if (!rc)
		rc = cli_config_write(d->api.url, d->ca, token);
	/* the default config is where every terminal's CLI looks; any other one must be named */
	char another_terminal[PATH_SIZE + 64];
	if (!rc && fmt_into(another_terminal, sizeof(another_terminal),
			    getenv("COFFER_CONFIG") ? "in another terminal, first run: source %s" :
						      "the CLI of every terminal finds it there (or: source %s)", path))
		another_terminal[0] = '\0';
	if (!rc) {
		fwrite(env.ptr, 1, env.len, stdout);
		fflush(stdout);
		fprintf(stderr,
			"coffer dev: ready. The lines above are in %s and the CLI's config (%s);\n"
			"coffer dev: %s; try:\n"
			"  coffer apps create web\n  coffer secrets set -a web DATABASE_URL=postgres://...\n"
			"  coffer deploy -a web -- sh -c 'echo started; exec sleep 3600'\n"
			"  coffer machines list -a web\n  coffer releases -a web\n  coffer status -a web\n"
			"coffer dev: %d agent%s enrolled and heartbeating: each runs the app's machines as "
			"processes here, given the secrets in their environment. The roles' logs are in %s%s.\n"
			"coffer dev: Ctrl-C stops everything.\n",
			path, d->config, another_terminal, d->n_agents, d->n_agents == 1 ? "" : "s", d->logs,
			d->verbose ? " and here" : " (-v: here too)");
	}
	buf_release(&env);
	return rc;
}

/*
 * The CLI's deployer key (cli_deployer_enrol), enrolled at this keeper as
 * an admin of every app of the dev org with a deployer token dev makes
 * itself, so the quick start signs with no extra step. Not again when the
 * config already names a deployer of this keeper (the key it pinned is
 * this keeper's) and the key file is there: then only its keeper_url is
 * brought up to date.
 */
static enum coffer_err dev_deployer(struct dev *d)
{
	char keeper_dir[PATH_SIZE], pub_path[PATH_SIZE], key_path[CLI_CONFIG_PATH_MAX];
	char pk_b64[DEPLOYER_PK_B64_SIZE];
	unsigned char pk[DEPLOYER_PK_LEN];
	struct cli_config_deployer cfg;
	struct secret *token = NULL;
	struct buf b;
	enum coffer_err rc;

	if (path_in(keeper_dir, d->dir, "keeper") || path_in(pub_path, keeper_dir, "keeper.pub"))
		return COFFER_ERR_TOO_LARGE;
	buf_init_wiping(&b, TOKEN_FILE_MAX);
	rc = fs_read_file(pub_path, &b);
	if (!rc && (b.len < HEX_LEN(DEPLOYER_PK_LEN) || hex_decode(b.ptr, HEX_LEN(DEPLOYER_PK_LEN), pk, sizeof(pk))))
		rc = COFFER_ERR_INVALID;
	if (rc)
		goto out;
	sodium_bin2base64(pk_b64, sizeof(pk_b64), pk, sizeof(pk), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	if (cli_config_read_deployer(&cfg) == COFFER_OK && cfg.deployer_id[0] && cfg.deployer_org_id[0] &&
	    strcmp(cfg.keeper_public_key, pk_b64) == 0 && cli_deployer_key_path(key_path, sizeof(key_path)) == COFFER_OK &&
	    access(key_path, F_OK) == 0) {
		/* enrolled here before: only the keeper's address may have changed (a port of 0) */
		if (strcmp(cfg.keeper_url, d->keeper.url) != 0) {
			rc = str_copy(cfg.keeper_url, sizeof(cfg.keeper_url), d->keeper.url);
			if (!rc)
				rc = cli_config_write_deployer(&cfg);
		}
		goto out;
	}
	buf_reset(&b);
	char *argv[] = { "coffer", "keeper", "deployer-token", "--state-dir", keeper_dir, "--store", d->store_url,
			 "--org", DEV_ORG, "--role", "admin", NULL };
	int code = run_capture(d, argv, &b);
	while (b.len && (b.ptr[b.len - 1] == '\n' || b.ptr[b.len - 1] == '\r'))
		b.ptr[--b.len] = '\0';
	if (code != 0 || b.len == 0) {
		fprintf(stderr, "coffer dev: could not make a deployer token (exit %d)\n", code);
		rc = COFFER_ERR_INTERNAL;
		goto out;
	}
	rc = secret_from(b.ptr, b.len, &token);
	if (!rc)
		rc = cli_deployer_enrol(d->keeper.url, NULL, token, "dev", NULL); /* the CA is the process's already */
	if (!rc)
		fprintf(stderr, "coffer dev: the CLI's deployer key is enrolled (admin of every app of '%s')\n", DEV_ORG);
out:
	secret_free(token);
	buf_release(&b);
	return rc;
}

/* Restarts a role that died, unless it keeps dying. */
static enum coffer_err reap(struct dev *d, pid_t pid, int status)
{
	struct role *roles[DEV_AGENTS_MAX + 2] = { &d->keeper, &d->api };
	size_t n = 2;
	for (int i = 0; i < d->n_agents; i++)
		roles[n++] = &d->agents[i].r;
	for (size_t i = 0; i < n; i++) {
		struct role *r = roles[i];
		if (r->pid != pid)
			continue;
		r->pid = 0;
		if (WIFSIGNALED(status))
			fprintf(stderr, "coffer dev: %s died of signal %d\n", r->name, WTERMSIG(status));
		else
			fprintf(stderr, "coffer dev: %s exited with status %d\n", r->name, WEXITSTATUS(status));
		time_t now = time(NULL);
		if (now - r->window_start > 60) {
			r->window_start = now;
			r->restarts = 0;
		}
		if (++r->restarts > ROLE_RESTARTS_MAX) {
			fprintf(stderr, "coffer dev: %s keeps failing; stopping\n", r->name);
			return COFFER_ERR_UNAVAILABLE;
		}
		sleep_ms(200L * r->restarts);
		if (i >= 2)
			return agent_start(d, &d->agents[i - 2]);
		return role_start(d, r);
	}
	return COFFER_OK;
}

int cmd_dev(int argc, char **argv)
{
	const char *api_addr = DEV_API_ADDR, *keeper_addr = DEV_KEEPER_ADDR, *dir = NULL, *agents = NULL;
	int help = 0, n_pos = 0, r;
	char why[OPTS_WHY_SIZE];
	static struct dev d; /* large; one per process */
	const struct opts_spec specs[] = { { "state-dir", 0, OPTS_VALUE, &dir },
					   { "api-addr", 0, OPTS_VALUE, &api_addr },
					   { "keeper-addr", 0, OPTS_VALUE, &keeper_addr },
					   { "agents", 0, OPTS_VALUE, &agents },
					   { "verbose", 'v', OPTS_FLAG, &d.verbose },
					   { "help", 'h', OPTS_HELP, &help },
					   { NULL, 0, OPTS_FLAG, NULL } };
	d.keeper.name = "keeper";
	d.api.name = "api";
	uint64_t n_agents = DEV_AGENTS_DEFAULT;
	r = opts_parse(specs, argc, argv, 1, &n_pos, why);
	if (r > 0) {
		printf("usage: coffer %s\n", opts_usage_of("dev"));
		return 0;
	}
	if (r < 0)
		return opts_fail(COFFER_ERR_USAGE, "%s; see 'coffer help dev'", why);
	if (n_pos)
		return opts_usage("dev");
	if (agents && parse_uint64(agents, DEV_AGENTS_MAX, &n_agents))
		return opts_fail(COFFER_ERR_USAGE, "--agents must be a number from 0 to %d", DEV_AGENTS_MAX);
	if (dir ? str_copy(d.dir, sizeof(d.dir), dir) != COFFER_OK : default_state_dir(d.dir) != 0)
		return opts_fail(COFFER_ERR_USAGE, "no state folder: give --state-dir DIR");
	if (str_copy(d.api.listen, sizeof(d.api.listen), api_addr) ||
	    str_copy(d.keeper.listen, sizeof(d.keeper.listen), keeper_addr))
		return opts_fail(COFFER_ERR_USAGE, "address too long");
	ssize_t n = readlink("/proc/self/exe", d.self, sizeof(d.self) - 1);
	if (n <= 0)
		return opts_fail(COFFER_ERR_IO, "cannot find the coffer binary");
	d.self[n] = '\0';

	char keeper_dir[PATH_SIZE], run_dir[PATH_SIZE];
	if (path_in(keeper_dir, d.dir, "keeper") ||
	    path_in(run_dir, d.dir, "run") || path_in(d.keeper.ready, run_dir, "keeper.ready") ||
	    path_in(d.api.ready, run_dir, "api.ready") ||
	    fmt_into(d.store_url, sizeof(d.store_url), "sqlite:%s/coffer.db", d.dir))
		return opts_fail(COFFER_ERR_USAGE, "state folder path too long");
	if (fs_mkdir_p(d.dir, 0700) || fs_mkdir_p(run_dir, 0700) || path_in(d.logs, d.dir, "logs") ||
	    fs_mkdir_p(d.logs, 0700))
		return opts_fail(COFFER_ERR_IO, "cannot create the state folder '%s'", d.dir);
	/*
	 * The CLI's config: COFFER_CONFIG if set; for another state folder than
	 * the default, one inside it (a second dev must not take over the
	 * first's), named in DIR/env; else the CLI's default.
	 */
	const char *config_env = getenv("COFFER_CONFIG");
	if ((!config_env || !*config_env) && dir &&
	    (path_in(d.config, d.dir, "cli-config.json") || setenv("COFFER_CONFIG", d.config, 1)))
		return opts_fail(COFFER_ERR_USAGE, "state folder path too long");
	if (cli_config_path(d.config, sizeof(d.config)))
		return opts_fail(COFFER_ERR_USAGE, "no place for the CLI's config: set COFFER_CONFIG or HOME");
	if (geteuid() == 0 && n_agents > 0) {
		/*
		 * A root agent runs its machines as another user ("nobody"), who must
		 * pass through DIR and DIR/agents to reach a work dir: search only
		 * (0711), never list. Everything else in DIR is 0600 or 0700.
		 */
		char agents_dir[PATH_SIZE];
		if (path_in(agents_dir, d.dir, "agents") || fs_mkdir_p(agents_dir, 0711) ||
		    chmod(d.dir, 0711) || chmod(agents_dir, 0711))
			return opts_fail(COFFER_ERR_IO, "cannot make the state folder '%s' searchable by the machines' user",
					d.dir);
	}
	d.n_agents = (int)n_agents;
	for (int i = 0; i < d.n_agents; i++) {
		struct agent *a = &d.agents[i];
		a->r.name = "agent";
		if (fmt_into(a->dir, sizeof(a->dir), "%s/agents/%d", d.dir, i + 1) ||
		    fmt_into(a->r.ready, sizeof(a->r.ready), "%s/agent-%d.ready", run_dir, i + 1) ||
		    fmt_into(a->host_name, sizeof(a->host_name), "dev-%d", i + 1))
			return opts_fail(COFFER_ERR_USAGE, "state folder path too long");
	}

	/* SIGCHLD, SIGINT and SIGTERM are taken with sigtimedwait below (and a
	 * shell that started us in the background may have ignored SIGINT). */
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);

	{
		/* every start: init keeps an existing master key and adds a derived file that is missing */
		char *init[] = { "coffer", "keeper", "init", "--state-dir", keeper_dir, NULL };
		if (run_capture(&d, init, NULL) != 0)
			return opts_fail(COFFER_ERR_INTERNAL, "'coffer keeper init' failed");
	}
	fprintf(stderr, "coffer dev: state in %s, store %s\n", d.dir, d.store_url);

	int exit_code = 0;
	struct secret *token = NULL;
	enum coffer_err rc = tls_setup(&d);
	if (rc) {
		exit_code = opts_fail(rc, "cannot make the TLS certificates in '%s/tls': %s", d.dir, coffer_strerror(rc));
		goto out;
	}
	rc = role_start(&d, &d.keeper);
	if (!rc)
		rc = role_start(&d, &d.api);
	if (!rc)
		rc = admin_token(&d, &token);
	for (int i = 0; !rc && i < d.n_agents; i++)
		rc = agent_start(&d, &d.agents[i]);
	if (!rc)
		rc = dev_deployer(&d);
	if (!rc)
		rc = publish(&d, token);
	secret_free(token);
	if (rc) {
		exit_code = opts_fail(rc, "coffer dev could not start: %s", coffer_strerror(rc));
		goto out;
	}
	for (;;) {
		siginfo_t si;
		struct timespec tick = { 1, 0 };
		int sig = sigtimedwait(&set, &si, &tick);
		if (sig == SIGINT || sig == SIGTERM) {
			fprintf(stderr, "coffer dev: stopping\n");
			break;
		}
		pid_t pid;
		int status;
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			rc = reap(&d, pid, status);
			if (rc) {
				exit_code = coffer_err_exit_code(rc);
				goto out;
			}
		}
	}
out:
	stop_all(&d);
	return exit_code;
}
