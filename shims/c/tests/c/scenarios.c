/*
 * libpmem2's source test scenarios, written against Debian's <libpmem2.h> (not ours) and
 * linked to libpmem2_source: a C program using the published API runs unchanged on our
 * library.
 *
 * Usage: scenarios <scratch directory> [<Device DAX> <size> <alignment>]
 *
 * With a Device DAX (a real one: tests/devdax-vm/run.sh runs this inside its guest), also
 * its size and alignment, which must be the ones given, a NUMA node, and mcsafe I/O across
 * an alignment boundary (writing only in [8 MiB, 16 MiB) of the device).
 *
 * Prints one line per check ("ok - ..." or "FAIL (line N) - ...") and a summary; exits 1 if
 * any check failed. pmem2_perror writes two lines to stderr, which the Rust test compares
 * exactly (nothing else is written there).
 *
 * Allocations go through a counting allocator registered with our extension
 * pmem2_source_set_funcs before anything else, which the last checks balance.
 *
 * The queries: size and alignment of a regular file and of an anonymous source, an mcsafe
 * write read back, out-of-range reads and writes, and what an anonymous source does not
 * support.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpmem2.h>

/* Our extension: Debian's header does not declare it. */
int pmem2_source_set_funcs(void *(*malloc_func)(size_t size), void (*free_func)(void *ptr));

#include "checks.h"
#include "counting_alloc.h"

/* --- the allocators ------------------------------------------------------------------------ */

/* The counting allocator (counting_alloc.h) fails while this is set. */
static int fail_allocations;
static long other_calls;

static int
allocation_fails(void)
{
	return fail_allocations;
}

/* A second pair, registered too late: must never be called. */
static void *
other_malloc(size_t size)
{
	other_calls++;
	return malloc(size);
}

static void
other_free(void *ptr)
{
	other_calls++;
	free(ptr);
}

/* --- scenarios --------------------------------------------------------------------------- */

static long expected_allocations; /* successful source creations */

static void
allocator_registration(void)
{
	CHECK_INT("set_funcs(NULL, free) is -EINVAL",
		pmem2_source_set_funcs(NULL, counting_free), -EINVAL);
	CHECK_MESSAGE("set_funcs(NULL, free) message",
		"pmem2_source_set_funcs: malloc_func must not be NULL");
	CHECK_INT("set_funcs(malloc, NULL) is -EINVAL",
		pmem2_source_set_funcs(counting_malloc, NULL), -EINVAL);
	CHECK_MESSAGE("set_funcs(malloc, NULL) message",
		"pmem2_source_set_funcs: free_func must not be NULL");
	CHECK_INT("set_funcs(counting pair) before the first allocation",
		pmem2_source_set_funcs(counting_malloc, counting_free), 0);
	CHECK_INT("set_funcs(other pair) afterwards is -EBUSY",
		pmem2_source_set_funcs(other_malloc, other_free), -EBUSY);
	CHECK_MESSAGE_PREFIX("set_funcs -EBUSY message", "pmem2_source_set_funcs: ");
	CHECK_INT("set_funcs(counting pair) again is -EBUSY",
		pmem2_source_set_funcs(counting_malloc, counting_free), -EBUSY);
}

/* fd opened with `flags` is accepted and get_fd returns it. */
static void
accepted(const char *path, int flags, const char *name)
{
	struct pmem2_source *src = BOGUS;
	char what[128];
	int fd = open(path, flags);
	int out = -7;

	snprintf(what, sizeof(what), "open %s", name);
	CHECK(what, fd >= 0);
	snprintf(what, sizeof(what), "from_fd(%s) accepted", name);
	CHECK_INT(what, pmem2_source_from_fd(&src, fd), 0);
	expected_allocations++;
	snprintf(what, sizeof(what), "from_fd(%s) set src", name);
	CHECK(what, src != NULL && src != BOGUS);
	snprintf(what, sizeof(what), "get_fd(%s source)", name);
	CHECK_INT(what, pmem2_source_get_fd(src, &out), 0);
	snprintf(what, sizeof(what), "get_fd(%s source) returns the fd", name);
	CHECK_INT(what, out, fd);
	snprintf(what, sizeof(what), "delete(%s source)", name);
	CHECK_INT(what, pmem2_source_delete(&src), 0);
	snprintf(what, sizeof(what), "delete(%s source) set src to NULL", name);
	CHECK(what, src == NULL);
	snprintf(what, sizeof(what), "delete(%s source) did not close the fd", name);
	CHECK(what, fcntl(fd, F_GETFD) != -1);
	close(fd);
}

/* from_fd(fd) fails with `code` and `message`, leaving src NULL. */
static void
rejected(int fd, const char *name, int code, const char *message)
{
	struct pmem2_source *src = BOGUS;
	char what[128];

	snprintf(what, sizeof(what), "from_fd(%s) rejected", name);
	CHECK_INT(what, pmem2_source_from_fd(&src, fd), code);
	snprintf(what, sizeof(what), "from_fd(%s) left src NULL", name);
	CHECK(what, src == NULL);
	snprintf(what, sizeof(what), "from_fd(%s) message", name);
	CHECK_MESSAGE(what, message);
}

static void
file_descriptors(const char *dir, const char *file)
{
	int fd;

	accepted(file, O_RDWR, "O_RDWR fd");
	accepted(file, O_RDONLY, "O_RDONLY fd");

	fd = open(file, O_RDONLY);
	CHECK("open a fd to close", fd >= 0);
	close(fd);
	rejected(fd, "closed fd", PMEM2_E_INVALID_FILE_HANDLE, "fcntl: Bad file descriptor");

	fd = open(file, O_WRONLY);
	CHECK("open O_WRONLY", fd >= 0);
	rejected(fd, "O_WRONLY fd", PMEM2_E_INVALID_FILE_HANDLE,
		"fd must be open with O_RDONLY or O_RDWR");
	pmem2_perror("perror after O_WRONLY %d", 42);
	close(fd);

	rejected(-1, "fd -1", PMEM2_E_INVALID_FILE_HANDLE,
		"invalid file descriptor value -1 (descriptors are never negative)");

	fd = open(dir, O_RDONLY | O_DIRECTORY);
	CHECK("open the directory", fd >= 0);
	rejected(fd, "directory fd", PMEM2_E_INVALID_FILE_TYPE,
		"cannot set fd to directory in pmem2_source_from_fd");
	close(fd);
}

static void
anonymous(void)
{
	static const size_t sizes[] = {4096, 0, SIZE_MAX};
	struct pmem2_source *src;
	char what[128];
	size_t i;
	int fd;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		src = BOGUS;
		snprintf(what, sizeof(what), "from_anon(%zu) accepted", sizes[i]);
		CHECK_INT(what, pmem2_source_from_anon(&src, sizes[i]), 0);
		expected_allocations++;
		snprintf(what, sizeof(what), "from_anon(%zu) set src", sizes[i]);
		CHECK(what, src != NULL && src != BOGUS);
		fd = 12345;
		CHECK_INT("get_fd(anon) is PMEM2_E_FILE_DESCRIPTOR_NOT_SET",
			pmem2_source_get_fd(src, &fd), PMEM2_E_FILE_DESCRIPTOR_NOT_SET);
		CHECK_INT("get_fd(anon) left *fd alone", fd, 12345);
		CHECK_MESSAGE("get_fd(anon) message",
			"File descriptor is not set, source type does not support fd");
		CHECK_INT("delete(anon)", pmem2_source_delete(&src), 0);
		CHECK("delete(anon) set src to NULL", src == NULL);
	}
}

static void
deletes(void)
{
	struct pmem2_source *src = NULL;

	CHECK_INT("delete(&NULL source) returns 0", pmem2_source_delete(&src), 0);
	CHECK("delete(&NULL source) left it NULL", src == NULL);
	CHECK_INT("delete(NULL) returns 0", pmem2_source_delete(NULL), 0);
}

static void
null_arguments(const char *file)
{
	struct pmem2_source *src = NULL;
	int fd = open(file, O_RDWR);

	CHECK("open for NULL-argument checks", fd >= 0);
	CHECK_INT("from_fd(NULL, fd) is -EINVAL", pmem2_source_from_fd(NULL, fd), -EINVAL);
	CHECK_MESSAGE("from_fd(NULL, fd) message", "pmem2_source_from_fd: src must not be NULL");
	CHECK_INT("from_anon(NULL, 1) is -EINVAL", pmem2_source_from_anon(NULL, 1), -EINVAL);
	CHECK_MESSAGE("from_anon(NULL, 1) message",
		"pmem2_source_from_anon: src must not be NULL");
	CHECK_INT("get_fd(NULL, &fd) is -EINVAL", pmem2_source_get_fd(NULL, &fd), -EINVAL);
	CHECK_MESSAGE("get_fd(NULL, &fd) message", "pmem2_source_get_fd: src must not be NULL");

	CHECK_INT("from_fd for get_fd(src, NULL)", pmem2_source_from_fd(&src, fd), 0);
	expected_allocations++;
	CHECK_INT("get_fd(src, NULL) is -EINVAL", pmem2_source_get_fd(src, NULL), -EINVAL);
	CHECK_MESSAGE("get_fd(src, NULL) message", "pmem2_source_get_fd: fd must not be NULL");
	CHECK_INT("delete after get_fd(src, NULL)", pmem2_source_delete(&src), 0);
	close(fd);
}

static void
success_keeps_the_message(const char *file)
{
	struct pmem2_source *src = NULL;
	int fd = open(file, O_RDONLY);

	rejected(-5, "fd -5", PMEM2_E_INVALID_FILE_HANDLE,
		"invalid file descriptor value -5 (descriptors are never negative)");
	CHECK_INT("from_fd after a failure", pmem2_source_from_fd(&src, fd), 0);
	expected_allocations++;
	CHECK_INT("delete(fd source) after a failure", pmem2_source_delete(&src), 0);
	CHECK_INT("from_anon after a failure", pmem2_source_from_anon(&src, 1), 0);
	expected_allocations++;
	CHECK_INT("delete(anon source) after a failure", pmem2_source_delete(&src), 0);
	CHECK_MESSAGE("successful calls left the message alone",
		"invalid file descriptor value -5 (descriptors are never negative)");
	close(fd);
}

static void
out_of_memory(const char *file)
{
	struct pmem2_source *src;
	int fd = open(file, O_RDWR);

	CHECK("open for the out-of-memory checks", fd >= 0);
	fail_allocations = 1;
	src = BOGUS;
	CHECK_INT("from_fd with malloc failing is -ENOMEM", pmem2_source_from_fd(&src, fd),
		-ENOMEM);
	CHECK("from_fd -ENOMEM left src NULL", src == NULL);
	CHECK_MESSAGE("from_fd -ENOMEM message", "cannot allocate a pmem2_source: out of memory");
	rejected(-2, "fd -2", PMEM2_E_INVALID_FILE_HANDLE,
		"invalid file descriptor value -2 (descriptors are never negative)");
	src = BOGUS;
	CHECK_INT("from_anon with malloc failing is -ENOMEM", pmem2_source_from_anon(&src, 1),
		-ENOMEM);
	CHECK("from_anon -ENOMEM left src NULL", src == NULL);
	CHECK_MESSAGE("from_anon -ENOMEM message",
		"cannot allocate a pmem2_source: out of memory");
	pmem2_perror("%s", "perror after ENOMEM");
	fail_allocations = 0;
	CHECK_INT("both failed allocations reached the registered malloc", failed_allocations,
		2);

	CHECK_INT("from_fd once malloc works again", pmem2_source_from_fd(&src, fd), 0);
	expected_allocations++;
	CHECK_INT("delete once malloc works again", pmem2_source_delete(&src), 0);
	close(fd);
}

/* The queries on a regular file holding "pmem2". */
static void
file_queries(const char *file)
{
	struct pmem2_source *src = BOGUS;
	size_t size = 7, alignment = 7;
	char written[] = "MEM";
	char buf[8];
	int fd = open(file, O_RDWR);

	CHECK("open for the queries", fd >= 0);
	CHECK_INT("from_fd for the queries", pmem2_source_from_fd(&src, fd), 0);
	expected_allocations++;
	CHECK_INT("size(regular file)", pmem2_source_size(src, &size), 0);
	CHECK_INT("size(regular file) is its length", size, 5);
	CHECK_INT("alignment(regular file)", pmem2_source_alignment(src, &alignment), 0);
	CHECK_INT("alignment(regular file) is the page size", alignment, sysconf(_SC_PAGESIZE));

	CHECK_INT("pwrite_mcsafe of \"MEM\" at 1", pmem2_source_pwrite_mcsafe(src, written, 3, 1),
		0);
	memset(buf, 0, sizeof(buf));
	CHECK_INT("pread_mcsafe of 5 at 0", pmem2_source_pread_mcsafe(src, buf, 5, 0), 0);
	CHECK("pread_mcsafe reads what pwrite_mcsafe wrote", memcmp(buf, "pMEM2", 6) == 0);
	CHECK_INT("pread_mcsafe of 0 bytes at the end into NULL",
		pmem2_source_pread_mcsafe(src, NULL, 0, 5), 0);

	CHECK_INT("pread_mcsafe of 4 at 2 is PMEM2_E_LENGTH_OUT_OF_RANGE",
		pmem2_source_pread_mcsafe(src, buf, 4, 2), PMEM2_E_LENGTH_OUT_OF_RANGE);
	CHECK_MESSAGE("pread_mcsafe of 4 at 2 message",
		"size of read 4 from offset 2 goes beyond the file length 3");
	CHECK_INT("pwrite_mcsafe of 4 at 2 is PMEM2_E_LENGTH_OUT_OF_RANGE",
		pmem2_source_pwrite_mcsafe(src, buf, 4, 2), PMEM2_E_LENGTH_OUT_OF_RANGE);
	CHECK_MESSAGE("pwrite_mcsafe of 4 at 2 message",
		"size of write 4 from offset 2 goes beyond the file length 3");
	CHECK_INT("pread_mcsafe at offset 6 (past the end) is PMEM2_E_LENGTH_OUT_OF_RANGE",
		pmem2_source_pread_mcsafe(src, buf, 1, 6), PMEM2_E_LENGTH_OUT_OF_RANGE);
	CHECK_MESSAGE("pread_mcsafe at offset 6 message",
		"offset 6 of read is beyond the end of the source (5 bytes)");
	CHECK_INT("size after the failed write", pmem2_source_size(src, &size), 0);
	CHECK_INT("the failed write changed nothing", size, 5);

	CHECK_INT("size(src, NULL) is -EINVAL", pmem2_source_size(src, NULL), -EINVAL);
	CHECK_MESSAGE("size(src, NULL) message", "pmem2_source_size: size must not be NULL");
	CHECK_INT("size(NULL, &size) is -EINVAL", pmem2_source_size(NULL, &size), -EINVAL);
	CHECK_MESSAGE("size(NULL, &size) message", "pmem2_source_size: src must not be NULL");
	CHECK_INT("pread_mcsafe(src, NULL, 1, 0) is -EINVAL",
		pmem2_source_pread_mcsafe(src, NULL, 1, 0), -EINVAL);
	CHECK_MESSAGE("pread_mcsafe(src, NULL, 1, 0) message",
		"pmem2_source_pread_mcsafe: buf must not be NULL when size is 1");

	CHECK_INT("delete after the queries", pmem2_source_delete(&src), 0);
	close(fd);
}

/* What an anonymous source answers. */
static void
anonymous_queries(void)
{
	static const char *const no_io = "operation doesn't support provided source type, only "
		"sources created from file descriptor or file handle are supported";
	struct pmem2_source *src = BOGUS;
	size_t size = 7, alignment = 7, len = 7;
	uint64_t usc = 7;
	int node = 7;
	char buf[4] = "abc";

	CHECK_INT("from_anon(4096) for the queries", pmem2_source_from_anon(&src, 4096), 0);
	expected_allocations++;
	CHECK_INT("size(anon)", pmem2_source_size(src, &size), 0);
	CHECK_INT("size(anon) is the size given", size, 4096);
	CHECK_INT("alignment(anon)", pmem2_source_alignment(src, &alignment), 0);
	CHECK_INT("alignment(anon) is the page size", alignment, sysconf(_SC_PAGESIZE));

	CHECK_INT("pread_mcsafe(anon) is PMEM2_E_SOURCE_TYPE_NOT_SUPPORTED",
		pmem2_source_pread_mcsafe(src, buf, 1, 0), PMEM2_E_SOURCE_TYPE_NOT_SUPPORTED);
	CHECK_MESSAGE("pread_mcsafe(anon) message", no_io);
	CHECK("pread_mcsafe(anon) left the buffer alone", strcmp(buf, "abc") == 0);
	CHECK_INT("pwrite_mcsafe(anon) is PMEM2_E_SOURCE_TYPE_NOT_SUPPORTED",
		pmem2_source_pwrite_mcsafe(src, buf, 1, 0), PMEM2_E_SOURCE_TYPE_NOT_SUPPORTED);
	CHECK_MESSAGE("pwrite_mcsafe(anon) message", no_io);

	CHECK_INT("numa_node(anon) is PMEM2_E_NOSUPP", pmem2_source_numa_node(src, &node),
		PMEM2_E_NOSUPP);
	CHECK_MESSAGE("numa_node(anon) message", "Anonymous sources are not bound to numa nodes.");
	CHECK_INT("numa_node(anon) left *numa_node alone", node, 7);
	CHECK_INT("device_id(anon, NULL) is PMEM2_E_NOSUPP",
		pmem2_source_device_id(src, NULL, &len), PMEM2_E_NOSUPP);
	CHECK_MESSAGE("device_id(anon, NULL) message", "Anonymous source does not have device id");
	CHECK_INT("device_id(anon, NULL) left *len alone", len, 7);
	len = sizeof(buf);
	CHECK_INT("device_id(anon, buf) is PMEM2_E_NOSUPP",
		pmem2_source_device_id(src, buf, &len), PMEM2_E_NOSUPP);
	CHECK("device_id(anon, buf) left the buffer alone", strcmp(buf, "abc") == 0);
	CHECK_INT("device_usc(anon) is PMEM2_E_NOSUPP", pmem2_source_device_usc(src, &usc),
		PMEM2_E_NOSUPP);
	CHECK_MESSAGE("device_usc(anon) message",
		"Anonymous source does not support unsafe shutdown count");
	CHECK_INT("device_usc(anon) left *usc alone", usc, 7);

	CHECK_INT("delete(anon) after the queries", pmem2_source_delete(&src), 0);
}

/* A real Device DAX whose namespace is `want_size` bytes aligned to `want_alignment`. */
static void
device_dax_queries(const char *path, size_t want_size, size_t want_alignment)
{
	static char data[5000], back[5000];
	struct pmem2_source *src = BOGUS;
	size_t size = 7, alignment = 7, offset, i;
	char message[128];
	int node = -7;
	int fd = open(path, O_RDWR);

	CHECK("open the Device DAX", fd >= 0);
	CHECK_INT("from_fd(Device DAX)", pmem2_source_from_fd(&src, fd), 0);
	expected_allocations++;
	CHECK_INT("size(Device DAX)", pmem2_source_size(src, &size), 0);
	CHECK_INT("size(Device DAX) is the namespace's", size, want_size);
	CHECK_INT("alignment(Device DAX)", pmem2_source_alignment(src, &alignment), 0);
	CHECK_INT("alignment(Device DAX) is the namespace's", alignment, want_alignment);
	CHECK_INT("numa_node(Device DAX)", pmem2_source_numa_node(src, &node), 0);
	CHECK("numa_node(Device DAX) is a node or -1", node >= -1);

	/* Across the first alignment boundary after 8 MiB (alignments up to 2 MiB). */
	offset = ((size_t)8 << 20) + want_alignment - 1000;
	for (i = 0; i < sizeof(data); i++)
		data[i] = (char)(i % 251 + 3);
	CHECK_INT("pwrite_mcsafe(Device DAX) across an alignment boundary",
		pmem2_source_pwrite_mcsafe(src, data, sizeof(data), offset), 0);
	CHECK_INT("pread_mcsafe(Device DAX) of the same range",
		pmem2_source_pread_mcsafe(src, back, sizeof(back), offset), 0);
	CHECK("pread_mcsafe(Device DAX) reads what pwrite_mcsafe wrote",
		memcmp(back, data, sizeof(data)) == 0);
	CHECK_INT("pread_mcsafe(Device DAX) past the end is PMEM2_E_LENGTH_OUT_OF_RANGE",
		pmem2_source_pread_mcsafe(src, back, 64, want_size - 32),
		PMEM2_E_LENGTH_OUT_OF_RANGE);
	snprintf(message, sizeof(message),
		"size of read 64 from offset %zu goes beyond the file length 32", want_size - 32);
	CHECK_MESSAGE("pread_mcsafe(Device DAX) past the end message", message);

	CHECK_INT("delete(Device DAX source)", pmem2_source_delete(&src), 0);
	close(fd);
}

static void
allocation_balance(void)
{
	CHECK_INT("allocations through the registered malloc", allocations, expected_allocations);
	CHECK_INT("frees through the registered free", frees, allocations);
	CHECK_INT("sources still live", live_count(), 0);
	CHECK_INT("frees of pointers the registered malloc did not return", unknown_frees, 0);
	CHECK_INT("calls to the pair registered too late", other_calls, 0);
}

int
main(int argc, char *argv[])
{
	char file[4096];
	int fd;

	if (argc != 2 && argc != 5) {
		fprintf(stderr,
			"usage: %s <scratch directory> [<Device DAX> <size> <alignment>]\n",
			argv[0]);
		return 2;
	}
	/* First, before anything could allocate a source. */
	allocator_registration();

	snprintf(file, sizeof(file), "%s/file", argv[1]);
	fd = open(file, O_CREAT | O_TRUNC | O_RDWR, 0600);
	CHECK("create the scratch file", fd >= 0 && write(fd, "pmem2", 5) == 5);
	close(fd);

	file_descriptors(argv[1], file);
	anonymous();
	deletes();
	null_arguments(file);
	success_keeps_the_message(file);
	out_of_memory(file);
	file_queries(file);
	anonymous_queries();
	if (argc == 5)
		device_dax_queries(argv[2], strtoull(argv[3], NULL, 10),
			strtoull(argv[4], NULL, 10));
	allocation_balance();

	unlink(file);
	printf("%d checks, %d failed\n", checks, failures);
	return failures == 0 ? 0 : 1;
}
