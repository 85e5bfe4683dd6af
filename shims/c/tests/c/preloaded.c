/*
 * A program linked with Debian's libpmem2 (-lpmem2), run with our library LD_PRELOADed over
 * it: the source functions, pmem2_errormsg and pmem2_perror are ours, the mapping and
 * configuration functions libpmem2's. pmem2_errormsg must give the message of whichever
 * library failed last on the calling thread.
 *
 * Usage: preloaded <scratch directory>
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <libpmem2.h>

#include "checks.h"

#define NO_GRANULARITY "unknown granularity value 77"
#define EMPTY_FILE "file length is equal 0"
#define OFFSET_TOO_LARGE "offset is greater than INT64_MAX"
#define OURS_NEGATIVE_FD "invalid file descriptor value -1 ("

/* libpmem2 fails in pmem2_config_set_required_store_granularity. */
static int
libpmem2_fails_with_granularity(struct pmem2_config *cfg)
{
	return pmem2_config_set_required_store_granularity(cfg, (enum pmem2_granularity)77);
}

/* libpmem2 fails in pmem2_config_set_offset. */
static int
libpmem2_fails_with_offset(struct pmem2_config *cfg)
{
	return pmem2_config_set_offset(cfg, (size_t)-1);
}

/* Ours fails in pmem2_source_from_fd. */
static int
ours_fails(void)
{
	struct pmem2_source *src = BOGUS;

	return pmem2_source_from_fd(&src, -1);
}

/* A thread of its own: its messages are its own, whichever library set them. */
static void *
other_thread(void *cfg)
{
	CHECK_INT("other thread: libpmem2 fails", libpmem2_fails_with_offset(cfg),
		PMEM2_E_OFFSET_OUT_OF_RANGE);
	CHECK_MESSAGE("other thread: libpmem2's message", OFFSET_TOO_LARGE);
	return NULL;
}

int
main(int argc, char *argv[])
{
	struct pmem2_config *cfg = NULL;
	struct pmem2_source *src = NULL;
	struct pmem2_map *map = NULL;
	const char *held;
	char file[4096];
	pthread_t thread;
	Dl_info info;
	int fd;

	if (argc != 2) {
		fprintf(stderr, "usage: %s <scratch directory>\n", argv[0]);
		return 2;
	}
	CHECK("pmem2_source_from_fd is ours",
		dladdr((void *)pmem2_source_from_fd, &info) != 0 && info.dli_fname != NULL &&
		strstr(info.dli_fname, "libpmem2_source") != NULL);
	CHECK("pmem2_map_new is libpmem2's",
		dladdr((void *)pmem2_map_new, &info) != 0 && info.dli_fname != NULL &&
		strstr(info.dli_fname, "libpmem2.so") != NULL);
	CHECK_INT("config_new", pmem2_config_new(&cfg), 0);
	if (cfg == NULL)
		return 1;

	CHECK_INT("libpmem2 fails first", libpmem2_fails_with_granularity(cfg),
		PMEM2_E_GRANULARITY_NOT_SUPPORTED);
	CHECK_MESSAGE("libpmem2's message, ours never failed", NO_GRANULARITY);

	CHECK_INT("ours fails", ours_fails(), PMEM2_E_INVALID_FILE_HANDLE);
	CHECK_MESSAGE_PREFIX("ours is the last failure", OURS_NEGATIVE_FD);
	held = pmem2_errormsg();

	CHECK_INT("libpmem2 fails again", libpmem2_fails_with_offset(cfg),
		PMEM2_E_OFFSET_OUT_OF_RANGE);
	CHECK_MESSAGE("libpmem2's is the last failure", OFFSET_TOO_LARGE);
	fprintf(stderr, "preloaded");
	pmem2_perror(" perror %d", 1);

	CHECK_INT("ours fails again", ours_fails(), PMEM2_E_INVALID_FILE_HANDLE);
	CHECK_MESSAGE_PREFIX("ours again", OURS_NEGATIVE_FD);
	CHECK("the same pointer as ours before", pmem2_errormsg() == held);
	pmem2_perror("preloaded perror %d", 2);

	CHECK_INT("libpmem2 fails with its earlier message", libpmem2_fails_with_granularity(cfg),
		PMEM2_E_GRANULARITY_NOT_SUPPORTED);
	CHECK_MESSAGE("libpmem2's message again", NO_GRANULARITY);

	if (pthread_create(&thread, NULL, other_thread, cfg) != 0 ||
			pthread_join(thread, NULL) != 0) {
		CHECK("thread", 0);
	}
	CHECK_MESSAGE("this thread's message is unchanged", NO_GRANULARITY);

	/* Our source, libpmem2's mapping: libpmem2 fails on the empty file. */
	snprintf(file, sizeof(file), "%s/empty", argv[1]);
	fd = open(file, O_CREAT | O_TRUNC | O_RDWR, 0600);
	CHECK("open", fd >= 0);
	CHECK_INT("ours fails before", ours_fails(), PMEM2_E_INVALID_FILE_HANDLE);
	CHECK_INT("from_fd (ours)", pmem2_source_from_fd(&src, fd), 0);
	CHECK_INT("config_set_required_store_granularity",
		pmem2_config_set_required_store_granularity(cfg, PMEM2_GRANULARITY_PAGE), 0);
	CHECK_INT("map_new (libpmem2) of an empty file", pmem2_map_new(&map, cfg, src),
		PMEM2_E_SOURCE_EMPTY);
	CHECK_MESSAGE("map_new's message", EMPTY_FILE);
	pmem2_perror("pmem2_map_new");

	pmem2_source_delete(&src);
	pmem2_config_delete(&cfg);
	close(fd);
	printf("%d checks, %d failed\n", checks, failures);
	return failures != 0;
}
