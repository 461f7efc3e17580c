/* agent_run.c — being written (docs/RUNPATH.md). */
typedef int coffer_placeholder_agent_run;
