/*
 * How the C library's thread-locals are reached once it is dlopen'ed, and that per-thread
 * messages are right either way (shims/c/tests/tls_model.rs runs this with glibc's static TLS
 * reserve at its default and at zero).
 *
 * Usage: tls_model LIBRARY DESCRIPTOR_OFFSET
 *   DESCRIPTOR_OFFSET: the hex offset of the library's TLS descriptor (its R_X86_64_TLSDESC
 *   relocation), or "none".
 *
 * Prints "tls: static" when glibc resolved the descriptor to a fixed offset from the thread
 * pointer (static TLS), "tls: dynamic" when to a lookup, "tls: unknown" where it cannot tell
 * (no descriptor given, or not x86_64). On x86_64 a descriptor is two words, the resolver
 * function and its argument: glibc's static resolver takes the block's offset from the
 * thread pointer, which is negative (the block lies below it), and the dynamic one a pointer
 * to a heap record, which is not.
 *
 * Then THREADS threads each fail pmem2_source_from_fd with a descriptor of their own, ask for
 * the message, fail again and read the same pointer: every message must be the thread's own.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pmem2_source.h"
#include "checks.h"

enum { THREADS = 4 };

static int (*from_fd)(struct pmem2_source **, int);
static const char *(*errormsg)(void);

struct outcome {
	int fd;
	int first_code;
	int src_left_null;
	char first[160];
	char later[160];
	int same_pointer;
};

static void *
fail_twice(void *arg)
{
	struct outcome *out = arg;
	struct pmem2_source *src = BOGUS;
	out->first_code = from_fd(&src, out->fd);
	out->src_left_null = src == NULL;
	const char *held = errormsg();
	snprintf(out->first, sizeof(out->first), "%s", held);
	from_fd(&src, out->fd - 100);
	snprintf(out->later, sizeof(out->later), "%s", held);
	out->same_pointer = errormsg() == held;
	return NULL;
}

static const char *
descriptor_kind(void *library, const char *offset_arg)
{
#if defined(__x86_64__)
	if (strcmp(offset_arg, "none") == 0)
		return "unknown";
	struct link_map *map;
	if (dlinfo(library, RTLD_DI_LINKMAP, &map) != 0)
		return "unknown";
	const intptr_t *descriptor =
		(const intptr_t *)(map->l_addr + strtoull(offset_arg, NULL, 16));
	return descriptor[1] < 0 ? "static" : "dynamic";
#else
	(void)library;
	(void)offset_arg;
	return "unknown";
#endif
}

int
main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: tls_model LIBRARY DESCRIPTOR_OFFSET\n");
		return 2;
	}
	void *library = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (library == NULL) {
		printf("FAIL - dlopen: %s\n", dlerror());
		return 1;
	}
	from_fd = (int (*)(struct pmem2_source **, int))dlsym(library, "pmem2_source_from_fd");
	errormsg = (const char *(*)(void))dlsym(library, "pmem2_errormsg");
	if (from_fd == NULL || errormsg == NULL) {
		printf("FAIL - dlsym: %s\n", dlerror());
		return 1;
	}
	printf("tls: %s\n", descriptor_kind(library, argv[2]));

	pthread_t threads[THREADS];
	struct outcome outcomes[THREADS];
	memset(outcomes, 0, sizeof(outcomes));
	for (int i = 0; i < THREADS; i++) {
		outcomes[i].fd = -(i + 1);
		CHECK_INT("pthread_create",
			  pthread_create(&threads[i], NULL, fail_twice, &outcomes[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		CHECK_INT("pthread_join", pthread_join(threads[i], NULL), 0);

	for (int i = 0; i < THREADS; i++) {
		char what[64], expected[160];
		int fd = outcomes[i].fd;
		snprintf(what, sizeof(what), "thread %d: from_fd(%d)", i, fd);
		CHECK_INT(what, outcomes[i].first_code, PMEM2_E_INVALID_FILE_HANDLE);
		CHECK(what, outcomes[i].src_left_null);
		snprintf(expected, sizeof(expected),
			 "invalid file descriptor value %d (descriptors are never negative)", fd);
		snprintf(what, sizeof(what), "thread %d: first message", i);
		report(__LINE__, strcmp(outcomes[i].first, expected) == 0, what,
		       outcomes[i].first);
		snprintf(expected, sizeof(expected),
			 "invalid file descriptor value %d (descriptors are never negative)",
			 fd - 100);
		snprintf(what, sizeof(what), "thread %d: later message, held pointer", i);
		report(__LINE__, strcmp(outcomes[i].later, expected) == 0, what,
		       outcomes[i].later);
		snprintf(what, sizeof(what), "thread %d: one buffer", i);
		CHECK(what, outcomes[i].same_pointer);
	}
	CHECK("main thread: no message of its own", errormsg()[0] == '\0');

	dlclose(library);
	printf("%d checks, %d failed\n", checks, failures);
	return failures == 0 ? 0 : 1;
}
