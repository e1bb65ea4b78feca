#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Removal under load, and nothing lost. In each cycle, for each of XFS
# rmapbt=1, XFS rmapbt=0, ext4, XFS on dm-linear and devdax: a file is
# written and fsynced (not mapped), then dax_load keeps 8 threads faulting
# a 16 MiB mapping (with MADV_DONTNEED windows that force new faults, and
# fresh mmap()s) while it removes the namespace. No access may succeed
# after the removal returned and the process must exit. Then the
# filesystem unmounts, the namespace is bound again, the mount replays the
# log, the fsynced file is byte-identical and xfs_repair -n or e2fsck -fn
# finds nothing.
#
# Three more configurations race the removal with something else, and
# check the same things afterwards:
#   xfs-poison     a loop injects poison into the mapped file's pages
#                  (inject_range, one page at a time, each page once) for
#                  as long as dax_load runs, the removal included;
#   xfs-dm-reload  XFS on dm-linear, a loop reloads the dm table, one
#                  linear target and two in turn (the claims are replaced,
#                  not handed over), suspend and resume included;
#   umount-race    XFS with cached DAX entries and no mapping (an unmount
#                  needs no open file), unmounted while the device is
#                  removed, one started 0 to 180 ms after the other, the
#                  unmount first in half the cycles, the removal in the
#                  others; on pmem itself in odd cycles (del_gendisk()
#                  waits for s_umount) and on dm-linear in even ones
#                  (nothing serialises the two).
# Each racer must have spanned the removal: some of its operations
# succeeded (before it) and some were refused (after it: the pages and the
# block device are gone).
#
# DPF_LOAD_CYCLES (default 1) sets the number of cycles: make check runs
# one, make stress 20 (160 removals). With more than one cycle each
# configuration reports one result for all its cycles, and a summary line
# gives the removals, the time and the failures. DPF_LOAD_CONFIGS (default
# all eight, in the order above) runs only the configurations it names.
#
# Needs one NVDIMM region of at least 2 GiB with a label area, ndctl,
# dmsetup, mkfs.xfs, mkfs.ext4, xfs_repair, e2fsck, xfs_io and a kernel with
# CONFIG_DEV_PAGEMAP_FAILURE; destroys everything on that region.

DIR=$(cd "$(dirname "$0")" && pwd)
. "$DIR/ktap_helpers.sh"
. "$DIR/dax_lib.sh"

MNT=/mnt/load_failure
LOAD="$DIR/dax_load"
CYCLES=${DPF_LOAD_CYCLES:-1}
CONFIGS=${DPF_LOAD_CONFIGS:-xfs-rmapbt1 xfs-rmapbt0 ext4 xfs-dm devdax xfs-poison xfs-dm-reload \
umount-race}
NCONFIGS=$(echo $CONFIGS | wc -w)

# note CONFIG CYCLE MESSAGE: why a cycle failed, for the log.
note() {
	ktap_print_msg "$1, cycle $2: $3"
}

# poison_loop FILE: inject poison into the pages of FILE (16 MiB in one
# extent, preallocated on an empty filesystem), one page at a time in an
# order that visits each once, until /tmp/racer.stop appears.
poison_loop() {
	local pfn counts
	pfn=$("$DIR/dax_poison" -P "$1")
	counts=$(dpf_inject_until /tmp/racer.stop "$pfn" 4096 4096)
	echo "${counts% *} of ${counts#* } injections accepted" > /tmp/racer.count
}

# reload_loop DM: reload the table of the dm device DM over $pmem until
# /tmp/racer.stop appears, one linear target and two in turn.
reload_loop() {
	local sectors half n=0 ok=0
	sectors=$(dax_sectors "$pmem")
	half=$((sectors / 2))
	printf '0 %s linear /dev/%s 0\n' "$sectors" "$pmem" > /tmp/reload-1
	printf '0 %s linear /dev/%s 0\n%s %s linear /dev/%s %s\n' "$half" "$pmem" \
		"$half" "$((sectors - half))" "$pmem" "$half" > /tmp/reload-2
	while [ ! -e /tmp/racer.stop ]; do
		dmsetup reload --noudevsync "$1" "/tmp/reload-$((n % 2 + 1))" 2>/dev/null &&
			dmsetup resume --noudevsync "$1" 2>/dev/null && ok=$((ok + 1))
		n=$((n + 1))
	done
	echo "$ok of $n reloads done" > /tmp/racer.count
}

# start_racer CONFIG FILE: start what races the removal in CONFIG, if
# anything, in the background; stop_racer CONFIG CYCLE stops it, reports
# what it did and fails unless it spanned the removal.
start_racer() {
	racer=
	rm -f /tmp/racer.stop /tmp/racer.count
	case $1 in
	xfs-poison) poison_loop "$2" & ;;
	xfs-dm-reload) reload_loop dpf-load & ;;
	*) return 0 ;;
	esac
	racer=$!
}

stop_racer() {
	local count
	[ -n "$racer" ] || return 0
	touch /tmp/racer.stop
	wait_gone 60 $racer ||
		{ note "$1" "$2" "the racer does not stop"; stacks $racer; return 1; }
	count=$(cat /tmp/racer.count 2>/dev/null)
	ktap_print_msg "$1, cycle $2: ${count:-no count}"
	# shellcheck disable=SC2086
	set -- "$1" "$2" $count
	[ $# -ge 5 ] && [ "$3" -gt 0 ] && [ "$3" -lt "$5" ] && return 0
	note "$1" "$2" "the racer did not span the removal"
	return 1
}

# load_removal CONFIG CYCLE PATH REMOVE: dax_load on PATH removing with
# REMOVE, once the racer of CONFIG runs; fails if the probe fails, its
# process does not exit or the racer did nothing. The removal starts 300 to
# 800 ms into the load, a different time each cycle.
load_removal() {
	local out=/tmp/dax_load.out pid
	start_racer "$1" "$3"
	"$LOAD" -t 8 -s 16 -w $((300 + $2 * 131 % 500)) -r "$4" "$3" > "$out" 2>&1 &
	pid=$!
	if ! wait_gone 120 $pid; then
		note "$1" "$2" "dax_load still running 120 s after it started"
		stacks $pid
		kill -9 $pid 2>/dev/null
		stop_racer "$1" "$2"
		return 1
	fi
	wait $pid
	local rc=$?
	sed 's/^/    /' "$out"
	[ $rc -eq 0 ] || note "$1" "$2" "dax_load failed ($rc)"
	stop_racer "$1" "$2" || rc=1
	return $rc
}

# umount_removal CYCLE UNBIND: unmount $MNT and write UNBIND, one 0 to
# 180 ms after the other (by CYCLE; an unmount takes about 150 ms here),
# the unmount first in cycles 1, 2, 5, 6, ... and the removal first in the
# others; both must complete, and the filesystem must be unmounted at the
# end (a second umount after the removal may do it). Says whether the
# first was still running when the second started.
umount_removal() {
	local um removal rc overlap=no first=umount
	[ $((($1 - 1) / 2 % 2)) -eq 1 ] && first=removal
	dax_cached_files "$MNT"
	if [ $first = umount ]; then
		umount "$MNT" &
		um=$!
	else
		dax_unbind "$2" &
		removal=$!
	fi
	sleep "0.$(printf %02d $(($1 * 7 % 10 * 2)))"
	if [ $first = umount ]; then
		alive $um && overlap=yes
		dax_unbind "$2" &
		removal=$!
	else
		alive $removal && overlap=yes
		umount "$MNT" &
		um=$!
	fi
	if ! wait_gone 60 $um $removal; then
		note umount-race "$1" "the umount or the removal still runs 60 s later"
		stacks $um $removal
		return 1
	fi
	wait $um
	rc=$?
	ktap_print_msg "umount-race, cycle $1: $first first; umount returned $rc; the" \
		"first still ran when the second started: $overlap"
	grep -q " $MNT " /proc/mounts && ! umount "$MNT" &&
		{ note umount-race "$1" "no unmount after removal"; return 1; }
	return 0
}

# fs_cycle CONFIG CYCLE: one removal of a filesystem configuration.
fs_cycle() {
	local config=$1 cycle=$2 dev=/dev/$pmem fsck sum unbind ok=1 dm=0
	case $config in
	xfs-dm*) dm=1 ;;
	umount-race) [ $((cycle % 2)) -eq 0 ] && dm=1 ;;
	esac
	if [ $dm = 1 ]; then
		dm_create dpf-load "0 $(dax_sectors "$pmem") linear /dev/$pmem 0" ||
			{ note "$config" "$cycle" "no dm device"; return 1; }
		dev=/dev/mapper/dpf-load
	fi
	case $config in
	xfs-rmapbt0) mkfs.xfs -f -q -m rmapbt=0 "$dev" ;;
	ext4) mkfs.ext4 -q -F -b 4096 "$dev" ;;
	*) mkfs.xfs -f -q -m rmapbt=1 "$dev" ;;
	esac
	case $config in
	ext4) fsck="e2fsck -fn" ;;
	*) fsck="xfs_repair -n" ;;
	esac
	mkdir -p "$MNT"
	mount -o dax=always "$dev" "$MNT" || { note "$config" "$cycle" "no mount"; return 1; }
	xfs_io -f -c "pwrite -q -S 0x$((cycle % 9 + 1))5 0 1m" -c fsync "$MNT/keep" >/dev/null
	sum=$(md5sum < "$MNT/keep")
	unbind=$(dax_unbind_arg "$pmem")
	if [ $config = umount-race ]; then
		umount_removal "$cycle" "$unbind" || ok=0
	else
		xfs_io -f -c "falloc 0 16m" "$MNT/data"
		load_removal "$config" "$cycle" "$MNT/data" "$unbind" || ok=0
		umount "$MNT" || { note "$config" "$cycle" "no unmount after removal"; ok=0; }
	fi
	[ $dm = 1 ] && { dm_remove dpf-load || ok=0; }
	dax_rebind "$unbind"
	dax_wait_blockdev "$pmem" || { note "$config" "$cycle" "no $pmem after rebind"; return 1; }
	[ $dm = 1 ] &&
		{ dm_create dpf-load "0 $(dax_sectors "$pmem") linear /dev/$pmem 0" || return 1; }
	# The mount replays the log; then the filesystem must check clean.
	if mount -o dax=always "$dev" "$MNT"; then
		[ "$(md5sum < "$MNT/keep")" = "$sum" ] ||
			{ note "$config" "$cycle" "the fsynced file differs"; ok=0; }
		umount "$MNT" || ok=0
		$fsck "$dev" >/dev/null 2>&1 ||
			{ note "$config" "$cycle" "$fsck found damage"; ok=0; }
	else
		note "$config" "$cycle" "no mount after rebind"
		ok=0
	fi
	[ $dm = 1 ] && { dm_remove dpf-load || ok=0; }
	[ $ok = 1 ]
}

# devdax_cycle CYCLE: one removal of the devdax namespace.
devdax_cycle() {
	local unbind ok=1
	unbind=$(dax_unbind_arg "$dax")
	load_removal devdax "$1" "/dev/$dax" "$unbind" || ok=0
	dax_rebind "$unbind"
	for i in 1 2 3 4 5 6 7 8 9 10; do
		[ -c "/dev/$dax" ] && break
		sleep 0.2
	done
	[ -c "/dev/$dax" ] || { note devdax "$1" "no /dev/$dax after rebind"; ok=0; }
	[ $ok = 1 ]
}

ktap_print_header
ktap_set_plan $NCONFIGS
dpf_set_mode ranged
dax_setup_namespaces fsdax 1024M devdax 512M
ktap_print_msg "fsdax: ${pmem:-none} devdax: ${dax:-none}, $CYCLES cycle(s)"
[ -b "/dev/$pmem" ] && [ -c "/dev/$dax" ] || ktap_exit_fail_msg "no namespaces"

t0=$(date +%s)
failed=0
for config in $CONFIGS; do
	eval "good_$(echo $config | tr - _)=0"
done
cycle=1
while [ $cycle -le "$CYCLES" ]; do
	for config in $CONFIGS; do
		var=good_$(echo $config | tr - _)
		if [ $config = devdax ]; then
			devdax_cycle $cycle
		else
			fs_cycle $config $cycle
		fi
		if [ $? -eq 0 ]; then
			eval "$var=\$((\$$var + 1))"
		else
			failed=$((failed + 1))
		fi
	done
	cycle=$((cycle + 1))
done
t1=$(date +%s)
ktap_print_msg "load: $((CYCLES * NCONFIGS)) removals in $CYCLES cycle(s), $((t1 - t0)) s," \
	"$failed failed"
for config in $CONFIGS; do
	eval "good=\$good_$(echo $config | tr - _)"
	ktap_test_result "$config: $good of $CYCLES removals clean" \
		[ "$good" -eq "$CYCLES" ]
done
ktap_finished
