#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Failures of persistent memory below device-mapper must reach the
# filesystem on the dm device, in the dm device's offsets: dm-linear,
# dm-stripe, a linear device stacked on a striped one, a table reload under
# a live mapping, dm-log-writes, a dm-linear device grown under XFS, and
# dm devices whose routes overlap.
#
# Needs one NVDIMM region of at least 2 GiB with a label area, ndctl,
# dmsetup, mkfs.xfs, xfs_io and a kernel with CONFIG_DEV_PAGEMAP_FAILURE,
# its injection file and debugfs; destroys everything on that region. Runs
# in the failure mode "ranged" (upstream gets no notice here at all, which
# `make demo` shows).

DIR=$(cd "$(dirname "$0")" && pwd)
. "$DIR/ktap_helpers.sh"
. "$DIR/dax_lib.sh"

MNT=/mnt/dm_failure
# Mapped per scenario: 8 PMD-sized extents, every page written. After the
# removal the probe (-e 64) reads and writes one page of every 64, at a
# different offset in each group, and the last page: under TCG with KASAN
# every probe costs a fault and a SIGBUS, and a mapping is revoked a PMD or
# an extent at a time, so 8 probes per extent prove what 512 would. The
# benchmark and demo map 64 MiB and probe every page.
SIZE_MB=16
PROBE="$DIR/dax_stale_mapping"
POISON="$DIR/dax_poison"
DEVICES=/sys/kernel/debug/dev_pagemap_failure/devices
TRACE=/sys/kernel/tracing
EVENT=$TRACE/events/dev_pagemap_failure/dax_failure_dispatch
# The stripe chunk: 12 MiB, not a power of two.
CHUNK=24576

# one_page DEV OWNER: the number of traced one-page dispatches on DEV to
# OWNER that it took (ret=0).
one_page() {
	grep -c "dev=$1 offset=0x[0-9a-f]* len=0x1000 .*owner=$2 ret=0" "$TRACE/trace"
}

xfs_mount() {	# xfs_mount DEV MKFS_OPTS
	mkdir -p "$MNT"
	mkfs.xfs -f -q $2 "$1" && mount -o dax=always "$1" "$MNT"
}

# Does FILE lie in one extent, entirely inside one chunk of member MEMBER
# of a 2-way stripe of $CHUNK sectors?
on_member() {
	local file=$1 member=$2 start len chunk_bytes
	[ "$(xfs_io -c "bmap -v" "$file" | awk '$1 ~ /^[0-9]+:$/' | wc -l)" -eq 1 ] ||
		return 1
	start=$(dax_file_phys "$file")
	len=$(stat -c %s "$file")
	chunk_bytes=$((CHUNK * 512))
	[ $((start / chunk_bytes)) -eq $(((start + len - 1) / chunk_bytes)) ] &&
		[ $((start / chunk_bytes % 2)) -eq "$member" ]
}

# Make 1 MiB files NAME.N in MNT until one lies on stripe member MEMBER;
# print its path.
file_on_member() {
	local name=$1 member=$2 i
	for i in $(seq 1 60); do
		xfs_io -f -c "falloc 0 1m" "$MNT/$name.$i"
		if on_member "$MNT/$name.$i" "$member"; then
			echo "$MNT/$name.$i"
			return 0
		fi
	done
	return 1
}

trace_on() {
	[ -d "$TRACE/events" ] || mount -t tracefs nodev "$TRACE" 2>/dev/null
	echo > "$TRACE/trace"
	echo 1 > "$EVENT/enable"
}

trace_off() {
	echo 0 > "$EVENT/enable"
}

# The traced dispatches since trace_on, on one line, for the log.
trace_lines() {
	grep 'dax_failure_dispatch:' "$TRACE/trace" | sed 's/.*dax_failure_dispatch: //' |
		tr '\n' ';'
}

# Trace lines of dispatches on DEV to OWNER.
traced() {
	grep -c "dax_failure_dispatch: dev=$1 .*owner=$2 ret=0" "$TRACE/trace"
}

# removal NAME PMEM STACK_DEVS: remove PMEM under a process that maps a
# $SIZE_MB MiB file of the XFS mounted on MNT; STACK_DEVS are the kernel names of
# the dm devices from the bottom up. PMEM must make exactly one call (to the
# dm device above it) and each dm device exactly one call up, and nothing
# mapped may be left to the fallback (no per-page kills). Four results;
# sets REBIND to bring PMEM back.
removal() {
	local name=$1 victim=$2 devs=$3 before vbefore vafter after ok dev
	local kills fallback errors
	xfs_io -f -c "falloc 0 ${SIZE_MB}m" "$MNT/data"
	REBIND=$(dax_unbind_arg "$victim")
	before=
	for dev in $devs; do
		before="$before $(dpf_counter "$dev" live dispatches)"
	done
	vbefore=$(dpf_counter "$victim" live dispatches)
	dmesg -c >/dev/null
	run_probe "$name: no page readable or writable after removal, in time" \
		"$PROBE" -e 64 -s "$SIZE_MB" -t "$(scaled 5000)" -r "$REBIND" "$MNT/data"

	ok=1
	set -- $before
	for dev in $devs; do
		after=$(dpf_counter "$dev" live dispatches)
		ktap_print_msg "$name: $dev dispatches ${1:-?} -> ${after:-?}"
		[ -n "$1" ] && [ "$after" = $(($1 + 1)) ] || ok=0
		shift
	done
	vafter=$(dpf_counter "$victim" dead dispatches)
	fallback=$(dpf_counter "$victim" dead fallback_pages)
	errors=$(dpf_counter "$victim" dead handler_errors)
	kills=$(dmesg | grep -c "Sending SIGBUS")
	ktap_print_msg "$name: $victim dispatches ${vbefore:-?} -> ${vafter:-?}," \
		"fallback pages ${fallback:-?} (not claimed by dm, nobody maps them)," \
		"handler errors ${errors:-?}, 'Sending SIGBUS' lines $kills"
	[ -n "$vbefore" ] && [ "$vafter" = $((vbefore + 1)) ] && [ "$errors" = 0 ] &&
		[ "$kills" -eq 0 ] || ok=0
	ktap_test_result "$name: one call per owner down the stack, no per-page kills" [ $ok = 1 ]
	dmesg_has "Block device removal (0x20) detected"
	result "$name: XFS on the dm device shuts down"
	ktap_test_result "$name: filesystem unmounts after removal" umount "$MNT"
}

ktap_print_header
ktap_set_plan 60
dpf_set_mode ranged

# 1. dm-linear over a whole namespace, rmapbt=1 and rmapbt=0: removing the
#    pmem device reaches XFS on the dm device in one call.
for rmapbt in 1 0; do
	name="dm-linear, rmapbt=$rmapbt"
	dax_setup_namespaces fsdax 1024M
	dm_create dpf-linear "0 $(dax_sectors "$pmem") linear /dev/$pmem 0"
	dm=$(dm_kname dpf-linear)
	xfs_mount /dev/mapper/dpf-linear "-m rmapbt=$rmapbt"
	ktap_print_msg "$name: $pmem -> $dm: $(grep -A1 "^$pmem state=live" "$DEVICES" |
		tr '\n' ' ')"
	[ "$(dpf_claims "$pmem" dm)" = 1 ] && [ "$(dpf_claims "$dm" holder)" = 1 ]
	result "$name: dm claims $pmem, XFS claims $dm"
	removal "$name" "$pmem" "$dm"
	ktap_test_result "$name: dmsetup remove after removal" dm_remove dpf-linear
	dax_rebind "$REBIND"
done

# 2. dm-linear over the first half of a namespace: poison in the mapped half
#    reaches XFS, poison in the other half goes to the fallback, not to dm.
name="dm-linear over half"
dax_setup_namespaces fsdax 1024M
half=$(($(dax_sectors "$pmem") / 2 / 8 * 8))
dm_create dpf-half "0 $half linear /dev/$pmem 0"
dm=$(dm_kname dpf-half)
xfs_mount /dev/mapper/dpf-half "-m rmapbt=1"
victim=$MNT/victim other=$MNT/other
xfs_io -f -c "falloc 0 4m" "$victim"
xfs_io -f -c "falloc 0 4m" "$other"
before=$(dpf_counter "$dm" live dispatches)
run_probe "$name: poison in the mapped half: SIGBUS at the page, other file readable" \
	"$POISON" -p 8 -n 4 -i "$INJECT" "$victim" "$other"
after=$(dpf_counter "$dm" live dispatches)
[ -n "$before" ] && [ "$after" = $((before + 1)) ]
result "$name: poison in the mapped half reaches XFS in one call"
# The pfn of byte 0 of the pmem device: a file's first pfn minus its offset.
pfn=$("$POISON" -P "$other")
phys=$(dax_file_phys "$other")
dm_before=$(dpf_counter "$dm" live dispatches)
fb_before=$(dpf_counter "$pmem" live fallback_pages)
if [ -n "$pfn" ] && [ -n "$phys" ]; then
	unmapped=$((pfn - phys / 4096 + half / 8 + 16))
	echo "$unmapped 2" > "$INJECT"
	ktap_print_msg "$name: poisoned pfn $unmapped + 2, $((half / 8 + 16)) pages into $pmem"
fi
dm_after=$(dpf_counter "$dm" live dispatches)
fb_after=$(dpf_counter "$pmem" live fallback_pages)
ktap_print_msg "$name: $dm dispatches ${dm_before:-?} -> ${dm_after:-?}," \
	"$pmem fallback pages ${fb_before:-?} -> ${fb_after:-?}"
[ -n "$dm_before" ] && [ "$dm_after" = "$dm_before" ] &&
	[ -n "$fb_before" ] && [ "$fb_after" = $((fb_before + 2)) ]
result "$name: poison in the unmapped half goes to the fallback, not to dm"
umount "$MNT"
ktap_test_result "$name: dmsetup remove" dm_remove dpf-half

# 3. dm-stripe over two namespaces: poison one page on one member, then
#    remove that member.
stripe_setup() {	# stripe_setup: two namespaces, a 2-way stripe of $CHUNK
	local width
	dax_setup_namespaces fsdax 768M fsdax 768M
	set -- $pmems
	p0=$1 p1=$2
	width=$(dax_sectors "$p0")
	[ "$(dax_sectors "$p1")" -lt "$width" ] && width=$(dax_sectors "$p1")
	width=$((width / CHUNK * CHUNK))
	stripe_len=$((2 * width))
	dm_create dpf-stripe "0 $stripe_len striped 2 $CHUNK /dev/$p0 0 /dev/$p1 0"
	sdm=$(dm_kname dpf-stripe)
}

name="dm-stripe"
stripe_setup
ktap_print_msg "$name: $p0 + $p1 -> $sdm, chunk $CHUNK sectors"
# noalign: file data is placed one after the other, across chunk boundaries.
xfs_mount /dev/mapper/dpf-stripe "-m rmapbt=1 -d noalign"
[ "$(dpf_claims "$p0" dm)" = 1 ] && [ "$(dpf_claims "$p1" dm)" = 1 ] &&
	[ "$(dpf_claims "$sdm" holder)" = 1 ]
result "$name: dm claims both members, XFS claims $sdm"
victim=$(file_on_member victim 0)
other=$(file_on_member other 1)
ktap_print_msg "$name: victim ${victim:-none} on $p0, other ${other:-none} on $p1"
before=$(dpf_counter "$sdm" live dispatches)
trace_on
if [ -n "$victim" ] && [ -n "$other" ]; then
	run_probe "$name: MADV_HWPOISON on $p0: SIGBUS at the page, file on $p1 readable" \
		"$POISON" -p 3 "$victim" "$other"
else
	ktap_test_fail "$name: no files on both members"
fi
trace_off
after=$(dpf_counter "$sdm" live dispatches)
ktap_print_msg "$name: trace: $(trace_lines)"
[ -n "$before" ] && [ "$after" = $((before + 1)) ] &&
	[ "$(one_page "$sdm" holder)" = 1 ] && [ "$(one_page "$p0" dm)" = 1 ]
result "$name: MADV_HWPOISON: one page from $p0 to dm, one from $sdm to XFS"
removal "$name, remove $p0" "$p0" "$sdm"
ktap_test_result "$name: dmsetup remove after removal" dm_remove dpf-stripe
dax_rebind "$REBIND"

# 4. dm-linear on top of dm-stripe: a member's removal climbs both levels.
name="dm-linear over dm-stripe"
stripe_setup
dm_create dpf-top "0 $stripe_len linear /dev/mapper/dpf-stripe 0"
tdm=$(dm_kname dpf-top)
xfs_mount /dev/mapper/dpf-top "-m rmapbt=1"
[ "$(dpf_claims "$p0" dm)" = 1 ] && [ "$(dpf_claims "$p1" dm)" = 1 ] &&
	[ "$(dpf_claims "$sdm" dm)" = 1 ] && [ "$(dpf_claims "$tdm" holder)" = 1 ]
result "$name: $sdm claims both members, $tdm claims $sdm, XFS claims $tdm"
removal "$name, remove $p1" "$p1" "$sdm $tdm"
dm_remove dpf-top && dm_remove dpf-stripe
result "$name: dmsetup remove of both levels"
dax_rebind "$REBIND"

# 5. Table reloads under a live mapping: the same table (the claim is handed
#    over) and a split table (claims replaced); then poison is delivered
#    once, to the current table.
name="dm-linear reload"
dax_setup_namespaces fsdax 1024M
len=$(dax_sectors "$pmem")
cut=$((len / 2 / 8 * 8))
dm_create dpf-reload "0 $len linear /dev/$pmem 0"
dm=$(dm_kname dpf-reload)
xfs_mount /dev/mapper/dpf-reload "-m rmapbt=1"
other=$MNT/other
xfs_io -f -c "falloc 0 4m" "$other"
same="0 $len linear /dev/$pmem 0"
split="0 $cut linear /dev/$pmem 0
$cut $((len - cut)) linear /dev/$pmem $cut"
n=0
for table in same split; do
	n=$((n + 1))
	eval "t=\$$table"
	victim=$MNT/victim$n
	xfs_io -f -c "falloc 0 4m" "$victim"
	before=$(dpf_counter "$dm" live dispatches)
	trace_on
	run_probe "$name ($table table) under the mapping: SIGBUS at the page, other file intact" \
		"$POISON" -p 5 -c "echo '$t' | dmsetup reload --noudevsync dpf-reload &&
			dmsetup resume --noudevsync dpf-reload" "$victim" "$other"
	trace_off
	after=$(dpf_counter "$dm" live dispatches)
	want=1
	[ $table = split ] && want=2
	ktap_print_msg "$name ($table): $pmem claims by dm $(dpf_claims "$pmem" dm)," \
		"$dm dispatches ${before:-?} -> ${after:-?}, traced $(traced "$dm" holder)"
	[ "$(dpf_claims "$pmem" dm)" = $want ] && [ -n "$before" ] &&
		[ "$after" = $((before + 1)) ] && [ "$(traced "$dm" holder)" = 1 ] &&
		[ "$(traced "$pmem" dm)" = 1 ]
	result "$name ($table table): delivered once, to the current table's owner"
done
ktap_test_result "$name: the live table is the split one" \
	[ "$(dmsetup table dpf-reload | wc -l)" = 2 ]
umount "$MNT"
dm_remove dpf-reload && [ "$(dpf_claims "$pmem" dm)" = 0 ]
result "$name: dmsetup remove drops every claim"

# 6. dm-log-writes (data on one namespace, its log on another) is linear
#    over its data device: one poisoned page is one page's SIGBUS, and the
#    filesystem stays up (passed on over the whole target, it shut down).
name="dm-log-writes"
dax_setup_namespaces fsdax 768M fsdax 256M
set -- $pmems
data=$1 logdev=$2
dm_create dpf-log "0 $(dax_sectors "$data") log-writes /dev/$data /dev/$logdev"
dm=$(dm_kname dpf-log)
xfs_mount /dev/mapper/dpf-log "-m rmapbt=1"
[ "$(dpf_claims "$data" dm)" = 1 ] && [ "$(dpf_claims "$dm" holder)" = 1 ] &&
	[ "$(dpf_claims "$logdev" dm)" = 0 ]
result "$name: dm claims its data device $data (not the log), XFS claims $dm"
victim=$MNT/victim other=$MNT/other
xfs_io -f -c "falloc 0 4m" "$victim"
xfs_io -f -c "falloc 0 4m" "$other"
before=$(dpf_counter "$dm" live dispatches)
dmesg -c >/dev/null
trace_on
run_probe "$name: one poisoned page: SIGBUS at the page, other file readable" \
	"$POISON" -p 6 -n 1 -i "$INJECT" "$victim" "$other"
trace_off
after=$(dpf_counter "$dm" live dispatches)
ktap_print_msg "$name: $dm dispatches ${before:-?} -> ${after:-?}, trace:" \
	"$(trace_lines)"
[ -n "$before" ] && [ "$after" = $((before + 1)) ] && [ "$(one_page "$dm" holder)" = 1 ]
result "$name: the one page reaches XFS as one page"
xfs_io -c "pread -q 0 4m" "$other" && ! dmesg_has "Shutting down filesystem"
result "$name: the filesystem stays up"
umount "$MNT"
ktap_test_result "$name: dmsetup remove" dm_remove dpf-log

# 7. Claims follow growth: XFS on a dm-linear device over half a namespace,
#    the table grown to the whole namespace and the filesystem grown; poison
#    in the grown part reaches XFS (its claim covers every offset the whole
#    dm device can have, not the size at mount).
name="dm-linear resize + growfs"
dax_setup_namespaces fsdax 1024M
len=$(dax_sectors "$pmem")
half=$((len / 2 / 8 * 8))
dm_create dpf-grow "0 $half linear /dev/$pmem 0"
dm=$(dm_kname dpf-grow)
xfs_mount /dev/mapper/dpf-grow "-m rmapbt=1"
echo "0 $len linear /dev/$pmem 0" | dmsetup reload --noudevsync dpf-grow &&
	dmsetup resume --noudevsync dpf-grow && xfs_growfs "$MNT" >/dev/null
# The mounted filesystem's geometry (the superblock on disk may lag).
agcount=$(xfs_io -c statfs "$MNT" | sed -n 's/^geom.agcount = //p')
victim=$(dax_file_in_ag "$MNT" 4 $((agcount - 1)) victim)
other=$(dax_file_in_ag "$MNT" 4 0 other)
phys=$(dax_file_phys "$victim")
ktap_print_msg "$name: $dm $half -> $(dax_sectors "$dm") sectors, $agcount AGs," \
	"victim at byte ${phys:-?}: $(grep -A1 "^$dm state=live" "$DEVICES" | tr '\n' ' ')"
[ "$(dax_sectors "$dm")" = "$len" ] && [ -n "$phys" ] && [ "$phys" -ge $((half * 512)) ]
result "$name: the device and XFS grew, a file lies in the grown part"
trace_on
run_probe "$name: poison in the grown part: SIGBUS at the page, other file readable" \
	"$POISON" -p 1 -n 1 -i "$INJECT" "$victim" "$other"
trace_off
ktap_print_msg "$name: trace: $(trace_lines)"
[ "$(one_page "$dm" holder)" = 1 ]
result "$name: the poison in the grown part reaches XFS"
umount "$MNT"
ktap_test_result "$name: dmsetup remove" dm_remove dpf-grow

# 8. Overlapping routes: two dm-linear devices over the same namespace, each
#    with XFS (the second mounts the first's filesystem read-only), and a
#    third whose two targets alias the start of it. Every route claims (one
#    of them used to get -EBUSY, and its filesystem never heard of
#    anything); poison reaches each filesystem once, and so does the
#    removal.
name="overlapping routes"
MNT2=/mnt/dm_failure_ro
dax_setup_namespaces fsdax 1024M
len=$(dax_sectors "$pmem")
alias=131072	# 64 MiB
dm_create dpf-a "0 $len linear /dev/$pmem 0"
dm_create dpf-b "0 $len linear /dev/$pmem 0"
dm_create dpf-alias "0 $alias linear /dev/$pmem 0
$alias $alias linear /dev/$pmem 0"
dma=$(dm_kname dpf-a) dmb=$(dm_kname dpf-b)
xfs_mount /dev/mapper/dpf-a "-m rmapbt=1"
victim=$MNT/victim other=$MNT/other
xfs_io -f -c "falloc 0 4m" "$victim"
xfs_io -f -c "falloc 0 4m" "$other"
sync
mkdir -p "$MNT2"
mount -o ro,nouuid,norecovery,dax=always /dev/mapper/dpf-b "$MNT2"
ktap_print_msg "$name: $(grep -A4 "^$pmem state=live" "$DEVICES" | tr '\n' ' ')"
[ "$(dpf_claims "$pmem" dm)" = 4 ] && [ "$(dpf_claims "$dma" holder)" = 1 ] &&
	[ "$(dpf_claims "$dmb" holder)" = 1 ]
result "$name: all four routes claim $pmem, each XFS claims its dm device"
a_before=$(dpf_counter "$dma" live dispatches)
b_before=$(dpf_counter "$dmb" live dispatches)
trace_on
run_probe "$name: one poisoned page: SIGBUS at the page, other file readable" \
	"$POISON" -p 2 -n 1 -i "$INJECT" "$victim" "$other"
trace_off
ktap_print_msg "$name: trace: $(trace_lines)"
[ "$(dpf_counter "$dma" live dispatches)" = $((a_before + 1)) ] &&
	[ "$(dpf_counter "$dmb" live dispatches)" = $((b_before + 1)) ] &&
	[ "$(one_page "$dma" holder)" = 1 ] && [ "$(one_page "$dmb" holder)" = 1 ] &&
	[ "$(one_page "$pmem" dm)" = 2 ]
result "$name: the page reaches both filesystems, once each"
REBIND=$(dax_unbind_arg "$pmem")
vbefore=$(dpf_counter "$pmem" live dispatches)
a_before=$(dpf_counter "$dma" live dispatches)
b_before=$(dpf_counter "$dmb" live dispatches)
dmesg -c >/dev/null
xfs_io -f -c "falloc 0 ${SIZE_MB}m" "$MNT/data"
run_probe "$name: removal: no page readable or writable after it, in time" \
	"$PROBE" -e 64 -s "$SIZE_MB" -t "$(scaled 5000)" -r "$REBIND" "$MNT/data"
ktap_print_msg "$name: $pmem dispatches ${vbefore:-?} ->" \
	"$(dpf_counter "$pmem" dead dispatches), $dma ${a_before:-?} ->" \
	"$(dpf_counter "$dma" live dispatches), $dmb ${b_before:-?} ->" \
	"$(dpf_counter "$dmb" live dispatches)"
[ "$(dpf_counter "$pmem" dead dispatches)" = $((vbefore + 4)) ] &&
	[ "$(dpf_counter "$dma" live dispatches)" = $((a_before + 1)) ] &&
	[ "$(dpf_counter "$dmb" live dispatches)" = $((b_before + 1)) ] &&
	[ "$(dpf_counter "$pmem" dead handler_errors)" = 0 ]
result "$name: removal: every route once, each filesystem once"
[ "$(dmesg | grep -c "Block device removal (0x20) detected")" = 2 ]
result "$name: removal: both filesystems shut down"
umount "$MNT" && umount "$MNT2"
result "$name: both filesystems unmount"
dm_remove dpf-a && dm_remove dpf-b && dm_remove dpf-alias
result "$name: dmsetup remove of all three"
dax_rebind "$REBIND"
dax_wait_blockdev "$pmem"

# 9. Table swaps racing poison. Two tables map the first 256 MiB of the
#    namespace identically, in 256 targets of 1 MiB and in 128 of 2 MiB,
#    so no claim of one matches a claim of the other and every swap
#    replaces all of them. While a loop swaps them, poison goes into one
#    page of that range again and again, in batches of 20: every injection
#    must find a claim, so the namespace's dispatch counter must move by 20
#    or more a batch (by more while both tables' claims are registered).
#    Detaching the old table's claims before adding the new table's left a
#    gap where the poison, or a removal, found no claim and the filesystem
#    above never heard of it: that kernel missed 1 of 400 single injections.
name="table swaps racing poison"
xfs_mount "/dev/$pmem" "-m rmapbt=1"
pfn=$("$POISON" -P "$(dax_file_in_ag "$MNT" 1 0 swapped)")
umount "$MNT"
: > /tmp/swap-a
: > /tmp/swap-b
for i in $(seq 0 255); do
	echo "$((i * 2048)) 2048 linear /dev/$pmem $((i * 2048))" >> /tmp/swap-a
done
for i in $(seq 0 127); do
	echo "$((i * 4096)) 4096 linear /dev/$pmem $((i * 4096))" >> /tmp/swap-b
done
dmsetup create --noudevsync dpf-swap /tmp/swap-a
rm -f /tmp/swap.stop /tmp/swap.count
(
	n=0
	while [ ! -e /tmp/swap.stop ]; do
		t=a
		[ $((n % 2)) = 0 ] && t=b
		dmsetup reload --noudevsync dpf-swap /tmp/swap-$t &&
			dmsetup resume --noudevsync dpf-swap || break
		n=$((n + 1))
	done
	echo $n > /tmp/swap.count
) &
swapper=$!
batches=0 short=0
while [ $batches -lt 100 ] && alive $swapper; do
	before=$(dpf_counter "$pmem" live dispatches)
	for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
		echo "${pfn:-0} 1" > "$INJECT" 2>/dev/null
	done
	after=$(dpf_counter "$pmem" live dispatches)
	[ "${after:-0}" -ge $((${before:-0} + 20)) ] || short=$((short + 1))
	batches=$((batches + 1))
done
touch /tmp/swap.stop
wait $swapper
swaps=$(cat /tmp/swap.count 2>/dev/null)
ktap_print_msg "$name: pfn ${pfn:-?}, $((batches * 20)) injections during ${swaps:-?} swaps," \
	"$short batches of 20 with a miss; $pmem claims by dm now $(dpf_claims "$pmem" dm)"
[ -n "$pfn" ] && [ $batches = 100 ] && [ "${swaps:-0}" -ge 20 ]
result "$name: 2000 injections while the tables swap"
[ $short = 0 ] && [ $batches = 100 ]
result "$name: every injection found a claim of one table or the other"
dm_remove dpf-swap && [ "$(dpf_claims "$pmem" dm)" = 0 ]
result "$name: dmsetup remove drops every claim"

# Teardown waits for its own claim only. Two dm-linear devices share one
# pmem device; XFS on the first holds a page pinned, so the removal of the
# pmem device waits in that owner's handler (the sweep), the first claim it
# dispatches to. Meanwhile the other owner goes away: the XFS on the second
# dm device unmounts and dmsetup remove drops its claim on the pmem device.
# That must not wait for the first claim's handler (it did while a registry
# waited for an SRCU grace period: until the pin went).
name="teardown beside a waiting handler"
dax_setup_namespaces fsdax 1024M
half=$(($(dax_sectors "$pmem") / 2 / 8 * 8))
mkdir -p "$MNT" "$MNT2"
dm_create dpf-first "0 $half linear /dev/$pmem 0" &&
	dm_create dpf-second "0 $half linear /dev/$pmem $half" &&
	xfs_mount /dev/mapper/dpf-first "-m rmapbt=1" &&
	mkfs.xfs -f -q /dev/mapper/dpf-second &&
	mount -o dax=always /dev/mapper/dpf-second "$MNT2" &&
	: > "$MNT/pinned" && start_pinner "$MNT/pinned" /tmp/dax_pin.out
pinned=$?
unbind=$(dax_unbind_arg "$pmem")
dax_unbind "$unbind" &
removal=$!
[ $pinned -eq 0 ] && wait_in_kernel $removal dax_revoke_sb_mappings
result "$name: the removal waits in the first owner's handler"
{ umount "$MNT2" && dm_remove dpf-second; } &
teardown=$!
wait_gone 20 $teardown && wait $teardown && alive $removal
result "$name: the second owner unmounts and its dm device goes while it waits"
stacks $teardown
kill "$pinner"
wait_gone 60 $removal
result "$name: the removal completes once the pin is dropped"
stacks $removal
umount "$MNT"
dm_remove dpf-first
dax_rebind "$unbind"
dax_wait_blockdev "$pmem"
result "$name: the pmem device comes back"

ktap_finished
