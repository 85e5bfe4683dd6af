/*
 * pmem2_perror -- the one variadic function of the C ABI (stable Rust cannot define one).
 *
 * Prints "<formatted>: <pmem2_errormsg()>\n" to stderr, like libpmem2. A NULL format prints
 * only the message (libpmem2 would crash).
 */
#include <stdarg.h>
#include <stdio.h>

#include "pmem2_source.h"

#ifdef _WIN32
__declspec(dllexport)
#endif
void
pmem2_perror(const char *format, ...)
{
	const char *message = pmem2_errormsg();
	va_list args;

	if (format == NULL) {
		fprintf(stderr, "%s\n", message);
		return;
	}
	va_start(args, format);
	vfprintf(stderr, format, args);
	va_end(args);
	fprintf(stderr, ": %s\n", message);
}
