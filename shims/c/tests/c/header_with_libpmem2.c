/*
 * pmem2_source.h together with Debian's <libpmem2.h> in one translation unit, in either
 * order: every function both declare must have the same type (a different redeclaration is
 * a "conflicting types" error in either order), and every macro both define must be defined
 * identically. A different macro redefinition is a warning (an error under -Werror) only
 * when it is in our header: gcc silences warnings in system headers such as
 * /usr/include/libpmem2/base.h, so the macros are checked by the -DLIBPMEM2_FIRST build (and
 * value by value in header_codes.c). The pointers of prototypes.inc make the compiler use
 * each declaration.
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
#include "prototypes.inc"
	return 0;
}
