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
 *
 *   dax_poison -p PAGE [-n NR] -m MISC [-g] [-K] [-w SECONDS] [-s SIZE] FILE [OTHER]
 *	Poison pages [PAGE, PAGE + NR) of FILE with real machine checks: ask
 *	the host, on the third serial port (MCE_PORT; scripts/qemu-mce.py),
 *	for one action-optional memory error per page, reported with MCi_MISC
 *	MISC (0x8c: a physical address, 4 KiB granularity). The kernel handles
 *	them in the background: expect the pages unmapped within SECONDS
 *	(default 60), then, when each is touched, a SIGBUS with BUS_MCEERR_AR
 *	at exactly its address, and the other pages of FILE and of OTHER
 *	readable with their data. With -s, FILE is a device (devdax) of SIZE
 *	bytes. Signals that came before a page was touched (BUS_MCEERR_AO to
 *	the mapping processes) are reported, not judged.
 *
 *	With -g (NR a power of two), one machine check whose MISC names a
 *	granule of NR pages (0x95: LSB 21, 2 MiB): PAGE moves up to the first
 *	page of FILE whose pfn is a multiple of NR, the error is raised at the
 *	page after it (inside the granule) and all NR pages must be handled.
 *	With -K, expect upstream's behaviour instead: after waiting as long,
 *	every page still mapped and readable, no signal (an action-optional
 *	error on a DAX page that no early-kill process maps is logged and the
 *	page marked, but nothing is unmapped; a coarse one is only logged).
 *	Two results with -K.
 *
 *   dax_poison -p PAGE -n NR -q QUEUE [-K] [-w SECONDS] FILE [OTHER]
 *	Map FILE with 4 KiB pages (MADV_NOHUGEPAGE) and queue pages
 *	[PAGE, PAGE + NR) as a firmware-first platform queues a burst of error
 *	records: write "PFN NR" to QUEUE (the debugfs file that calls
 *	memory_failure_queue() once per page with interrupts off). Expect, as
 *	for -m, every queued page unmapped within SECONDS and SIGBUS
 *	BUS_MCEERR_AR at each when touched, the other pages intact. With -K,
 *	expect upstream's 16-entry queue instead: after waiting as long,
 *	HardwareCorrupted grew by fewer pages than were queued (the rest were
 *	dropped), and nothing was unmapped. Two results with -K.
 *
 *	With -g (NR a power of two), queue one error record whose physical
 *	address mask names a granule of NR pages, as GHES does for a CPER
 *	memory error section with a coarse physical_addr_mask: write
 *	"PHYS MASK" to QUEUE (the debugfs file that calls
 *	memory_failure_queue_mask()), PAGE moved as for -m -g. With -K, as
 *	upstream, only the page of the address is handled.
 *
 *   dax_poison -p PAGE -n NR -e INJECT [-K] [-w SECONDS] FILE
 *	A process with PR_MCE_KILL_EARLY maps FILE at a 2 MiB aligned address
 *	with 4 KiB pages and writes every page; another process (which maps
 *	nothing) poisons pages [PAGE, PAGE + NR) through INJECT. Expect the
 *	first process to get action-optional signals (BUS_MCEERR_AO) that
 *	cover the range in aligned blocks: the first at the first page, with
 *	the si_addr_lsb of the largest aligned block that starts there, each
 *	a block inside the range, and only one when the range is an aligned
 *	power of two; SIGBUS is not queued, so later blocks may merge into
 *	the first. Then touching each poisoned page raises BUS_MCEERR_AR at
 *	its address. With -K, expect upstream's one signal per page: the
 *	first at the first page, with the si_addr_lsb of a page. Four
 *	results, two with -K.
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
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest.h"
#include "dax_util.h"

#ifndef MADV_HWPOISON
#define MADV_HWPOISON 100
#endif

static const char usage[] =
	"usage: dax_poison -p PAGE [-n NR] [-i INJECT] [-c CMD] [-u] FILE OTHER\n"
	"       dax_poison -p PAGE [-n NR] -m MISC [-g] [-K] [-w SECONDS] [-s SIZE] FILE [OTHER]\n"
	"       dax_poison -p PAGE -n NR -q QUEUE [-g] [-K] [-w SECONDS] FILE [OTHER]\n"
	"       dax_poison -p PAGE -n NR -e INJECT [-K] [-w SECONDS] FILE\n";

/* The guest's port to the host's machine check agent (scripts/vm.sh). */
#define MCE_PORT "/dev/ttyS2"

static sigjmp_buf fault_jmp;
static int sig_code, sig_count, ao_count;
static void *sig_addr;

static void on_sigbus(int sig, siginfo_t *si, void *ctx)
{
	(void)sig;
	(void)ctx;
	__atomic_add_fetch(&sig_count, 1, __ATOMIC_RELAXED);
	if (si->si_code == BUS_MCEERR_AO)
		__atomic_add_fetch(&ao_count, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&sig_code, si->si_code, __ATOMIC_RELAXED);
	__atomic_store_n(&sig_addr, si->si_addr, __ATOMIC_RELAXED);
	siglongjmp(fault_jmp, 1);
}

/*
 * Map LEN bytes of PATH from OFF, or all of it if LEN is 0 (its size in
 * *SIZE); a device (devdax) is DEV_SIZE bytes long.
 */
static char *map_file_of(const char *path, off_t off, size_t len, size_t *size,
			 size_t dev_size)
{
	struct stat st;
	char *map;
	int fd;

	fd = open(path, O_RDWR);
	if (fd < 0 || fstat(fd, &st))
		ksft_exit_fail_msg("%s: %s\n", path, strerror(errno));
	if (dev_size)
		st.st_size = dev_size;
	*size = len ? len : (size_t)st.st_size;
	if (off + (off_t)*size > st.st_size)
		ksft_exit_fail_msg("%s: pages beyond the file\n", path);
	map = mmap(NULL, *size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, off);
	if (map == MAP_FAILED)
		ksft_exit_fail_msg("mmap %s: %s\n", path, strerror(errno));
	close(fd);
	return map;
}

static char *map_file(const char *path, off_t off, size_t len, size_t *size)
{
	return map_file_of(path, off, len, size, 0);
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

/*
 * Ask the host for NR machine checks, one per page from PFN, each reported
 * with MCi_MISC = MISC.
 */
static void request_mce(uint64_t pfn, long nr, long misc, long page_size)
{
	char line[96];
	int fd, len, ret;

	len = snprintf(line, sizeof(line), "mce %#llx %#lx %ld %#lx\n",
		       (unsigned long long)pfn * page_size, misc, nr, page_size);
	fd = open(MCE_PORT, O_WRONLY | O_NOCTTY);
	ret = fd < 0 ? -1 : write(fd, line, len);
	ksft_print_msg("asked the host on %s: %.*s: %s\n", MCE_PORT, len - 1, line,
		       ret == len ? "ok" : strerror(errno));
	if (ret != len)
		ksft_exit_fail_msg("cannot reach the host's machine check agent\n");
	close(fd);
}

/*
 * Wait up to LIMIT_MS for the NR pages from LO to be unmapped. A signal
 * (BUS_MCEERR_AO, to a process that maps poisoned pages) jumps back into
 * the loop, which goes on waiting.
 */
static bool wait_unmapped(char *lo, long nr, long page_size, double limit_ms)
{
	double start = now_ms();
	long i;

	sigsetjmp(fault_jmp, 1);
	while (now_ms() - start < limit_ms) {
		long mapped = 0;

		for (i = 0; i < nr; i++)
			mapped += pagemap_of(lo + i * page_size) >> 63;
		if (!mapped)
			return true;
		usleep(100000);
	}
	return false;
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

/* Queue NR pages from PFN through QUEUE (debugfs queue_pfns). */
static void queue_pages(const char *queue, uint64_t pfn, long nr)
{
	char cmd[64];
	int fd, len, ret;

	len = snprintf(cmd, sizeof(cmd), "%llu %ld", (unsigned long long)pfn, nr);
	fd = open(queue, O_WRONLY);
	ret = fd < 0 ? -1 : write(fd, cmd, len);
	ksft_print_msg("write '%s' to %s: %s\n", cmd, queue, ret == len ? "ok" : strerror(errno));
	if (ret != len)
		ksft_exit_fail_msg("cannot queue the pages\n");
	close(fd);
}

/* Queue one error record at PHYS whose address mask is MASK through QUEUE (debugfs queue_error). */
static void queue_error(const char *queue, uint64_t phys, uint64_t mask)
{
	char cmd[64];
	int fd, len, ret;

	len = snprintf(cmd, sizeof(cmd), "%#llx %#llx", (unsigned long long)phys,
		       (unsigned long long)mask);
	fd = open(queue, O_WRONLY);
	ret = fd < 0 ? -1 : write(fd, cmd, len);
	ksft_print_msg("write '%s' to %s: %s\n", cmd, queue, ret == len ? "ok" : strerror(errno));
	if (ret != len)
		ksft_exit_fail_msg("cannot queue the error record\n");
	close(fd);
}

/*
 * Upstream's queue holds 16 entries: a larger burst loses pages; and it
 * handles only the page of an error with a coarse address. Wait until
 * HardwareCorrupted (from HC kB) has stayed put for 2 s, or WAIT_S: the
 * pages it grew by are those the queue kept, the others were dropped. As
 * upstream, nothing is unmapped (a worker kills nobody, and fsdax unmaps
 * only for the processes it kills). Two results.
 */
static void queue_dropped(char *lo, long nr, long hc, long wait_s, long page_size)
{
	double start = now_ms(), since = now_ms();
	long last = hc, now, mapped = 0, kept;

	sigsetjmp(fault_jmp, 1);
	while (now_ms() - start < wait_s * 1e3 && now_ms() - since < 2000) {
		usleep(100000);
		now = hw_corrupted_kb();
		if (now != last) {
			last = now;
			since = now_ms();
		}
	}
	kept = (last - hc) * 1024 / page_size;
	for (long i = 0; i < nr; i++)
		mapped += pagemap_of(lo + i * page_size) >> 63;
	ksft_print_msg("as upstream: %ld of %ld queued pages handled, %ld mapped, %d SIGBUS\n",
		       kept, nr, mapped, sig_count);
	ksft_test_result(kept > 0 && kept < nr,
			 "as upstream, pages are lost (%ld of %ld not handled)\n",
			 nr - kept, nr);
	ksft_test_result(mapped == nr, "as upstream, nothing is unmapped (%ld of %ld mapped)\n",
			 mapped, nr);
}

/*
 * Machine checks at pages [PAGE, PAGE + NR) of FILE (its first MAP_SIZE
 * bytes mapped; a devdax device has no size of its own), OTHER (or NULL)
 * mapped beside it. Four results.
 */
static void mce_probe(const char *file, const char *other_path, long page, long nr,
		      long misc, const char *queue, long wait_s, size_t dev_size,
		      long page_size, bool granule, bool keep)
{
	long bad, bad_other = 0, exact = 0, ao, mapped = 0, hc;
	size_t size, other_size = 0;
	char *map, *lo, *other = NULL;
	bool unmapped;
	uint64_t pfn;

	map = map_file_of(file, 0, 0, &size, dev_size);
	/* The queued failures are unmapped page by page, as no huge fault maps them. */
	if (queue && madvise(map, size, MADV_NOHUGEPAGE))
		ksft_exit_fail_msg("madvise(MADV_NOHUGEPAGE): %s\n", strerror(errno));
	fill(map, size, page_size, 1);
	if (granule)
		while ((page + 1) * page_size <= (long)size &&
		       pfn_of(map + page * page_size) % nr)
			page++;
	if ((page + nr) * page_size > (long)size)
		ksft_exit_fail_msg("pages beyond the file\n");
	lo = map + page * page_size;
	pfn = pfn_of(lo);
	for (long i = 1; i < nr; i++)
		if (pfn_of(lo + i * page_size) != pfn + i)
			ksft_exit_fail_msg("pages %ld.. of the file are not contiguous\n", page);
	if (other_path) {
		other = map_file(other_path, 0, 0, &other_size);
		fill(other, other_size, page_size, 2);
	}

	hc = hw_corrupted_kb();
	if (queue) {
		if (granule)
			queue_error(queue, (pfn + (nr > 1)) * page_size,
				    ~((uint64_t)nr * page_size - 1));
		else
			queue_pages(queue, pfn, nr);
		if (keep) {
			queue_dropped(lo, nr, hc, wait_s, page_size);
			return;
		}
	} else if (granule) {
		ksft_print_msg("granule of %ld pages from page %ld, pfn %#llx\n", nr, page,
			       (unsigned long long)pfn);
		request_mce(pfn + (nr > 1), 1, misc, page_size);
	} else {
		request_mce(pfn, nr, misc, page_size);
	}
	if (keep) {
		/*
		 * Nothing may be unmapped: wait until the kernel has accounted
		 * the pages as poisoned (or for the whole time, if it does not),
		 * then count what is still mapped.
		 */
		double start = now_ms();

		while (hw_corrupted_kb() < hc + nr * page_size / 1024 &&
		       now_ms() - start < wait_s * 1e3)
			usleep(100000);
		usleep(500000);
		for (long i = 0; i < nr; i++)
			mapped += pagemap_of(lo + i * page_size) >> 63;
		ksft_test_result(mapped == nr && !sig_count,
				 "as upstream: %ld of %ld pages still mapped, %d signals\n",
				 mapped, nr, sig_count);
		bad = bad_pages(map, size, map, map, page_size, 1);
		ksft_test_result(bad == 0,
				 "every page of the file is readable with its data (%ld bad)\n",
				 bad);
		return;
	}
	unmapped = wait_unmapped(lo, nr, page_size, wait_s * 1e3);
	ao = ao_count;
	ksft_print_msg("before touching: %d SIGBUS (%ld BUS_MCEERR_AO), last at page %ld\n",
		       sig_count, ao,
		       sig_addr ? (long)(((char *)sig_addr - map) / page_size) : -1);
	ksft_test_result(unmapped,
			 "the machine checks unmapped the %ld poisoned pages within %ld s\n",
			 nr, wait_s);

	for (long i = 0; i < nr; i++) {
		char *p = lo + i * page_size;
		uint64_t val;

		sig_code = 0;
		sig_addr = NULL;
		if (!readable(p, &val) && sig_code == BUS_MCEERR_AR && sig_addr == p)
			exact++;
		else if (exact == i)
			ksft_print_msg("page %ld: si_code %d at page %ld\n", page + i, sig_code,
				       sig_addr ?
				       (long)(((char *)sig_addr - map) / page_size) : -1);
	}
	ksft_test_result(exact == nr,
			 "touching a poisoned page: SIGBUS BUS_MCEERR_AR at its address (%ld of %ld)\n",
			 exact, nr);
	bad = bad_pages(map, size, lo, lo + nr * page_size, page_size, 1);
	ksft_test_result(bad == 0,
			 "the file's other pages are readable with their data (%ld pages bad)\n",
			 bad);
	if (other)
		bad_other = bad_pages(other, other_size, other, other, page_size, 2);
	ksft_test_result(bad_other == 0, "%s (%ld pages bad)\n",
			 other ? "the other file is readable with its data" : "no other file",
			 bad_other);
}

/* One signal the early-kill process received: si_code, offset from the range, lsb. */
struct early_sig {
	int code;
	long off;
	int lsb;
};

#define EARLY_MAX_SIGS 64

/*
 * The early-kill process of -e: report the pfn of page PAGE of FILE on
 * OUT, collect the signals for up to WAIT_S seconds (2 s after the last),
 * then touch each poisoned page. Writes the count, the signals and the
 * number of pages that raised BUS_MCEERR_AR at their own address to OUT.
 */
static void early_child(const char *file, long page, long nr, long wait_s, int out,
			long page_size)
{
	struct early_sig sigs[EARLY_MAX_SIGS];
	struct timespec timeout = { .tv_sec = wait_s };
	size_t size, reserve;
	char *area, *map, *lo;
	long count = 0, exact = 0;
	uint64_t pfn;
	siginfo_t si;
	sigset_t set;
	int fd;

	if (prctl(PR_MCE_KILL, PR_MCE_KILL_SET, PR_MCE_KILL_EARLY, 0, 0))
		ksft_exit_fail_msg("prctl(PR_MCE_KILL_EARLY): %s\n", strerror(errno));
	fd = open(file, O_RDWR);
	size = fd < 0 ? (size_t)-1 : (size_t)lseek(fd, 0, SEEK_END);
	if (size == (size_t)-1)
		ksft_exit_fail_msg("%s: %s\n", file, strerror(errno));
	if ((page + nr) * page_size > (long)size)
		ksft_exit_fail_msg("pages beyond the file\n");
	/* A 2 MiB aligned address: the blocks of the range are known. */
	reserve = size + (2UL << 20);
	area = mmap(NULL, reserve, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED)
		ksft_exit_fail_msg("mmap: %s\n", strerror(errno));
	map = (char *)(((uintptr_t)area + (2UL << 20) - 1) & ~((2UL << 20) - 1));
	map = mmap(map, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
	if (map == MAP_FAILED || madvise(map, size, MADV_NOHUGEPAGE))
		ksft_exit_fail_msg("mmap %s: %s\n", file, strerror(errno));
	close(fd);
	fill(map, size, page_size, 1);
	lo = map + page * page_size;
	pfn = pfn_of(lo);
	for (long i = 1; i < nr; i++)
		if (pfn_of(lo + i * page_size) != pfn + i)
			ksft_exit_fail_msg("pages %ld.. of the file are not contiguous\n", page);

	sigemptyset(&set);
	sigaddset(&set, SIGBUS);
	sigprocmask(SIG_BLOCK, &set, NULL);
	if (write(out, &pfn, sizeof(pfn)) != sizeof(pfn))
		ksft_exit_fail_msg("pipe: %s\n", strerror(errno));
	while (count < EARLY_MAX_SIGS && sigtimedwait(&set, &si, &timeout) == SIGBUS) {
		sigs[count].code = si.si_code;
		sigs[count].off = (char *)si.si_addr - lo;
		sigs[count].lsb = si.si_addr_lsb;
		count++;
		timeout.tv_sec = 2;
	}
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	for (long i = 0; i < nr; i++) {
		char *p = lo + i * page_size;
		uint64_t val;

		sig_code = 0;
		sig_addr = NULL;
		if (!readable(p, &val) && sig_code == BUS_MCEERR_AR && sig_addr == p)
			exact++;
	}
	if (write(out, &count, sizeof(count)) != sizeof(count) ||
	    write(out, sigs, count * sizeof(sigs[0])) != (ssize_t)(count * sizeof(sigs[0])) ||
	    write(out, &exact, sizeof(exact)) != sizeof(exact))
		ksft_exit_fail_msg("pipe: %s\n", strerror(errno));
	exit(0);
}

/* Read exactly LEN bytes from FD; false at the end or on an error. */
static bool read_all(int fd, void *buf, size_t len)
{
	while (len) {
		ssize_t n = read(fd, buf, len);

		if (n <= 0)
			return false;
		buf = (char *)buf + n;
		len -= n;
	}
	return true;
}

/* -e: the signals of an early-kill process for a ranged failure. */
static void early_probe(const char *file, long page, long nr, const char *inject,
			long wait_s, bool keep, long page_size)
{
	struct early_sig sigs[EARLY_MAX_SIGS];
	long count = 0, exact = 0, len = nr * page_size, inside = 0;
	int pipefd[2], status, first_lsb, page_shift = __builtin_ctzl(page_size);
	uint64_t pfn;
	pid_t child;
	bool whole;

	if (pipe(pipefd))
		ksft_exit_fail_msg("pipe: %s\n", strerror(errno));
	child = fork();
	if (child < 0)
		ksft_exit_fail_msg("fork: %s\n", strerror(errno));
	if (!child) {
		close(pipefd[0]);
		early_child(file, page, nr, wait_s, pipefd[1], page_size);
	}
	close(pipefd[1]);
	if (!read_all(pipefd[0], &pfn, sizeof(pfn)))
		ksft_exit_fail_msg("the early-kill process gave up\n");
	/* This process maps nothing of FILE: the signals are action optional. */
	poison(NULL, pfn, nr, page, inject, page_size);
	if (!read_all(pipefd[0], &count, sizeof(count)) || count > EARLY_MAX_SIGS ||
	    !read_all(pipefd[0], sigs, count * sizeof(sigs[0])) ||
	    !read_all(pipefd[0], &exact, sizeof(exact)))
		ksft_exit_fail_msg("no report from the early-kill process\n");
	waitpid(child, &status, 0);

	/* The largest aligned block at page PAGE of a 2 MiB aligned mapping. */
	first_lsb = page_shift + __builtin_ctzl(page | (1L << 9));
	while ((1L << first_lsb) > len)
		first_lsb--;
	if (keep)
		first_lsb = page_shift;
	for (long i = 0; i < count; i++) {
		long size = 1L << sigs[i].lsb;

		ksft_print_msg("signal %ld: si_code %d at page %+ld of the range, si_addr_lsb %d\n",
			       i, sigs[i].code, sigs[i].off / page_size, sigs[i].lsb);
		/*
		 * Aligned in the mapping, which is 2 MiB aligned: the range
		 * starts PAGE pages into it, so a block after an odd first
		 * page is not aligned to the range's start.
		 */
		if (sigs[i].code == BUS_MCEERR_AO && sigs[i].lsb >= page_shift &&
		    sigs[i].lsb <= 21 && sigs[i].off >= 0 &&
		    (page * page_size + sigs[i].off) % size == 0 &&
		    sigs[i].off + size <= len)
			inside++;
	}
	ksft_test_result(count > 0 && sigs[0].code == BUS_MCEERR_AO && sigs[0].off == 0 &&
			 sigs[0].lsb == first_lsb,
			 "%s: the first BUS_MCEERR_AO at the first page, si_addr_lsb %d\n",
			 keep ? "as upstream" : "early kill", first_lsb);
	whole = !keep && 1L << first_lsb == len;
	ksft_test_result(count > 0 && inside == count && (!whole || count == 1),
			 "%s: %ld signals, each an aligned block inside the range%s\n",
			 keep ? "as upstream" : "early kill", count,
			 whole ? ", one for all of it" : "");
	if (keep)
		return;
	ksft_test_result(WIFEXITED(status) && !WEXITSTATUS(status),
			 "the early-kill process finished its checks\n");
	ksft_test_result(exact == nr,
			 "touching a poisoned page: SIGBUS BUS_MCEERR_AR at its address (%ld of %ld)\n",
			 exact, nr);
}

int main(int argc, char **argv)
{
	long page_size = sysconf(_SC_PAGESIZE);
	const char *inject = NULL, *cmd = NULL, *queue = NULL, *early = NULL;
	long page = -1, nr = 1, bad, bad_other, mapped = 0, misc = -1, wait_s = 60;
	size_t dev_size = 0;
	bool granule = false, keep = false;
	bool print_pfn = false, part = false;
	size_t size, other_size;
	struct sigaction sa = { .sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO };
	char *map, *other, *lo, *hi, *first;
	uint64_t pfn;
	int opt;

	while ((opt = getopt(argc, argv, "Pp:n:i:c:um:q:e:w:s:gK")) != -1) {
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
		case 'm':
			misc = strtol(optarg, NULL, 0);
			break;
		case 'q':
			queue = optarg;
			break;
		case 'e':
			early = optarg;
			break;
		case 'w':
			wait_s = atol(optarg);
			break;
		case 's':
			dev_size = strtoull(optarg, NULL, 0);
			break;
		case 'g':
			granule = true;
			break;
		case 'K':
			keep = true;
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
	if (early) {
		if (optind + 1 != argc || page < 0 || nr < 1 || inject || cmd || part ||
		    misc >= 0 || queue || granule || dev_size || wait_s < 1)
			ksft_exit_fail_msg("%s", usage);
		if (sigaction(SIGBUS, &sa, NULL))
			ksft_exit_fail_msg("sigaction: %s\n", strerror(errno));
		ksft_print_header();
		ksft_set_plan(keep ? 2 : 4);
		early_probe(argv[optind], page, nr, early, wait_s, keep, page_size);
		ksft_finished();
	}
	if (misc >= 0 || queue) {
		if (optind + 1 > argc || optind + 2 < argc || page < 0 || nr < 1 || inject ||
		    cmd || part || wait_s < 1 || (granule && (nr & (nr - 1))) ||
		    (queue && (misc >= 0 || dev_size)))
			ksft_exit_fail_msg("%s", usage);
		if (sigaction(SIGBUS, &sa, NULL))
			ksft_exit_fail_msg("sigaction: %s\n", strerror(errno));
		ksft_print_header();
		ksft_set_plan(keep ? 2 : 4);
		mce_probe(argv[optind], optind + 1 < argc ? argv[optind + 1] : NULL, page, nr,
			  misc, queue, wait_s, dev_size, page_size, granule, keep);
		ksft_finished();
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
