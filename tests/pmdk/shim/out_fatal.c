/*
 * out_fatal(): what PMDK's out.h turns a failed ASSERT()/FATAL() into when a program is built
 * with -DDEBUG, as the test programs are here, so that out.h's assertions in the tests' code
 * are checked (libpmem2.so.1 does not export out_fatal). Prints where and why, then aborts.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void out_fatal(const char *file, int line, const char *func, const char *fmt, ...)
	__attribute__((noreturn));

void
out_fatal(const char *file, int line, const char *func, const char *fmt, ...)
{
	va_list args;

	fprintf(stderr, "%s:%d %s: ", file, line, func);
	va_start(args, fmt);
	vfprintf(stderr, fmt, args);
	va_end(args);
	fputc('\n', stderr);
	abort();
}
