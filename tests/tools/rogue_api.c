/*
 * rogue_api — a compromised api, for the zero-trust tests
 * (tests/integration/t0750-zero-trust.bats; issue 12). It holds what the
 * api holds: the store URL and the api's key files (api.rows.key,
 * api.digest.key), and writes the store as the api could, each
 * subcommand one write. What it cannot hold is the keeper's master key:
 * the deployer registry, its certificates and the keeper's local
 * revocation file stay out of its reach, which is what the tests show.
 *
 *   rogue_api token STORE ROWS_KEY ORG_NAME
 *       an admin token row of the attacker's choosing, with a valid MAC;
 *       prints the token
 *   rogue_api release STORE ROWS_KEY APP_NAME CONFIG_FILE SECRETS_VERSION
 *       a pending release of the app with that config (text as is) and
 *       secrets version (a release of the app still pending or running is
 *       marked failed first), and every live machine of the app pointed at
 *       it (desired release); prints the release version
 *   rogue_api reseal STORE ROWS_KEY APP_ID
 *       gives the app's row, as it is now (edited by SQL: another org), a
 *       valid MAC under the rows key
 *   rogue_api signature STORE APP_ID TEXT_HASH SIGNER SIGNATURE
 *       a row of the signatures table (any signer id and signature)
 *   rogue_api statement APP_ID CONFIG_FILE SECRETS_VERSION [MANIFEST_FILE]
 *       prints a release statement (deployer_release_text), to sign
 *   rogue_api sign KEY_FILE TEXT_FILE
 *       prints the signature of the text by a deployer key file (its own)
 *   rogue_api seal STORE ROWS_KEY DIGEST_KEY APP_NAME NAME < VALUE
 *       seals the value (stdin) to the app's key and makes a new secrets
 *       version with it, as the api did before issue 12; prints the version
 *   rogue_api key PATH
 *       makes a deployer key file no keeper ever saw; prints its public key
 *       (base64url)
 *   rogue_api memscan PID < NEEDLE
 *       reads every readable mapping of the process (/proc/PID/maps and
 *       /proc/PID/mem; root, or the process's user under ptrace rules) and
 *       prints how often NEEDLE occurs; exit 0 when it does, 1 when not
 *
 * Exit 0, or 2 with one line on stderr naming what failed. Test-only: not
 * installed.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "buf.h"
#include "deployer.h"
#include "digest.h"
#include "encode.h"
#include "fs.h"
#include "parse.h"
#include "secret.h"
#include "store.h"
#include "store_int.h"
#include "vault.h"

#define KEY_LEN 32
#define TEXT_MAX ((size_t)1 << 20)
#define VALUE_MAX ((size_t)64 << 10)

static int fail(const char *what, enum coffer_err rc)
{
	fprintf(stderr, "rogue_api: %s (%s)\n", what, coffer_err_name(rc));
	return 2;
}

static int usage(void)
{
	fprintf(stderr, "usage: rogue_api token|release|reseal|signature|statement|sign|seal|key|memscan ARGS... (see its source)\n");
	return 2;
}

/* Opens the store with the rows key given for every table (NULL: none). */
static enum coffer_err open_store(const char *url, const char *rows_key_file, struct store **s)
{
	struct secret *key = NULL;
	enum coffer_err rc = store_open(url, s);
	if (rc || !rows_key_file)
		return rc;
	rc = fs_read_hex_key(rows_key_file, KEY_LEN, &key);
	for (int t = 0; t < STORE_TABLE__COUNT && !rc; t++)
		rc = store_auth_key(*s, (enum store_table)t, secret_cbytes(key));
	secret_free(key);
	return rc;
}

static int cmd_token(char **argv)
{
	struct store *s = NULL;
	struct store_org org;
	struct store_token t = { 0 };
	unsigned char raw[32];
	struct buf b64;
	char token[80];
	enum coffer_err rc;
	int ex = 0;

	buf_init(&b64, 64);
	randombytes_buf(raw, sizeof(raw));
	rc = b64url_encode(raw, sizeof(raw), &b64);
	if (rc || snprintf(token, sizeof(token), "coffer_%.*s", (int)b64.len, b64.ptr) >= (int)sizeof(token)) {
		buf_release(&b64);
		return fail("cannot make a token", rc);
	}
	buf_release(&b64);
	crypto_hash_sha256(t.hash, (const unsigned char *)token, strlen(token));
	if ((rc = open_store(argv[0], argv[1], &s))) {
		ex = fail("cannot open the store", rc);
	} else if ((rc = store_org_get_by_name(s, argv[2], &org))) {
		ex = fail("no such org", rc);
	} else {
		memcpy(t.org_id, org.id, sizeof(t.org_id));
		rc = str_copy(t.role, sizeof(t.role), "admin");
		if (!rc)
			rc = str_copy(t.description, sizeof(t.description), "rogue");
		if (!rc)
			rc = store_token_insert(s, &t, &t);
		if (rc)
			ex = fail("cannot insert the token row", rc);
		else
			printf("%s\n", token);
	}
	sodium_memzero(token, sizeof(token));
	store_close(s);
	return ex;
}

static int cmd_release(char **argv)
{
	struct store *s = NULL;
	struct store_app app;
	struct store_machine_list ml = { 0 };
	struct store_release_list running = { 0 };
	struct buf config;
	uint64_t sv = 0, version = 0;
	enum coffer_err rc;
	int ex = 0;

	buf_init(&config, STORE_RELEASE_TEXT_MAX);
	if (parse_uint64(argv[4], UINT64_MAX, &sv))
		return fail("SECRETS_VERSION must be a number", COFFER_ERR_INVALID);
	if ((rc = fs_read_file(argv[3], &config))) {
		buf_release(&config);
		return fail("cannot read CONFIG_FILE", rc);
	}
	if ((rc = open_store(argv[0], argv[1], &s)))
		ex = fail("cannot open the store", rc);
	else if ((rc = store_app_get_by_name(s, argv[2], &app)))
		ex = fail("no such app", rc);
	else if ((rc = store_release_running(s, &running)))
		ex = fail("cannot list the running releases", rc);
	for (size_t i = 0; !ex && i < running.n; i++) {
		const struct store_release *r = &running.items[i];
		if (strcmp(r->app_id, app.id) == 0 &&
		    (rc = store_release_update(s, app.id, r->version, "failed", "rogue", NULL)))
			ex = fail("cannot end the release in the way", rc);
	}
	if (!ex && (rc = store_release_create(s, app.id, config.ptr, sv, app.current_release, app.deployed_version,
					      "rogue", &version)))
		ex = fail("cannot create the release", rc);
	if (!ex && (rc = store_machine_list_by_app(s, app.id, &ml)))
		ex = fail("cannot list the app's machines", rc);
	for (size_t i = 0; !ex && i < ml.n; i++) {
		if (strcmp(ml.items[i].state, "destroyed") == 0)
			continue;
		rc = store_machine_set_desired(s, ml.items[i].id, version);
		if (rc)
			ex = fail("cannot point a machine at the release", rc);
	}
	if (!ex)
		printf("%llu\n", (unsigned long long)version);
	store_machine_list_release(&ml);
	store_release_list_release(&running);
	buf_release(&config);
	store_close(s);
	return ex;
}

static int cmd_reseal(char **argv)
{
	struct store *s = NULL;
	struct store_app app;
	const struct store_val key[] = { VT(argv[2]) };
	enum coffer_err rc;
	int ex = 0;

	if ((rc = open_store(argv[0], argv[1], &s)))
		ex = fail("cannot open the store", rc);
	else if ((rc = store_row_seal(s, &store_app_entity, key, 1)))
		ex = fail("cannot seal the app row", rc);
	else if ((rc = store_app_get(s, argv[2], &app)))
		ex = fail("the app row does not verify", rc);
	store_close(s);
	return ex;
}

static int cmd_signature(char **argv)
{
	struct store *s = NULL;
	enum coffer_err rc;
	int ex = 0;

	if ((rc = open_store(argv[0], NULL, &s)))
		ex = fail("cannot open the store", rc);
	else if ((rc = store_signature_add(s, argv[1], argv[2], argv[3], argv[4])))
		ex = fail("cannot add the signature", rc);
	store_close(s);
	return ex;
}

static int cmd_statement(int argc, char **argv)
{
	struct buf config, manifest;
	uint64_t sv = 0;
	char *text = NULL;
	size_t len = 0;
	enum coffer_err rc;
	int ex = 0;

	buf_init(&config, STORE_RELEASE_TEXT_MAX);
	buf_init(&manifest, STORE_MANIFEST_MAX);
	if (parse_uint64(argv[2], UINT64_MAX, &sv))
		ex = fail("SECRETS_VERSION must be a number", COFFER_ERR_INVALID);
	else if ((rc = fs_read_file(argv[1], &config)))
		ex = fail("cannot read CONFIG_FILE", rc);
	else if (argc > 3 && (rc = fs_read_file(argv[3], &manifest)))
		ex = fail("cannot read MANIFEST_FILE", rc);
	else if ((rc = deployer_release_text(argv[0], config.ptr, config.len, sv, argc > 3 ? manifest.ptr : NULL,
					     manifest.len, &text, &len)))
		ex = fail("cannot make the statement", rc);
	else if (fwrite(text, 1, len, stdout) != len)
		ex = fail("cannot write the statement", COFFER_ERR_IO);
	free(text);
	buf_release(&config);
	buf_release(&manifest);
	return ex;
}

static int cmd_sign(char **argv)
{
	struct secret *sk = NULL;
	unsigned char pk[DEPLOYER_PK_LEN];
	char sig[DEPLOYER_SIG_B64_SIZE];
	struct buf text;
	enum coffer_err rc;
	int ex = 0;

	buf_init(&text, TEXT_MAX);
	if ((rc = deployer_key_load(argv[0], &sk, pk)))
		ex = fail("cannot load KEY_FILE", rc);
	else if ((rc = fs_read_file(argv[1], &text)))
		ex = fail("cannot read TEXT_FILE", rc);
	else if ((rc = deployer_sign(sk, text.ptr, text.len, sig)))
		ex = fail("cannot sign", rc);
	else
		printf("%s\n", sig);
	secret_free(sk);
	buf_release(&text);
	return ex;
}

static int cmd_seal(char **argv)
{
	struct store *s = NULL;
	struct store_app app;
	struct store_app_key key;
	struct secret *digest_key = NULL, *app_dkey = NULL, *value = NULL;
	struct buf sealed;
	char value_id[STORE_ID_SIZE], digest[DIGEST_HEX_LEN + 1];
	unsigned char in[VALUE_MAX + 1];
	uint64_t version = 0;
	size_t len = 0;
	ssize_t r;
	enum coffer_err rc;
	int ex = 0;

	buf_init(&sealed, STORE_CIPHERTEXT_MAX);
	while (len < sizeof(in) && (r = read(STDIN_FILENO, in + len, sizeof(in) - len)) > 0)
		len += (size_t)r;
	if (len == 0 || len > VALUE_MAX || secret_from(in, len, &value)) {
		sodium_memzero(in, sizeof(in));
		return fail("the value (stdin) must be 1 to 65536 bytes", COFFER_ERR_INVALID);
	}
	sodium_memzero(in, sizeof(in));
	if ((rc = open_store(argv[0], argv[1], &s)))
		ex = fail("cannot open the store", rc);
	else if ((rc = fs_read_hex_key(argv[2], KEY_LEN, &digest_key)))
		ex = fail("cannot read DIGEST_KEY", rc);
	else if ((rc = store_app_get_by_name(s, argv[3], &app)))
		ex = fail("no such app", rc);
	else if ((rc = store_app_key_get(s, app.id, 0, &key)) || key.public_key_len < HPKE_PK_LEN)
		ex = fail("no app key", rc ? rc : COFFER_ERR_INVALID);
	else if ((rc = digest_app_key(digest_key, app.id, &app_dkey)) || (rc = digest_value(app_dkey, value, digest)))
		ex = fail("cannot digest the value", rc);
	if (!ex) {
		store_new_id(value_id);
		rc = vault_seal_value(key.public_key, app.id, argv[4], (uint32_t)key.version, value_id, value, &sealed);
		if (rc)
			ex = fail("cannot seal the value", rc);
	}
	if (!ex) {
		struct store_secret_change c = { .name = argv[4],
						 .ciphertext = (const unsigned char *)sealed.ptr,
						 .ciphertext_len = sealed.len,
						 .digest = digest,
						 .key_version = key.version,
						 .value_id = value_id };
		rc = store_secrets_put(s, app.id, &c, 1, "rogue", "staged", NULL, &version);
		if (rc)
			ex = fail("cannot store the version", rc);
		else
			printf("%llu\n", (unsigned long long)version);
	}
	secret_free(value);
	secret_free(digest_key);
	secret_free(app_dkey);
	buf_release(&sealed);
	store_close(s);
	return ex;
}

static int cmd_key(char **argv)
{
	unsigned char pk[DEPLOYER_PK_LEN];
	struct buf b64;
	enum coffer_err rc = deployer_key_create(argv[0], pk);
	int ex = 0;

	if (rc)
		return fail("cannot make the key file", rc);
	buf_init(&b64, DEPLOYER_PK_B64_SIZE);
	rc = b64url_encode(pk, sizeof(pk), &b64);
	if (rc)
		ex = fail("cannot encode the public key", rc);
	else
		printf("%s\n", b64.ptr);
	buf_release(&b64);
	return ex;
}

#define SCAN_CHUNK ((size_t)1 << 20)
#define SCAN_MAPPING_MAX ((uint64_t)1 << 30) /* larger: a sanitizer's shadow, not the heap */

/* Occurrences of needle in the readable mappings of pid, -1 when they cannot be read. */
static long memscan(const char *pid, const unsigned char *needle, size_t nlen)
{
	char path[64], line[512];
	unsigned char *chunk = malloc(SCAN_CHUNK + nlen);
	long hits = 0;
	FILE *maps;
	int mem;

	if (!chunk)
		return -1;
	snprintf(path, sizeof(path), "/proc/%s/maps", pid);
	maps = fopen(path, "r");
	snprintf(path, sizeof(path), "/proc/%s/mem", pid);
	mem = open(path, O_RDONLY);
	if (!maps || mem < 0) {
		if (maps)
			fclose(maps);
		if (mem >= 0)
			close(mem);
		free(chunk);
		return -1;
	}
	while (fgets(line, sizeof(line), maps)) {
		unsigned long long lo, hi;
		char perms[8];
		if (sscanf(line, "%llx-%llx %7s", &lo, &hi, perms) != 3 || perms[0] != 'r' || hi - lo > SCAN_MAPPING_MAX)
			continue;
		size_t carry = 0;
		for (unsigned long long at = lo; at < hi;) {
			size_t want = hi - at < SCAN_CHUNK ? (size_t)(hi - at) : SCAN_CHUNK;
			ssize_t r = pread(mem, chunk + carry, want, (off_t)at);
			if (r <= 0)
				break; /* a guard page, a mapping gone meanwhile */
			size_t have = carry + (size_t)r;
			for (size_t i = 0; i + nlen <= have; i++)
				if (chunk[i] == needle[0] && memcmp(chunk + i, needle, nlen) == 0)
					hits++;
			carry = have >= nlen - 1 ? nlen - 1 : have;
			memmove(chunk, chunk + have - carry, carry);
			at += (unsigned long long)r;
		}
	}
	fclose(maps);
	close(mem);
	sodium_memzero(chunk, SCAN_CHUNK + nlen);
	free(chunk);
	return hits;
}

static int cmd_memscan(char **argv)
{
	unsigned char needle[256];
	size_t len = 0;
	ssize_t r;
	while (len < sizeof(needle) && (r = read(STDIN_FILENO, needle + len, sizeof(needle) - len)) > 0)
		len += (size_t)r;
	if (len < 8 || len == sizeof(needle))
		return fail("NEEDLE (stdin) must be 8 to 255 bytes", COFFER_ERR_INVALID);
	long hits = memscan(argv[0], needle, len);
	sodium_memzero(needle, sizeof(needle));
	if (hits < 0)
		return fail("cannot read the process's memory", COFFER_ERR_IO);
	printf("%ld\n", hits);
	return hits > 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	if (sodium_init() < 0)
		return fail("libsodium failed to initialise", COFFER_ERR_CRYPTO);
	const char *c = argv[1];
	int n = argc - 2;
	if (strcmp(c, "token") == 0 && n == 3)
		return cmd_token(argv + 2);
	if (strcmp(c, "release") == 0 && n == 5)
		return cmd_release(argv + 2);
	if (strcmp(c, "reseal") == 0 && n == 3)
		return cmd_reseal(argv + 2);
	if (strcmp(c, "signature") == 0 && n == 5)
		return cmd_signature(argv + 2);
	if (strcmp(c, "statement") == 0 && (n == 3 || n == 4))
		return cmd_statement(n, argv + 2);
	if (strcmp(c, "sign") == 0 && n == 2)
		return cmd_sign(argv + 2);
	if (strcmp(c, "seal") == 0 && n == 5)
		return cmd_seal(argv + 2);
	if (strcmp(c, "key") == 0 && n == 1)
		return cmd_key(argv + 2);
	if (strcmp(c, "memscan") == 0 && n == 1)
		return cmd_memscan(argv + 2);
	return usage();
}
