/*
 * http_phase.h — the request phases every coffer server shares: the
 * host-signature gate, the bearer gate, the actor, the role's admission
 * rules, and one audit event per audited request with the one "denied"
 * rule. The api and the keeper both run them; each supplies only callbacks
 * (struct http_phase_ops): how to load and check a host row, how to check
 * a bearer credential, what its own admission rules are, and how an audit
 * event is completed and appended.
 *
 * Which phases a request passes is said by its route's flags
 * (http_server.h):
 *
 *   HTTP_ROUTE_AUTH          the gate authenticates the caller: by bearer
 *                            credential (ops->bearer), unless also
 *   HTTP_ROUTE_HOST          a host's signed request (hostauth.h) against
 *                            the row ops->host_load loads and checks;
 *   HTTP_ROUTE_AUDIT         one audit event per request, refusals included
 *                            (ops->audit completes and appends it);
 *   HTTP_ROUTE_AUDIT_HANDLER the handler audits every request it decides
 *                            (http_phase_audited); a request refused before
 *                            it is audited by ops->audit_refused.
 *
 * Order on an HTTP_ROUTE_AUTH route: ops->begin, the host or bearer gate,
 * ops->admit; the request is admitted only when all of them let it pass.
 * A host request's nonce is checked twice: by the process's replay cache
 * (http_phases.replay: no store write for a replay within the process)
 * and by ops->replay, persisted, so a request replayed after a restart or
 * to another replica is refused too. A refused host request's audit
 * detail names the host id presented and the reason.
 *
 * Use: http_server_config.gate = http_phase_gate, .done = http_phase_done,
 * .hook_ctx = a struct http_phases that outlives the server.
 *
 * Ownership: a struct http_caller is the request's (the http_server auth
 * slot): made by the gate for every matched route, freed when the request
 * ends, after ops->end has released the role's data (c->role) and its
 * audit detail has been freed.
 */
#ifndef COFFER_HTTP_PHASE_H
#define COFFER_HTTP_PHASE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "hostauth.h"
#include "http_server.h"
#include "json.h"
#include "store.h"

#define HTTP_HOST_STATE_READY "ready"   /* the only state whose host may sign requests */
#define HTTP_HOST_STATE_REVOKED "revoked" /* revoked by an admin (`coffer hosts revoke`): refused for good */
#define HTTP_HOST_ACTOR_PREFIX "host:"  /* the actor of a host: "host:<id>" */
#define HTTP_ACTOR_ANONYMOUS "anonymous"
#define HTTP_AUDIT_DETAIL_MAX ((size_t)60 << 10) /* a larger detail is written as {} */
#define HTTP_AUDIT_OUTCOME_MAX 64

enum http_caller_kind {
	HTTP_CALLER_NONE = 0, /* nobody authenticated (yet) */
	HTTP_CALLER_BEARER,   /* ops->bearer accepted the Authorization header */
	HTTP_CALLER_HOST,     /* a host's signed request verified under its row */
};

struct http_phases;

/* One request's caller, as the phases found it. */
struct http_caller {
	const struct http_phases *phases;
	enum http_caller_kind kind;
	int admitted;                 /* every phase of the gate let the request through */
	char actor[HTTP_ACTOR_MAX];   /* the authenticated caller's actor ("" when none) */
	struct store_host host;       /* HTTP_CALLER_HOST: its row, checked by ops->host_load */
	const char *refusal;          /* a fixed reason the request was refused for (for the audit) */
	int audited;                  /* the handler appended the request's event itself */
	char audit_actor[HTTP_ACTOR_MAX]; /* the event's actor when no gate authenticated one */
	char audit_app[STORE_NAME_SIZE];  /* the app the event names */
	json_t *audit_detail;         /* owned; names and ids only, never a value or a token */
	void *role;                   /* the role's per-request data (ops->begin), released by ops->end */
};

struct http_phase_ops {
	/*
	 * An HTTP_ROUTE_AUTH route, before any gate: the role's per-request
	 * data in c->role (the api: its principal, a lent store connection).
	 * May reply. NULL: none.
	 */
	enum coffer_err (*begin)(void *ctx, struct http_request *req, struct http_caller *c);
	/* Releases c->role when the request ends (called only when c->role is set). */
	void (*end)(void *role);
	/*
	 * The answer is queued and audited (the end of http_phase_done): gives
	 * back what only handling needed (the api: its store connection), so
	 * it is not held while the answer is sent. The request ends (and end
	 * runs) only once the answer is out, which needs the server's threads:
	 * a connection held until then lets a burst of requests on every
	 * thread wait for connections that only those threads can give back.
	 * Called only when c->role is set. NULL: none.
	 */
	void (*answered)(void *role);
	/*
	 * HTTP_ROUTE_HOST: the row of host id, checked by the role (the
	 * keeper's registry MAC, the api's keeper certificate). COFFER_ERR_NOT_FOUND
	 * for no such host, COFFER_ERR_CRYPTO for a row that fails the check
	 * (the role logs the tampering), any other error as itself.
	 */
	enum coffer_err (*host_load)(void *ctx, struct http_caller *c, const char *id, struct store_host *out);
	/*
	 * HTTP_ROUTE_HOST, once the signature verified and the process's own
	 * replay cache let it pass: records that host id used nonce (32 hex),
	 * needed until expires_at (unix seconds), where every process of every
	 * role sees it (the store: store_host_nonce_use). COFFER_ERR_CONFLICT
	 * when it was used already (a replay, refused 401 "request replayed"),
	 * any other error as itself.
	 */
	enum coffer_err (*replay)(void *ctx, struct http_caller *c, const char *host_id, const char *nonce,
				  int64_t expires_at, int64_t now);
	/*
	 * A bearer route: header is the Authorization header (NULL when absent).
	 * COFFER_OK with actor written (a name or id, never the credential);
	 * COFFER_ERR_UNAUTH with *why (a fixed text); any other error as itself.
	 */
	enum coffer_err (*bearer)(void *ctx, struct http_caller *c, const char *header, char actor[HTTP_ACTOR_MAX],
				  const char **why);
	/*
	 * After the caller is authenticated: the role's own rules (the api: app
	 * visibility, roles). An error, or a reply, refuses. NULL: none.
	 */
	enum coffer_err (*admit)(void *ctx, struct http_request *req, const struct http_route *route,
				 struct http_caller *c);
	/*
	 * HTTP_ROUTE_AUDIT: completes ev (actor, action, app, detail, outcome and
	 * request id are set; org is NULL) with what the role knows and appends
	 * it. c is NULL when the request was refused before the gate (a body too
	 * large). A failure is logged by the phase.
	 */
	enum coffer_err (*audit)(void *ctx, struct http_request *req, const struct http_route *route,
				 const struct http_caller *c, struct store_audit_event *ev);
	/*
	 * HTTP_ROUTE_AUDIT_HANDLER, when the handler did not audit the request
	 * (it was refused before): appends the refusal's event. reason is
	 * c->refusal, or the error's name. c may be NULL, as above.
	 */
	enum coffer_err (*audit_refused)(void *ctx, struct http_request *req, const struct http_route *route,
					 const struct http_caller *c, const char *reason);
};

struct http_phases {
	const struct http_phase_ops *ops;
	void *ctx;                      /* passed to every op: the role */
	struct hostauth_replay *replay; /* nonces of signed host requests; needed by HTTP_ROUTE_HOST */
};

/* http_gate_fn and http_done_fn over a struct http_phases (the server's hook_ctx). */
enum coffer_err http_phase_gate(struct http_request *req, const struct http_route *route, void *phases);
void http_phase_done(struct http_request *req, const struct http_route *route, int status, enum coffer_err code,
		     void *phases);

/* The request's caller; NULL before the gate ran (or when it could not make one). */
struct http_caller *http_caller_of(struct http_request *req);

/*
 * The one "denied" rule: a request is denied when no gate admitted it and
 * it was answered unauthenticated (401), forbidden (403) or not found (404,
 * an app the caller may not see): who asked was refused, not what was
 * asked. Every other failure, the gate's own (a store down) included, and
 * any failure after admission, is an error.
 */
int http_phase_denied(const struct http_caller *c, enum coffer_err code);
/* "ok", "denied:<code name>" or "error:<code name>" for an answer (status, code) to c. */
COFFER_MUST_CHECK enum coffer_err http_phase_outcome(const struct http_caller *c, int status, enum coffer_err code,
						     char out[HTTP_AUDIT_OUTCOME_MAX]);

/*
 * What the request's audit event names: actor (when no gate authenticated
 * one; copied, NULL keeps it), app (copied, NULL keeps it) and detail
 * (consumed, NULL keeps it). Without a caller it only frees detail.
 */
void http_phase_audit_note(struct http_request *req, const char *actor, const char *app, json_t *detail);
/* Records why req was refused (a fixed text, for the audit) and answers code with it. */
COFFER_MUST_CHECK enum coffer_err http_phase_refuse(struct http_request *req, enum coffer_err code, const char *why);
/*
 * The handler has appended this request's event (HTTP_ROUTE_AUDIT_HANDLER;
 * or HTTP_ROUTE_AUDIT, with the event of http_phase_event, committed with
 * the request's change): the phase appends none.
 */
void http_phase_audited(struct http_request *req);
/*
 * The event the audit phase would append for req answered (status, code):
 * actor, action, app, detail (the noted one, dumped into detail, which
 * holds HTTP_AUDIT_DETAIL_MAX + 1 bytes), outcome, request id; the caller
 * completes it (ops->audit's part) and keeps outcome and detail alive.
 */
COFFER_MUST_CHECK enum coffer_err http_phase_event(struct http_request *req, int status, enum coffer_err code,
						  char outcome[HTTP_AUDIT_OUTCOME_MAX], struct buf *detail,
						  struct store_audit_event *ev);

#endif
