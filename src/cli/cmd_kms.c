/*
 * cmd_kms.c — `coffer secrets keys gen|list|rotate|rm` (an app's KMS keys,
 * through the api to the keeper) and `coffer kms sign|verify|encrypt|
 * decrypt`, the client a machine's program calls: it reads the data from
 * standard input and asks the agent over $COFFER_KMS_SOCKET (kms.h). The
 * keys themselves are never shown anywhere: they never leave the keeper.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <sodium.h>

#include "cli.h"
#include "client.h"
#include "encode.h"
#include "format.h"
#include "kms.h"
#include "banned.h"

#define KMS_PATH_MAX 4096

/* ---- secrets keys ---- */

static enum coffer_err keys_gen(struct client *c, int argc, char **argv)
{
	char path[CLIENT_PATH_MAX];
	const char *type = client_value(c, "type");
	json_t *body = NULL, *ans = NULL;
	enum kms_type t;
	enum coffer_err rc;

	(void)argc;
	if (!type || kms_type_parse(type, &t))
		return client_usage_error(c, "--type must be hmac-sha256, aead or ed25519");
	if (!kms_name_ok(argv[1]))
		return client_usage_error(c, "a key NAME is 1 to %d of A-Z a-z 0-9 _ . -", KMS_NAME_MAX);
	body = json_pack("{s:s,s:s}", "name", argv[1], "type", type);
	rc = client_path(path, sizeof(path), "/v1/apps/", c->app, "/keys");
	if (!rc && !body)
		rc = client_error(COFFER_ERR_NOMEM, "out of memory");
	if (!rc)
		rc = client_call(c, "POST", path, body, &ans);
	if (!rc && c->json)
		rc = client_print_json(ans);
	else if (!rc)
		printf("Made key %s (%s, version %" JSON_INTEGER_FORMAT ") of app %s\n", argv[1], type,
		       json_integer_value(json_object_get(ans, "version")), c->app);
	json_decref(ans);
	json_decref(body);
	return rc;
}

static enum coffer_err keys_rotate(struct client *c, int argc, char **argv)
{
	char prefix[CLIENT_PATH_MAX], path[CLIENT_PATH_MAX];
	json_t *ans = NULL;
	enum coffer_err rc = client_path(prefix, sizeof(prefix), "/v1/apps/", c->app, "/keys/");

	(void)argc;
	if (!rc)
		rc = client_path(path, sizeof(path), prefix, argv[1], "/rotate");
	if (!rc)
		rc = client_call(c, "POST", path, NULL, &ans);
	if (!rc && c->json)
		rc = client_print_json(ans);
	else if (!rc)
		printf("Key %s of app %s is at version %" JSON_INTEGER_FORMAT
		       " (new operations use it; older versions still verify and decrypt)\n",
		       argv[1], c->app, json_integer_value(json_object_get(ans, "version")));
	json_decref(ans);
	return rc;
}

static enum coffer_err keys_rm(struct client *c, int argc, char **argv)
{
	char prefix[CLIENT_PATH_MAX], path[CLIENT_PATH_MAX];
	json_t *ans = NULL;
	enum coffer_err rc = client_path(prefix, sizeof(prefix), "/v1/apps/", c->app, "/keys/");

	(void)argc;
	if (!rc)
		rc = client_path(path, sizeof(path), prefix, argv[1], "");
	if (!rc && !client_confirm(c, "Removing a key removes every version of it for good: what it signed no longer "
				      "verifies, what it encrypted no longer decrypts.\nType the key's name to confirm: ",
				   argv[1]))
		rc = client_error(COFFER_ERR_INVALID, "the name typed does not match: key '%s' not removed", argv[1]);
	if (!rc)
		rc = client_call(c, "DELETE", path, NULL, &ans);
	if (!rc)
		printf("Removed key %s of app %s\n", argv[1], c->app);
	json_decref(ans);
	return rc;
}

static void key_row(const json_t *k, int64_t now, const char **cells, char (*scratch)[CLIENT_CELL_SIZE])
{
	if (fmt_into(scratch[2], CLIENT_CELL_SIZE, "%" JSON_INTEGER_FORMAT,
		     json_integer_value(json_object_get(k, "version"))))
		scratch[2][0] = '\0';
	format_when(client_str(k, "created_at"), now, "-", scratch[3], CLIENT_CELL_SIZE);
	cells[0] = client_str(k, "name");
	cells[1] = client_str(k, "type");
	cells[2] = scratch[2];
	cells[3] = scratch[3];
	cells[4] = client_str(k, "public_key") ? client_str(k, "public_key") : "-";
}

static const char *const key_headers[] = { "NAME", "TYPE", "VERSION", "CREATED", "PUBLIC KEY" };
static const struct client_listing keys_listing = { .app_suffix = "/keys", .key = "keys", .headers = key_headers,
						    .ncols = 5, .row = key_row };

static const struct cli_opt gen_opts[] = {
	{ "type", 0, OPTS_VALUE, "TYPE", "hmac-sha256, aead or ed25519" },
	{ NULL, 0, OPTS_FLAG, NULL, NULL },
};

static const struct cli_cmd keys_cmds[] = {
	{ .name = "gen", .run = keys_gen, .flags = CLI_NEED_APP | CLI_NEED_API | CLI_JSON, .opts = gen_opts,
	  .usage = "secrets keys gen [-a APP] --type hmac-sha256|aead|ed25519 NAME [--json]",
	  .min_args = 1, .max_args = 1, .args_error = "expected one NAME",
	  .json_help = "print {name, type, version, created_at, public_key (ed25519)}",
	  .help = "Makes a key the keeper holds for the app: its machines sign, verify, encrypt\n"
		  "or decrypt with it through 'coffer kms', and nobody ever reads it (not the\n"
		  "api, not the agent, not the machine). hmac-sha256 and ed25519 keys sign\n"
		  "and verify, aead keys (XChaCha20-Poly1305) encrypt and decrypt. NAME: 1 to\n"
		  "64 of A-Z a-z 0-9 _ . -. Needs a deploy or admin token.\n" },
	{ .name = "list", .alias = "ls", .run = client_list_run, .flags = CLI_NEED_APP | CLI_NEED_API | CLI_JSON,
	  .data = &keys_listing, .usage = "secrets keys list [-a APP] [--json]",
	  .json_help = "print [{name, type, version, created_at, public_key}], every version",
	  .help = "Lists the app's keys, every version: name, type, version, when it was made\n"
		  "and, for ed25519, the public key (base64url), which verifies the\n"
		  "signatures of that version without coffer.\n" },
	{ .name = "rotate", .run = keys_rotate, .flags = CLI_NEED_APP | CLI_NEED_API | CLI_JSON,
	  .usage = "secrets keys rotate [-a APP] NAME [--json]",
	  .min_args = 1, .max_args = 1, .args_error = "expected one NAME",
	  .json_help = "print the new version {name, type, version, created_at, public_key}",
	  .help = "Makes the next version of a key: sign and encrypt use the newest version\n"
		  "from now on; signatures and ciphertexts name their version, so those of\n"
		  "older versions still verify and decrypt.\n" },
	{ .name = "rm", .run = keys_rm, .flags = CLI_NEED_APP | CLI_NEED_API | CLI_DESTRUCTIVE,
	  .usage = "secrets keys rm [-a APP] NAME [--yes]",
	  .min_args = 1, .max_args = 1, .args_error = "expected one NAME",
	  .help = "Removes a key, every version of it. Without --yes, asks you to type its name\n"
		  "(on a terminal only).\n" },
};
const struct cli_group cli_keys_group = CLI_GROUP("secrets keys", keys_cmds);

/* ---- kms: the machine's client ---- */

/* Standard input, at most max bytes (one more is an error), into a wiping buf. */
static enum coffer_err read_stdin(size_t max, struct buf *out)
{
	char chunk[4096];
	size_t n;
	enum coffer_err rc = COFFER_OK;
	while (!rc && (n = fread(chunk, 1, sizeof(chunk), stdin)) > 0) {
		if (out->len + n > max)
			rc = client_error(COFFER_ERR_TOO_LARGE, "standard input is over %zu bytes", max);
		else
			rc = buf_add(out, chunk, n);
	}
	sodium_memzero(chunk, sizeof(chunk));
	if (!rc && ferror(stdin))
		rc = client_error(COFFER_ERR_IO, "cannot read standard input");
	return rc;
}

/* Drops a final newline (and a CR before it): a base64url text as echo gives it. */
static void chomp(struct buf *b)
{
	if (b->len && b->ptr[b->len - 1] == '\n')
		b->len--;
	if (b->len && b->ptr[b->len - 1] == '\r')
		b->len--;
	b->ptr[b->len] = '\0';
}

static enum coffer_err decode_b64(const char *what, const char *text, size_t len, struct buf *out)
{
	if (b64url_decode(text, len, out))
		return client_error(COFFER_ERR_INVALID, "%s is not base64url", what);
	return COFFER_OK;
}

/* One request over the socket: req as one line, the answer's one line parsed into *ans. */
static enum coffer_err socket_call(const json_t *req, json_t **ans)
{
	const char *path = getenv(KMS_SOCKET_ENV);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct buf line, answer;
	int fd = -1;
	enum coffer_err rc = COFFER_OK;

	buf_init_wiping(&line, KMS_LINE_MAX);
	buf_init_wiping(&answer, KMS_LINE_MAX);
	if (!path || !*path) {
		rc = client_error(COFFER_ERR_USAGE, "%s is not set: 'coffer kms' runs inside a machine", KMS_SOCKET_ENV);
		goto out;
	}
	if (strlen(path) >= sizeof(sa.sun_path)) {
		rc = client_error(COFFER_ERR_INVALID, "%s is too long for a socket path", KMS_SOCKET_ENV);
		goto out;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	rc = json_dump_buf(req, &line);
	if (!rc)
		rc = buf_add(&line, "\n", 1);
	if (rc) {
		rc = client_error(rc, "the request is too large");
		goto out;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		rc = client_error(COFFER_ERR_UNAVAILABLE, "cannot reach the agent at %s: %s", KMS_SOCKET_ENV,
				  strerror(errno));
		goto out;
	}
	for (size_t off = 0; off < line.len;) {
		ssize_t w = write(fd, line.ptr + off, line.len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			rc = client_error(COFFER_ERR_IO, "cannot write to the agent: %s", strerror(errno));
			goto out;
		}
		off += (size_t)w;
	}
	shutdown(fd, SHUT_WR);
	for (;;) {
		char chunk[4096];
		ssize_t r = read(fd, chunk, sizeof(chunk));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = client_error(COFFER_ERR_IO, "cannot read the agent's answer: %s", strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		if (buf_add(&answer, chunk, (size_t)r)) {
			sodium_memzero(chunk, sizeof(chunk));
			rc = client_error(COFFER_ERR_PROTOCOL, "the agent's answer is too large");
			goto out;
		}
		sodium_memzero(chunk, sizeof(chunk));
	}
	*ans = json_loadb(answer.ptr, answer.len, 0, NULL);
	if (!*ans || !json_is_object(*ans)) {
		json_decref(*ans);
		*ans = NULL;
		rc = client_error(COFFER_ERR_PROTOCOL, "the agent's answer is not JSON");
		goto out;
	}
	json_t *err = json_object_get(*ans, "error");
	if (err) {
		const char *code = json_string_value(json_object_get(err, "code"));
		const char *msg = json_string_value(json_object_get(err, "message"));
		rc = client_error(code ? coffer_err_from_name(code) : COFFER_ERR_PROTOCOL, "%s",
				  msg ? msg : "the agent refused the request");
		json_decref(*ans);
		*ans = NULL;
	}
out:
	if (fd >= 0)
		close(fd);
	buf_release(&answer);
	buf_release(&line);
	return rc;
}

/* The base64url field of the answer decoded into out. */
static enum coffer_err answer_b64(const json_t *ans, const char *key, struct buf *out)
{
	const char *text = json_string_value(json_object_get(ans, key));
	if (!text || b64url_decode(text, strlen(text), out))
		return client_bad_answer(key);
	return COFFER_OK;
}

static enum coffer_err kms_run(struct client *c, int argc, char **argv)
{
	const char *op = argv[0], *name = client_value(c, "key"), *sig = client_value(c, "signature");
	const char *pk_text = client_value(c, "public-key");
	int decrypt = strcmp(op, "decrypt") == 0, verify = strcmp(op, "verify") == 0;
	struct buf in, data, enc, sigb, pk;
	json_t *req = NULL, *ans = NULL;
	enum coffer_err rc;

	(void)argc;
	buf_init_wiping(&in, decrypt ? B64URL_LEN(KMS_ENVELOPE_MAX) + 2 : KMS_DATA_MAX);
	buf_init_wiping(&data, KMS_ENVELOPE_MAX + 8);
	buf_init_wiping(&enc, B64URL_LEN(KMS_ENVELOPE_MAX) + 8);
	buf_init(&sigb, KMS_ENVELOPE_MAX + 8);
	buf_init(&pk, KMS_PUBLIC_KEY_LEN + 8);
	if (!verify && (sig || pk_text)) {
		rc = client_usage_error(c, "--signature and --public-key are for 'kms verify'");
		goto out;
	}
	if (verify && !sig) {
		rc = client_usage_error(c, "'kms verify' needs --signature SIG");
		goto out;
	}
	if (!pk_text && (!name || !kms_name_ok(name))) {
		rc = client_usage_error(c, "--key NAME is needed: 1 to %d of A-Z a-z 0-9 _ . -", KMS_NAME_MAX);
		goto out;
	}
	rc = read_stdin(in.max, &in);
	if (rc)
		goto out;
	if (decrypt)
		chomp(&in);
	if (pk_text) { /* anyone can verify an ed25519 signature: no socket, no keeper */
		rc = decode_b64("--public-key", pk_text, strlen(pk_text), &pk);
		if (!rc && pk.len != KMS_PUBLIC_KEY_LEN)
			rc = client_error(COFFER_ERR_INVALID, "--public-key is not an ed25519 public key");
		if (!rc)
			rc = decode_b64("--signature", sig, strlen(sig), &sigb);
		if (!rc) {
			rc = kms_verify_public((const unsigned char *)pk.ptr, sigb.ptr, sigb.len, in.ptr, in.len);
			if (rc == COFFER_ERR_CRYPTO || rc == COFFER_ERR_INVALID)
				rc = client_error(COFFER_ERR_CRYPTO, "the signature does not verify");
		}
		if (!rc)
			printf("valid\n");
		goto out;
	}
	req = json_pack("{s:s,s:s}", "op", op, "key", name);
	if (!req) {
		rc = client_error(COFFER_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (!decrypt && b64url_encode(in.ptr, in.len, &enc))
		rc = client_error(COFFER_ERR_NOMEM, "out of memory");
	if (!rc && json_object_set_new(req, "data", decrypt ? json_stringn(in.ptr, in.len) : json_stringn(enc.ptr, enc.len)))
		rc = client_error(COFFER_ERR_NOMEM, "out of memory");
	if (!rc && sig && json_object_set_new(req, "signature", json_string(sig)))
		rc = client_error(COFFER_ERR_NOMEM, "out of memory");
	if (!rc)
		rc = socket_call(req, &ans);
	if (rc)
		goto out;
	if (verify) {
		if (!json_is_true(json_object_get(ans, "valid")))
			rc = client_error(COFFER_ERR_CRYPTO, "the signature does not verify");
		else
			printf("valid\n");
	} else if (decrypt) {
		rc = answer_b64(ans, "data", &data);
		if (!rc && fwrite(data.ptr, 1, data.len, stdout) != data.len)
			rc = client_error(COFFER_ERR_IO, "cannot write standard output");
	} else {
		const char *field = strcmp(op, "sign") == 0 ? "signature" : "ciphertext";
		const char *text = json_string_value(json_object_get(ans, field));
		if (!text)
			rc = client_bad_answer(field);
		else
			printf("%s\n", text);
	}
out:
	if (ans) { /* a plaintext's copy in the parsed answer */
		json_t *d = json_object_get(ans, "data");
		if (json_is_string(d))
			sodium_memzero((char *)json_string_value(d), json_string_length(d));
	}
	if (req) {
		json_t *d = json_object_get(req, "data");
		if (json_is_string(d))
			sodium_memzero((char *)json_string_value(d), json_string_length(d));
	}
	json_decref(ans);
	json_decref(req);
	buf_release(&pk);
	buf_release(&sigb);
	buf_release(&enc);
	buf_release(&data);
	buf_release(&in);
	return rc;
}

/* One table for the four: sign, encrypt and decrypt refuse the two of verify. */
static const struct cli_opt kms_opts[] = {
	{ "key", 'k', OPTS_VALUE, "NAME", "the app's key to use" },
	{ "signature", 0, OPTS_VALUE, "SIG", "the signature to check (base64url, as 'kms sign' prints it)" },
	{ "public-key", 0, OPTS_VALUE, "PK", "verify an ed25519 signature here, with this public key (base64url)" },
	{ NULL, 0, OPTS_FLAG, NULL, NULL },
};

static const struct cli_cmd kms_cmds[] = {
	{ .name = "sign", .run = kms_run, .opts = kms_opts, .usage = "kms sign --key NAME < DATA",
	  .help = "Signs standard input (at most 64 KiB) with the newest version of the app's key\n"
		  "(hmac-sha256 or ed25519) and prints the signature (base64url: the version,\n"
		  "4 bytes, then the raw signature). Runs inside a machine: it asks the agent\n"
		  "over $COFFER_KMS_SOCKET; the key stays in the keeper.\n" },
	{ .name = "verify", .run = kms_run, .opts = kms_opts,
	  .usage = "kms verify --key NAME --signature SIG < DATA | kms verify --public-key PK --signature SIG < DATA",
	  .help = "Checks a signature of standard input: prints \"valid\", or fails (exit code of\n"
		  "a verification error). With --key, inside a machine, by the key version the\n"
		  "signature names; with --public-key (from 'secrets keys list'), anywhere, for\n"
		  "an ed25519 key.\n" },
	{ .name = "encrypt", .run = kms_run, .opts = kms_opts, .usage = "kms encrypt --key NAME < DATA",
	  .help = "Encrypts standard input (at most 64 KiB) with the newest version of the app's\n"
		  "aead key and prints the ciphertext (base64url). Inside a machine only.\n" },
	{ .name = "decrypt", .run = kms_run, .opts = kms_opts, .usage = "kms decrypt --key NAME < CIPHERTEXT",
	  .help = "Decrypts a ciphertext of 'kms encrypt' (base64url on standard input) with the\n"
		  "key version it names, and writes the plaintext to standard output. Inside a\n"
		  "machine only.\n" },
};
static const struct cli_group kms_group = CLI_GROUP("kms", kms_cmds);
const struct cli_cmd cli_kms =
	CLI_NOUN("kms", &kms_group, "sign, verify, encrypt or decrypt with an app's key, from inside a machine");
