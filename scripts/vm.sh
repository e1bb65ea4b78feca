#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot a kernel variant in QEMU (TCG) with an emulated NVDIMM, run one guest
# script, collect the console and the results, power off.
#
#   vm.sh [-k release|debug] [-s NVDIMM_SIZE] [-t TIMEOUT_S] [-a KERNEL_ARGS]
#         [-o RUN_DIR] SCRIPT|shell
#
# SCRIPT is a file under scripts/guest/ (as /dpf/SCRIPT in the guest); its
# output goes to RUN_DIR/results.log, the kernel console to
# RUN_DIR/console.log.  RUN_DIR/status gets one line: "exit N" (the script's
# exit code), "timeout" or "no-exit" (the guest died before the script
# finished), or "infra: ..." when the guest died (or hung) before its first
# test gave a result: an infrastructure error (the boot, the emulator), which
# quotes the first kernel report of the console.  It still fails the run; it
# is never retried.  The exit code of vm.sh is 0 only for "exit 0".
. "$(dirname "$0")/common.sh"

variant=release size=2G timeout=600 extra= rundir=
while getopts "k:s:t:a:o:" opt; do
	case $opt in
	k) variant=$OPTARG ;;
	s) size=$OPTARG ;;
	t) timeout=$OPTARG ;;
	a) extra=$OPTARG ;;
	o) rundir=$OPTARG ;;
	*) die "usage: vm.sh [-k variant] [-s size] [-t timeout] [-a args] [-o dir] SCRIPT|shell" ;;
	esac
done
shift $((OPTIND - 1))
script=${1:?guest script name, or shell}

kernel=$DPF_OUT/$variant/bzImage
initrd=$DPF_OUT/initramfs.cpio.gz
[ -e "$kernel" ] || die "$kernel missing; run 'make kernel-$variant'"
[ -e "$initrd" ] || die "$initrd missing; run 'make initramfs'"
rundir=${rundir:-$DPF_OUT/runs/$variant-$script}
rm -rf "$rundir"
mkdir -p "$rundir"

# A fresh sparse backing file: every run starts from an empty label area.
img=$DPF_CACHE/vm/nvdimm-$$.img
mkdir -p "$(dirname "$img")"
rm -f "$img"
truncate -s "$size" "$img"
trap 'rm -f "$img"' EXIT

# la57=off: with 5-level paging, an interrupt that lands while identify_cpu()
# has cleared the boot CPU's capability bits (arch/x86/kernel/cpu/common.c)
# makes pgtable_l5_enabled() briefly false, and KASAN then reports the
# handler's access to a 5-level direct-map address as wild (seen once in
# about a dozen debug boots). Guests here need only 4-level paging.
#
# thread=single: with multi-threaded TCG (QEMU 7.2, one host thread per
# vCPU) a vCPU sometimes executes an int3 that text_poke_bp() had already
# removed, and the kernel dies with "Oops: int3". `make boot-loop` (scripts/
# boot-loop.sh) reproduces it: with DPF_TCG_THREAD=multi, 3 of 100 boots of
# the release kernel died so, at static-key sites flipped during boot
# (sched_clock_cpu() and sched_clock_tick() after "sched_clock: Marking
# stable", ktime_get_update_offsets_now() after the switch to the TSC
# clocksource); with thread=single, 0 of 100. The kernel is not at fault:
# smp_text_poke_batch_finish() writes the first byte back, IPIs every CPU
# with on_each_cpu() and only then drops the int3 handler's references, and
# in every Oops the code bytes at the site were the restored instruction,
# not 0xcc. In two of them both vCPUs ran the int3, and in one the task
# that had flipped the key (pid 1, in sched_clock_init_late()) ran it in
# the next initcall, cpu_latency_qos_init(), after static_branch_enable()
# had returned. A vCPU executed a translation of code that had been
# rewritten and synchronised before, which a real CPU cannot do after the
# serialising IPI: the emulator's cross-modifying-code handling.
# One TCG thread runs the vCPUs in turn, so a write to code is complete, and
# the stale translation dropped, before any vCPU runs the site again. It
# costs little here: the host has 2 cores and the guests' work is serial.
# DPF_TCG_THREAD=multi brings the old behaviour back, for
# scripts/boot-loop.sh, which reproduces the Oops; nothing else sets it.
tcg_thread=${DPF_TCG_THREAD:-single}
case $tcg_thread in single|multi) ;; *) die "DPF_TCG_THREAD must be single or multi" ;; esac
qemu=(qemu-system-x86_64 -accel "tcg,thread=$tcg_thread" -cpu max,la57=off -smp 2
      -machine pc,nvdimm=on -m 2G,slots=4,maxmem=32G
      -object "memory-backend-file,id=mem1,share=on,mem-path=$img,size=$size"
      -device nvdimm,id=nvdimm1,memdev=mem1,label-size=128K
      -kernel "$kernel" -initrd "$initrd"
      -no-reboot -display none -monitor none)
# log_buf_len: upstream's per-page removal path logs one line per page; the
# guest's dmesg must hold them all for the tests to count them.
append="console=ttyS0 panic=-1 log_buf_len=16M dpf.run=$script $extra"

if [ "$script" = shell ]; then
	exec "${qemu[@]}" -append "$append" -serial mon:stdio -serial null
fi

log "booting $variant with a $size NVDIMM: $script (timeout ${timeout}s, log in $rundir)"
start=$(date +%s)
set +e
timeout -k 10 "$timeout" "${qemu[@]}" -append "$append" \
	-serial "file:$rundir/console.log" -serial "file:$rundir/results.log" \
	</dev/null >"$rundir/qemu.log" 2>&1 &
qemu_pid=$!
# A guest that printed its exit line but halts instead of powering off (a
# kernel without ACPI power-off) would sit until the timeout: give it 30 s
# after the exit line, then stop QEMU.
while kill -0 "$qemu_pid" 2>/dev/null; do
	if grep -qa '^DPF-GUEST-EXIT ' "$rundir/results.log" 2>/dev/null; then
		for _ in $(seq 30); do
			kill -0 "$qemu_pid" 2>/dev/null || break
			sleep 1
		done
		kill "$qemu_pid" 2>/dev/null
		break
	fi
	sleep 1
done
wait "$qemu_pid"
rc=$?
set -e
elapsed=$(($(date +%s) - start))
# The serial ports deliver CRLF line ends.
sed -i 's/\r$//' "$rundir/console.log" "$rundir/results.log"
if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
	status=timeout
elif exit_line=$(grep -a '^DPF-GUEST-EXIT ' "$rundir/results.log" | tail -n1) && [ -n "$exit_line" ]; then
	status="exit $(echo "$exit_line" | cut -d' ' -f2)"
else
	status=no-exit
fi
# The first result of each guest script: a KTAP result of KUnit (console) or
# of the kselftests, a benchmark figure, a demo removal.
first_result='(^|\] +)(not )?ok [0-9]+ |^BENCH (removal|ext4|storm|lookup|ag0) |^DEMO remove '
if [ "${status#exit }" = "$status" ] &&
   ! grep -qaE "$first_result" "$rundir/results.log" "$rundir/console.log"; then
	report=$(crash_line "$rundir/console.log")
	status="infra: the guest died before its first test ($status): ${report:-no kernel report}"
	warn "infrastructure error, not a test failure: $status"
fi
echo "$status" > "$rundir/status"
echo "$elapsed" > "$rundir/seconds"
log "guest $script: $status after ${elapsed}s"
[ "$status" = "exit 0" ]
