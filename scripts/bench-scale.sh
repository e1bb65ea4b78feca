#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make bench-scale: the removal as the device grows. Boots the release
# kernel once per emulated NVDIMM size (1 GiB, 64 GiB and 960 GiB, about
# the largest that fits under TCG's 40 physical address bits beside the
# guest's RAM), with the memmap on the device (ndctl's default) and the
# backing file sparse: the guest needs no more RAM for a larger device, and
# the host writes about 1/64 of it (the struct pages). In each boot
# (scripts/guest/bench.sh, dpf.bench=scale): 64 MiB mapped of XFS -m
# rmapbt=1 removed in modes off, ranged and pfn, of ext4 -o dax in modes
# ranged and pfn, each timed as the whole unbind and as the revocation
# alone (dev_pagemap_failure()); a sampled profile of one ranged unbind;
# and a devdax namespace of the same region removed as upstream removes it
# (its teardown, which every mode pays). scripts/bench-scale.py turns the
# lines into bench/scale.json, bench/scale.txt and bench/scale.png.
#
# Page at a time takes minutes at the largest size: mode pfn runs once
# there (DPF_SCALE_PFN_REPS).
#
#   DPF_SCALE_SIZES="1G 64G 960G"  DPF_SCALE_REPS=3  DPF_SCALE_PFN_REPS=1
. "$(dirname "$0")/common.sh"

commit=$(git -C "$DPF_TOP" describe --always --dirty)
sizes=${DPF_SCALE_SIZES:-1G 64G 960G}
reps=${DPF_SCALE_REPS:-3}
runs=$DPF_OUT/bench-scale
[ "$reps" -ge 1 ] || die "DPF_SCALE_REPS must be at least 1"

deps_and_source
log "bench-scale: building the release kernel"
"$DPF_TOP/scripts/kernel.sh" release > "$DPF_CACHE/bench-kernel.log" 2>&1 ||
	{ tail -n 40 "$DPF_CACHE/bench-kernel.log"; die "building the release kernel failed"; }
"$DPF_TOP/scripts/initramfs.sh"

# The struct pages of the largest device are written to its sparse backing
# file: about 1/64 of the device must be free where vm.sh puts it.
largest=0
for size in $sizes; do
	bytes=$(numfmt --from=iec "$size") || die "DPF_SCALE_SIZES: not a size: $size"
	[ "$bytes" -gt "$largest" ] && largest=$bytes
done
mkdir -p "$DPF_CACHE/vm"
free_kb=$(df -Pk "$DPF_CACHE/vm" | awk 'NR == 2 { print $4 }')
[ $((free_kb * 1024)) -gt $((largest / 64 + (4 << 30))) ] ||
	die "bench-scale: $((largest / 64 >> 30)) GiB (and 4 GiB spare) must be free in $DPF_CACHE/vm for the largest device's struct pages"

rm -rf "$runs"
mkdir -p "$runs"
start=$(date +%s)
for size in $sizes; do
	pfn_reps=$reps
	[ "$size" = "${sizes##* }" ] && pfn_reps=${DPF_SCALE_PFN_REPS:-1}
	t0=$(date +%s)
	"$DPF_TOP/scripts/vm.sh" -k release -s "$size" -t 7200 -o "$runs/$size" \
		-a "dpf.bench=scale dpf.reps=$reps dpf.pfn_reps=$pfn_reps loglevel=3" bench ||
		warn "the $size boot did not finish cleanly: $(cat "$runs/$size/status")"
	log "bench-scale: the $size boot took $(($(date +%s) - t0)) s"
done
log "bench-scale: guest runs took $(($(date +%s) - start)) s"

mkdir -p "$DPF_TOP/bench"
python3 "$DPF_TOP/scripts/bench-scale.py" "$runs" "$DPF_TOP/bench" "$commit" $sizes
