#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest side of `make bench`: one boot per NVDIMM size. Kernel parameters:
#   dpf.bench=removal	removal of the namespace under P processes that map
#			M MiB of XFS files in total, in every mode, and the
#			same processes unmapping themselves (munmap), or
#			writing back and then unmapping (msync)
#   dpf.bench=storm	poison storms: N contiguous pages through one
#			memory_failure_range() (mode ranged) against N
#			single-page memory_failure() calls (mode pfn)
#   dpf.bench=queued	a burst of N contiguous poisoned pages queued as
#			GHES queues them (queue_pfns): upstream's queue
#			(mode off, drops), page by page (pfn), coalesced
#			into one run (ranged); timed until accounted
#   dpf.bench=mce	2 MiB of a file failed by real machine checks: 512
#			errors of 4 KiB (page by page) against one error of
#			2 MiB granularity (one range); timed until accounted
#   dpf.bench=ext4	the removal under processes that map 64 MiB of ext4
#			-o dax files, in modes pfn and ranged, and munmap
#   dpf.bench=ext4sync	ext4: syncfs() of the removal benchmark's dirty
#			mappings alone, and the ranged removal, in turn
#   dpf.bench=lookup	dispatch cost with 1, 100 and 10000 claims
#   dpf.bench=ag0	one upstream removal (mode off) with the file data in
#			allocation group 0, which loops; the host cuts it off
#   dpf.bench=scale	the removal as the device grows (make bench-scale):
#			64 MiB mapped of XFS -m rmapbt=1 in modes off, ranged
#			and pfn, of ext4 -o dax in modes ranged and pfn and
#			its syncfs() of the same dirty mappings alone, the
#			whole unbind and the revocation alone; a profile of
#			one ranged XFS unbind (dax_bench -p); and upstream's
#			own teardown, a devdax namespace of the same region
#			with 64 MiB mapped, removed in mode off
#   dpf.bench=memory	what the registries cost, from the slab and per-CPU
#			counters of the running kernel: 1000 dm devices
#			that nobody claims (every one has a dax_device),
#			and, with the hold_claims test file, 10000 empty
#			registries and one registry with 10000 claims
#   dpf.pfn_reps=R	scale: repetitions of mode pfn (default dpf.reps)
#   dpf.reps=R		repetitions of every measurement
#   dpf.modes=M,M	removal: the modes to measure (off,pfn,ranged,munmap,msync)
#   dpf.mapped=N,N	removal: MiB mapped in total (64,512)
#   dpf.msync=1		removal: measure mode msync too (512 MiB mapped only)
# and several of them, comma-separated. Prints "BENCH key=value ..." lines
# for scripts/bench.py.

SEL=/dpf/selftests
. "$SEL/dax_lib.sh"
MNT=/mnt/bench
# Removal: PROCS processes map FILES files (each file by PROCS / FILES of
# them), MAPPED / PROCS MiB each. All the data sits in the last of two
# allocation groups, where upstream's rmap walk terminates (in any other
# group it loops), and 512 MiB of mappings fit even on a 1 GiB device.
PROCS=4
FILES=2
LOOKUP=/sys/kernel/debug/dev_pagemap_failure/bench_lookup
LAST=/sys/kernel/debug/dev_pagemap_failure/last_failure_ns
HOLD=/sys/kernel/debug/dev_pagemap_failure/hold_claims
DEVICES=/sys/kernel/debug/dev_pagemap_failure/devices

benches=removal reps=5 modes="off pfn ranged munmap msync" mapped_list="64 512" msync=0
pfn_reps=
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	dpf.bench=*) benches=$(echo "${arg#dpf.bench=}" | tr , ' ') ;;
	dpf.reps=*) reps=${arg#dpf.reps=} ;;
	dpf.modes=*) modes=$(echo "${arg#dpf.modes=}" | tr , ' ') ;;
	dpf.mapped=*) mapped_list=$(echo "${arg#dpf.mapped=}" | tr , ' ') ;;
	dpf.msync=*) msync=${arg#dpf.msync=} ;;
	dpf.pfn_reps=*) pfn_reps=${arg#dpf.pfn_reps=} ;;
	esac
done

dax_setup_namespaces fsdax all
[ -b "/dev/$pmem" ] || { echo "BENCH error no namespace"; exit 1; }
unbind=$(dax_unbind_arg "$pmem")
size_mib=$(($(cat "/sys/block/$pmem/size") / 2048))
echo "BENCH device name=$pmem size_mib=$size_mib"

wait_dev() {
	for i in $(seq 1 50); do
		[ -b "/dev/$pmem" ] && return 0
		sleep 0.1
	done
	echo "BENCH error /dev/$pmem did not come back"
	exit 1
}

fresh_xfs() {	# fresh_xfs MKFS_OPTS...
	mkdir -p "$MNT"
	mkfs.xfs -f -q -m rmapbt=1 "$@" "/dev/$pmem" &&
		mount -o dax=always "/dev/$pmem" "$MNT" ||
		{ echo "BENCH error mkfs/mount failed"; exit 1; }
}

# FILES files of MIB each in allocation group AG; sets $files to the path
# of each process's file (each file PROCS / FILES times).
make_files() {	# make_files MIB AG
	files=
	for f in $(seq 1 $FILES); do
		path=$(dax_file_in_ag "$MNT/f$f" "$1" "$2") ||
			{ echo "BENCH error no file of $1 MiB in AG $2"; exit 1; }
		for p in $(seq 1 $((PROCS / FILES))); do
			files="$files $path"
		done
	done
}

last_ag() {
	echo $(($(dax_agcount "/dev/$pmem") - 1))
}

# One removal (or munmap, or msync and munmap) of MAPPED MiB in MODE; prints
# the BENCH line. With PROFILE, the unbind is sampled into that file
# (dax_bench -p).
removal_once() {	# removal_once MAPPED MODE REP [PROFILE]
	per=$(($1 / PROCS))
	fresh_xfs -d agcount=2
	make_files $per "$(last_ag)"
	if [ "$2" = munmap ] || [ "$2" = msync ]; then
		sync=
		[ "$2" = msync ] && sync=-m
		dpf_set_mode ranged
		# shellcheck disable=SC2086
		out=$("$SEL/dax_bench" -s $per -u $sync $files)
		umount "$MNT"
	else
		dpf_set_mode "$2"
		# shellcheck disable=SC2086
		out=$("$SEL/dax_bench" -s $per -r "$unbind" ${4:+-p "$4"} $files)
		# The revocation alone (dev_pagemap_failure()), without the rest
		# of the driver's teardown; mode off never calls it.
		[ "$2" = off ] || out="$out revoke_ns=$(cat "$LAST")"
		umount "$MNT"
		dax_rebind "$unbind"
		wait_dev
	fi
	echo "BENCH removal size_mib=$size_mib mapped_mib=$1 procs=$PROCS files=$FILES" \
		"mode=$2 rep=$3 $out"
}

removal() {
	for mapped in $mapped_list; do
		for mode in $modes; do
			# The msync limit is measured with the larger mappings on the
			# smallest and the largest device (dpf.msync=1 on those boots):
			# it does not depend on the device, and every run counts
			# against make bench's 30 minutes.
			[ "$mode" = msync ] && { [ "$mapped" -lt 512 ] || [ "$msync" != 1 ]; } && continue
			for rep in $(seq 1 "$reps"); do
				removal_once $mapped $mode "$rep"
			done
		done
	done
	dpf_set_mode ranged
}

# ext4 -o dax on the whole device, the same processes and files as the XFS
# removal: one removal (or munmap) in MODE. Mode off is not timed: upstream
# never revokes ext4's mappings (make demo shows the processes reading the
# removed memory, then an Oops). Mounted with noinit_itable: otherwise
# ext4lazyinit zeroes the inode tables of the fresh filesystem beside the
# measurement, for longer the larger the device.
ext4_once() {	# ext4_once MAPPED MODE REP [PROFILE]
	per=$(($1 / PROCS))
	mkdir -p "$MNT"
	mkfs.ext4 -q -F "/dev/$pmem" &&
		mount -o dax,noinit_itable "/dev/$pmem" "$MNT" ||
		{ echo "BENCH error ext4 mkfs/mount failed"; exit 1; }
	files=
	for f in $(seq 1 $FILES); do
		xfs_io -f -c "falloc 0 ${per}m" "$MNT/f$f"
		for p in $(seq 1 $((PROCS / FILES))); do
			files="$files $MNT/f$f"
		done
	done
	if [ "$2" = munmap ]; then
		dpf_set_mode ranged
		# shellcheck disable=SC2086
		out=$("$SEL/dax_bench" -s $per -u $files)
		umount "$MNT"
	elif [ "$2" = syncfs ]; then
		# ext4's own sync of the same dirty mappings, which the
		# revocation does first (and upstream's removal too, in
		# del_gendisk()), timed alone.
		# shellcheck disable=SC2086
		out=$("$SEL/dax_bench" -s $per -S "$MNT" $files)
		umount "$MNT"
	else
		dpf_set_mode "$2"
		# shellcheck disable=SC2086
		out="$("$SEL/dax_bench" -s $per -r "$unbind" ${4:+-p "$4"} $files)"
		out="$out revoke_ns=$(cat "$LAST")"
		umount "$MNT"
		dax_rebind "$unbind"
		wait_dev
	fi
	echo "BENCH ext4 size_mib=$size_mib mapped_mib=$1 procs=$PROCS files=$FILES" \
		"mode=$2 rep=$3 $out"
}

ext4() {
	for mode in pfn ranged munmap; do
		for rep in $(seq 1 "$reps"); do
			ext4_once 64 $mode "$rep"
		done
	done
	dpf_set_mode ranged
}

ext4sync() {
	for rep in $(seq 1 "$reps"); do
		ext4_once 64 syncfs "$rep"
		ext4_once 64 ranged "$rep"
	done
}

storm() {
	for n in 4096 262144; do
		# Two allocation groups, so that the file is one extent. Nothing
		# maps the file, so no page is marked poisoned: every repetition
		# finds the same state, and one filesystem serves them all.
		fresh_xfs -d agcount=2
		mkdir -p "$MNT/s"
		xfs_io -f -c "falloc 0 $((n * 4))k" "$MNT/s/victim"
		extents=$(xfs_io -c "bmap" "$MNT/s/victim" | grep -c '^[[:space:]]*[0-9][0-9]*:')
		pfn=$("$SEL/dax_poison" -P "$MNT/s/victim")
		for mode in pfn ranged; do
			for rep in $(seq 1 "$reps"); do
				before=$(dpf_counter "$pmem" live dispatches)
				dpf_set_mode $mode
				out=$("$SEL/dax_bench" -r "$INJECT=$pfn $n")
				dpf_set_mode ranged
				after=$(dpf_counter "$pmem" live dispatches)
				echo "BENCH storm pages=$n mode=$mode rep=$rep extents=$extents" \
					"handler_calls=$((after - before)) $out"
			done
		done
		umount "$MNT"
	done
}

QUEUE=/sys/kernel/debug/dev_pagemap_failure/queue_pfns

# The pfn of FILE's first block, without touching it (a page touched once
# is in the page cache, and poison marks it for the rest of the boot): the
# start of the pmem's data (the resource of its pfn device) plus the
# block's offset. FILE must be one extent.
file_pfn() {
	local start off
	start=$(cat "/sys/block/$pmem/device/resource") off=$(dax_file_phys "$1")
	[ -n "$start" ] && [ -n "$off" ] &&
		[ "$(xfs_io -c "bmap" "$1" | grep -c '^[[:space:]]*[0-9][0-9]*:')" = 1 ] ||
		{ echo "BENCH error $1 is not one extent on $pmem"; return 1; }
	echo $(((start + off) / 4096))
}

queued() {
	for n in 4096 262144; do
		fresh_xfs -d agcount=2
		mkdir -p "$MNT/q"
		xfs_io -f -c "falloc 0 $((n * 4))k" "$MNT/q/victim"
		pfn=$(file_pfn "$MNT/q/victim") || { umount "$MNT"; continue; }
		for mode in off pfn ranged; do
			for rep in $(seq 1 "$reps"); do
				before=$(dpf_counter "$pmem" live dispatches)
				dpf_set_mode $mode
				out=$("$SEL/dax_bench" -r "$QUEUE=$pfn $n" -W $((n * 4)))
				dpf_set_mode ranged
				after=$(dpf_counter "$pmem" live dispatches)
				echo "BENCH queued pages=$n mode=$mode rep=$rep" \
					"handler_calls=$((after - before)) $out"
			done
		done
		umount "$MNT"
	done
}

# Real machine checks stay in the pmem's badblocks for the rest of the boot:
# every repetition takes another 2 MiB granule of one file, and the file
# is one extent on a fresh filesystem.
mce() {
	local nl='
'
	fresh_xfs -d agcount=2
	mkdir -p "$MNT/m"
	xfs_io -f -c "falloc 0 $(((2 * reps + 1) * 2))m" "$MNT/m/victim"
	pfn=$(file_pfn "$MNT/m/victim") || { umount "$MNT"; return; }
	# The first granule of the file: its first pfn that is a multiple of 512.
	base=$(((pfn + 511) / 512 * 512))
	k=0
	for how in pages granule; do
		for rep in $(seq 1 "$reps"); do
			addr=$(((base + k * 512) * 4096))
			k=$((k + 1))
			if [ $how = pages ]; then
				req="mce $(printf %#x $addr) 0x8c 512 0x1000$nl"
			else
				req="mce $(printf %#x $((addr + 4096))) 0x95 1 0x1000$nl"
			fi
			before=$(dpf_counter "$pmem" live dispatches)
			out=$("$SEL/dax_bench" -r "/dev/ttyS2=$req" -W 2048)
			after=$(dpf_counter "$pmem" live dispatches)
			echo "BENCH mce how=$how rep=$rep handler_calls=$((after - before)) $out"
		done
	done
	umount "$MNT"
}

# The claim counts take turns within each repetition, so that a slow spell
# of a noisy host falls on all of them rather than on one.
lookup() {
	for rep in $(seq 1 "$reps"); do
		for claims in 1 100 10000; do
			echo "$claims 200000" > "$LOOKUP" || echo "BENCH error bench_lookup"
			echo "BENCH lookup rep=$rep $(cat "$LOOKUP")"
		done
	done
}

# Bytes of slab objects in use: active objects times object size, over every
# cache of /proc/slabinfo; and the per-CPU allocator's bytes.
slab_bytes() {
	awk 'NR > 2 { s += $2 * $4 } END { printf "%d\n", s }' /proc/slabinfo
}
percpu_bytes() {
	awk '/^Percpu:/ { printf "%d\n", $2 * 1024 }' /proc/meminfo
}

# Settles the slab counters before a reading: RCU-freed objects go back.
settle() {
	sync
	echo 3 > /proc/sys/vm/drop_caches
	sleep 2
}

# What the registries cost in memory. N dm devices (the error target, no DAX
# claim on any of them; each still has a dax_device): slab and per-CPU
# bytes per device, and how many registries exist for them. Then, with the
# hold_claims test file, REGS empty registries and one with CLAIMS claims,
# held while the counters are read: bytes per registry and per claim.
memory() {
	n=1000 regs=10000 claims=10000
	for rep in $(seq 1 "$reps"); do
		settle
		s0=$(slab_bytes) p0=$(percpu_bytes) r0=$(grep -c " state=" "$DEVICES")
		i=0
		while [ $i -lt $n ]; do
			dmsetup create --noudevsync "dpf-mem-$i" --table "0 8 error" ||
				{ echo "BENCH error dmsetup create"; return; }
			i=$((i + 1))
		done
		settle
		s1=$(slab_bytes) p1=$(percpu_bytes) r1=$(grep -c " state=" "$DEVICES")
		echo "BENCH memory rep=$rep what=dm_devices count=$n" \
			"slab_bytes=$((s1 - s0)) percpu_bytes=$((p1 - p0))" \
			"registries=$((r1 - r0))"
		dmsetup remove_all --noudevsync 2>/dev/null ||
			echo "BENCH error dmsetup remove_all"
		[ -w "$HOLD" ] || continue
		for what in registries claims; do
			if [ $what = registries ]; then
				arg="$regs 0" count=$regs
			else
				arg="1 $claims" count=$claims
			fi
			settle
			s0=$(slab_bytes) p0=$(percpu_bytes)
			echo "$arg" > "$HOLD" || { echo "BENCH error hold_claims"; return; }
			settle
			s1=$(slab_bytes) p1=$(percpu_bytes)
			echo "0 0" > "$HOLD"
			echo "BENCH memory rep=$rep what=$what count=$count" \
				"slab_bytes=$((s1 - s0)) percpu_bytes=$((p1 - p0))"
		done
	done
}

# Upstream's removal with the data in allocation group 0. Mode off is
# upstream 7.3.4 with the series' first patch, the XFS wrap fix: the rmap
# walk goes page by page but returns. Without that fix it wrapped a 32-bit
# block number and looped (about 470 s, measured before the fix was split
# out; see README.md); the host's timeout would end the boot.
ag0() {
	dpf_set_mode off
	fresh_xfs
	make_files 16 0
	echo "BENCH ag0 started size_mib=$size_mib"
	# shellcheck disable=SC2086
	out=$("$SEL/dax_bench" -s 16 -r "$unbind" $files)
	echo "BENCH ag0 size_mib=$size_mib $out"
}

# Where PROFILE's samples (dax_bench -p) spent their time: a line per
# function found in at least 1% of them, with the samples in which it was
# running (self: the innermost frame that is not the preemption by the
# sampler itself) and those in which it was on the stack (incl).
profile_lines() {	# profile_lines PROFILE WHAT
	awk -v what="$2" '
		BEGIN { first = 1 }
		$1 == "--" { n++; first = 1; split("", seen); next }
		{
			f = $2
			sub(/\+.*/, "", f)
			if (first && f !~ /^(preempt_schedule|irqentry_exit|asm_sysvec|sysvec_|__sysvec)/) {
				self[f]++
				first = 0
			}
			if (!(f in seen)) { incl[f]++; seen[f] = 1 }
		}
		END {
			for (f in incl)
				if (incl[f] * 100 >= n)
					printf "BENCH profile %s samples=%d func=%s self=%d incl=%d\n",
						what, n, f, self[f] + 0, incl[f]
		}' "$1"
}

scale() {
	local n mode rep dunbind dsize files
	[ -n "$pfn_reps" ] || pfn_reps=$reps
	for mode in off ranged pfn; do
		n=$reps
		[ $mode = pfn ] && n=$pfn_reps
		for rep in $(seq 1 "$n"); do
			removal_once 64 $mode "$rep"
		done
	done
	for mode in ranged syncfs pfn; do
		n=$reps
		[ $mode = pfn ] && n=$pfn_reps
		for rep in $(seq 1 "$n"); do
			ext4_once 64 $mode "$rep"
		done
	done
	removal_once 64 ranged 1 /tmp/profile > /dev/null
	profile_lines /tmp/profile "size_mib=$size_mib fs=xfs mode=ranged"
	ext4_once 64 ranged 1 /tmp/profile > /dev/null
	profile_lines /tmp/profile "size_mib=$size_mib fs=ext4 mode=ranged"
	# Upstream's own teardown of the region: a devdax namespace (its memmap
	# on the device too) under the same mappings, removed as upstream
	# removes it in every mode.
	dax_setup_namespaces devdax all
	[ -c "/dev/$dax" ] || { echo "BENCH error no devdax namespace"; return; }
	dunbind=$(dax_unbind_arg "$dax")
	dsize=$(($(cat "/sys/bus/dax/devices/$dax/size") >> 20))
	files=
	for p in $(seq 1 $PROCS); do
		files="$files /dev/$dax"
	done
	dpf_set_mode off
	for rep in $(seq 1 "$reps"); do
		# shellcheck disable=SC2086
		out=$("$SEL/dax_bench" -s 16 -r "$dunbind" $files)
		echo "BENCH devdax size_mib=$dsize mapped_mib=64 procs=$PROCS mode=off rep=$rep $out"
		dax_rebind "$dunbind"
		for i in $(seq 1 600); do
			[ -c "/dev/$dax" ] && break
			sleep 0.5
		done
	done
	dpf_set_mode ranged
}

# A line every two minutes: the host takes a guest silent for ten as hung,
# and page at a time on the largest device is silent for longer.
while sleep 120; do
	echo "# still measuring"
done &
heartbeat=$!

for b in $benches; do
	case $b in
	removal | ext4 | ext4sync | storm | queued | mce | lookup | ag0 | scale | memory) $b ;;
	*) echo "BENCH error unknown benchmark $b"; exit 1 ;;
	esac
done
kill "$heartbeat"
echo "BENCH done"
