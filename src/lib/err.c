#include "err.h"

#include <string.h>

#include "banned.h"

static const struct {
	const char *name;
	const char *message;
	int http_status;
	int exit_code;
} err_table[COFFER_ERR__COUNT] = {
	/* clang-format off */
	[COFFER_OK]              = { "ok",                 "success",                      200, 0 },
	[COFFER_ERR_NOMEM]       = { "out_of_memory",      "out of memory",                503, 1 },
	[COFFER_ERR_INVALID]     = { "invalid_argument",   "invalid argument",             400, 1 },
	[COFFER_ERR_TOO_LARGE]   = { "too_large",          "limit exceeded",               413, 1 },
	[COFFER_ERR_USAGE]       = { "usage",              "usage error",                  400, 2 },
	[COFFER_ERR_UNAUTH]      = { "unauthenticated",    "authentication required",      401, 3 },
	[COFFER_ERR_FORBIDDEN]   = { "forbidden",          "permission denied",            403, 4 },
	[COFFER_ERR_NOT_FOUND]   = { "not_found",          "not found",                    404, 5 },
	[COFFER_ERR_CONFLICT]    = { "conflict",           "conflict",                     409, 6 },
	[COFFER_ERR_CRYPTO]      = { "verification_failed","verification failed",          400, 1 },
	[COFFER_ERR_IO]          = { "io_error",           "input/output error",           500, 1 },
	[COFFER_ERR_STORE]       = { "store_error",        "store error",                  500, 1 },
	[COFFER_ERR_UNAVAILABLE] = { "unavailable",        "service unavailable",          503, 7 },
	[COFFER_ERR_PROTOCOL]    = { "protocol_error",     "unexpected answer from peer",  502, 1 },
	[COFFER_ERR_TAMPERED]    = { "row_tampered",       "stored row failed authentication", 500, 1 },
	[COFFER_ERR_INTERNAL]    = { "internal",           "internal error",               500, 1 },
	[COFFER_ERR_RATE_LIMITED] = { "rate_limited",      "too many requests",            429, 7 },
	/* clang-format on */
};

static int valid(enum coffer_err e)
{
	return (unsigned)e < COFFER_ERR__COUNT;
}

const char *coffer_strerror(enum coffer_err e)
{
	return valid(e) ? err_table[e].message : "unknown error";
}

const char *coffer_err_name(enum coffer_err e)
{
	return valid(e) ? err_table[e].name : "internal";
}

int coffer_err_http_status(enum coffer_err e)
{
	return valid(e) ? err_table[e].http_status : 500;
}

int coffer_err_exit_code(enum coffer_err e)
{
	return valid(e) ? err_table[e].exit_code : 1;
}

enum coffer_err coffer_err_from_name(const char *name)
{
	for (int i = 0; name && i < COFFER_ERR__COUNT; i++)
		if (strcmp(err_table[i].name, name) == 0)
			return (enum coffer_err)i;
	return COFFER_ERR_PROTOCOL;
}

enum coffer_err coffer_err_from_http_status(int status)
{
	if (status >= 200 && status < 300)
		return COFFER_OK;
	switch (status) {
	case 400: return COFFER_ERR_INVALID;
	case 401: return COFFER_ERR_UNAUTH;
	case 403: return COFFER_ERR_FORBIDDEN;
	case 404: return COFFER_ERR_NOT_FOUND;
	case 409: return COFFER_ERR_CONFLICT;
	case 413: case 431: return COFFER_ERR_TOO_LARGE;
	case 429: return COFFER_ERR_RATE_LIMITED;
	case 503: return COFFER_ERR_UNAVAILABLE;
	default: return COFFER_ERR_PROTOCOL;
	}
}
