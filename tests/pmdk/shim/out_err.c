/*
 * The test programs' ERR() (PMDK's src/core/out.h): sets the calling thread's libpmem2 error
 * message, the text pmem2_errormsg() returns and pmem2_perror() prints. Inside libpmem2 it is
 * the internal out_err(), which libpmem2.so.1 does not export. This writes the message into
 * the buffer that pmem2_errormsg() returns: both libpmem2 1.12.1 (8192 bytes, thread-local)
 * and ours (1024 bytes, thread-local) return a pointer to the thread's own buffer, which the
 * next pmem2_errormsg()/pmem2_perror() shows. A leading '!' appends ": strerror(errno)", as
 * out_err does. Needed by pmem2_perror TEST2/3 (test_fail_system_func_*).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <libpmem2.h>

#define SHIM_MESSAGE_CAPACITY 1024 /* the smaller of the two buffers */

void out_err(const char *file, int line, const char *func, const char *fmt, ...);

void
out_err(const char *file, int line, const char *func, const char *fmt, ...)
{
	int saved_errno = errno;
	char *message = (char *)pmem2_errormsg();
	int with_errno = fmt[0] == '!';
	va_list args;
	int n;

	(void) file;
	(void) line;
	(void) func;
	va_start(args, fmt);
	n = vsnprintf(message, SHIM_MESSAGE_CAPACITY, with_errno ? fmt + 1 : fmt, args);
	va_end(args);
	if (with_errno && n >= 0 && n < SHIM_MESSAGE_CAPACITY)
		snprintf(message + n, (size_t)(SHIM_MESSAGE_CAPACITY - n), ": %s",
			strerror(saved_errno));
	errno = saved_errno;
}
