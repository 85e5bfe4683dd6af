/*
 * The least a C library's pmem2_source_from_fd and pmem2_source_delete can do, for the
 * comparison harness (benches/benches/compare): a lower bound for any C-ABI implementation,
 * measured in the same run as ours.
 *
 * It makes the same syscalls as the floor, with the same instructions, and adds only what a
 * C function that answers like libpmem2 cannot skip: its own call and return, `*src = NULL`,
 * the classification of the answers, the sysfs path formatted by hand, `malloc`/`free` of a
 * 64-byte source on success, and on failure the error code stored in a `__thread` variable
 * (the least a per-thread error message can cost; no text is formatted). It checks nothing
 * else: no NULL `src`, no O_PATH, no truncated link. Built by benches/build.rs as a shared
 * object that the harness loads with dlopen, like the two libraries it compares, so its
 * thread-local is reached the way a dlopen'ed library's is (the default model for -fPIC,
 * `__tls_get_addr`). build.rs also builds it with -mtls-dialect=gnu2 (x86_64: TLS
 * descriptors, as scripts/build-capi.sh builds our library) and with MINIMAL_STATIC_TLS
 * defined, where the variable uses the initial-exec model (a fixed offset from the thread
 * pointer, in glibc's static TLS reserve).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

#include "pmem2_source.h"

/* The same instruction as the floor and the core (`sc`): no libc wrapper, no errno. Calls
 * that take fewer arguments get zeros, which the kernel ignores. */
static inline long raw_syscall(long number, long a, long b, long c, long d)
{
#if defined(__x86_64__)
	long ret;
	register long r10 __asm__("r10") = d;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "0"(number), "D"(a), "S"(b), "d"(c), "r"(r10)
			 : "rcx", "r11", "memory");
	return ret;
#elif defined(__aarch64__)
	register long x8 __asm__("x8") = number;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;
	__asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory");
	return x0;
#elif defined(__riscv)
	register long a7 __asm__("a7") = number;
	register long a0 __asm__("a0") = a;
	register long a1 __asm__("a1") = b;
	register long a2 __asm__("a2") = c;
	register long a3 __asm__("a3") = d;
	__asm__ volatile("ecall" : "+r"(a0) : "r"(a7), "r"(a1), "r"(a2), "r"(a3) : "memory");
	return a0;
#else
#error "the harness runs on x86_64, aarch64 and riscv64 only"
#endif
}

#ifdef MINIMAL_STATIC_TLS
static __thread int last_error __attribute__((tls_model("initial-exec")));
#else
static __thread int last_error;
#endif

/* The layout of ours (libpmem2's 40 bytes, then ino and ctime): type, file type, fd (or
 * size), rdev, dev, ino, ctime seconds and nanoseconds. */
struct minimal_source {
	uint64_t type;
	uint64_t file_type;
	int64_t fd;
	uint64_t rdev;
	uint64_t dev;
	uint64_t ino;
	int64_t ctime_sec;
	uint64_t ctime_nsec;
};

enum { LINK_TARGET_CAPACITY = 256 };

static int fail(struct minimal_source **src, int code)
{
	*src = NULL;
	last_error = code;
	return code;
}

/* Appends the decimal digits of `value` at `at`; returns the end. */
static char *put_decimal(char *at, unsigned value)
{
	char digits[10];
	int n = 0;
	do {
		digits[n++] = (char)('0' + value % 10);
		value /= 10;
	} while (value != 0);
	while (n > 0)
		*at++ = digits[--n];
	return at;
}

/* Whether character device `rdev`'s sysfs subsystem is `dax`. */
static int is_device_dax(dev_t rdev)
{
	static const char prefix[] = "/sys/dev/char/";
	static const char suffix[] = "/subsystem";
	char path[sizeof(prefix) + 10 + 1 + 10 + sizeof(suffix)];
	char *at = path;
	memcpy(at, prefix, sizeof(prefix) - 1);
	at += sizeof(prefix) - 1;
	at = put_decimal(at, major(rdev));
	*at++ = ':';
	at = put_decimal(at, minor(rdev));
	memcpy(at, suffix, sizeof(suffix));

	char target[LINK_TARGET_CAPACITY];
	long len = raw_syscall(SYS_readlinkat, AT_FDCWD, (long)path, (long)target,
			       sizeof(target));
	return len >= 4 && len < (long)sizeof(target) &&
		memcmp(target + len - 4, "/dax", 4) == 0;
}

__attribute__((visibility("default"))) int
minimal_source_from_fd(struct minimal_source **src, int fd)
{
	long flags = raw_syscall(SYS_fcntl, fd, F_GETFL, 0, 0);
	if (flags < 0 || (flags & O_ACCMODE) == O_WRONLY)
		return fail(src, PMEM2_E_INVALID_FILE_HANDLE);

	struct stat st;
	long ret = raw_syscall(SYS_fstat, fd, (long)&st, 0, 0);
	if (ret < 0)
		return fail(src, (int)ret);

	uint64_t file_type;
	if (S_ISREG(st.st_mode))
		file_type = 1;
	else if (S_ISCHR(st.st_mode) && is_device_dax(st.st_rdev))
		file_type = 2;
	else
		return fail(src, PMEM2_E_INVALID_FILE_TYPE);

	struct minimal_source *made = malloc(sizeof(*made));
	if (made == NULL)
		return fail(src, -ENOMEM);
	made->type = 1;
	made->file_type = file_type;
	made->fd = fd;
	made->rdev = st.st_rdev;
	made->dev = st.st_dev;
	made->ino = st.st_ino;
	made->ctime_sec = st.st_ctim.tv_sec;
	made->ctime_nsec = (uint64_t)st.st_ctim.tv_nsec;
	*src = made;
	return 0;
}

__attribute__((visibility("default"))) int
minimal_source_delete(struct minimal_source **src)
{
	free(*src);
	*src = NULL;
	return 0;
}

/* The calling thread's last error code (0 before the first failure), for the harness's check
 * that failures record it. */
__attribute__((visibility("default"))) int
minimal_source_last_error(void)
{
	return last_error;
}
