/* h_agent.c — being written (docs/RUNPATH.md). */
typedef int coffer_placeholder_h_agent;
