/*
 * wait.c — following a release (client.h: client_wait_release,
 * client_follow_release): polls it, shows each machine's progress (a live
 * line on a terminal), and stops waiting, not the release, on Ctrl-C.
 */
#include "client.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "format.h"
#include "banned.h"

#define WAIT_MACHINES_MAX 256   /* machines whose last step a wait remembers */
#define WAIT_ID_SIZE 65         /* a machine id remembered (store ids are 32 hex) */
#define WAIT_STEP_SIZE 16       /* a step name remembered ("rolled_back") */
#define WAIT_REASON_MAX ((size_t)64 << 10)
#define NS_PER_MS 1000000L
#define MS_PER_S 1000

static volatile sig_atomic_t got_sigint;
static int interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	got_sigint = 1;
}

int client_interrupted(void)
{
	return interrupted;
}

/* Sleeps ms, or less when Ctrl-C comes (the handler has no SA_RESTART). */
static void nap_ms(long ms)
{
	struct timespec ts = { ms / MS_PER_S, (ms % MS_PER_S) * NS_PER_MS };
	while (!got_sigint && nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static int64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * MS_PER_S + t.tv_nsec / NS_PER_MS;
}

struct wait_seen {
	char id[WAIT_ID_SIZE];
	char step[WAIT_STEP_SIZE];
};

/* What a wait shows: the steps seen so far and, on a terminal, the live line. */
struct wait_view {
	int live;             /* stdout is a terminal */
	size_t live_len;      /* bytes of the live line on screen; 0: none */
	char live_text[FORMAT_STEP_SIZE];
	struct wait_seen seen[WAIT_MACHINES_MAX];
	size_t n_seen;
};

/* The wait whose live line is on screen, if any (client_error clears it). */
static struct wait_view *live_view;

/* Wipes the live line so that the next output starts on a clean line. */
static void live_clear(struct wait_view *v)
{
	if (!v->live_len)
		return;
	printf("\r%*s\r", (int)v->live_len, "");
	v->live_len = 0;
	v->live_text[0] = '\0';
	fflush(stdout);
}

void client_live_clear(void)
{
	if (live_view)
		live_clear(live_view);
}

static void live_show(struct wait_view *v, const char *text)
{
	size_t n = strlen(text);
	if (v->live_len && strcmp(v->live_text, text) == 0)
		return;
	/* pad over what is left of a longer line */
	printf("\r%s%*s", text, v->live_len > n ? (int)(v->live_len - n) : 0, "");
	if (v->live_len > n)
		printf("\r%s", text);
	v->live_len = n;
	memcpy(v->live_text, text, n + 1);
	fflush(stdout);
}

/* 1 when the machine's step differs from the one seen last (and remembers it). */
static int step_changed(struct wait_view *v, const char *id, const char *step)
{
	size_t i;
	for (i = 0; i < v->n_seen; i++)
		if (strncmp(v->seen[i].id, id, WAIT_ID_SIZE - 1) == 0)
			break;
	if (i == v->n_seen) {
		if (v->n_seen == WAIT_MACHINES_MAX)
			return 1; /* too many to remember: shown every time */
		v->n_seen++;
		if (str_copy(v->seen[i].id, WAIT_ID_SIZE, id))
			memcpy(v->seen[i].id, id, WAIT_ID_SIZE - 1), v->seen[i].id[WAIT_ID_SIZE - 1] = '\0';
		v->seen[i].step[0] = '\0';
	}
	if (strncmp(v->seen[i].step, step, WAIT_STEP_SIZE - 1) == 0)
		return 0;
	if (str_copy(v->seen[i].step, WAIT_STEP_SIZE, step))
		memcpy(v->seen[i].step, step, WAIT_STEP_SIZE - 1), v->seen[i].step[WAIT_STEP_SIZE - 1] = '\0';
	return 1;
}

/*
 * Shows the machines of one poll. Plain: a line for each machine whose step
 * changed (waiting is not news). Terminal: a machine that passed or rolled
 * back gets a line of its own; the one being replaced or watched is the live
 * line, its countdown rewritten in place.
 */
static void show_machines(struct wait_view *v, const json_t *machines)
{
	const char *live = NULL;
	char live_line[FORMAT_STEP_SIZE] = "";
	size_t i;
	json_t *m;

	json_array_foreach(machines, i, m) {
		const char *id = client_str(m, "id"), *step = client_str(m, "step");
		json_t *left = json_object_get(m, "grace_left_ms");
		char line[FORMAT_STEP_SIZE];
		if (!id || !step || strcmp(step, "waiting") == 0)
			continue;
		if (format_machine_step(id, step, json_is_integer(left) ? json_integer_value(left) : 0, line,
					sizeof(line)))
			continue;
		int changed = step_changed(v, id, step);
		int active = strcmp(step, "replacing") == 0 || strcmp(step, "watching") == 0;
		if (v->live && active) {
			if (!live) {
				memcpy(live_line, line, strlen(line) + 1);
				live = live_line;
			}
			continue;
		}
		if (!changed)
			continue;
		live_clear(v);
		printf("%s\n", line);
	}
	if (live)
		live_show(v, live);
	else
		live_clear(v);
	fflush(stdout);
}

/* The whole reason of a failed release on stderr, safe for a terminal. */
static void print_failure(int64_t version, const char *reason)
{
	struct buf b;
	buf_init(&b, WAIT_REASON_MAX);
	if (!reason || format_terminal_text(reason, &b))
		buf_reset(&b);
	while (b.len && (b.ptr[b.len - 1] == '\n' || b.ptr[b.len - 1] == '\t' || b.ptr[b.len - 1] == ' '))
		b.ptr[--b.len] = '\0';
	fprintf(stderr, "Release v%" PRId64 " failed: %s\n", version, b.len ? b.ptr : "(no reason given)");
	buf_release(&b);
}

/* Ctrl-C: the release goes on without us. */
static enum coffer_err stop_waiting(struct wait_view *v, const struct client *c, int64_t version)
{
	live_clear(v);
	fprintf(stderr, "Stopped waiting: release v%" PRId64 " keeps going on the api. Follow it with "
			"'coffer releases -a %s'\n",
		version, c->app);
	interrupted = 1;
	return COFFER_ERR_UNAVAILABLE;
}

enum coffer_err client_wait_release(struct client *c, int64_t version)
{
	struct wait_view *v = calloc(1, sizeof(*v));
	struct sigaction sa, old;
	char path[CLIENT_PATH_MAX], suffix[CLIENT_SEGMENT_MAX];
	json_t *r = NULL;
	int64_t unreachable_since = 0;
	enum coffer_err rc;

	if (!v)
		return client_error(COFFER_ERR_NOMEM, "out of memory");
	v->live = isatty(STDOUT_FILENO);
	rc = fmt_into(suffix, sizeof(suffix), "/releases/%" PRId64, version);
	if (!rc)
		rc = client_path(path, sizeof(path), "/v1/apps/", c->app, suffix);
	if (rc) {
		free(v);
		return rc;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigint;
	sigemptyset(&sa.sa_mask);
	got_sigint = 0;
	sigaction(SIGINT, &sa, &old);
	live_view = v;
	c->quiet_unreachable = 1;
	for (;;) {
		rc = client_call(c, "GET", path, NULL, &r);
		if (rc && c->unreachable && !got_sigint) {
			int64_t now = now_ms();
			if (!unreachable_since) {
				unreachable_since = now;
				live_clear(v);
				fprintf(stderr, "coffer: cannot reach the API at %s; trying again for %ds\n", c->api_url,
					CLIENT_WAIT_UNREACHABLE_MS / MS_PER_S);
			}
			if (now - unreachable_since < CLIENT_WAIT_UNREACHABLE_MS) {
				nap_ms(CLIENT_WAIT_POLL_MS);
				if (!got_sigint)
					continue;
			} else {
				client_error(rc, "cannot reach the API at %s: release v%" PRId64 " may still be in "
						 "progress; check 'coffer releases -a %s'", c->api_url, version, c->app);
				break;
			}
		}
		if (rc && got_sigint) {
			rc = stop_waiting(v, c, version);
			break;
		}
		if (rc)
			break;
		if (unreachable_since) {
			unreachable_since = 0;
			fprintf(stderr, "coffer: the API answers again\n");
		}
		const char *status = client_str(r, "status");
		json_t *machines = json_object_get(r, "machines");
		if (!status) {
			rc = client_bad_answer("a release without \"status\"");
			break;
		}
		if (json_is_array(machines))
			show_machines(v, machines);
		if (strcmp(status, "succeeded") == 0) {
			live_clear(v);
			printf("Release v%" PRId64 " succeeded\n", version);
			break;
		}
		if (strcmp(status, "failed") == 0) {
			live_clear(v);
			fflush(stdout);
			print_failure(version, client_str(r, "reason"));
			rc = COFFER_ERR_INTERNAL;
			break;
		}
		if (strcmp(status, "pending") != 0 && strcmp(status, "running") != 0) {
			live_clear(v);
			rc = client_bad_answer("a release status that is none of pending, running, succeeded, failed");
			break;
		}
		json_decref(r);
		r = NULL;
		nap_ms(CLIENT_WAIT_POLL_MS);
		if (got_sigint) {
			rc = stop_waiting(v, c, version);
			break;
		}
	}
	c->quiet_unreachable = 0;
	live_view = NULL;
	sigaction(SIGINT, &old, NULL);
	fflush(stdout);
	json_decref(r);
	free(v);
	return rc;
}

enum coffer_err client_follow_release(struct client *c, const json_t *ans, int detach)
{
	json_t *rel = json_object_get(ans, "release"), *sv = json_object_get(ans, "version");
	if (!json_is_integer(rel) || json_integer_value(rel) <= 0)
		return client_bad_answer("no \"release\" version");
	int64_t version = (int64_t)json_integer_value(rel);
	if (json_is_integer(sv) && json_integer_value(sv) > 0)
		printf("Release v%" PRId64 " created with secrets version %" JSON_INTEGER_FORMAT "\n", version,
		       json_integer_value(sv));
	else
		printf("Release v%" PRId64 " created\n", version);
	if (detach) {
		printf("Follow release v%" PRId64 " with 'coffer releases -a %s'\n", version, c->app);
		return COFFER_OK;
	}
	fflush(stdout);
	return client_wait_release(c, version);
}
