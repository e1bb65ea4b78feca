#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The owners of claims as modules, as distributions build them: a module
# whose claims are live cannot be unloaded, no claim outlives its owner's
# module, and after the storage modules are unloaded and loaded again a
# removal is still revoked in one call per owner.
#
# Needs a modular kernel with libnvdimm, pmem, device-dax, device-mapper,
# XFS and ext4 as modules, one NVDIMM region of at least 1 GiB, ndctl,
# mkfs.xfs, mkfs.ext4, e2fsck and dmsetup; destroys everything on the
# region.

DIR=$(cd "$(dirname "$0")" && pwd)
. "$DIR/ktap_helpers.sh"
. "$DIR/dax_lib.sh"

MNT=/mnt/module_failure
SIZE_MB=16
PROBE="$DIR/dax_stale_mapping"
DEVICES=/sys/kernel/debug/dev_pagemap_failure/devices
# The owners under test; dm_mod holds dm-linear and dm-stripe.
OWNERS="xfs ext4 dm_log_writes dm_writecache dm_mod"
STACK="nfit nd_pmem dax_pmem device_dax $OWNERS"

ktap_print_header
ktap_set_plan 13

loaded() {
	for m in "$@"; do
		grep -q "^$m " /proc/modules || return 1
	done
}

# The number of claims on device DEV, live or dead.
claims_on() {
	awk -v dev="$1" '$1 == dev { sub("claims=", "", $3); print $3; exit }' "$DEVICES"
}

if [ ! -e /proc/modules ]; then
	ktap_exit_fail_msg "this kernel has no module support; the debug variant must be modular"
fi
ktap_test_result "the storage stack is loaded as modules ($STACK)" loaded $STACK

dax_setup_namespaces fsdax 1024M
if [ ! -b "/dev/$pmem" ]; then
	ktap_exit_fail_msg "no fsdax namespace; nothing else can run"
fi
mkdir -p "$MNT"

# A mounted XFS holds its claim, and so its module.
mkfs.xfs -f -q -m rmapbt=1 "/dev/$pmem" && mount -o dax=always "/dev/$pmem" "$MNT"
ktap_print_msg "$(grep -A1 "^$pmem " "$DEVICES" | tr '\n' ' ')"
[ "$(claims_on "$pmem")" = 1 ] && ! rmmod xfs 2>/dev/null && loaded xfs
result "xfs cannot be unloaded while its claim on $pmem is live"
umount "$MNT"

# A dm-linear table holds its claim on the pmem device below, and dm_mod.
sectors=$(cat "/sys/block/$pmem/size")
dmsetup create dpf-mod --table "0 $sectors linear /dev/$pmem 0"
ktap_print_msg "$(grep -A1 "^$pmem " "$DEVICES" | tr '\n' ' ')"
grep -A1 "^$pmem " "$DEVICES" | grep -q " dm shared$" && ! rmmod dm_mod 2>/dev/null && loaded dm_mod
result "dm_mod cannot be unloaded while its table claims $pmem"
dmsetup remove dpf-mod
[ "$(claims_on "$pmem")" = 0 ]
result "the claims go with the filesystem and the table"

# Unused, every owner unloads; no claim is left behind for the unloaded code
# (reading debugfs walks every claim's owner name).
for m in $OWNERS; do
	rmmod "$m" 2>/dev/null
done
! loaded xfs && ! loaded ext4 && ! loaded dm_writecache && ! loaded dm_log_writes && ! loaded dm_mod
result "unused, xfs, ext4, dm-writecache, dm-log-writes and dm_mod unload"
! grep -q "^  claim" "$DEVICES"
result "no claim outlives its owner's module"

for m in $OWNERS; do
	modprobe "$m"
done
ktap_test_result "and load again" loaded $OWNERS

# After the reload, a removal under a mapping is still one call to XFS.
mkfs.xfs -f -q -m rmapbt=1 "/dev/$pmem" && mount -o dax=always "/dev/$pmem" "$MNT" &&
	xfs_io -f -c "falloc 0 ${SIZE_MB}m" "$MNT/data"
result "after the reload: XFS mounted dax=always on $pmem"
unbind=$(dax_unbind_arg "$pmem")
run_probe "after the reload: no page readable or writable after removal" \
	"$PROBE" -e 64 -s "$SIZE_MB" -r "$unbind" "$MNT/data"
dispatches=$(dpf_counter "$pmem" dead dispatches)
fallback=$(dpf_counter "$pmem" dead fallback_pages)
ktap_print_msg "dispatches ${dispatches:-?}, fallback pages ${fallback:-?}"
[ "${dispatches:-x}" = 1 ] && [ "${fallback:-x}" = 0 ]
result "after the reload: one dispatch to XFS, no fallback"
ktap_test_result "after the reload: filesystem unmounts after removal" umount "$MNT"
ktap_test_result "after the reload: device comes back" dax_rebind "$unbind"

# ext4 from the reloaded module: a file written, synced and checked clean.
dax_wait_blockdev "$pmem"
mkfs.ext4 -q -F "/dev/$pmem" && mount -t ext4 -o dax "/dev/$pmem" "$MNT" &&
	xfs_io -f -c "pwrite -q 0 1m" -c fsync "$MNT/file" && umount "$MNT" &&
	e2fsck -fn "/dev/$pmem" >/dev/null 2>&1
result "ext4 (dax) from the reloaded module: written, unmounted, e2fsck -fn clean"

ktap_finished
