#include "delivery.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

#define ID_LEN_BYTES 2
#define AAD_MAX (3 * (ID_LEN_BYTES + DELIVERY_ID_MAX) + ID_LEN_BYTES + DELIVERY_SPEC_HASH_LEN)
#define NAME_LEN_BYTES 2
#define VALUE_LEN_BYTES 4

static void put_u16(unsigned char *p, size_t v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

static void put_u32(unsigned char *p, size_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static size_t get_u16(const unsigned char *p)
{
	return (size_t)p[0] << 8 | p[1];
}

static size_t get_u32(const unsigned char *p)
{
	return (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
}

static enum coffer_err add_id(struct buf *b, const char *id)
{
	size_t n = id ? strnlen(id, DELIVERY_ID_MAX + 1) : 0;
	unsigned char len[ID_LEN_BYTES];

	if (n == 0 || n > DELIVERY_ID_MAX)
		return COFFER_ERR_INVALID;
	put_u16(len, n);
	enum coffer_err rc = buf_add(b, len, sizeof(len));
	return rc ? rc : buf_add(b, id, n);
}

/* 64 lower-case hex characters, nothing else. */
static int spec_hash_ok(const char *h)
{
	if (!h || strnlen(h, DELIVERY_SPEC_HASH_SIZE) != DELIVERY_SPEC_HASH_LEN)
		return 0;
	for (size_t i = 0; i < DELIVERY_SPEC_HASH_LEN; i++)
		if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f')))
			return 0;
	return 1;
}

static enum coffer_err delivery_aad(const char *host_id, const char *machine_id, const char *jti,
				    const char *spec_hash, struct buf *aad)
{
	if (!spec_hash_ok(spec_hash))
		return COFFER_ERR_INVALID;
	enum coffer_err rc = add_id(aad, host_id);
	if (!rc)
		rc = add_id(aad, machine_id);
	if (!rc)
		rc = add_id(aad, jti);
	if (!rc)
		rc = add_id(aad, spec_hash); /* its length is always DELIVERY_SPEC_HASH_LEN */
	return rc;
}

/* ^[A-Za-z_][A-Za-z0-9_]*$, 1..DELIVERY_NAME_MAX bytes. */
static int name_ok(const char *s, size_t n)
{
	if (n == 0 || n > DELIVERY_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || (i > 0 && c >= '0' && c <= '9')))
			return 0;
	}
	return 1;
}

/* Byte order of (a, an) and (b, bn); a prefix sorts first, as with strcmp. */
static int name_cmp(const char *a, size_t an, const char *b, size_t bn)
{
	int c = memcmp(a, b, an < bn ? an : bn);
	if (c)
		return c;
	return an < bn ? -1 : an > bn;
}

static int item_cmp(const void *x, const void *y)
{
	const struct delivery_item *a = *(const struct delivery_item *const *)x;
	const struct delivery_item *b = *(const struct delivery_item *const *)y;
	return strcmp(a->name, b->name);
}

void delivery_list_init(struct delivery_list *l)
{
	l->items = NULL;
	l->n = 0;
	l->arena = NULL;
}

void delivery_list_release(struct delivery_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		secret_free(l->items[i].value);
	free(l->items);
	secret_arena_free(l->arena); /* wipes every value at once */
	delivery_list_init(l);
}

/* Checks items and sorts pointers to them into *sorted; *size gets the
 * plaintext's length. */
static enum coffer_err check_items(const struct delivery_item *items, size_t n,
				   const struct delivery_item ***sorted, size_t *size)
{
	const struct delivery_item **order = NULL;
	size_t total = 0, len = DELIVERY_COUNT_LEN;

	if (n > DELIVERY_ITEMS_MAX)
		return COFFER_ERR_TOO_LARGE;
	if (n == 0) {
		*sorted = NULL;
		*size = len;
		return COFFER_OK;
	}
	if (!items)
		return COFFER_ERR_INVALID;
	for (size_t i = 0; i < n; i++) {
		const struct delivery_item *it = &items[i];
		if (!it->name || !it->value || !name_ok(it->name, strnlen(it->name, DELIVERY_NAME_MAX + 1)) ||
		    secret_has_nul(it->value))
			return COFFER_ERR_INVALID;
		size_t vl = secret_len(it->value);
		if (vl > DELIVERY_VALUE_MAX || vl > DELIVERY_VALUES_TOTAL_MAX - total)
			return COFFER_ERR_TOO_LARGE;
		total += vl;
		len += NAME_LEN_BYTES + strlen(it->name) + VALUE_LEN_BYTES + vl;
	}
	order = calloc(n, sizeof(*order));
	if (!order)
		return COFFER_ERR_NOMEM;
	for (size_t i = 0; i < n; i++)
		order[i] = &items[i];
	qsort(order, n, sizeof(*order), item_cmp);
	for (size_t i = 1; i < n; i++) {
		if (strcmp(order[i - 1]->name, order[i]->name) == 0) {
			free(order);
			return COFFER_ERR_INVALID; /* a name twice */
		}
	}
	*sorted = order;
	*size = len;
	return COFFER_OK;
}

size_t delivery_plaintext_size(size_t n, size_t names_len, size_t values_len)
{
	return DELIVERY_COUNT_LEN + n * (NAME_LEN_BYTES + VALUE_LEN_BYTES) + names_len + values_len;
}

enum coffer_err delivery_seal(const unsigned char host_pk[HPKE_PK_LEN], const char *host_id,
			      const char *machine_id, const char *jti, const char *spec_hash,
			      const struct delivery_item *items, size_t n, struct buf *sealed)
{
	return delivery_seal_in(host_pk, host_id, machine_id, jti, spec_hash, items, n, NULL, sealed);
}

enum coffer_err delivery_seal_in(const unsigned char host_pk[HPKE_PK_LEN], const char *host_id,
				 const char *machine_id, const char *jti, const char *spec_hash,
				 const struct delivery_item *items, size_t n, struct secret_arena *scratch,
				 struct buf *sealed)
{
	const struct delivery_item **order = NULL;
	struct secret *pt = NULL;
	struct buf aad;
	size_t size = 0;
	enum coffer_err rc;

	buf_init(&aad, AAD_MAX);
	rc = delivery_aad(host_id, machine_id, jti, spec_hash, &aad);
	if (rc)
		goto out;
	rc = check_items(items, n, &order, &size);
	if (rc)
		goto out;
	rc = scratch ? secret_arena_take(scratch, size, &pt) : secret_new(size, &pt);
	if (rc)
		goto out;

	unsigned char *p = secret_bytes(pt);
	put_u16(p, n);
	p += DELIVERY_COUNT_LEN;
	for (size_t i = 0; i < n; i++) {
		size_t nl = strlen(order[i]->name), vl = secret_len(order[i]->value);
		put_u16(p, nl);
		p += NAME_LEN_BYTES;
		memcpy(p, order[i]->name, nl);
		p += nl;
		put_u32(p, vl);
		p += VALUE_LEN_BYTES;
		if (vl)
			memcpy(p, secret_cbytes(order[i]->value), vl);
		p += vl;
	}
	rc = hpke_seal(host_pk, DELIVERY_INFO, strlen(DELIVERY_INFO), aad.ptr, aad.len, pt, sealed);
out:
	secret_free(pt);
	free(order);
	buf_release(&aad);
	return rc;
}

/* Parses a plaintext into *out (see the header for every rule). */
static enum coffer_err parse_items(const unsigned char *p, size_t len, struct delivery_list *out)
{
	struct delivery_list l;
	enum coffer_err rc = COFFER_ERR_INVALID;
	size_t pos = 0, total = 0, count;

	delivery_list_init(&l);
	if (len < DELIVERY_COUNT_LEN)
		goto out;
	count = get_u16(p);
	pos += DELIVERY_COUNT_LEN;
	if (count > DELIVERY_ITEMS_MAX)
		goto out;
	if (count) {
		l.items = calloc(count, sizeof(*l.items));
		if (!l.items) {
			rc = COFFER_ERR_NOMEM;
			goto out;
		}
		/* the values together are shorter than the plaintext: one arena for all */
		rc = secret_arena_new(count, len, &l.arena);
		if (rc)
			goto out;
		rc = COFFER_ERR_INVALID;
	}
	for (size_t i = 0; i < count; i++) {
		if (len - pos < NAME_LEN_BYTES)
			goto out;
		size_t nl = get_u16(p + pos);
		pos += NAME_LEN_BYTES;
		if (len - pos < nl || !name_ok((const char *)p + pos, nl))
			goto out;
		const char *name = (const char *)p + pos;
		pos += nl;
		if (i > 0 && name_cmp(l.items[i - 1].name, strlen(l.items[i - 1].name), name, nl) >= 0)
			goto out; /* out of order, or a name twice */
		if (len - pos < VALUE_LEN_BYTES)
			goto out;
		size_t vl = get_u32(p + pos);
		pos += VALUE_LEN_BYTES;
		if (vl > DELIVERY_VALUE_MAX || vl > DELIVERY_VALUES_TOTAL_MAX - total || len - pos < vl ||
		    memchr(p + pos, '\0', vl))
			goto out;
		total += vl;
		rc = secret_arena_take(l.arena, vl, &l.items[i].value);
		if (rc)
			goto out;
		if (vl)
			memcpy(secret_bytes(l.items[i].value), p + pos, vl);
		rc = COFFER_ERR_INVALID;
		pos += vl;
		memcpy(l.items[i].name, name, nl);
		l.items[i].name[nl] = '\0';
		l.n = i + 1;
	}
	if (pos != len)
		goto out; /* trailing bytes */
	*out = l;
	delivery_list_init(&l);
	rc = COFFER_OK;
out:
	delivery_list_release(&l);
	return rc;
}

enum coffer_err delivery_open(const struct secret *host_sk, const char *host_id, const char *machine_id,
			      const char *jti, const char *spec_hash, const void *sealed, size_t sealed_len,
			      struct delivery_list *out)
{
	struct secret *pt = NULL;
	struct buf aad;
	enum coffer_err rc;

	buf_init(&aad, AAD_MAX);
	rc = delivery_aad(host_id, machine_id, jti, spec_hash, &aad);
	if (rc)
		goto out;
	if (sealed_len > DELIVERY_SEALED_MAX) {
		rc = COFFER_ERR_TOO_LARGE;
		goto out;
	}
	rc = hpke_open(host_sk, DELIVERY_INFO, strlen(DELIVERY_INFO), aad.ptr, aad.len, sealed, sealed_len, &pt);
	if (rc)
		goto out;
	rc = parse_items(secret_cbytes(pt), secret_len(pt), out);
out:
	secret_free(pt);
	buf_release(&aad);
	return rc;
}
