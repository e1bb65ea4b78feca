// SPDX-License-Identifier: GPL-2.0
/*
 * Benchmark helper: the cost of revoking DAX mappings.
 *
 *   dax_bench -s MiB -r FILE=VALUE PATH...
 *	Fork one process per PATH; each maps MiB of it MAP_SHARED and writes
 *	every page. Then write VALUE to FILE (a sysfs unbind: the removal) and
 *	time the write. Afterwards each process touches 16 pages spread over
 *	its mapping, which must all raise SIGBUS (the mappings are revoked).
 *   dax_bench -s MiB -u PATH...
 *	The same processes unmap their mappings themselves (munmap()): the
 *	limit a removal cannot beat, since it must at least zap what is
 *	mapped. Timed from the first process starting to unmap until the last
 *	one has finished.
 *   dax_bench -s MiB -u -m PATH...
 *	The same, but each process first writes its dirty pages back
 *	(msync(MS_SYNC)) and then unmaps: the limit for a revocation that,
 *	like a removal, loses no data. Prints "msync_munmap_ms=T".
 *
 *   dax_bench -s MiB -S DIR PATH...
 *	The same processes map and write; then syncfs() of the filesystem of
 *	DIR is timed while their dirty mappings are live, as a removal finds
 *	them, before they unmap. Prints "syncfs_ms=T": the filesystem's own
 *	writeback, which a revocation that loses no data does first.
 *
 *   dax_bench -r FILE=VALUE [-W KB]
 *	Only time the write of VALUE to FILE (e.g. a poison range to
 *	dev_pagemap_failure's inject_range). With -W, failures that the
 *	kernel handles in the background (pages queued to queue_pfns, a
 *	machine check requested from the host): also wait until
 *	HardwareCorrupted has grown by KB, or has not moved for 5 s, and print
 *	"drain_ms=T handled_kb=N", T from the write to the last growth.
 *
 *   -p PROFILE (with -r)
 *	Sample where the write spends its time: it is made by a process of
 *	its own, and this process reads that one's kernel stack
 *	(/proc/PID/stack) every millisecond until the write returns, both on
 *	CPU 0, this one SCHED_FIFO, so that each read preempts the writer and
 *	finds its stack as it was at that moment. The stacks go to PROFILE,
 *	each followed by a line "--". The sampling slows the write down: a
 *	profile's write time is not a measurement.
 *
 * Prints one line "removal_ms=T revoked=N/M ret=E", "munmap_ms=T",
 * "msync_munmap_ms=T", "syncfs_ms=T" or "write_ms=T ret=E" and exits 0, or non-zero if
 * anything failed (a mapping that survived a removal too).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <sched.h>
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

#define MAX_PROCS 16
#define PROBES 16

struct result {
	double start_ms, end_ms;	/* [msync and] munmap, CLOCK_MONOTONIC */
	int sigbus;			/* probes that raised SIGBUS */
	int err;
};

static sigjmp_buf fault_jmp;
static int probing;

/*
 * A SIGBUS raised by a probe jumps back to it. One the kernel sends while
 * the process waits (upstream kills the mapping processes during the
 * removal) is ignored: the process must live on to be probed.
 */
static void on_sigbus(int sig)
{
	(void)sig;
	if (__atomic_load_n(&probing, __ATOMIC_RELAXED))
		siglongjmp(fault_jmp, 1);
}

/* Touch page P of MAP; true if it raised SIGBUS. */
static bool faults(char *map, long page_size, long p)
{
	if (sigsetjmp(fault_jmp, 1))
		return true;
	/* An atomic load: the compiler may neither drop nor move it. */
	(void)__atomic_load_n(map + p * page_size, __ATOMIC_RELAXED);
	return false;
}

static void child(const char *path, size_t size, bool unmap, bool sync,
		  int ready_fd, int go_fd, int result_fd)
{
	long page_size = sysconf(_SC_PAGESIZE), pages = size / page_size;
	struct result r = { 0 };
	char *map, c;
	int fd;

	signal(SIGBUS, on_sigbus);
	fd = open(path, O_RDWR);
	map = fd < 0 ? MAP_FAILED :
		mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		r.err = errno;
	} else {
		close(fd);
		for (long p = 0; p < pages; p++)
			map[p * page_size] = (char)p;
	}
	if (write(ready_fd, "r", 1) != 1 || read(go_fd, &c, 1) != 1)
		exit(2);
	if (!r.err && unmap) {
		r.start_ms = now_ms();
		if (sync && msync(map, size, MS_SYNC))
			r.err = errno;
		if (munmap(map, size) && !r.err)
			r.err = errno;
		r.end_ms = now_ms();
	} else if (!r.err) {
		__atomic_store_n(&probing, 1, __ATOMIC_RELAXED);
		for (int i = 0; i < PROBES; i++)
			r.sigbus += faults(map, page_size, i * (pages - 1) / (PROBES - 1));
		__atomic_store_n(&probing, 0, __ATOMIC_RELAXED);
		munmap(map, size);
	}
	if (write(result_fd, &r, sizeof(r)) != sizeof(r))
		exit(2);
	exit(0);
}

/*
 * Wait until HardwareCorrupted has grown by KB from BASE, or has not moved
 * for STILL_MS; the time of its last growth in *END_MS. Polled every 5 ms:
 * the guest may have one host thread, which the poll takes from the worker.
 */
#define STILL_MS 5000
static long wait_accounted(long base, long kb, double *end_ms)
{
	long last = base, now;

	*end_ms = now_ms();
	while ((now = hw_corrupted_kb()) >= 0 && now - base < kb) {
		if (now != last) {
			last = now;
			*end_ms = now_ms();
		} else if (now_ms() - *end_ms > STILL_MS) {
			return now - base;
		}
		usleep(5000);
	}
	*end_ms = now_ms();
	return now - base;
}

/* Run the calling process on CPU 0 only. */
static int on_cpu0(void)
{
	cpu_set_t cpus;

	CPU_ZERO(&cpus);
	CPU_SET(0, &cpus);
	return sched_setaffinity(0, sizeof(cpus), &cpus);
}

/*
 * Write VALUE to FILE in a process of its own and sample its kernel stack
 * into PROFILE until the write returns (-p). Returns the write's result;
 * the write's start and end in *T0 and *T1.
 */
static int profile_write(const char *file, const char *value, const char *profile,
			 double *t0, double *t1)
{
	struct sched_param rt = { .sched_priority = 1 };
	struct timespec tick = { .tv_nsec = 1000000 };
	char path[64], buf[8192];
	struct { double t0, t1; int ret; } w;
	int pfd[2], out, st, status;
	ssize_t n;
	pid_t pid;

	out = open(profile, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (out < 0 || pipe(pfd) || on_cpu0())
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (!pid) {
		w.t0 = now_ms();
		w.ret = write_sysfs(file, value);
		w.t1 = now_ms();
		exit(write(pfd[1], &w, sizeof(w)) == sizeof(w) ? 0 : 1);
	}
	close(pfd[1]);
	if (sched_setscheduler(0, SCHED_FIFO, &rt))
		fprintf(stderr, "SCHED_FIFO: %s: the samples come late\n", strerror(errno));
	snprintf(path, sizeof(path), "/proc/%d/stack", pid);
	while (waitpid(pid, &status, WNOHANG) == 0) {
		st = open(path, O_RDONLY);
		n = st < 0 ? -1 : read(st, buf, sizeof(buf));
		if (st >= 0)
			close(st);
		if (n > 0 && (write(out, buf, n) != n || write(out, "--\n", 3) != 3))
			break;
		nanosleep(&tick, NULL);
	}
	rt.sched_priority = 0;
	sched_setscheduler(0, SCHED_OTHER, &rt);
	close(out);
	if (read(pfd[0], &w, sizeof(w)) != sizeof(w))
		return -EIO;
	close(pfd[0]);
	*t0 = w.t0;
	*t1 = w.t1;
	return w.ret;
}

int main(int argc, char **argv)
{
	int ready[2], go[2], res[2], opt, nprocs, sigbus = 0, failed = 0, ret = 0;
	char *remove_file = NULL, *remove_value = NULL, *profile = NULL, c;
	char *sync_dir = NULL;
	double t0 = 0, t1 = 0, first = 0, last = 0;
	size_t size = 64 << 20;
	bool unmap = false, sync = false;
	long wait_kb = -1;

	while ((opt = getopt(argc, argv, "s:r:umW:p:S:")) != -1) {
		switch (opt) {
		case 's':
			size = strtoul(optarg, NULL, 0) << 20;
			break;
		case 'r':
			remove_file = optarg;
			remove_value = strchr(optarg, '=');
			if (!remove_value)
				goto usage;
			*remove_value++ = '\0';
			break;
		case 'u':
			unmap = true;
			break;
		case 'm':
			sync = true;
			break;
		case 'W':
			wait_kb = strtol(optarg, NULL, 0);
			break;
		case 'p':
			profile = optarg;
			break;
		case 'S':
			sync_dir = optarg;
			break;
		default:
			goto usage;
		}
	}
	nprocs = argc - optind;
	if (nprocs > MAX_PROCS || !size || (unmap || sync_dir) == !!remove_file ||
	    (unmap && nprocs < 1) || (sync && !unmap) || (wait_kb >= 0 && nprocs) ||
	    (profile && (unmap || wait_kb >= 0)) ||
	    (sync_dir && (unmap || remove_file || nprocs < 1)))
		goto usage;
	/* After the timed syncfs() the processes unmap, as with -u. */
	if (sync_dir)
		unmap = true;
	if (!nprocs) {
		long base = hw_corrupted_kb(), handled;
		double end;

		if (profile) {
			ret = profile_write(remove_file, remove_value, profile, &t0, &t1);
		} else {
			t0 = now_ms();
			ret = write_sysfs(remove_file, remove_value);
			t1 = now_ms();
		}
		if (wait_kb < 0) {
			printf("write_ms=%.3f ret=%d\n", t1 - t0, ret);
			return ret != 0;
		}
		handled = wait_accounted(base, wait_kb, &end);
		printf("write_ms=%.3f drain_ms=%.3f handled_kb=%ld ret=%d\n", t1 - t0, end - t0,
		       handled, ret);
		return ret != 0;
	}
	if (pipe(ready) || pipe(go) || pipe(res))
		return 1;
	/* A child that died must not take the parent with it. */
	signal(SIGPIPE, SIG_IGN);
	for (int i = 0; i < nprocs; i++)
		if (fork() == 0)
			child(argv[optind + i], size, unmap, sync, ready[1],
			      go[0], res[1]);
	close(ready[1]);
	for (int i = 0; i < nprocs; i++) {
		if (read(ready[0], &c, 1) != 1) {
			fprintf(stderr, "a process died before it mapped\n");
			return 1;
		}
	}
	if (sync_dir) {
		int dir = open(sync_dir, O_RDONLY | O_DIRECTORY);

		if (dir < 0) {
			perror(sync_dir);
			return 1;
		}
		t0 = now_ms();
		ret = syncfs(dir) ? -errno : 0;
		t1 = now_ms();
		close(dir);
	} else if (profile) {
		ret = profile_write(remove_file, remove_value, profile, &t0, &t1);
	} else if (!unmap) {
		t0 = now_ms();
		ret = write_sysfs(remove_file, remove_value);
		t1 = now_ms();
	}
	for (int i = 0; i < nprocs; i++)
		if (write(go[1], "g", 1) != 1)
			return 1;
	close(res[1]);
	for (int i = 0; i < nprocs; i++) {
		struct result r;

		if (read(res[0], &r, sizeof(r)) != sizeof(r)) {
			fprintf(stderr, "a process died before it reported\n");
			return 1;
		}
		failed += r.err != 0;
		sigbus += r.sigbus;
		if (!i || r.start_ms < first)
			first = r.start_ms;
		if (!i || r.end_ms > last)
			last = r.end_ms;
	}
	while (wait(NULL) > 0)
		;
	if (failed) {
		fprintf(stderr, "%d processes failed to map or unmap\n", failed);
		return 1;
	}
	if (sync_dir) {
		printf("syncfs_ms=%.3f ret=%d\n", t1 - t0, ret);
		return ret != 0;
	}
	if (unmap) {
		printf("%s=%.3f\n", sync ? "msync_munmap_ms" : "munmap_ms",
		       last - first);
		return 0;
	}
	printf("removal_ms=%.3f revoked=%d/%d ret=%d\n", t1 - t0, sigbus,
	       nprocs * PROBES, ret);
	return ret || sigbus != nprocs * PROBES;
usage:
	fprintf(stderr,
		"usage: dax_bench -s MiB (-r FILE=VALUE [-p PROFILE] | -u [-m] | -S DIR)\n"
		"                 PATH...\n"
		"       dax_bench -r FILE=VALUE [-W KB | -p PROFILE]\n");
	return 1;
}
