/*
 * Header hygiene: pmem2_source.h on its own (no other header before or after it) must
 * compile in strict C99/C11 and, as C++, in C++11, with every warning an error.
 *
 * Each function is assigned to a pointer spelled with libpmem2 1.12.1's documented
 * prototype, so a different parameter or return type is an error here too (C:
 * -Wincompatible-pointer-types under -Werror; C++: always an error).
 */
#include <pmem2_source.h>

#ifndef PMEM2_SOURCE_H
#error "pmem2_source.h must define its include guard PMEM2_SOURCE_H"
#endif

int
main(void)
{
	int (*from_fd)(struct pmem2_source **, int) = pmem2_source_from_fd;
	int (*from_anon)(struct pmem2_source **, size_t) = pmem2_source_from_anon;
	int (*get_fd)(const struct pmem2_source *, int *) = pmem2_source_get_fd;
	int (*delete_)(struct pmem2_source **) = pmem2_source_delete;
	const char *(*errormsg)(void) = pmem2_errormsg;
	void (*perror_)(const char *, ...) = pmem2_perror;
	int (*set_funcs)(void *(*)(size_t), void (*)(void *)) = pmem2_source_set_funcs;
	int codes[] = {
		PMEM2_E_UNKNOWN, PMEM2_E_NOSUPP, PMEM2_E_INVALID_FILE_HANDLE,
		PMEM2_E_INVALID_FILE_TYPE, PMEM2_E_FILE_DESCRIPTOR_NOT_SET,
		PMEM2_E_IO_FAIL,
	};

	(void)from_fd;
	(void)from_anon;
	(void)get_fd;
	(void)delete_;
	(void)errormsg;
	(void)perror_;
	(void)codes;
	(void)set_funcs;
	return 0;
}
