// SPDX-License-Identifier: GPL-2.0
/*
 * Poison probe: does poison in a DAX file reach exactly the process that
 * maps it, at the right address, and nobody else?
 *
 *   dax_poison -P FILE
 *	Map FILE and print the pfn of its first page (from /proc/self/pagemap).
 *   dax_poison -p PAGE [-n NR] [-i INJECT] [-c CMD] [-u] FILE OTHER
 *	Map FILE and OTHER MAP_SHARED and write every page of both; with -c,
 *	run the shell command CMD while they are mapped (a device-mapper table
 *	reload, say) and give up if it fails. Then poison
 *	pages [PAGE, PAGE + NR) of FILE: with madvise(MADV_HWPOISON) (NR must
 *	be 1), or with -i by writing "PFN NR" to INJECT (the debugfs file that
 *	calls memory_failure_range()). Expect one SIGBUS with si_code
 *	BUS_MCEERR_AR at an address inside the poisoned pages, those pages no
 *	longer mapped, every other page of FILE still readable with its data,
 *	and every page of OTHER too.
 *
 *	With -u (with -i, NR even), map only pages [PAGE, PAGE + NR) of FILE,
 *	so that they are mapped page by page, and write only the second half:
 *	the process then maps part of the poisoned range, not its first page,
 *	and the SIGBUS must come at the first page it maps.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kselftest.h"

#ifndef MADV_HWPOISON
#define MADV_HWPOISON 100
#endif

static const char usage[] =
	"usage: dax_poison -p PAGE [-n NR] [-i INJECT] [-c CMD] [-u] FILE OTHER\n";

static sigjmp_buf fault_jmp;
static int sig_code, sig_count;
static void *sig_addr;

static void on_sigbus(int sig, siginfo_t *si, void *ctx)
{
	(void)sig;
	(void)ctx;
	__atomic_add_fetch(&sig_count, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&sig_code, si->si_code, __ATOMIC_RELAXED);
	__atomic_store_n(&sig_addr, si->si_addr, __ATOMIC_RELAXED);
	siglongjmp(fault_jmp, 1);
}

/* Map LEN bytes of PATH from OFF, or all of it if LEN is 0 (its size in *SIZE). */
static char *map_file(const char *path, off_t off, size_t len, size_t *size)
{
	struct stat st;
	char *map;
	int fd;

	fd = open(path, O_RDWR);
	if (fd < 0 || fstat(fd, &st))
		ksft_exit_fail_msg("%s: %s\n", path, strerror(errno));
	*size = len ? len : (size_t)st.st_size;
	if (off + (off_t)*size > st.st_size)
		ksft_exit_fail_msg("%s: pages beyond the file\n", path);
	map = mmap(NULL, *size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, off);
	if (map == MAP_FAILED)
		ksft_exit_fail_msg("mmap %s: %s\n", path, strerror(errno));
	close(fd);
	return map;
}

/* The pagemap entry of ADDR: bit 63 says whether a page is mapped there. */
static uint64_t pagemap_of(void *addr)
{
	long page_size = sysconf(_SC_PAGESIZE);
	uint64_t entry = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY);

	if (fd < 0 || pread(fd, &entry, sizeof(entry),
			    (uintptr_t)addr / page_size * sizeof(entry)) != sizeof(entry))
		ksft_exit_fail_msg("pagemap: %s\n", strerror(errno));
	close(fd);
	return entry;
}

static uint64_t pfn_of(void *addr)
{
	uint64_t entry = pagemap_of(addr);

	if (!(entry >> 63))
		ksft_exit_fail_msg("page at %p not present\n", addr);
	return entry & ((1ULL << 55) - 1);
}

static void fill(char *map, size_t size, long page_size, uint64_t tag)
{
	for (size_t off = 0; off < size; off += page_size)
		__atomic_store_n((uint64_t *)(map + off), tag + off, __ATOMIC_RELAXED);
}

/*
 * Poison NR pages from LO (page PAGE of the file, at pfn PFN). A SIGBUS jumps
 * back here and the function returns at once, so no local is used after the
 * jump.
 */
static void poison(char *lo, uint64_t pfn, long nr, long page, const char *inject,
		   long page_size)
{
	char cmd[64];
	int fd, ret;

	if (sigsetjmp(fault_jmp, 1))
		return;
	if (inject) {
		fd = open(inject, O_WRONLY);
		snprintf(cmd, sizeof(cmd), "%llu %ld", (unsigned long long)pfn, nr);
		ret = fd < 0 ? -1 : write(fd, cmd, strlen(cmd));
		ksft_print_msg("write '%s' to %s: %d (%s)\n", cmd, inject, ret,
			       ret < 0 ? strerror(errno) : "ok");
		if (fd >= 0)
			close(fd);
	} else {
		ret = madvise(lo, page_size, MADV_HWPOISON);
		ksft_print_msg("madvise(MADV_HWPOISON) at page %ld: %d (%s)\n", page,
			       ret, ret ? strerror(errno) : "ok");
	}
}

/* Read the word at ADDR; false on a SIGBUS. */
static bool readable(char *addr, uint64_t *val)
{
	if (sigsetjmp(fault_jmp, 1))
		return false;
	*val = __atomic_load_n((uint64_t *)addr, __ATOMIC_RELAXED);
	return true;
}

/* The pages of [MAP, MAP + SIZE) outside [LO, HI) that lost TAG's data. */
static long bad_pages(char *map, size_t size, char *lo, char *hi, long page_size,
		      uint64_t tag)
{
	long bad = 0;
	uint64_t val;

	for (size_t off = 0; off < size; off += page_size) {
		if (map + off >= lo && map + off < hi)
			continue;
		if (!readable(map + off, &val) || val != tag + off)
			bad++;
	}
	return bad;
}

int main(int argc, char **argv)
{
	long page_size = sysconf(_SC_PAGESIZE);
	const char *inject = NULL, *cmd = NULL;
	long page = -1, nr = 1, bad, bad_other, mapped = 0;
	bool print_pfn = false, part = false;
	size_t size, other_size;
	struct sigaction sa = { .sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO };
	char *map, *other, *lo, *hi, *first;
	uint64_t pfn;
	int opt;

	while ((opt = getopt(argc, argv, "Pp:n:i:c:u")) != -1) {
		switch (opt) {
		case 'P':
			print_pfn = true;
			break;
		case 'p':
			page = atol(optarg);
			break;
		case 'n':
			nr = atol(optarg);
			break;
		case 'i':
			inject = optarg;
			break;
		case 'c':
			cmd = optarg;
			break;
		case 'u':
			part = true;
			break;
		default:
			ksft_exit_fail_msg("bad option\n");
		}
	}
	if (print_pfn) {
		if (optind + 1 != argc)
			ksft_exit_fail_msg("usage: dax_poison -P FILE\n");
		map = map_file(argv[optind], 0, 0, &size);
		fill(map, page_size, page_size, 0);
		printf("%llu\n", (unsigned long long)pfn_of(map));
		return 0;
	}
	if (optind + 2 != argc || page < 0 || nr < 1 || (!inject && nr != 1) ||
	    (part && (!inject || nr % 2)))
		ksft_exit_fail_msg("%s", usage);

	ksft_print_header();
	ksft_set_plan(5);
	if (part) {
		/* A mapping smaller than a PMD: mapped page by page. */
		map = map_file(argv[optind], page * page_size, nr * page_size, &size);
		lo = map;
		first = lo + nr / 2 * page_size;
		fill(first, nr / 2 * page_size, page_size, 1);
		pfn = pfn_of(first) - nr / 2;
	} else {
		map = map_file(argv[optind], 0, 0, &size);
		if ((page + nr) * page_size > (long)size)
			ksft_exit_fail_msg("pages beyond the file\n");
		fill(map, size, page_size, 1);
		lo = map + page * page_size;
		first = lo;
		pfn = inject ? pfn_of(lo) : 0;
	}
	hi = lo + nr * page_size;
	other = map_file(argv[optind + 1], 0, 0, &other_size);
	fill(other, other_size, page_size, 2);
	if (cmd) {
		int status = system(cmd);

		ksft_print_msg("while mapped: '%s': exit status %d\n", cmd, status);
		if (status)
			ksft_exit_fail_msg("the command failed\n");
	}
	if (sigaction(SIGBUS, &sa, NULL))
		ksft_exit_fail_msg("sigaction: %s\n", strerror(errno));

	poison(lo, pfn, nr, page, inject, page_size);
	ksft_print_msg("SIGBUS: %d, si_code %d, address page %ld of the mapping\n",
		       sig_count, sig_code,
		       sig_addr ? (long)(((char *)sig_addr - map) / page_size) : -1);
	ksft_test_result(sig_count == 1, "one SIGBUS for the poisoned pages\n");
	ksft_test_result(sig_code == BUS_MCEERR_AR && (char *)sig_addr >= first &&
			 (char *)sig_addr < hi,
			 "BUS_MCEERR_AR at an address of the poisoned pages%s\n",
			 part ? " that the process maps" : "");

	/* Before touching anything again: the poisoned pages are unmapped. */
	for (char *p = lo; p < hi; p += page_size)
		mapped += pagemap_of(p) >> 63;
	ksft_test_result(mapped == 0, "the poisoned pages are unmapped (%ld mapped)\n",
			 mapped);
	bad = part ? 0 : bad_pages(map, size, lo, hi, page_size, 1);
	ksft_test_result(bad == 0 && sig_count == 1,
			 "the file's other pages are readable with their data (%ld pages bad)\n",
			 bad);
	bad_other = bad_pages(other, other_size, other, other, page_size, 2);
	ksft_test_result(bad_other == 0 && sig_count == 1,
			 "the other file is readable with its data (%ld pages bad)\n",
			 bad_other);
	ksft_finished();
}
