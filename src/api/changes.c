/*
 * changes.c — the difference of two manifests (changes.h): one merge walk
 * over two lists sorted by name.
 */
#include "changes.h"

#include <string.h>

#include "banned.h"

int changes_walk(const struct store_manifest_item *before, size_t bn, const struct store_manifest_item *after,
		 size_t an, changes_fn fn, void *arg)
{
	size_t i = 0, j = 0;
	int r = 0;

	while (!r && (i < bn || j < an)) {
		int cmp = i == bn ? 1 : j == an ? -1 : strcmp(before[i].name, after[j].name);
		if (cmp < 0)
			r = fn(CHANGES_REMOVED, &before[i++], NULL, arg);
		else if (cmp > 0)
			r = fn(CHANGES_ADDED, NULL, &after[j++], arg);
		else {
			if (strcmp(before[i].digest, after[j].digest) != 0)
				r = fn(CHANGES_CHANGED, &before[i], &after[j], arg);
			i++, j++;
		}
	}
	return r;
}

static int add_json(enum changes_kind kind, const struct store_manifest_item *b, const struct store_manifest_item *a,
		    void *arg)
{
	json_t *doc = arg, *item;
	const char *list;

	switch (kind) {
	case CHANGES_ADDED:
		list = "added";
		item = json_pack("{s:s,s:s}", "name", a->name, "digest", a->digest);
		break;
	case CHANGES_CHANGED:
		list = "changed";
		item = json_pack("{s:s,s:s,s:s}", "name", a->name, "digest", a->digest, "previous_digest", b->digest);
		break;
	default:
		list = "removed";
		item = json_pack("{s:s,s:s}", "name", b->name, "previous_digest", b->digest);
		break;
	}
	return !item || json_array_append_new(json_object_get(doc, list), item) != 0;
}

json_t *changes_json(const struct store_manifest_item *before, size_t bn, const struct store_manifest_item *after,
		     size_t an)
{
	json_t *doc = json_pack("{s:[],s:[],s:[]}", "added", "changed", "removed");

	if (doc && changes_walk(before, bn, after, an, add_json, doc)) {
		json_decref(doc);
		doc = NULL;
	}
	return doc;
}
