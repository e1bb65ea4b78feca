// SPDX-License-Identifier: GPL-2.0
/*
 * Removal under load: does any access succeed after the removal returned?
 *
 *   dax_load [-t THREADS] [-s SIZE_MB] [-w MS] -r FILE=VALUE PATH
 *	Map SIZE_MB (default 16) of PATH (a DAX file or a devdax device)
 *	MAP_SHARED and write every page. Then THREADS (default 8) threads read
 *	and write random pages of it without a pause; every 64 accesses a
 *	thread drops a window of 16 pages with MADV_DONTNEED, so that the next
 *	accesses there fault again, and every 256 it maps 2 MiB of PATH afresh
 *	(aligned, as devdax requires), touches 16 of its pages and unmaps it.
 *	After MS milliseconds (default 300) the main thread writes VALUE to
 *	FILE (a sysfs unbind file), which removes the device, and marks the
 *	time it returned. The threads go on for another 2 s.
 *
 * Expect: the removal returns; no access that started after it returned
 * succeeds (each access reads the mark before it touches the page); every
 * thread ran accesses after the removal and saw SIGBUS; and the process
 * unmaps everything and exits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "kselftest.h"

#define MAX_THREADS	64
#define WINDOW		16
#define FRESH		(2UL << 20)

static const char usage[] =
	"usage: dax_load [-t THREADS] [-s SIZE_MB] [-w MS] -r FILE=VALUE PATH\n";

struct worker {
	pthread_t thread;
	unsigned int seed;
	/* Counted by the worker, read by main after the join. */
	unsigned long accesses, after, faults_after, stale, remaps;
};

static char *map;
static size_t size;
static long page_size;
static int fd;
static int removed;	/* set once the removal has returned */
static int stop;

static __thread sigjmp_buf fault_jmp;

static unsigned long early_notices;

/*
 * A fault on a revoked or poisoned page ends the access that took it.
 * BUS_MCEERR_AO is not a fault: memory_failure() tells a process that
 * asked to be told early (or every process, with vm.memory_failure_early_kill)
 * that a page it maps went bad, in whatever thread it picks, which may be
 * between two accesses; the access that touches the page faults later.
 */
static void on_sigbus(int sig, siginfo_t *si, void *ctx)
{
	(void)sig;
	(void)ctx;
	if (si->si_code == BUS_MCEERR_AO) {
		__atomic_add_fetch(&early_notices, 1, __ATOMIC_RELAXED);
		return;
	}
	siglongjmp(fault_jmp, 1);
}

/*
 * One access to ADDR, a write when WRITE. Returns true if it succeeded;
 * *LATE says whether the removal had returned before it started.
 */
static bool access_page(char *addr, bool write, bool *late)
{
	*late = __atomic_load_n(&removed, __ATOMIC_ACQUIRE);
	if (sigsetjmp(fault_jmp, 1))
		return false;
	if (write)
		__atomic_store_n((uint64_t *)addr, (uintptr_t)addr, __ATOMIC_RELAXED);
	else
		(void)__atomic_load_n((uint64_t *)addr, __ATOMIC_RELAXED);
	return true;
}

static void count(struct worker *w, bool ok, bool late)
{
	w->accesses++;
	if (!late)
		return;
	w->after++;
	if (ok)
		w->stale++;
	else
		w->faults_after++;
}

static void *work(void *arg)
{
	struct worker *w = arg;
	size_t pages = size / page_size;
	bool ok, late;

	while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
		size_t page = rand_r(&w->seed) % pages;

		ok = access_page(map + page * page_size, w->accesses & 1, &late);
		count(w, ok, late);
		if (w->accesses % 64 == 0) {
			size_t first = rand_r(&w->seed) % (pages - WINDOW + 1);

			madvise(map + first * page_size, WINDOW * page_size, MADV_DONTNEED);
		}
		if (w->accesses % 256 == 0) {
			/* Aligned as devdax wants it; touched at 16 spread pages. */
			size_t first = rand_r(&w->seed) % (size / FRESH) * FRESH;
			char *fresh = mmap(NULL, FRESH, PROT_READ | PROT_WRITE, MAP_SHARED,
					   fd, first);

			if (fresh == MAP_FAILED)
				continue;
			w->remaps++;
			for (size_t off = 0; off < FRESH; off += FRESH / WINDOW) {
				ok = access_page(fresh + off, off & FRESH / WINDOW, &late);
				count(w, ok, late);
			}
			munmap(fresh, FRESH);
		}
	}
	return NULL;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO };
	static struct worker workers[MAX_THREADS];
	unsigned long before = 0, after = 0, faults = 0, stale = 0, remaps = 0;
	long threads = 8, size_mb = 16, warm_ms = 300, idle = 0;
	char *remove = NULL, *value;
	double t0, t1;
	int opt, rfd;
	ssize_t ret;

	while ((opt = getopt(argc, argv, "t:s:w:r:")) != -1) {
		switch (opt) {
		case 't':
			threads = atol(optarg);
			break;
		case 's':
			size_mb = atol(optarg);
			break;
		case 'w':
			warm_ms = atol(optarg);
			break;
		case 'r':
			remove = optarg;
			break;
		default:
			ksft_exit_fail_msg("%s", usage);
		}
	}
	value = remove ? strchr(remove, '=') : NULL;
	if (optind + 1 != argc || !value || threads < 1 || threads > MAX_THREADS ||
	    size_mb < 1)
		ksft_exit_fail_msg("%s", usage);
	*value++ = '\0';

	ksft_print_header();
	ksft_set_plan(4);
	page_size = sysconf(_SC_PAGESIZE);
	size = size_mb << 20;
	fd = open(argv[optind], O_RDWR);
	if (fd < 0)
		ksft_exit_fail_msg("%s: %s\n", argv[optind], strerror(errno));
	map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		ksft_exit_fail_msg("mmap %s: %s\n", argv[optind], strerror(errno));
	if (sigaction(SIGBUS, &sa, NULL))
		ksft_exit_fail_msg("sigaction: %s\n", strerror(errno));
	/* A page poisoned already (a racing injection) faults here too. */
	for (size_t off = 0; off < size; off += page_size) {
		bool late;

		access_page(map + off, true, &late);
	}

	for (long i = 0; i < threads; i++) {
		workers[i].seed = i + 1;
		if (pthread_create(&workers[i].thread, NULL, work, &workers[i]))
			ksft_exit_fail_msg("pthread_create: %s\n", strerror(errno));
	}
	usleep(warm_ms * 1000);

	rfd = open(remove, O_WRONLY);
	t0 = now_ms();
	ret = rfd < 0 ? -1 : write(rfd, value, strlen(value));
	t1 = now_ms();
	__atomic_store_n(&removed, 1, __ATOMIC_RELEASE);
	if (rfd >= 0)
		close(rfd);
	ksft_test_result(ret == (ssize_t)strlen(value), "removal returned (%.1f ms)\n",
			 t1 - t0);

	usleep(2000 * 1000);
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	for (long i = 0; i < threads; i++) {
		struct worker *w = &workers[i];

		pthread_join(w->thread, NULL);
		before += w->accesses - w->after;
		after += w->after;
		faults += w->faults_after;
		stale += w->stale;
		remaps += w->remaps;
		if (!w->faults_after)
			idle++;
	}
	ksft_print_msg("%ld threads: %lu accesses before the removal returned, %lu after\n",
		       threads, before, after);
	ksft_print_msg("after it: %lu SIGBUS, %lu succeeded; %lu fresh mappings in all\n",
		       faults, stale, remaps);
	if (early_notices)
		ksft_print_msg("%lu early poison notices (BUS_MCEERR_AO)\n", early_notices);
	ksft_test_result(stale == 0, "no access succeeded after the removal returned\n");
	ksft_test_result(idle == 0 && before > 0,
			 "every thread ran before and faulted after the removal\n");
	ksft_test_result(munmap(map, size) == 0 && close(fd) == 0,
			 "the mapping unmaps and the file closes\n");
	ksft_finished();
}
