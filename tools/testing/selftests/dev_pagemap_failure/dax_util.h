/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers the dev_pagemap_failure test programs share.
 */
#ifndef DAX_UTIL_H
#define DAX_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Milliseconds on the monotonic clock. */
static inline double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* HardwareCorrupted of /proc/meminfo, in kB; -1 if it cannot be read. */
static inline long hw_corrupted_kb(void)
{
	char line[128];
	long kb = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "HardwareCorrupted: %ld kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

/* Write VALUE to FILE, as `echo VALUE > FILE` does; returns 0 or -errno. */
static inline int write_sysfs(const char *file, const char *value)
{
	int fd = open(file, O_WRONLY);
	int ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, value, strlen(value)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

#endif /* DAX_UTIL_H */
