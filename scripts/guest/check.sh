#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest side of `make check`: run the kselftests (KTAP on stdout), then ask
# kmemleak for a scan when the kernel has it. The host counts the results
# and scans the console for splats (scripts/results.sh).

# dpf.inject_lockdep_bug=1 on the command line (DPF_GUEST_ARGS) takes two
# locks in both orders first: lockdep must report it and the run go red.
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	dpf.inject_lockdep_bug=1)
		echo 1 > /sys/kernel/debug/dev_pagemap_failure/inject_lockdep_bug ;;
	esac
done

if [ -e /proc/modules ]; then
	echo "# lsmod:"
	lsmod | sed 's/^/#   /'
fi

# Each script prints its own KTAP plan; results.py adds them up.
# module_failure.sh unloads and reloads modules: it goes last.
rc=0
/dpf/selftests/dax_failure.sh || rc=1
/dpf/selftests/dm_failure.sh || rc=1
/dpf/selftests/module_failure.sh || rc=1

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
