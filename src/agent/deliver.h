/*
 * deliver.h — how a machine is given its environment and its secrets: the
 * seam machine_start goes through between the opened secrets and exec.
 *
 * A delivery mode is one row of the table deliver_modes (deliver_modes.c),
 * written in its own deliver_<mode>.c: "env" (deliver_env.c), the secrets
 * as environment variables, and "file" (deliver_files.c), the secrets as
 * files on a per-machine tmpfs. A new mode is a new deliver_<mode>.c
 * (listed in agent_deliver_sources), its extern below and its row in the
 * table; machine.c and deliver.c do not change.
 *
 * Each secret of the spec names the modes that deliver it (struct
 * machine_delivery in machine.h; none named: "env"). machine_start:
 *   1. deliver_prepare, before the vfork, in the parent: builds the environment
 *      (layers 1, 2 and 4 of machine.h) and, for layer 3, routes every
 *      secret to the modes it names and calls prepare of each mode that got
 *      at least one, in table order. prepare may add variables to the
 *      environment (deliver_env_put, which drops COFFER_ names) and may make
 *      a block of secure memory that only its apply_in_child reads;
 *   2. in the child, after its session, stdio and work dir are set up and
 *      before it drops to the machine's user (so still as the agent's user):
 *      apply_in_child of each prepared mode, in table order. It may call only
 *      async-signal-safe functions, and since the child shares the agent's
 *      memory (vfork, machine.c) it writes nothing but its own locals; it
 *      returns 0 or an errno (the start then fails with "cannot deliver the
 *      secrets \"<mode>\": <errno text>");
 *   3. in the parent, once the child has exec-ed or ended (the parent's
 *      thread waits in vfork until then), deliver_forked wipes and frees the
 *      environment block and every mode's child block; there is no copy of
 *      them in the child to end (it shared them), and execve made the new
 *      image's own; a child that fails before execve wipes them first
 *      (deliver_wipe_in_child);
 *   4. cleanup of each prepared mode once the machine has stopped (its main
 *      process ended and its group killed), or when the start fails after
 *      step 1, or from machine_free: at most once per mode per start.
 *
 * Ownership: prepare borrows the spec and the secret values for its call;
 * what it makes (state, child block) is the mode's, held for it by a struct
 * deliver_run until cleanup (state) or deliver_forked (child block). A
 * prepare that fails leaves nothing behind and writes no output.
 */
#ifndef COFFER_AGENT_DELIVER_H
#define COFFER_AGENT_DELIVER_H

#include <stddef.h>
#include <sys/types.h>

#include "err.h"
#include "machine.h"
#include "secret.h"

#define DELIVER_MODES_MAX 8 /* rows of deliver_modes */

/* One secret routed to a mode; everything borrowed from the spec. */
struct deliver_item {
	const char *name;
	const struct secret *value;
	const char *target; /* the delivery's target, or NULL */
	unsigned perm;      /* the delivery's permission bits, or 0 */
};

/* The machine's environment while deliver_prepare builds it. */
struct deliver_env;

/* What prepare sees. */
struct deliver_ctx {
	const struct machine_spec *spec;
	int drop;               /* 1: the machine runs as uid:gid, not as the agent */
	uid_t uid;
	gid_t gid;
	struct deliver_env *env;
};

/* What prepare hands back; both may be NULL. */
struct deliver_prep {
	void *state;          /* the mode's own, given back to cleanup */
	struct secret *child; /* read by apply_in_child only: see steps 2 and 3 */
};

struct deliver_mode {
	const char *name; /* what struct machine_delivery.mode says */
	/* Outputs only on success; err (may be NULL) gets a message on failure. */
	enum coffer_err (*prepare)(const struct deliver_ctx *ctx, const struct deliver_item *items, size_t n,
				   struct deliver_prep *out, struct machine_error *err);
	int (*apply_in_child)(const struct deliver_prep *prep); /* NULL: nothing to do in the child */
	void (*cleanup)(void *state);                            /* NULL: nothing to undo */
};

/* The table, NULL-terminated, at most DELIVER_MODES_MAX rows (deliver_modes.c). */
extern const struct deliver_mode *const deliver_modes[];

/* The modes (one deliver_<mode>.c each). */
extern const struct deliver_mode deliver_env;
extern const struct deliver_mode deliver_files; /* "file": deliver_files.c */

/*
 * Removes what the "file" mode made in dir (a machine's secrets_dir): each
 * file zeroed and unlinked, the tmpfs unmounted, the folder removed. For a
 * machine whose start was not this agent's (adopted, or gone while no agent
 * ran); nothing happens when dir is not a tmpfs.
 */
void deliver_files_sweep(const char *dir);

/*
 * Sets name to val in the environment, replacing an earlier value of that
 * name; a COFFER_ name is dropped (those are coffer's own). val is borrowed
 * until deliver_prepare returns: point into the spec or into the mode's state
 * or child block.
 */
COFFER_MUST_CHECK enum coffer_err deliver_env_put(struct deliver_env *env, const char *name, const void *val,
						  size_t vlen);

/* One machine start's deliveries. Zeroed (or {0}) before deliver_prepare. */
struct deliver_run {
	struct secret *env;   /* the envp array followed by its NAME=VALUE strings */
	const char *path;     /* the PATH value inside env, or NULL */
	size_t n_prepared;    /* modes that were asked to prepare (table rows 0..n_prepared) */
	int prepared[DELIVER_MODES_MAX];
	struct deliver_prep prep[DELIVER_MODES_MAX];
};

/*
 * Step 1. On failure everything prepared so far is cleaned up and freed.
 * COFFER_ERR_INVALID for a bad secret name, an unknown mode or what a mode
 * refuses; COFFER_ERR_TOO_LARGE past MACHINE_ENV_MAX.
 */
COFFER_MUST_CHECK enum coffer_err deliver_prepare(struct deliver_run *run, const struct machine_spec *spec, int drop,
						  uid_t uid, gid_t gid, struct machine_error *err);

/* Step 2, in the child: 0, or the errno of the first mode that failed and its row in *mode. */
int deliver_apply_in_child(const struct deliver_run *run, size_t *mode);

/* In the child, when a step before execve fails: wipes every block (async-signal-safe). */
void deliver_wipe_in_child(struct deliver_run *run);

/* Step 3, in the parent. */
void deliver_forked(struct deliver_run *run);

/* Step 4, and whatever deliver_forked has not freed yet. Harmless to call again. */
void deliver_cleanup(struct deliver_run *run);

#endif
