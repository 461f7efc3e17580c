/*
 * deliver_modes.c — the table of delivery modes (deliver.h), in the order
 * they prepare and apply. A new mode: its deliver_<mode>.c, its extern in
 * deliver.h, its row here. (The unit test of machine.c links its own table.)
 */
#include "deliver.h"

#include "banned.h"

const struct deliver_mode *const deliver_modes[] = {
	&deliver_env,
	&deliver_files,
	NULL,
};
