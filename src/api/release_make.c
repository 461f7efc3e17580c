/*
 * release_make.c — making a release: the config check, release_create,
 * the release's JSON (being written; docs/RUNPATH.md is the contract).
 */
#include "api.h"
#include "release.h"
#include "banned.h"

enum coffer_err release_config_check(const json_t *config, char **out, char *msg, size_t msg_size)
{
	(void)config;
	(void)out;
	(void)msg;
	(void)msg_size;
	return COFFER_ERR_UNAVAILABLE;
}

enum coffer_err release_create(struct api *api, struct store *s, const struct release_request *rq,
			       uint64_t *version, uint64_t *running, char *msg, size_t msg_size)
{
	(void)api;
	(void)s;
	(void)rq;
	(void)version;
	(void)running;
	(void)msg;
	(void)msg_size;
	return COFFER_ERR_UNAVAILABLE;
}

enum coffer_err release_running_of(struct store *s, const char *app_id, uint64_t *version)
{
	(void)s;
	(void)app_id;
	(void)version;
	return COFFER_ERR_UNAVAILABLE;
}

json_t *release_json(struct store *s, const struct store_release *r)
{
	(void)s;
	(void)r;
	return NULL;
}
