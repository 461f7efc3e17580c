/*
 * h_agent.c — the agents' routes: assignments (long poll), boot tokens, events
 * (being written; docs/RUNPATH.md is the contract).
 */
#include "api.h"
#include "release.h"
#include "banned.h"

enum coffer_err h_agent_assignments(struct http_request *req, void *ctx)
{
	(void)ctx;
	return api_fail(req, COFFER_ERR_UNAVAILABLE, "not built yet");
}

enum coffer_err h_agent_boot_token(struct http_request *req, void *ctx)
{
	(void)ctx;
	return api_fail(req, COFFER_ERR_UNAVAILABLE, "not built yet");
}

enum coffer_err h_agent_events(struct http_request *req, void *ctx)
{
	(void)ctx;
	return api_fail(req, COFFER_ERR_UNAVAILABLE, "not built yet");
}
