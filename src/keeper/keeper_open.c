/*
 * keeper_open.c — POST /v1/open: a host's boot token checked against the
 * store at the time of the request, the token's secrets version opened with
 * the app key, the values sealed to the host, and one audit event per open,
 * refused ones included (docs/RUNPATH.md, "Agent <-> keeper").
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "boottoken.h"
#include "delivery.h"
#include "deployer.h"
#include "digest.h"
#include "json.h"
#include "keeper.h"
#include "log.h"
#include "metrics.h"
#include "vault.h"
#include "banned.h"

#define ACTOR_HOST_PREFIX "host:" /* the api's form of a host actor too */
#define ACTOR_ANONYMOUS "anonymous"
#define ACTOR_SIZE (sizeof(ACTOR_HOST_PREFIX) + HOSTAUTH_HOST_ID_MAX)
#define OUTCOME_SIZE 128
#define REFUSED_PREFIX "refused: "
#define DETAIL_MAX ((size_t)60 << 10)      /* under STORE_AUDIT_FIELD_MAX */
#define DETAIL_NAMES_MAX ((size_t)48 << 10) /* name bytes listed; the rest are counted */
#define SIGNATURES_MAX 16     /* signature rows looked at per signed text (the store lists 16): more is junk */
#define REFUSED_SIGNERS_MAX 8 /* refused signers named in the audit detail */
#define WHY_STATEMENT "release not signed by a live deployer of this app"
#define WHY_MANIFEST "secrets manifest not signed by a live deployer of this app"
#define WHY_SECRET "secret failed verification"
#define WHY_APP_ORG "app's org binding failed verification"
#define WHY_SPENT "boot token already used"

_Static_assert(DETAIL_MAX <= STORE_AUDIT_FIELD_MAX, "the detail fits an audit field");
_Static_assert(DELIVERY_SPEC_HASH_SIZE == DEPLOYER_HASH_HEX_SIZE, "a spec hash is a deployer text hash");
_Static_assert(STORE_ID_LEN <= BOOTTOKEN_ID_MAX && STORE_ID_LEN <= DELIVERY_ID_MAX, "store ids fit tokens");

/* What one open learnt, for its audit event. */
struct open_state {
	const struct store_host *host;
	int64_t now; /* unix seconds */
	int have_claims;
	struct boottoken_claims claims;
	int have_app;
	struct store_app app;
	int org_verified; /* app.org_id carries the keeper's own "app's org" signature (keeper_app_org_check) */
	int have_release;
	struct store_release release;          /* the token's release: its config is the machine's spec */
	char spec_hash[DELIVERY_SPEC_HASH_SIZE]; /* hex SHA-256 of release.config, what the delivery is bound to */
	struct store_secret_list list; /* names of the version, when read */
	int have_list;
	const char *failed_name;  /* the secret that refused the open (in list), or NULL */
	const char *failed_check; /* which check it failed */
	char deployer[STORE_ID_SIZE];          /* who signed the release's statement, once checked ("" before) */
	char manifest_deployer[STORE_ID_SIZE]; /* who signed the version's manifest, once checked */
	struct {
		char id[STORE_ID_SIZE];
		const char *text; /* "statement" or "manifest" */
		const char *why;  /* a fixed text */
	} refused[REFUSED_SIGNERS_MAX]; /* signatures found and not relied on */
	size_t n_refused;
	struct store_deployer trusted; /* the last deployer keeper_deployer_live accepted in this open */
	int have_trusted;
};

static enum coffer_err add_names(json_t *d, const struct store_secret_list *l)
{
	json_t *names = json_array();
	size_t bytes = 0, i;
	if (!names || json_object_set_new(d, "names", names))
		return COFFER_ERR_NOMEM;
	for (i = 0; i < l->n; i++) {
		size_t len = strlen(l->items[i].name);
		if (bytes + len > DETAIL_NAMES_MAX)
			break;
		bytes += len;
		if (json_array_append_new(names, json_string(l->items[i].name)))
			return COFFER_ERR_NOMEM;
	}
	if (i < l->n && json_object_set_new(d, "names_omitted", json_integer((json_int_t)(l->n - i))))
		return COFFER_ERR_NOMEM;
	return COFFER_OK;
}

/* The event's detail: only what is known, names and ids, never a value. */
static enum coffer_err detail_of(const struct open_state *st, const char *claimed_host, struct buf *out)
{
	enum coffer_err rc = COFFER_OK;
	json_t *d = json_object();
	if (!d)
		return COFFER_ERR_NOMEM;
	if (st && st->host && json_object_set_new(d, "host", json_string(st->host->id)))
		rc = COFFER_ERR_NOMEM;
	if (!rc && claimed_host && json_object_set_new(d, "claimed_host", json_string(claimed_host)))
		rc = COFFER_ERR_NOMEM;
	if (!rc && st && st->have_claims &&
	    (json_object_set_new(d, "machine", json_string(st->claims.machine)) ||
	     json_object_set_new(d, "release", json_integer((json_int_t)st->claims.release)) ||
	     json_object_set_new(d, "version", json_integer((json_int_t)st->claims.secrets_version))))
		rc = COFFER_ERR_NOMEM;
	if (!rc && st && st->have_release && json_object_set_new(d, "config", json_string(st->spec_hash)))
		rc = COFFER_ERR_NOMEM;
	/* the check that refused the open, and the secret when it was one's */
	if (!rc && st && st->failed_check &&
	    json_object_set_new(d, "failed",
				st->failed_name ? json_pack("{s:s,s:s}", "name", st->failed_name, "check", st->failed_check)
						: json_pack("{s:s}", "check", st->failed_check)))
		rc = COFFER_ERR_NOMEM;
	if (!rc && st && st->have_claims &&
	    (json_object_set_new(d, "deployer", st->deployer[0] ? json_string(st->deployer) : json_null()) ||
	     json_object_set_new(d, "manifest_deployer",
				 st->manifest_deployer[0] ? json_string(st->manifest_deployer) : json_null())))
		rc = COFFER_ERR_NOMEM;
	if (!rc && st && st->n_refused) {
		json_t *a = json_array();
		if (!a || json_object_set_new(d, "refused_signatures", a))
			rc = COFFER_ERR_NOMEM;
		for (size_t i = 0; !rc && i < st->n_refused; i++)
			if (json_array_append_new(a, json_pack("{s:s,s:s,s:s}", "deployer", st->refused[i].id, "text",
								st->refused[i].text, "why", st->refused[i].why)))
				rc = COFFER_ERR_NOMEM;
	}
	if (!rc && st && st->have_claims) {
		if (st->have_list)
			rc = add_names(d, &st->list);
		else if (json_object_set_new(d, "names", json_array()))
			rc = COFFER_ERR_NOMEM;
	}
	if (!rc)
		rc = json_dump_buf(d, out);
	json_decref(d);
	return rc;
}

/* An open's event, and the token it spends (NULL: none): one change, so one transaction. */
struct open_change {
	const struct store_audit_event *ev;
	const struct boottoken_claims *spend;
	int64_t now; /* unix seconds: rows of tokens expired a clock skew before are purged */
	int spent;   /* out: the token was spent already (set by each run of the change) */
};

static enum coffer_err open_change(struct store *s, void *arg)
{
	struct open_change *c = arg;
	c->spent = 0;
	if (c->spend) {
		enum coffer_err rc = store_boot_token_spend(s, c->spend->jti, c->spend->exp,
							    c->now - JWS_CLOCK_SKEW_S, &c->spent);
		if (rc)
			return rc;
	}
	return store_audit_append(s, c->ev, NULL);
}

/*
 * Nothing written, and *spent = 1, when spend's token was spent already
 * (COFFER_ERR_CONFLICT); any other failure (a serialisation failure or a
 * deadlock on PostgreSQL is a CONFLICT too) leaves *spent 0.
 */
static enum coffer_err append_event(struct store *s, const char *org_id, const char *actor, const char *app,
				    const struct buf *detail, const char *outcome, const char *request_id,
				    const struct boottoken_claims *spend, int64_t now, int *spent)
{
	struct store_audit_event ev = {
		.org_id = org_id,
		.actor = actor,
		.action = KEEPER_OPEN_ACTION,
		.app = app,
		.detail = detail->ptr,
		.outcome = outcome,
		.request_id = request_id,
	};
	struct open_change c = { &ev, spend, now, 0 };
	enum coffer_err rc = store_group_run(s, open_change, &c);
	*spent = rc == COFFER_ERR_CONFLICT && spend && c.spent;
	if (*spent)
		return rc;
	if (rc)
		log_error("audit_append_failed", LF_S("action", KEEPER_OPEN_ACTION), LF_S("request_id", request_id),
			  LF_S("error", coffer_err_name(rc)));
	return rc;
}

/* The audit event of an open that keeper_open decided (rc, why); a granted one spends its token. */
static enum coffer_err audit(struct store *s, const struct open_state *st, enum coffer_err rc, const char *why,
			     const char *request_id, int *spent)
{
	char actor[ACTOR_SIZE], outcome[OUTCOME_SIZE];
	struct buf detail;
	enum coffer_err arc;

	buf_init(&detail, DETAIL_MAX);
	arc = fmt_into(actor, sizeof(actor), "%s%s", ACTOR_HOST_PREFIX, st->host->id);
	if (!arc) {
		if (rc == COFFER_OK)
			arc = str_copy(outcome, sizeof(outcome), "ok");
		else if (why)
			arc = fmt_into(outcome, sizeof(outcome), "%s%s", REFUSED_PREFIX, why);
		else
			arc = fmt_into(outcome, sizeof(outcome), "error: %s", coffer_err_name(rc));
	}
	if (!arc)
		arc = detail_of(st, NULL, &detail);
	if (!arc)
		arc = append_event(s, st->have_app ? st->app.org_id : NULL, actor, st->have_app ? st->app.name : NULL,
				   &detail, outcome, request_id, rc == COFFER_OK ? &st->claims : NULL, st->now, spent);
	buf_release(&detail);
	return arc;
}

enum coffer_err keeper_open_audit_refusal(struct store *s, const char *host_id, int verified, const char *reason,
					  const char *request_id)
{
	char actor[ACTOR_SIZE], outcome[OUTCOME_SIZE];
	struct store_host h;
	struct open_state st = { 0 };
	struct buf detail;
	int id_ok = host_id && hostauth_host_id_ok(host_id);
	enum coffer_err rc = COFFER_OK;

	buf_init(&detail, DETAIL_MAX);
	if (verified && id_ok) {
		memset(&h, 0, sizeof(h));
		rc = str_copy(h.id, sizeof(h.id), host_id);
		st.host = &h;
		if (!rc)
			rc = fmt_into(actor, sizeof(actor), "%s%s", ACTOR_HOST_PREFIX, host_id);
	} else {
		rc = str_copy(actor, sizeof(actor), ACTOR_ANONYMOUS);
	}
	metrics_counter_add(&metric_keeper_opens, 1, "refused", "before_open");
	if (!rc)
		rc = fmt_into(outcome, sizeof(outcome), "%s%s", REFUSED_PREFIX, reason ? reason : "refused");
	if (!rc)
		rc = detail_of(&st, !verified && id_ok ? host_id : NULL, &detail);
	int spent = 0;
	if (!rc)
		rc = append_event(s, NULL, actor, NULL, &detail, outcome, request_id, NULL, 0, &spent);
	buf_release(&detail);
	return rc;
}

/*
 * One secret that fails a check: the whole open is refused, the name logged
 * and kept for the audit event (never a value).
 */
static enum coffer_err item_refused(struct open_state *st, const char *name, uint64_t key_version, const char *check)
{
	log_warn("secret_open_refused", LF_S("app_id", st->claims.app), LF_S("name", name),
		 LF_I("version", st->claims.secrets_version), LF_I("key_version", key_version), LF_S("check", check));
	st->failed_name = name;
	st->failed_check = check;
	return COFFER_ERR_CRYPTO;
}

/*
 * The version's entries are exactly its manifest's (store.h): the same
 * names, each mapped to the manifest's value row with its digest, none
 * missing, none added. Both lists are sorted by name, bytewise.
 */
static enum coffer_err check_manifest(struct open_state *st, const char **why)
{
	const struct store_secret_list *l = &st->list;
	size_t i = 0, j = 0;

	if (!l->manifest_ok) {
		log_warn("secrets_manifest_refused", LF_S("app_id", st->claims.app),
			 LF_I("version", st->claims.secrets_version));
		*why = "secrets manifest failed verification";
		return COFFER_ERR_CRYPTO;
	}
	*why = "secret failed verification";
	while (i < l->manifest_n || j < l->n) {
		const struct store_manifest_item *m = i < l->manifest_n ? &l->manifest[i] : NULL;
		const struct store_secret *e = j < l->n ? &l->items[j] : NULL;
		int c = !m ? 1 : !e ? -1 : strcmp(m->name, e->name);
		if (c < 0)
			return item_refused(st, m->name, 0, "missing_from_version");
		if (c > 0)
			return item_refused(st, e->name, e->key_version, "not_in_manifest");
		if (strcmp(m->value_id, e->value_id) != 0)
			return item_refused(st, m->name, e->key_version, "value_row");
		if (strcmp(m->digest, e->digest) != 0)
			return item_refused(st, m->name, e->key_version, "digest");
		i++;
		j++;
	}
	*why = NULL;
	return COFFER_OK;
}

/* A signature found and not relied on: logged, and named in the event's detail. */
static void signature_refused(struct open_state *st, const char *text, const char *signer, const char *why)
{
	log_warn("signature_refused", LF_S("app_id", st->claims.app), LF_S("text", text), LF_S("deployer_id", signer),
		 LF_S("reason", why));
	if (st->n_refused < REFUSED_SIGNERS_MAX && str_copy(st->refused[st->n_refused].id, STORE_ID_SIZE, signer) == 0) {
		st->refused[st->n_refused].text = text;
		st->refused[st->n_refused].why = why;
		st->n_refused++;
	}
}

/*
 * text (a "statement" or a "manifest", for the log) is signed by a live
 * deployer of the token's app: a row of `signatures` for (app, hash of
 * text) whose signer keeper_deployer_live accepts (registry MAC, keeper
 * cert, not revoked in the row nor in the keeper's own file), whose cert
 * covers the app (its org from the app row, which check_signatures verified
 * against the keeper's own binding first), and whose signature verifies
 * over text. The first such signer goes to signer; none is
 * COFFER_ERR_FORBIDDEN. Store errors, and an unreadable revocation file,
 * as themselves: nothing is delivered on them either.
 */
static enum coffer_err signed_by(const struct keeper_keys *keys, struct store *s, struct open_state *st,
				 const char *what, const char *text, size_t len, char signer[STORE_ID_SIZE])
{
	char hash[DEPLOYER_HASH_HEX_SIZE];
	struct store_signature_list sigs = { 0 };
	enum coffer_err rc;

	if (!st->have_app || !st->org_verified)
		return COFFER_ERR_FORBIDDEN; /* no app row, or an org the keeper did not bind it to: no deployer covers it */
	deployer_hash_hex(text, len, hash);
	rc = store_signature_list(s, st->claims.app, hash, &sigs);
	if (rc)
		return rc;
	rc = COFFER_ERR_FORBIDDEN;
	for (size_t i = 0; i < sigs.n && i < SIGNATURES_MAX; i++) {
		const struct store_signature *g = &sigs.items[i];
		struct store_deployer d;
		const char *why = NULL;
		enum coffer_err drc = COFFER_OK;
		if (st->have_trusted && strcmp(st->trusted.id, g->signer) == 0) {
			d = st->trusted; /* checked a moment ago in this open (the statement's signer, usually) */
		} else {
			drc = keeper_deployer_live(keys, s, g->signer, &d, &why);
			if (drc != COFFER_OK && drc != COFFER_ERR_NOT_FOUND && drc != COFFER_ERR_CRYPTO &&
			    drc != COFFER_ERR_UNAUTH) {
				rc = drc; /* the store, or the revocation file: fail closed */
				break;
			}
		}
		if (!drc && !deployer_covers(d.org_id, d.app_id, st->app.org_id, st->app.id)) {
			why = "deployer does not cover this app";
			drc = COFFER_ERR_FORBIDDEN;
		}
		if (!drc && deployer_verify(d.public_key, text, len, g->signature) != COFFER_OK) {
			why = "signature does not verify";
			drc = COFFER_ERR_CRYPTO;
		}
		if (drc) {
			signature_refused(st, what, g->signer, why ? why : "refused");
			continue;
		}
		st->trusted = d;
		st->have_trusted = 1;
		memcpy(signer, d.id, STORE_ID_SIZE);
		rc = COFFER_OK;
		break;
	}
	store_signature_list_release(&sigs);
	return rc;
}

/*
 * The release's statement (deployer.h: the token's app, the release's
 * config, the token's secrets version and that version's manifest) and,
 * for a version > 0, the manifest itself, each signed by a live deployer
 * of the app. *why and the failed check on a refusal.
 */
static enum coffer_err check_signatures(const struct keeper_keys *keys, struct store *s, struct open_state *st,
					const char **why)
{
	const char *manifest = st->have_list ? st->list.manifest_text : NULL;
	size_t manifest_len = manifest ? strlen(manifest) : 0;
	char *text = NULL;
	size_t len = 0;
	enum coffer_err rc;

	if ((st->claims.secrets_version != 0) != (manifest != NULL)) {
		*why = "secrets manifest failed verification"; /* check_manifest refused this already */
		return COFFER_ERR_CRYPTO;
	}
	/* The app row's org is the api's to write: only the org the keeper bound the app to decides coverage. */
	if (st->have_app) {
		rc = keeper_app_org_check(keys, s, st->app.id, st->app.org_id);
		if (rc == COFFER_ERR_CRYPTO) {
			st->failed_check = "app_org";
			*why = WHY_APP_ORG;
			return COFFER_ERR_FORBIDDEN;
		}
		if (rc)
			return rc;
		st->org_verified = 1;
	}
	rc = deployer_release_text(st->claims.app, st->release.config, strlen(st->release.config),
				   st->claims.secrets_version, manifest, manifest_len, &text, &len);
	if (rc)
		return rc;
	rc = signed_by(keys, s, st, "statement", text, len, st->deployer);
	free(text);
	if (rc == COFFER_ERR_FORBIDDEN) {
		st->failed_check = "statement_signature";
		*why = WHY_STATEMENT;
	}
	if (rc || !manifest)
		return rc;
	rc = signed_by(keys, s, st, "manifest", manifest, manifest_len, st->manifest_deployer);
	if (rc == COFFER_ERR_FORBIDDEN) {
		st->failed_check = "manifest_signature";
		*why = WHY_MANIFEST;
	}
	return rc;
}

/*
 * An opened value as the manifest that a deployer signed says it is: no
 * NUL, at most DELIVERY_VALUE_MAX bytes, and its digest under the app's
 * digest subkey (which the keeper derives itself) equal to the entry's,
 * which check_manifest proved is the manifest's. *why on a refusal.
 */
static enum coffer_err check_value(struct open_state *st, const struct store_secret *it, const struct secret *app_dk,
				   const struct secret *value, const char **why)
{
	char d[DIGEST_HEX_LEN + 1];
	const char *check = NULL;
	if (secret_len(value) > DELIVERY_VALUE_MAX) {
		check = "value_too_large";
	} else if (secret_has_nul(value)) {
		check = "value_nul";
	} else {
		enum coffer_err rc = digest_value(app_dk, value, d);
		if (rc)
			return rc;
		if (!digest_equal(d, it->digest))
			check = "value_digest";
	}
	if (check) {
		*why = WHY_SECRET;
		return item_refused(st, it->name, it->key_version, check);
	}
	return COFFER_OK;
}

/*
 * Opens every item of st->list with the app's keys into values[i]. The
 * app's private key, its digest subkey and the values are all carved from
 * arena; each key version is loaded once per run of equal versions, and
 * its public key comes with it (no multiplication of our own). *why is set
 * on a refusal.
 */
static enum coffer_err open_items(const struct keeper_keys *keys, struct store *s, struct open_state *st,
				  struct secret_arena *arena, struct secret **values, const char **why)
{
	const char *app_id = st->claims.app;
	struct secret *sk = NULL, *dk = NULL;
	unsigned char pk[HPKE_PK_LEN];
	uint64_t loaded = 0;
	enum coffer_err rc = secret_arena_take(arena, DIGEST_KEY_LEN, &dk);
	if (!rc)
		rc = digest_app_key_into(keys->digest, app_id, dk);
	if (!rc)
		rc = secret_arena_take(arena, HPKE_SK_LEN, &sk);

	for (size_t i = 0; i < st->list.n && !rc; i++) {
		const struct store_secret *it = &st->list.items[i];
		if (it->key_version < 1 || it->key_version > UINT32_MAX) {
			rc = item_refused(st, it->name, it->key_version, "key_version");
			*why = "secret failed verification";
			break;
		}
		if (loaded != it->key_version) {
			rc = keeper_app_key_load_into(keys, s, app_id, it->key_version, sk, pk);
			if (rc == COFFER_ERR_CRYPTO || rc == COFFER_ERR_NOT_FOUND || rc == COFFER_ERR_INVALID) {
				/* keeper_app_key_load logged tampering; a missing key is the store lying too */
				rc = item_refused(st, it->name, it->key_version, "app_key");
				*why = "app key failed verification";
			}
			if (rc)
				break;
			loaded = it->key_version;
		}
		if (it->ciphertext_len < VAULT_SEAL_OVERHEAD) {
			rc = COFFER_ERR_INVALID;
		} else {
			rc = secret_arena_take(arena, it->ciphertext_len - VAULT_SEAL_OVERHEAD, &values[i]);
			if (!rc)
				rc = vault_open_value_into(sk, pk, app_id, it->name, (uint32_t)it->key_version,
							   it->value_id, it->ciphertext, it->ciphertext_len, values[i]);
		}
		if (rc == COFFER_ERR_CRYPTO || rc == COFFER_ERR_INVALID) {
			rc = item_refused(st, it->name, it->key_version, "ciphertext");
			*why = WHY_SECRET;
		}
		if (!rc)
			rc = check_value(st, it, dk, values[i], why);
	}
	sodium_memzero(pk, sizeof(pk));
	secret_free(sk); /* carved: wiped now, the arena's block stays */
	secret_free(dk);
	return rc;
}

/*
 * Each server thread keeps one secure arena for its opens (secret_arena_reuse):
 * an open wipes it whole when done, so no value outlives its open, and
 * it costs no sodium_malloc (mmap, mprotect, mlock; munmap at the end)
 * unless it needs more room than the thread's arena has. Freed at thread exit.
 */
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static int scratch_ok;

static void scratch_destroy(void *a)
{
	secret_arena_free(a);
}

static void scratch_key_make(void)
{
	scratch_ok = pthread_key_create(&scratch_key, scratch_destroy) == 0;
}

/* The thread's arena, emptied and with room for count secrets of total bytes. */
static enum coffer_err scratch_get(size_t count, size_t total, struct secret_arena **out)
{
	struct secret_arena *a;
	enum coffer_err rc;

	pthread_once(&scratch_once, scratch_key_make);
	if (!scratch_ok)
		return COFFER_ERR_NOMEM;
	a = pthread_getspecific(scratch_key);
	rc = secret_arena_reuse(&a, count, total);
	if (pthread_setspecific(scratch_key, a) && !rc) {
		secret_arena_free(a);
		return COFFER_ERR_NOMEM;
	}
	if (!rc)
		*out = a;
	return rc;
}

/*
 * The secure scratch for one open: the values of st->list, the app's
 * digest subkey, its private key and the delivery's plaintext. Sizes over
 * the delivery's limits (a value over 64 KiB, all over 1 MiB) refuse the
 * open here, before anything is opened.
 */
static enum coffer_err values_arena(struct open_state *st, struct secret_arena **arena, const char **why)
{
	const struct store_secret_list *l = &st->list;
	size_t total = 0, names = 0;

	for (size_t i = 0; i < l->n; i++) {
		size_t len = l->items[i].ciphertext_len;
		names += strlen(l->items[i].name);
		if (len < VAULT_SEAL_OVERHEAD)
			continue; /* refused when its turn comes */
		len -= VAULT_SEAL_OVERHEAD;
		if (len > DELIVERY_VALUE_MAX || len > DELIVERY_VALUES_TOTAL_MAX - total) {
			*why = WHY_SECRET;
			return item_refused(st, l->items[i].name, l->items[i].key_version,
					    len > DELIVERY_VALUE_MAX ? "value_too_large" : "values_too_large");
		}
		total += len;
	}
	/* names are bounded by the store's rows (DELIVERY_ITEMS_MAX of at most DELIVERY_NAME_MAX): no overflow */
	return scratch_get(l->n + 3, total + DIGEST_KEY_LEN + HPKE_SK_LEN + delivery_plaintext_size(l->n, names, total),
			   arena);
}

/* Opens the version's values and seals them to the host for (host, machine, jti). */
static enum coffer_err open_and_seal(const struct keeper_keys *keys, struct store *s, struct open_state *st,
				     struct buf *sealed, const char **why)
{
	size_t n = st->have_list ? st->list.n : 0;
	struct secret_arena *arena = NULL;
	struct secret **values = NULL;
	struct delivery_item *items = NULL;
	enum coffer_err rc = COFFER_OK;

	if (n > DELIVERY_ITEMS_MAX) {
		rc = COFFER_ERR_TOO_LARGE;
		goto out;
	}
	rc = values_arena(st, &arena, why); /* with no values too: the delivery's plaintext */
	if (rc)
		goto out;
	if (n) {
		values = calloc(n, sizeof(*values));
		items = calloc(n, sizeof(*items));
		if (!values || !items) {
			rc = COFFER_ERR_NOMEM;
			goto out;
		}
		rc = open_items(keys, s, st, arena, values, why);
		if (rc)
			goto out;
		for (size_t i = 0; i < n; i++) {
			items[i].name = st->list.items[i].name;
			items[i].value = values[i];
		}
	}
	rc = delivery_seal_in(st->host->seal_pk, st->host->id, st->claims.machine, st->claims.jti, st->spec_hash,
			      items, n, arena, sealed);
out:
	secret_arena_wipe(arena); /* every value, key and the plaintext at once; the block is the thread's */
	free(items);
	free(values);
	return rc;
}

/*
 * The checks an open and a KMS use share (one function, so they cannot
 * drift): st->claims names the machine, on st->host. The machine row
 * verifies, is on this host, is not destroyed and is of the claims' app;
 * the release (claims.release) is known; the secrets version is known, is
 * the one asked for, and its entries are its manifest's; deployers of the
 * app signed the release and the manifest (check_signatures).
 * from_machine (a KMS use): the app and the machine's release (the running
 * one, else the desired one) and the release's secrets version are taken
 * from the machine's row, an unknown app is refused; an open has them from
 * its token. *why on a refusal.
 */
static enum coffer_err machine_grant(const struct keeper_keys *keys, struct store *s, struct open_state *st,
				     int from_machine, const char **why)
{
	struct store_machine m;
	enum coffer_err rc;

	rc = store_machine_get(s, st->claims.machine, &m);
	if (rc == COFFER_ERR_NOT_FOUND || rc == COFFER_ERR_INVALID) {
		*why = "unknown machine";
		return COFFER_ERR_NOT_FOUND;
	}
	if (rc == COFFER_ERR_TAMPERED) { /* logged row_tampered by the store */
		*why = "machine row failed authentication (tampered)";
		return rc;
	}
	if (rc)
		return rc;
	/* another host learns nothing of a machine it does not run, not even that it is destroyed */
	if (strcmp(m.host_id, st->host->id) != 0) {
		*why = "machine is not on this host";
		return COFFER_ERR_FORBIDDEN;
	}
	if (strcmp(m.state, "destroyed") == 0) {
		*why = "machine is destroyed";
		return COFFER_ERR_CONFLICT;
	}
	if (from_machine) {
		if (str_copy(st->claims.app, sizeof(st->claims.app), m.app_id))
			return COFFER_ERR_INTERNAL;
		st->claims.release = m.running_release ? m.running_release : m.desired_release;
		rc = store_app_get(s, m.app_id, &st->app);
		if (rc == COFFER_ERR_TAMPERED)
			*why = "app row failed authentication (tampered)";
		if (rc == COFFER_ERR_NOT_FOUND)
			*why = "unknown app";
		if (rc)
			return rc;
		st->have_app = 1;
	}
	if (strcmp(m.app_id, st->claims.app) != 0) {
		*why = "machine belongs to another app";
		return COFFER_ERR_FORBIDDEN;
	}
	/* The release: an open's delivery is bound to its config, the spec the agent will exec. */
	rc = store_release_get(s, st->claims.app, st->claims.release, &st->release);
	if (rc == COFFER_ERR_NOT_FOUND || rc == COFFER_ERR_INVALID) { /* INVALID: release 0 */
		*why = "unknown release";
		return COFFER_ERR_NOT_FOUND;
	}
	if (rc == COFFER_ERR_TAMPERED) {
		*why = "release row failed authentication (tampered)";
		return rc;
	}
	if (rc)
		return rc;
	st->have_release = 1;
	deployer_hash_hex(st->release.config, strlen(st->release.config), st->spec_hash);
	if (from_machine)
		st->claims.secrets_version = st->release.secrets_version;
	/* Version 0: the app had no secrets when the release was made (not the head: that is store_secrets_get's 0). */
	if (st->claims.secrets_version != 0) {
		rc = store_secrets_get(s, st->claims.app, st->claims.secrets_version, &st->list);
		if (rc == COFFER_ERR_NOT_FOUND) {
			*why = "unknown secrets version";
			return rc;
		}
		if (rc == COFFER_ERR_TAMPERED) {
			*why = "secrets version row failed authentication (tampered)";
			return rc;
		}
		if (rc)
			return rc;
		st->have_list = 1;
		if (st->list.version != st->claims.secrets_version) {
			log_warn("secrets_version_mismatch", LF_S("app_id", st->claims.app),
				 LF_I("version", st->claims.secrets_version));
			*why = "secret failed verification";
			return COFFER_ERR_CRYPTO;
		}
		/* Every entry is the manifest's before any value is opened: a mismatch refuses the whole open. */
		rc = check_manifest(st, why);
		if (rc)
			return rc;
	}
	/* Deployers of the app signed what runs with which secrets, and those secrets: else nothing is opened. */
	return check_signatures(keys, s, st, why);
}

/* The checks of RUNPATH.md in their order, then the open; *why on a refusal. */
static enum coffer_err decide(const struct keeper_keys *keys, struct store *s, struct open_state *st,
			      const char *token, size_t token_len, int64_t now, struct buf *sealed, const char **why)
{
	enum coffer_err rc;

	rc = boottoken_verify(keys->boot_pk, token, token_len, now, &st->claims);
	if (rc == COFFER_ERR_NOMEM)
		return rc;
	if (rc) {
		*why = rc == COFFER_ERR_UNAUTH ? "boot token expired or not yet valid" : "invalid boot token";
		return COFFER_ERR_UNAUTH;
	}
	st->have_claims = 1;
	/* The app, for the audit; an app that is gone leaves the event without one. */
	rc = store_app_get(s, st->claims.app, &st->app);
	if (rc == COFFER_OK)
		st->have_app = 1;
	else if (rc == COFFER_ERR_TAMPERED) { /* logged row_tampered by the store */
		*why = "app row failed authentication (tampered)";
		return rc;
	} else if (rc != COFFER_ERR_NOT_FOUND)
		return rc;
	if (strcmp(st->claims.host, st->host->id) != 0) {
		*why = "boot token is for another host";
		return COFFER_ERR_FORBIDDEN;
	}
	rc = machine_grant(keys, s, st, 0, why);
	if (rc)
		return rc;
	return open_and_seal(keys, s, st, sealed, why);
}

enum coffer_err keeper_open(const struct keeper_keys *keys, struct store *s, const struct store_host *host,
			    const char *token, size_t token_len, int64_t now, const char *request_id, struct buf *sealed,
			    const char **why)
{
	struct open_state st;
	struct buf out;
	const char *reason = NULL;
	enum coffer_err rc, arc;

	memset(&st, 0, sizeof(st));
	st.host = host;
	st.now = now;
	buf_init(&out, sealed->max);
	rc = decide(keys, s, &st, token, token_len, now, &out, &reason);
	if (rc != COFFER_OK && rc != COFFER_ERR_UNAUTH && rc != COFFER_ERR_FORBIDDEN && rc != COFFER_ERR_NOT_FOUND &&
	    rc != COFFER_ERR_CONFLICT && rc != COFFER_ERR_CRYPTO && rc != COFFER_ERR_TAMPERED)
		reason = NULL; /* a store or resource error, not a refusal */
	/* The event first, with the token spent: an open that cannot be audited is not delivered. */
	int spent = 0;
	arc = audit(s, &st, rc, reason, request_id, &spent);
	if (!rc && spent) {
		/* read-once: spent by an earlier open (a replay, or an agent retrying a lost answer) */
		rc = COFFER_ERR_UNAUTH;
		reason = WHY_SPENT;
		arc = audit(s, &st, rc, reason, request_id, &spent);
	} else if (!rc && arc == COFFER_ERR_CONFLICT) {
		/* a concurrent change won (a serialisation failure, a deadlock): not spent, try again */
		arc = COFFER_ERR_UNAVAILABLE;
	}
	if (!rc && arc)
		rc = arc;
	if (!rc) {
		log_info("secrets_opened", LF_S("host_id", host->id), LF_S("machine_id", st.claims.machine),
			 LF_S("app_id", st.claims.app), LF_I("version", st.claims.secrets_version),
			 LF_I("count", st.have_list ? st.list.n : 0), LF_S("jti", st.claims.jti));
		buf_release(sealed);
		*sealed = out;
		buf_init(&out, 0);
	} else {
		log_info("secrets_open_refused", LF_S("host_id", host->id),
			 LF_S("machine_id", st.have_claims ? st.claims.machine : NULL),
			 LF_S("app_id", st.have_claims ? st.claims.app : NULL),
			 LF_S("reason", reason ? reason : coffer_err_name(rc)));
	}
	metrics_counter_add(&metric_keeper_opens, 1, !rc ? "opened" : reason ? "refused" : "error", coffer_err_name(rc));
	*why = reason;
	buf_release(&out);
	store_secret_list_release(&st.list);
	store_release_clear(&st.release);
	return rc;
}

enum coffer_err keeper_kms_grant(const struct keeper_keys *keys, struct store *s, const struct store_host *host,
				 const char *machine_id, char app[STORE_ID_SIZE], const char **why)
{
	struct open_state st;
	enum coffer_err rc;

	memset(&st, 0, sizeof(st));
	st.host = host;
	*why = NULL;
	/* the checks of an open, with the machine's row where an open has its token's claims */
	if (str_copy(st.claims.machine, sizeof(st.claims.machine), machine_id) ||
	    str_copy(st.claims.host, sizeof(st.claims.host), host->id)) {
		*why = "unknown machine";
		return COFFER_ERR_NOT_FOUND;
	}
	st.have_claims = 1;
	rc = machine_grant(keys, s, &st, 1, why);
	if (!rc)
		rc = str_copy(app, STORE_ID_SIZE, st.claims.app);
	store_secret_list_release(&st.list);
	store_release_clear(&st.release);
	return rc;
}
