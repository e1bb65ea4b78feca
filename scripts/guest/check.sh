#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest side of `make check`: run the kselftests (KTAP on stdout), then ask
# kmemleak for a scan when the kernel has it. The host counts the results
# and scans the console for splats (scripts/results.py).

# dpf.inject_lockdep_bug=1 on the command line (DPF_GUEST_ARGS) loads the
# harness's module that takes two locks in both orders
# (harness/lockdep_inject/): lockdep must report it and the run go red.
# dpf.only=NAME[,NAME...] runs only the selftests NAME.sh, and
# dpf.test_mode=MODE runs the scripts that honour it in that failure mode
# (off shows upstream): for a developer's `make vm VARIANT=debug
# SCRIPT=check`, never in make check. dpf.variant=plain (scripts/vm.sh -k
# plain) runs only what a kernel without the ranged core can.
# dpf.load_cycles=N sets the cycles of
# load_failure.sh (make stress), dpf.load_configs=A,B its configurations.
only= variant=
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	dpf.variant=*) variant=${arg#dpf.variant=} ;;
	dpf.inject_lockdep_bug=1)
		insmod /dpf/lockdep_inject.ko ;;
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

# dpf_uptime (the guest's uptime in whole seconds) and the selftests' other
# helpers.
. /dpf/selftests/dax_lib.sh

# A selftest that prints nothing for this long has stalled: 300 s on the
# reference machine (the longest silence of a correct run there is a
# removal in mode pfn, about 40 s), scaled by the slowdown that /init
# measured.
STALL_S=$((300 * ${DPF_SLOWDOWN:-100} / 100))

# stall_report SID: the kernel stacks of every process of session SID, and
# the blocked tasks of the whole system in the kernel log (sysrq w).
stall_report() {
	local stat pid sid comm
	for stat in /proc/[0-9]*/stat; do
		read -r pid comm _ _ _ sid _ < "$stat" 2>/dev/null || continue
		[ "$sid" = "$1" ] || continue
		echo "# stalled: kernel stack of $pid $comm:"
		sed 's/^/#   /' "/proc/$pid/stack" 2>/dev/null
	done
	echo w > /proc/sysrq-trigger 2>/dev/null
}

# watchdog SID NAME: every 5 s, has the selftest of session SID printed
# since (/tmp/beat newer than /tmp/mark)? After STALL_S s of silence,
# report its stacks and kill the session; the tests it never reported
# count as failed (scripts/results.py). If even SIGKILL does not end it
# (a task stuck in the kernel), nothing else can run: power off, and the
# host reports the guest run as unfinished.
watchdog() {
	local quiet=0 i
	: > /tmp/mark
	while sleep 5; do
		if [ /tmp/beat -nt /tmp/mark ]; then
			quiet=0
		else
			quiet=$((quiet + 5))
		fi
		echo > /tmp/mark
		[ $quiet -ge $STALL_S ] || continue
		echo "# $2.sh: stalled: no output for $quiet s (limit $STALL_S s); killing it"
		stall_report "$1"
		kill -KILL -- "-$1" 2>/dev/null
		for i in 1 2 3 4 5 6; do
			sleep 5
			kill -0 -- "-$1" 2>/dev/null || return 0
		done
		echo "# $2.sh: stalled tasks survive SIGKILL; ending the guest run"
		stall_report "$1"
		sync
		poweroff -f
	done
}

# run_watched NAME: run selftest NAME.sh in a session of its own under the
# watchdog, passing its output on line by line; each top-level KTAP result
# is timed, and the times are printed when the script ends, so a slow
# machine's log says which tests its time went to.
run_watched() {
	local name=$1 pid wd rc line now last started times=/tmp/times.$1
	rm -f /tmp/out.fifo "$times"
	mkfifo /tmp/out.fifo
	echo > /tmp/beat
	setsid "/dpf/selftests/$name.sh" > /tmp/out.fifo 2>&1 &
	pid=$!
	watchdog "$pid" "$name" &
	wd=$!
	started=$(dpf_uptime)
	last=$started
	while IFS= read -r line; do
		printf '%s\n' "$line"
		echo > /tmp/beat
		case $line in
		"ok "*|"not ok "*)
			now=$(dpf_uptime)
			echo "#   $((now - last)) s  ${line#*ok }" >> "$times"
			last=$now ;;
		esac
	done < /tmp/out.fifo
	wait "$pid"
	rc=$?
	kill "$wd" 2>/dev/null
	wait "$wd" 2>/dev/null
	echo "# $name.sh: $(($(dpf_uptime) - started)) s; per test (since the one before):"
	cat "$times" 2>/dev/null
	return $rc
}

# The plain variant (no Rust, so no ranged core) runs the removal tests
# that need none: unsynced_failure.sh's plain cases.
[ "$variant" = plain ] && only=${only:-unsynced_failure}

# Each script prints its own KTAP plan; results.py adds them up.
# module_failure.sh unloads and reloads modules, and queue_failure.sh and
# mce_failure.sh leave pmem poisoned for the rest of the boot: they go last.
rc=0
echo "# slowdown ${DPF_SLOWDOWN:-100}%: a selftest silent for $STALL_S s is stalled"
for t in dax_failure ext4_failure dm_failure writecache_failure unsynced_failure \
	load_failure module_failure queue_failure mce_failure; do
	case ",${only:-$t}," in
	*",$t,"*) ;;
	*) continue ;;
	esac
	run_watched "$t" || rc=1
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
