/*
 * release.c — the release controller thread and the scheduler
 * (being written; docs/RUNPATH.md is the contract).
 */
#include <stdlib.h>

#include "api.h"
#include "release.h"
#include "banned.h"

struct release_ctl {
	uint64_t gen;
};

enum coffer_err release_ctl_start(struct api *api, struct release_ctl **out)
{
	(void)api;
	*out = calloc(1, sizeof(**out));
	return *out ? COFFER_OK : COFFER_ERR_NOMEM;
}

void release_ctl_wake(struct release_ctl *c)
{
	(void)c;
}

void release_ctl_stop(struct release_ctl *c)
{
	free(c);
}

void release_assignments_changed(struct release_ctl *c)
{
	if (c)
		c->gen++;
}

uint64_t release_assignments_wait(struct release_ctl *c, uint64_t gen_seen, int64_t timeout_ms)
{
	(void)timeout_ms;
	return c ? c->gen : gen_seen;
}
