#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest side of `make check`: run the kselftests (KTAP on stdout), then ask
# kmemleak for a scan when the kernel has it. The host counts the results
# and scans the console for splats (scripts/results.sh).

/dpf/selftests/dax_failure.sh
rc=$?

if [ -w /sys/kernel/debug/kmemleak ]; then
	echo scan > /sys/kernel/debug/kmemleak
	echo scan > /sys/kernel/debug/kmemleak
	leaks=$(cat /sys/kernel/debug/kmemleak)
	if [ -n "$leaks" ]; then
		echo "# kmemleak:"
		echo "$leaks" | sed 's/^/# /'
	fi
fi
exit $rc
