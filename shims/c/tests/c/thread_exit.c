/*
 * pmem2_errormsg() while threads exit: calls from pthread key destructors, which run after
 * the thread's C++-style thread_local destructors (glibc: __call_tls_dtors, then the key
 * destructors, up to PTHREAD_DESTRUCTOR_ITERATIONS rounds in key order).
 *
 * - 25 threads whose first call into the library is from a key destructor: a failing
 *   pmem2_source_from_fd(-1), then pmem2_errormsg().
 * - 25 threads that use the library (a failure and its message), then fail again from a
 *   destructor of a key created before the library's own (it runs first in a round).
 * - 25 threads as above with a key created after the library was first used (its
 *   destructor runs after the library's in a round).
 *
 * In every case the message must be that failure's own, never "". Then the later rounds
 * (a destructor that sets its key again runs again in the next round): the library keeps a
 * thread's message text through the first round its own destructor runs in and frees it in
 * the next, so
 *
 * - a failure in the second round, from the older key's destructor (before the library's
 *   in that round), still has its message;
 * - a failure in the second round from the newer key's destructor, or in the third from the
 *   older key's, gets the fixed message saying the text was freed, never "".
 *
 * Run under valgrind by tests/thread_exit.rs, which also requires that no memory is lost.
 *
 * Usage: thread_exit
 * Prints "ok - ..." or "FAIL (line N) - ..." per check and "<N> checks, <M> failed" last;
 * exits 1 if any check failed.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <pmem2_source.h>

#include "checks.h"

#define THREADS 25

/* The checks come from many threads. */
static pthread_mutex_t report_lock = PTHREAD_MUTEX_INITIALIZER;

/* What pmem2_errormsg() says once the thread's exit has freed its message text. */
#define TEXT_FREED                                                                          \
	"pmem2_errormsg: this thread is exiting and its message text was freed (the failure's " \
	"code was returned)"

/* A failing from_fd(fd) and its message, checked (under report_lock): the failure's own, or
 * `fixed` if not NULL. */
static void
fail_and_check(const char *what, int fd, const char *fixed)
{
	struct pmem2_source *src = BOGUS;
	char expected[128];
	int ret = pmem2_source_from_fd(&src, fd);

	snprintf(expected, sizeof(expected),
		 "invalid file descriptor value %d (descriptors are never negative)", fd);
	pthread_mutex_lock(&report_lock);
	CHECK_INT(what, ret, PMEM2_E_INVALID_FILE_HANDLE);
	CHECK(what, src == NULL);
	CHECK_MESSAGE(what, fixed ? fixed : expected);
	pthread_mutex_unlock(&report_lock);
}

/* The key whose destructor makes the thread's first call, and the ones that fail again: one
 * created before the library's own key, one after. Their destructors fail in round
 * `fail_round` (1 to 3, the same for all threads of a run); a key's value is the round its
 * destructor runs in, and before `fail_round` it sets the key again for the next. */
static pthread_key_t first_call_key, older_key, newer_key;
static uintptr_t fail_round;

static void
first_call_in_destructor(void *value)
{
	(void)value;
	fail_and_check("first call, from a key destructor", -1, NULL);
}

/* Sets `key` again for the next round if round `value` is before `fail_round`; 1 if it did. */
static int
again(pthread_key_t key, void *value)
{
	uintptr_t round = (uintptr_t)value;

	if (round >= fail_round)
		return 0;
	pthread_setspecific(key, (void *)(round + 1));
	return 1;
}

static void
failure_in_older_key_destructor(void *value)
{
	static const char *const what[] = {
		"",
		"failure in a destructor of a key older than the library's",
		"failure in the second round, older key",
		"failure in the third round, older key",
	};
	if (again(older_key, value))
		return;
	fail_and_check(what[fail_round], -3, fail_round >= 3 ? TEXT_FREED : NULL);
}

static void
failure_in_newer_key_destructor(void *value)
{
	static const char *const what[] = {
		"",
		"failure in a destructor of a key newer than the library's",
		"failure in the second round, newer key",
	};
	if (again(newer_key, value))
		return;
	fail_and_check(what[fail_round], -4, fail_round >= 2 ? TEXT_FREED : NULL);
}

static void *
set_key_only(void *key)
{
	pthread_setspecific(*(pthread_key_t *)key, (void *)1);
	return NULL;
}

static void *
use_then_set_key(void *key)
{
	fail_and_check("failure before the thread exits", -2, NULL);
	pthread_setspecific(*(pthread_key_t *)key, (void *)1);
	return NULL;
}

/* THREADS threads running `body` with `key`, whose destructors fail in round `round`. */
static void
run_threads(void *(*body)(void *), pthread_key_t *key, uintptr_t round)
{
	pthread_t threads[THREADS];
	int i;

	fail_round = round;
	for (i = 0; i < THREADS; i++)
		CHECK_INT("pthread_create", pthread_create(&threads[i], NULL, body, key), 0);
	for (i = 0; i < THREADS; i++)
		pthread_join(threads[i], NULL);
}

int
main(void)
{
	/* Before any call into the library: these keys are older than any it creates. */
	CHECK_INT("key", pthread_key_create(&first_call_key, first_call_in_destructor), 0);
	CHECK_INT("key", pthread_key_create(&older_key, failure_in_older_key_destructor), 0);

	run_threads(set_key_only, &first_call_key, 1);
	run_threads(use_then_set_key, &older_key, 1);

	/* The library has been used (and asked for messages): this key is newer. */
	fail_and_check("main thread", -5, NULL);
	CHECK_INT("key", pthread_key_create(&newer_key, failure_in_newer_key_destructor), 0);
	run_threads(use_then_set_key, &newer_key, 1);

	/* Later rounds. */
	run_threads(use_then_set_key, &older_key, 2);
	run_threads(use_then_set_key, &older_key, 3);
	run_threads(use_then_set_key, &newer_key, 2);

	printf("%d checks, %d failed\n", checks, failures);
	return failures ? 1 : 0;
}
