/* release.c — being written (docs/RUNPATH.md). */
typedef int coffer_placeholder_release;
