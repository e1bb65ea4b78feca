#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Helpers shared by the selftests, the demo and the benchmark: namespace
# set-up, removing a device and bringing it back, placing file data in an
# allocation group, injecting poison. Sourced; sets no traps and exits
# nowhere.

# scaled N: N (seconds or milliseconds) scaled by how much slower than the
# reference machine this guest runs: DPF_SLOWDOWN, in percent, which the
# test harness measures before the tests start (100 when it is not set).
# Every time limit and wait of the selftests goes through it, so a slow
# machine gets more time and a fast one no less.
scaled() {
	echo $(($1 * ${DPF_SLOWDOWN:-100} / 100))
}

# The guest's uptime in whole seconds.
dpf_uptime() {
	local up
	read -r up _ < /proc/uptime
	echo "${up%.*}"
}

# The core's test interface (CONFIG_DEV_PAGEMAP_FAILURE_TEST): "PFN COUNT"
# written to it fails COUNT pages from PFN as a machine check would.
INJECT=/sys/kernel/debug/dev_pagemap_failure/inject_range

# dpf_inject_until STOP PFN PAGES MAX: inject poison into the PAGES pages
# from PFN one page at a time, in an order that visits each once before any
# twice (61 is prime to PAGES when PAGES is a power of two), until the file
# STOP exists or MAX injections were made. Prints how many the kernel
# accepted and how many were made; a refusal (no device there any more) is
# counted, not fatal.
dpf_inject_until() {
	local n=0 ok=0
	while [ ! -e "$1" ] && [ $n -lt "$4" ]; do
		echo "$(($2 + n * 61 % $3)) 1" > "$INJECT" 2>/dev/null && ok=$((ok + 1))
		n=$((n + 1))
	done
	echo "$ok $n"
}

# Create labelled namespaces on region0: "fsdax SIZE" and/or "devdax SIZE"
# pairs; SIZE "all" takes what is left of the region, a mode "devdax@ALIGN"
# (devdax@4K) gives the device that fault alignment. Sets $pmem (e.g.
# pmem0) and $dax (e.g. dax0.1) for the last of each created, $pmems to
# the list of every fsdax block device created and $daxes to that of every
# devdax device.
dax_setup_namespaces() {
	pmem= dax= pmems= daxes=
	ndctl disable-region all >/dev/null 2>&1
	ndctl init-labels -f all >/dev/null 2>&1
	ndctl enable-region all >/dev/null 2>&1
	while [ $# -ge 2 ]; do
		size="-s $2" mode=${1%@*} align=
		[ "$2" = all ] && size=
		[ "$mode" != "$1" ] && align="-a ${1#*@}"
		# shellcheck disable=SC2086
		json=$(ndctl create-namespace -r region0 -m "$mode" $size $align \
			-n "dpf-$mode" 2>&1)
		case "$mode" in
		fsdax) pmem=$(echo "$json" | dax_json_field blockdev)
		       pmems="$pmems $pmem" ;;
		devdax) dax=$(echo "$json" | dax_json_field chardev)
			daxes="$daxes $dax" ;;
		esac
		[ -n "$pmem$dax" ] || echo "$json" | sed 's/^/# /'
		shift 2
	done
}

dax_json_field() {
	sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p" | head -n1
}

# Print FILE=VALUE for the probe's -r option: writing VALUE to FILE unbinds
# the nd bus device behind a block device (pmem0) or a dax device (dax0.1),
# which removes it as a driver unbind or a hot-unplug does.
dax_unbind_arg() {
	case "$1" in
	pmem*) nd=$(readlink -f "/sys/block/$1/device") ;;
	dax*) nd=$(dirname "$(readlink -f "/sys/bus/dax/devices/$1")") ;;
	*) return 1 ;;
	esac
	echo "$(readlink -f "$nd/driver")/unbind=$(basename "$nd")"
}

# The allocation group holding the first extent of FILE, after running the
# xfs_io command CMD on it (creating it) if one is given: one xfs_io for
# both, since under TCG every exec counts.
dax_file_ag() {	# dax_file_ag FILE [CMD]
	xfs_io ${2:+-f -c "$2"} -c "bmap -v" "$1" | awk '$1 == "0:" { print $4 }'
}

# Preallocate SIZE_MB of a file NAME (default "data") in a new directory
# under MNT whose data lies in allocation group AG (a new directory goes to
# the next AG, its files follow it). Other candidates are removed again.
# Prints the file's path.
dax_file_in_ag() {
	mnt=$1 size_mb=$2 want=$3 name=${4:-data}
	for i in 1 2 3 4 5 6 7 8; do
		mkdir -p "$mnt/$name.d$i"
		got=$(dax_file_ag "$mnt/$name.d$i/$name" "falloc 0 ${size_mb}m")
		if [ "$got" = "$want" ]; then
			echo "$mnt/$name.d$i/$name"
			return 0
		fi
		rm "$mnt/$name.d$i/$name"
	done
	return 1
}

dax_agcount() {
	xfs_db -r -c "sb 0" -c "p agcount" "$1" | sed 's/.* = //'
}

# Remove a device: ARG is what dax_unbind_arg printed. The write to the
# driver's unbind file returns once the device is gone; run in the
# background, the write is made by the background job's own process, so
# its pid shows where the removal waits.
dax_unbind() {
	echo "${1#*=}" > "${1%%=*}"
}

# Undo a removal: ARG is what dax_unbind_arg printed before the device was
# removed. The nd bus device goes back to its driver and the block or dax
# device comes back with its data.
dax_rebind() {
	[ -n "$1" ] && echo "${1#*=}" > "$(dirname "${1%%=*}")/bind"
}

# The dev_pagemap_failure registry counter NAME of device DEV in state STATE
# (live or dead), from debugfs; empty if there is no such device.
dpf_counter() {
	awk -v dev="$1" -v state="state=$2" -v name="$3=" '
		$1 == dev && $2 == state {
			for (i = 3; i <= NF; i++)
				if (index($i, name) == 1)
					print substr($i, length(name) + 1)
			exit
		}' /sys/kernel/debug/dev_pagemap_failure/devices
}

# Number of live claims of device DEV with owner OWNER, from debugfs.
dpf_claims() {
	awk -v dev="$1" -v owner="$2" '
		$1 == dev && $2 == "state=live" { on = 1; next }
		/^[^ ]/ { on = 0 }
		on && $1 == "claim" && $3 == owner { n++ }
		END { print n + 0 }' /sys/kernel/debug/dev_pagemap_failure/devices
}

# The sector count of block device DEV (pmem0, dm-0).
dax_sectors() {
	cat "/sys/class/block/$1/size"
}

# Wait up to 2 s (scaled) for /dev/DEV to appear after a rebind (there is
# no udev in the test guest; devtmpfs creates the node asynchronously).
dax_wait_blockdev() {
	for i in $(seq 1 "$(scaled 10)"); do
		[ -b "/dev/$1" ] && return 0
		sleep 0.2
	done
	return 1
}

# dm_create NAME TABLE: create a dm device and its /dev/mapper node (there
# is no udev in the test guest).
dm_create() {
	dmsetup create --noudevsync "$1" --table "$2" && dmsetup mknodes "$1"
}

# The kernel name (dm-N) of the dm device NAME.
dm_kname() {
	echo "dm-$(dmsetup info -c --noheadings -o minor "$1" | tr -d ' ')"
}

dm_remove() {
	dmsetup remove --noudevsync "$1"
}

# dm_writecache NAME CACHE ORIGIN: a dm-writecache device NAME that caches
# the block device ORIGIN on the pmem device CACHE, in 4 KiB blocks. A cache
# whose first block is zero is formatted: what earlier users left there is
# not a writecache superblock.
dm_writecache() {
	dd if=/dev/zero of="/dev/$2" bs=1M count=1 oflag=direct 2>/dev/null
	dm_create "$1" "0 $(dax_sectors "$3") writecache p /dev/$3 /dev/$2 4096 0"
}

# The dm-writecache table dpf-wc in pmem mode, 4 KiB blocks, on the pmem
# device whose first pfn is $cache_pfn, with $blocks cache blocks:
# wc_pfn N: the pfn of cache block N: its data starts after the 64-byte
# superblock and 16 bytes of metadata per block, rounded up to a block
# (drivers/md/dm-writecache.c).
wc_pfn() {
	echo $((cache_pfn + (64 + 16 * blocks + 4095) / 4096 + $1))
}

# wc_field N: field N of "dmsetup status dpf-wc" ("0 LEN writecache ERROR
# BLOCKS FREE WRITEBACK ...").
wc_field() {
	dmsetup status dpf-wc | awk -v n="$1" '{ print $n }'
}

# wc_block N FILE: does 4 KiB block N of dpf-wc hold what FILE holds?
wc_block() {
	dd if=/dev/mapper/dpf-wc of=/tmp/wc_block.read bs=4096 skip="$1" count=1 \
		iflag=direct 2>/dev/null && cmp -s /tmp/wc_block.read "$2"
}

# rasdaemon (Debian's build, in the guest of scripts/vm.sh), run as an
# administrator runs it to record RAS events in its sqlite database.
RAS_DB=/var/lib/rasdaemon/ras-mc_event.db

ras_query() {
	sqlite3 "$RAS_DB" "$1" 2>/dev/null
}

# ras_start: start rasdaemon recording (-f -r) and wait until it listens to
# ras:memory_failure_event; 1 if it does not. It looks for tracefs at
# debugfs's tracing/, which this kernel does not automount
# (CONFIG_TRACEFS_AUTOMOUNT_DEPRECATED needs FTRACE), so it runs in a mount
# namespace of its own where that path is tracefs. The harness's preload
# (harness/rasdaemon_nowait/) skips its 30 s wait for each tracepoint this
# kernel does not have.
ras_start() {
	local deadline
	rm -f "$RAS_DB" /tmp/rasdaemon.log
	mkdir -p /var/lib/rasdaemon
	unshare -m sh -c 'mount --make-rprivate / &&
		mkdir -p /run/ras-debugfs && mount -t tmpfs none /run/ras-debugfs &&
		mkdir /run/ras-debugfs/tracing &&
		mount -t tracefs nodev /run/ras-debugfs/tracing &&
		mount --rbind /run/ras-debugfs /sys/kernel/debug &&
		LD_PRELOAD=/dpf/rasdaemon_nowait.so exec rasdaemon -f -r' \
		> /tmp/rasdaemon.log 2>&1 &
	ras_pid=$!
	deadline=$(($(dpf_uptime) + $(scaled 120)))
	while [ "$(dpf_uptime)" -lt "$deadline" ] && alive "$ras_pid"; do
		if grep -q "Listening to events" /tmp/rasdaemon.log &&
		   grep -q "Enabled event ras:memory_failure_event" /tmp/rasdaemon.log &&
		   [ -n "$(ras_query "select count(*) from memory_failure_event")" ]; then
			ktap_print_msg "$(rasdaemon --version 2>&1 | head -n1)" \
				"listening (pid $ras_pid)"
			return 0
		fi
		sleep 0.5
	done
	sed 's/^/# rasdaemon: /' /tmp/rasdaemon.log | tail -n 40
	return 1
}

ras_stop() {
	kill "$ras_pid" 2>/dev/null
	wait "$ras_pid" 2>/dev/null
}

# How many memory failures rasdaemon has stored: it logs a line for each
# (in the foreground). Counted there rather than in its database, which a
# reader would lock against its writes (a record that finds the database
# busy is dropped).
ras_stored() {
	grep -c "memory_failure_event store:" /tmp/rasdaemon.log
}

# ras_mark: from here on, ras_new counts the memory failures rasdaemon records.
ras_mark() {
	ras_seen=$(ras_query "select ifnull(max(id), 0) from memory_failure_event")
	ras_stored_seen=$(ras_stored)
}

# ras_new N: wait until rasdaemon has stored N memory failures since
# ras_mark, or its count has not grown for 10 s (scaled; it stores each
# record in its own sqlite transaction, slowly under TCG), and a second
# more; then print "RECORDS PAGES SPAN": the records in its database, the
# distinct pfns among them, and the number of pages from the first to the
# last. Failed stores are shown.
ras_new() {
	local n last=-1 since
	since=$(dpf_uptime)
	while [ $(($(dpf_uptime) - since)) -lt "$(scaled 10)" ]; do
		n=$(($(ras_stored) - ${ras_stored_seen:-0}))
		[ "$n" -ge "$1" ] && break
		if [ "$n" != "$last" ]; then
			last=$n
			since=$(dpf_uptime)
		fi
		sleep 0.5
	done
	sleep 1
	grep "Failed .*memory_failure_event" /tmp/rasdaemon.log | sort | uniq -c |
		sed 's/^/# rasdaemon: /' >&2
	ras_query "select pfn from memory_failure_event where id > ${ras_seen:-0}" |
		while read -r pfn; do echo $((pfn)); done | sort -n |
		awk 'NR == 1 { first = $1 } { n++; if (n == 1 || $1 != last) d++; last = $1 }
		     END { print n + 0, d + 0, n ? last - first + 1 : 0 }'
}

# fsynced_writer DIR: write fsynced 4 MiB files in DIR, one after the
# other, until one fails; then print how many were written. For writes in
# flight during a removal: run it in the background.
fsynced_writer() {
	local i=0
	while dd if=/dev/zero of="$1/stream.$((i % 8))" bs=1M count=4 conv=fsync \
		2>/dev/null; do
		i=$((i + 1))
	done
	echo "$i"
}

dpf_set_mode() {
	echo "$1" > /sys/module/dev_pagemap_failure/parameters/mode
}

# The byte offset on the data device of FILE's first block.
dax_file_phys() {
	xfs_io -c "bmap -v" "$1" | awk '$1 == "0:" { split($3, r, "[.]"); print r[1] * 512 }'
}

# dax_cached_files DIR: 8 files in DIR with DAX entries in their page
# cache, nobody mapping them.
dax_cached_files() {
	local i
	for i in $(seq 1 8); do
		xfs_io -f -c "truncate 256k" -c "mmap -w 0 256k" -c "mwrite -S 0x5a 0 256k" \
			-c munmap "$1/m$i"
	done
}

# The size in bytes of an allocation group of the filesystem on DEV.
dax_agbytes() {
	agblocks=$(xfs_db -r -c "sb 0" -c "p agblocks" "$1" | sed 's/.* = //')
	blocksize=$(xfs_db -r -c "sb 0" -c "p blocksize" "$1" | sed 's/.* = //')
	echo $((agblocks * blocksize))
}

alive() {	# alive PID: is PID still running (not a zombie)?
	[ -n "$1" ] && [ -d "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null
}

# wait_gone SECONDS PID...: wait up to SECONDS (scaled) of guest time for
# every PID to end.
wait_gone() {
	local deadline pid
	deadline=$(($(dpf_uptime) + $(scaled "$1")))
	shift
	for pid in "$@"; do
		while alive "$pid"; do
			[ "$(dpf_uptime)" -ge $deadline ] && return 1
			sleep 0.2
		done
	done
}

# in_kernel PID FUNCTION: is FUNCTION on the kernel stack of PID?
in_kernel() {
	grep -q "$2" "/proc/$1/stack" 2>/dev/null
}

# wait_in_kernel PID FUNCTION: wait up to 20 s (scaled), while PID runs,
# until FUNCTION is on its kernel stack; fails if it never is.
wait_in_kernel() {
	local i
	for i in $(seq 1 "$(scaled 100)"); do
		in_kernel "$1" "$2" && return 0
		alive "$1" || break
		sleep 0.2
	done
	in_kernel "$1" "$2"
}

# start_pinner FILE OUT: run dax_pin on FILE in the background, its output in
# OUT, and set $pinner to its PID; fails if it has not pinned within 10 s
# (scaled).
start_pinner() {
	local i
	: > "$2"
	"$DIR/dax_pin" "$1" > "$2" &
	pinner=$!
	for i in $(seq 1 "$(scaled 20)"); do
		grep -q pinned "$2" && return 0
		sleep 0.5
	done
	return 1
}

# The KTAP helpers below need ktap_helpers.sh sourced first (the kselftests
# do; the demo only uses the functions above).

# Run a probe with its TAP indented as a subtest, and report one result.
run_probe() {
	local title=$1 out rc
	shift
	out=$("$@" 2>&1)
	rc=$?
	echo "$out" | sed 's/^/    /'
	ktap_test_result "$title" [ $rc -eq 0 ]
}

# result TITLE: one test result, from the exit status of the command before.
# For compound conditions: ktap_test_result runs "$@" unquoted, so neither
# "a && b" nor an argument with spaces can be passed to it.
result() {
	rc=$?
	ktap_test_result "$1" [ $rc -eq 0 ]
}

# Did the kernel log PATTERN since the last dmesg -c?
dmesg_has() {
	dmesg | grep -q "$1"
}

stacks() {	# stacks PID...: print the kernel stacks of those still running
	local pid
	for pid in "$@"; do
		alive "$pid" || continue
		ktap_print_msg "kernel stack of $pid ($(cat "/proc/$pid/comm")):"
		sed 's/^/#   /' "/proc/$pid/stack"
	done
}
