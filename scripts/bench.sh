#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make bench: boot the release kernel once per emulated NVDIMM size (1, 2, 4
# and 8 GiB) and measure, in that one boot, every failure mode on the same
# work (scripts/guest/bench.sh): removal under live mappings in modes off
# (upstream), pfn and ranged, the same processes unmapping themselves
# (munmap, the limit), the same on ext4 (pfn, ranged, munmap), and at 4 GiB
# poison storms, queued bursts (GHES) and machine checks of 2 MiB, and at
# 1 GiB the lookup cost and what the registries cost in memory (1000 dm
# devices nobody claims; 10000 registries; 10000 claims). One more boot shows upstream's removal with data in allocation
# group 0, cut off at a cap. scripts/bench.py turns the lines into
# bench/results.json, a table and bench/removal.png.
#
#   DPF_BENCH_SIZES="1G 2G"  DPF_BENCH_REPS=5  DPF_BENCH_AG0_CAP=20
#   DPF_BENCH_ARGS="dpf.modes=off,ranged dpf.mapped=64"  (a quicker subset)
. "$(dirname "$0")/common.sh"

# The commit measured: the kernel is built from this tree as it is now.
commit=$(git -C "$DPF_TOP" describe --always --dirty)
sizes=${DPF_BENCH_SIZES:-1G 2G 4G 8G}
reps=${DPF_BENCH_REPS:-5}
ag0_cap=${DPF_BENCH_AG0_CAP:-20}
runs=$DPF_OUT/bench
[ "$reps" -ge 1 ] || die "DPF_BENCH_REPS must be at least 1"

deps_and_source
log "bench: building the release kernel"
"$DPF_TOP/scripts/kernel.sh" release > "$DPF_CACHE/bench-kernel.log" 2>&1 ||
	{ tail -n 40 "$DPF_CACHE/bench-kernel.log"; die "building the release kernel failed"; }
"$DPF_TOP/scripts/initramfs.sh"

rm -rf "$runs"
mkdir -p "$runs"
start=$(date +%s)
for size in $sizes; do
	benches=removal,ext4
	[ "$size" = 1G ] && benches=removal,ext4,lookup,memory
	[ "$size" = 4G ] && benches=removal,ext4,storm,queued,mce
	msync=0
	if [ "$size" = "${sizes%% *}" ] || [ "$size" = "${sizes##* }" ]; then
		msync=1
	fi
	# loglevel=3: upstream's one "Sending SIGBUS" line per page goes to the
	# log buffer, not through the emulated serial console, in every mode.
	"$DPF_TOP/scripts/vm.sh" -k release -s "$size" -t 1800 -o "$runs/$size" \
		-a "dpf.bench=$benches dpf.reps=$reps dpf.msync=$msync loglevel=3 ${DPF_BENCH_ARGS:-}" bench ||
		warn "the $size boot did not finish cleanly: $(cat "$runs/$size/status")"
done
"$DPF_TOP/scripts/vm.sh" -k release -s 1G -t "$ag0_cap" -o "$runs/ag0" \
	-a "dpf.bench=ag0 loglevel=3" bench >/dev/null 2>&1 || true
log "bench: guest runs took $(($(date +%s) - start)) s"

mkdir -p "$DPF_TOP/bench"
python3 "$DPF_TOP/scripts/bench.py" "$runs" "$DPF_TOP/bench" "$commit" "$ag0_cap"
