// SPDX-License-Identifier: GPL-2.0
/*
 * Preloaded into rasdaemon in the test guest (tools/testing/selftests/
 * dev_pagemap_failure/dax_lib.sh, ras_start).
 *
 * At start, rasdaemon polls for the format file of each tracepoint it
 * knows, for up to 30 s each (ras-events.c: wait_access()), before it
 * opens it; a file that is still missing then makes it report the
 * tracepoint as not supported. The test kernel lacks most of them (CXL,
 * AER, devlink, extlog, ARM), and under TCG those polls take minutes
 * before rasdaemon listens. This answers the poll at once for a format
 * file that does not exist, so that open() finds it missing and rasdaemon
 * goes on as it would after the wait. Nothing else changes: a tracepoint
 * that exists is found and used as before.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

int access(const char *path, int mode)
{
	static int (*real_access)(const char *path, int mode);
	int ret;

	if (!real_access)
		real_access = (int (*)(const char *, int))dlsym(RTLD_NEXT, "access");
	if (!real_access) {
		errno = ENOSYS;
		return -1;
	}
	ret = real_access(path, mode);
	if (ret && errno == ENOENT && strstr(path, "/events/") &&
	    strstr(path, "/format"))
		return 0;
	return ret;
}
