/*
 * cmd_dev.c — `coffer dev`: every role on one machine, on SQLite.
 */
#include <stdio.h>

#include "cli.h"
#include "banned.h"

int cmd_dev(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "coffer dev: not yet available\n");
	return 1;
}
