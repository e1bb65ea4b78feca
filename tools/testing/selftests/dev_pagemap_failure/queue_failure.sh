#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Queued poison and the accounting of ranged failures.
#
# 1. A firmware-first platform (GHES) queues one pfn per error record with
#    memory_failure_queue(), from interrupt context, into a 16-entry
#    per-CPU fifo. The test file queue_pfns queues a burst of 4096
#    contiguous pages of a mapped XFS (rmapbt=1) file the same way, with
#    interrupts off. Mode ranged: the burst is one run, nothing is dropped,
#    every page is unmapped and gives SIGBUS BUS_MCEERR_AR at its address,
#    HardwareCorrupted grows by 16 MiB, and XFS hears of it in a handful of
#    calls. Mode off (upstream): all but 16 pages are dropped with a
#    "buffer overflow" line each and stay mapped.
# 2. A ranged failure (inject_range, memory_failure_range()) of 4096 pages
#    is accounted as 4096 single pages: HardwareCorrupted, one
#    ras:memory_failure_event per page (rasdaemon's source), and one log
#    line for the run. Mode off (memory_failure() page by page) beside it:
#    the same counts, one line per page.
# 3. The owners of a ranged failure work without mf_mutex: while the owner
#    of a ranged failure waits (the test file owner_delay_ms makes it wait,
#    as XFS reading its metadata from a suspended dm device would),
#    memory_failure() of a page of another device, which takes mf_mutex,
#    completes.
# 4. A firmware error record whose physical address mask names a 2 MiB
#    granule (GHES, a CPER memory error section with a coarse
#    physical_addr_mask), queued by the test file queue_error as GHES
#    queues it: mode ranged fails the whole granule of the mapped file in
#    one call to XFS, SIGBUS at each page when touched; mode off (upstream)
#    handles only the page of the address.
# 5. A process with PR_MCE_KILL_EARLY that maps a poisoned range gets
#    action-optional signals that cover it in aligned blocks: one for an
#    aligned power-of-two range (si_addr_lsb its size), the first at the
#    first page otherwise; upstream (mode off) signals page by page.
# rasdaemon records the poisoned pages of sections 1, 2 and 4 in its
# database as it records them on the per-page path: one record per page
# handled.
#
# 6. The hwpoison filter (hwpoison_inject's corrupt-filter-*) holds back the
#    pages of a ranged failure that it does not select: nothing poisoned,
#    nothing accounted, -EOPNOTSUPP. Upstream (mode off) consults it only
#    in the generic handler, after XFS has taken the pages.
#
# The poisoned pages are simulated (MF_SW_SIMULATED): the pmem driver's
# badblocks do not change. Needs one NVDIMM region of at least 1.5 GiB with a
# label area, ndctl, mkfs.xfs, xfs_io, tracefs and a kernel with
# CONFIG_DEV_PAGEMAP_FAILURE_TEST, CONFIG_HWPOISON_INJECT and debugfs;
# destroys everything on that region.

DIR=$(cd "$(dirname "$0")" && pwd)
. "$DIR/ktap_helpers.sh"
. "$DIR/dax_lib.sh"

MNT=/mnt/queue_failure
MNT2=/mnt/queue_failure.2
POISON="$DIR/dax_poison"
DEBUGFS=/sys/kernel/debug/dev_pagemap_failure
TRACING=/sys/kernel/tracing
EVENT=$TRACING/events/ras/memory_failure_event
NR=4096

hw_corrupted() {
	awk '$1 == "HardwareCorrupted:" { print $2 }' /proc/meminfo
}

# The lines of the kernel log that match PATTERN since the last dmesg -c.
# Mode off logs a line per page, more than the log buffer may hold: there
# the count is a lower bound, and nothing is judged on it.
log_count() {
	dmesg | grep -c "$1"
}

# ras:memory_failure_event records since trace_start.
trace_start() {
	echo 0 > "$TRACING/tracing_on"
	echo > "$TRACING/trace"
	echo 1 > "$EVENT/enable"
	echo 1 > "$TRACING/tracing_on"
}

trace_count() {
	echo 0 > "$TRACING/tracing_on"
	echo 0 > "$EVENT/enable"
	grep -c 'memory_failure_event:' "$TRACING/trace"
}

ktap_print_header
ktap_set_plan 32

[ -d "$TRACING/events" ] || mount -t tracefs nodev "$TRACING" 2>/dev/null
[ -d "$EVENT" ] || ktap_exit_fail_msg "no ras:memory_failure_event in $TRACING"
# The trace buffer must hold 4096 records.
echo 4096 > "$TRACING/buffer_size_kb"

ras_start
result "rasdaemon records memory failures"

dax_setup_namespaces fsdax 512M fsdax 512M
set -- $pmems
[ $# -eq 2 ] || ktap_exit_fail_msg "namespaces missing ($pmems); nothing else can run"
pmem=$1 second=$2
mkdir -p "$MNT"
mkfs.xfs -f -q -m rmapbt=1 "/dev/$pmem" && mount -o dax=always "/dev/$pmem" "$MNT" ||
	ktap_exit_fail_msg "cannot mount XFS on $pmem"
xfs_io -f -c "falloc 0 4m" "$MNT/other"

# 1. A queued burst of 4096 pages, in mode ranged and off.
for mode in ranged off; do
	file=$MNT/queued.$mode
	xfs_io -f -c "falloc 0 16m" "$file"
	dpf_set_mode "$mode"
	dmesg -c >/dev/null
	hc=$(hw_corrupted) disp=$(dpf_counter "$pmem" live dispatches)
	ras_mark
	if [ "$mode" = ranged ]; then
		run_probe "queued burst of $NR ($mode): every page unmapped, SIGBUS at each" \
			"$POISON" -p 0 -n $NR -q "$DEBUGFS/queue_pfns" -w "$(scaled 300)" \
			"$file" "$MNT/other"
	else
		run_probe "queued burst of $NR ($mode): as upstream, the full queue drops pages" \
			"$POISON" -p 0 -n $NR -q "$DEBUGFS/queue_pfns" -K -w "$(scaled 120)" \
			"$file" "$MNT/other"
	fi
	hc2=$(hw_corrupted) disp2=$(dpf_counter "$pmem" live dispatches)
	dropped=$(log_count 'buffer overflow when queuing') calls=$((disp2 - disp))
	ktap_print_msg "queued burst ($mode): HardwareCorrupted $hc -> $hc2 kB," \
		"$dropped 'buffer overflow' lines logged, $calls calls to XFS"
	handled=$(((hc2 - hc) / 4))
	set -- $(ras_new "$handled")
	ktap_print_msg "queued burst ($mode): rasdaemon recorded $1 failures of $2 pages" \
		"spanning $3, for $handled pages handled"
	[ "$handled" -gt 0 ] && [ "$1" = "$handled" ] && [ "$2" = "$handled" ]
	result "queued burst ($mode): rasdaemon records each of the $handled pages handled"
	[ "$mode" = ranged ] || continue
	[ "$dropped" -eq 0 ]
	result "queued burst ($mode): nothing dropped"
	[ "$hc2" = $((hc + NR * 4)) ]
	result "queued burst ($mode): HardwareCorrupted grows by $((NR * 4)) kB"
	[ "$calls" -ge 1 ] && [ "$calls" -le 4 ]
	result "queued burst ($mode): a handful of calls to XFS ($calls)"
done

# 2. The same number of pages failed at once, through memory_failure_range():
#    ranged, one call for the run; off, memory_failure() page by page.
for mode in ranged off; do
	file=$MNT/ranged.$mode
	xfs_io -f -c "falloc 0 16m" "$file"
	dpf_set_mode "$mode"
	dmesg -c >/dev/null
	hc=$(hw_corrupted)
	ras_mark
	trace_start
	run_probe "inject_range of $NR ($mode): one SIGBUS, the pages unmapped" \
		"$POISON" -p 0 -n $NR -i "$DEBUGFS/inject_range" "$file" "$MNT/other"
	events=$(trace_count)
	set -- $(ras_new $NR)
	ktap_print_msg "inject_range ($mode): rasdaemon recorded $1 failures of $2 pages" \
		"spanning $3"
	[ "$1" = $NR ] && [ "$2" = $NR ] && [ "$3" = $NR ]
	result "inject_range ($mode): rasdaemon records each of the $NR pages"
	hc2=$(hw_corrupted) lines=$(log_count 'recovery action for dax page')
	ktap_print_msg "inject_range ($mode): HardwareCorrupted $hc -> $hc2 kB," \
		"$events ras:memory_failure_event records, $lines log lines"
	[ "$hc2" = $((hc + NR * 4)) ]
	result "inject_range ($mode): HardwareCorrupted grows by $((NR * 4)) kB"
	[ "$events" -eq $NR ]
	result "inject_range ($mode): one ras:memory_failure_event per page ($events)"
	if [ "$mode" = ranged ]; then
		[ "$lines" -eq 1 ]
		result "inject_range ($mode): one log line for the run"
	fi
done

# 3. A ranged failure whose owner waits (owner_delay_ms: as XFS reading its
#    metadata from a suspended device would), and meanwhile memory_failure()
#    of a page of another device, which takes mf_mutex.
mkdir -p "$MNT2"
mkfs.xfs -f -q -m rmapbt=1 "/dev/$second" && mount -o dax=always "/dev/$second" "$MNT2" ||
	ktap_exit_fail_msg "cannot mount XFS on $second"
xfs_io -f -c "falloc 0 4m" "$MNT2/waiting"
pfn=$("$POISON" -P "$MNT2/waiting")
xfs_io -f -c "falloc 0 4m" "$MNT/single"
dpf_set_mode ranged
# 30 s scaled, at most the 60 s that owner_delay_ms takes.
wait_s=$(scaled 30)
[ "$wait_s" -le 60 ] || wait_s=60
echo $((wait_s * 1000)) > "$DEBUGFS/owner_delay_ms" ||
	ktap_exit_fail_msg "cannot set owner_delay_ms to $((wait_s * 1000))"
rm -f /tmp/queue.ranged /tmp/queue.single
(echo "$pfn 16" > "$DEBUGFS/inject_range"; touch /tmp/queue.ranged) &
ranged=$!
sleep "$(scaled 2)"
ktap_print_msg "the ranged failure (pid $ranged), its owner waiting $wait_s s:"
sed 's/^/#   /' "/proc/$ranged/stack" 2>/dev/null
[ ! -e /tmp/queue.ranged ]
result "a ranged failure's owner waits"
("$POISON" -p 3 "$MNT/single" "$MNT/other" > /tmp/queue.out 2>&1
 echo $? > /tmp/queue.single) &
single=$!
for i in $(seq 1 $((wait_s / 2))); do
	[ -e /tmp/queue.single ] && break
	sleep 1
done
sed 's/^/    /' /tmp/queue.out
[ -e /tmp/queue.single ] && [ "$(cat /tmp/queue.single)" = 0 ] && [ ! -e /tmp/queue.ranged ]
result "meanwhile memory_failure() of a page of another device completes"
[ -e /tmp/queue.single ] || stacks $single
for i in $(seq 1 $((wait_s * 2))); do
	[ -e /tmp/queue.ranged ] && break
	sleep 1
done
[ -e /tmp/queue.ranged ]
result "the ranged failure completes after its owner's wait"
wait $single $ranged
umount "$MNT2"

# 4. A queued error record whose address mask names a 2 MiB granule.
for mode in ranged off; do
	file=$MNT/coarse.$mode
	xfs_io -f -c "falloc 0 4m" "$file"
	dpf_set_mode "$mode"
	hc=$(hw_corrupted) disp=$(dpf_counter "$pmem" live dispatches)
	ras_mark
	if [ "$mode" = ranged ]; then
		run_probe "queued 2 MiB error record ($mode): 512 pages failed, SIGBUS at each" \
			"$POISON" -p 0 -n 512 -g -q "$DEBUGFS/queue_error" -w "$(scaled 120)" \
			"$file" "$MNT/other"
	else
		run_probe "queued 2 MiB error record ($mode): as upstream, only its page handled" \
			"$POISON" -p 0 -n 512 -g -q "$DEBUGFS/queue_error" -K -w "$(scaled 30)" \
			"$file" "$MNT/other"
	fi
	hc2=$(hw_corrupted) disp2=$(dpf_counter "$pmem" live dispatches)
	ktap_print_msg "queued 2 MiB error record ($mode): HardwareCorrupted $hc -> $hc2 kB," \
		"$((disp2 - disp)) calls to XFS"
	expect=512
	[ "$mode" = ranged ] || expect=1
	set -- $(ras_new $expect)
	ktap_print_msg "queued 2 MiB error record ($mode): rasdaemon recorded $1 failures" \
		"of $2 pages spanning $3"
	[ "$1" = $expect ] && [ "$2" = $expect ] && [ "$3" = $expect ]
	result "queued 2 MiB error record ($mode): rasdaemon records each of the $expect pages"
	if [ "$mode" = ranged ]; then
		[ "$hc2" = $((hc + 2048)) ] && [ "$disp2" = $((disp + 1)) ]
		result "queued 2 MiB error record ($mode): 2048 kB accounted, one call to XFS"
	else
		[ "$hc2" = $((hc + 4)) ]
		result "queued 2 MiB error record ($mode): as upstream, 4 kB accounted"
	fi
done

# 5. An early-kill process: signals that cover the poisoned range.
for mode in ranged off; do
	dpf_set_mode "$mode"
	xfs_io -f -c "falloc 0 4m" "$MNT/early.$mode"
	if [ "$mode" = ranged ]; then
		xfs_io -f -c "falloc 0 4m" "$MNT/early.$mode.odd"
		run_probe "early kill ($mode): an aligned range of 16 pages, one signal for it" \
			"$POISON" -p 16 -n 16 -e "$INJECT" -w "$(scaled 60)" "$MNT/early.$mode"
		run_probe "early kill ($mode): 5 pages from an odd page, aligned blocks from it" \
			"$POISON" -p 3 -n 5 -e "$INJECT" -w "$(scaled 60)" "$MNT/early.$mode.odd"
	else
		run_probe "early kill ($mode): as upstream, a signal per page" \
			"$POISON" -p 16 -n 16 -e "$INJECT" -K -w "$(scaled 60)" "$MNT/early.$mode"
	fi
done

# rasdaemon records the poisoned pages of sections 1, 2 and 4 in its
# database as it records them on the per-page path: one record per page
# handled.
#
# 6. The hwpoison filter: select the pages of another device, and a
#    ranged failure of this one is held back; select this one, and it
#    goes through. The filter knows a page's device from its file
#    (hwpoison_filter_dev()), so a page that was never mapped is held back
#    whatever the filter selects: each step first maps and writes the 16
#    pages it fails, as an application would have.
modprobe hwpoison_inject || ktap_exit_fail_msg "no hwpoison_inject module"
HWPOISON=/sys/kernel/debug/hwpoison
xfs_io -f -c "falloc 0 4m" "$MNT/filtered"
pfn=$("$POISON" -P "$MNT/filtered") first=0
# map_pages: map and write the 16 pages of the file from page $first.
map_pages() {
	xfs_io -c "mmap -rw $((first * 4096)) 64k" -c "mwrite $((first * 4096)) 64k" \
		-c munmap "$MNT/filtered"
}
this=$(cat "/sys/block/$pmem/dev") that=$(cat "/sys/block/$second/dev")
for mode in ranged off; do
	dpf_set_mode "$mode"
	echo "${that%:*}" > "$HWPOISON/corrupt-filter-dev-major"
	echo "${that#*:}" > "$HWPOISON/corrupt-filter-dev-minor"
	echo 1 > "$HWPOISON/corrupt-filter-enable"
	map_pages
	hc=$(hw_corrupted) disp=$(dpf_counter "$pmem" live dispatches)
	err=$( (echo "$pfn 16" > "$INJECT") 2>&1)
	hc2=$(hw_corrupted) disp2=$(dpf_counter "$pmem" live dispatches)
	ktap_print_msg "filter on $that ($mode): '$err', HardwareCorrupted $hc -> $hc2 kB," \
		"$((disp2 - disp)) calls to XFS"
	if [ "$mode" = ranged ]; then
		case $err in *"not supported"*) true ;; *) false ;; esac &&
			[ "$hc2" = "$hc" ] && [ "$disp2" = "$disp" ]
		result "hwpoison filter ($mode): pages of another device selected, nothing poisoned"
	else
		# Upstream consults the filter only in the generic handler:
		# XFS takes the pages first.
		[ "$hc2" = $((hc + 64)) ]
		result "hwpoison filter ($mode): as upstream, XFS takes the pages past the filter"
	fi
	pfn=$((pfn + 16)) first=$((first + 16))
done
dpf_set_mode ranged
echo "${this%:*}" > "$HWPOISON/corrupt-filter-dev-major"
echo "${this#*:}" > "$HWPOISON/corrupt-filter-dev-minor"
map_pages
hc=$(hw_corrupted) disp=$(dpf_counter "$pmem" live dispatches)
echo "$pfn 16" > "$INJECT"
rc=$?
hc2=$(hw_corrupted) disp2=$(dpf_counter "$pmem" live dispatches)
ktap_print_msg "filter on $this: exit status $rc, HardwareCorrupted $hc -> $hc2 kB," \
	"$((disp2 - disp)) calls to XFS"
[ $rc -eq 0 ] && [ "$hc2" = $((hc + 64)) ] && [ "$disp2" = $((disp + 1)) ]
result "hwpoison filter (ranged): this device selected, 16 pages poisoned in one call"
echo 0 > "$HWPOISON/corrupt-filter-enable"
echo 4294967295 > "$HWPOISON/corrupt-filter-dev-major"
echo 4294967295 > "$HWPOISON/corrupt-filter-dev-minor"
rmmod hwpoison_inject
ras_stop

umount "$MNT"
dpf_set_mode ranged
ktap_finished
