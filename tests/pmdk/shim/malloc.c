/*
 * pmem2_malloc(): libpmem2's internal allocation helper, not exported by libpmem2.so.1.
 * pmem2_vm_reservation.c uses it for its arrays of map pointers (and frees them with core's
 * Free(), which is free()). malloc(), with libpmem2's error code on failure (-errno).
 */
#include <errno.h>
#include <stdlib.h>

#include "libpmem2.h"

void *pmem2_malloc(size_t size, int *err);

void *
pmem2_malloc(size_t size, int *err)
{
	void *ptr = malloc(size);

	*err = ptr == NULL ? -errno : 0;
	return ptr;
}
