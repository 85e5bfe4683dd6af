/*
 * pmem2_err_to_errno(): declared in libpmem2.h but not exported by libpmem2.so.1 1.12.1, so
 * a program linked with -lpmem2 cannot call it. pmem2_perror TEST6 tests it; that test is not
 * run (tests/pmdk/not-run.txt). This stub only lets the pmem2_perror program link; it aborts
 * if reached.
 */
#include <stdio.h>
#include <stdlib.h>

#include "libpmem2.h"

int
pmem2_err_to_errno(int err)
{
	fprintf(stderr, "pmem2_err_to_errno(%d): not exported by libpmem2.so.1\n", err);
	abort();
}
