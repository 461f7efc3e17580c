/*
 * endpoints.h — the several base URLs of one service (api replicas behind
 * one name) and the one rule for moving between them; http_client.c is
 * its only user, so every client (the CLI, the agent, the api's keeper
 * calls) fails over the same way.
 *
 * A base URL given to http_client_new may be a list "URL,URL,..." (blanks
 * around each ignored). A request goes to the list's current URL; when
 * that one fails in a way endpoints_try_next allows, the same request is
 * tried on the next one, and the first that answers becomes the current
 * URL for every later request of the process with that same list
 * (sticky: endpoints_current / endpoints_set_current, thread-safe).
 *
 * What is resent (endpoints_try_next): a request is tried on the next URL
 * when nothing of it was sent (the connection was refused, timed out, or
 * its TLS handshake failed), whatever its method; when it was sent but no
 * answer came, or the answer was 502/503, only when it is resendable (GET
 * or HEAD, and no one-time nonce: http_client_no_resend). Anything else
 * (a POST, PUT, PATCH or DELETE whose connection broke after sending) is
 * not resent: its outcome is unknown, and the caller is told so.
 */
#ifndef COFFER_ENDPOINTS_H
#define COFFER_ENDPOINTS_H

#include <stddef.h>

#include "err.h"
#include "http_client.h"

#define ENDPOINTS_MAX 8        /* URLs in one list */
#define ENDPOINTS_LISTS_MAX 16 /* lists a process remembers the current URL of */

struct endpoints {
	size_t n;
	char url[ENDPOINTS_MAX][HTTP_CLIENT_URL_MAX]; /* without a trailing '/' */
};

/*
 * Splits list into out. Each URL must start with http:// or https:// and
 * hold no control character or blank; COFFER_ERR_INVALID for an empty
 * list, an empty item or a bad URL, COFFER_ERR_TOO_LARGE for more than
 * ENDPOINTS_MAX URLs or one over HTTP_CLIENT_URL_MAX.
 */
COFFER_MUST_CHECK enum coffer_err endpoints_parse(const char *list, struct endpoints *out);

/* The index of list's current URL (0 until one is set), below n. */
size_t endpoints_current(const char *list, size_t n);
/* Makes URL i of list the current one (the first ENDPOINTS_LISTS_MAX lists are remembered). */
void endpoints_set_current(const char *list, size_t i);

/* How one try of a request ended. */
enum endpoints_outcome {
	ENDPOINTS_ANSWERED,          /* an HTTP answer other than 502/503 */
	ENDPOINTS_ANSWERED_UNAVAILABLE, /* 502 or 503 */
	ENDPOINTS_NOT_SENT,          /* no connection (refused, timeout, TLS): nothing of the request left */
	ENDPOINTS_NO_ANSWER,         /* sent, or maybe sent, and no answer */
};

/* 1 when the request may be tried on the next URL (see above); resendable: GET/HEAD without a nonce. */
int endpoints_try_next(enum endpoints_outcome o, int resendable);

#endif
