/*
 * keeper_client.c — the api's calls to the keeper (docs/API.md, "The
 * keeper's routes"). One http_client per call: a client is one thread's,
 * and app creation is rare enough that keeping a pool would be noise.
 */
#include <string.h>

#include "api.h"
#include "encode.h"
#include "http_client.h"
#include "log.h"
#include "vault.h"
#include "banned.h"

#define KEEPER_APP_KEYS_PATH "/v1/app-keys"
#define KEEPER_VERIFY_PATH "/v1/verify" /* keeper.h */
#define KEEPER_APP_KEY_VERSION 1
#define KEEPER_MSG_MAX 256
#define B64_SLACK 8

/* Decodes a base64url field of exactly len bytes. */
static enum coffer_err get_b64(const json_t *doc, const char *key, unsigned char *out, size_t len)
{
	const char *text;
	size_t n;
	struct buf b;
	enum coffer_err rc = json_get_string(doc, key, 1, &text, &n, NULL);
	if (rc)
		return COFFER_ERR_PROTOCOL;
	buf_init(&b, len + B64_SLACK); /* b64url_decode grows by a whole group first */
	rc = b64url_decode(text, n, &b);
	if (!rc && b.len != len)
		rc = COFFER_ERR_PROTOCOL;
	if (!rc)
		memcpy(out, b.ptr, len);
	buf_release(&b);
	return rc ? COFFER_ERR_PROTOCOL : COFFER_OK;
}

/*
 * One call to the keeper with the api credential: the answer's JSON to
 * *answer, the keeper's message to msg. A failure is logged (call, error,
 * message, the keeper's request id) unless its code is in quiet, a
 * zero-terminated list of the codes the caller answers itself.
 */
static enum coffer_err keeper_call(const struct api *api, const char *call, const char *method, const char *path,
				   const json_t *body, json_t **answer, char *msg, size_t msg_size,
				   const enum coffer_err *quiet)
{
	struct http_client *c = NULL;
	enum coffer_err rc = http_client_new(api->keeper_url, API_KEEPER_TIMEOUT_MS, &c);
	int log = 1;
	if (msg_size)
		msg[0] = '\0';
	if (!rc)
		rc = http_client_set_token(c, api->keeper_credential);
	if (!rc)
		rc = http_client_call_json(c, method, path, body, API_KEEPER_RESPONSE_MAX, answer, msg, msg_size);
	for (const enum coffer_err *q = quiet; rc && q && *q; q++)
		if (*q == rc)
			log = 0;
	if (rc && log)
		log_error("keeper_call_failed", LF_S("call", call), LF_S("error", coffer_err_name(rc)),
			  LF_S("message", msg_size ? msg : ""), LF_S("keeper_request_id", c ? http_client_last_request_id(c) : ""));
	http_client_free(c);
	return rc;
}

enum coffer_err keeper_client_create_app_key(const struct api *api, const char *app_id)
{
	struct http_client *c = NULL;
	json_t *body = NULL, *answer = NULL;
	char msg[KEEPER_MSG_MAX] = "";
	unsigned char pk[HPKE_PK_LEN], sig[VAULT_SIG_LEN];
	const char *got_id = NULL;
	int64_t version = 0;
	enum coffer_err rc;

	rc = http_client_new(api->keeper_url, API_KEEPER_TIMEOUT_MS, &c);
	if (rc)
		goto out;
	rc = http_client_set_token(c, api->keeper_credential);
	if (rc)
		goto out;
	body = json_pack("{s:s}", "app_id", app_id);
	if (!body) {
		rc = COFFER_ERR_NOMEM;
		goto out;
	}
	rc = http_client_call_json(c, "POST", KEEPER_APP_KEYS_PATH, body, API_KEEPER_RESPONSE_MAX, &answer, msg,
				   sizeof(msg));
	if (rc) {
		log_error("keeper_call_failed", LF_S("call", "app_keys.create"), LF_S("app_id", app_id),
			  LF_S("error", coffer_err_name(rc)), LF_S("message", msg),
			  LF_S("keeper_request_id", http_client_last_request_id(c)));
		goto out;
	}
	if (!answer || json_get_string(answer, "app_id", 1, &got_id, NULL, NULL) ||
	    json_get_int(answer, "version", 1, 1, UINT32_MAX, &version, NULL) || strcmp(got_id, app_id) != 0 ||
	    version != KEEPER_APP_KEY_VERSION || get_b64(answer, "public_key", pk, sizeof(pk)) ||
	    get_b64(answer, "signature", sig, sizeof(sig))) {
		rc = COFFER_ERR_PROTOCOL;
		log_error("keeper_answer_invalid", LF_S("call", "app_keys.create"), LF_S("app_id", app_id));
		goto out;
	}
	rc = vault_app_key_verify(api->keeper_pk, app_id, (uint32_t)version, pk, sig);
	if (rc) {
		rc = COFFER_ERR_CRYPTO;
		log_error("app_key_rejected", LF_S("message", "app key failed verification"), LF_S("app_id", app_id),
			  LF_S("where", "keeper answer"));
	}
out:
	json_decref(answer);
	json_decref(body);
	http_client_free(c);
	return rc;
}

enum coffer_err keeper_client_verify(const struct api *api, const json_t *body, int *match)
{
	json_t *answer = NULL;
	char msg[KEEPER_MSG_MAX];
	enum coffer_err rc = keeper_call(api, "secrets.verify", "POST", KEEPER_VERIFY_PATH, body, &answer, msg,
					 sizeof(msg), NULL);
	if (!rc && !json_is_boolean(json_object_get(answer, "match"))) {
		rc = COFFER_ERR_PROTOCOL;
		log_error("keeper_answer_invalid", LF_S("call", "secrets.verify"));
	} else if (!rc) {
		*match = json_is_true(json_object_get(answer, "match"));
	}
	json_decref(answer);
	return rc;
}

enum coffer_err keeper_client_audit_anchor(const struct api *api, struct anchor_head *head, char *problem,
					   size_t problem_size)
{
	struct http_client *c = NULL;
	json_t *answer = NULL, *doc = NULL;
	char msg[KEEPER_MSG_MAX] = "";
	const char *said = "", *why = NULL;
	struct anchor_head got;
	enum coffer_err rc;

	rc = http_client_new(api->keeper_url, API_KEEPER_TIMEOUT_MS, &c);
	if (!rc)
		rc = http_client_set_token(c, api->keeper_credential);
	if (!rc)
		rc = http_client_call_json(c, "POST", "/v1/audit/anchor", NULL, API_KEEPER_RESPONSE_MAX, &answer, msg,
					   sizeof(msg));
	if (rc) {
		log_error("keeper_call_failed", LF_S("call", "audit.anchor"), LF_S("error", coffer_err_name(rc)),
			  LF_S("message", msg), LF_S("keeper_request_id", c ? http_client_last_request_id(c) : ""));
		goto out;
	}
	if (!answer || json_get_object(answer, "head", 1, &doc, NULL) || anchor_from_json(doc, &got, &why) ||
	    json_get_string(answer, "problem", 0, &said, NULL, NULL)) {
		rc = COFFER_ERR_PROTOCOL;
		log_error("keeper_answer_invalid", LF_S("call", "audit.anchor"));
		goto out;
	}
	if (anchor_verify(api->keeper_pk, &got)) {
		rc = COFFER_ERR_CRYPTO;
		log_error("audit_head_rejected", LF_S("message", "the keeper's head does not verify under keeper.pub"),
			  LF_I("seq", got.seq));
		goto out;
	}
	if (problem_size && str_copy(problem, problem_size, said ? said : ""))
		problem[0] = '\0';
	*head = got;
out:
	json_decref(answer);
	http_client_free(c);
	return rc;
}

/* POST (revoke) or GET (state) /v1/hosts/:id[/revoke]: the keeper's state of the host, to state. */
static enum coffer_err host_call(const struct api *api, const char *host_id, int revoke, char *state,
				 size_t state_size, char *msg, size_t msg_size)
{
	json_t *answer = NULL;
	char path[API_PATH_MAX];
	const char *said = NULL, *id = NULL;
	enum coffer_err rc = fmt_into(path, sizeof(path), revoke ? "/v1/hosts/%s/revoke" : "/v1/hosts/%s", host_id);
	if (!rc)
		rc = keeper_call(api, revoke ? "hosts.revoke" : "hosts.get", revoke ? "POST" : "GET", path, NULL,
				 &answer, msg, msg_size, NULL);
	if (!rc && (!answer || json_get_string(answer, "state", 1, &said, NULL, NULL) ||
		    json_get_string(answer, "host_id", 1, &id, NULL, NULL) || strcmp(id, host_id) != 0 ||
		    str_copy(state, state_size, said))) {
		rc = COFFER_ERR_PROTOCOL;
		log_error("keeper_answer_invalid", LF_S("call", revoke ? "hosts.revoke" : "hosts.get"),
			  LF_S("host_id", host_id));
	}
	json_decref(answer);
	return rc;
}

enum coffer_err keeper_client_revoke_host(const struct api *api, const char *host_id, char *msg, size_t msg_size)
{
	char state[STORE_HOST_STATE_SIZE];
	enum coffer_err rc = host_call(api, host_id, 1, state, sizeof(state), msg, msg_size);
	if (!rc && strcmp(state, API_HOST_STATE_REVOKED) != 0) {
		rc = COFFER_ERR_PROTOCOL;
		log_error("keeper_answer_invalid", LF_S("call", "hosts.revoke"), LF_S("host_id", host_id));
	}
	return rc;
}

enum coffer_err keeper_client_host_state(const struct api *api, const char *host_id, char *state, size_t state_size)
{
	char msg[KEEPER_MSG_MAX];
	return host_call(api, host_id, 0, state, state_size, msg, sizeof(msg));
}

void keeper_client_anchor_quietly(void *ctx)
{
	struct anchor_head head;
	char problem[API_MESSAGE_MAX];
	if (keeper_client_audit_anchor(ctx, &head, problem, sizeof(problem)) == COFFER_OK && problem[0])
		log_error("audit_chain_broken", LF_S("where", "keeper"), LF_S("problem", problem));
}

enum coffer_err keeper_client_kms_keys(const struct api *api, const json_t *body, json_t **answer, char *msg,
				       size_t msg_size)
{
	static const enum coffer_err answered[] = { COFFER_ERR_NOT_FOUND, COFFER_ERR_CONFLICT, COFFER_ERR_INVALID, 0 };
	return keeper_call(api, "kms.keys", "POST", "/v1/kms/keys", body, answer, msg, msg_size, answered);
}
