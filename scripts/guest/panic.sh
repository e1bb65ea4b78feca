#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest side of make check's recovery check (scripts/check.sh): with
# vm.memory_failure_recovery=0, a ranged failure of device memory must
# panic, as memory_failure() of one page does, before anyone handles it.
# XFS maps a file on the range. Prints DPF-PANIC-INJECT before the failure
# and DPF-PANIC-SURVIVED if the kernel lives on; the host looks for the
# panic on the console.
SEL=/dpf/selftests
. "$SEL/dax_lib.sh"
dax_setup_namespaces fsdax 512M
[ -n "$pmem" ] || { echo "no namespace"; exit 1; }
mkdir -p /mnt/panic
mkfs.xfs -f -q -m rmapbt=1 "/dev/$pmem" && mount -o dax=always "/dev/$pmem" /mnt/panic &&
	xfs_io -f -c "falloc 0 1m" /mnt/panic/file || exit 1
pfn=$("$SEL/dax_poison" -P /mnt/panic/file) || exit 1
echo 0 > /proc/sys/vm/memory_failure_recovery || exit 1
echo "DPF-PANIC-INJECT $pfn 16"
echo "$pfn 16" > "$INJECT"
echo "DPF-PANIC-SURVIVED $?"
