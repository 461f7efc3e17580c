/*
 * h_machines.c — machines of an app: list, destroy; scale; status
 * (being written; docs/RUNPATH.md is the contract).
 */
#include "api.h"
#include "release.h"
#include "banned.h"

enum coffer_err h_apps_scale(struct http_request *req, void *ctx)
{
	(void)ctx;
	return api_fail(req, COFFER_ERR_UNAVAILABLE, "not built yet");
}

enum coffer_err h_apps_status(struct http_request *req, void *ctx)
{
	(void)ctx;
	return api_fail(req, COFFER_ERR_UNAVAILABLE, "not built yet");
}

enum coffer_err h_machines_list(struct http_request *req, void *ctx)
{
	(void)ctx;
	return api_fail(req, COFFER_ERR_UNAVAILABLE, "not built yet");
}

enum coffer_err h_machines_destroy(struct http_request *req, void *ctx)
{
	(void)ctx;
	return api_fail(req, COFFER_ERR_UNAVAILABLE, "not built yet");
}
