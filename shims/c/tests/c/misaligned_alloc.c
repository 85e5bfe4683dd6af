/*
 * A malloc function registered with pmem2_source_set_funcs that returns memory not aligned
 * for a source (one byte past malloc's): the creation fails with -ENOMEM, *src NULL, and a
 * message that names the address returned and the alignment needed; the block goes back to
 * the registered free function, exactly once. When the same function returns aligned memory,
 * creation works and pmem2_source_delete frees through it.
 *
 * Usage: misaligned_alloc <scratch directory>
 * Prints "ok - ..." or "FAIL (line N) - ..." per check and "<N> checks, <M> failed" last;
 * exits 1 if any check failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pmem2_source.h>

#include "checks.h"

/* --- the allocator: misaligned while `misalign` is set ---------------------------------- */

#define MAX_BLOCKS 8
static struct {
	char *handed; /* what test_malloc returned */
	char *base;   /* what malloc returned */
} blocks[MAX_BLOCKS];
static int misalign;
static long allocations, frees, unknown_frees;

static void *
test_malloc(size_t size)
{
	char *base = malloc(size + 16);
	int i;

	if (base == NULL)
		return NULL;
	for (i = 0; i < MAX_BLOCKS; i++) {
		if (blocks[i].handed == NULL) {
			blocks[i].base = base;
			blocks[i].handed = base + (misalign ? 1 : 0);
			allocations++;
			return blocks[i].handed;
		}
	}
	free(base);
	return NULL;
}

static void
test_free(void *ptr)
{
	int i;

	for (i = 0; i < MAX_BLOCKS; i++) {
		if (blocks[i].handed != NULL && blocks[i].handed == ptr) {
			free(blocks[i].base);
			blocks[i].handed = NULL;
			frees++;
			return;
		}
	}
	unknown_frees++;
}

/* The last pointer test_malloc handed out. */
static void *last_handed;

static void *
recording_malloc(size_t size)
{
	last_handed = test_malloc(size);
	return last_handed;
}

/* The message must name `address` and the alignment a source needs. */
static void
check_misaligned_message(int line, const char *what, void *address)
{
	const char *got = pmem2_errormsg();
	char start[256];
	const char *end = "bytes, which is not aligned to 8 bytes as a pmem2_source must be (the "
			  "block was passed back to the free function)";
	int ok;

	snprintf(start, sizeof(start),
		 "cannot allocate a pmem2_source: the malloc function set with "
		 "pmem2_source_set_funcs returned %p for ",
		 address);
	ok = got != NULL && strncmp(got, start, strlen(start)) == 0 &&
	     strlen(got) > strlen(end) && strcmp(got + strlen(got) - strlen(end), end) == 0;
	report(line, ok, what, got ? got : "(NULL)");
}

int
main(int argc, char **argv)
{
	struct pmem2_source *src = BOGUS;
	char path[4096];
	long freed_before;
	int fd, ret;

	if (argc != 2) {
		fprintf(stderr, "usage: misaligned_alloc <scratch directory>\n");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/file", argv[1]);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK("open", fd >= 0);

	CHECK_INT("set_funcs", pmem2_source_set_funcs(recording_malloc, test_free), 0);

	misalign = 1;
	freed_before = frees;
	ret = pmem2_source_from_anon(&src, 4096);
	CHECK_INT("from_anon, misaligned malloc", ret, -ENOMEM);
	CHECK("from_anon, misaligned malloc: *src NULL", src == NULL);
	check_misaligned_message(__LINE__, "from_anon, misaligned malloc: message", last_handed);
	CHECK_INT("from_anon, misaligned malloc: the block freed", frees - freed_before, 1);

	src = BOGUS;
	freed_before = frees;
	ret = pmem2_source_from_fd(&src, fd);
	CHECK_INT("from_fd, misaligned malloc", ret, -ENOMEM);
	CHECK("from_fd, misaligned malloc: *src NULL", src == NULL);
	check_misaligned_message(__LINE__, "from_fd, misaligned malloc: message", last_handed);
	CHECK_INT("from_fd, misaligned malloc: the block freed", frees - freed_before, 1);

	misalign = 0;
	src = BOGUS;
	ret = pmem2_source_from_fd(&src, fd);
	CHECK_INT("from_fd, aligned malloc", ret, 0);
	CHECK("from_fd, aligned malloc: the block is the source", (void *)src == last_handed);
	CHECK_INT("delete", pmem2_source_delete(&src), 0);

	CHECK_INT("allocations", allocations, 3);
	CHECK_INT("frees", frees, 3);
	CHECK_INT("frees of pointers never handed out", unknown_frees, 0);
	close(fd);
	printf("%d checks, %d failed\n", checks, failures);
	return failures ? 1 : 0;
}
