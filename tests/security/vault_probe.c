/*
 * vault_probe — an attacker's tool for the security tests. Given a store
 * and whatever key material an attacker holds (files, as found), it tries
 * every way coffer's cryptography allows to open an app's stored secrets:
 * each candidate as the keeper's master key (derive the wrapping key, unwrap
 * the app key) and as the app's X25519 private key itself.
 *
 *   vault_probe --store URL --rows-key FILE --app NAME [--master FILE] [--loot DIR|FILE]... [--canary VALUE]
 *
 * --rows-key is the keeper's api.rows.key: the store library verifies each
 * secrets version row it reads (docs/STORE.md "Row authentication"), where
 * an attacker reads the rows raw; the key only lets the probe read them
 * through the library and is never a candidate (give it as --loot too).
 *
 * Candidates from --loot: every regular file under DIR (or FILE) whose
 * content is 32 raw bytes or 64 hex characters (a newline allowed), and
 * every 32-byte window of the files of 32 to 4096 bytes. --master names
 * the keeper's master key file: the positive control, which must open.
 *
 * Prints, per secret at the app's head, "NAME opened" (and "NAME canary"
 * when the value equals --canary) or "NAME refused"; never a value.
 * Exit 0 if any secret opened, 1 if none did, 2 on error.
 */
#include <dirent.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "buf.h"
#include "encode.h"
#include "fs.h"
#include "keeper.h"
#include "log.h"
#include "secret.h"
#include "store.h"
#include "vault.h"

#define MAX_CANDIDATES 4096
#define WINDOW_FILE_MAX 4096
#define KEY_LEN 32

struct probe {
	struct secret *cands[MAX_CANDIDATES];
	size_t n;
};

static void add_candidate(struct probe *p, const unsigned char *key)
{
	if (p->n < MAX_CANDIDATES && secret_from(key, KEY_LEN, &p->cands[p->n]) == COFFER_OK)
		p->n++;
}

static void loot_file(struct probe *p, const char *path)
{
	struct buf b;
	buf_init_wiping(&b, (size_t)64 << 20);
	if (fs_read_file(path, &b) != COFFER_OK) {
		buf_release(&b);
		return;
	}
	size_t len = b.len;
	while (len && (b.ptr[len - 1] == '\n' || b.ptr[len - 1] == '\r'))
		len--;
	unsigned char key[KEY_LEN];
	if (len == 2 * KEY_LEN && hex_decode(b.ptr, len, key, KEY_LEN) == COFFER_OK)
		add_candidate(p, key);
	if (b.len >= KEY_LEN && b.len <= WINDOW_FILE_MAX)
		for (size_t i = 0; i + KEY_LEN <= b.len; i++)
			add_candidate(p, (const unsigned char *)b.ptr + i);
	sodium_memzero(key, sizeof(key));
	buf_release(&b);
}

static void loot(struct probe *p, const char *path)
{
	struct stat st;
	if (stat(path, &st))
		return;
	if (S_ISREG(st.st_mode)) {
		loot_file(p, path);
		return;
	}
	if (!S_ISDIR(st.st_mode))
		return;
	DIR *d = opendir(path);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		char child[4096];
		if (fmt_into(child, sizeof(child), "%s/%s", path, e->d_name) == COFFER_OK)
			loot(p, child);
	}
	closedir(d);
}

/* Every way a 32-byte candidate could open the app's key or values. */
static int try_open(struct store *s, const struct store_app *app, const struct store_secret *item,
		    struct probe *p, const char *canary)
{
	int opened = 0;
	for (size_t i = 0; i < p->n && !opened; i++) {
		struct secret *value = NULL, *sk = NULL;
		struct keeper_keys keys;
		memset(&keys, 0, sizeof(keys));
		/* as the app's private key */
		if (vault_open_value(p->cands[i], app->id, item->name, (uint32_t)item->key_version, item->value_id,
				     item->ciphertext, item->ciphertext_len, &value) == COFFER_OK)
			opened = 1;
		/* as the keeper's master key */
		if (!opened && keeper_keys_derive(p->cands[i], &keys) == COFFER_OK &&
		    keeper_app_key_load(&keys, s, app->id, item->key_version, &sk) == COFFER_OK &&
		    vault_open_value(sk, app->id, item->name, (uint32_t)item->key_version, item->value_id,
				     item->ciphertext, item->ciphertext_len, &value) == COFFER_OK)
			opened = 1;
		if (opened) {
			printf("%s opened\n", item->name);
			if (canary && secret_len(value) == strlen(canary) &&
			    ct_equal(secret_cbytes(value), canary, strlen(canary)))
				printf("%s canary\n", item->name);
		}
		secret_free(value);
		secret_free(sk);
		keeper_keys_release(&keys);
	}
	if (!opened)
		printf("%s refused\n", item->name);
	return opened;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = { { "store", required_argument, NULL, 's' },
					      { "app", required_argument, NULL, 'a' },
					      { "master", required_argument, NULL, 'm' },
					      { "loot", required_argument, NULL, 'l' },
					      { "canary", required_argument, NULL, 'c' },
					      { "rows-key", required_argument, NULL, 'r' },
					      { NULL, 0, NULL, 0 } };
	const char *store_url = NULL, *app_name = NULL, *canary = NULL, *rows_key_file = NULL;
	static struct probe p;
	if (sodium_init() < 0)
		return 2;
	log_set_level(LOG_OFF);
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's': store_url = optarg; break;
		case 'a': app_name = optarg; break;
		case 'c': canary = optarg; break;
		case 'r': rows_key_file = optarg; break;
		case 'l': loot(&p, optarg); break;
		case 'm': {
			struct secret *m = NULL;
			if (fs_read_private(optarg, KEY_LEN, &m) != COFFER_OK || secret_len(m) != KEY_LEN) {
				fprintf(stderr, "vault_probe: cannot read master key '%s'\n", optarg);
				return 2;
			}
			if (p.n < MAX_CANDIDATES)
				p.cands[p.n++] = m;
			else
				secret_free(m);
			break;
		}
		default: return 2;
		}
	}
	if (!store_url || !app_name || !rows_key_file) {
		fprintf(stderr, "usage: vault_probe --store URL --rows-key FILE --app NAME [--master FILE] "
				"[--loot PATH]... [--canary V]\n");
		return 2;
	}
	fprintf(stderr, "vault_probe: %zu candidate keys\n", p.n);
	struct store *s = NULL;
	struct store_app app;
	struct store_secret_list list;
	memset(&list, 0, sizeof(list));
	int rc = 2, any = 0;
	unsigned char rows_key[STORE_ROW_KEY_LEN];
	struct buf kb;
	buf_init_wiping(&kb, 256);
	int key_ok = fs_read_file(rows_key_file, &kb) == COFFER_OK && kb.len >= HEX_LEN(STORE_ROW_KEY_LEN) &&
		     hex_decode(kb.ptr, HEX_LEN(STORE_ROW_KEY_LEN), rows_key, sizeof(rows_key)) == COFFER_OK;
	buf_release(&kb);
	if (!key_ok) {
		fprintf(stderr, "vault_probe: cannot read the rows key '%s'\n", rows_key_file);
		goto out;
	}
	int keyed = store_open(store_url, &s) == COFFER_OK;
	for (int t = 0; t < STORE_TABLE__COUNT && keyed; t++) /* every row it reads is verified, as the api does */
		keyed = store_auth_key(s, (enum store_table)t, rows_key) == COFFER_OK;
	if (!keyed || store_app_get_by_name(s, app_name, &app) ||
	    store_secrets_get(s, app.id, 0, &list)) {
		fprintf(stderr, "vault_probe: cannot read app '%s' from the store\n", app_name);
		goto out;
	}
	for (size_t i = 0; i < list.n; i++)
		any |= try_open(s, &app, &list.items[i], &p, canary);
	rc = any ? 0 : 1;
out:
	sodium_memzero(rows_key, sizeof(rows_key));
	store_secret_list_release(&list);
	store_close(s);
	for (size_t i = 0; i < p.n; i++)
		secret_free(p.cands[i]);
	return rc;
}
