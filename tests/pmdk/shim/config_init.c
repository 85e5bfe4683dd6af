/*
 * pmem2_config_init(): libpmem2's internal initialiser of a struct pmem2_config that the
 * caller owns (ut_pmem2_setup.c and pmem2_vm_reservation.c keep one on the stack). Not
 * exported by libpmem2.so.1. This gets libpmem2's own defaults through the public API: it
 * copies a config made by pmem2_config_new(). The layout is libpmem2 1.12.1's, from the same
 * release's src/libpmem2/config.h the test programs are compiled with.
 */
#include <stdlib.h>

#include "libpmem2.h"
#include "config.h"

void
pmem2_config_init(struct pmem2_config *cfg)
{
	struct pmem2_config *fresh;

	if (pmem2_config_new(&fresh) != 0)
		abort();
	*cfg = *fresh;
	pmem2_config_delete(&fresh);
}
