#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Revocation of DAX mappings when persistent memory goes away.
#
# Needs one NVDIMM region of at least 2 GiB with a label area, ndctl,
# mkfs.xfs, xfs_io and xfs_db; destroys everything on that region.
# dax_stale_mapping (built from this directory) does the mapping and
# probing; its TAP output is nested under each scenario.

DIR=$(cd "$(dirname "$0")" && pwd)
. "$DIR/ktap_helpers.sh"
. "$DIR/dax_lib.sh"

MNT=/mnt/dax_failure
SIZE_MB=64
PROBE="$DIR/dax_stale_mapping"

# Run the probe with its TAP indented as a subtest, and report one result:
# an expected failure inside it makes the whole scenario XFAIL, with the
# subtests' descriptions (and so the numbers) in the message.
run_probe() {
	name=$1
	shift
	out=$("$PROBE" "$@" 2>&1)
	rc=$?
	echo "$out" | sed 's/^/    /'
	xfails=$(echo "$out" | sed -n 's/^ok [0-9]* # XFAIL \(.*\)/\1/p' |
		tr '\n' ';' | sed 's/;$//')
	if [ $rc -eq 0 ] && [ -n "$xfails" ]; then
		ktap_test_xfail "$name: $xfails"
	else
		ktap_test_result "$name" [ $rc -eq 0 ]
	fi
}

ktap_print_header
ktap_set_plan 6

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

# 2. XFS with the reverse-map btree, mounted dax=always.
mkdir -p "$MNT"
mkfs.xfs -f -q -m rmapbt=1 "/dev/$pmem" &&
	mount -o dax=always "/dev/$pmem" "$MNT"
xfs_io -f -c "pwrite -q 0 4096" "$MNT/probe-dax" 2>/dev/null
attrs=$(xfs_io -c "statx -r" "$MNT/probe-dax" 2>/dev/null | sed -n 's/^stat.attributes = //p')
rm -f "$MNT/probe-dax"
ktap_print_msg "statx attributes of a new file: ${attrs:-none}"
mounted_dax() {
	grep -q " $MNT xfs .*dax=always" /proc/mounts && [ $((${attrs:-0} & 0x200000)) -ne 0 ]
}
ktap_test_result "XFS rmapbt=1 mounted dax=always, files are DAX" mounted_dax

# Pick a file whose data lies in the last allocation group: a new directory
# goes to the next AG (inode64 rotor), its files follow it. No file data may
# stay in the other groups: upstream's handler (fs/xfs/xfs_notify_failure.c)
# wraps a 32-bit block number for every group but the last, then loops
# about 2^32 times.
agcount=$(dax_agcount "/dev/$pmem")
file=$(dax_file_in_ag "$MNT" "$SIZE_MB" $((agcount - 1)))
ktap_print_msg "agcount $agcount, mapped file ${file:-not found} in AG $((agcount - 1))"

# 3. devdax: mapped, removed, every access raises SIGBUS.
run_probe "devdax: mappings revoked on removal" \
	-s "$SIZE_MB" -r "$(dax_unbind_arg "$dax")" "/dev/$dax"

# 4. fsdax XFS rmapbt=1, data in the last AG (upstream notifies XFS here).
dmesg -c >/dev/null
if [ -n "$file" ]; then
	# XFAIL while removal goes through upstream's per-page path: it can
	# take longer than the limit (seconds under KASAN).
	run_probe "fsdax XFS rmapbt=1, data in last AG: mappings revoked on removal" \
		-s "$SIZE_MB" -r "$(dax_unbind_arg "$pmem")" \
		-x "per-page upstream path, no ranged owner yet" "$file"
else
	ktap_test_fail "fsdax XFS rmapbt=1: no file with data in the last AG"
fi

# 5. One ranged revocation, not one kill per page.
kills=$(dmesg | grep -c "Sending SIGBUS")
ktap_print_msg "kernel log lines 'Sending SIGBUS' during the removal: $kills"
if [ "$kills" -le 1 ]; then
	ktap_test_pass "removal revoked the mapping without per-page kills"
else
	# XFAIL until the owner registry revokes the mapping in one call.
	ktap_test_xfail "removal logged $kills per-page kills for a $SIZE_MB MiB mapping"
fi

# 6. The filesystem is shut down and can be unmounted.
ktap_test_result "filesystem unmounts after removal" umount "$MNT"

ktap_finished
