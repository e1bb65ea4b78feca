// SPDX-License-Identifier: GPL-2.0
/*
 * Pin one DAX page without keeping its file open:
 *
 *   dax_pin FILE
 *	Map the first page of FILE MAP_SHARED, write it, vmsplice() it into a
 *	pipe that nobody reads, unmap it and close FILE. The pipe now holds a
 *	reference on the page, as an unprivileged process can, so the page
 *	stays busy (dax_layout_busy_page()) while nothing maps it and the file
 *	may be unmounted. Print "pinned" and wait for SIGTERM, which drops the
 *	pin when the process exits.
 *
 * The page cache entry outlives the mapping, so evicting the inode (an
 * unmount) waits in dax_break_layout_final() until the pin goes: a
 * deterministic way to hold an unmount in the middle of its evictions.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct iovec iov;
	int fd, pipefd[2];
	long page = sysconf(_SC_PAGESIZE);
	char *p;

	if (argc != 2) {
		fprintf(stderr, "usage: dax_pin FILE\n");
		return 2;
	}
	fd = open(argv[1], O_RDWR);
	if (fd < 0 || ftruncate(fd, page) < 0) {
		perror(argv[1]);
		return 1;
	}
	p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	memset(p, 0x70, page);
	if (pipe(pipefd) < 0) {
		perror("pipe");
		return 1;
	}
	iov.iov_base = p;
	iov.iov_len = page;
	if (vmsplice(pipefd[1], &iov, 1, 0) != page) {
		perror("vmsplice");
		return 1;
	}
	munmap(p, page);
	close(fd);
	printf("pinned\n");
	fflush(stdout);
	for (;;)
		pause();
}
