#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# dm-writecache in pmem mode (cache on one fsdax namespace, origin on
# another) under XFS with writes in flight: removing the cache namespace
# puts the target into its error state (new I/O fails with -EIO), nothing
# touches the removed memory (no Oops), and the filesystem unmounts, the
# table is removed and the namespace comes back. Blocks not yet written back
# to the origin are lost, by design.
#
# In mode off (upstream) nobody tells dm-writecache: the kernel Oopses in
# writecache_map at the next write to the cache.
#
# Before that, poison is not removal: on a writecache table over a
# dm-linear origin, poison in a clean cache block costs nothing (its data
# reads back from the origin), poison in a dirty block loses exactly that
# block (logged with its origin sector) and the cache keeps serving the
# others; with the origin suspended and its writeback stuck, poison in a
# fresh cache and then poison of another device both complete: the handler
# never waits for origin I/O under the mutex every memory_failure() takes.
#
# Needs one NVDIMM region of at least 1.5 GiB with a label area, ndctl,
# dmsetup, mkfs.xfs and a kernel with CONFIG_DEV_PAGEMAP_FAILURE, debugfs
# and dm-writecache; destroys everything on that region.

DIR=$(cd "$(dirname "$0")" && pwd)
. "$DIR/ktap_helpers.sh"
. "$DIR/dax_lib.sh"

MNT=/mnt/writecache_failure
DEVICES=/sys/kernel/debug/dev_pagemap_failure/devices

WORK=/tmp/writecache_failure
BS=4096

ktap_print_header
ktap_set_plan 13
dpf_set_mode "${DPF_TEST_MODE:-ranged}"

dax_setup_namespaces fsdax 512M fsdax 768M fsdax 64M
set -- $pmems
cache=$1 origin=$2 other=$3
[ -b "/dev/$cache" ] && [ -b "/dev/$origin" ] && [ -b "/dev/$other" ] ||
	ktap_exit_fail_msg "no namespaces; nothing else can run"

# Poison is not removal. A fresh writecache table over a dm-linear
# origin each time: the cache hands out its free blocks from block 0 up,
# and the watermarks keep the writeback off until a flush message.
mkdir -p "$WORK"
for f in a b c; do
	dd if=/dev/urandom of="$WORK/$f" bs=$BS count=1 2>/dev/null
done
cache_pfn=$(($(cat "/sys/block/$cache/device/resource") / 4096))
other_pfn=$(($(cat "/sys/block/$other/device/resource") / 4096))
wc_table() {
	dd if=/dev/zero of="/dev/$cache" bs=1M count=1 oflag=direct 2>/dev/null
	len=$(dax_sectors "$origin")
	dm_create dpf-wc-origin "0 $len linear /dev/$origin 0" &&
		dm_create dpf-wc \
			"0 $len writecache p /dev/mapper/dpf-wc-origin /dev/$cache 4096 0" ||
		ktap_exit_fail_msg "cannot create the writecache table; nothing else can run"
	blocks=$(wc_field 5)
}

# The origin suspended (pvmove, lvconvert), a writeback stuck on it: poison
# in a free cache block, then poison of another device, must each complete.
# This is the table's first failure: a cache already in its error state
# has no writeback to wait for.
wc_table
dd if="$WORK/a" of=/dev/mapper/dpf-wc bs=$BS seek=4000 oflag=direct 2>/dev/null
dmsetup suspend --noudevsync dpf-wc-origin
dmsetup message dpf-wc 0 flush &
flusher=$!
for i in $(seq 1 "$(scaled 50)"); do
	[ "$(wc_field 7)" != 0 ] && break
	sleep 0.1
done
ktap_print_msg "origin suspended; writeback blocks $(wc_field 7)"
dmesg -c >/dev/null
rm -f "$WORK/injected"
(echo "$(wc_pfn 10) 1" > "$INJECT"; echo "$other_pfn 1" > "$INJECT"; touch "$WORK/injected") &
injector=$!
for i in $(seq 1 "$(scaled 300)"); do
	[ -e "$WORK/injected" ] && break
	sleep 0.1
done
[ -e "$WORK/injected" ]
result "origin suspended: poison in the cache, then of another device, completes"
[ -e "$WORK/injected" ] || stacks $injector
dmsetup resume --noudevsync dpf-wc-origin
wait $flusher
wait $injector
[ "$(wc_field 4)" = 0 ] && wc_block 4000 "$WORK/a"
result "after the resume the cache serves and writes back"
dm_remove dpf-wc && dm_remove dpf-wc-origin ||
	ktap_exit_fail_msg "cannot remove the writecache table; nothing else can run"

# Block 1000 is written back (cache block 0 is clean, then free again);
# blocks 2000 and 3000 stay dirty in cache blocks 1 and 2.
wc_table
dd if="$WORK/a" of=/dev/mapper/dpf-wc bs=$BS seek=1000 oflag=direct 2>/dev/null &&
	dmsetup message dpf-wc 0 flush &&
	dd if="$WORK/b" of=/dev/mapper/dpf-wc bs=$BS seek=2000 oflag=direct 2>/dev/null &&
	dd if="$WORK/c" of=/dev/mapper/dpf-wc bs=$BS seek=3000 oflag=direct 2>/dev/null
ktap_print_msg "poison: $blocks cache blocks, pfn of block 0 $(wc_pfn 0);" \
	"status $(dmsetup status dpf-wc)"
dmesg -c >/dev/null
echo "$(wc_pfn 0) 1" > "$INJECT" && [ "$(wc_field 4)" = 0 ] && wc_block 1000 "$WORK/a"
result "poison in a clean block: the cache stays up, the data reads back from the origin"
echo "$(wc_pfn 1) 1" > "$INJECT" && [ "$(wc_field 4)" = 0 ] && wc_block 3000 "$WORK/c" &&
	! wc_block 2000 "$WORK/b" && dmesg_has "dirty data of origin sector 16000 lost"
result "poison in a dirty block: exactly that block is lost and logged, the cache keeps serving"
dmesg | grep "writecache" | sed 's/^/# /'
dm_remove dpf-wc && dm_remove dpf-wc-origin
result "the poison tables are removed"
rm -f "$WORK/injected"

# Removal.
dm_writecache dpf-wc "$cache" "$origin" ||
	ktap_exit_fail_msg "cannot create the writecache table; nothing else can run"
mkdir -p "$MNT"
mkfs.xfs -f -q /dev/mapper/dpf-wc && mount /dev/mapper/dpf-wc "$MNT"
ktap_print_msg "cache $cache, origin $origin: $(grep -A1 "^$cache state=live" "$DEVICES" |
	tr '\n' ' ')"
[ "$(dpf_claims "$cache" dm-writecache)" = 1 ]
result "dm-writecache claims its pmem cache $cache while the table is live"

# Writes in flight: the removal comes once the writer has written its
# first file (the second one is being written).
fsynced_writer "$MNT" >/dev/null &
writer=$!
for i in $(seq 1 "$(scaled 100)"); do
	[ -e "$MNT/stream.1" ] && break
	sleep 0.1
done
unbind=$(dax_unbind_arg "$cache")
dmesg -c >/dev/null
t0=$(date +%s)
dax_unbind "$unbind"
t1=$(date +%s)
ktap_print_msg "unbind of $cache returned after $((t1 - t0)) s"
stopped() {
	for i in $(seq 1 "$(scaled 60)"); do
		kill -0 "$writer" 2>/dev/null || return 0
		sleep 1
	done
	return 1
}
stopped
result "the writes in flight fail and the writer stops"
status=$(dmsetup status dpf-wc)
ktap_print_msg "dmsetup status: $status"
# "0 LEN writecache ERROR BLOCKS FREE WRITEBACK ...": ERROR is 1 once the
# target has failed; BLOCKS - FREE blocks were cached and are lost.
set -- $status
[ $# -ge 6 ] && ktap_print_msg "lost: $(($5 - $6)) blocks of 4 KiB not written back to the origin"
[ "$4" = 1 ]
result "dmsetup status shows the error state"
dmesg_has "pmem cache device removed or poisoned"
result "dm-writecache says what is lost"
umount "$MNT"
result "the filesystem unmounts"
dd if=/dev/zero of=/dev/mapper/dpf-wc bs=4096 count=1 oflag=direct 2>/dev/null
ktap_test_result "new I/O to the target fails" [ $? -ne 0 ]
ktap_test_result "dmsetup remove" dmsetup remove --noudevsync dpf-wc
dax_rebind "$unbind"
dax_wait_blockdev "$cache"
ktap_test_result "the cache namespace comes back" [ -b "/dev/$cache" ]
dpf_set_mode ranged

ktap_finished
