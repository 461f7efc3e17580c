/*
 * agent_identity.c — the agent's keys and identity files, its enrolment
 * with the keeper, and its signed requests.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "agent.h"
#include "buf.h"
#include "encode.h"
#include "fs.h"
#include "hpke.h"
#include "http_client.h"
#include "jws.h"
#include "log.h"
#include "metrics.h"
#include "banned.h"

#define STATE_DIR_MODE 0700
#define PARENT_DIR_MODE 0711
#define KEY_FILE_MODE 0600
#define IDENTITY_FILE_MODE 0600
#define KEEPER_ENROL_PATH "/v1/hosts/enrol"
#define KEEPER_REKEY_PATH "/v1/hosts/rekey"
#define PENDING_LEN (2 * AGENT_KEY_LEN) /* sign seed || seal key */
#define TEST_CRASH_ENV "COFFER_TEST_CRASH_AT" /* a test knob: "rekey-answered" kills the agent there (t0780) */
#define B64_SLACK 8

_Static_assert(AGENT_KEY_LEN == JWS_SEED_LEN && AGENT_KEY_LEN == HPKE_SK_LEN, "key files hold 32 bytes");
_Static_assert(HOSTAUTH_PK_LEN == JWS_PK_LEN && HOSTAUTH_PK_LEN == HPKE_PK_LEN, "public keys are 32 bytes");

static enum coffer_err path_of(char *out, const char *dir, const char *name)
{
	return fmt_into(out, AGENT_PATH_MAX, "%s/%s", dir, name);
}

/*
 * The key of path, made by `make` and written (exclusively, 0600 from its
 * creation) if the file does not exist; read back in either case, so two
 * agents racing on one folder end with the same key.
 */
static enum coffer_err load_key(const char *path, int is_seal, struct secret **out, int *created)
{
	struct secret *key = NULL, *fresh = NULL;
	unsigned char pk[HOSTAUTH_PK_LEN];
	enum coffer_err rc = fs_read_private(path, AGENT_KEY_LEN + 1, &key);
	if (rc == COFFER_ERR_NOT_FOUND) {
		if (is_seal) {
			rc = hpke_generate_keypair(&fresh, pk);
		} else {
			rc = secret_new(AGENT_KEY_LEN, &fresh);
			if (!rc)
				randombytes_buf(secret_bytes(fresh), AGENT_KEY_LEN);
		}
		if (!rc)
			rc = fs_write_atomic(path, secret_cbytes(fresh), secret_len(fresh), KEY_FILE_MODE, 1);
		secret_free(fresh);
		if (rc == COFFER_OK)
			*created = 1;
		if (rc && rc != COFFER_ERR_CONFLICT)
			return rc;
		rc = fs_read_private(path, AGENT_KEY_LEN + 1, &key);
	}
	if (!rc && secret_len(key) != AGENT_KEY_LEN)
		rc = COFFER_ERR_INVALID;
	if (rc) {
		secret_free(key);
		return rc;
	}
	*out = key;
	return COFFER_OK;
}

/* A base64url string field of exactly len bytes. */
static enum coffer_err get_b64(const json_t *doc, const char *key, unsigned char *out, size_t len)
{
	const char *text;
	size_t n;
	struct buf b;
	enum coffer_err rc = json_get_string(doc, key, 1, &text, &n, NULL);
	if (rc)
		return COFFER_ERR_INVALID;
	buf_init(&b, len + B64_SLACK);
	rc = b64url_decode(text, n, &b);
	if (!rc && b.len != len)
		rc = COFFER_ERR_INVALID;
	if (!rc)
		memcpy(out, b.ptr, len);
	buf_release(&b);
	return rc == COFFER_ERR_NOMEM ? rc : rc ? COFFER_ERR_INVALID : COFFER_OK;
}

static enum coffer_err set_b64(json_t *doc, const char *key, const void *data, size_t len)
{
	struct buf b;
	buf_init(&b, B64URL_LEN(len) + 1);
	enum coffer_err rc = b64url_encode(data, len, &b);
	if (!rc && json_object_set_new(doc, key, json_stringn(b.ptr, b.len)))
		rc = COFFER_ERR_NOMEM;
	buf_release(&b);
	return rc;
}

/* host_id, name and cert from a document (host.json, or the keeper's answer). */
static enum coffer_err identity_from(const json_t *doc, const char *id_key, struct agent_identity *id)
{
	const char *host_id = NULL, *name = NULL;
	if (json_get_string(doc, id_key, 1, &host_id, NULL, NULL) || json_get_string(doc, "name", 1, &name, NULL, NULL) ||
	    !hostauth_host_id_ok(host_id) || !*name || str_copy(id->host_id, sizeof(id->host_id), host_id) ||
	    str_copy(id->name, sizeof(id->name), name) || get_b64(doc, "cert", id->cert, sizeof(id->cert)))
		return COFFER_ERR_INVALID;
	id->enrolled = 1;
	return COFFER_OK;
}

/*
 * The missing parents of state_dir. When the agent is root its machines
 * run as another user who must pass through them to reach a work dir
 * (STATE/machines/<id>/work): they are made searchable (0711) then, as
 * machine.c makes the parents of a work dir. Existing folders are left as
 * they are.
 */
static enum coffer_err make_parents(const char *state_dir)
{
	char parent[AGENT_PATH_MAX];
	char *slash;
	if (geteuid() != 0)
		return COFFER_OK;
	if (str_copy(parent, sizeof(parent), state_dir))
		return COFFER_ERR_TOO_LARGE;
	slash = strrchr(parent, '/');
	if (!slash || slash == parent)
		return COFFER_OK;
	*slash = '\0';
	return fs_mkdir_p(parent, PARENT_DIR_MODE);
}

enum coffer_err agent_identity_load(const char *state_dir, struct agent_identity *out, int *created)
{
	char path[AGENT_PATH_MAX];
	struct agent_identity id;
	struct secret *seed = NULL;
	struct buf text;
	json_t *doc = NULL;
	int made = 0;
	enum coffer_err rc;

	memset(&id, 0, sizeof(id));
	buf_init(&text, AGENT_IDENTITY_FILE_MAX);
	rc = make_parents(state_dir);
	if (!rc)
		rc = fs_mkdir_p(state_dir, STATE_DIR_MODE);
	if (!rc)
		rc = path_of(path, state_dir, AGENT_SIGN_KEY_FILE);
	if (!rc)
		rc = load_key(path, 0, &seed, &made);
	if (!rc)
		rc = jws_key_from_seed(seed, &id.sign_sk, id.sign_pk);
	if (!rc)
		rc = path_of(path, state_dir, AGENT_SEAL_KEY_FILE);
	if (!rc)
		rc = load_key(path, 1, &id.seal_sk, &made);
	if (!rc)
		rc = hpke_public_key(id.seal_sk, id.seal_pk);
	if (!rc)
		rc = path_of(path, state_dir, AGENT_IDENTITY_FILE);
	if (rc)
		goto out;
	rc = fs_read_file(path, &text);
	if (rc == COFFER_ERR_NOT_FOUND) {
		rc = COFFER_OK; /* not enrolled yet */
		goto out;
	}
	if (!rc && json_parse_limited(text.ptr, text.len, AGENT_IDENTITY_FILE_MAX, JSON_MAX_DEPTH_DEFAULT, &doc, NULL))
		rc = COFFER_ERR_INVALID;
	if (!rc)
		rc = identity_from(doc, "host_id", &id);
out:
	json_decref(doc);
	buf_release(&text);
	secret_free(seed);
	if (rc) {
		agent_identity_release(&id);
		return rc;
	}
	if (created)
		*created = made;
	*out = id;
	return COFFER_OK;
}

void agent_identity_release(struct agent_identity *id)
{
	if (!id)
		return;
	secret_free(id->sign_sk);
	secret_free(id->seal_sk);
	sodium_memzero(id, sizeof(*id));
}

static enum coffer_err save_identity(const char *state_dir, const struct agent_identity *id)
{
	char path[AGENT_PATH_MAX];
	struct buf text;
	json_t *doc = json_pack("{s:s,s:s}", "host_id", id->host_id, "name", id->name);
	enum coffer_err rc = doc ? set_b64(doc, "cert", id->cert, sizeof(id->cert)) : COFFER_ERR_NOMEM;
	buf_init(&text, AGENT_IDENTITY_FILE_MAX);
	if (!rc)
		rc = json_dump_buf(doc, &text);
	if (!rc)
		rc = buf_addch(&text, '\n');
	if (!rc)
		rc = path_of(path, state_dir, AGENT_IDENTITY_FILE);
	if (!rc)
		rc = fs_write_atomic(path, text.ptr, text.len, IDENTITY_FILE_MODE, 0);
	buf_release(&text);
	json_decref(doc);
	return rc;
}

/* The peer's error: its {"error":{"code","message"}} or the status. */
static enum coffer_err peer_error(int status, const struct buf *resp, char *msg, size_t msg_size)
{
	json_t *doc = NULL, *err = NULL;
	const char *code = NULL, *text = NULL;
	enum coffer_err rc = coffer_err_from_http_status(status);
	if (json_parse_limited(resp->ptr, resp->len, AGENT_RESPONSE_MAX, JSON_MAX_DEPTH_DEFAULT, &doc, NULL) == COFFER_OK &&
	    json_get_object(doc, "error", 1, &err, NULL) == COFFER_OK) {
		if (json_get_string(err, "code", 1, &code, NULL, NULL) == COFFER_OK)
			rc = coffer_err_from_name(code);
		if (msg && json_get_string(err, "message", 1, &text, NULL, NULL) == COFFER_OK &&
		    str_copy(msg, msg_size, text))
			msg[0] = '\0';
	}
	if (rc == COFFER_OK)
		rc = COFFER_ERR_PROTOCOL;
	json_decref(doc);
	return rc;
}

enum coffer_err agent_identity_answer_key(struct agent_identity *id, const json_t *keeper_answer)
{
	if (!keeper_answer || get_b64(keeper_answer, ANSWERSIG_KEY_FIELD, id->answer_pk, sizeof(id->answer_pk)))
		return COFFER_ERR_PROTOCOL;
	id->has_answer_pk = 1;
	return COFFER_OK;
}

/*
 * A 2xx answer (status, resp) to id's request h, when it must be the api's
 * (verify): its signature header under the key the keeper gave.
 */
static enum coffer_err answer_check(const struct agent_identity *id, const struct hostauth_headers *h,
				    const struct http_client *c, const char *path, int status, const struct buf *resp,
				    char *msg, size_t msg_size)
{
	const char *sig = http_client_last_answer_signature(c);
	if (id->has_answer_pk &&
	    answersig_verify(id->answer_pk, id->host_id, h->nonce, status, resp->ptr, resp->len, sig) == COFFER_OK)
		return COFFER_OK;
	const char *why = !id->has_answer_pk ? "no answer key from the keeper"
			  : sig		     ? "answer signature does not verify"
					     : "answer is not signed";
	log_warn("agent_answer_refused", LF_S("path", path), LF_S("reason", why),
		 LF_S("effect", "nothing in it is acted on; running machines are kept"));
	if (msg && msg_size && str_copy(msg, msg_size, why))
		msg[0] = '\0';
	return COFFER_ERR_CRYPTO;
}

/*
 * Sends body (already serialised) to base_url; with signed headers when h
 * is not NULL, and a 2xx answer checked as the api's when verify is.
 */
/* ---- what the agent's calls last saw of its peers (metric_peer_up, the agent's /readyz) ---- */

static const char *peers_keeper_url; /* set before any thread; every other URL is an api */

void agent_peers_set_keeper(const char *keeper_url)
{
	peers_keeper_url = keeper_url;
	metrics_register(&metric_peer_up);
}

/* answered: an HTTP answer came back, whatever its status. */
static void peer_seen(const char *base_url, int answered)
{
	int keeper = peers_keeper_url && strcmp(base_url, peers_keeper_url) == 0;
	metrics_gauge_set(&metric_peer_up, answered ? 1 : 0, keeper ? "keeper" : "api");
}

void agent_machines_seen(size_t running, size_t down)
{
	metrics_gauge_set(&metric_machines, (double)running, "running");
	metrics_gauge_set(&metric_machines, (double)down, "down");
}

/*
 * keep (may be NULL): a client kept between calls to one base_url, so they
 * share one connection (no TCP and TLS handshake per call). It is dropped
 * when a call gets no answer, and the next call connects afresh.
 */
static enum coffer_err send_request(const struct agent_identity *verify, const char *base_url, const char *method,
				    const char *path, const struct hostauth_headers *h, const struct buf *body,
				    unsigned timeout_ms, size_t response_max, struct http_client **keep,
				    json_t **answer, char *msg, size_t msg_size)
{
	struct http_client *c = NULL;
	struct buf resp;
	json_t *doc = NULL;
	int status = 0, answered = 0;
	enum coffer_err rc = COFFER_OK;

	if (msg && msg_size)
		msg[0] = '\0';
	/* answers may carry a boot token: wiped when freed */
	buf_init_wiping(&resp, response_max);
	if (keep && *keep) {
		c = *keep;
		*keep = NULL;
		http_client_clear_headers(c); /* the last call's signature headers */
	} else {
		rc = http_client_new(base_url, timeout_ms, &c);
	}
	if (!rc && h) /* its nonce is spent once sent: never resent to another replica */
		http_client_no_resend(c);
	if (!rc && h &&
	    ((rc = http_client_add_header(c, HOSTAUTH_HEADER_HOST, h->host)) ||
	     (rc = http_client_add_header(c, HOSTAUTH_HEADER_TIMESTAMP, h->timestamp)) ||
	     (rc = http_client_add_header(c, HOSTAUTH_HEADER_NONCE, h->nonce)) ||
	     (rc = http_client_add_header(c, HOSTAUTH_HEADER_SIGNATURE, h->signature))))
		goto out;
	if (!rc) {
		rc = http_client_request(c, method, path, body ? body->ptr : NULL, body ? body->len : 0, response_max,
					 &status, &resp);
		answered = rc == COFFER_OK;
		peer_seen(base_url, answered);
	}
	if (rc && c && msg && msg_size) { /* no answer: why, in words (an untrusted certificate, ...) */
		size_t n = strnlen(http_client_last_error(c), msg_size - 1);
		memcpy(msg, http_client_last_error(c), n);
		msg[n] = '\0';
	}
	if (rc)
		goto out;
	if (status < 200 || status > 299) {
		rc = peer_error(status, &resp, msg, msg_size);
		goto out;
	}
	if (verify && h) {
		rc = answer_check(verify, h, c, path, status, &resp, msg, msg_size);
		if (rc)
			goto out;
	}
	if (resp.len &&
	    json_parse_limited(resp.ptr, resp.len, response_max, JSON_MAX_DEPTH_DEFAULT, &doc, NULL) != COFFER_OK) {
		rc = COFFER_ERR_PROTOCOL;
		goto out;
	}
	if (answer) {
		*answer = doc;
		doc = NULL;
	}
out:
	json_decref(doc);
	buf_release(&resp);
	if (keep && answered) /* an answer came: the connection is good for the next call */
		*keep = c;
	else
		http_client_free(c);
	return rc;
}

enum coffer_err agent_signed_call(const struct agent_identity *id, const char *base_url, const char *method,
				  const char *path, const json_t *body, json_t **answer, char *msg, size_t msg_size)
{
	return agent_signed_call_ex(id, base_url, method, path, body, AGENT_HTTP_TIMEOUT_MS, AGENT_RESPONSE_MAX, answer,
				    msg, msg_size);
}

/* The signed call; verify: the answer must be the api's, signed for this request. */
static enum coffer_err signed_call(const struct agent_identity *id, int verify, const char *base_url,
				   const char *method, const char *path, const json_t *body, unsigned timeout_ms,
				   size_t response_max, struct http_client **keep, json_t **answer, char *msg,
				   size_t msg_size)
{
	struct hostauth_headers h;
	struct buf text;
	enum coffer_err rc = COFFER_OK;

	if (msg && msg_size)
		msg[0] = '\0';
	if (!id->enrolled)
		return COFFER_ERR_INVALID;
	/* a body may carry a boot token: wiped when freed */
	buf_init_wiping(&text, AGENT_REQUEST_MAX);
	if (body)
		rc = json_dump_buf(body, &text);
	/* exactly the bytes sent are the bytes signed */
	struct hostauth_request r = { method, path, text.ptr, text.len };
	if (!rc)
		rc = hostauth_sign_headers(id->sign_sk, id->host_id, &r, (int64_t)time(NULL), &h);
	if (!rc)
		rc = send_request(verify ? id : NULL, base_url, method, path, &h, body ? &text : NULL, timeout_ms,
				  response_max, keep, answer, msg, msg_size);
	buf_release(&text);
	return rc;
}

enum coffer_err agent_signed_call_ex(const struct agent_identity *id, const char *base_url, const char *method,
				     const char *path, const json_t *body, unsigned timeout_ms, size_t response_max,
				     json_t **answer, char *msg, size_t msg_size)
{
	return signed_call(id, 0, base_url, method, path, body, timeout_ms, response_max, NULL, answer, msg, msg_size);
}

enum coffer_err agent_signed_call_kept(const struct agent_identity *id, const char *base_url, const char *method,
				       const char *path, const json_t *body, unsigned timeout_ms, size_t response_max,
				       struct http_client **conn, json_t **answer, char *msg, size_t msg_size)
{
	return signed_call(id, 0, base_url, method, path, body, timeout_ms, response_max, conn, answer, msg, msg_size);
}

enum coffer_err agent_signed_call_verified(const struct agent_identity *id, const char *base_url, const char *method,
					   const char *path, const json_t *body, unsigned timeout_ms,
					   size_t response_max, json_t **answer, char *msg, size_t msg_size)
{
	return signed_call(id, 1, base_url, method, path, body, timeout_ms, response_max, NULL, answer, msg, msg_size);
}

enum coffer_err agent_enrol(const char *state_dir, struct agent_identity *id, const char *keeper_url,
			    const struct secret *join_token, const char *name, char *msg, size_t msg_size)
{
	unsigned char proof[HOSTAUTH_SIG_LEN];
	struct agent_identity got;
	struct buf text;
	json_t *body = NULL, *answer = NULL;
	enum coffer_err rc;

	memset(&got, 0, sizeof(got));
	/* the body carries the join token: built and sent from memory that is wiped */
	buf_init_wiping(&text, AGENT_REQUEST_MAX);
	rc = hostauth_enrol_proof_sign(id->sign_sk, (const char *)secret_cbytes(join_token), secret_len(join_token),
				       name, proof);
	if (rc)
		goto out;
	body = json_pack("{s:s%,s:s}", "join_token", (const char *)secret_cbytes(join_token), secret_len(join_token),
			 "name", name);
	if (!body) {
		rc = COFFER_ERR_NOMEM;
		goto out;
	}
	if ((rc = set_b64(body, "sign_pk", id->sign_pk, sizeof(id->sign_pk))) ||
	    (rc = set_b64(body, "seal_pk", id->seal_pk, sizeof(id->seal_pk))) ||
	    (rc = set_b64(body, "proof", proof, sizeof(proof))) || (rc = json_dump_buf(body, &text)))
		goto out;
	rc = send_request(NULL, keeper_url, "POST", KEEPER_ENROL_PATH, NULL, &text, AGENT_HTTP_TIMEOUT_MS,
			  AGENT_RESPONSE_MAX, NULL, &answer, msg, msg_size);
	if (rc)
		goto out;
	if (!answer || identity_from(answer, "host_id", &got) || agent_identity_answer_key(id, answer)) {
		rc = COFFER_ERR_PROTOCOL;
		goto out;
	}
	memcpy(id->host_id, got.host_id, sizeof(id->host_id));
	memcpy(id->name, got.name, sizeof(id->name));
	memcpy(id->cert, got.cert, sizeof(id->cert));
	id->enrolled = 1;
	rc = save_identity(state_dir, id);
	if (rc)
		log_error("agent_identity_not_saved", LF_S("host_id", id->host_id), LF_S("error", coffer_err_name(rc)));
out:
	json_decref(answer);
	json_decref(body);
	buf_release(&text);
	return rc;
}

/* ---- host key rotation ---- */

enum coffer_err agent_rotate_begin(const char *state_dir, int *pending)
{
	char path[AGENT_PATH_MAX];
	struct secret *keys = NULL;
	unsigned char pk[HOSTAUTH_PK_LEN];
	struct secret *seal = NULL;
	enum coffer_err rc = path_of(path, state_dir, AGENT_PENDING_KEYS_FILE);

	*pending = 0;
	if (!rc)
		rc = secret_new(PENDING_LEN, &keys);
	if (!rc)
		rc = hpke_generate_keypair(&seal, pk);
	if (rc)
		goto out;
	randombytes_buf(secret_bytes(keys), AGENT_KEY_LEN);
	memcpy(secret_bytes(keys) + AGENT_KEY_LEN, secret_cbytes(seal), AGENT_KEY_LEN);
	rc = fs_write_atomic(path, secret_cbytes(keys), PENDING_LEN, KEY_FILE_MODE, 1);
	if (rc == COFFER_ERR_CONFLICT) {
		*pending = 1;
		rc = COFFER_OK;
	}
out:
	secret_free(seal);
	secret_free(keys);
	return rc;
}

/* The keeper's answer to the proof of id's move to the new keys: the new cert. */
static enum coffer_err rekey_call(const struct agent_identity *id, const struct secret *new_sk,
				  const unsigned char sign_pk[HOSTAUTH_PK_LEN], const unsigned char seal_pk[HOSTAUTH_PK_LEN],
				  const char *keeper_url, unsigned char cert[HOSTAUTH_CERT_LEN], char *msg, size_t msg_size)
{
	struct hostauth_rekey proof = { id->host_id, id->sign_pk, sign_pk, seal_pk };
	unsigned char sig_old[HOSTAUTH_SIG_LEN], sig_new[HOSTAUTH_SIG_LEN];
	json_t *body = NULL, *answer = NULL;
	struct buf text;
	enum coffer_err rc;

	buf_init(&text, AGENT_REQUEST_MAX);
	rc = hostauth_rekey_sign(id->sign_sk, &proof, sig_old);
	if (!rc)
		rc = hostauth_rekey_sign(new_sk, &proof, sig_new);
	if (!rc && !(body = json_pack("{s:s}", "host_id", id->host_id)))
		rc = COFFER_ERR_NOMEM;
	if (!rc)
		rc = set_b64(body, "old_sign_pk", id->sign_pk, HOSTAUTH_PK_LEN);
	if (!rc)
		rc = set_b64(body, "sign_pk", sign_pk, HOSTAUTH_PK_LEN);
	if (!rc)
		rc = set_b64(body, "seal_pk", seal_pk, HOSTAUTH_PK_LEN);
	if (!rc)
		rc = set_b64(body, "sig_old", sig_old, sizeof(sig_old));
	if (!rc)
		rc = set_b64(body, "sig_new", sig_new, sizeof(sig_new));
	if (!rc)
		rc = json_dump_buf(body, &text);
	if (!rc)
		rc = send_request(NULL, keeper_url, "POST", KEEPER_REKEY_PATH, NULL, &text, AGENT_HTTP_TIMEOUT_MS,
				  AGENT_RESPONSE_MAX, NULL, &answer, msg, msg_size);
	if (!rc && (!answer || get_b64(answer, "cert", cert, HOSTAUTH_CERT_LEN)))
		rc = COFFER_ERR_PROTOCOL;
	json_decref(answer);
	json_decref(body);
	buf_release(&text);
	return rc;
}

enum coffer_err agent_rotate_finish(const char *state_dir, struct agent_identity *id, const char *keeper_url,
				    int *rotated, char *msg, size_t msg_size)
{
	char path[AGENT_PATH_MAX];
	struct secret *pending = NULL, *seed = NULL, *new_sk = NULL, *seal = NULL;
	unsigned char sign_pk[HOSTAUTH_PK_LEN], seal_pk[HOSTAUTH_PK_LEN], cert[HOSTAUTH_CERT_LEN];
	const char *crash = getenv(TEST_CRASH_ENV);
	enum coffer_err rc = path_of(path, state_dir, AGENT_PENDING_KEYS_FILE);

	*rotated = 0;
	if (msg_size)
		msg[0] = '\0';
	if (!rc)
		rc = fs_read_private(path, PENDING_LEN + 1, &pending);
	if (rc == COFFER_ERR_NOT_FOUND)
		return COFFER_OK; /* nothing pending */
	if (!rc && secret_len(pending) != PENDING_LEN)
		rc = COFFER_ERR_INVALID;
	if (!rc)
		rc = secret_from(secret_cbytes(pending), AGENT_KEY_LEN, &seed);
	if (!rc)
		rc = secret_from(secret_cbytes(pending) + AGENT_KEY_LEN, AGENT_KEY_LEN, &seal);
	if (!rc)
		rc = jws_key_from_seed(seed, &new_sk, sign_pk);
	if (!rc)
		rc = hpke_public_key(seal, seal_pk);
	if (rc)
		goto out;
	if (sodium_memcmp(sign_pk, id->sign_pk, HOSTAUTH_PK_LEN) != 0) {
		/* the sign key file is written last: while it is the old one, the keeper may not have the new keys */
		rc = rekey_call(id, new_sk, sign_pk, seal_pk, keeper_url, cert, msg, msg_size);
		if (rc)
			goto out;
		log_info("agent_keys_accepted", LF_S("host_id", id->host_id));
		if (crash && strcmp(crash, "rekey-answered") == 0)
			raise(SIGKILL);
		memcpy(id->cert, cert, sizeof(id->cert));
		rc = path_of(path, state_dir, AGENT_SEAL_KEY_FILE);
		if (!rc)
			rc = fs_write_atomic(path, secret_cbytes(seal), AGENT_KEY_LEN, KEY_FILE_MODE, 0);
		if (!rc)
			rc = save_identity(state_dir, id);
		if (!rc)
			rc = path_of(path, state_dir, AGENT_SIGN_KEY_FILE);
		if (!rc)
			rc = fs_write_atomic(path, secret_cbytes(seed), AGENT_KEY_LEN, KEY_FILE_MODE, 0);
		if (rc)
			goto out;
	}
	/* the new keys are current: the pending file goes, and id holds them */
	rc = path_of(path, state_dir, AGENT_PENDING_KEYS_FILE);
	if (!rc && unlink(path) != 0)
		rc = COFFER_ERR_IO;
	if (rc)
		goto out;
	secret_free(id->sign_sk);
	secret_free(id->seal_sk);
	id->sign_sk = new_sk;
	id->seal_sk = seal;
	new_sk = seal = NULL;
	memcpy(id->sign_pk, sign_pk, sizeof(id->sign_pk));
	memcpy(id->seal_pk, seal_pk, sizeof(id->seal_pk));
	*rotated = 1;
out:
	secret_free(seal);
	secret_free(new_sk);
	secret_free(seed);
	secret_free(pending);
	return rc;
}
