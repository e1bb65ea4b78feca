#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Revocation of DAX mappings when persistent memory goes away or is poisoned.
#
# Needs one NVDIMM region of at least 2 GiB with a label area, ndctl,
# mkfs.xfs, xfs_io, xfs_db and a kernel with CONFIG_DEV_PAGEMAP_FAILURE and
# debugfs; destroys everything on that region. dax_stale_mapping and
# dax_poison (built from this directory) do the mapping and probing; their
# TAP output is nested under each scenario.

DIR=$(cd "$(dirname "$0")" && pwd)
. "$DIR/ktap_helpers.sh"
. "$DIR/dax_lib.sh"

MNT=/mnt/dax_failure
# Mapped per scenario: 8 PMD-sized extents, every page written. After the
# removal the probe (-e 64) reads and writes one page of every 64, at a
# different offset in each group, and the last page: under TCG with KASAN
# every probe costs a fault and a SIGBUS, and a mapping is revoked a PMD or
# an extent at a time, so 8 probes per extent prove what 512 would. The
# benchmark and demo map 64 MiB and probe every page.
SIZE_MB=16
PROBE="$DIR/dax_stale_mapping"
POISON="$DIR/dax_poison"

# mkfs.xfs OPTS on $pmem and mount it dax=always.
xfs_mount() {
	mkfs.xfs -f -q $1 "/dev/$pmem" && mount -o dax=always "/dev/$pmem" "$MNT"
}

# Removal of $pmem under a process that maps a file of XFS made with
# MKFS_OPTS whose data lies in allocation group AG ("last" for the last),
# in failure mode MODE, with a time limit of LIMIT_MS (scaled). Five
# results.
removal_scenario() {
	local name=$1 mkfs_opts=$2 ag=$3 mode=$4 limit=$5
	local agcount file unbind kills dispatches fallback errors ok
	dpf_set_mode "$mode"
	xfs_mount "$mkfs_opts"
	agcount=$(dax_agcount "/dev/$pmem")
	[ "$ag" = last ] && ag=$((agcount - 1))
	file=$(dax_file_in_ag "$MNT" "$SIZE_MB" "$ag")
	ktap_print_msg "$name: mode $mode, agcount ${agcount:-?}," \
		"file ${file:-not found} in AG $ag"
	unbind=$(dax_unbind_arg "$pmem")
	dmesg -c >/dev/null
	if [ -n "$file" ]; then
		run_probe "$name: no page readable or writable after removal, in time" \
			"$PROBE" -e 64 -s "$SIZE_MB" -t "$(scaled "$limit")" -r "$unbind" "$file"
	else
		ktap_test_fail "$name: no file with data in AG $ag"
	fi

	kills=$(dmesg | grep -c "Sending SIGBUS")
	dispatches=$(dpf_counter "$pmem" dead dispatches)
	fallback=$(dpf_counter "$pmem" dead fallback_pages)
	errors=$(dpf_counter "$pmem" dead handler_errors)
	ktap_print_msg "$name: dispatches ${dispatches:-?}, fallback pages ${fallback:-?}," \
		"handler errors ${errors:-?}, 'Sending SIGBUS' lines $kills"
	ok=0
	if [ "$mode" = ranged ]; then
		[ "${dispatches:-x}" = 1 ] && [ "${fallback:-x}" = 0 ] &&
			[ "${errors:-x}" = 0 ] && [ "$kills" -eq 0 ] && ok=1
		ktap_test_result "$name: one dispatch to XFS, no fallback, no per-page kills" \
			[ $ok = 1 ]
	else
		[ "${dispatches:-0}" -ge $((SIZE_MB * 256)) ] && [ "${fallback:-x}" = 0 ] &&
			[ "${errors:-x}" = 0 ] && ok=1
		ktap_test_result "$name: every page dispatched to XFS, no fallback" [ $ok = 1 ]
	fi
	dmesg_has "Block device removal (0x20) detected"
	result "$name: XFS reports the shutdown"
	ktap_test_result "$name: filesystem unmounts after removal" umount "$MNT"
	ktap_test_result "$name: device comes back" dax_rebind "$unbind"
	dax_wait_blockdev "$pmem"
}

ktap_print_header
ktap_set_plan 43

# 1. Namespaces with labels: one fsdax, one devdax.
dax_setup_namespaces fsdax 1024M devdax 512M
ktap_print_msg "fsdax: ${pmem:-none} devdax: ${dax:-none}"
names=$(ndctl list -N 2>/dev/null | grep -o '"name":"dpf-[a-z]*"' | wc -l)
namespaces_ok() {
	[ -b "/dev/$pmem" ] && [ -c "/dev/$dax" ] && [ "$names" -eq 2 ]
}
ktap_test_result "labelled fsdax and devdax namespaces created" namespaces_ok
if [ ! -b "/dev/$pmem" ] || [ ! -c "/dev/$dax" ]; then
	ktap_exit_fail_msg "no namespaces; nothing else can run"
fi

# 2. XFS with the reverse-map btree, mounted dax=always, claims the device.
mkdir -p "$MNT"
xfs_mount "-m rmapbt=1"
xfs_io -f -c "pwrite -q 0 4096" "$MNT/probe-dax" 2>/dev/null
attrs=$(xfs_io -c "statx -r" "$MNT/probe-dax" 2>/dev/null | sed -n 's/^stat.attributes = //p')
rm -f "$MNT/probe-dax"
ktap_print_msg "statx attributes of a new file: ${attrs:-none}"
DEVICES=/sys/kernel/debug/dev_pagemap_failure/devices
ktap_print_msg "$(grep -A1 "^$pmem state=live" "$DEVICES" | tr '\n' ' ')"
# The holder of a whole disk claims every offset it can have (it may grow).
mounted_dax() {
	grep -q " $MNT xfs .*dax=always" /proc/mounts &&
		[ $((${attrs:-0} & 0x200000)) -ne 0 ] &&
		grep -A1 "^$pmem state=live claims=1 " "$DEVICES" |
		grep -q "claim 0x0-0xfffffffffffff000 holder"
}
ktap_test_result "XFS rmapbt=1 mounted dax=always, files are DAX, whole disk claimed" mounted_dax

umount "$MNT"

# 3. devdax: mapped, removed, every access raises SIGBUS. This is the
#    baseline, not the series' work: upstream's kill_dev_dax() already
#    unmaps the device's inode, and the test passes in mode off as well.
run_probe "devdax (as upstream, in every mode): mappings revoked on removal" \
	"$PROBE" -e 64 -s "$SIZE_MB" -r "$(dax_unbind_arg "$dax")" "/dev/$dax"

# 4. fsdax XFS removal under a mapping, one scenario per layout.
removal_scenario "XFS rmapbt=1, data in last AG" "-m rmapbt=1" last ranged 5000
removal_scenario "XFS rmapbt=1, data in AG 0" "-m rmapbt=1" 0 ranged 5000
removal_scenario "XFS rmapbt=0" "-m rmapbt=0" 0 ranged 5000
removal_scenario "XFS rmapbt=1, AG 0, mode pfn" "-m rmapbt=1" 0 pfn 120000

# 4b. Mode off is upstream 7.3.4 with the series' first patch: with the data
#     in AG 0 the removal walks the rmap btree page by page and returns.
#     Without the fix the walk wraps a 32-bit block count and loops about
#     2^32 times (about 470 s under QEMU, whatever the size of the file).
dpf_set_mode off
xfs_mount "-m rmapbt=1"
file=$(dax_file_in_ag "$MNT" 4 0 upstream)
unbind=$(dax_unbind_arg "$pmem")
if [ -n "$file" ]; then
	run_probe "mode off (upstream + wrap fix), AG 0: removal returns, no page accessible" \
		"$PROBE" -e 64 -s 4 -t "$(scaled 60000)" -r "$unbind" "$file"
else
	ktap_test_fail "mode off, data in AG 0: no file with data in AG 0"
fi
ktap_test_result "mode off, data in AG 0: filesystem unmounts after removal" umount "$MNT"
ktap_test_result "mode off, data in AG 0: device comes back" dax_rebind "$unbind"
dax_wait_blockdev "$pmem"
dpf_set_mode ranged

# 5. Poison one page through MADV_HWPOISON: one ranged call to XFS, SIGBUS
#    BUS_MCEERR_AR at that page for the process, the other file untouched.
#    Then a range of 16 pages through memory_failure_range(): one call.
#    On a fresh filesystem: the removals above brought the device back.
xfs_mount "-m rmapbt=1"
agcount=$(dax_agcount "/dev/$pmem")
last=$((agcount - 1))
victim=$(dax_file_in_ag "$MNT" 4 "$last" victim)
other=$(dax_file_in_ag "$MNT" 4 "$last" other)
before=$(dpf_counter "$pmem" live dispatches)
TRACE=/sys/kernel/tracing
[ -d "$TRACE/events" ] || mount -t tracefs nodev "$TRACE" 2>/dev/null
EVENT=$TRACE/events/dev_pagemap_failure/dax_failure_dispatch
echo 1 > "$EVENT/enable"
echo > "$TRACE/trace"
run_probe "MADV_HWPOISON: SIGBUS at the page, other file readable" \
	"$POISON" -p 3 "$victim" "$other"
echo 0 > "$EVENT/enable"
after=$(dpf_counter "$pmem" live dispatches)
ktap_print_msg "dispatches before ${before:-?}, after ${after:-?}"
ok=0
[ -n "$before" ] && [ "$after" = $((before + 1)) ] && ok=1
ktap_test_result "MADV_HWPOISON: one dispatch to XFS" [ $ok = 1 ]
pattern="dax_failure_dispatch: dev=$pmem offset=0x[0-9a-f]* len=0x1000 .*owner=holder ret=0"
traced=$(grep -c "$pattern" "$TRACE/trace" 2>/dev/null)
ktap_print_msg "trace: $(grep -m1 'dax_failure_dispatch:' "$TRACE/trace" 2>/dev/null |
	sed 's/.*dax_failure_dispatch: //')"
ktap_test_result "MADV_HWPOISON: the tracepoint records the one dispatch" [ "${traced:-0}" -eq 1 ]

victim2=$(dax_file_in_ag "$MNT" 4 "$last" victim2)
before=$(dpf_counter "$pmem" live dispatches)
bytes_before=$(dpf_counter "$pmem" live dispatched_bytes)
dmesg -c >/dev/null
run_probe "memory_failure_range(16 pages): SIGBUS in the range, other file readable" \
	"$POISON" -p 8 -n 16 -i "$INJECT" "$victim2" "$other"
after=$(dpf_counter "$pmem" live dispatches)
bytes_after=$(dpf_counter "$pmem" live dispatched_bytes)
kills=$(dmesg | grep -c "Sending SIGBUS")
ktap_print_msg "dispatches ${before:-?} -> ${after:-?}," \
	"bytes ${bytes_before:-?} -> ${bytes_after:-?}, 'Sending SIGBUS' lines $kills"
ok=0
[ -n "$before" ] && [ "$after" = $((before + 1)) ] &&
	[ "$bytes_after" = $((bytes_before + 16 * 4096)) ] && ok=1
ktap_test_result "memory_failure_range(16 pages): one dispatch of 16 pages" [ $ok = 1 ]
# One signal per naturally aligned block of the range (the signals ABI in
# Documentation/mm/dev_pagemap_failure.rst): at most two per bit of its
# 16 pages wherever the mapping lies (two for pages 8-23 of a 2 MiB
# aligned one), never one per page. queue_failure.sh tests the blocks.
[ "$kills" -ge 1 ] && [ "$kills" -le 8 ]
result "memory_failure_range(16 pages): a kill per aligned block, not one per page"

#    The process maps only the second half of the poisoned range (a mapping
#    of the 16 pages, mapped page by page, the first 8 never touched): the
#    kill must aim at the first page it maps, or the task is dropped. The
#    file is written first, so that its extent is one reverse-map record
#    and XFS hands the whole range over at once (a preallocated extent
#    splits where a fault converts it, and each part starts mapped).
victim3=$(dax_file_in_ag "$MNT" 4 "$last" victim3)
xfs_io -c "pwrite -q 0 4m" -c fsync "$victim3"
ktap_print_msg "victim3 extents: $(xfs_io -c "bmap -v" "$victim3" | awk '$1 ~ /^[0-9]+:$/' | wc -l)"
run_probe "memory_failure_range(16 pages), last 8 mapped: SIGBUS at the first mapped page" \
	"$POISON" -p 8 -n 16 -u -i "$INJECT" "$victim3" "$other"

# 6. A poisoned range that crosses from AG 0 into AG 1: upstream's rmap walk
#    wrapped a 32-bit block number here and looped about 2^32 times. The
#    write must return, after one call to XFS with both pages, and XFS must
#    find what the second page holds, the superblock of AG 1, and shut down.
pfn=$("$POISON" -P "$other")
phys=$(dax_file_phys "$other")
agbytes=$(dax_agbytes "/dev/$pmem")
if [ -n "$pfn" ] && [ -n "$phys" ] && [ -n "$agbytes" ]; then
	start=$((pfn - phys / 4096 + agbytes / 4096 - 1))
	ktap_print_msg "poisoning pfn $start + 2 pages across the AG 0/1 boundary" \
		"(AG $agbytes bytes)"
	dmesg -c >/dev/null
	echo 1 > "$EVENT/enable"
	echo > "$TRACE/trace"
	t0=$(date +%s)
	echo "$start 2" > "$INJECT" 2>/dev/null
	t1=$(date +%s)
	echo 0 > "$EVENT/enable"
	ktap_print_msg "trace: $(grep 'dax_failure_dispatch:' "$TRACE/trace" |
		sed 's/.*dax_failure_dispatch: //' | tr '\n' ';')"
	ktap_print_msg "XFS: $(dmesg | grep -m1 'XFS.*Shutting down')"
	ktap_test_result "poison across an AG boundary returns ($((t1 - t0)) s)" \
		[ $((t1 - t0)) -lt "$(scaled 30)" ]
	[ "$(grep -c "dev=$pmem .*len=0x2000 .*owner=holder" "$TRACE/trace")" = 1 ] &&
		dmesg_has "Corruption of on-disk metadata"
	result "poison across an AG boundary: one call to XFS, which shuts down (AG 1 superblock)"
else
	ktap_test_fail "poison across an AG boundary: no pfn (${pfn:-?}/${phys:-?}/${agbytes:-?})"
	ktap_test_fail "poison across an AG boundary: not injected"
fi
umount "$MNT"

# 7. The removal racing evictions of DAX inodes, looped. An unmount clears
#    SB_ACTIVE and then evicts every inode; the last iput() of an unlinked
#    file evicts it. Both delete page cache entries that point at the
#    device's struct pages, after evict() has taken the inode off its
#    superblock's list, so the removal must wait for them (the pagemap
#    counts its pages in a page cache), or the memmap is freed under them.
#    To hold an eviction, dax_pin keeps one page of a file pinned through a
#    pipe, and the eviction waits in dax_break_layout_final(): round 1
#    pins the oldest file, so 8 newer files with DAX entries are I_FREEING
#    behind it; round 2 pins the newest, so no inode with entries is left
#    on the list; round 3 unlinks the pinned file of a live filesystem.
#    XFS sits on dm-linear: on pmem itself del_gendisk() waits for an
#    unmount (fs_bdev_mark_dead() takes s_umount), only a filesystem above
#    a stacking driver reaches the race. A removal that returns while the
#    eviction is held fails the round (and the kernel then touches freed
#    struct pages); the right one waits until the pin is dropped. Then
#    the log replays, xfs_repair -n is clean and a file fsynced before the
#    removal is intact. (drop_caches cannot race here: reclaim never
#    evicts a DAX inode with entries, invalidate_mapping_pages() keeps
#    them.)
# race_abort MESSAGE: a round went wrong before the removal; say so and
# undo what pin_round set up, for the next round.
race_abort() {
	ktap_print_msg "race round $round: $1"
	kill "$pinner" 2>/dev/null
	wait_gone 60 "$pinner" $um
	grep -q " $MNT " /proc/mounts && umount "$MNT"
	dm_remove dpf-race
}

# pin_round ROUND PINNED EVICTOR: PINNED is "oldest" or "newest", EVICTOR
# "umount" or "unlink"; sets pin_ok=1 if all went well.
pin_round() {
	local round=$1 pinned=$2 evictor=$3 dev=/dev/mapper/dpf-race out=/tmp/dax_pin.out
	local unbind sum removal i
	pin_ok=0 pinner= um=
	dm_create dpf-race "0 $(dax_sectors "$pmem") linear /dev/$pmem 0" || return
	mkfs.xfs -f -q -m rmapbt=1 "$dev" && mount -o dax=always "$dev" "$MNT" ||
		{ race_abort "no XFS on $dev"; return; }
	[ "$pinned" = oldest ] || dax_cached_files "$MNT"
	: > "$MNT/pinned"
	start_pinner "$MNT/pinned" "$out" ||
		{ race_abort "dax_pin did not pin"; return; }
	[ "$pinned" = oldest ] && dax_cached_files "$MNT"
	xfs_io -f -c "pwrite -q -S 0x$round$round 0 1m" -c fsync "$MNT/keep" >/dev/null
	sum=$(md5sum < "$MNT/keep")
	unbind=$(dax_unbind_arg "$pmem")
	case $evictor in
	umount) umount "$MNT" & ;;
	unlink) rm "$MNT/pinned" & ;;
	esac
	um=$!
	# The eviction reaches the pinned inode and stays there.
	wait_in_kernel $um dax_break_layout_final ||
		{ stacks $um
		  race_abort "the $evictor is not held in the pinned eviction"
		  return; }
	dax_unbind "$unbind" &
	removal=$!
	# The removal must come to wait for the held eviction (and stay).
	if wait_in_kernel $removal dev_pagemap_failure_wait_evicted; then
		pin_ok=1
	elif alive $removal; then
		ktap_print_msg "race round $round: the removal waits elsewhere"
		stacks $removal
	else
		ktap_print_msg "race round $round: the removal returned during the $evictor"
	fi
	kill "$pinner"
	wait_gone 60 $removal $um ||
		{ ktap_print_msg "race round $round: removal or $evictor running 60 s after unpin"
		  stacks $removal $um
		  pin_ok=0
		  return; }
	grep -q " $MNT " /proc/mounts && { umount "$MNT" || { pin_ok=0; return; }; }
	dm_remove dpf-race || { pin_ok=0; return; }
	dax_rebind "$unbind"
	dax_wait_blockdev "$pmem" || { pin_ok=0; return; }
	dm_create dpf-race "0 $(dax_sectors "$pmem") linear /dev/$pmem 0" || { pin_ok=0; return; }
	# Mounting replays the log; then the filesystem must be clean.
	if mount -o dax=always "$dev" "$MNT"; then
		[ "$(md5sum < "$MNT/keep")" = "$sum" ] ||
			{ ktap_print_msg "race round $round: fsynced file differs"; pin_ok=0; }
		umount "$MNT" || pin_ok=0
		xfs_repair -n "$dev" >/dev/null 2>&1 ||
			{ ktap_print_msg "race round $round: xfs_repair -n found damage"
			  pin_ok=0; }
	else
		pin_ok=0
	fi
	dm_remove dpf-race || pin_ok=0
}

dpf_set_mode ranged
good=0
pin_round 1 oldest umount
good=$((good + pin_ok))
pin_round 2 newest umount
good=$((good + pin_ok))
pin_round 3 newest unlink
good=$((good + pin_ok))
ktap_print_msg "removal racing a held eviction: $good of 3 rounds clean"
ktap_test_result "removal racing held evictions (2 umount, 1 unlink): waited, clean, intact" \
	[ $good -eq 3 ]

# 8. A page of a live file pinned for as long as a process likes (dax_pin).
#    The removal waits for it in the sweep, says so every 10 s with the
#    number of pinned pages, and meanwhile holds nothing another device
#    needs: the devdax namespace's removal (kill_dax(), which waits for
#    every dax read lock in the system) completes. Once the pin goes, the
#    removal completes, and the filesystem comes back clean.
dax_setup_namespaces fsdax 1024M devdax 512M
ktap_print_msg "pinned page: fsdax ${pmem:-none}, devdax ${dax:-none}"
xfs_mount "-m rmapbt=1"
xfs_io -f -c "pwrite -q -S 0x77 0 1m" -c fsync "$MNT/keep" >/dev/null
sum=$(md5sum < "$MNT/keep")
: > "$MNT/pinned"
start_pinner "$MNT/pinned" /tmp/dax_pin.out
pinned=$?
unbind=$(dax_unbind_arg "$pmem")
dunbind=$(dax_unbind_arg "$dax")
dmesg -c >/dev/null
dax_unbind "$unbind" &
removal=$!
[ $pinned -eq 0 ] && wait_in_kernel $removal dax_revoke_sb_mappings
result "pinned page: the removal waits in the sweep"
dax_unbind "$dunbind" &
dremoval=$!
wait_gone 20 $dremoval && alive $removal
result "pinned page: the devdax removal completes while the pmem removal waits"
stacks $dremoval
for i in $(seq 1 "$(scaled 100)"); do
	dmesg_has "removal waits for" && break
	sleep 0.2
done
ktap_print_msg "pinned page: log: $(dmesg | grep -m1 'removal waits for')"
dmesg_has "$pmem: removal waits for 1 pinned DAX pages of inode"
result "pinned page: the wait is logged within 20 s, with the number of pinned pages"
kill "$pinner"
wait_gone 60 $removal $dremoval
result "pinned page: the removal completes once the pin is dropped"
stacks $removal $dremoval
umount "$MNT"
dax_rebind "$unbind"
dax_rebind "$dunbind"
ok=0
if dax_wait_blockdev "$pmem" && mount -o dax=always "/dev/$pmem" "$MNT"; then
	[ "$(md5sum < "$MNT/keep")" = "$sum" ] && umount "$MNT" &&
		xfs_repair -n "/dev/$pmem" >/dev/null 2>&1 && ok=1
	grep -q " $MNT " /proc/mounts && umount "$MNT"
fi
ktap_test_result "pinned page: device comes back, fsynced file intact, xfs_repair -n clean" \
	[ $ok = 1 ]

# 9. Poison racing the end of a removal. pmem_release_disk() drops its
#    dax_device before del_gendisk(), but the pagemap, and with it the
#    driver's memory_failure operation, lives until after del_gendisk()
#    returns. A loop injects poison into one page for the whole removal;
#    the kernel must not touch the freed dax_device (KASAN reports it, and
#    the harness fails on any report in the kernel log). With the driver
#    reading its stale pointer the report came at the first run.
xfs_mount "-m rmapbt=1"
pfn=$("$POISON" -P "$(dax_file_in_ag "$MNT" 4 0 poisoned)")
umount "$MNT"
unbind=$(dax_unbind_arg "$pmem")
rm -f /tmp/inject.stop
{ dax_unbind "$unbind"; touch /tmp/inject.stop; } &
removal=$!
counts=$(dpf_inject_until /tmp/inject.stop "${pfn:-0}" 1 20000)
n=${counts#* }
wait_gone 120 $removal
rc=$?
ktap_print_msg "poison racing the end of a removal: pfn ${pfn:-?}," \
	"$n injections during the removal"
[ $rc -eq 0 ] && [ -n "$pfn" ] && [ $n -gt 1 ]
result "poison racing the end of a removal: the removal returns, poison injected throughout"
dax_rebind "$unbind"
dax_wait_blockdev "$pmem"
result "poison racing the end of a removal: device comes back"

ktap_finished
