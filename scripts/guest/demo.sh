#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest side of `make demo`: one removal scenario per boot, named by the
# kernel parameter dpf.scenario=. Creates the namespace, mounts XFS or ext4
# with DAX (or maps devdax), starts processes that map and write 64 MiB,
# removes the device under them and lets dax_stale_mapping report what the
# processes saw. The dm-writecache scenario instead removes the pmem cache
# under a writer and reports what the target and the writer did. Prints "DEMO <key> <value>" lines for scripts/demo.sh; a
# scenario that hangs on upstream is cut off by the host's timeout.

SEL=/dpf/selftests
. "$SEL/dax_lib.sh"
MNT=/mnt/demo
SIZE_MB=64
PROCS=2

scenario=
for arg in $(cat /proc/cmdline); do
	case "$arg" in dpf.scenario=*) scenario=${arg#dpf.scenario=} ;; esac
done
mode=$(cat /sys/module/dev_pagemap_failure/parameters/mode 2>/dev/null)
echo "DEMO scenario $scenario"
echo "DEMO mode ${mode:-none}"

mount_xfs() {	# mount_xfs DEV MKFS_OPTS...
	dev=$1
	shift
	mkdir -p "$MNT"
	mkfs.xfs -f -q "$@" "$dev" && mount -o dax=always "$dev" "$MNT" ||
		{ echo "DEMO error mkfs/mount of $dev failed"; exit 1; }
	echo "DEMO fs XFS $* on $dev, dax=always, $(dax_agcount "$dev") allocation groups"
}

# PROCS files of SIZE_MB each, in allocation group AG ("root": the root
# directory, which is AG 0).
make_files() {
	ag=$1
	files=
	for p in $(seq 1 $PROCS); do
		if [ "$ag" = root ]; then
			f=$MNT/file$p
			xfs_io -f -c "falloc 0 ${SIZE_MB}m" "$f"
		else
			f=$(dax_file_in_ag "$MNT/p$p" "$SIZE_MB" "$ag") ||
				{ echo "DEMO error no file in AG $ag"; exit 1; }
		fi
		files="$files $f"
		echo "DEMO file $f in AG $(dax_file_ag "$f")"
	done
}

# dm_create (dax_lib.sh) or give up; the device is removed at the end.
demo_dm() {	# demo_dm NAME TABLE
	dm_create "$1" "$2" || { echo "DEMO error dmsetup failed"; exit 1; }
	dmname=$1
}

# XFS on dm-writecache (cache on one namespace, origin on another, no DAX
# above it) with fsynced writes in flight; the cache namespace is removed.
# Prints what dax_stale_mapping would: the removal's time, then the outcome.
writecache() {
	dax_setup_namespaces fsdax 512M fsdax all
	set -- $pmems
	cache=$1 origin=$2
	dm_writecache demo-wc "$cache" "$origin" ||
		{ echo "DEMO error dmsetup failed"; exit 1; }
	mkdir -p "$MNT"
	mkfs.xfs -f -q /dev/mapper/demo-wc && mount /dev/mapper/demo-wc "$MNT" ||
		{ echo "DEMO error mkfs/mount failed"; exit 1; }
	echo "DEMO fs XFS on dm-writecache: cache $cache (pmem), origin $origin"
	(
		n=$(fsynced_writer "$MNT")
		echo "# after removal: the writer stopped: a write failed after $n fsynced 4 MiB files"
	) &
	writer=$!
	sleep 2
	unbind=$(dax_unbind_arg "$cache")
	echo "DEMO remove echo ${unbind#*=} > ${unbind%=*}"
	dmesg -c >/dev/null
	# busybox date has no %N: the uptime, in 10 ms steps.
	t0=$(cut -d' ' -f1 /proc/uptime)
	dax_unbind "$unbind"
	rc=$?
	t1=$(cut -d' ' -f1 /proc/uptime)
	echo "# removal: unbind of $cache returned $rc after" \
		"$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) * 1000 }') ms"
	for i in $(seq 1 30); do
		kill -0 "$writer" 2>/dev/null || break
		sleep 1
	done
	kill -0 "$writer" 2>/dev/null && echo "# the writer is still running 30 s after the removal"
	wait "$writer" 2>/dev/null
	set -- $(dmsetup status demo-wc)
	[ $# -ge 6 ] && echo "# after removal: dmsetup status error=$4," \
		"$(($5 - $6)) cached blocks of 4 KiB not written back (lost)"
	counters=$(grep "^$cache state=" /sys/kernel/debug/dev_pagemap_failure/devices 2>/dev/null)
	echo "DEMO counters ${counters:-none (no registry for $cache)}"
	if umount "$MNT" 2>/dev/null; then
		echo "DEMO umount ok"
	else
		echo "DEMO umount failed: $(umount "$MNT" 2>&1)"
	fi
	if dmsetup remove --noudevsync demo-wc 2>&1; then
		echo "DEMO dmsetup-remove ok"
	else
		echo "DEMO dmsetup-remove failed"
	fi
	echo "DEMO done"
	exit 0
}

dmname=
case "$scenario" in
dm-writecache)
	writecache
	;;
ext4)
	dax_setup_namespaces fsdax all
	target=$pmem
	mkdir -p "$MNT"
	mkfs.ext4 -q -F "/dev/$pmem" && mount -o dax "/dev/$pmem" "$MNT" ||
		{ echo "DEMO error mkfs/mount of /dev/$pmem failed"; exit 1; }
	echo "DEMO fs ext4 on /dev/$pmem, dax"
	files=
	for p in $(seq 1 $PROCS); do
		xfs_io -f -c "falloc 0 ${SIZE_MB}m" "$MNT/file$p"
		files="$files $MNT/file$p"
	done
	paths=$files
	;;
devdax)
	dax_setup_namespaces devdax 1024M
	target=$dax
	paths=
	for p in $(seq 1 $PROCS); do paths="$paths /dev/$dax"; done
	;;
xfs-rmapbt1-lastag | xfs-rmapbt1-ag0 | xfs-rmapbt0)
	dax_setup_namespaces fsdax all
	target=$pmem
	case "$scenario" in
	xfs-rmapbt0) mount_xfs "/dev/$pmem" -m rmapbt=0; make_files root ;;
	xfs-rmapbt1-ag0) mount_xfs "/dev/$pmem" -m rmapbt=1; make_files root ;;
	*) mount_xfs "/dev/$pmem" -m rmapbt=1
	   make_files $(($(dax_agcount "/dev/$pmem") - 1)) ;;
	esac
	paths=$files
	;;
dm-linear)
	dax_setup_namespaces fsdax all
	target=$pmem
	sectors=$(cat "/sys/block/$pmem/size")
	demo_dm demo-linear "0 $sectors linear /dev/$pmem 0"
	mount_xfs /dev/mapper/demo-linear -m rmapbt=1
	make_files $(($(dax_agcount /dev/mapper/demo-linear) - 1))
	paths=$files
	;;
dm-stripe)
	# Two namespaces striped in 12 MiB chunks; the first one is removed.
	chunk=24576
	dax_setup_namespaces fsdax 896M fsdax all
	set -- $pmems
	target=$1
	width=$(cat "/sys/block/$1/size")
	[ "$(cat "/sys/block/$2/size")" -lt "$width" ] && width=$(cat "/sys/block/$2/size")
	width=$((width / chunk * chunk))
	demo_dm demo-stripe "0 $((2 * width)) striped 2 $chunk /dev/$1 0 /dev/$2 0"
	mount_xfs /dev/mapper/demo-stripe -m rmapbt=1
	make_files $(($(dax_agcount /dev/mapper/demo-stripe) - 1))
	paths=$files
	;;
*)
	echo "DEMO error unknown scenario '$scenario'"
	exit 1
	;;
esac

unbind=$(dax_unbind_arg "$target")
echo "DEMO remove echo ${unbind#*=} > ${unbind%=*}"
dmesg -c >/dev/null
# shellcheck disable=SC2086
"$SEL/dax_stale_mapping" -s "$SIZE_MB" -r "$unbind" $paths
echo "DEMO probe-exit $?"
counters=$(grep "^$target state=" /sys/kernel/debug/dev_pagemap_failure/devices 2>/dev/null |
	head -n1)
echo "DEMO counters ${counters:-none (no registry for $target)}"
if [ -n "$dmname" ]; then
	dm=dm-$(dmsetup info -c --noheadings -o minor "$dmname" | tr -d ' ')
	counters=$(grep "^$dm state=" /sys/kernel/debug/dev_pagemap_failure/devices 2>/dev/null |
		head -n1)
	echo "DEMO counters ${counters:-none (no registry for $dm)}"
fi
# Not mountpoint(1): it stat()s the mount, which fails once XFS has shut down.
if grep -q " $MNT " /proc/mounts; then
	if umount "$MNT" 2>/dev/null; then
		echo "DEMO umount ok"
	else
		echo "DEMO umount failed: $(umount "$MNT" 2>&1)"
	fi
fi
if [ -n "$dmname" ]; then
	if dmsetup remove --noudevsync "$dmname" 2>&1; then
		echo "DEMO dmsetup-remove ok"
	else
		echo "DEMO dmsetup-remove failed"
	fi
fi
echo "DEMO done"
