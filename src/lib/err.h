/*
 * err.h — the one error enum of coffer.
 *
 * Every fallible function in coffer returns an enum coffer_err. COFFER_OK is
 * zero. Each code has ONE row in the table in err.c giving its stable name
 * (used in JSON error bodies), its message, its HTTP status and its CLI exit
 * code; nothing else in the tree maps codes to statuses or exit codes.
 */
#ifndef COFFER_ERR_H
#define COFFER_ERR_H

#define COFFER_MUST_CHECK __attribute__((warn_unused_result))

enum coffer_err {
	COFFER_OK = 0,
	COFFER_ERR_NOMEM,       /* out of memory */
	COFFER_ERR_INVALID,     /* malformed or refused input */
	COFFER_ERR_TOO_LARGE,   /* a size or count limit was passed */
	COFFER_ERR_USAGE,       /* the command line is wrong */
	COFFER_ERR_UNAUTH,      /* missing, malformed, expired or revoked credential */
	COFFER_ERR_FORBIDDEN,   /* authenticated, but the role does not allow it */
	COFFER_ERR_NOT_FOUND,   /* no such thing (or not visible to the caller) */
	COFFER_ERR_CONFLICT,    /* exists already, or a concurrent change won */
	COFFER_ERR_CRYPTO,      /* verification or decryption failed */
	COFFER_ERR_IO,          /* a file or socket operation failed */
	COFFER_ERR_STORE,       /* the store failed */
	COFFER_ERR_UNAVAILABLE, /* a peer could not be reached or is busy */
	COFFER_ERR_PROTOCOL,    /* a peer answered something unexpected */
	COFFER_ERR_TAMPERED,    /* a stored row failed its authentication (forged or edited) */
	COFFER_ERR_INTERNAL,    /* a bug */
	COFFER_ERR_RATE_LIMITED, /* too many requests: try again later (429, Retry-After) */
	COFFER_ERR__COUNT
};

/* Lower-case message, no final full stop ("out of memory"). */
const char *coffer_strerror(enum coffer_err e);
/* Stable snake_case name used in API error bodies ("not_found"). */
const char *coffer_err_name(enum coffer_err e);
/* HTTP status for an error response; 200 for COFFER_OK. */
int coffer_err_http_status(enum coffer_err e);
/* Process exit code for the CLI; 0 for COFFER_OK. */
int coffer_err_exit_code(enum coffer_err e);
/* Inverse of coffer_err_name; COFFER_ERR_PROTOCOL for an unknown name. */
enum coffer_err coffer_err_from_name(const char *name);
/* Code for an HTTP status answered by a peer without a recognised body. */
enum coffer_err coffer_err_from_http_status(int status);

#endif
