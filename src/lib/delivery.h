/*
 * delivery.h — how the keeper hands one machine's secrets to its host.
 * Shared by the keeper (seals what it opened), the agent (opens, builds the
 * environment) and the tests that attack them.
 *
 * HPKE base mode (hpke.h) to the host's X25519 sealing key:
 *   info   = "coffer delivery v2"
 *   aad    = u16(len host_id) || host_id || u16(len machine_id) || machine_id
 *            || u16(len jti) || jti                     each id 1..DELIVERY_ID_MAX bytes
 *            || u16(64) || spec_hash                    64 lower-case hex characters
 *   sealed = enc (32) || ciphertext || tag (16)
 * The aad binds a delivery to its host, its machine, the boot token (jti)
 * it answers and the machine spec it is for: spec_hash is the hex SHA-256
 * of the release's config text, byte for byte as stored and signed
 * (deployer_hash_hex). The keeper seals with the hash of the config whose
 * signed statement it checked; the agent opens with the hash of the config
 * it is about to exec. One replayed to another machine, host or token, or
 * opened for a config the api changed, fails. (v1 had no spec hash.)
 *
 * Plaintext (big-endian, built in secure memory, never JSON):
 *   u16 count
 *   count times: u16 name length || name || u32 value length || value
 * Items are in strictly ascending byte order of name, so the encoding of a
 * list is unique and a name appears once. delivery_seal sorts its input.
 * Limits, checked on seal and on open: count <= DELIVERY_ITEMS_MAX; a name
 * matches ^[A-Za-z_][A-Za-z0-9_]*$ and is at most DELIVERY_NAME_MAX bytes;
 * a value is any bytes but NUL, at most DELIVERY_VALUE_MAX bytes; all
 * values together at most DELIVERY_VALUES_TOTAL_MAX bytes (the api's limits
 * for one app, DESIGN.md). Nothing may follow the last item.
 *
 * Ownership: the host's private key, the plaintext and every value are
 * struct secret; names are not secret (secrets list shows them). A struct
 * delivery_list owns its names and values (the values carved from one
 * secret_arena, so a value lives exactly as long as its list);
 * delivery_list_release wipes and frees them. Sealed bytes go to a caller's struct buf, replaced only on
 * success. Outputs are written only on success.
 *
 * Errors: COFFER_ERR_INVALID for a malformed id or spec hash, name or value, a duplicate
 * name, sealed bytes too short, or a plaintext that does not parse;
 * COFFER_ERR_TOO_LARGE on seal for a limit passed, and on open for sealed
 * bytes over DELIVERY_SEALED_MAX; COFFER_ERR_CRYPTO when the seal does not
 * open (another key, another host, machine, jti or spec hash, any tampering).
 */
#ifndef COFFER_DELIVERY_H
#define COFFER_DELIVERY_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "hpke.h"
#include "secret.h"

#define DELIVERY_INFO "coffer delivery v2"
#define DELIVERY_SPEC_HASH_LEN 64 /* hex SHA-256 of the release config */
#define DELIVERY_SPEC_HASH_SIZE (DELIVERY_SPEC_HASH_LEN + 1)

#define DELIVERY_ID_MAX 255                      /* longest host id, machine id or jti, in bytes */
#define DELIVERY_ITEMS_MAX 1000
#define DELIVERY_NAME_MAX 255
#define DELIVERY_NAME_SIZE (DELIVERY_NAME_MAX + 1)
#define DELIVERY_VALUE_MAX ((size_t)64 << 10)
#define DELIVERY_VALUES_TOTAL_MAX ((size_t)1 << 20)
#define DELIVERY_COUNT_LEN 2
#define DELIVERY_ITEM_OVERHEAD (2 + 4)           /* name and value lengths */
#define DELIVERY_PLAINTEXT_MAX \
	(DELIVERY_COUNT_LEN + DELIVERY_ITEMS_MAX * (DELIVERY_ITEM_OVERHEAD + DELIVERY_NAME_MAX) + \
	 DELIVERY_VALUES_TOTAL_MAX)
#define DELIVERY_OVERHEAD (HPKE_ENC_LEN + HPKE_TAG_LEN) /* sealed length - plaintext length */
#define DELIVERY_SEALED_MAX (DELIVERY_PLAINTEXT_MAX + DELIVERY_OVERHEAD)

/* One secret to deliver; both borrowed from the caller. */
struct delivery_item {
	const char *name;
	const struct secret *value;
};

/* One secret delivered; owned by its list. */
struct delivery_secret {
	char name[DELIVERY_NAME_SIZE];
	struct secret *value;
};

struct delivery_list {
	struct delivery_secret *items; /* ascending by name */
	size_t n;
	struct secret_arena *arena; /* every value is carved from it: one secure allocation per list */
};

/* An empty list. */
void delivery_list_init(struct delivery_list *l);
/* Wipes and frees every value, frees the items; the list is empty after. */
void delivery_list_release(struct delivery_list *l);

/*
 * Seals items[0..n) (any order; n may be 0) to the host's sealing key for
 * (host_id, machine_id, jti, spec_hash). *sealed is replaced on success,
 * and bounded by its max.
 */
COFFER_MUST_CHECK enum coffer_err delivery_seal(const unsigned char host_pk[HPKE_PK_LEN], const char *host_id,
						const char *machine_id, const char *jti, const char *spec_hash,
						const struct delivery_item *items, size_t n, struct buf *sealed);
/*
 * delivery_seal with the plaintext built in a secret carved from scratch
 * (wiped when done; COFFER_ERR_TOO_LARGE when scratch has no room for
 * delivery_plaintext_size): no secure allocation of its own.
 */
COFFER_MUST_CHECK enum coffer_err delivery_seal_in(const unsigned char host_pk[HPKE_PK_LEN], const char *host_id,
						   const char *machine_id, const char *jti, const char *spec_hash,
						   const struct delivery_item *items, size_t n,
						   struct secret_arena *scratch, struct buf *sealed);
/* The plaintext's bytes for n items whose names and values add up to names_len and values_len bytes. */
size_t delivery_plaintext_size(size_t n, size_t names_len, size_t values_len);

/*
 * Opens what delivery_seal sealed for exactly this host, machine, jti and
 * spec hash. On success *out is overwritten (its previous content is not
 * released).
 */
COFFER_MUST_CHECK enum coffer_err delivery_open(const struct secret *host_sk, const char *host_id,
						const char *machine_id, const char *jti, const char *spec_hash,
						const void *sealed, size_t sealed_len, struct delivery_list *out);

#endif
