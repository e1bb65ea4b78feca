#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make boot-loop: boot the release kernel again and again with an 8 GiB
# NVDIMM and create a namespace of all of it (scripts/guest/boot.sh), the
# boot of `make bench` that once died with "Oops: int3" before its first
# test, and count the boots that die. It is the reproducer for the
# thread=single choice in scripts/vm.sh: run it with DPF_TCG_THREAD=multi
# and with the default, and compare.
#
#   DPF_BOOT_LOOPS=20  DPF_BOOT_SIZE=8G  DPF_BOOT_NS=2  DPF_TCG_THREAD=multi
. "$(dirname "$0")/common.sh"

loops=${DPF_BOOT_LOOPS:-20}
size=${DPF_BOOT_SIZE:-8G}
ns=${DPF_BOOT_NS:-2}
thread=${DPF_TCG_THREAD:-single}
runs=$DPF_OUT/boot-loop-$thread
[ "$loops" -ge 1 ] || die "DPF_BOOT_LOOPS must be at least 1"
[ -e "$DPF_OUT/release/bzImage" ] || die "no release kernel; run 'make kernel-release'"
[ -e "$DPF_OUT/initramfs.cpio.gz" ] || die "no initramfs; run 'make initramfs'"

rm -rf "$runs"
mkdir -p "$runs"
start=$(date +%s)
died=0
for i in $(seq "$loops"); do
	DPF_TCG_THREAD=$thread "$DPF_TOP/scripts/vm.sh" -k release -s "$size" -t 600 \
		-o "$runs/$i" -a "dpf.boot_ns=$ns" boot >/dev/null 2>&1 || true
	report=$(crash_line "$runs/$i/console.log")
	status=$(cat "$runs/$i/status")
	if [ "$status" != "exit 0" ]; then
		died=$((died + 1))
		log "boot $i: $status"
	elif [ -n "$report" ]; then
		died=$((died + 1))
		log "boot $i: exit 0, but the kernel reported: $report"
	else
		log "boot $i: clean, $(cat "$runs/$i/seconds") s"
	fi
done
echo "boot-loop: thread=$thread, $loops boots with an NVDIMM of $size, in" \
	"$(($(date +%s) - start)) s: $died died"
[ "$died" -eq 0 ]
