/*
 * The counting allocator the C test programs register with pmem2_source_set_funcs: every
 * pointer it hands out is recorded until freed, so a free of anything else (a double free, a
 * foreign pointer) is counted in unknown_frees, and leaked rather than freed; an allocation
 * fails, without reaching malloc, whenever the program's allocation_fails() says so (called
 * after `attempts` counts the call).
 */
#ifndef PMEM2_SOURCE_TEST_COUNTING_ALLOC_H
#define PMEM2_SOURCE_TEST_COUNTING_ALLOC_H

#include <stdio.h>
#include <stdlib.h>

#define MAX_LIVE 32
static void *live[MAX_LIVE];
static long attempts, allocations, frees, failed_allocations, unknown_frees;

static int allocation_fails(void);

static void *
counting_malloc(size_t size)
{
	void *ptr;
	int i;

	attempts++;
	if (allocation_fails()) {
		failed_allocations++;
		return NULL;
	}
	ptr = malloc(size);
	if (ptr == NULL)
		return NULL;
	allocations++;
	for (i = 0; i < MAX_LIVE; i++) {
		if (live[i] == NULL) {
			live[i] = ptr;
			return ptr;
		}
	}
	fprintf(stderr, "more than %d live sources\n", MAX_LIVE);
	abort();
}

static void
counting_free(void *ptr)
{
	int i;

	frees++;
	for (i = 0; i < MAX_LIVE; i++) {
		if (live[i] != NULL && live[i] == ptr) {
			live[i] = NULL;
			free(ptr);
			return;
		}
	}
	unknown_frees++; /* not from counting_malloc: leak it rather than crash */
}

static int
live_count(void)
{
	int i, n = 0;

	for (i = 0; i < MAX_LIVE; i++)
		n += live[i] != NULL;
	return n;
}

#endif
