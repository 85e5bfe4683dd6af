/*
 * What the C test programs share: one line per check ("ok - ..." or "FAIL (line N) - ..."),
 * counted for the summary line "<checks> checks, <failures> failed" the Rust tests read, and a
 * non-NULL out-parameter value no correct call dereferences.
 *
 * Include after the header that declares pmem2_errormsg (ours or libpmem2's).
 */
#ifndef PMEM2_SOURCE_TEST_CHECKS_H
#define PMEM2_SOURCE_TEST_CHECKS_H

#include <stdio.h>
#include <string.h>

static int checks;
static int failures;

static inline void
report(int line, int ok, const char *what, const char *detail)
{
	checks++;
	if (ok) {
		printf("ok - %s%s%s\n", what, detail[0] ? ": " : "", detail);
	} else {
		failures++;
		printf("FAIL (line %d) - %s: %s\n", line, what, detail);
	}
}

static inline void
check_int(int line, const char *what, long long got, long long expected)
{
	char detail[128];

	if (got == expected)
		snprintf(detail, sizeof(detail), "%lld", got);
	else
		snprintf(detail, sizeof(detail), "got %lld, expected %lld", got, expected);
	report(line, got == expected, what, detail);
}

static inline void
check_true(int line, const char *what, int condition)
{
	report(line, condition, what, condition ? "" : "false");
}

/* The calling thread's message must be exactly `expected` (so not empty). */
static inline void
check_message(int line, const char *what, const char *expected)
{
	const char *got = pmem2_errormsg();
	char detail[512];
	int ok = got != NULL && got[0] != '\0' && strcmp(got, expected) == 0;

	snprintf(detail, sizeof(detail), "%s\"%s\"%s%s%s", ok ? "" : "got ",
		got ? got : "(NULL)", ok ? "" : ", expected \"", ok ? "" : expected,
		ok ? "" : "\"");
	report(line, ok, what, detail);
}

/* The message must start with `prefix` and say more. */
static inline void
check_message_prefix(int line, const char *what, const char *prefix)
{
	const char *got = pmem2_errormsg();
	char detail[512];
	int ok = got != NULL && strncmp(got, prefix, strlen(prefix)) == 0 &&
		strlen(got) > strlen(prefix);

	snprintf(detail, sizeof(detail), "\"%s\"%s%s%s", got ? got : "(NULL)",
		ok ? "" : " does not extend \"", ok ? "" : prefix, ok ? "" : "\"");
	report(line, ok, what, detail);
}

#define CHECK_INT(what, got, expected) \
	check_int(__LINE__, (what), (long long)(got), (long long)(expected))
#define CHECK(what, condition) check_true(__LINE__, (what), (condition))
#define CHECK_MESSAGE(what, expected) check_message(__LINE__, (what), (expected))
#define CHECK_MESSAGE_PREFIX(what, prefix) check_message_prefix(__LINE__, (what), (prefix))

/* A non-NULL pointer no correct call dereferences: out-parameters start as this, to show
 * that failures reset them to NULL. */
static char bogus_target;
#define BOGUS ((struct pmem2_source *)(void *)&bogus_target)

#endif
