/*
 * pmem2_source.h together with Debian's <libpmem2.h> in one translation unit, in either
 * order: every function both declare must have the same type (a different redeclaration is
 * a "conflicting types" error in either order), and every macro both define must be defined
 * identically. A different macro redefinition is a warning (an error under -Werror) only
 * when it is in our header: gcc silences warnings in system headers such as
 * /usr/include/libpmem2/base.h, so the macros are checked by the -DLIBPMEM2_FIRST build (and
 * value by value in header_codes.c). The pointers below make the compiler use each
 * declaration.
 */
#ifdef LIBPMEM2_FIRST
#include <libpmem2.h>
#include <pmem2_source.h>
#else
#include <pmem2_source.h>
#include <libpmem2.h>
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
	/* Ours only: still declared next to libpmem2's header. */
	int (*set_funcs)(void *(*)(size_t), void (*)(void *)) = pmem2_source_set_funcs;

	(void)from_fd;
	(void)from_anon;
	(void)get_fd;
	(void)delete_;
	(void)errormsg;
	(void)perror_;
	(void)set_funcs;
	return 0;
}
