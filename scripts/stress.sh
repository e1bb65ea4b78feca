#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make stress: DPF_STRESS_CYCLES (default 20) cycles of load_failure.sh on
# the debug kernel (KASAN, lockdep, kmemleak), each a removal under load of
# XFS rmapbt=1, XFS rmapbt=0, ext4, XFS on dm-linear and devdax, and three
# removals racing poison, a dm reload and an unmount, each followed by
# rebind, remount, data and fsck checks: 160 removals by default.
# Reports the removals, the time and every failure, and fails on any
# failure or kernel report (scripts/results.py judges the run).
. "$(dirname "$0")/common.sh"

cycles=${DPF_STRESS_CYCLES:-20}
[[ $cycles =~ ^[1-9][0-9]*$ ]] || die "DPF_STRESS_CYCLES must be a positive number, not '$cycles'"
logs=$DPF_OUT/stress
mkdir -p "$logs"

deps_and_source
"$DPF_TOP/scripts/tree.sh" >/dev/null
log "stress: building the debug kernel"
"$DPF_TOP/scripts/kernel.sh" debug > "$logs/kernel.log" 2>&1 ||
	{ tail -n 40 "$logs/kernel.log"; die "building the debug kernel failed"; }
"$DPF_TOP/scripts/initramfs.sh"

# About 80 s a cycle under TCG with KASAN; twice that as the limit.
run=$DPF_OUT/runs/stress
start=$(date +%s)
"$DPF_TOP/scripts/vm.sh" -k debug -t $((cycles * 160 + 300)) -o "$run" \
	-a "dpf.only=load_failure dpf.load_cycles=$cycles" check || true
end=$(date +%s)
grep -E '^# (load:|.*, cycle [0-9]+:)' "$run/results.log" 2>/dev/null | sed 's/^# /  /'
log "stress: guest run took $((end - start)) s"
python3 "$DPF_TOP/scripts/results.py" "$run" 2>&1 | tee "$logs/result.txt"
tail -n1 "$logs/result.txt" | grep -q '^[0-9]* passed, 0 failed, 0 skipped$'
