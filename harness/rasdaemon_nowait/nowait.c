// SPDX-License-Identifier: GPL-2.0
/*
 * Preloaded into rasdaemon in the test guest (tools/testing/selftests/
 * dev_pagemap_failure/dax_lib.sh, ras_start).
 *
 * At start, rasdaemon waits up to 30 s, in 1 ms sleeps, for the format file
 * of each tracepoint it knows to appear (ras-events.c: wait_access()). The
 * test kernel lacks most of them (CXL, AER, devlink, extlog, ARM), and
 * under TCG those waits would add minutes before it listens. This makes its
 * only sleeps, those polls (and a retry of a busy sqlite open), return at
 * once: it still polls each file 30000 times, so a tracepoint that exists
 * is found as before, and nothing else about rasdaemon changes.
 */
#include <unistd.h>

int usleep(useconds_t usec)
{
	(void)usec;
	return 0;
}
