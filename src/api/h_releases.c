/* h_releases.c — being written (docs/RUNPATH.md). */
typedef int coffer_placeholder_h_releases;
