// SPDX-License-Identifier: GPL-2.0
/*
 * Stale-mapping probe: do DAX mappings survive the removal of their device?
 *
 * Forks one process per PATH (a file on a DAX filesystem, or a devdax
 * character device). Each maps SIZE bytes MAP_SHARED and writes every page.
 * The parent then removes the device by writing VALUE to the sysfs FILE given
 * with -r FILE=VALUE (e.g. an unbind file), timing the write. Afterwards each
 * process reads and writes every page again, catching SIGBUS, and reports
 * how many pages were still readable (and still held its data), writable,
 * or raised SIGBUS; then it unmaps and exits. With -e N it probes one page
 * of every N after the removal (at a different offset in each group of N,
 * and the last page), not all of them: a mapping is revoked a PMD or an
 * extent at a time, and under emulation every probe costs a fault and a
 * signal.
 *
 * With -R the files are only read (a read-only filesystem such as erofs):
 * each process maps them PROT_READ and reads every page before the
 * removal, and only reads after it.
 *
 * Page P of the mapping of the I-th PATH (I from 0) holds, in its first 8
 * bytes (native endian), 0x5eed000000000000 ^ (I << 32) ^ P, so that a test
 * can check after a rebind that what the processes stored before the
 * removal reached the media.
 *
 * The bar: after removal no page of any mapping can be read or written, the
 * removal returns within -t MS, and every process can unmap and exit.
 * -x REASON reports a removal that is too slow or leaves pages accessible as
 * XFAIL (a known upstream behaviour) rather than FAIL, with the numbers in the
 * message. Failing to map, or a process that cannot unmap and exit, always
 * fails.
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dax_util.h"
#include "kselftest.h"

#define MAX_PROCS 16

static bool readonly;		/* -R: map PROT_READ, never write */

struct report {
	long pages;		/* pages probed after the removal */
	long read_ok;		/* read without a signal */
	long read_stale;	/* ... and still returned the data written before removal */
	long read_sigbus;
	long write_ok;
	long write_sigbus;
	long sigbus_adrerr;	/* si_code of the SIGBUSes seen */
	long sigbus_mceerr;
	long sigbus_other;
	long sigbus_idle;	/* SIGBUS delivered while not touching the mapping */
	long first_accessible;	/* first page read or written without a signal, or -1 */
	int munmap_errno;
};

/*
 * State shared with the SIGBUS handler, and the probe loop's index and page
 * (globals, so that their values survive siglongjmp()). Accessed with __atomic builtins,
 * which the compiler can neither elide nor reorder across the handler.
 */
static sigjmp_buf fault_jmp;
static int last_si_code, in_access;
static long idle_sigbus, cur_probe, cur_page;

/*
 * The page that probe number N looks at, one page of every EVERY: in the
 * N-th group of EVERY pages, the page at offset N * 61 % EVERY (61 is prime
 * to any power of two, so the offsets vary), and the last page of the
 * mapping as the last probe.
 */
static long probe_count(long pages, long every)
{
	return (pages + every - 1) / every + (every > 1);
}

static long probe_page(long n, long pages, long every)
{
	long page = n * every + n * 61 % every;

	return page < pages && n < (pages + every - 1) / every ? page : pages - 1;
}

static uint64_t peek(char *map, long page_size, long page)
{
	return __atomic_load_n((uint64_t *)(map + page * page_size), __ATOMIC_RELAXED);
}

static void poke(char *map, long page_size, long page, uint64_t value)
{
	__atomic_store_n((uint64_t *)(map + page * page_size), value, __ATOMIC_RELAXED);
}

/*
 * A SIGBUS raised by an access jumps back to the probe loop. One that the
 * kernel sends while the process is idle (an asynchronous kill, as upstream
 * sends during removal) is counted and otherwise ignored.
 */
static void on_sigbus(int sig, siginfo_t *si, void *ctx)
{
	(void)sig;
	(void)ctx;
	if (!__atomic_load_n(&in_access, __ATOMIC_RELAXED)) {
		__atomic_fetch_add(&idle_sigbus, 1, __ATOMIC_RELAXED);
		return;
	}
	__atomic_store_n(&last_si_code, si->si_code, __ATOMIC_RELAXED);
	siglongjmp(fault_jmp, 1);
}

/* The index of this process's PATH on the command line, from 0. */
static int child_index;

static uint64_t pattern(long page)
{
	return 0x5eed000000000000ULL ^ ((uint64_t)child_index << 32) ^ (uint64_t)page;
}

static void count_sigbus(struct report *r)
{
	int code = __atomic_load_n(&last_si_code, __ATOMIC_RELAXED);

	if (code == BUS_ADRERR)
		r->sigbus_adrerr++;
	else if (code == BUS_MCEERR_AR || code == BUS_MCEERR_AO)
		r->sigbus_mceerr++;
	else
		r->sigbus_other++;
}

/*
 * Runs in the child: map SIZE bytes of PATH at OFFSET, fill, report ready,
 * wait, probe, report. Reads every page first, then writes every page, and
 * says what the reads saw in between: on upstream a stale mapping can be
 * readable and then Oops the kernel on the first write.
 */
static int child(const char *path, size_t size, off_t offset, long every,
		 int ready_fd, int go_fd, int report_fd)
{
	long page_size = sysconf(_SC_PAGESIZE);
	long pages = size / page_size;
	struct report r = { .first_accessible = -1 };
	struct sigaction sa = { 0 };
	char *map;
	struct stat st;
	char c;
	int fd;

	r.pages = probe_count(pages, every);
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigaction(SIGBUS, &sa, NULL);

	fd = readonly ? open(path, O_RDONLY) : open(path, O_RDWR | O_CREAT, 0644);
	if (fd < 0 || fstat(fd, &st))
		return 10;
	if (S_ISREG(st.st_mode) && st.st_size < (off_t)size &&
	    (readonly || ftruncate(fd, size)))
		return 11;
	map = mmap(NULL, size, readonly ? PROT_READ : PROT_READ | PROT_WRITE,
		   MAP_SHARED, fd, offset);
	if (map == MAP_FAILED)
		return 12;
	close(fd);
	for (long p = 0; p < pages && !readonly; p++)
		poke(map, page_size, p, pattern(p));
	for (long p = 0; p < pages; p++)
		if (peek(map, page_size, p) != pattern(p) && !readonly)
			return 13;

	if (write(ready_fd, "r", 1) != 1)
		return 14;
	while (read(go_fd, &c, 1) != 1)
		if (errno != EINTR)
			return 14;

	__atomic_store_n(&in_access, 1, __ATOMIC_RELAXED);
	for (cur_probe = 0; cur_probe < r.pages; cur_probe++) {
		cur_page = probe_page(cur_probe, pages, every);
		if (sigsetjmp(fault_jmp, 1) == 0) {
			uint64_t v = peek(map, page_size, cur_page);

			r.read_ok++;
			if (v == pattern(cur_page))
				r.read_stale++;
			if (r.first_accessible < 0)
				r.first_accessible = cur_page;
		} else {
			r.read_sigbus++;
			count_sigbus(&r);
		}
	}
	/* Said before the writes, which is where a stale mapping may Oops. */
	printf("# process %d: reads: %ld ok (%ld with the old data), %ld SIGBUS; now writing\n",
	       getpid(), r.read_ok, r.read_stale, r.read_sigbus);
	for (cur_probe = 0; cur_probe < r.pages && !readonly; cur_probe++) {
		cur_page = probe_page(cur_probe, pages, every);
		if (sigsetjmp(fault_jmp, 1) == 0) {
			poke(map, page_size, cur_page, ~pattern(cur_page));
			r.write_ok++;
			if (r.first_accessible < 0)
				r.first_accessible = cur_page;
		} else {
			r.write_sigbus++;
			count_sigbus(&r);
		}
	}
	__atomic_store_n(&in_access, 0, __ATOMIC_RELAXED);
	r.sigbus_idle = __atomic_load_n(&idle_sigbus, __ATOMIC_RELAXED);
	printf("# process %d: writes: %ld ok, %ld SIGBUS; now unmapping\n",
	       getpid(), r.write_ok, r.write_sigbus);
	r.munmap_errno = munmap(map, size) ? errno : 0;
	if (write(report_fd, &r, sizeof(r)) != sizeof(r))
		return 15;
	return 0;
}

static void bad_arguments(void)
{
	fprintf(stderr, "%s\n",
		"usage: dax_stale_mapping -r FILE=VALUE [-s MiB] [-t MS] [-e EVERY] [-x REASON] [-R] PATH...");
	exit(KSFT_FAIL);
}

int main(int argc, char **argv)
{
	int ready[2], go[2], rep[2], opt, nprocs, removal_ret, exited = 0;
	char *remove_file = NULL, *remove_value = NULL;
	const char *xfail = NULL;
	struct report total = { 0 };
	double max_ms = 5000, t0, removal_ms;
	pid_t pids[MAX_PROCS];
	size_t size = 64 << 20;
	long first_accessible = -1, every = 1;
	char detail[160];
	bool revoked;

	while ((opt = getopt(argc, argv, "e:r:s:t:x:R")) != -1) {
		switch (opt) {
		case 'r':
			remove_file = optarg;
			remove_value = strchr(optarg, '=');
			if (!remove_value)
				bad_arguments();
			*remove_value++ = '\0';
			break;
		case 's':
			size = strtoul(optarg, NULL, 0) << 20;
			break;
		case 't':
			max_ms = strtod(optarg, NULL);
			break;
		case 'e':
			every = strtol(optarg, NULL, 0);
			break;
		case 'x':
			xfail = optarg;
			break;
		case 'R':
			readonly = true;
			break;
		default:
			bad_arguments();
		}
	}
	nprocs = argc - optind;
	if (!remove_file || nprocs < 1 || nprocs > MAX_PROCS || !size || every < 1)
		bad_arguments();

	/* Line by line: the demo reads progress even if a process hangs. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	ksft_print_header();
	ksft_set_plan(4);
	if (pipe(ready) || pipe(go) || pipe(rep))
		ksft_exit_fail_perror("pipe");

	for (int i = 0; i < nprocs; i++) {
		pids[i] = fork();
		if (pids[i] < 0)
			ksft_exit_fail_perror("fork");
		if (pids[i] == 0) {
			const char *path = argv[optind + i];
			struct stat st;
			off_t offset = 0;

			child_index = i;
			/* Processes sharing a device each map their own slice. */
			if (!stat(path, &st) && S_ISCHR(st.st_mode))
				offset = (off_t)i * size;
			_exit(child(path, size, offset, every, ready[1], go[0], rep[1]));
		}
	}
	/* Only the children write these: a dead child then reads as EOF. */
	close(ready[1]);
	close(go[0]);
	close(rep[1]);
	for (int i = 0; i < nprocs; i++) {
		char c;

		if (read(ready[0], &c, 1) != 1) {
			for (int j = 0; j < nprocs; j++) {
				int status;

				kill(pids[j], SIGKILL);
				/* 10 open, 11 truncate, 12 mmap, 13 verify, 14 sync */
				if (waitpid(pids[j], &status, 0) == pids[j] && WIFEXITED(status))
					ksft_print_msg("process %d exited with %d\n",
						       pids[j], WEXITSTATUS(status));
			}
			ksft_test_result_fail("%d processes map and write %zu MiB each\n",
					      nprocs, size >> 20);
			ksft_exit_fail_msg("a process failed before mapping\n");
		}
	}
	ksft_test_result_pass("%d processes mapped and %s %zu pages each\n",
			      nprocs, readonly ? "read" : "wrote",
			      size / sysconf(_SC_PAGESIZE));

	t0 = now_ms();
	removal_ret = write_sysfs(remove_file, remove_value);
	removal_ms = now_ms() - t0;
	ksft_print_msg("removal: echo %s > %s returned %d after %.1f ms\n",
		       remove_value, remove_file, removal_ret, removal_ms);
	if (removal_ret == 0 && removal_ms <= max_ms)
		ksft_test_result_pass("removal took %.1f ms (limit %.0f ms)\n", removal_ms, max_ms);
	else if (removal_ret == 0 && xfail)
		ksft_test_result_xfail("removal took %.1f ms (limit %.0f ms): %s\n",
				       removal_ms, max_ms, xfail);
	else
		ksft_test_result_fail("removal returned %d after %.1f ms (limit %.0f ms)\n",
				      removal_ret, removal_ms, max_ms);

	for (int i = 0; i < nprocs; i++)
		if (write(go[1], "g", 1) != 1)
			ksft_exit_fail_perror("write");
	for (int i = 0; i < nprocs; i++) {
		struct report r;

		if (read(rep[0], &r, sizeof(r)) != sizeof(r)) {
			ksft_print_msg("%d processes died before reporting\n", nprocs - i);
			break;
		}
		total.pages += r.pages;
		total.read_ok += r.read_ok;
		total.read_stale += r.read_stale;
		total.read_sigbus += r.read_sigbus;
		total.write_ok += r.write_ok;
		total.write_sigbus += r.write_sigbus;
		total.sigbus_adrerr += r.sigbus_adrerr;
		total.sigbus_mceerr += r.sigbus_mceerr;
		total.sigbus_other += r.sigbus_other;
		total.sigbus_idle += r.sigbus_idle;
		if (r.munmap_errno)
			total.munmap_errno = r.munmap_errno;
		if (first_accessible < 0)
			first_accessible = r.first_accessible;
	}
	for (int i = 0; i < nprocs; i++) {
		int status;

		if (waitpid(pids[i], &status, 0) != pids[i])
			continue;
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			exited++;
		else if (WIFSIGNALED(status))
			ksft_print_msg("process %d killed by signal %d\n",
				       pids[i], WTERMSIG(status));
		else
			ksft_print_msg("process %d exited with %d\n", pids[i], WEXITSTATUS(status));
	}

	if (every > 1)
		ksft_print_msg("after removal: %ld pages probed, one of every %ld\n",
			       total.pages, every);
	ksft_print_msg("after removal: %ld pages; reads: %ld ok (%ld old data), %ld SIGBUS\n",
		       total.pages, total.read_ok, total.read_stale, total.read_sigbus);
	ksft_print_msg("after removal: writes: %ld ok, %ld SIGBUS\n",
		       total.write_ok, total.write_sigbus);
	ksft_print_msg("SIGBUS codes: ADRERR %ld, MCEERR %ld, other %ld; while idle %ld\n",
		       total.sigbus_adrerr, total.sigbus_mceerr, total.sigbus_other,
		       total.sigbus_idle);

	revoked = total.pages && total.read_ok == 0 && total.write_ok == 0 &&
		  total.read_sigbus == total.pages &&
		  (readonly || total.write_sigbus == total.pages);
	snprintf(detail, sizeof(detail),
		 "%ld/%ld pages readable (%ld old data), %ld writable, first page %ld",
		 total.read_ok, total.pages, total.read_stale, total.write_ok, first_accessible);
	if (revoked)
		ksft_test_result_pass("no page readable or writable after removal\n");
	else if (xfail)
		ksft_test_result_xfail("after removal %s: %s\n", detail, xfail);
	else
		ksft_test_result_fail("after removal %s\n", detail);

	ksft_test_result(exited == nprocs && !total.munmap_errno,
			 "%d of %d processes unmapped and exited cleanly (munmap errno %d)\n",
			 exited, nprocs, total.munmap_errno);
	ksft_finished();
}
