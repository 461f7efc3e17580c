/* h_machines.c — being written (docs/RUNPATH.md). */
typedef int coffer_placeholder_h_machines;
