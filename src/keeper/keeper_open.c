/* keeper_open.c — being written (docs/RUNPATH.md). */
typedef int coffer_placeholder_keeper_open;
