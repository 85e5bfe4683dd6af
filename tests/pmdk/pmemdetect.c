/*
 * pmemdetect -z FILE: prints FILE's size, as PMDK's src/test/tools/pmemdetect does. RUNTESTS.py
 * calls it for this only when a test fails, to size the log files it dumps (context.py,
 * dump_n_lines). PMDK's own tool needs libpmem and PMDK's common code; this stand-in does the
 * one thing needed and refuses every other option (exit 2, pmemdetect's "error").
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int
main(int argc, char *argv[])
{
	struct stat st;

	if (argc != 3 || strcmp(argv[1], "-z") != 0) {
		fprintf(stderr, "pmemdetect stand-in (tests/pmdk): only -z FILE\n");
		return 2;
	}
	if (stat(argv[2], &st) != 0) {
		printf("%llu\n", (unsigned long long)-1); /* pmemdetect's answer on error */
		return 2;
	}
	printf("%lld\n", (long long)st.st_size);
	return 0;
}
