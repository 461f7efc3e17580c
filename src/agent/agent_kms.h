/*
 * agent_kms.h — a machine's KMS socket (kms.h has the protocol,
 * docs/RUNPATH.md "KMS socket"): the agent listens on
 * STATE/kms/<machine id>/kms.sock for as long as the machine runs, and
 * forwards each request, naming the machine, to the keeper's POST
 * /v1/kms/<op>, signed with the host key. The keeper decides (the same
 * checks as an open of that machine) and holds the keys; the agent sees
 * the data and the answers, never a key.
 *
 * Who may connect: STATE/kms and the machine's folder are the agent's,
 * 0711 (passable, not listable, not writable by the machine's user, so it
 * cannot swap the socket for a link); the socket alone is the machine's
 * user's (chowned, not following links, when the agent is root); and
 * each connection's SO_PEERCRED must show that user's
 * uid and a process of the machine's session (getsid(pid) is the
 * machine's main process, which leads its session). Anything else is
 * closed unanswered, and logged.
 *
 * One thread per socket answers its connections one at a time; each
 * connection is one request (at most KMS_LINE_MAX bytes, read within
 * AGENT_KMS_READ_TIMEOUT_MS) and one answer. agent_kms_close stops the
 * thread and removes the socket and its folder.
 */
#ifndef COFFER_AGENT_KMS_H
#define COFFER_AGENT_KMS_H

#include <sys/types.h>

#include "agent.h"

#define AGENT_KMS_DIR "kms"
#define AGENT_KMS_SOCKET_NAME "kms.sock"
#define AGENT_KMS_READ_TIMEOUT_MS 5000
/* a connection made before the agent knows the machine's pid waits for it at most this long */
#define AGENT_KMS_START_WAIT_MS 2000

struct agent_kms;

/*
 * Makes the folder and the socket of machine_id and starts answering (no
 * connection is admitted before agent_kms_set_pid; one made before it
 * waits for it up to AGENT_KMS_START_WAIT_MS). id, keeper_url and
 * state_dir are borrowed until agent_kms_close. *out only on success.
 */
COFFER_MUST_CHECK enum coffer_err agent_kms_open(const struct agent_identity *id, const char *keeper_url,
						 const char *state_dir, const char *machine_id,
						 struct agent_kms **out);
/* The socket's path (for the machine's COFFER_KMS_SOCKET). */
const char *agent_kms_path(const struct agent_kms *k);
/* The machine's main process (its session): 0 admits nobody. */
void agent_kms_set_pid(struct agent_kms *k, pid_t pid);
/* Stops answering, removes the socket and its folder, frees. NULL is allowed. */
void agent_kms_close(struct agent_kms *k);

#endif
