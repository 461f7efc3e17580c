/* cmd_deploy.c — being written (docs/RUNPATH.md). */
typedef int coffer_placeholder_cmd_deploy;
