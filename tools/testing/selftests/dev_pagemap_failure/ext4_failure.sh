#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# ext4 -o dax=always on an fsdax namespace: ext4 claims its block device's
# part of the dax_device (all of it: a whole disk may grow); the removal of
# the namespace under two processes that map and write files reaches ext4
# in one call, which shuts it down and revokes every mapping (no page left
# to the fallback); after a rebind the filesystem mounts, a file fsynced
# before the removal is intact and e2fsck finds nothing. Poison in a file
# (MADV_HWPOISON) is declined by ext4, which has no reverse map: the
# per-page fallback kills exactly the process that maps the page.
#
# In mode off (upstream) ext4 hears of nothing: the mappings survive the
# removal, and the kernel Oopses when the processes unmap them.
#
# Needs one NVDIMM region of at least 1 GiB with a label area, ndctl,
# mkfs.ext4, e2fsck, xfs_io and a kernel with CONFIG_DEV_PAGEMAP_FAILURE
# and debugfs; destroys everything on that region.

DIR=$(cd "$(dirname "$0")" && pwd)
. "$DIR/ktap_helpers.sh"
. "$DIR/dax_lib.sh"

MNT=/mnt/ext4_failure
# Mapped by each of the two processes; see dax_failure.sh for the size.
SIZE_MB=16
PROBE="$DIR/dax_stale_mapping"
POISON="$DIR/dax_poison"
DEVICES=/sys/kernel/debug/dev_pagemap_failure/devices

ext4_mount() {
	mkdir -p "$MNT"
	mkfs.ext4 -q -F -b 4096 "/dev/$pmem" && mount -o dax=always "/dev/$pmem" "$MNT"
}

ktap_print_header
ktap_set_plan 12
dpf_set_mode "${DPF_TEST_MODE:-ranged}"

# 1. The claim: every offset of the whole disk (it may grow), owner ext4.
dax_setup_namespaces fsdax 1024M
[ -b "/dev/$pmem" ] || ktap_exit_fail_msg "no fsdax namespace; nothing else can run"
ext4_mount
ktap_print_msg "$(grep -A1 "^$pmem state=live" "$DEVICES" | tr '\n' ' ')"
claimed() {
	grep -q " $MNT ext4 .*dax=always" /proc/mounts &&
		grep -A1 "^$pmem state=live claims=1 " "$DEVICES" |
		grep -q "claim 0x0-0xfffffffffffff000 ext4"
}
ktap_test_result "ext4 mounted dax=always, its whole disk claimed (owner ext4)" claimed

# 2. Removal under two processes that map and write a file each. A file
#    written and fsynced before, and not mapped, must come back intact.
dd if=/dev/urandom of="$MNT/keep" bs=1M count=4 conv=fsync 2>/dev/null
keep_sum=$(sha256sum "$MNT/keep" | cut -d' ' -f1)
xfs_io -f -c "falloc 0 ${SIZE_MB}m" "$MNT/data1"
xfs_io -f -c "falloc 0 ${SIZE_MB}m" "$MNT/data2"
unbind=$(dax_unbind_arg "$pmem")
before=$(dpf_counter "$pmem" live dispatches)
dmesg -c >/dev/null
run_probe "ext4 removal: no page readable or writable after removal, in time (2 processes)" \
	"$PROBE" -e 64 -s "$SIZE_MB" -t "$(scaled 5000)" -r "$unbind" "$MNT/data1" "$MNT/data2"
after=$(dpf_counter "$pmem" dead dispatches)
fallback=$(dpf_counter "$pmem" dead fallback_pages)
errors=$(dpf_counter "$pmem" dead handler_errors)
kills=$(dmesg | grep -c "Sending SIGBUS")
ktap_print_msg "ext4 removal: dispatches ${before:-?} -> ${after:-?}, fallback pages" \
	"${fallback:-?}, handler errors ${errors:-?}, 'Sending SIGBUS' lines $kills"
[ -n "$before" ] && [ "$after" = $((before + 1)) ] && [ "$fallback" = 0 ] &&
	[ "$errors" = 0 ] && [ "$kills" -eq 0 ]
result "ext4 removal: one dispatch to ext4, no fallback, no per-page kills"
dmesg_has "EXT4-fs ($pmem): shut down requested"
result "ext4 removal: ext4 reports the shutdown"
ktap_test_result "ext4 removal: filesystem unmounts after removal" umount "$MNT"
ktap_test_result "ext4 removal: device comes back" dax_rebind "$unbind"
dax_wait_blockdev "$pmem"

# 3. After the rebind: the journal replays at mount, the fsynced file is
#    byte-identical, and e2fsck finds nothing.
mount -o dax=always "/dev/$pmem" "$MNT" &&
	[ "$(sha256sum "$MNT/keep" | cut -d' ' -f1)" = "$keep_sum" ]
result "ext4 after rebind: mounts, the fsynced file is byte-identical"
umount "$MNT" 2>/dev/null
fsck=$(e2fsck -fn "/dev/$pmem" 2>&1)
rc=$?
echo "$fsck" | sed 's/^/# e2fsck: /'
ktap_test_result "ext4 after rebind: e2fsck -fn is clean" [ $rc -eq 0 ]

# 4. Poison in a file: ext4 declines (it has no reverse map), the fallback
#    kills exactly the process that maps the page, at the page.
ext4_mount
xfs_io -f -c "falloc 0 4m" "$MNT/victim"
xfs_io -f -c "falloc 0 4m" "$MNT/other"
dmesg -c >/dev/null
before=$(dpf_counter "$pmem" live dispatches)
fb_before=$(dpf_counter "$pmem" live fallback_pages)
run_probe "ext4 MADV_HWPOISON: SIGBUS BUS_MCEERR_AR at the page, other file readable" \
	"$POISON" -p 3 "$MNT/victim" "$MNT/other"
after=$(dpf_counter "$pmem" live dispatches)
fb_after=$(dpf_counter "$pmem" live fallback_pages)
ktap_print_msg "ext4 MADV_HWPOISON: dispatches ${before:-?} -> ${after:-?}," \
	"fallback pages ${fb_before:-?} -> ${fb_after:-?}"
[ -n "$before" ] && [ "$after" = $((before + 1)) ] &&
	[ -n "$fb_before" ] && [ "$fb_after" = $((fb_before + 1)) ]
result "ext4 MADV_HWPOISON: one dispatch to ext4, declined, one page to the fallback"
grep -q " $MNT ext4 " /proc/mounts && ! dmesg_has "EXT4-fs ($pmem): shut down requested"
result "ext4 MADV_HWPOISON: poison in file data leaves the filesystem up"
unclaimed() {
	umount "$MNT" && ! grep -A1 "^$pmem state=live" "$DEVICES" | grep -q " ext4$"
}
ktap_test_result "ext4: unmounts, and its claim goes with it" unclaimed
dpf_set_mode ranged

ktap_finished
