/*
 * Unit tests of src/api/changes.c: the names two manifests add, change and
 * remove, in name order, and their JSON.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "changes.h"

static struct store_manifest_item item(const char *name, const char *digest)
{
	struct store_manifest_item it;
	memset(&it, 0, sizeof(it));
	snprintf(it.name, sizeof(it.name), "%s", name);
	snprintf(it.digest, sizeof(it.digest), "%s", digest);
	snprintf(it.value_id, sizeof(it.value_id), "%024d", 0);
	return it;
}

/* The walk as text: "+NAME" added, "~NAME" changed, "-NAME" removed, space-separated. */
static int record(enum changes_kind kind, const struct store_manifest_item *b, const struct store_manifest_item *a,
		  void *arg)
{
	char *out = arg;
	const char *mark = kind == CHANGES_ADDED ? "+" : kind == CHANGES_CHANGED ? "~" : "-";
	const struct store_manifest_item *it = a ? a : b;
	if (kind == CHANGES_ADDED)
		assert_null(b);
	if (kind == CHANGES_REMOVED)
		assert_null(a);
	if (kind == CHANGES_CHANGED)
		assert_string_equal(a->name, b->name);
	strcat(out, *out ? " " : "");
	strcat(out, mark);
	strcat(out, it->name);
	return 0;
}

static void expect_walk(const struct store_manifest_item *b, size_t bn, const struct store_manifest_item *a, size_t an,
			const char *want)
{
	char out[512] = "";
	assert_int_equal(changes_walk(b, bn, a, an, record, out), 0);
	assert_string_equal(out, want);
}

static void test_walk(void **state)
{
	struct store_manifest_item before[] = { item("A", "aa"), item("B", "bb"), item("C", "cc"), item("E", "ee") };
	struct store_manifest_item after[] = { item("A", "aa"), item("B", "b2"), item("D", "dd"), item("E", "ee"),
					       item("F", "ff") };
	(void)state;
	expect_walk(before, 4, after, 5, "~B -C +D +F");
	expect_walk(after, 5, before, 4, "~B +C -D -F");
	/* the same manifest, and empty ones */
	expect_walk(before, 4, before, 4, "");
	expect_walk(NULL, 0, NULL, 0, "");
	expect_walk(NULL, 0, before, 4, "+A +B +C +E");
	expect_walk(before, 4, NULL, 0, "-A -B -C -E");
	/* names ordered bytewise: "A" < "AB" < "B" < "a" */
	struct store_manifest_item x[] = { item("A", "1"), item("B", "1"), item("a", "1") };
	struct store_manifest_item y[] = { item("AB", "1"), item("B", "2"), item("a", "1") };
	expect_walk(x, 3, y, 3, "-A +AB ~B");
}

/* The same digest under a new value row is no change (a value set again). */
static void test_same_digest_new_value(void **state)
{
	struct store_manifest_item b = item("A", "aa"), a = item("A", "aa");
	(void)state;
	snprintf(a.value_id, sizeof(a.value_id), "%024d", 1);
	expect_walk(&b, 1, &a, 1, "");
}

static int stop_at_second(enum changes_kind kind, const struct store_manifest_item *b,
			  const struct store_manifest_item *a, void *arg)
{
	int *calls = arg;
	(void)kind, (void)b, (void)a;
	return ++*calls == 2 ? 7 : 0;
}

static void test_stop(void **state)
{
	struct store_manifest_item a[] = { item("A", "1"), item("B", "1"), item("C", "1") };
	int calls = 0;
	(void)state;
	assert_int_equal(changes_walk(NULL, 0, a, 3, stop_at_second, &calls), 7);
	assert_int_equal(calls, 2);
}

static void test_json(void **state)
{
	struct store_manifest_item before[] = { item("A", "aa"), item("B", "bb") };
	struct store_manifest_item after[] = { item("A", "a2"), item("C", "cc") };
	json_t *doc = changes_json(before, 2, after, 2);
	char *text;
	(void)state;
	assert_non_null(doc);
	text = json_dumps(doc, JSON_SORT_KEYS | JSON_COMPACT);
	assert_string_equal(text, "{\"added\":[{\"digest\":\"cc\",\"name\":\"C\"}],"
				  "\"changed\":[{\"digest\":\"a2\",\"name\":\"A\",\"previous_digest\":\"aa\"}],"
				  "\"removed\":[{\"name\":\"B\",\"previous_digest\":\"bb\"}]}");
	free(text);
	json_decref(doc);
	doc = changes_json(NULL, 0, NULL, 0);
	text = json_dumps(doc, JSON_SORT_KEYS | JSON_COMPACT);
	assert_string_equal(text, "{\"added\":[],\"changed\":[],\"removed\":[]}");
	free(text);
	json_decref(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_walk),
		cmocka_unit_test(test_same_digest_new_value),
		cmocka_unit_test(test_stop),
		cmocka_unit_test(test_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
