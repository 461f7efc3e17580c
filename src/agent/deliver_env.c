/*
 * deliver_env.c — the delivery mode "env": each secret routed to it becomes
 * an environment variable of its name (layer 3 of machine.h; a COFFER_ name
 * is dropped). Nothing happens in the child and nothing is left to clean
 * up: the value lives only in the environment block, which deliver.c wipes.
 */
#include "deliver.h"

#include "banned.h"

static enum coffer_err env_prepare(const struct deliver_ctx *ctx, const struct deliver_item *items, size_t n,
				   struct deliver_prep *out, struct machine_error *err)
{
	for (size_t i = 0; i < n; i++) {
		if (items[i].target || items[i].perm) {
			machine_error_set(err, "the environment takes no target or mode, secret", items[i].name, 0);
			return COFFER_ERR_INVALID;
		}
		/* environment strings end at their first NUL */
		if (secret_has_nul(items[i].value)) {
			machine_error_set(err, "a NUL byte in the value of secret", items[i].name, 0);
			return COFFER_ERR_INVALID;
		}
	}
	for (size_t i = 0; i < n; i++) {
		enum coffer_err rc = deliver_env_put(ctx->env, items[i].name, secret_cbytes(items[i].value),
						     secret_len(items[i].value));
		if (rc)
			return rc;
	}
	*out = (struct deliver_prep){ 0 };
	return COFFER_OK;
}

const struct deliver_mode deliver_env = {
	.name = "env",
	.prepare = env_prepare,
};
