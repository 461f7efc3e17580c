/*
 * h_releases.c — releases: deploy, list, one with its progress
 * (being written; docs/RUNPATH.md is the contract).
 */
#include "api.h"
#include "release.h"
#include "banned.h"

enum coffer_err h_releases_create(struct http_request *req, void *ctx)
{
	(void)ctx;
	return api_fail(req, COFFER_ERR_UNAVAILABLE, "not built yet");
}

enum coffer_err h_releases_list(struct http_request *req, void *ctx)
{
	(void)ctx;
	return api_fail(req, COFFER_ERR_UNAVAILABLE, "not built yet");
}

enum coffer_err h_releases_get(struct http_request *req, void *ctx)
{
	(void)ctx;
	return api_fail(req, COFFER_ERR_UNAVAILABLE, "not built yet");
}
