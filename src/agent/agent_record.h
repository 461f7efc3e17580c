/*
 * agent_record.h — what the agent keeps on disk of each machine it runs,
 * so that a later agent (after a crash, a kill -9, an upgrade, or an exit
 * with --keep-machines) can adopt the process instead of starting a second
 * one (docs/RUNPATH.md, "Machines outlive their agent").
 *
 * STATE/machines/<id>/run.json, 0600, written atomically and fsync-ed
 * (fs_write_atomic) once the machine has exec-ed and before the agent
 * reports it started; removed once the agent has seen it end or stopped
 * it. It holds no secret: the machine's id, app, assignment spec, release,
 * grace window, start time (unix ms), its machine_ident (pid, start
 * time in clock ticks after boot, boot id), and whether its output goes
 * through a masker (mask_output.h): "masked", true only when this run's
 * out.log was written masked; a record without it (an older agent's) reads
 * as unmasked, and no tail of that run is ever reported.
 */
#ifndef COFFER_AGENT_RECORD_H
#define COFFER_AGENT_RECORD_H

#include <stdint.h>

#include "agent.h"
#include "boottoken.h"
#include "err.h"
#include "machine.h"

#define AGENT_RECORD_FILE "run.json"
#define AGENT_RECORD_MAX ((size_t)4 << 10)
#define AGENT_SPEC_MAX 64

struct agent_record {
	char id[BOOTTOKEN_ID_SIZE];
	char app[AGENT_NAME_SIZE];
	char spec[AGENT_SPEC_MAX + 1];
	int64_t release;
	int64_t grace_ms;
	int64_t started_at; /* unix ms */
	struct machine_ident ident;
	int masked; /* this run's output went through a masker: its log holds no raw value */
};

/* Writes rec as STATE/machines/<rec->id>/run.json (state_dir absolute). */
COFFER_MUST_CHECK enum coffer_err agent_record_write(const char *state_dir, const struct agent_record *rec);

/*
 * Reads machine id's record: COFFER_ERR_NOT_FOUND when there is none,
 * COFFER_ERR_INVALID when it is malformed or names another machine.
 */
COFFER_MUST_CHECK enum coffer_err agent_record_read(const char *state_dir, const char *id, struct agent_record *out);

/* Removes machine id's record; none is fine. */
void agent_record_remove(const char *state_dir, const char *id);

#endif
