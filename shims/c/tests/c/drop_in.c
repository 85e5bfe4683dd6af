/*
 * A program built against Debian's libpmem2 (-lpmem2: its references are versioned
 * LIBPMEM2_1.0) that calls only the functions libpmem2_source exports. Run as is it uses
 * libpmem2; run with LD_LIBRARY_PATH naming a directory where libpmem2.so.1 is our library,
 * it uses ours. Each line shows which: the file the loader took pmem2_source_from_fd from,
 * and the answer to an O_PATH descriptor (libpmem2 accepts it, we reject it).
 *
 * Usage: drop_in <scratch directory>
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <libpmem2.h>

int
main(int argc, char *argv[])
{
	struct pmem2_source *src = NULL;
	char file[4096], real[PATH_MAX];
	int fd, path_fd, dir, out = -1, ret;
	Dl_info info;

	if (argc != 2) {
		fprintf(stderr, "usage: %s <scratch directory>\n", argv[0]);
		return 2;
	}
	if (dladdr((void *)pmem2_source_from_fd, &info) == 0 || info.dli_fname == NULL ||
			realpath(info.dli_fname, real) == NULL) {
		fprintf(stderr, "cannot tell where pmem2_source_from_fd comes from\n");
		return 1;
	}
	printf("pmem2_source_from_fd from %s\n", real);

	snprintf(file, sizeof(file), "%s/file", argv[1]);
	fd = open(file, O_CREAT | O_TRUNC | O_RDWR, 0600);
	if (fd < 0) {
		perror(file);
		return 1;
	}

	ret = pmem2_source_from_fd(&src, fd);
	printf("regular file: %d\n", ret);
	if (ret == 0) {
		ret = pmem2_source_get_fd(src, &out);
		printf("get_fd: %d, same fd: %s\n", ret, out == fd ? "yes" : "no");
		printf("delete: %d\n", pmem2_source_delete(&src));
	}

	path_fd = open(file, O_PATH);
	ret = pmem2_source_from_fd(&src, path_fd);
	if (ret == 0)
		printf("O_PATH fd: %d (delete: %d)\n", ret, pmem2_source_delete(&src));
	else
		printf("O_PATH fd: %d: %s\n", ret, pmem2_errormsg());

	dir = open(argv[1], O_RDONLY | O_DIRECTORY);
	ret = pmem2_source_from_fd(&src, dir);
	printf("directory: %d, src %s\n", ret, src == NULL ? "NULL" : "set");
	pmem2_perror("drop-in");

	ret = pmem2_source_from_anon(&src, 4096);
	printf("anon: %d\n", ret);
	if (ret == 0) {
		printf("anon get_fd: %d\n", pmem2_source_get_fd(src, &out));
		printf("delete: %d\n", pmem2_source_delete(&src));
	}

	close(dir);
	close(path_fd);
	close(fd);
	unlink(file);
	return 0;
}
