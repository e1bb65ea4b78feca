#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest side of `make check`: run the kselftests (KTAP on stdout), then ask
# kmemleak for a scan when the kernel has it. The host counts the results
# and scans the console for splats (scripts/results.sh).

# dpf.inject_lockdep_bug=1 on the command line (DPF_GUEST_ARGS) takes two
# locks in both orders first: lockdep must report it and the run go red.
# dpf.only=NAME[,NAME...] runs only the selftests NAME.sh, and
# dpf.test_mode=MODE runs the scripts that honour it in that failure mode
# (off shows upstream): for a developer's `make vm VARIANT=debug
# SCRIPT=check`, never in make check. dpf.load_cycles=N sets the cycles of
# load_failure.sh (make stress), dpf.load_configs=A,B its configurations.
only=
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	dpf.inject_lockdep_bug=1)
		echo 1 > /sys/kernel/debug/dev_pagemap_failure/inject_lockdep_bug ;;
	dpf.only=*) only=${arg#dpf.only=} ;;
	dpf.test_mode=*) export DPF_TEST_MODE="${arg#dpf.test_mode=}" ;;
	dpf.load_cycles=*) export DPF_LOAD_CYCLES="${arg#dpf.load_cycles=}" ;;
	dpf.load_configs=*) arg=${arg#dpf.load_configs=}
		export DPF_LOAD_CONFIGS="$(echo "$arg" | tr , ' ')" ;;
	esac
done

if [ -e /proc/modules ]; then
	echo "# lsmod:"
	lsmod | sed 's/^/#   /'
fi

# Each script prints its own KTAP plan; results.py adds them up.
# module_failure.sh unloads and reloads modules: it goes last.
rc=0
for t in dax_failure ext4_failure dm_failure writecache_failure load_failure module_failure; do
	case ",${only:-$t}," in
	*",$t,"*) ;;
	*) continue ;;
	esac
	started=$(cut -d. -f1 /proc/uptime)
	"/dpf/selftests/$t.sh" || rc=1
	echo "# $t.sh: $(($(cut -d. -f1 /proc/uptime) - started)) s"
done

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
