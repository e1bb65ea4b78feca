#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# An orderly removal keeps every byte that upstream keeps, synced or not.
#
# For ext4 (without and with -o dax) and XFS (dax=never, dax=inode, the
# default, and dax=always): write some work and do not sync it (a new
# file, an overwrite of a file synced before, a mkdir and a rename), unbind
# the fsdax namespace, rebind it, mount, and compare every byte and name;
# e2fsck -fn or xfs_repair -n must be clean. Upstream keeps the work:
# del_gendisk() syncs every filesystem on the disk before it shuts it down.
# So must the ranged removal, which reaches the filesystem first.
#
# On pmem directly, in mode ranged and in mode off (upstream): the two
# agree. On dm-linear over pmem only mode ranged (upstream tells nobody
# above dm, and its stale mappings Oops). Once more on XFS dax=always with
# a process storing through a DAX mapping of a preallocated file when the
# device goes: what it stored is on the media after the rebind.
#
# Then an orderly removal under a filesystem that claims nothing of the
# device (erofs -o dax=always, read-only, no holder operations), with a
# process mapping a file: the removal's fallback revokes the mapping, and
# it is not a hardware error: no "hardware memory corruption" line and
# HardwareCorrupted unchanged.
#
# In a kernel without the ranged core (no Rust: the plain variant,
# dpf.variant=plain on the command line) there is no registry and no mode:
# XFS (with and without rmapbt) and ext4 -o dax hear of the removal from
# kill_dax(), as the dax_device's holder, and run the same sync and
# revocation. There the unsynced cases run on pmem directly, and the mapped
# case for each of them: no page stays readable after the removal.
#
# Periodic writeback, the ext4 journal's commit timer and XFS's log worker
# are held off for the run, so that nothing but the removal syncs the work.
#
# Needs one NVDIMM region of at least 512 MiB with a label area, ndctl,
# mkfs.ext4, e2fsck, mkfs.xfs, xfs_repair, xfs_io, dmsetup, mkfs.erofs and
# a kernel with erofs (CONFIG_EROFS_FS); destroys
# everything on that region.

DIR=$(cd "$(dirname "$0")" && pwd)
. "$DIR/ktap_helpers.sh"
. "$DIR/dax_lib.sh"

MNT=/mnt/unsynced_failure
WORK=/tmp/unsynced_failure
PROBE="$DIR/dax_stale_mapping"
# Mapped and stored through by the probe, in the case with a mapping.
MAPPED_MB=4

# The work's contents, kept outside the filesystem to compare against.
mkdir -p "$MNT" "$WORK"
dd if=/dev/urandom of="$WORK/new" bs=64k count=64 2>/dev/null
dd if=/dev/urandom of="$WORK/old" bs=64k count=16 2>/dev/null
dd if=/dev/urandom of="$WORK/over" bs=64k count=1 2>/dev/null
cp "$WORK/old" "$WORK/old.expected"
dd if="$WORK/over" of="$WORK/old.expected" bs=64k seek=3 conv=notrunc 2>/dev/null

# Nothing may write the work back before the removal does.
writeback=$(cat /proc/sys/vm/dirty_writeback_centisecs)
expire=$(cat /proc/sys/vm/dirty_expire_centisecs)
xfssyncd=$(cat /proc/sys/fs/xfs/xfssyncd_centisecs)
echo 0 > /proc/sys/vm/dirty_writeback_centisecs
echo 360000 > /proc/sys/vm/dirty_expire_centisecs
echo 720000 > /proc/sys/fs/xfs/xfssyncd_centisecs

# fs_make FS DEV: a new filesystem FS (ext4, xfs, or xfs-rmap: with the
# reverse-map btree) on DEV.
fs_make() {
	case $1 in
	ext4) mkfs.ext4 -q -F -b 4096 "$2" ;;
	xfs) mkfs.xfs -f -q -m rmapbt=0 "$2" ;;
	xfs-rmap) mkfs.xfs -f -q -m rmapbt=1 "$2" ;;
	esac
}

# fs_mount FS DEV OPTS: mount it, the ext4 journal committing only when
# told to.
fs_mount() {
	case $1 in
	ext4) mount -t ext4 -o "commit=3600${3:+,$3}" "$2" "$MNT" ;;
	xfs*) mount -t xfs ${3:+-o "$3"} "$2" "$MNT" ;;
	esac
}

fs_check() {	# fs_check FS DEV: the filesystem's own offline check
	case $1 in
	ext4) e2fsck -fn "$2" ;;
	xfs*) xfs_repair -n "$2" ;;
	esac
}

# The work: a file synced before, then, not synced, a new file written
# with buffered writes, an overwrite of the synced file, a new directory
# with a file renamed in it.
unsynced_work() {
	cp "$WORK/old" "$MNT/old" && sync &&
		dd if="$WORK/new" of="$MNT/new" bs=64k 2>/dev/null &&
		dd if="$WORK/over" of="$MNT/old" bs=64k seek=3 conv=notrunc 2>/dev/null &&
		mkdir "$MNT/dir" && cp "$WORK/over" "$MNT/dir/a" &&
		mv "$MNT/dir/a" "$MNT/dir/b"
}

# Is every byte and name of the work as written? Says what is not.
work_intact() {
	bad=
	cmp -s "$WORK/new" "$MNT/new" || bad="$bad new file;"
	cmp -s "$WORK/old.expected" "$MNT/old" || bad="$bad overwrite;"
	[ ! -e "$MNT/dir/a" ] && cmp -s "$WORK/over" "$MNT/dir/b" || bad="$bad rename;"
	[ -z "$bad" ] && return 0
	ktap_print_msg "lost:$bad $(ls -lR "$MNT" 2>&1 | tr '\n' ' ')"
	return 1
}

# The first 8 bytes of page P of the probe's first file: see
# dax_stale_mapping.c.
probe_pattern() {
	printf '%016x' $((0x5eed000000000000 ^ $1))
}

stored_intact() {	# stored_intact FILE: what the probe stored is there
	pages=$((MAPPED_MB * 256))
	for p in 0 $((pages / 2 + 1)) $((pages - 1)); do
		got=$(od -A n -t x8 -j $((p * 4096)) -N 8 "$1" | tr -d ' ')
		[ "$got" = "$(probe_pattern "$p")" ] && continue
		ktap_print_msg "page $p of $1 holds ${got:-nothing}, not $(probe_pattern "$p")"
		return 1
	done
}

# unsynced_case NAME MODE FS OPTS WHERE [mapped]: the work, unsynced, on
# filesystem FS mounted with OPTS, on $pmem (WHERE=pmem) or on dm-linear
# over all of it (WHERE=dm); an orderly removal in mode MODE; a rebind;
# then every byte and name, and the offline check. With "mapped", a
# process stores through a DAX mapping of a preallocated file as the
# device goes.
unsynced_case() {
	name=$1 mode=$2 fs=$3 opts=$4 where=$5 mapped=$6
	dev=/dev/$pmem
	[ "$mode" = plain ] || dpf_set_mode "$mode"
	if [ "$where" = dm ]; then
		dm_create dpf-unsynced "0 $(dax_sectors "$pmem") linear /dev/$pmem 0"
		dev=/dev/mapper/dpf-unsynced
	fi
	unbind=$(dax_unbind_arg "$pmem")
	if ! fs_make "$fs" "$dev" || ! fs_mount "$fs" "$dev" "$opts" || ! unsynced_work; then
		ktap_test_fail "$name: no filesystem or no work written"
		ktap_test_fail "$name: nothing to compare"
		ktap_test_fail "$name: nothing to check"
		umount "$MNT" 2>/dev/null
		[ "$where" = dm ] && dm_remove dpf-unsynced
		return
	fi
	if [ -n "$mapped" ]; then
		xfs_io -f -c "falloc 0 ${MAPPED_MB}m" "$MNT/mapped"
		run_probe "$name: orderly removal under a process storing through a DAX mapping" \
			"$PROBE" -e 64 -s "$MAPPED_MB" -t "$(scaled 5000)" -r "$unbind" \
			"$MNT/mapped"
	else
		ktap_test_result "$name: orderly removal" dax_unbind "$unbind"
	fi
	umount "$MNT"
	[ "$where" = dm ] && dm_remove dpf-unsynced
	dax_rebind "$unbind" && dax_wait_blockdev "$pmem"
	[ "$where" = dm ] &&
		dm_create dpf-unsynced "0 $(dax_sectors "$pmem") linear /dev/$pmem 0"
	fs_mount "$fs" "$dev" "$opts" && work_intact &&
		{ [ -z "$mapped" ] || stored_intact "$MNT/mapped"; }
	result "$name: after the rebind every byte and name as written"
	umount "$MNT" 2>/dev/null
	out=$(fs_check "$fs" "$dev" 2>&1)
	rc=$?
	[ $rc -eq 0 ] || echo "$out" | sed 's/^/# fsck: /'
	checker="xfs_repair -n"
	[ "$fs" = ext4 ] && checker="e2fsck -fn"
	ktap_test_result "$name: $checker is clean" [ $rc -eq 0 ]
	[ "$where" = dm ] && dm_remove dpf-unsynced
}

hardware_corrupted() {	# HardwareCorrupted of /proc/meminfo, in kB
	awk '$1 == "HardwareCorrupted:" { print $2 }' /proc/meminfo
}

# erofs_case: the orderly removal of memory nobody claimed, mapped by a
# process. Five results.
erofs_case() {
	name="ranged, erofs dax=always on pmem (claims nothing)"
	dpf_set_mode ranged
	rm -rf "$WORK/erofs" "$WORK/erofs.img" && mkdir "$WORK/erofs" &&
		dd if=/dev/urandom of="$WORK/erofs/mapped" bs=1M count=$MAPPED_MB 2>/dev/null
	# Data in whole blocks (no tail inlined in the inode), as DAX needs.
	if ! mkfs.erofs --quiet -Enoinline_data "$WORK/erofs.img" "$WORK/erofs" ||
	   ! dd if="$WORK/erofs.img" of="/dev/$pmem" bs=1M conv=fsync 2>/dev/null ||
	   ! mount -t erofs -o dax=always "/dev/$pmem" "$MNT"; then
		for t in "orderly removal revokes the mapping" "the fallback took it" \
			 "no hardware memory corruption reported" "HardwareCorrupted unchanged" \
			 "unmounts after the removal"; do
			ktap_test_fail "$name: $t (no erofs image made or mounted)"
		done
		return
	fi
	unbind=$(dax_unbind_arg "$pmem")
	hc_before=$(hardware_corrupted)
	dmesg -c >/dev/null
	run_probe "$name: orderly removal revokes the mapping" \
		"$PROBE" -R -e 64 -s "$MAPPED_MB" -t "$(scaled 5000)" -r "$unbind" "$MNT/mapped"
	hc_after=$(hardware_corrupted)
	fallback=$(dpf_counter "$pmem" dead fallback_pages)
	ktap_print_msg "$name: fallback pages ${fallback:-?}, HardwareCorrupted" \
		"${hc_before:-?} kB -> ${hc_after:-?} kB"
	ktap_test_result "$name: the fallback took it (fallback pages > 0)" \
		[ "${fallback:-0}" -gt 0 ]
	if dmesg_has "hardware memory corruption"; then
		dmesg | grep -m 3 "hardware memory corruption" | sed 's/^/# /'
		ktap_test_fail "$name: no hardware memory corruption reported"
	else
		ktap_test_pass "$name: no hardware memory corruption reported"
	fi
	[ -n "$hc_before" ] && [ "$hc_before" = "$hc_after" ]
	result "$name: HardwareCorrupted unchanged"
	# The eviction walks what is left of the page cache: entries of the
	# removed device's struct pages faulted here.
	umount "$MNT"
	result "$name: unmounts after the removal"
	dax_rebind "$unbind" && dax_wait_blockdev "$pmem"
}

variant=
for arg in $(cat /proc/cmdline); do
	case $arg in
	dpf.variant=*) variant=${arg#dpf.variant=} ;;
	esac
done

ktap_print_header
if [ "$variant" = plain ]; then
	ktap_set_plan 21
else
	ktap_set_plan 53
fi

dax_setup_namespaces fsdax 512M
[ -b "/dev/$pmem" ] || ktap_exit_fail_msg "no fsdax namespace; nothing else can run"

if [ "$variant" = plain ]; then
	# The kernel must be what it says: no ranged core.
	[ ! -e /sys/module/dev_pagemap_failure ] ||
		ktap_exit_fail_msg "dpf.variant=plain, but the kernel has the ranged core"
	for fs_opts in ext4: ext4:dax xfs:dax=always xfs-rmap:dax=always; do
		fs=${fs_opts%%:*} opts=${fs_opts#*:}
		unsynced_case "plain, $fs ${opts:-(no dax)} on pmem" plain "$fs" "$opts" pmem
	done
	for fs_opts in ext4:dax xfs:dax=always xfs-rmap:dax=always; do
		fs=${fs_opts%%:*} opts=${fs_opts#*:}
		unsynced_case "plain, $fs $opts on pmem, mapped" plain "$fs" "$opts" pmem mapped
	done
	# A filesystem that is not the holder (ext4 on a second partition)
	# hears nothing, as upstream: not tested here.
	echo "$writeback" > /proc/sys/vm/dirty_writeback_centisecs
	echo "$expire" > /proc/sys/vm/dirty_expire_centisecs
	echo "$xfssyncd" > /proc/sys/fs/xfs/xfssyncd_centisecs
	ktap_finished
	exit
fi

for where in pmem dm; do
	for mode in ranged off; do
		# Upstream tells nobody above dm: only ranged there.
		[ "$where/$mode" = dm/off ] && continue
		for fs_opts in ext4: ext4:dax xfs:dax=never xfs:dax=inode xfs:dax=always; do
			fs=${fs_opts%%:*} opts=${fs_opts#*:}
			unsynced_case "$mode, $fs ${opts:-(no dax)} on $where" \
				"$mode" "$fs" "$opts" "$where"
		done
	done
done
# Upstream's stale mappings Oops when the process touches them: only ranged.
unsynced_case "ranged, xfs dax=always on pmem, mapped" ranged xfs dax=always pmem mapped
erofs_case

dpf_set_mode ranged
echo "$writeback" > /proc/sys/vm/dirty_writeback_centisecs
echo "$expire" > /proc/sys/vm/dirty_expire_centisecs
echo "$xfssyncd" > /proc/sys/fs/xfs/xfssyncd_centisecs
ktap_finished
