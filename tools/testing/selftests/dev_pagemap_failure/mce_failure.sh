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
# HardwareCorrupted grow by the page, rasdaemon records it in its database,
# and XFS hears of it in one call. In
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
# dm-writecache in pmem mode maps nothing: an error in a dirty cache block
# reaches its claim in mode ranged, which drops exactly that block (its
# data is lost and logged with the origin sector) and keeps serving the
# others. Upstream (mode off) tells nobody: the block stays in the cache
# and is read from it again (QEMU's memory is not really bad; on hardware
# that read would consume the poison).
#
# Poisoned pmem stays bad for the rest of the boot (QEMU cannot clear it),
# so each scenario has a namespace of its own and this script runs last.
#
# Needs an x86 guest of scripts/vm.sh (an Intel CPU model, the monitor and
# the third serial port), one NVDIMM region of at least 2 GiB with a label
# area, ndctl, mkfs.xfs, mkfs.ext4, dmsetup, xfs_io, rasdaemon and a kernel with
# CONFIG_DEV_PAGEMAP_FAILURE_TEST, dm-writecache and debugfs; destroys
# everything on that region.

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
# ranged; one more for rasdaemon's record of the page.
mce_scenario() {
	local name="$1 ($2)" mode=$2 pmem=$3 reg=$4 file=$5 other=$6
	local hc bb disp hc2 bb2 disp2

	dpf_set_mode "$mode"
	hc=$(hw_corrupted) bb=$(bad_sectors "$pmem")
	[ "$reg" = - ] || disp=$(dpf_counter "$reg" live dispatches)
	ras_mark
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
	set -- $(ras_new 1)
	[ "$1" = 1 ] && [ "$2" = 1 ]
	result "$name: rasdaemon records the page ($1 records)"
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
ktap_set_plan 68

ras_start
result "rasdaemon records memory failures"

dax_setup_namespaces fsdax 512M fsdax 512M fsdax 256M fsdax 512M devdax@4K 64M devdax@4K 64M \
	fsdax 64M
set -- $pmems
# shellcheck disable=SC2086
dax_ranged=$(echo $daxes | cut -d' ' -f1) dax_off=$(echo $daxes | cut -d' ' -f2)
[ $# -eq 5 ] && [ -n "$dax_ranged" ] && [ -n "$dax_off" ] ||
	ktap_exit_fail_msg "namespaces missing ($pmems,$daxes); nothing else can run"
xfs1=$1 xfs0=$2 ext4=$3 linear=$4 wc=$5

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
	ras_mark
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
	set -- $(ras_new 512)
	[ "$1" = 512 ] && [ "$2" = 512 ] && [ "$3" = 512 ]
	result "burst of 512 ($mode): rasdaemon records each page ($1 records of $2 pages)"
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
	ras_mark
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
		set -- $(ras_new 512)
		[ "$1" = 512 ] && [ "$2" = 512 ] && [ "$3" = 512 ]
		result "2 MiB granule ($mode): rasdaemon records each page ($1 records of $2 pages)"
	else
		set -- $(ras_new 0)
		[ "$hc2" = "$hc" ] && [ "$bb2" = "$bb" ] && [ "$1" = 0 ]
		result "2 MiB granule ($mode): nothing poisoned, no bad blocks, no record"
	fi
done
umount "$MNT"

# 6. dm-writecache: an error in a dirty cache block. The origin is the last
#    64 MiB of the dm-linear scenario's namespace, where nothing was
#    poisoned (checked).
origin_len=131072 origin_start=$(($(dax_sectors "$linear") - 131072))
awk -v s="$origin_start" -v n="$origin_len" '$1 < s + n && $1 + $2 > s { bad = 1 }
	END { exit bad }' "/sys/block/$linear/badblocks" ||
	ktap_exit_fail_msg "the origin's sectors of $linear are bad; nothing else can run"
mkdir -p /tmp/mce-wc
for f in a b c; do
	dd if=/dev/urandom of="/tmp/mce-wc/$f" bs=4096 count=1 2>/dev/null
done
dd if=/dev/zero of="/dev/$wc" bs=1M count=1 oflag=direct 2>/dev/null
dm_create dpf-wc-origin "0 $origin_len linear /dev/$linear $origin_start" &&
	dm_create dpf-wc "0 $origin_len writecache p /dev/mapper/dpf-wc-origin /dev/$wc 4096 0" ||
	ktap_exit_fail_msg "cannot create the writecache table; nothing else can run"
cache_pfn=$(($(cat "/sys/block/$wc/device/resource") / 4096)) blocks=$(wc_field 5)
# Dirty blocks: 2000 in cache block 0, 3000 in cache block 1.
dd if=/tmp/mce-wc/b of=/dev/mapper/dpf-wc bs=4096 seek=2000 oflag=direct 2>/dev/null &&
	dd if=/tmp/mce-wc/c of=/dev/mapper/dpf-wc bs=4096 seek=3000 oflag=direct 2>/dev/null
for mode in ranged off; do
	dpf_set_mode "$mode"
	dmesg -c >/dev/null
	if [ "$mode" = ranged ]; then
		block=0 sector=16000
	else
		# Cache block 0 is out of service: block 4000 goes to block 2.
		dd if=/tmp/mce-wc/a of=/dev/mapper/dpf-wc bs=4096 seek=4000 oflag=direct \
			2>/dev/null
		block=2 sector=32000
	fi
	hc=$(hw_corrupted) bb=$(bad_sectors "$wc") disp=$(dpf_counter "$wc" live dispatches)
	printf 'mce %#x %#x 1 0x1000\n' $(($(wc_pfn $block) * 4096)) $MISC_4K > /dev/ttyS2
	for i in $(seq 1 "$(scaled 600)"); do
		[ "$(hw_corrupted)" -gt "$hc" ] && break
		sleep 0.1
	done
	sleep 1
	hc2=$(hw_corrupted) bb2=$(bad_sectors "$wc") disp2=$(dpf_counter "$wc" live dispatches)
	ktap_print_msg "dm-writecache ($mode): cache block $block (pfn $(wc_pfn $block))," \
		"HardwareCorrupted $hc -> $hc2 kB, $wc bad sectors $bb -> $bb2," \
		"dispatches ${disp:-?} -> ${disp2:-?}; status $(dmsetup status dpf-wc)"
	dmesg | grep writecache | sed 's/^/# /'
	[ "$hc2" = $((hc + 4)) ] && [ "$bb2" = $((bb + 8)) ]
	result "dm-writecache ($mode): the machine check is handled, 4 kB and 8 sectors bad"
	if [ "$mode" = ranged ]; then
		[ "$(wc_field 4)" = 0 ] && wc_block 3000 /tmp/mce-wc/c &&
			! wc_block 2000 /tmp/mce-wc/b &&
			dmesg_has "dirty data of origin sector $sector lost"
		result "dm-writecache ($mode): the dirty block is lost and logged, the cache serves"
		[ -n "$disp" ] && [ "$disp2" = $((disp + 1)) ]
		result "dm-writecache ($mode): one call to the cache's owner"
	else
		[ "$(wc_field 4)" = 0 ] && wc_block 4000 /tmp/mce-wc/a &&
			wc_block 3000 /tmp/mce-wc/c && ! dmesg_has "origin sector"
		result "dm-writecache ($mode): as upstream, nobody is told, the block is read again"
	fi
done
dm_remove dpf-wc && dm_remove dpf-wc-origin
result "dm-writecache: the tables are removed"

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

ras_stop
dpf_set_mode ranged
ktap_finished
