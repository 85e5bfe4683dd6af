/*
 * Header hygiene: pmem2_source.h on its own (no other header before or after it) must
 * compile in strict C99/C11 and, as C++, in C++11, with every warning an error.
 *
 * Each function is assigned to a pointer spelled with libpmem2 1.12.1's documented
 * prototype (prototypes.inc, which includes nothing), so a different parameter or return
 * type is an error here too (C: -Wincompatible-pointer-types under -Werror; C++: always an
 * error).
 */
#include <pmem2_source.h>

#ifndef PMEM2_SOURCE_H
#error "pmem2_source.h must define its include guard PMEM2_SOURCE_H"
#endif

int
main(void)
{
	int codes[] = {
		PMEM2_E_UNKNOWN, PMEM2_E_NOSUPP, PMEM2_E_INVALID_FILE_HANDLE,
		PMEM2_E_INVALID_FILE_TYPE, PMEM2_E_FILE_DESCRIPTOR_NOT_SET,
		PMEM2_E_IO_FAIL,
	};
#include "prototypes.inc"

	(void)codes;
	return 0;
}
