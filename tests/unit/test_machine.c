/*
 * Unit tests of src/agent/machine.c with real child processes: the exact
 * environment, the delivery modes (through a table of this file's own: env
 * and two test modes), the process layout (session, group, cwd, fds,
 * signals, user), exit reports, failures to start, stop with SIGTERM then
 * SIGKILL, log capture and rotation, the masked tail, and the restart
 * backoff.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "buf.h"
#include "deliver.h"
#include "machine.h"
#include "secret.h"

#define PATH_SIZE 512
#define WAIT_FILE_MS 5000

struct fixture {
	char root[PATH_SIZE];
	char work[PATH_SIZE];
	char logs[PATH_SIZE];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	snprintf(f->root, sizeof(f->root), "/tmp/coffer-machine-XXXXXX");
	if (!mkdtemp(f->root))
		return -1;
	/* The machine's user (nobody, when the tests run as root) must reach its work dir. */
	if (chmod(f->root, 0755))
		return -1;
	if (fmt_into(f->work, sizeof(f->work), "%s/machines/m-1/work", f->root) ||
	    fmt_into(f->logs, sizeof(f->logs), "%s/machines/m-1/logs", f->root))
		return -1;
	*state = f;
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	nftw(f->root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void spec_init(struct machine_spec *spec, const struct fixture *f, const char *const *argv)
{
	memset(spec, 0, sizeof(*spec));
	spec->app = "app1";
	spec->machine_id = "m-1";
	spec->release_version = 7;
	spec->argv = argv;
	spec->work_dir = f->work;
	spec->log_dir = f->logs;
}

static struct secret *sec(const char *s)
{
	struct secret *out = NULL;
	assert_int_equal(secret_from(s, strlen(s), &out), COFFER_OK);
	return out;
}

static int64_t clock_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pause_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

/* The whole file, NUL-terminated (binary safe through *len); NULL when absent. */
static char *slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return NULL;
	size_t cap = 4096, n = 0;
	char *p = malloc(cap);
	assert_non_null(p);
	size_t r;
	while ((r = fread(p + n, 1, cap - n - 1, fp)) > 0) {
		n += r;
		if (cap - n - 1 == 0) {
			cap *= 2;
			p = realloc(p, cap);
			assert_non_null(p);
		}
	}
	fclose(fp);
	p[n] = '\0';
	if (len)
		*len = n;
	return p;
}

static void file_in(char *dst, const char *dir, const char *name)
{
	assert_int_equal(fmt_into(dst, PATH_SIZE, "%s/%s", dir, name), COFFER_OK);
}

static void assert_file(const char *dir, const char *name, const char *want)
{
	char path[PATH_SIZE];
	file_in(path, dir, name);
	size_t len;
	char *got = slurp(path, &len);
	assert_non_null(got);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(got, want, len);
	free(got);
}

/* Waits for a file the machine writes, and reads it. */
static char *wait_file(const char *dir, const char *name)
{
	char path[PATH_SIZE];
	file_in(path, dir, name);
	for (int64_t end = clock_ms() + WAIT_FILE_MS; clock_ms() < end; pause_ms(10)) {
		size_t len;
		char *p = slurp(path, &len);
		if (p && len && p[len - 1] == '\n')
			return p;
		free(p);
	}
	fail_msg("%s never appeared", path);
	return NULL;
}

/* Fields of /proc/PID/stat: the state, the process group and the session. */
static int proc_stat(pid_t pid, char *st, long *pgrp, long *sid)
{
	char path[PATH_SIZE];
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	char *text = slurp(path, NULL);
	if (!text)
		return -1;
	char *p = strrchr(text, ')');
	long ppid;
	int n = p ? sscanf(p + 1, " %c %ld %ld %ld", st, &ppid, pgrp, sid) : 0;
	free(text);
	return n == 4 ? 0 : -1;
}

/* 1 once pid is gone or a zombie (PID 1 here may not reap orphans), within 3 s. */
static int proc_gone(pid_t pid)
{
	for (int i = 0; i < 300; i++, pause_ms(10)) {
		char st;
		long pgrp, sid;
		if (proc_stat(pid, &st, &pgrp, &sid) || st == 'Z')
			return 1;
	}
	return 0;
}

/* The value after "Key:" in /proc/PID/status, tabs kept. */
static void proc_status(pid_t pid, const char *key, char *out, size_t size)
{
	char path[PATH_SIZE];
	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	char *text = slurp(path, NULL);
	assert_non_null(text);
	char *line = text;
	out[0] = '\0';
	while (line && *line) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		size_t klen = strlen(key);
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			snprintf(out, size, "%s", line + klen + 1);
			break;
		}
		line = nl ? nl + 1 : NULL;
	}
	free(text);
}

static void stop_machine(struct machine *m)
{
	struct machine_exit ex;
	assert_int_equal(machine_stop(m, 2000, &ex), COFFER_OK);
	assert_int_equal(ex.running, 0);
	machine_free(m);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The environment the machine was exec-ed with: NUL-separated entries, split in place. */
static char *proc_environ(pid_t pid, char **entries, size_t max, size_t *n)
{
	char path[PATH_SIZE];
	snprintf(path, sizeof(path), "/proc/%ld/environ", (long)pid);
	size_t len;
	char *raw = slurp(path, &len);
	/* machine_start returns once exec is past its point of no return; the
	 * kernel sets the new image's environment a moment later */
	for (int tries = 0; raw && len == 0 && tries < 5000; tries++) {
		free(raw);
		usleep(1000);
		raw = slurp(path, &len);
	}
	assert_non_null(raw);
	*n = 0;
	for (size_t i = 0; i < len; i += strlen(raw + i) + 1) {
		assert_true(*n < max);
		entries[(*n)++] = raw + i;
	}
	return raw;
}

/* ---- a test delivery mode, through the table ---- */

#define PROBE_FILE "probe.out"
#define PROBE_ITEMS_MAX 8

/*
 * "probe" writes NAME=value lines of its items into PROBE_FILE in the work
 * dir from the child (before the drop), puts PROBE_ITEMS=<count> in the
 * environment, and removes the file at cleanup. "refuse" refuses every
 * start. What they saw is kept here (the child's copy is its own).
 */
static struct {
	int prepared, cleaned;
	size_t n;
	char names[PROBE_ITEMS_MAX][32];
	const char *targets[PROBE_ITEMS_MAX];
	unsigned perms[PROBE_ITEMS_MAX];
	int drop;
	int fail_child; /* an errno for apply_in_child to return */
} probe;

struct probe_state {
	char count[16];
	char path[PATH_SIZE];
};

static void probe_reset(void)
{
	memset(&probe, 0, sizeof(probe));
}

/* The spec's secrets and their deliveries, and a fresh record of the test modes. */
static void spec_deliver(struct machine_spec *spec, const struct machine_secret *secrets, size_t n_secrets,
			 const struct machine_delivery *to, size_t n_to)
{
	spec->secrets = secrets;
	spec->n_secrets = n_secrets;
	spec->deliveries = to;
	spec->n_deliveries = n_to;
	probe_reset();
}

static enum coffer_err probe_prepare(const struct deliver_ctx *ctx, const struct deliver_item *items, size_t n,
				     struct deliver_prep *out, struct machine_error *err)
{
	(void)err;
	struct probe_state *st = calloc(1, sizeof(*st));
	struct buf text;
	struct secret *child = NULL;
	assert_non_null(st);
	assert_true(n <= PROBE_ITEMS_MAX);
	buf_init_wiping(&text, BUF_MAX_DEFAULT);
	for (size_t i = 0; i < n; i++) {
		snprintf(probe.names[i], sizeof(probe.names[i]), "%s", items[i].name);
		probe.targets[i] = items[i].target;
		probe.perms[i] = items[i].perm;
		assert_int_equal(buf_addf(&text, "%s=", items[i].name), COFFER_OK);
		assert_int_equal(buf_add(&text, secret_cbytes(items[i].value), secret_len(items[i].value)), COFFER_OK);
		assert_int_equal(buf_adds(&text, "\n"), COFFER_OK);
	}
	assert_int_equal(secret_from(text.ptr, text.len, &child), COFFER_OK);
	buf_release(&text);
	snprintf(st->count, sizeof(st->count), "%zu", n);
	file_in(st->path, ctx->spec->work_dir, PROBE_FILE);
	assert_int_equal(deliver_env_put(ctx->env, "PROBE_ITEMS", st->count, strlen(st->count)), COFFER_OK);
	assert_int_equal(deliver_env_put(ctx->env, "COFFER_APP_NAME", "probe", 5), COFFER_OK); /* dropped */
	probe.n = n;
	probe.drop = ctx->drop;
	probe.prepared++;
	*out = (struct deliver_prep){ .state = st, .child = child };
	return COFFER_OK;
}

/* Async-signal-safe: open, write, close. */
static int probe_apply(const struct deliver_prep *prep)
{
	if (probe.fail_child)
		return probe.fail_child;
	int fd = open(PROBE_FILE, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return errno;
	const unsigned char *p = secret_cbytes(prep->child);
	size_t left = secret_len(prep->child);
	while (left) {
		ssize_t w = write(fd, p, left);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int e = w < 0 ? errno : EIO;
			close(fd);
			return e;
		}
		p += w;
		left -= (size_t)w;
	}
	return close(fd) ? errno : 0;
}

static void probe_cleanup(void *state)
{
	struct probe_state *st = state;
	unlink(st->path);
	free(st);
	probe.cleaned++;
}

static enum coffer_err refuse_prepare(const struct deliver_ctx *ctx, const struct deliver_item *items, size_t n,
				      struct deliver_prep *out, struct machine_error *err)
{
	(void)ctx;
	(void)items;
	(void)n;
	(void)out;
	machine_error_set(err, "refused by the test mode", NULL, 0);
	return COFFER_ERR_INVALID;
}

static const struct deliver_mode probe_mode = {
	.name = "probe",
	.prepare = probe_prepare,
	.apply_in_child = probe_apply,
	.cleanup = probe_cleanup,
};

static const struct deliver_mode refuse_mode = {
	.name = "refuse",
	.prepare = refuse_prepare,
};

/* This program's table (deliver_modes.c is not linked): the real env mode and the two above. */
const struct deliver_mode *const deliver_modes[] = { &deliver_env, &probe_mode, &refuse_mode, NULL };

/* ---- the environment ---- */

static void test_env_exact(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(setenv("COFFER_TEST_MARKER", "parent-only", 1), 0);
	const char *argv[] = { "sleep", "30", NULL };
	struct machine_env env[] = {
		{ "FOO", "bar" },     { "SHARED", "from-env" }, { "COFFER_APP_NAME", "evil" },
		{ "COFFER_EXTRA", "x" }, { "FOO", "bar2" },     { "LANG", "en_GB.UTF-8" },
	};
	struct secret *v_shared = sec("from-secret"), *v_multi = sec("a\nb c=d"), *v_id = sec("evil"),
		      *v_empty = sec("");
	struct machine_secret secrets[] = {
		{ "SHARED", v_shared }, { "MULTI", v_multi }, { "COFFER_MACHINE_ID", v_id }, { "EMPTY", v_empty },
	};
	struct machine_spec spec;
	spec_init(&spec, f, argv);
	spec.env = env;
	spec.n_env = sizeof(env) / sizeof(env[0]);
	spec.secrets = secrets;
	spec.n_secrets = sizeof(secrets) / sizeof(secrets[0]);

	struct machine *m = NULL;
	struct machine_error err;
	assert_int_equal(machine_start(&spec, &m, &err), COFFER_OK);
	assert_non_null(m);

	/* The environment the machine was exec-ed with, exactly. */
	char *got[32];
	size_t n;
	char *raw = proc_environ(machine_pid(m), got, 32, &n);
	char home[PATH_SIZE + 8];
	snprintf(home, sizeof(home), "HOME=%s", f->work);
	char *want[] = {
		"PATH=/usr/local/bin:/usr/bin:/bin",
		home,
		"LANG=en_GB.UTF-8",
		"FOO=bar2",
		"SHARED=from-secret",
		"MULTI=a\nb c=d",
		"EMPTY=",
		"COFFER_APP_NAME=app1",
		"COFFER_MACHINE_ID=m-1",
		"COFFER_RELEASE_VERSION=7",
	};
	size_t n_want = sizeof(want) / sizeof(want[0]);
	assert_int_equal(n, n_want);
	qsort(got, n, sizeof(char *), cmp_str);
	qsort(want, n_want, sizeof(char *), cmp_str);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(got[i], want[i]);
	for (size_t i = 0; i < n; i++)
		assert_null(strstr(got[i], "COFFER_TEST_MARKER"));
	free(raw);
	stop_machine(m);
	secret_free(v_shared);
	secret_free(v_multi);
	secret_free(v_id);
	secret_free(v_empty);
	unsetenv("COFFER_TEST_MARKER");
}

#define SCAN_KEY 0x5a
#define SCAN_CHUNK ((size_t)1 << 20)
#define SCAN_REGION_MAX ((size_t)256 << 20)

/*
 * 1 if the XOR-ed needle (SCAN_KEY) occurs anywhere in this process's
 * readable memory, but in the pages at `skip` (skip_len bytes) where the
 * scan keeps its own state.
 */
static int memory_holds(const unsigned char *xneedle, size_t nlen, const void *skip, size_t skip_len)
{
	unsigned char *scratch = mmap(NULL, SCAN_CHUNK + nlen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
				      -1, 0);
	assert_true(scratch != MAP_FAILED);
	int mem = open("/proc/self/mem", O_RDONLY);
	assert_true(mem >= 0);
	FILE *maps = fopen("/proc/self/maps", "r");
	assert_non_null(maps);
	char line[PATH_SIZE];
	int found = 0;
	uintptr_t s0 = (uintptr_t)skip, s1 = s0 + skip_len, c0 = (uintptr_t)scratch, c1 = c0 + SCAN_CHUNK + nlen;
	while (!found && fgets(line, sizeof(line), maps)) {
		unsigned long lo, hi;
		char perms[8];
		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 || perms[0] != 'r')
			continue;
		if (hi - lo > SCAN_REGION_MAX || strstr(line, "[vvar") || strstr(line, "[vsyscall]"))
			continue;
		if ((lo < s1 && hi > s0) || (lo < c1 && hi > c0))
			continue;
		for (unsigned long at = lo; at < hi && !found; at += SCAN_CHUNK) {
			size_t want = hi - at < SCAN_CHUNK + nlen ? hi - at : SCAN_CHUNK + nlen;
			ssize_t r = pread(mem, scratch, want, (off_t)at);
			if (r <= 0)
				break;
			for (ssize_t i = 0; i < r; i++)
				scratch[i] ^= SCAN_KEY;
			if (memmem(scratch, (size_t)r, xneedle, nlen))
				found = 1;
		}
	}
	fclose(maps);
	close(mem);
	sodium_memzero(scratch, SCAN_CHUNK + nlen);
	munmap(scratch, SCAN_CHUNK + nlen);
	return found;
}

/* After machine_start, and once the caller has wiped its own copy, no byte of the process holds the value. */
static void test_parent_keeps_no_copy(void **state)
{
	struct fixture *f = *state;
	enum { RAW = 24, HEX = 2 * RAW };
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	unsigned char *xneedle = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(xneedle != MAP_FAILED);
	unsigned char raw[RAW];
	char hex[HEX + 1];
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(hex, sizeof(hex), raw, sizeof(raw));
	struct secret *value = NULL;
	assert_int_equal(secret_from(hex, HEX, &value), COFFER_OK);
	for (size_t i = 0; i < HEX; i++)
		xneedle[i] = (unsigned char)hex[i] ^ SCAN_KEY;
	sodium_memzero(raw, sizeof(raw));
	sodium_memzero(hex, sizeof(hex));

	/* The scan itself works: it finds the value while the secret still holds it. */
	assert_true(memory_holds(xneedle, HEX, xneedle, page));

	/* Through the environment and a mode's child block both. */
	struct machine_secret secrets[] = { { "CANARY", value } };
	struct machine_delivery to[] = { { "CANARY", "env", NULL, 0 }, { "CANARY", "probe", NULL, 0 } };
	const char *argv[] = { "/bin/sh", "-c", "echo started; sleep 30", NULL };
	struct machine_spec spec;
	spec_init(&spec, f, argv);
	spec_deliver(&spec, secrets, 1, to, 2);
	struct machine *m = NULL;
	assert_int_equal(machine_start(&spec, &m, NULL), COFFER_OK);
	assert_int_equal(probe.prepared, 1);
	secret_free(value);
	assert_false(memory_holds(xneedle, HEX, xneedle, page));
	stop_machine(m);
	munmap(xneedle, page);
}

/* Fifty secrets, each exactly as given, and nothing else added. */
static void test_env_many_secrets(void **state)
{
	struct fixture *f = *state;
	enum { N = 50 };
	char names[N][8], want[N][32];
	struct secret *vals[N];
	struct machine_secret secrets[N];
	for (int i = 0; i < N; i++) {
		snprintf(names[i], sizeof(names[i]), "S%02d", i);
		snprintf(want[i], sizeof(want[i]), "S%02d=value-%02d-%d", i, i, i * 7);
		vals[i] = sec(want[i] + 4);
		secrets[i] = (struct machine_secret){ names[i], vals[i] };
	}
	const char *argv[] = { "sleep", "30", NULL };
	struct machine_spec spec;
	spec_init(&spec, f, argv);
	spec.secrets = secrets;
	spec.n_secrets = N;
	struct machine *m = NULL;
	assert_int_equal(machine_start(&spec, &m, NULL), COFFER_OK);
	char *got[64];
	size_t n;
	char *raw = proc_environ(machine_pid(m), got, 64, &n);
	assert_int_equal(n, 3 + N + 3);
	for (int i = 0; i < N; i++) {
		size_t k = 0;
		while (k < n && strcmp(got[k], want[i]) != 0)
			k++;
		assert_true(k < n);
	}
	free(raw);
	stop_machine(m);
	for (int i = 0; i < N; i++)
		secret_free(vals[i]);
}

static void test_invalid_spec(void **state)
{
	struct fixture *f = *state;
	const char *argv[] = { "true", NULL };
	const char *no_argv[] = { NULL };
	struct machine_spec spec;
	struct machine *m = NULL;
	struct machine_error err;

	struct machine_env bad_names[][1] = { { { "1BAD", "x" } }, { { "A-B", "x" } }, { { "", "x" } } };
	for (size_t i = 0; i < 3; i++) {
		spec_init(&spec, f, argv);
		spec.env = bad_names[i];
		spec.n_env = 1;
		assert_int_equal(machine_start(&spec, &m, &err), COFFER_ERR_INVALID);
		assert_memory_equal(err.message, "invalid --env name", 18);
		assert_null(m);
	}

	struct secret *nul = NULL;
	assert_int_equal(secret_from("qz7\0qz7", 7, &nul), COFFER_OK);
	struct machine_secret s = { "WITH_NUL", nul };
	spec_init(&spec, f, argv);
	spec.secrets = &s;
	spec.n_secrets = 1;
	assert_int_equal(machine_start(&spec, &m, &err), COFFER_ERR_INVALID);
	assert_string_equal(err.message, "a NUL byte in the value of secret \"WITH_NUL\"");
	secret_free(nul);

	spec_init(&spec, f, no_argv);
	assert_int_equal(machine_start(&spec, &m, &err), COFFER_ERR_INVALID);
	spec_init(&spec, f, argv);
	spec.work_dir = "relative/work";
	assert_int_equal(machine_start(&spec, &m, &err), COFFER_ERR_INVALID);
	spec_init(&spec, f, argv);
	spec.log_files = MACHINE_LOG_FILES_MAX + 1;
	assert_int_equal(machine_start(&spec, &m, &err), COFFER_ERR_INVALID);
	assert_null(m);
}

/* ---- delivery modes ---- */

/* "NAME=" entries of the machine's environment, joined by spaces, for NAME in names. */
static void env_of(pid_t pid, const char *const *names, char *out, size_t size)
{
	char *got[64];
	size_t n;
	char *raw = proc_environ(pid, got, 64, &n);
	out[0] = '\0';
	for (size_t k = 0; names[k]; k++) {
		size_t len = strlen(names[k]);
		for (size_t i = 0; i < n; i++) {
			if (strncmp(got[i], names[k], len) == 0 && got[i][len] == '=') {
				size_t at = strlen(out);
				snprintf(out + at, size - at, "%s%s", at ? " " : "", got[i]);
			}
		}
	}
	free(raw);
}

/* Secrets go where their deliveries say, through the table; cleanup runs once, when the machine stops. */
static void test_deliver_routes(void **state)
{
	struct fixture *f = *state;
	struct secret *a = sec("alpha"), *b = sec("bravo"), *c = sec("charlie");
	struct machine_secret secrets[] = { { "A", a }, { "B", b }, { "C", c } };
	struct machine_delivery to[] = {
		{ "C", NULL, NULL, 0 }, /* the default mode: env */
		{ "B", "probe", "certs/b.pem", 0400 },
		{ "C", "probe", NULL, 0 },
	};
	const char *argv[] = { "sleep", "30", NULL };
	struct machine_spec spec;
	spec_init(&spec, f, argv);
	spec_deliver(&spec, secrets, 3, to, 3);
	struct machine *m = NULL;
	assert_int_equal(machine_start(&spec, &m, NULL), COFFER_OK);

	/* A (named by no delivery) and C in the environment; B, delivered only to the probe, not. */
	const char *names[] = { "A", "B", "C", "PROBE_ITEMS", "COFFER_APP_NAME", NULL };
	char env[512];
	env_of(machine_pid(m), names, env, sizeof(env));
	assert_string_equal(env, "A=alpha C=charlie PROBE_ITEMS=2 COFFER_APP_NAME=app1");

	/* The probe got B and C with their targets, and wrote them from the child before the drop. */
	assert_int_equal(probe.prepared, 1);
	assert_int_equal(probe.n, 2);
	assert_string_equal(probe.names[0], "B");
	assert_string_equal(probe.targets[0], "certs/b.pem");
	assert_int_equal(probe.perms[0], 0400);
	assert_string_equal(probe.names[1], "C");
	assert_null(probe.targets[1]);
	assert_int_equal(probe.drop, geteuid() == 0);
	char *got = wait_file(f->work, PROBE_FILE);
	assert_string_equal(got, "B=bravo\nC=charlie\n");
	free(got);
	char path[PATH_SIZE];
	file_in(path, f->work, PROBE_FILE);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_uid, geteuid());

	/* Cleanup: not while it runs; once it has stopped; not again at machine_free. */
	assert_int_equal(probe.cleaned, 0);
	struct machine_exit ex;
	assert_int_equal(machine_stop(m, 2000, &ex), COFFER_OK);
	assert_int_equal(probe.cleaned, 1);
	assert_int_equal(stat(path, &st), -1);
	machine_free(m);
	assert_int_equal(probe.cleaned, 1);

	/* No delivery to the probe: it is not asked to prepare, nor to clean up. */
	spec.n_deliveries = 1;
	probe_reset();
	assert_int_equal(machine_start(&spec, &m, NULL), COFFER_OK);
	stop_machine(m);
	assert_int_equal(probe.prepared, 0);
	assert_int_equal(probe.cleaned, 0);

	secret_free(a);
	secret_free(b);
	secret_free(c);
}

/* A machine that ends by itself, or is freed running, is cleaned up too. */
static void test_deliver_cleanup_at_end(void **state)
{
	struct fixture *f = *state;
	struct secret *v = sec("victor");
	struct machine_secret secrets[] = { { "V", v } };
	struct machine_delivery to[] = { { "V", "probe", NULL, 0 } };
	struct machine_spec spec;
	struct machine *m = NULL;
	struct machine_exit ex;

	const char *exits[] = { "/bin/sh", "-c", "exit 0", NULL };
	spec_init(&spec, f, exits);
	spec_deliver(&spec, secrets, 1, to, 1);
	assert_int_equal(machine_start(&spec, &m, NULL), COFFER_OK);
	assert_int_equal(machine_wait(m, -1, &ex), COFFER_OK);
	assert_int_equal(ex.code, 0);
	assert_int_equal(probe.cleaned, 1);
	machine_free(m);
	assert_int_equal(probe.cleaned, 1);

	const char *sleeper[] = { "sleep", "30", NULL };
	spec.argv = sleeper;
	probe_reset();
	assert_int_equal(machine_start(&spec, &m, NULL), COFFER_OK);
	pid_t pid = machine_pid(m);
	machine_free(m);
	assert_int_equal(probe.cleaned, 1);
	assert_true(proc_gone(pid));
	secret_free(v);
}

/* Every way a start fails after the modes prepared cleans them up; a refused spec prepares nothing. */
static void test_deliver_failed_start(void **state)
{
	struct fixture *f = *state;
	struct secret *v = sec("victor");
	struct machine_secret secrets[] = { { "V", v } };
	struct machine_delivery to[] = { { "V", "probe", NULL, 0 }, { "V", "refuse", NULL, 0 } };
	struct machine_spec spec;
	struct machine *m = NULL;
	struct machine_error err;
	char path[PATH_SIZE];
	struct stat st;
	file_in(path, f->work, PROBE_FILE);

	/* exec fails after the probe wrote its file in the child: removed at cleanup */
	const char *missing[] = { "no-such-command-coffer", NULL };
	spec_init(&spec, f, missing);
	spec_deliver(&spec, secrets, 1, to, 1);
	assert_int_equal(machine_start(&spec, &m, &err), COFFER_ERR_NOT_FOUND);
	assert_null(m);
	assert_string_equal(err.message, "cannot run \"no-such-command-coffer\": No such file or directory");
	assert_int_equal(probe.prepared, 1);
	assert_int_equal(probe.cleaned, 1);
	assert_int_equal(stat(path, &st), -1);

	/* the mode fails in the child */
	const char *sleeper[] = { "sleep", "30", NULL };
	spec.argv = sleeper;
	probe_reset();
	probe.fail_child = EDQUOT;
	assert_int_equal(machine_start(&spec, &m, &err), COFFER_ERR_IO);
	assert_null(m);
	assert_string_equal(err.message, "cannot deliver the secrets \"probe\": Disk quota exceeded");
	assert_int_equal(probe.cleaned, 1);

	/* a later mode refuses: the earlier one is cleaned up */
	spec.n_deliveries = 2;
	probe_reset();
	assert_int_equal(machine_start(&spec, &m, &err), COFFER_ERR_INVALID);
	assert_null(m);
	assert_string_equal(err.message, "refused by the test mode");
	assert_int_equal(probe.prepared, 1);
	assert_int_equal(probe.cleaned, 1);

	/* refused before any mode prepares */
	struct machine_delivery unknown[] = { { "V", "probe", NULL, 0 }, { "V", "nope", NULL, 0 } };
	struct machine_delivery stray[] = { { "W", "probe", NULL, 0 } }, nameless[] = { { NULL, "probe", NULL, 0 } };
	struct machine_delivery env_target[] = { { "V", "env", "/run/v", 0 } };
	struct {
		const struct machine_delivery *to;
		size_t n;
		const char *message;
	} refused[] = {
		{ unknown, 2, "unknown delivery mode \"nope\"" },
		{ stray, 1, "a delivery of an unknown secret \"W\"" },
		{ nameless, 1, "a delivery of an unknown secret \"\"" },
		{ env_target, 1, "the environment takes no target or mode, secret \"V\"" },
	};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		spec.deliveries = refused[i].to;
		spec.n_deliveries = refused[i].n;
		probe_reset();
		assert_int_equal(machine_start(&spec, &m, &err), COFFER_ERR_INVALID);
		assert_null(m);
		assert_string_equal(err.message, refused[i].message);
		assert_int_equal(probe.prepared, 0);
		assert_int_equal(probe.cleaned, 0);
	}
	secret_free(v);
}

/* ---- the process ---- */

static void test_process_layout(void **state)
{
	struct fixture *f = *state;
	/* Things the machine must not inherit: an fd without close-on-exec, a blocked and an ignored signal. */
	int leak = open("/dev/null", O_RDONLY);
	assert_true(leak > 2);
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR2);
	assert_int_equal(sigprocmask(SIG_BLOCK, &block, &old), 0);
	void (*old_pipe)(int) = signal(SIGPIPE, SIG_IGN);

	const char *argv[] = { "sleep", "30", NULL };
	struct machine_spec spec;
	spec_init(&spec, f, argv);
	struct machine *m = NULL;
	assert_int_equal(machine_start(&spec, &m, NULL), COFFER_OK);
	pid_t pid = machine_pid(m);

	char st;
	long pgrp, sid;
	assert_int_equal(proc_stat(pid, &st, &pgrp, &sid), 0);
	assert_int_equal(pgrp, pid);
	assert_int_equal(sid, pid);
	assert_int_not_equal(pgrp, getpgrp());

	char path[PATH_SIZE], link[PATH_SIZE];
	snprintf(path, sizeof(path), "/proc/%ld/cwd", (long)pid);
	ssize_t r = readlink(path, link, sizeof(link) - 1);
	assert_true(r > 0);
	link[r] = '\0';
	assert_string_equal(link, f->work);

	/*
	 * Exactly fds 0, 1, 2: /dev/null, and one pipe for both outputs. Right
	 * after exec the new program's loader briefly holds its libraries open,
	 * so wait for the set to settle; a leaked fd never goes away.
	 */
	char extra[PATH_SIZE] = "";
	for (int tries = 0; tries < 200; tries++, pause_ms(10)) {
		extra[0] = '\0';
		snprintf(path, sizeof(path), "/proc/%ld/fd", (long)pid);
		DIR *d = opendir(path);
		assert_non_null(d);
		struct dirent *e;
		while ((e = readdir(d))) {
			if (e->d_name[0] == '.' || strcmp(e->d_name, "0") == 0 || strcmp(e->d_name, "1") == 0 ||
			    strcmp(e->d_name, "2") == 0)
				continue;
			char fdp[PATH_SIZE];
			file_in(fdp, path, e->d_name);
			ssize_t k = readlink(fdp, extra, sizeof(extra) - 1);
			extra[k > 0 ? k : 0] = '\0';
			if (!extra[0])
				snprintf(extra, sizeof(extra), "?");
		}
		closedir(d);
		if (!extra[0])
			break;
	}
	if (extra[0])
		fail_msg("the machine holds an fd besides 0, 1, 2: %s", extra);
	char l1[PATH_SIZE], l2[PATH_SIZE];
	snprintf(path, sizeof(path), "/proc/%ld/fd/0", (long)pid);
	r = readlink(path, link, sizeof(link) - 1);
	assert_true(r > 0);
	link[r] = '\0';
	assert_string_equal(link, "/dev/null");
	snprintf(path, sizeof(path), "/proc/%ld/fd/1", (long)pid);
	r = readlink(path, l1, sizeof(l1) - 1);
	assert_true(r > 0);
	l1[r] = '\0';
	snprintf(path, sizeof(path), "/proc/%ld/fd/2", (long)pid);
	r = readlink(path, l2, sizeof(l2) - 1);
	assert_true(r > 0);
	l2[r] = '\0';
	assert_string_equal(l1, l2);
	/* stdout and stderr are the machine's out.log itself: no reader the agent's end could take away */
	char want_log[PATH_SIZE];
	file_in(want_log, f->logs, "out.log");
	assert_string_equal(l1, want_log);
	snprintf(path, sizeof(path), "/proc/%ld/fdinfo/1", (long)pid);
	size_t info_len;
	char *info = slurp(path, &info_len);
	assert_non_null(info);
	char *flags = strstr(info, "flags:");
	assert_non_null(flags);
	assert_true(strtoul(flags + 6, NULL, 8) & O_APPEND);
	free(info);

	/*
	 * Nothing blocked or ignored, but for signals 32 and 33: the C library
	 * keeps them for itself and refuses to change them, so a mask or an
	 * ignore of those inherited from whoever started the agent (seen in CI)
	 * passes through exec unchanged.
	 */
	const unsigned long long libc_own = (1ULL << 31) | (1ULL << 32);
	char val[128];
	proc_status(pid, "SigBlk", val, sizeof(val));
	assert_int_equal(strtoull(val, NULL, 16) & ~libc_own, 0);
	proc_status(pid, "SigIgn", val, sizeof(val));
	assert_int_equal(strtoull(val, NULL, 16) & ~libc_own, 0);

	stop_machine(m);
	signal(SIGPIPE, old_pipe);
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(leak);
}

static void test_runs_unprivileged(void **state)
{
	struct fixture *f = *state;
	const char *argv[] = { "sleep", "30", NULL };
	struct machine_spec spec;
	spec_init(&spec, f, argv);
	struct machine *m = NULL;
	struct machine_error err;
	assert_int_equal(machine_start(&spec, &m, &err), COFFER_OK);
	pid_t pid = machine_pid(m);
	char uid[128], gid[128], groups[128];
	proc_status(pid, "Uid", uid, sizeof(uid));
	proc_status(pid, "Gid", gid, sizeof(gid));
	proc_status(pid, "Groups", groups, sizeof(groups));
	stop_machine(m);

	if (geteuid() != 0) {
		print_message("[ SKIPPED  ] not root: machines run as the agent's own user; checking that only\n");
		char want[128];
		snprintf(want, sizeof(want), "\t%u\t%u\t%u\t%u", getuid(), geteuid(), geteuid(), geteuid());
		assert_string_equal(uid, want);
		spec.user = "root";
		assert_int_equal(machine_start(&spec, &m, &err), COFFER_ERR_FORBIDDEN);
		return;
	}
	/* As root: nobody (65534), its group, no supplementary groups, and a work dir it owns. */
	assert_string_equal(uid, "\t65534\t65534\t65534\t65534");
	assert_string_equal(gid, "\t65534\t65534\t65534\t65534");
	assert_true(strspn(groups, " \t") == strlen(groups));
	struct stat st;
	assert_int_equal(stat(f->work, &st), 0);
	assert_int_equal(st.st_uid, 65534);
	assert_int_equal(st.st_mode & 0777, 0700);

	m = NULL;
	spec.user = "root";
	assert_int_equal(machine_start(&spec, &m, &err), COFFER_ERR_FORBIDDEN);
	assert_non_null(strstr(err.message, "never run as root"));
	spec.user = "no-such-user-coffer";
	assert_int_equal(machine_start(&spec, &m, &err), COFFER_ERR_NOT_FOUND);
	assert_null(m);
}

static void test_exit_status(void **state)
{
	struct fixture *f = *state;
	struct machine_spec spec;
	struct machine *m = NULL;
	struct machine_exit ex;

	const char *exit3[] = { "/bin/sh", "-c", "exit 3", NULL };
	spec_init(&spec, f, exit3);
	assert_int_equal(machine_start(&spec, &m, NULL), COFFER_OK);
	assert_int_equal(machine_wait(m, -1, &ex), COFFER_OK);
	assert_int_equal(ex.running, 0);
	assert_int_equal(ex.code, 3);
	assert_int_equal(ex.signal, 0);
	assert_true(ex.runtime_ms >= 0);
	/* Asking again gives the same answer. */
	assert_int_equal(machine_wait(m, 0, &ex), COFFER_OK);
	assert_int_equal(ex.code, 3);
	machine_free(m);

	const char *usr1[] = { "/bin/sh", "-c", "kill -USR1 $$; sleep 5", NULL };
	spec_init(&spec, f, usr1);
	assert_int_equal(machine_start(&spec, &m, NULL), COFFER_OK);
	assert_int_equal(machine_wait(m, 10000, &ex), COFFER_OK);
	assert_int_equal(ex.running, 0);
	assert_int_equal(ex.signal, SIGUSR1);
	machine_free(m);

	const char *sleeper[] = { "sleep", "30", NULL };
	spec_init(&spec, f, sleeper);
	assert_int_equal(machine_start(&spec, &m, NULL), COFFER_OK);
	assert_int_equal(machine_wait(m, 0, &ex), COFFER_OK);
	assert_int_equal(ex.running, 1);
	assert_int_equal(machine_wait(m, 50, &ex), COFFER_OK);
	assert_int_equal(ex.running, 1);
	stop_machine(m);
}

static void test_start_failure(void **state)
{
	struct fixture *f = *state;
	struct machine_spec spec;
	struct machine *m = NULL;
	struct machine_error err;

	const char *missing[] = { "no-such-command-coffer", NULL };
	spec_init(&spec, f, missing);
	assert_int_equal(machine_start(&spec, &m, &err), COFFER_ERR_NOT_FOUND);
	assert_null(m);
	assert_string_equal(err.message, "cannot run \"no-such-command-coffer\": No such file or directory");

	const char *absent[] = { "/nonexistent/prog", NULL };
	spec_init(&spec, f, absent);
	assert_int_equal(machine_start(&spec, &m, &err), COFFER_ERR_NOT_FOUND);
	assert_null(m);

	char script[PATH_SIZE];
	file_in(script, f->root, "not-executable");
	FILE *fp = fopen(script, "w");
	assert_non_null(fp);
	fputs("#!/bin/sh\nexit 0\n", fp);
	fclose(fp);
	assert_int_equal(chmod(script, 0644), 0);
	const char *noexec[] = { script, NULL };
	spec_init(&spec, f, noexec);
	assert_int_equal(machine_start(&spec, &m, &err), COFFER_ERR_FORBIDDEN);
	assert_non_null(strstr(err.message, "Permission denied"));
	assert_null(m);

	if (geteuid() == 0) {
		/* A work dir under a folder nobody cannot search: entered before the drop. */
		char locked[PATH_SIZE], work[PATH_SIZE], link[64], cwd[PATH_SIZE];
		file_in(locked, f->root, "locked");
		assert_int_equal(mkdir(locked, 0700), 0);
		file_in(work, locked, "work");
		const char *sleeper[] = { "sleep", "30", NULL };
		spec_init(&spec, f, sleeper);
		spec.work_dir = work;
		assert_int_equal(machine_start(&spec, &m, &err), COFFER_OK);
		snprintf(link, sizeof(link), "/proc/%d/cwd", (int)machine_pid(m));
		ssize_t n = readlink(link, cwd, sizeof(cwd) - 1);
		assert_true(n > 0);
		cwd[n] = '\0';
		assert_string_equal(cwd, work);
		struct machine_exit ex;
		assert_int_equal(machine_stop(m, 1000, &ex), COFFER_OK);
		machine_free(m);
		m = NULL;
	}
}

/* A bare command name is looked up in the machine's PATH, not the agent's. */
static void test_path_lookup(void **state)
{
	struct fixture *f = *state;
	char bin[PATH_SIZE], script[PATH_SIZE], path_var[2 * PATH_SIZE];
	file_in(bin, f->root, "bin");
	assert_int_equal(mkdir(bin, 0755), 0);
	file_in(script, bin, "hello-coffer");
	FILE *fp = fopen(script, "w");
	assert_non_null(fp);
	fputs("#!/bin/sh\necho hello from $0\n", fp);
	fclose(fp);
	assert_int_equal(chmod(script, 0755), 0);
	assert_int_equal(fmt_into(path_var, sizeof(path_var), "/nonexistent-coffer:%s", bin), COFFER_OK);
	struct machine_env env[] = { { "PATH", path_var } };

	const char *argv[] = { "hello-coffer", NULL };
	struct machine_spec spec;
	spec_init(&spec, f, argv);
	spec.env = env;
	spec.n_env = 1;
	struct machine *m = NULL;
	struct machine_exit ex;
	assert_int_equal(machine_start(&spec, &m, NULL), COFFER_OK);
	assert_int_equal(machine_wait(m, -1, &ex), COFFER_OK);
	assert_int_equal(ex.code, 0);
	machine_free(m);
	m = NULL;
	char want[2 * PATH_SIZE];
	assert_int_equal(fmt_into(want, sizeof(want), "hello from %s\n", script), COFFER_OK);
	assert_file(f->logs, "out.log", want);

	/* With that PATH, sleep (in /bin) is not found: the base PATH was replaced. */
	const char *sleeper[] = { "sleep", "1", NULL };
	spec.argv = sleeper;
	struct machine_error err;
	assert_int_equal(machine_start(&spec, &m, &err), COFFER_ERR_NOT_FOUND);
	assert_null(m);

	/* Without it, the base PATH does not reach the folder. */
	spec.env = NULL;
	spec.n_env = 0;
	spec.argv = argv;
	assert_int_equal(machine_start(&spec, &m, &err), COFFER_ERR_NOT_FOUND);
	assert_null(m);
}

/* ---- stop ---- */

static void test_stop_term(void **state)
{
	struct fixture *f = *state;
	const char *argv[] = { "/bin/sh", "-c", "sleep 30 & echo $! > gc.pid; wait", NULL };
	struct machine_spec spec;
	spec_init(&spec, f, argv);
	struct machine *m = NULL;
	assert_int_equal(machine_start(&spec, &m, NULL), COFFER_OK);
	char *gc = wait_file(f->work, "gc.pid");
	pid_t gpid = (pid_t)strtol(gc, NULL, 10);
	free(gc);
	char st;
	long pgrp, sid;
	assert_int_equal(proc_stat(gpid, &st, &pgrp, &sid), 0);
	assert_int_equal(pgrp, machine_pid(m)); /* the grandchild is in the machine's group */

	int64_t t0 = clock_ms();
	struct machine_exit ex;
	assert_int_equal(machine_stop(m, 5000, &ex), COFFER_OK);
	assert_true(clock_ms() - t0 < 4000);
	assert_int_equal(ex.signal, SIGTERM);
	assert_true(proc_gone(gpid));
	/* Stopping again just gives the exit. */
	assert_int_equal(machine_stop(m, 5000, &ex), COFFER_OK);
	assert_int_equal(ex.signal, SIGTERM);
	machine_free(m);
}

static void test_stop_kill(void **state)
{
	struct fixture *f = *state;
	const char *argv[] = { "/bin/sh", "-c",
			       "trap '' TERM; sleep 60 & echo $! > gc.pid; while :; do sleep 0.05; done", NULL };
	struct machine_spec spec;
	spec_init(&spec, f, argv);
	struct machine *m = NULL;
	assert_int_equal(machine_start(&spec, &m, NULL), COFFER_OK);
	char *gc = wait_file(f->work, "gc.pid");
	pid_t gpid = (pid_t)strtol(gc, NULL, 10);
	free(gc);

	int64_t t0 = clock_ms();
	struct machine_exit ex;
	assert_int_equal(machine_stop(m, 300, &ex), COFFER_OK);
	assert_true(clock_ms() - t0 >= 300);
	assert_int_equal(ex.running, 0);
	assert_int_equal(ex.signal, SIGKILL);
	assert_true(proc_gone(gpid));
	machine_free(m);
}

/* When the main process exits on its own, what it left in its group goes too. */
static void test_exit_kills_group(void **state)
{
	struct fixture *f = *state;
	const char *argv[] = { "/bin/sh", "-c", "sleep 60 & echo $! > gc.pid; sleep 0.2; exit 4", NULL };
	struct machine_spec spec;
	spec_init(&spec, f, argv);
	struct machine *m = NULL;
	assert_int_equal(machine_start(&spec, &m, NULL), COFFER_OK);
	struct machine_exit ex;
	assert_int_equal(machine_wait(m, -1, &ex), COFFER_OK);
	assert_int_equal(ex.code, 4);
	char *gc = wait_file(f->work, "gc.pid");
	pid_t gpid = (pid_t)strtol(gc, NULL, 10);
	free(gc);
	assert_true(proc_gone(gpid));
	machine_free(m);
}

/* machine_free of a running machine leaves nothing behind. */
static void test_free_kills(void **state)
{
	struct fixture *f = *state;
	const char *argv[] = { "/bin/sh", "-c", "sleep 60 & echo $! > gc.pid; wait", NULL };
	struct machine_spec spec;
	spec_init(&spec, f, argv);
	struct machine *m = NULL;
	assert_int_equal(machine_start(&spec, &m, NULL), COFFER_OK);
	char *gc = wait_file(f->work, "gc.pid");
	pid_t gpid = (pid_t)strtol(gc, NULL, 10);
	free(gc);
	pid_t pid = machine_pid(m);
	machine_free(m);
	assert_true(proc_gone(pid));
	assert_true(proc_gone(gpid));
}

/* ---- logs ---- */

static void test_log_capture(void **state)
{
	struct fixture *f = *state;
	const char *argv[] = { "/bin/sh", "-c", "echo out; echo err >&2; printf 'no newline'", NULL };
	struct machine_spec spec;
	spec_init(&spec, f, argv);
	struct machine *m = NULL;
	assert_int_equal(machine_start(&spec, &m, NULL), COFFER_OK);
	struct machine_exit ex;
	assert_int_equal(machine_wait(m, -1, &ex), COFFER_OK);
	assert_int_equal(ex.code, 0);
	assert_file(f->logs, "out.log", "out\nerr\nno newline");
	char path[PATH_SIZE];
	file_in(path, f->logs, "out.log");
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_uid, geteuid());
	machine_free(m);
}

static void run_to_end(const struct fixture *f, struct machine_spec *spec, struct machine **m)
{
	(void)f;
	struct machine_exit ex;
	assert_int_equal(machine_start(spec, m, NULL), COFFER_OK);
	assert_int_equal(machine_wait(*m, -1, &ex), COFFER_OK);
	assert_int_equal(ex.code, 0);
}

static void test_log_rotation(void **state)
{
	struct fixture *f = *state;
	const char *argv[] = { "/bin/sh", "-c",
			       "i=0; while [ $i -lt 60 ]; do printf 'line %02d\\n' $i; i=$((i+1)); done", NULL };
	struct machine_spec spec;
	spec_init(&spec, f, argv);
	spec.log_cap = 100;
	spec.log_files = 2;
	struct machine *m = NULL;
	run_to_end(f, &spec, &m);
	machine_free(m);

	char expect[60 * 8 + 1];
	for (int i = 0; i < 60; i++)
		snprintf(expect + i * 8, 9, "line %02d\n", i);
	char all[600] = "";
	size_t total = 0;
	/* the cap is kept at the end (and at every wait): the output went into files of at most the cap */
	const char *names[] = { "out.log.2", "out.log.1", "out.log" };
	for (int k = 0; k < 3; k++) {
		char path[PATH_SIZE];
		file_in(path, f->logs, names[k]);
		size_t len;
		char *p = slurp(path, &len);
		assert_non_null(p);
		assert_true(len <= 100);
		if (k < 2) {
			assert_true(len >= 100 - 8 + 1); /* rotated when the next line no longer fit */
			assert_int_equal(p[len - 1], '\n');
		}
		memcpy(all + total, p, len);
		total += len;
		free(p);
	}
	char path[PATH_SIZE];
	file_in(path, f->logs, "out.log.3");
	assert_int_equal(access(path, F_OK), -1);
	/* The kept files are the end of the output, in order. */
	assert_true(total < sizeof(expect));
	assert_memory_equal(all, expect + sizeof(expect) - 1 - total, total);

	/* A line longer than the cap is split at the cap; the earlier run is rotated away first. */
	const char *longline[] = { "/bin/sh", "-c",
				   "x=xxxxxxxxxxxxxxxxxxxxxxxxx; x=$x$x$x$x$x$x$x$x$x$x; printf '%s' $x", NULL };
	spec.argv = longline;
	run_to_end(f, &spec, &m);
	machine_free(m);
	char x100[101];
	memset(x100, 'x', 100);
	x100[100] = '\0';
	assert_file(f->logs, "out.log.2", x100);
	assert_file(f->logs, "out.log.1", x100);
	assert_file(f->logs, "out.log", "");
}

static void test_restart_starts_fresh_log(void **state)
{
	struct fixture *f = *state;
	const char *first[] = { "/bin/sh", "-c", "echo first run", NULL };
	const char *second[] = { "/bin/sh", "-c", "echo second run", NULL };
	struct machine_spec spec;
	spec_init(&spec, f, first);
	struct machine *m = NULL;
	run_to_end(f, &spec, &m);
	machine_free(m);
	spec.argv = second;
	run_to_end(f, &spec, &m);
	assert_file(f->logs, "out.log", "second run\n");
	assert_file(f->logs, "out.log.1", "first run\n");
	struct buf out;
	buf_init(&out, 4096);
	assert_int_equal(machine_tail(m, 20, NULL, 0, &out), COFFER_OK);
	assert_string_equal(out.ptr, "second run\n"); /* this run only */
	buf_release(&out);
	machine_free(m);
}

/* ---- adoption ---- */

/*
 * A machine released (its agent gone) is adopted again by its identity, and
 * then stopped through the pidfd (its exit status unknown); an identity
 * with a wrong start time, or of another boot, names no machine and its
 * process is left alone.
 */
static void test_adopt(void **state)
{
	struct fixture *f = *state;
	const char *argv[] = { "/bin/sh", "-c", "echo up; exec sleep 30", NULL };
	struct machine_spec spec;
	spec_init(&spec, f, argv);
	struct machine *m = NULL, *a = NULL;
	struct machine_error err;
	assert_int_equal(machine_start(&spec, &m, NULL), COFFER_OK);
	free(wait_file(f->logs, "out.log")); /* it runs: its output is in the log before it is stopped */
	pid_t pid = machine_pid(m);
	struct machine_ident id = *machine_identity(m);
	assert_int_equal(id.pid, pid);
	assert_true(id.start_time > 0);
	assert_int_equal(strlen(id.boot_id), MACHINE_BOOT_ID_SIZE - 1);
	machine_release(m);
	assert_int_equal(kill(pid, 0), 0); /* released: still running */

	struct machine_ident bad = id;
	bad.start_time++;
	assert_int_equal(machine_adopt(&bad, f->logs, 0, 0, &a, &err), COFFER_ERR_NOT_FOUND);
	assert_null(a);
	bad = id;
	bad.boot_id[0] = bad.boot_id[0] == '0' ? '1' : '0';
	assert_int_equal(machine_adopt(&bad, f->logs, 0, 0, &a, &err), COFFER_ERR_NOT_FOUND);
	bad = id;
	bad.pid = getpid(); /* a live process that is not a session leader of that start time */
	assert_int_equal(machine_adopt(&bad, f->logs, 0, 0, &a, &err), COFFER_ERR_NOT_FOUND);
	assert_int_equal(kill(pid, 0), 0);

	assert_int_equal(machine_adopt(&id, f->logs, 0, 0, &a, &err), COFFER_OK);
	assert_int_equal(machine_pid(a), pid);
	struct machine_exit ex;
	assert_int_equal(machine_wait(a, 0, &ex), COFFER_OK);
	assert_int_equal(ex.running, 1);
	assert_int_equal(machine_stop(a, 2000, &ex), COFFER_OK);
	assert_int_equal(ex.running, 0);
	assert_int_equal(ex.unknown, 1);
	assert_int_equal(ex.code, -1);
	machine_free(a);
	/* it was this test's child all along: reap the zombie */
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
	assert_file(f->logs, "out.log", "up\n");
}

/* ---- the masked tail ---- */

static void expect_tail(const char *text, size_t lines, const char *const *masks, const char *want)
{
	struct secret *s[8] = { 0 };
	size_t n = 0;
	for (; masks && masks[n]; n++)
		s[n] = sec(masks[n]);
	struct buf out;
	buf_init(&out, 4096);
	assert_int_equal(machine_mask_tail((const unsigned char *)text, strlen(text), lines,
					   (const struct secret *const *)s, n, &out),
			 COFFER_OK);
	assert_string_equal(out.ptr, want);
	for (size_t i = 0; i < n; i++) {
		if (*masks[i])
			assert_null(strstr(out.ptr, masks[i]));
		secret_free(s[i]);
	}
	buf_release(&out);
}

static void test_mask_tail(void **state)
{
	(void)state;
	const char *text = "l1 keep\nl2 s3cr3t and s3cr3t\nl3 my-s3cr3t-key!\nl4 multi\nline end\nl5 last";
	/* One value inside another, twice on a line, over a newline, and an empty one (ignored). */
	const char *masks[] = { "s3cr3t", "my-s3cr3t-key", "multi\nline", "", NULL };
	expect_tail(text, 3, masks, "l3 ***!\nl4 *** end\nl5 last");
	expect_tail(text, 4, masks, "l2 *** and ***\nl3 ***!\nl4 *** end\nl5 last");
	expect_tail(text, 50, masks, "l1 keep\nl2 *** and ***\nl3 ***!\nl4 *** end\nl5 last");
	expect_tail(text, 0, masks, "");
	/* Masks given longest-first or not, overlapping occurrences are covered whole. */
	const char *overlap[] = { "aba", NULL };
	expect_tail("x ababa y\n", 1, overlap, "x *** y\n");
	const char *chained[] = { "abc", "cde", NULL };
	expect_tail("abcde\n", 1, chained, "***\n");
	const char *shorter_first[] = { "key", "my-key-2", NULL };
	expect_tail("my-key-2 key\n", 1, shorter_first, "*** ***\n");
	/* Lines: the final newline ends the last line; a last line without one counts. */
	expect_tail("a\nb\n", 1, NULL, "b\n");
	expect_tail("a\nb", 1, NULL, "b");
	expect_tail("a\nb", 5, NULL, "a\nb");
	expect_tail("", 5, NULL, "");
	expect_tail("\n\n", 1, NULL, "\n");
}

/* The tail of a real machine: its own secrets masked, through stdout and stderr. */
static void test_tail_machine(void **state)
{
	struct fixture *f = *state;
	struct secret *token = sec("s3cr3t"), *longer = sec("my-s3cr3t-key");
	struct machine_secret secrets[] = { { "TOKEN", token }, { "LONGER", longer } };
	const char *argv[] = { "/bin/sh", "-c",
			       "echo l1 keep; echo \"l2 $TOKEN and $TOKEN\"; echo \"l3 $LONGER!\" >&2; echo l4 last",
			       NULL };
	struct machine_spec spec;
	spec_init(&spec, f, argv);
	spec.secrets = secrets;
	spec.n_secrets = 2;
	struct machine *m = NULL;
	run_to_end(f, &spec, &m);
	const struct secret *masks[] = { token, longer };
	struct buf out;
	buf_init(&out, 4096);
	assert_int_equal(machine_tail(m, 3, masks, 2, &out), COFFER_OK);
	assert_string_equal(out.ptr, "l2 *** and ***\nl3 ***!\nl4 last\n");
	buf_release(&out);
	machine_free(m);
	secret_free(token);
	secret_free(longer);
}

/*
 * The output masker (mask_output.h, the coffer binary of this build): what
 * the machine writes reaches out.log masked, a value split across two
 * writes and one at the very end of the stream too; the tail needs no
 * values. A masker that cannot run fails the start and nothing runs.
 */
static void test_masked_output(void **state)
{
	struct fixture *f = *state;
	const char *exe = getenv("COFFER_EXE");
	assert_non_null(exe);
	struct secret *token = sec("s3cr3t-v4lue"), *other = sec("0ther");
	struct machine_secret secrets[] = { { "TOKEN", token }, { "OTHER", other } };
	const char *argv[] = { "/bin/sh", "-c",
			       "echo \"l1 $TOKEN\"; printf 'l2 s3cr3t'; sleep 0.2; printf -- \"-v4lue $OTHER\\n\" >&2; "
			       "printf 'l3 s3cr3t-v4lue'",
			       NULL };
	struct machine_spec spec;
	spec_init(&spec, f, argv);
	spec.secrets = secrets;
	spec.n_secrets = 2;
	spec.mask_exe = exe;
	struct machine *m = NULL;
	run_to_end(f, &spec, &m);
	struct buf out;
	buf_init(&out, 4096);
	assert_int_equal(machine_tail(m, 10, NULL, 0, &out), COFFER_OK);
	assert_string_equal(out.ptr, "l1 ***\nl2 *** ***\nl3 ***");
	buf_release(&out);
	machine_free(m);

	spec.mask_exe = "/nonexistent/coffer";
	struct machine_error err;
	assert_int_not_equal(machine_start(&spec, &m, &err), COFFER_OK);
	assert_non_null(strstr(err.message, "cannot start the output masker"));
	secret_free(token);
	secret_free(other);
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * A process that left the machine's group keeps the masker's pipe open:
 * once the flush deadline has passed the masker (which holds the values)
 * is killed and reaped, not left running, and the end of the machine
 * blocks for a bounded time only.
 */
static void test_masker_killed_after_flush_deadline(void **state)
{
	struct fixture *f = *state;
	const char *exe = getenv("COFFER_EXE");
	assert_non_null(exe);
	struct secret *token = sec("s3cr3t-v4lue");
	struct machine_secret secrets[] = { { "TOKEN", token } };
	/* gc.pid is written once the straggler has its own session: the end of the group cannot reach it */
	const char *argv[] = { "/bin/sh", "-c",
			       "setsid /bin/sh -c 'echo $$ > gc.tmp; mv gc.tmp gc.pid; exec sleep 30' & "
			       "while [ ! -e gc.pid ]; do sleep 0.05; done; echo \"v $TOKEN\"; exit 0",
			       NULL };
	struct machine_spec spec;
	spec_init(&spec, f, argv);
	spec.secrets = secrets;
	spec.n_secrets = 1;
	spec.mask_exe = exe;
	struct machine *m = NULL;
	assert_int_equal(machine_start(&spec, &m, NULL), COFFER_OK);
	char *gc = wait_file(f->work, "gc.pid");
	pid_t gpid = (pid_t)strtol(gc, NULL, 10);
	free(gc);
	struct machine_exit ex;
	int64_t t0 = mono_ms();
	assert_int_equal(machine_wait(m, -1, &ex), COFFER_OK);
	int64_t took = mono_ms() - t0;
	assert_true(took < MACHINE_MASKER_WAIT_MS + MACHINE_MASKER_KILL_WAIT_MS + 1000);
	/* the straggler still runs, but no child of ours does: the masker is gone and reaped */
	assert_int_equal(kill(gpid, 0), 0);
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	errno = 0;
	assert_int_equal(waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT), -1);
	assert_int_equal(errno, ECHILD);
	assert_file(f->logs, "out.log", "v ***\n");
	machine_free(m);
	kill(gpid, SIGKILL);
	assert_true(proc_gone(gpid));
	secret_free(token);
}

/* A multi-line secret cut by a rotation: the tail reads back far enough to mask all of it. */
static void test_tail_across_files(void **state)
{
	struct fixture *f = *state;
	char text[128];
	snprintf(text, sizeof(text), "aaaa\nkey=p1\np2\np3 end\n%s\nc\n", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
	struct machine_env env[] = { { "OUT", text } };
	const char *argv[] = { "/bin/sh", "-c", "printf '%s' \"$OUT\"", NULL };
	struct machine_spec spec;
	spec_init(&spec, f, argv);
	spec.env = env;
	spec.n_env = 1;
	spec.log_cap = 40;
	spec.log_files = 5;
	struct machine *m = NULL;
	run_to_end(f, &spec, &m);
	/* The case is real: the value is split over two files. */
	assert_file(f->logs, "out.log.2", "aaaa\nkey=p1\np2\n");
	assert_file(f->logs, "out.log.1", "p3 end\nbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\nc\n");

	struct secret *s = sec("p1\np2\np3");
	const struct secret *masks[] = { s };
	struct buf out;
	buf_init(&out, 4096);
	assert_int_equal(machine_tail(m, 3, masks, 1, &out), COFFER_OK);
	assert_string_equal(out.ptr, "key=*** end\nbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\nc\n");
	buf_reset(&out);
	assert_int_equal(machine_tail(m, 1, masks, 1, &out), COFFER_OK);
	assert_string_equal(out.ptr, "c\n");
	buf_reset(&out);
	assert_int_equal(machine_tail(m, MACHINE_TAIL_LINES, masks, 1, &out), COFFER_OK);
	assert_string_equal(out.ptr, "aaaa\nkey=*** end\nbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\nc\n");
	buf_release(&out);
	secret_free(s);
	machine_free(m);
}

static void test_backoff(void **state)
{
	(void)state;
	assert_int_equal(machine_backoff_ms(0), 1000);
	assert_int_equal(machine_backoff_ms(1), 2000);
	assert_int_equal(machine_backoff_ms(2), 4000);
	assert_int_equal(machine_backoff_ms(3), 8000);
	assert_int_equal(machine_backoff_ms(4), 16000);
	assert_int_equal(machine_backoff_ms(5), 30000);
	assert_int_equal(machine_backoff_ms(6), 30000);
	assert_int_equal(machine_backoff_ms(1000), 30000);
	assert_int_equal(machine_backoff_ms(~0u), 30000);
	/* tests shorten it (timescale.h) */
	assert_int_equal(setenv("COFFER_TEST_TIMESCALE", "10", 1), 0);
	assert_int_equal(machine_backoff_ms(0), 100);
	assert_int_equal(machine_backoff_ms(6), 3000);
	assert_int_equal(unsetenv("COFFER_TEST_TIMESCALE"), 0);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_env_exact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_env_many_secrets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parent_keeps_no_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_spec, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deliver_routes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deliver_cleanup_at_end, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deliver_failed_start, setup, teardown),
		cmocka_unit_test_setup_teardown(test_process_layout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_runs_unprivileged, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exit_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_path_lookup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_term, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_kill, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exit_kills_group, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_kills, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_capture, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_rotation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_starts_fresh_log, setup, teardown),
		cmocka_unit_test_setup_teardown(test_adopt, setup, teardown),
		cmocka_unit_test(test_mask_tail),
		cmocka_unit_test_setup_teardown(test_tail_machine, setup, teardown),
		cmocka_unit_test_setup_teardown(test_masked_output, setup, teardown),
		cmocka_unit_test_setup_teardown(test_masker_killed_after_flush_deadline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tail_across_files, setup, teardown),
		cmocka_unit_test(test_backoff),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
