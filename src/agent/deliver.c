/*
 * deliver.c — the machine's environment and the run through the table of
 * delivery modes (deliver.h). The environment is built here because every
 * machine has one whatever its modes: the modes only add layer 3 to it.
 */
#include "deliver.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "buf.h"

#include "banned.h"

#define VERSION_TEXT_MAX 24
#define ENV_BASE_ITEMS 6 /* layers 1 and 4 */

struct env_item {
	const char *name;
	size_t nlen;
	const unsigned char *val;
	size_t vlen;
};

struct deliver_env {
	struct env_item *items;
	size_t n, cap;
};

static int name_valid(const char *name, size_t len)
{
	if (len == 0 || len > MACHINE_NAME_MAX)
		return 0;
	if (!(name[0] == '_' || (name[0] >= 'A' && name[0] <= 'Z') || (name[0] >= 'a' && name[0] <= 'z')))
		return 0;
	for (size_t i = 1; i < len; i++) {
		char c = name[i];
		if (!(c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
			return 0;
	}
	return 1;
}

static int reserved(const char *name, size_t len)
{
	static const char prefix[] = "COFFER_";
	return len >= sizeof(prefix) - 1 && memcmp(name, prefix, sizeof(prefix) - 1) == 0;
}

/* Sets name to val: replaces the value of an item of that name, or appends. */
static enum coffer_err env_set(struct deliver_env *e, const char *name, size_t nlen, const void *val, size_t vlen)
{
	for (size_t i = 0; i < e->n; i++) {
		if (e->items[i].nlen == nlen && memcmp(e->items[i].name, name, nlen) == 0) {
			e->items[i].val = val;
			e->items[i].vlen = vlen;
			return COFFER_OK;
		}
	}
	if (e->n == e->cap) {
		size_t cap = e->cap * 2;
		struct env_item *grown = calloc(cap, sizeof(*grown));
		if (!grown)
			return COFFER_ERR_NOMEM;
		memcpy(grown, e->items, e->n * sizeof(*grown));
		sodium_memzero(e->items, e->cap * sizeof(*e->items));
		free(e->items);
		e->items = grown;
		e->cap = cap;
	}
	e->items[e->n++] = (struct env_item){ name, nlen, val, vlen };
	return COFFER_OK;
}

static enum coffer_err env_set_text(struct deliver_env *e, const char *name, const char *val)
{
	return env_set(e, name, strlen(name), val, strlen(val));
}

enum coffer_err deliver_env_put(struct deliver_env *e, const char *name, const void *val, size_t vlen)
{
	size_t nlen = strlen(name);
	return reserved(name, nlen) ? COFFER_OK : env_set(e, name, nlen, val, vlen);
}

/* One secret block: an envp array followed by its NAME=VALUE strings. */
static enum coffer_err env_block(const struct deliver_env *e, struct deliver_run *run, struct machine_error *err)
{
	size_t n = e->n, total = (n + 1) * sizeof(char *);
	struct secret *block = NULL;
	for (size_t i = 0; i < n; i++) {
		if (e->items[i].vlen > MACHINE_ENV_MAX ||
		    (total += e->items[i].nlen + 1 + e->items[i].vlen + 1) > MACHINE_ENV_MAX) {
			machine_error_set(err, "the environment is too large", NULL, 0);
			return COFFER_ERR_TOO_LARGE;
		}
	}
	enum coffer_err rc = secret_new(total, &block);
	if (rc)
		return rc;
	/* secret_bytes is 16-byte aligned (secret.c), so the array goes first. */
	char **envp = (char **)(void *)secret_bytes(block);
	char *p = (char *)secret_bytes(block) + (n + 1) * sizeof(char *);
	run->path = NULL;
	for (size_t i = 0; i < n; i++) {
		envp[i] = p;
		memcpy(p, e->items[i].name, e->items[i].nlen);
		p += e->items[i].nlen;
		*p++ = '=';
		if (e->items[i].nlen == 4 && memcmp(e->items[i].name, "PATH", 4) == 0)
			run->path = p;
		if (e->items[i].vlen)
			memcpy(p, e->items[i].val, e->items[i].vlen);
		p += e->items[i].vlen;
		*p++ = '\0';
	}
	envp[n] = NULL;
	run->env = block;
	return COFFER_OK;
}

static const char *delivery_mode(const struct machine_delivery *d)
{
	return d->mode ? d->mode : MACHINE_DELIVERY_DEFAULT;
}

static int mode_known(const char *name)
{
	for (size_t i = 0; deliver_modes[i]; i++) {
		if (strcmp(deliver_modes[i]->name, name) == 0)
			return 1;
	}
	return 0;
}

static int secret_named(const struct machine_spec *spec, const char *name)
{
	for (size_t j = 0; j < spec->n_deliveries; j++) {
		if (strcmp(spec->deliveries[j].secret, name) == 0)
			return 1;
	}
	return 0;
}

/* Every secret's name, and every delivery's secret and mode, before any mode sees one. */
static enum coffer_err secrets_check(const struct machine_spec *spec, struct machine_error *err)
{
	for (size_t i = 0; i < spec->n_secrets; i++) {
		const struct machine_secret *s = &spec->secrets[i];
		if (!s->name || !s->value || !name_valid(s->name, strlen(s->name))) {
			machine_error_set(err, "invalid secret name", s->name ? s->name : "", 0);
			return COFFER_ERR_INVALID;
		}
	}
	for (size_t j = 0; j < spec->n_deliveries; j++) {
		const struct machine_delivery *d = &spec->deliveries[j];
		size_t i = 0;
		while (d->secret && i < spec->n_secrets && strcmp(spec->secrets[i].name, d->secret) != 0)
			i++;
		if (!d->secret || i == spec->n_secrets) {
			machine_error_set(err, "a delivery of an unknown secret", d->secret ? d->secret : "", 0);
			return COFFER_ERR_INVALID;
		}
		if (!mode_known(delivery_mode(d))) {
			machine_error_set(err, "unknown delivery mode", delivery_mode(d), 0);
			return COFFER_ERR_INVALID;
		}
	}
	return COFFER_OK;
}

/*
 * The items for mode, in the order of the secrets: a secret no delivery
 * names goes to the default mode, the others once per delivery of theirs
 * to mode. Returns how many; fills out when it is not NULL.
 */
static size_t route(const struct machine_spec *spec, const char *mode, struct deliver_item *out)
{
	int is_default = strcmp(mode, MACHINE_DELIVERY_DEFAULT) == 0;
	size_t n = 0;
	for (size_t i = 0; i < spec->n_secrets; i++) {
		const struct machine_secret *s = &spec->secrets[i];
		if (!secret_named(spec, s->name)) {
			if (is_default && out)
				out[n] = (struct deliver_item){ s->name, s->value, NULL, 0 };
			n += (size_t)is_default;
			continue;
		}
		for (size_t j = 0; j < spec->n_deliveries; j++) {
			const struct machine_delivery *d = &spec->deliveries[j];
			if (strcmp(d->secret, s->name) != 0 || strcmp(delivery_mode(d), mode) != 0)
				continue;
			if (out)
				out[n] = (struct deliver_item){ s->name, s->value, d->target, d->perm };
			n++;
		}
	}
	return n;
}

/* Layer 3: each mode that has items prepares them, in table order. */
static enum coffer_err modes_prepare(struct deliver_run *run, const struct deliver_ctx *ctx,
				     struct machine_error *err)
{
	enum coffer_err rc = COFFER_OK;
	for (size_t i = 0; deliver_modes[i] && !rc; i++) {
		if (i == DELIVER_MODES_MAX)
			return COFFER_ERR_INTERNAL;
		size_t n = route(ctx->spec, deliver_modes[i]->name, NULL);
		if (!n)
			continue;
		struct deliver_item *items = calloc(n, sizeof(*items));
		if (!items)
			return COFFER_ERR_NOMEM;
		route(ctx->spec, deliver_modes[i]->name, items);
		run->n_prepared = i + 1;
		rc = deliver_modes[i]->prepare(ctx, items, n, &run->prep[i], err);
		run->prepared[i] = rc == COFFER_OK;
		sodium_memzero(items, n * sizeof(*items));
		free(items);
	}
	return rc;
}

enum coffer_err deliver_prepare(struct deliver_run *run, const struct machine_spec *spec, int drop, uid_t uid,
				gid_t gid, struct machine_error *err)
{
	enum coffer_err rc;
	char version[VERSION_TEXT_MAX];
	struct deliver_env env = { .cap = ENV_BASE_ITEMS + spec->n_env + spec->n_secrets };
	struct deliver_ctx ctx = { .spec = spec, .drop = drop, .uid = uid, .gid = gid, .env = &env };

	env.items = calloc(env.cap, sizeof(*env.items));
	if (!env.items)
		return COFFER_ERR_NOMEM;
	rc = fmt_into(version, sizeof(version), "%" PRId64, spec->release_version);
	if (!rc)
		rc = env_set_text(&env, "PATH", MACHINE_BASE_PATH);
	if (!rc)
		rc = env_set_text(&env, "HOME", spec->work_dir);
	if (!rc)
		rc = env_set_text(&env, "LANG", MACHINE_BASE_LANG);
	for (size_t i = 0; i < spec->n_env && !rc; i++) {
		const struct machine_env *e = &spec->env[i];
		if (!e->name || !e->value || !name_valid(e->name, strlen(e->name))) {
			machine_error_set(err, "invalid --env name", e->name ? e->name : "", 0);
			rc = COFFER_ERR_INVALID;
		} else {
			rc = deliver_env_put(&env, e->name, e->value, strlen(e->value));
		}
	}
	if (!rc)
		rc = secrets_check(spec, err);
	if (!rc)
		rc = modes_prepare(run, &ctx, err);
	if (!rc)
		rc = env_set_text(&env, "COFFER_APP_NAME", spec->app);
	if (!rc)
		rc = env_set_text(&env, "COFFER_MACHINE_ID", spec->machine_id);
	if (!rc)
		rc = env_set_text(&env, "COFFER_RELEASE_VERSION", version);
	if (!rc && spec->kms_socket)
		rc = env_set_text(&env, "COFFER_KMS_SOCKET", spec->kms_socket);
	if (!rc)
		rc = env_block(&env, run, err);
	/* the items point into the caller's secrets; wipe the pointers and lengths anyway */
	sodium_memzero(env.items, env.cap * sizeof(*env.items));
	free(env.items);
	if (rc)
		deliver_cleanup(run);
	return rc;
}

int deliver_apply_in_child(const struct deliver_run *run, size_t *mode)
{
	for (size_t i = 0; i < run->n_prepared; i++) {
		if (!run->prepared[i] || !deliver_modes[i]->apply_in_child)
			continue;
		int e = deliver_modes[i]->apply_in_child(&run->prep[i]);
		if (e) {
			*mode = i;
			return e;
		}
	}
	return 0;
}

static void wipe(struct secret *s)
{
	if (s)
		sodium_memzero(secret_bytes(s), secret_len(s));
}

void deliver_wipe_in_child(struct deliver_run *run)
{
	wipe(run->env);
	for (size_t i = 0; i < run->n_prepared; i++)
		wipe(run->prep[i].child);
}

void deliver_forked(struct deliver_run *run)
{
	secret_free(run->env);
	run->env = NULL;
	run->path = NULL;
	for (size_t i = 0; i < run->n_prepared; i++) {
		secret_free(run->prep[i].child);
		run->prep[i].child = NULL;
	}
}

void deliver_cleanup(struct deliver_run *run)
{
	deliver_forked(run);
	for (size_t i = 0; i < run->n_prepared; i++) {
		if (run->prepared[i] && deliver_modes[i]->cleanup)
			deliver_modes[i]->cleanup(run->prep[i].state);
		run->prepared[i] = 0;
		run->prep[i].state = NULL;
	}
	run->n_prepared = 0;
}
