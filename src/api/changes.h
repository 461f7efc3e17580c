/*
 * changes.h — what a secrets version changed against another, from their
 * manifests (store.h): the names added, changed (another digest) and
 * removed. `releases show` and `secrets history` are built on it; it
 * sees names and digests only, never a value.
 *
 * Ownership: the functions only read their inputs; a json_t they return
 * is the caller's.
 */
#ifndef COFFER_API_CHANGES_H
#define COFFER_API_CHANGES_H

#include <stddef.h>

#include "json.h"
#include "store.h"

enum changes_kind {
	CHANGES_ADDED,   /* in after only */
	CHANGES_CHANGED, /* in both, with another digest */
	CHANGES_REMOVED, /* in before only */
};

/*
 * Calls fn for each name that differs between before[0..bn) and
 * after[0..an) (each sorted by name, bytewise, as a manifest is), in name
 * order: b is NULL for an added name, a for a removed one. A name set
 * again to the same value (same digest) is not a change. Stops at the
 * first non-zero return of fn and returns it; 0 when every call was 0.
 */
typedef int (*changes_fn)(enum changes_kind kind, const struct store_manifest_item *b,
			  const struct store_manifest_item *a, void *arg);
int changes_walk(const struct store_manifest_item *before, size_t bn, const struct store_manifest_item *after,
		 size_t an, changes_fn fn, void *arg);

/*
 * The changes as JSON: {"added": [{"name", "digest"}], "changed": [{"name",
 * "digest", "previous_digest"}], "removed": [{"name", "previous_digest"}]},
 * each list in name order. NULL when out of memory.
 */
json_t *changes_json(const struct store_manifest_item *before, size_t bn, const struct store_manifest_item *after,
		     size_t an);

#endif
