#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Real machine checks on DAX memory. The host raises them through QEMU's
# monitor (scripts/vm.sh, scripts/qemu-mce.py) when the guest asks on its
# third serial port: action-optional memory scrubbing errors, as a memory
# controller's patrol scrub reports them, at a page of a mapped file. The
# kernel takes them through the machine check handler, the NFIT driver's
# decoder (which marks the pmem device's badblocks) and memory_failure(),
# as it takes them from hardware.
#
# For XFS (rmapbt=1 and 0), ext4 -o dax=always, XFS on dm-linear and devdax:
# the page is unmapped, touching it raises SIGBUS BUS_MCEERR_AR at exactly
# its address, every other page of the file and another file keep their
# data, the filesystem stays up, the block device's badblocks and
# HardwareCorrupted grow by the page, and XFS hears of it in one call. In
# mode off (upstream) the page is marked and accounted but stays mapped:
# nobody is killed early, and upstream unmaps a DAX page only for the
# processes it kills; the poison is consumed at the next access (on real
# hardware, a second, action-required machine check). The devdax device
# has 4 KiB alignment (a huge mapping would map the poisoned page again).
# A burst of 512 errors over one 2 MiB extent: every page handled, the
# owner calls counted. An error with 2 MiB granularity on DAX memory fails
# the whole granule in one call and the NFIT decoder marks it bad (upstream
# only logs it); on RAM it is only logged, as before.
#
# Poisoned pmem stays bad for the rest of the boot (QEMU cannot clear it),
# so each scenario has a namespace of its own and this script runs last.
#
# Needs an x86 guest of scripts/vm.sh (an Intel CPU model, the monitor and
# the third serial port), one NVDIMM region of at least 2 GiB with a label
# area, ndctl, mkfs.xfs, mkfs.ext4, dmsetup, xfs_io and a kernel with
# CONFIG_DEV_PAGEMAP_FAILURE_TEST and debugfs; destroys everything on that
# region.

DIR=$(cd "$(dirname "$0")" && pwd)
. "$DIR/ktap_helpers.sh"
. "$DIR/dax_lib.sh"

MNT=/mnt/mce_failure
POISON="$DIR/dax_poison"
# MCi_MISC of a physical address with 4 KiB granularity (LSB 12), and with
# 2 MiB granularity (LSB 21).
MISC_4K=0x8c
MISC_2M=0x95

# The kB of HardwareCorrupted in /proc/meminfo.
hw_corrupted() {
	awk '$1 == "HardwareCorrupted:" { print $2 }' /proc/meminfo
}

# The sectors the badblocks of block device DEV list.
bad_sectors() {
	awk '{ n += $2 } END { print n + 0 }' "/sys/block/$1/badblocks"
}

# mce_scenario NAME MODE PMEM REGISTRY FILE OTHER: one machine check at
# page 3 of FILE, a file of the filesystem on $MNT (on pmem device PMEM;
# REGISTRY is the dax device whose owner should hear of it in one call, or
# "-"), in failure mode MODE. Four results, five with a REGISTRY in mode
# ranged.
mce_scenario() {
	local name="$1 ($2)" mode=$2 pmem=$3 reg=$4 file=$5 other=$6
	local hc bb disp hc2 bb2 disp2

	dpf_set_mode "$mode"
	hc=$(hw_corrupted) bb=$(bad_sectors "$pmem")
	[ "$reg" = - ] || disp=$(dpf_counter "$reg" live dispatches)
	if [ "$mode" = off ]; then
		run_probe "$name: as upstream, the page stays mapped, every page readable" \
			"$POISON" -p 3 -K -m $MISC_4K -w "$(scaled 60)" "$file" "$other"
	else
		run_probe "$name: SIGBUS at exactly the page, every other page intact" \
			"$POISON" -p 3 -m $MISC_4K -w "$(scaled 60)" "$file" "$other"
	fi
	hc2=$(hw_corrupted) bb2=$(bad_sectors "$pmem")
	[ "$reg" = - ] || disp2=$(dpf_counter "$reg" live dispatches)
	ktap_print_msg "$name: HardwareCorrupted $hc -> $hc2 kB, $pmem bad sectors $bb -> $bb2," \
		"${reg#-} dispatches ${disp:--} -> ${disp2:--}"
	dd if=/dev/urandom of=/tmp/mce.data bs=64k count=4 2>/dev/null
	dd if=/tmp/mce.data of="$MNT/after.$mode" bs=64k conv=fsync 2>/dev/null &&
		cmp -s /tmp/mce.data "$MNT/after.$mode"
	result "$name: the filesystem stays up (a new file written, fsynced, read back)"
	[ "$hc2" = $((hc + 4)) ]
	result "$name: HardwareCorrupted grows by 4 kB"
	[ "$bb2" = $((bb + 8)) ]
	result "$name: the badblocks of $pmem grow by the page (8 sectors)"
	if [ "$reg" != - ] && [ "$mode" = ranged ]; then
		[ -n "$disp" ] && [ "$disp2" = $((disp + 1)) ]
		result "$name: one call to the owner"
	fi
}

xfs_on() {	# xfs_on DEV MKFS_OPTS
	mkdir -p "$MNT"
	mkfs.xfs -f -q $2 "$1" && mount -o dax=always "$1" "$MNT"
}

# Two 4 MiB files in $MNT for mode MODE: $victim and $other.
files() {
	victim=$MNT/victim.$1 other=$MNT/other.$1
	xfs_io -f -c "falloc 0 4m" "$victim" && xfs_io -f -c "falloc 0 4m" "$other"
}

ktap_print_header
ktap_set_plan 50

dax_setup_namespaces fsdax 512M fsdax 512M fsdax 256M fsdax 512M devdax@4K 64M devdax@4K 64M
set -- $pmems
# shellcheck disable=SC2086
dax_ranged=$(echo $daxes | cut -d' ' -f1) dax_off=$(echo $daxes | cut -d' ' -f2)
[ $# -eq 4 ] && [ -n "$dax_ranged" ] && [ -n "$dax_off" ] ||
	ktap_exit_fail_msg "namespaces missing ($pmems,$daxes); nothing else can run"
xfs1=$1 xfs0=$2 ext4=$3 linear=$4

# 1. XFS rmapbt=1 and rmapbt=0, ext4: each scenario in mode ranged, then
#    off, on the same filesystem.
for fs in "xfs1 $xfs1 -m_rmapbt=1" "xfs0 $xfs0 -m_rmapbt=0" "ext4 $ext4 -"; do
	set -- $fs
	kind=$1 dev=$2 opts=$(echo "$3" | tr _ ' ')
	if [ "$kind" = ext4 ]; then
		mkdir -p "$MNT"
		mkfs.ext4 -q -F -b 4096 "/dev/$dev" && mount -o dax=always "/dev/$dev" "$MNT"
		name="ext4 -o dax" reg=-
	else
		xfs_on "/dev/$dev" "$opts"
		name="XFS $opts" reg=$dev
	fi
	for mode in ranged off; do
		files "$mode"
		mce_scenario "$name" "$mode" "$dev" "$reg" "$victim" "$other"
	done
	umount "$MNT"
done

# 2. XFS on dm-linear over a whole namespace: the error reaches XFS through
#    dm's claim on the pmem device and the dm device's registry.
dm_create dpf-mce "0 $(dax_sectors "$linear") linear /dev/$linear 0"
dm=$(dm_kname dpf-mce)
xfs_on /dev/mapper/dpf-mce "-m rmapbt=1"
for mode in ranged off; do
	files "$mode"
	mce_scenario "XFS on dm-linear" "$mode" "$linear" "$dm" "$victim" "$other"
done

# 3. A burst of 512 errors over one 2 MiB extent of a mapped file, in mode
#    ranged and off: every page handled; the owner calls are counted.
for mode in ranged off; do
	burst=$MNT/burst.$mode
	xfs_io -f -c "falloc 0 4m" "$burst"
	dpf_set_mode "$mode"
	hc=$(hw_corrupted)
	disp=$(dpf_counter "$dm" live dispatches)
	if [ "$mode" = off ]; then
		run_probe "burst of 512 on dm-linear ($mode): as upstream, all pages stay mapped" \
			"$POISON" -p 0 -n 512 -K -m $MISC_4K -w "$(scaled 600)" "$burst"
	else
		run_probe "burst of 512 on dm-linear ($mode): SIGBUS exactly at each page" \
			"$POISON" -p 0 -n 512 -m $MISC_4K -w "$(scaled 600)" "$burst"
	fi
	hc2=$(hw_corrupted)
	disp2=$(dpf_counter "$dm" live dispatches)
	ktap_print_msg "burst ($mode): HardwareCorrupted $hc -> $hc2 kB," \
		"$dm dispatches ${disp:-?} -> ${disp2:-?} (owner calls)"
	[ "$hc2" = $((hc + 2048)) ]
	result "burst of 512 ($mode): HardwareCorrupted grows by 2 MiB"
done
umount "$MNT"
dm_remove dpf-mce

# 4. devdax: no filesystem, the whole device mapped; a device of its own
#    for each mode, since a poisoned page stays bad.
for mode in ranged off; do
	eval "dev=\$dax_$mode"
	size=$(cat "/sys/bus/dax/devices/$dev/size")
	dpf_set_mode "$mode"
	hc=$(hw_corrupted)
	if [ "$mode" = off ]; then
		run_probe "devdax ($mode): as upstream, the page stays mapped, all readable" \
			"$POISON" -p 3 -K -m $MISC_4K -w "$(scaled 60)" -s "$size" "/dev/$dev"
	else
		run_probe "devdax ($mode): SIGBUS at exactly the page, every other page intact" \
			"$POISON" -p 3 -m $MISC_4K -w "$(scaled 60)" -s "$size" "/dev/$dev"
	fi
	hc2=$(hw_corrupted)
	ktap_print_msg "devdax ($mode): HardwareCorrupted $hc -> $hc2 kB"
	[ "$hc2" = $((hc + 4)) ]
	result "devdax ($mode): HardwareCorrupted grows by 4 kB"
done

# 5. An error reported with 2 MiB granularity (MCi_MISC LSB 21) names no
#    page. On DAX memory the whole granule is failed at once in mode
#    ranged: one call to XFS, every page of it unmapped and SIGBUS at each;
#    upstream (mode off) only logs it. On RAM (a tmpfs page) it is only
#    logged, as before.
mount -o dax=always "/dev/$xfs1" "$MNT"
for mode in ranged off; do
	coarse=$MNT/coarse.$mode
	xfs_io -f -c "falloc 0 4m" "$coarse"
	dpf_set_mode "$mode"
	hc=$(hw_corrupted) bb=$(bad_sectors "$xfs1")
	disp=$(dpf_counter "$xfs1" live dispatches)
	if [ "$mode" = ranged ]; then
		run_probe "2 MiB granule on XFS ($mode): all 512 pages failed, SIGBUS at each" \
			"$POISON" -p 0 -n 512 -g -m $MISC_2M -w "$(scaled 120)" "$coarse"
	else
		run_probe "2 MiB granule on XFS ($mode): only logged, every page intact" \
			"$POISON" -p 0 -n 512 -g -K -m $MISC_2M -w "$(scaled 15)" "$coarse"
	fi
	hc2=$(hw_corrupted) bb2=$(bad_sectors "$xfs1")
	disp2=$(dpf_counter "$xfs1" live dispatches)
	ktap_print_msg "2 MiB granule ($mode): HardwareCorrupted $hc -> $hc2 kB," \
		"$xfs1 bad sectors $bb -> $bb2, dispatches ${disp:-?} -> ${disp2:-?}"
	if [ "$mode" = ranged ]; then
		[ -n "$disp" ] && [ "$disp2" = $((disp + 1)) ]
		result "2 MiB granule ($mode): one call to XFS"
		[ "$bb2" = $((bb + 4096)) ]
		result "2 MiB granule ($mode): badblocks of $xfs1 grow by 4096 sectors"
	else
		[ "$hc2" = "$hc" ] && [ "$bb2" = "$bb" ]
		result "2 MiB granule ($mode): nothing poisoned, no bad blocks"
	fi
done
umount "$MNT"
mkdir -p /tmp/mce-ram
mount -t tmpfs -o size=1m none /tmp/mce-ram
dd if=/dev/zero of=/tmp/mce-ram/page bs=4k count=4 2>/dev/null
hc=$(hw_corrupted)
run_probe "2 MiB granule on RAM: only logged, the page intact" \
	"$POISON" -p 1 -K -m $MISC_2M -w "$(scaled 15)" /tmp/mce-ram/page
hc2=$(hw_corrupted)
[ "$hc2" = "$hc" ]
result "2 MiB granule on RAM: nothing poisoned ($hc -> $hc2 kB)"
umount /tmp/mce-ram

dpf_set_mode ranged
ktap_finished
