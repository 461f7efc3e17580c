/*
 * Secrets: every change is a new immutable version of an app's secrets
 * (docs/STORE.md "Secrets versions"). Versions and entries are entities
 * (store_int.h); the version rules are below.
 */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

#include "banned.h"

static void version_clear(void *item)
{
	struct store_secret_version *v = item;
	free(v->manifest);
	memset(v, 0, sizeof(*v));
}

static const struct store_col version_cols[] = {
	{ "app_id", COL_SKIP, 0, 0, 0, COL_KEY },
	COLF(struct store_secret_version, version, COL_UINT, COL_KEY),
	COLF(struct store_secret_version, created_at, COL_INT, COL_AUTH),
	COLF(struct store_secret_version, actor, COL_TEXT, COL_AUTH),
	COLF(struct store_secret_version, status, COL_TEXT, COL_AUTH),
	COLSTRF("manifest", struct store_secret_version, manifest, STORE_MANIFEST_MAX, COL_AUTH),
	COLMAC,
};
static const struct store_auth version_auth = { STORE_TABLE_SECRET_VERSIONS, STORE_Q_VERSION_ROW,
						 STORE_Q_VERSION_SEAL };
static const struct store_entity version_entity =
	AUTH_ENTITY("secrets version", struct store_secret_version, version_cols, version_clear, &version_auth);

enum coffer_err store_version_row(struct store *s, const char *app_id, uint64_t version,
				  struct store_secret_version *out)
{
	struct store_secret_version v;
	enum coffer_err rc = store_get(s, &version_entity, STORE_Q_VERSION_GET, PARAMS(VT(app_id), VI(version)),
				       out ? out : &v);
	if (rc == COFFER_OK && !out)
		version_clear(&v);
	return rc;
}

enum coffer_err store_secrets_version_get(struct store *s, const char *app_id, uint64_t version,
					  struct store_secret_version *out)
{
	if (!app_id || !out || version == 0 || version > INT64_MAX)
		return COFFER_ERR_INVALID;
	return store_version_row(s, app_id, version, out);
}

void store_secret_version_clear(struct store_secret_version *v)
{
	version_clear(v);
}

enum coffer_err store_secrets_version_max(struct store *s, const char *app_id, uint64_t *max)
{
	if (!app_id || !max)
		return COFFER_ERR_INVALID;
	return store_run_uint(s, STORE_Q_VERSION_MAX, PARAMS(VT(app_id)), max);
}

static void secret_clear(void *item)
{
	struct store_secret *e = item;
	free(e->ciphertext);
	memset(e, 0, sizeof(*e));
}

static const struct store_col secret_cols[] = {
	COLN("e.name", struct store_secret, name, COL_TEXT, 0),
	COLN("e.value_id", struct store_secret, value_id, COL_TEXT, 0),
	COLBYTES("v.ciphertext", struct store_secret, ciphertext, ciphertext_len),
	COLN("v.digest", struct store_secret, digest, COL_TEXT, 0),
	COLN("v.key_version", struct store_secret, key_version, COL_UINT, 0),
	COLN("e.first_set_at", struct store_secret, created_at, COL_INT, 0),
	COLN("v.created_at", struct store_secret, updated_at, COL_INT, 0),
};
static const struct store_entity secret_entity = ENTITY("secret", struct store_secret, secret_cols, secret_clear);

/* ENTRY_STATS: names and ciphertext bytes of a version. */
struct stats {
	uint64_t count;
	uint64_t bytes;
};

static const struct store_col stats_cols[] = {
	COLN("count(*)", struct stats, count, COL_UINT, 0),
	COLN("sum(length(v.ciphertext))", struct stats, bytes, COL_UINT, 0),
};
static const struct store_entity stats_entity = ENTITY("secrets stats", struct stats, stats_cols, NULL);

static enum coffer_err read_stats(struct store *s, const char *app_id, uint64_t version, struct stats *out)
{
	return store_get(s, &stats_entity, STORE_Q_ENTRY_STATS, PARAMS(VT(app_id), VI(version)), out);
}

/* ---- the manifest (store.h) ---- */

#define MANIFEST_MAGIC "coffer secrets manifest v1\n"

/* A word of a manifest line: 1..size-1 bytes, none a space, a control byte or DEL. */
static int word_ok(const char *w, size_t len, size_t size)
{
	if (len == 0 || len >= size)
		return 0;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)w[i] <= ' ' || (unsigned char)w[i] == 0x7f)
			return 0;
	return 1;
}

static int id_ok(const char *id, size_t len)
{
	if (len != STORE_ID_LEN)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
			return 0;
	return 1;
}

static enum coffer_err manifest_header(const char *app_id, uint64_t version, struct buf *out)
{
	return buf_addf(out, MANIFEST_MAGIC "app %s\nversion %llu\n", app_id, (unsigned long long)version);
}

/* The canonical text of (app, version, items sorted by name) into out (reset first). */
static enum coffer_err manifest_build(const char *app_id, uint64_t version, const struct store_manifest_item *items,
				      size_t n, struct buf *out)
{
	buf_reset(out);
	enum coffer_err rc = manifest_header(app_id, version, out);
	for (size_t i = 0; i < n && !rc; i++) {
		const struct store_manifest_item *it = &items[i];
		if (!word_ok(it->name, strlen(it->name), sizeof(it->name)) ||
		    !id_ok(it->value_id, strlen(it->value_id)) ||
		    !word_ok(it->digest, strlen(it->digest), sizeof(it->digest)) ||
		    (i > 0 && strcmp(items[i - 1].name, it->name) >= 0))
			return COFFER_ERR_INVALID;
		rc = buf_addf(out, "%s %s %s\n", it->name, it->value_id, it->digest);
	}
	return rc;
}

/* Copies the word at *p up to `end` (a space or a newline) into dst; moves *p past end. */
static int take_word(const char **p, const char *stop, char end, char *dst, size_t size)
{
	const char *e = memchr(*p, end, (size_t)(stop - *p));
	if (!e || !word_ok(*p, (size_t)(e - *p), size))
		return 0;
	memcpy(dst, *p, (size_t)(e - *p));
	dst[e - *p] = '\0';
	*p = e + 1;
	return 1;
}

/*
 * Parses text as the manifest of exactly (app_id, version): the canonical
 * spelling only (header, sorted unique names, ids of the store's form).
 * COFFER_ERR_CRYPTO for anything else, with *items untouched.
 */
enum coffer_err store_manifest_parse(const char *app_id, uint64_t version, const char *text,
				     struct store_manifest_item **items, size_t *n)
{
	struct buf head;
	struct store_manifest_item *v = NULL;
	size_t count = 0, len;
	const char *p, *stop;
	enum coffer_err rc;

	if (!text)
		return COFFER_ERR_CRYPTO;
	len = strlen(text);
	p = text;
	stop = text + len;
	buf_init(&head, 1024);
	rc = manifest_header(app_id, version, &head);
	if (!rc && (len < head.len || memcmp(text, head.ptr, head.len) != 0))
		rc = COFFER_ERR_CRYPTO;
	if (!rc)
		p += head.len;
	buf_release(&head);
	if (rc)
		return rc;
	for (const char *q = p; q < stop; q++)
		count += *q == '\n';
	v = calloc(count ? count : 1, sizeof(*v));
	if (!v)
		return COFFER_ERR_NOMEM;
	for (size_t i = 0; i < count && !rc; i++) {
		if (!take_word(&p, stop, ' ', v[i].name, sizeof(v[i].name)) ||
		    !take_word(&p, stop, ' ', v[i].value_id, sizeof(v[i].value_id)) ||
		    !id_ok(v[i].value_id, strlen(v[i].value_id)) ||
		    !take_word(&p, stop, '\n', v[i].digest, sizeof(v[i].digest)) ||
		    (i > 0 && strcmp(v[i - 1].name, v[i].name) >= 0))
			rc = COFFER_ERR_CRYPTO;
	}
	if (!rc && p != stop)
		rc = COFFER_ERR_CRYPTO;
	if (rc) {
		free(v);
		return rc;
	}
	*items = v;
	*n = count;
	return COFFER_OK;
}

/* A manifest item on its way into a new version: the head's (seq 0) or a change's (seq i + 1). */
struct pending {
	struct store_manifest_item it;
	size_t seq;
	int remove;
};

static int pending_cmp(const void *a, const void *b)
{
	const struct pending *x = a, *y = b;
	int c = strcmp(x->it.name, y->it.name);
	return c ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

/*
 * The new version's manifest text: base (the head's items) with the
 * changes applied in order (a later change to a name wins), each set name
 * mapped to ids[i].
 */
static enum coffer_err manifest_next(const char *app_id, uint64_t version, const struct store_manifest_item *base,
				     size_t base_n, const struct store_secret_change *changes, size_t n,
				     char (*ids)[STORE_ID_SIZE], struct buf *out)
{
	struct pending *p = calloc(base_n + n ? base_n + n : 1, sizeof(*p));
	struct store_manifest_item *items = NULL;
	size_t total = base_n + n, kept = 0;
	enum coffer_err rc = COFFER_OK;

	if (!p)
		return COFFER_ERR_NOMEM;
	for (size_t i = 0; i < base_n; i++)
		p[i].it = base[i];
	for (size_t i = 0; i < n && !rc; i++) {
		struct pending *e = &p[base_n + i];
		e->seq = i + 1;
		e->remove = changes[i].remove;
		rc = str_copy(e->it.name, sizeof(e->it.name), changes[i].name);
		if (!rc && !e->remove)
			rc = str_copy(e->it.value_id, sizeof(e->it.value_id), ids[i]);
		if (!rc && !e->remove)
			rc = str_copy(e->it.digest, sizeof(e->it.digest), changes[i].digest);
	}
	if (!rc) {
		qsort(p, total, sizeof(*p), pending_cmp);
		items = calloc(total ? total : 1, sizeof(*items));
		if (!items)
			rc = COFFER_ERR_NOMEM;
	}
	if (!rc) {
		/* The last of each name's run wins; a removal leaves nothing. */
		for (size_t i = 0; i < total; i++)
			if ((i + 1 == total || strcmp(p[i].it.name, p[i + 1].it.name) != 0) && !p[i].remove)
				items[kept++] = p[i].it;
		rc = manifest_build(app_id, version, items, kept, out);
	}
	free(items);
	free(p);
	return rc;
}

/* The manifest items of the app's version `version` (none for 0), inside the caller's transaction. */
static enum coffer_err manifest_of(struct store *s, const char *app_id, uint64_t version,
				   struct store_manifest_item **items, size_t *n)
{
	struct store_secret_version v;
	enum coffer_err rc;

	*items = NULL;
	*n = 0;
	if (version == 0)
		return COFFER_OK;
	rc = store_get(s, &version_entity, STORE_Q_VERSION_GET, PARAMS(VT(app_id), VI(version)), &v);
	if (rc)
		return rc;
	rc = store_manifest_parse(app_id, version, v.manifest, items, n);
	version_clear(&v);
	return rc;
}

static enum coffer_err check_change(const struct store_secret_change *c)
{
	if (!c->name)
		return COFFER_ERR_INVALID;
	if (strlen(c->name) >= STORE_NAME_SIZE)
		return COFFER_ERR_TOO_LARGE;
	if (!word_ok(c->name, strlen(c->name), STORE_NAME_SIZE))
		return COFFER_ERR_INVALID; /* a manifest cannot hold it */
	if (c->remove)
		return COFFER_OK;
	if (!c->digest || (!c->ciphertext && c->ciphertext_len) || c->key_version > INT64_MAX ||
	    (c->value_id && !id_ok(c->value_id, strlen(c->value_id))))
		return COFFER_ERR_INVALID;
	if (strlen(c->digest) >= STORE_DIGEST_SIZE || c->ciphertext_len > STORE_CIPHERTEXT_MAX)
		return COFFER_ERR_TOO_LARGE;
	if (!word_ok(c->digest, strlen(c->digest), STORE_DIGEST_SIZE))
		return COFFER_ERR_INVALID;
	return COFFER_OK;
}

/* Checks the new version against the caller's limits, inside the transaction. */
static enum coffer_err check_limits(struct store *s, const char *app_id, uint64_t version,
				    const struct store_secret_limits *lim)
{
	struct stats st;
	uint64_t bytes, overhead;
	enum coffer_err rc;
	if (!lim || (!lim->max_count && !lim->max_bytes))
		return COFFER_OK;
	rc = read_stats(s, app_id, version, &st);
	if (rc)
		return rc;
	overhead = lim->per_value_overhead && st.count > UINT64_MAX / lim->per_value_overhead
			   ? UINT64_MAX
			   : st.count * lim->per_value_overhead;
	bytes = st.bytes > overhead ? st.bytes - overhead : 0;
	if ((lim->max_count && st.count > lim->max_count) || (lim->max_bytes && bytes > lim->max_bytes))
		return COFFER_ERR_TOO_LARGE;
	return COFFER_OK;
}

/* Applies one element of a change to the new version's mapping. */
static enum coffer_err apply_change(struct store *s, const char *app_id, uint64_t version,
				    const struct store_secret_change *c, const char *value_id, int64_t now)
{
	static const unsigned char empty[1];
	if (c->remove)
		return store_run(s, STORE_Q_ENTRY_DELETE, PARAMS(VT(app_id), VI(version), VT(c->name)), NULL);
	enum coffer_err rc = store_run(s, STORE_Q_VALUE_INSERT,
				 PARAMS(VT(value_id), VT(app_id), VT(c->name),
					VB(c->ciphertext ? c->ciphertext : empty, c->ciphertext_len), VT(c->digest),
					VI(c->key_version), VI(now)),
				 NULL);
	if (rc)
		return rc;
	return store_run(s, STORE_Q_ENTRY_UPSERT, PARAMS(VT(app_id), VI(version), VT(c->name), VT(value_id), VI(now)),
		   NULL);
}

enum coffer_err store_manifest_next(const char *app_id, uint64_t head_version, const char *head_manifest,
				    uint64_t version, const struct store_secret_change *changes, size_t n,
				    struct buf *out)
{
	struct store_manifest_item *base = NULL;
	size_t base_n = 0;
	char(*ids)[STORE_ID_SIZE] = NULL;
	enum coffer_err rc = COFFER_OK;

	if (!app_id || !out || (n && !changes) || version == 0 || version > INT64_MAX)
		return COFFER_ERR_INVALID;
	for (size_t i = 0; i < n && !rc; i++) {
		rc = check_change(&changes[i]);
		if (!rc && !changes[i].remove && !changes[i].value_id)
			rc = COFFER_ERR_INVALID;
	}
	if (rc)
		return rc;
	ids = calloc(n ? n : 1, sizeof(*ids));
	if (!ids)
		return COFFER_ERR_NOMEM;
	for (size_t i = 0; i < n; i++)
		if (!changes[i].remove)
			memcpy(ids[i], changes[i].value_id, STORE_ID_SIZE); /* id_ok: exactly STORE_ID_LEN */
	if (head_version)
		rc = store_manifest_parse(app_id, head_version, head_manifest, &base, &base_n);
	if (!rc)
		rc = manifest_next(app_id, version, base, base_n, changes, n, ids, out);
	free(base);
	free(ids);
	return rc;
}

enum coffer_err store_secrets_put(struct store *s, const char *app_id, const struct store_secret_change *changes,
				  size_t n, const char *actor, const char *status,
				  const struct store_secret_limits *limits, uint64_t *new_version)
{
	return store_secrets_put_signed(s, app_id, changes, n, actor, status, limits, NULL, new_version);
}

enum coffer_err store_secrets_put_signed(struct store *s, const char *app_id,
					 const struct store_secret_change *changes, size_t n, const char *actor,
					 const char *status, const struct store_secret_limits *limits,
					 const char *expect_manifest, uint64_t *new_version)
{
	struct store_app head_row;
	struct store_manifest_item *base = NULL;
	size_t base_n = 0;
	char(*ids)[STORE_ID_SIZE] = NULL;
	struct buf manifest;
	uint64_t head, version = 0;
	int64_t now = store_now_ms();
	enum coffer_err rc;

	if (!app_id || !actor || !status || !*status || n == 0 || !changes)
		return COFFER_ERR_INVALID;
	if (strlen(actor) >= STORE_ACTOR_SIZE || strlen(status) >= STORE_STATUS_SIZE)
		return COFFER_ERR_TOO_LARGE;
	for (size_t i = 0; i < n; i++) {
		rc = check_change(&changes[i]);
		if (rc)
			return rc;
	}

	ids = calloc(n, sizeof(*ids));
	if (!ids)
		return COFFER_ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		if (changes[i].remove)
			continue;
		if (changes[i].value_id)
			memcpy(ids[i], changes[i].value_id, STORE_ID_SIZE); /* id_ok: exactly STORE_ID_LEN */
		else
			store_new_id(ids[i]);
	}
	buf_init(&manifest, STORE_MANIFEST_MAX);

	rc = store_begin(s, 1);
	if (rc)
		goto done;
	/* The app row lock serialises every writer of this app's secrets. */
	rc = store_lock_app_row(s, app_id, &head_row);
	if (rc)
		goto out;
	head = head_row.secrets_head;
	rc = store_run_uint(s, STORE_Q_VERSION_MAX, PARAMS(VT(app_id)), &version);
	if (rc)
		goto out;
	version++;
	/* The manifest: the head's, not its entries, with the changes applied. */
	rc = manifest_of(s, app_id, head, &base, &base_n);
	if (!rc)
		rc = manifest_next(app_id, version, base, base_n, changes, n, ids, &manifest);
	if (!rc && expect_manifest && strcmp(manifest.ptr, expect_manifest) != 0)
		rc = COFFER_ERR_CONFLICT; /* the head or the next version moved since the deployer signed */
	if (rc)
		goto out;
	rc = store_write(s, &version_entity, STORE_Q_VERSION_INSERT,
			 PARAMS(VT(app_id), VI(version), VI(now), VT(actor), VT(status), VT(manifest.ptr)),
			 PARAMS(VT(app_id), VI(version)));
	if (rc)
		goto out;
	if (head) {
		rc = store_run(s, STORE_Q_ENTRY_COPY, PARAMS(VT(app_id), VI(head), VI(version)), NULL);
		if (rc)
			goto out;
	}
	for (size_t i = 0; i < n; i++) {
		rc = apply_change(s, app_id, version, &changes[i], ids[i], now);
		if (rc)
			goto out;
	}
	rc = check_limits(s, app_id, version, limits);
	if (rc)
		goto out;
	rc = store_write(s, &store_app_entity, STORE_Q_APP_SET_HEAD, PARAMS(VT(app_id), VI(version)),
			 PARAMS(VT(app_id)));
out:
	rc = store_finish(s, rc);
	if (rc == COFFER_OK)
		*new_version = version;
done:
	buf_release(&manifest);
	free(base);
	free(ids);
	return rc;
}

/*
 * The version to read: `version`, or the app's head when it is 0 (0 when
 * the app has none). NOT_FOUND for an unknown app or version; *v is the
 * version's row when there is one.
 */
static enum coffer_err pick_version(struct store *s, const char *app_id, uint64_t version,
				    struct store_secret_version *v)
{
	struct store_app a;
	enum coffer_err rc;
	memset(v, 0, sizeof(*v));
	if (version == 0) {
		rc = store_app_get(s, app_id, &a);
		if (rc || a.secrets_head == 0)
			return rc;
		version = a.secrets_head;
	}
	return store_version_row(s, app_id, version, v);
}

enum coffer_err store_secrets_get(struct store *s, const char *app_id, uint64_t version,
				  struct store_secret_list *out)
{
	struct store_secret_list l = { 0 };
	struct store_secret_version v;
	enum coffer_err rc;

	if (!app_id || version > INT64_MAX)
		return COFFER_ERR_INVALID;
	rc = store_begin(s, 0);
	if (rc)
		return rc;
	rc = pick_version(s, app_id, version, &v);
	if (rc || v.version == 0)
		goto out;
	l.version = v.version;
	l.created_at = v.created_at;
	memcpy(l.actor, v.actor, sizeof(l.actor));
	memcpy(l.status, v.status, sizeof(l.status));
	rc = store_list(s, &secret_entity, STORE_Q_ENTRY_LIST, PARAMS(VT(app_id), VI(v.version)),
			(void **)&l.items, &l.n);
	if (rc)
		goto out;
	rc = store_manifest_parse(app_id, v.version, v.manifest, &l.manifest, &l.manifest_n);
	l.manifest_ok = rc == COFFER_OK;
	if (rc == COFFER_ERR_CRYPTO)
		rc = COFFER_OK; /* the caller judges a version without a valid manifest */
	l.manifest_text = v.manifest; /* the list owns it now */
	v.manifest = NULL;
out:
	version_clear(&v);
	if (rc == COFFER_OK && l.version == 0)
		l.manifest_ok = 1; /* no version: nothing to vouch for */
	rc = store_finish(s, rc);
	if (rc == COFFER_OK)
		*out = l;
	else
		store_secret_list_release(&l);
	return rc;
}

void store_secret_list_release(struct store_secret_list *l)
{
	store_items_free(&secret_entity, (void **)&l->items, &l->n);
	free(l->manifest);
	free(l->manifest_text);
	memset(l, 0, sizeof(*l));
}

enum coffer_err store_secrets_history(struct store *s, const char *app_id, struct store_secret_version_list *out)
{
	struct store_secret_version_list l = { 0 };
	struct store_app a;
	enum coffer_err rc;

	if (!app_id)
		return COFFER_ERR_INVALID;
	rc = store_begin(s, 0);
	if (rc)
		return rc;
	rc = store_app_get(s, app_id, &a);
	if (rc == COFFER_OK)
		rc = store_list(s, &version_entity, STORE_Q_VERSION_LIST, PARAMS(VT(app_id)), (void **)&l.items,
				&l.n);
	rc = store_finish(s, rc);
	if (rc == COFFER_OK)
		*out = l;
	else
		store_secret_version_list_release(&l);
	return rc;
}

void store_secret_version_list_release(struct store_secret_version_list *l)
{
	store_items_free(&version_entity, (void **)&l->items, &l->n);
}

enum coffer_err store_secrets_stats(struct store *s, const char *app_id, uint64_t version, uint64_t *count,
				    uint64_t *bytes)
{
	struct store_secret_version v;
	struct stats st = { 0 };
	enum coffer_err rc;

	if (!app_id || version > INT64_MAX)
		return COFFER_ERR_INVALID;
	rc = store_begin(s, 0);
	if (rc)
		return rc;
	rc = pick_version(s, app_id, version, &v);
	if (rc == COFFER_OK && v.version)
		rc = read_stats(s, app_id, v.version, &st);
	version_clear(&v);
	rc = store_finish(s, rc);
	if (rc == COFFER_OK) {
		*count = st.count;
		*bytes = st.bytes;
	}
	return rc;
}

enum coffer_err store_secrets_set_head(struct store *s, const char *app_id, uint64_t version)
{
	enum coffer_err rc;

	if (!app_id || version > INT64_MAX)
		return COFFER_ERR_INVALID;
	rc = store_begin(s, 1);
	if (rc)
		return rc;
	rc = store_lock_app(s, app_id);
	if (rc == COFFER_OK && version)
		rc = store_version_row(s, app_id, version, NULL);
	if (rc == COFFER_OK)
		rc = store_write(s, &store_app_entity, STORE_Q_APP_SET_HEAD, PARAMS(VT(app_id), VI(version)),
				 PARAMS(VT(app_id)));
	return store_finish(s, rc);
}

enum coffer_err store_secrets_set_status(struct store *s, const char *app_id, uint64_t version, const char *status)
{
	if (!app_id || !status || !*status || version == 0 || version > INT64_MAX)
		return COFFER_ERR_INVALID;
	if (strlen(status) >= STORE_STATUS_SIZE)
		return COFFER_ERR_TOO_LARGE;
	return store_write(s, &version_entity, STORE_Q_VERSION_SET_STATUS, PARAMS(VT(app_id), VI(version), VT(status)),
			   PARAMS(VT(app_id), VI(version)));
}
