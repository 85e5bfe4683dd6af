/*
 * A thread that read its message exits after the program dlclose'd the library: the
 * library's thread-exit cleanup (a pthread key destructor that frees the thread's message
 * text) must still be there to run, so the library stays loaded.
 *
 * Usage: dlclose_exit <path of libpmem2_source.so>
 * Prints "ok - ..." or "FAIL (line N) - ..." per check and "<N> checks, <M> failed" last;
 * exits 1 if any check failed (and dies of SIGSEGV if the cleanup was unmapped).
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <pmem2_source.h>

#include "checks.h"

static int (*from_fd)(struct pmem2_source **, int);
static const char *(*errormsg)(void);
static pthread_barrier_t read_message, closed;

static void *
reader(void *unused)
{
	struct pmem2_source *src = BOGUS;
	const char *expected = "invalid file descriptor value -1 (descriptors are never negative)";
	int ret = from_fd(&src, -1);
	const char *message = errormsg();

	(void)unused;
	CHECK_INT("from_fd(-1)", ret, PMEM2_E_INVALID_FILE_HANDLE);
	CHECK("message", message != NULL && strcmp(message, expected) == 0);
	pthread_barrier_wait(&read_message);
	pthread_barrier_wait(&closed);
	return NULL; /* exits after dlclose */
}

int
main(int argc, char **argv)
{
	pthread_t thread;
	void *library;

	if (argc != 2) {
		fprintf(stderr, "usage: dlclose_exit <library>\n");
		return 2;
	}
	library = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	CHECK("dlopen", library != NULL);
	if (library == NULL)
		return 1;
	*(void **)&from_fd = dlsym(library, "pmem2_source_from_fd");
	*(void **)&errormsg = dlsym(library, "pmem2_errormsg");
	CHECK("dlsym", from_fd != NULL && errormsg != NULL);
	pthread_barrier_init(&read_message, NULL, 2);
	pthread_barrier_init(&closed, NULL, 2);
	CHECK_INT("pthread_create", pthread_create(&thread, NULL, reader, NULL), 0);
	pthread_barrier_wait(&read_message);
	CHECK_INT("dlclose", dlclose(library), 0);
	pthread_barrier_wait(&closed);
	CHECK_INT("pthread_join", pthread_join(thread, NULL), 0);
	printf("ok - the thread exited after dlclose\n");
	printf("%d checks, %d failed\n", checks, failures);
	return failures ? 1 : 0;
}
