/*
 * mask_output.h — the machine output masker: a small process per machine
 * (the agent's own binary, `coffer agent mask-output`, hidden) between the
 * machine's stdout/stderr pipe and its out.log.
 *
 * Its file descriptors, set by machine_start: 0 the read end of the
 * machine's output pipe, 1 out.log (O_APPEND), 3 a stream socket from the
 * agent carrying the values (MASK_WIRE: a u32 count, then per value a u32
 * length and its bytes, host byte order), answered with one byte
 * (MASK_READY) once they are held. Everything else is closed at start.
 *
 * It leads its own session (not the machine's group: a stop kills that
 * group and the masker must outlive it to flush), ignores SIGINT, SIGTERM
 * and SIGHUP, is not dumpable, keeps the values and every raw byte it reads
 * in sodium_malloc'd memory (locked, MADV_DONTDUMP) and exits 0 at the
 * pipe's end of file, once every process of the machine has closed it,
 * after writing the kept bytes. A write to out.log that fails drops the
 * bytes (the machine must never block on its log) and is counted in the
 * exit status (1).
 */
#ifndef COFFER_AGENT_MASK_OUTPUT_H
#define COFFER_AGENT_MASK_OUTPUT_H

#define MASK_OUTPUT_ARG "mask-output"  /* coffer agent mask-output */
#define MASK_VALUES_FD 3
#define MASK_READY 'k'

/* The masker's main (fds as above); the exit status. */
int agent_mask_output(void);

#endif
