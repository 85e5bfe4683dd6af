/*
 * Out of memory at every point, through the C ABI: a malloc registered once with
 * pmem2_source_set_funcs fails exactly its n-th call (or, "for good", every call from the
 * n-th on), the failure point being a global reset between runs. For every n, a sequence of
 * creations (pmem2_source_from_fd and pmem2_source_from_anon, with creations that fail
 * before allocating in between) must give:
 *
 * - -ENOMEM from the creation whose allocation failed, *src NULL (it started non-NULL) and
 *   the message "cannot allocate a pmem2_source: out of memory";
 * - every other creation unaffected (0 and a working source, or its own error);
 * - one malloc call per successful or memory-failed creation, none for the others, and none
 *   from the queries (get_fd, size, alignment) or delete;
 * - after deleting everything: every malloc'ed pointer freed exactly once through the
 *   registered free, and glibc's heap back to where it was (nothing leaked through any
 *   other path either).
 *
 * Usage: oom <scratch directory>
 * Prints "ok - ..." or "FAIL (line N) - ..." per check and "<N> checks, <M> failed" last;
 * exits 1 if any check failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pmem2_source.h>

#include "checks.h"
#include "counting_alloc.h"

/* --- the failing-nth allocator ------------------------------------------------------------ */

static long fail_at;	  /* 1-based number of the call that fails; 0: none */
static int fail_for_good; /* and every later call too */

static int
allocation_fails(void)
{
	return fail_at != 0 && (attempts == fail_at || (fail_for_good && attempts > fail_at));
}

static void
reset_allocator(long n, int for_good)
{
	fail_at = n;
	fail_for_good = for_good;
	attempts = allocations = frees = failed_allocations = unknown_frees = 0;
}

/* --- the sequence ---------------------------------------------------------------------------- */

enum kind { ANON, FILE_RDWR, FILE_RDONLY, CLOSED_FD, DIRECTORY, DEV_NULL };

struct step {
	enum kind kind;
	size_t anon_size;
	int own_error; /* for the steps that fail before allocating */
};

static const struct step steps[] = {
	{ ANON, 4096, 0 },
	{ FILE_RDWR, 0, 0 },
	{ CLOSED_FD, 0, PMEM2_E_INVALID_FILE_HANDLE },
	{ FILE_RDONLY, 0, 0 },
	{ DIRECTORY, 0, PMEM2_E_INVALID_FILE_TYPE },
	{ ANON, 0, 0 },
	{ DEV_NULL, 0, PMEM2_E_INVALID_FILE_TYPE },
	{ ANON, (size_t)-1, 0 },
	{ FILE_RDWR, 0, 0 },
};
#define STEPS (sizeof(steps) / sizeof(steps[0]))

static const char *const names[] = { "from_anon", "from_fd(O_RDWR file)",
	"from_fd(O_RDONLY file)", "from_fd(closed fd)", "from_fd(directory)",
	"from_fd(/dev/null)" };

/* Descriptors for the fd steps, opened once. */
static int fds[DEV_NULL + 1];

static long
allocating_steps(void)
{
	long k = 0;
	size_t i;

	for (i = 0; i < STEPS; i++)
		k += steps[i].own_error == 0;
	return k;
}

static int
create(const struct step *step, struct pmem2_source **src)
{
	if (step->kind == ANON)
		return pmem2_source_from_anon(src, step->anon_size);
	return pmem2_source_from_fd(src, fds[step->kind]);
}

/* A created source answers the queries; none of them allocates. */
static void
query(const struct step *step, struct pmem2_source *src, const char *what)
{
	long before = attempts;
	size_t size = 0, alignment = 0;
	int fd = -7;
	char check[256];

	snprintf(check, sizeof(check), "%s: size", what);
	CHECK_INT(check, pmem2_source_size(src, &size), 0);
	snprintf(check, sizeof(check), "%s: alignment", what);
	CHECK_INT(check, pmem2_source_alignment(src, &alignment), 0);
	CHECK(check, alignment > 0 && (alignment & (alignment - 1)) == 0);
	snprintf(check, sizeof(check), "%s: get_fd", what);
	if (step->kind == ANON) {
		CHECK_INT(check, size, step->anon_size);
		CHECK_INT(check, pmem2_source_get_fd(src, &fd),
			PMEM2_E_FILE_DESCRIPTOR_NOT_SET);
	} else {
		CHECK_INT(check, size, 5);
		CHECK_INT(check, pmem2_source_get_fd(src, &fd), 0);
		CHECK_INT(check, fd, fds[step->kind]);
	}
	snprintf(check, sizeof(check), "%s: the queries allocate nothing", what);
	CHECK_INT(check, attempts, before);
}

/* One run of the whole sequence with allocation `n` failing (and, `for_good`, every later
 * one); with `compare_heap`, glibc's heap must end where it started. */
static void
run(long n, int for_good, int compare_heap)
{
	struct pmem2_source *kept[STEPS];
	struct mallinfo2 heap_before, heap_after;
	long allocating = 0, expected_allocations = 0;
	size_t i, nkept = 0;
	char what[256];

	heap_before = mallinfo2();
	reset_allocator(n, for_good);
	for (i = 0; i < STEPS; i++) {
		const struct step *step = &steps[i];
		struct pmem2_source *src = BOGUS;
		long attempts_before = attempts, frees_before = frees;
		int fails, ret;

		snprintf(what, sizeof(what), "malloc %ld fails%s, step %zu %s", n,
			for_good ? " for good" : "", i, names[step->kind]);
		ret = create(step, &src);
		if (step->own_error != 0) {
			CHECK_INT(what, ret, step->own_error);
			CHECK(what, src == NULL);
			CHECK_INT(what, attempts, attempts_before); /* no allocation */
			continue;
		}
		allocating++;
		fails = allocating == n || (for_good && allocating > n);
		CHECK_INT(what, attempts, attempts_before + 1); /* exactly one malloc */
		CHECK_INT(what, frees, frees_before);		 /* and no free */
		if (fails) {
			CHECK_INT(what, ret, -ENOMEM);
			CHECK(what, src == NULL);
			CHECK_MESSAGE(what, "cannot allocate a pmem2_source: out of memory");
		} else {
			CHECK_INT(what, ret, 0);
			CHECK(what, src != NULL && src != BOGUS);
			if (ret == 0 && src != NULL && src != BOGUS) {
				expected_allocations++;
				query(step, src, what);
				kept[nkept++] = src;
			}
		}
	}
	snprintf(what, sizeof(what), "malloc %ld fails%s", n, for_good ? " for good" : "");
	CHECK_INT(what, allocations, expected_allocations);
	CHECK_INT(what, live_count(), (long)nkept);
	for (i = 0; i < nkept; i++) {
		CHECK_INT(what, pmem2_source_delete(&kept[i]), 0);
		CHECK(what, kept[i] == NULL);
	}
	CHECK_INT(what, frees, allocations); /* allocations == frees */
	CHECK_INT(what, live_count(), 0);
	CHECK_INT(what, unknown_frees, 0);
	heap_after = mallinfo2();
	if (compare_heap) /* nothing leaked, through any path */
		CHECK_INT(what, heap_after.uordblks, heap_before.uordblks);
}

int
main(int argc, char *argv[])
{
	char file[4096];
	long k = allocating_steps(), n;
	int fd;

	if (argc != 2) {
		fprintf(stderr, "usage: %s <scratch directory>\n", argv[0]);
		return 2;
	}
	CHECK_INT("set_funcs(counting pair, failing the n-th call)",
		pmem2_source_set_funcs(counting_malloc, counting_free), 0);

	snprintf(file, sizeof(file), "%s/file", argv[1]);
	fd = open(file, O_CREAT | O_TRUNC | O_RDWR, 0600);
	CHECK("create the scratch file", fd >= 0 && write(fd, "pmem2", 5) == 5);
	close(fd);
	fds[FILE_RDWR] = open(file, O_RDWR);
	fds[FILE_RDONLY] = open(file, O_RDONLY);
	fds[DIRECTORY] = open(argv[1], O_RDONLY | O_DIRECTORY);
	fds[DEV_NULL] = open("/dev/null", O_RDWR);
	fds[CLOSED_FD] = open(file, O_RDONLY);
	CHECK("open the descriptors", fds[FILE_RDWR] >= 0 && fds[FILE_RDONLY] >= 0 &&
		fds[DIRECTORY] >= 0 && fds[DEV_NULL] >= 0 && fds[CLOSED_FD] >= 0);
	close(fds[CLOSED_FD]);

	/* Warm up: a full run with no failure first, and this thread's first pmem2_errormsg(),
	 * so that whatever the process sets up once (stdio buffers, thread-local storage, the
	 * thread's message buffer, kept until the thread exits) is in place before the heap is
	 * compared. */
	run(0, 0, 0);
	CHECK("pmem2_errormsg() answers", pmem2_errormsg() != NULL);
	for (n = 1; n <= k + 1; n++)
		run(n, 0, 1);
	for (n = 1; n <= k; n++)
		run(n, 1, 1);
	CHECK_INT("malloc calls in the last run (failing for good from the first)", attempts, k);

	close(fds[FILE_RDWR]);
	close(fds[FILE_RDONLY]);
	close(fds[DIRECTORY]);
	close(fds[DEV_NULL]);
	unlink(file);
	printf("%d checks, %d failed\n", checks, failures);
	return failures == 0 ? 0 : 1;
}
