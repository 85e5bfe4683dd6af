/*
 * The basics through pmem2_source.h, for the ways of linking the library (static_link.rs:
 * libpmem2_source.a; install.rs: the installed .so and .a found with pkg-config): a regular
 * file is accepted, a directory rejected with PMEM2_E_INVALID_FILE_TYPE and libpmem2's
 * message, and pmem2_perror (the library's one C function) is there too.
 *
 * Usage: basic <scratch directory>; prints one line per check, exits 1 on failure.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <pmem2_source.h>

static int failures;

static void
check(int ok, const char *what)
{
	printf("%s - %s\n", ok ? "ok" : "FAIL", what);
	failures += !ok;
}

int
main(int argc, char *argv[])
{
	struct pmem2_source *src = NULL;
	char file[4096];
	int fd, dir, out = -1, ret;

	if (argc != 2) {
		fprintf(stderr, "usage: %s <scratch directory>\n", argv[0]);
		return 2;
	}
	snprintf(file, sizeof(file), "%s/file", argv[1]);
	fd = open(file, O_CREAT | O_TRUNC | O_RDWR, 0600);
	check(fd >= 0, "create a regular file");

	ret = pmem2_source_from_fd(&src, fd);
	printf("from_fd(regular file) = %d\n", ret);
	check(ret == 0 && src != NULL, "regular file accepted");
	check(pmem2_source_get_fd(src, &out) == 0 && out == fd, "get_fd returns the fd");
	check(pmem2_source_delete(&src) == 0 && src == NULL, "delete");

	dir = open(argv[1], O_RDONLY | O_DIRECTORY);
	check(dir >= 0, "open the directory");
	ret = pmem2_source_from_fd(&src, dir);
	printf("from_fd(directory) = %d: %s\n", ret, pmem2_errormsg());
	check(ret == PMEM2_E_INVALID_FILE_TYPE && src == NULL,
		"directory rejected with PMEM2_E_INVALID_FILE_TYPE");
	check(strcmp(pmem2_errormsg(), "cannot set fd to directory in pmem2_source_from_fd") == 0,
		"directory message");
	pmem2_perror("basic %s", "perror");

	close(dir);
	close(fd);
	unlink(file);
	printf("%d failed\n", failures);
	return failures == 0 ? 0 : 1;
}
