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
# Needs one NVDIMM region of at least 1.5 GiB with a label area, ndctl,
# dmsetup, mkfs.xfs and a kernel with CONFIG_DEV_PAGEMAP_FAILURE, debugfs
# and dm-writecache; destroys everything on that region.

DIR=$(cd "$(dirname "$0")" && pwd)
. "$DIR/ktap_helpers.sh"
. "$DIR/dax_lib.sh"

MNT=/mnt/writecache_failure
DEVICES=/sys/kernel/debug/dev_pagemap_failure/devices

ktap_print_header
ktap_set_plan 8
dpf_set_mode "${DPF_TEST_MODE:-ranged}"

dax_setup_namespaces fsdax 512M fsdax 768M
set -- $pmems
cache=$1 origin=$2
[ -b "/dev/$cache" ] && [ -b "/dev/$origin" ] ||
	ktap_exit_fail_msg "no namespaces; nothing else can run"
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
