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
# DPF_LOAD_CYCLES (default 1) sets the number of cycles: make check runs
# one, make stress 20 (100 removals). With more than one cycle each
# configuration reports one result for all its cycles, and a summary line
# gives the removals, the time and the failures.
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
CONFIGS="xfs-rmapbt1 xfs-rmapbt0 ext4 xfs-dm devdax"

# note CONFIG CYCLE MESSAGE: why a cycle failed, for the log.
note() {
	ktap_print_msg "$1, cycle $2: $3"
}

# load_removal CONFIG CYCLE PATH REMOVE: dax_load on PATH removing with
# REMOVE; fails if the probe fails or its process does not exit.
load_removal() {
	local out=/tmp/dax_load.out pid
	"$LOAD" -t 8 -s 16 -r "$4" "$3" > "$out" 2>&1 &
	pid=$!
	if ! wait_gone 120 $pid; then
		note "$1" "$2" "dax_load still running 120 s after it started"
		stacks $pid
		kill -9 $pid 2>/dev/null
		return 1
	fi
	wait $pid
	local rc=$?
	sed 's/^/    /' "$out"
	[ $rc -eq 0 ] || note "$1" "$2" "dax_load failed ($rc)"
	return $rc
}

# fs_cycle CONFIG CYCLE: one removal of a filesystem configuration.
fs_cycle() {
	local config=$1 cycle=$2 dev=/dev/$pmem fsck sum unbind ok=1
	case $config in
	xfs-dm)
		dm_create dpf-load "0 $(dax_sectors "$pmem") linear /dev/$pmem 0" ||
			{ note "$config" "$cycle" "no dm device"; return 1; }
		dev=/dev/mapper/dpf-load ;;
	esac
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
	xfs_io -f -c "falloc 0 16m" "$MNT/data"
	unbind=$(dax_unbind_arg "$pmem")
	load_removal "$config" "$cycle" "$MNT/data" "$unbind" || ok=0
	umount "$MNT" || { note "$config" "$cycle" "no unmount after removal"; ok=0; }
	[ "$config" = xfs-dm ] && { dm_remove dpf-load || ok=0; }
	dax_rebind "$unbind"
	dax_wait_blockdev "$pmem" || { note "$config" "$cycle" "no $pmem after rebind"; return 1; }
	[ "$config" = xfs-dm ] &&
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
	[ "$config" = xfs-dm ] && { dm_remove dpf-load || ok=0; }
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
ktap_set_plan 5
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
ktap_print_msg "load: $((CYCLES * 5)) removals in $CYCLES cycle(s), $((t1 - t0)) s," \
	"$failed failed"
for config in $CONFIGS; do
	eval "good=\$good_$(echo $config | tr - _)"
	ktap_test_result "$config: $good of $CYCLES removals under load clean" \
		[ "$good" -eq "$CYCLES" ]
done
ktap_finished
