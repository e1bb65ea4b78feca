#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot a kernel variant in QEMU (TCG) with an emulated NVDIMM, run one guest
# script, collect the console and the results, power off.
#
#   vm.sh [-k release|debug] [-s NVDIMM_SIZE] [-t TIMEOUT_S] [-c CEILING_S]
#         [-a KERNEL_ARGS] [-o RUN_DIR] SCRIPT|shell
#
# TIMEOUT_S is the guest's time limit on the reference machine. The guest
# measures how much slower it runs (scripts/guest/init: a "DPF-CALIBRATION
# slowdown=PCT" line on the results port, before the script starts) and
# the limit is scaled by that; until the line comes, 4 times the limit
# holds. CEILING_S caps the scaled limit (what is left of CI's time, say);
# a guest whose scaled limit does not fit under it is told so in one line,
# and if it then runs out of time, its status says so too. A guest that
# writes nothing to either serial port for 600 s at the measured slowdown
# is stopped as hung.
#
# SCRIPT is a file under scripts/guest/ (as /dpf/SCRIPT in the guest); its
# output goes to RUN_DIR/results.log, the kernel console to
# RUN_DIR/console.log.  RUN_DIR/status gets one line: "exit N" (the script's
# exit code), "timeout: ..." (the scaled limit), "hung: ..." (no output
# for too long), "no-exit" (the guest died before the script finished), or
# "infra: ..." when the guest died (or hung) before its first test gave a
# result: an infrastructure error (the boot, the emulator), which quotes the
# first kernel report of the console.  It still fails the run; it is never
# retried.  The exit code of vm.sh is 0 only for "exit 0".
# RUN_DIR/seconds gets the guest's wall time, RUN_DIR/slowdown the
# calibration (percent).
. "$(dirname "$0")/common.sh"

variant=release size=2G timeout=600 ceiling= extra= rundir=
while getopts "k:s:t:c:a:o:" opt; do
	case $opt in
	k) variant=$OPTARG ;;
	s) size=$OPTARG ;;
	t) timeout=$OPTARG ;;
	c) ceiling=$OPTARG ;;
	a) extra=$OPTARG ;;
	o) rundir=$OPTARG ;;
	*) die "usage: vm.sh [-k variant] [-s size] [-t timeout] [-c ceiling] [-a args] [-o dir] SCRIPT|shell" ;;
	esac
done
[[ $timeout =~ ^[1-9][0-9]*$ ]] || die "-t: a number of seconds, not '$timeout'"
[ -z "$ceiling" ] || [[ $ceiling =~ ^[1-9][0-9]*$ ]] || die "-c: a number of seconds, not '$ceiling'"
shift $((OPTIND - 1))
script=${1:?guest script name, or shell}

kernel=$DPF_OUT/$variant/bzImage
initrd=$DPF_OUT/initramfs.cpio.gz
[ -e "$kernel" ] || die "$kernel missing; run 'make kernel-$variant'"
[ -e "$initrd" ] || die "$initrd missing; run 'make initramfs'"
rundir=${rundir:-$DPF_OUT/runs/$variant-$script}
rm -rf "$rundir"
mkdir -p "$rundir"

# The NVDIMM sits in the memory hotplug area, which maxmem sizes: room for
# the 2 GiB of RAM and the NVDIMM, and 16 GiB more (at least 32 GiB). With
# the memmap on the device (ndctl's default for fsdax and devdax), an NVDIMM
# of any size needs no more guest RAM.
size_bytes=$(numfmt --from=iec "$size") || die "-s: a size such as 2G, not '$size'"
maxmem_gib=$(((size_bytes + (1 << 30) - 1) / (1 << 30) + 18))
[ "$maxmem_gib" -ge 32 ] || maxmem_gib=32

# A fresh sparse backing file: every run starts from an empty label area.
img=$DPF_CACHE/vm/nvdimm-$$.img
mkdir -p "$(dirname "$img")"
rm -f "$img"
truncate -s "$size" "$img"
trap 'rm -f "$img"' EXIT

# la57=off: the guests need only 4-level paging, and a 5-level boot can
# make KASAN report a wild access in an interrupt during identify_cpu().
#
# thread=single: multi-threaded TCG can run a stale translation of code
# that text_poke_bp() already restored ("Oops: int3" in about 3 of 100
# boots); one TCG thread cannot. DPF_TCG_THREAD=multi brings it back for
# scripts/boot-loop.sh, which reproduces the Oops; nothing else sets it.
tcg_thread=${DPF_TCG_THREAD:-single}
case $tcg_thread in single|multi) ;; *) die "DPF_TCG_THREAD must be single or multi" ;; esac
#
# vendor=GenuineIntel: the guests take real machine checks (raised through
# QEMU's monitor, scripts/qemu-mce.py), and Linux handles an uncorrected
# error of TCG's default vendor with the AMD severity rules, which panic.
qemu=(qemu-system-x86_64 -accel "tcg,thread=$tcg_thread"
      -cpu max,la57=off,vendor=GenuineIntel -smp 2
      -machine pc,nvdimm=on -m "2G,slots=4,maxmem=${maxmem_gib}G"
      -object "memory-backend-file,id=mem1,share=on,mem-path=$img,size=$size"
      -device nvdimm,id=nvdimm1,memdev=mem1,label-size=128K
      -kernel "$kernel" -initrd "$initrd"
      -no-reboot -display none)
# log_buf_len: upstream's per-page removal path logs one line per page; the
# guest's dmesg must hold them all for the tests to count them.
append="console=ttyS0 panic=-1 log_buf_len=16M dpf.run=$script dpf.variant=$variant $extra"

if [ "$script" = shell ]; then
	exec "${qemu[@]}" -monitor none -append "$append" -serial mon:stdio -serial null
fi

# The guest asks for machine checks on its third serial port (/dev/ttyS2,
# RUN_DIR/mce-requests), and scripts/qemu-mce.py raises them through the
# monitor (its answers in RUN_DIR/mce.log). The socket's path must be short.
monitor=$DPF_CACHE/vm/monitor-$$.sock
rm -f "$monitor"
qemu+=(-monitor "unix:$monitor,server,nowait")

# DPF_GUEST_CPU=PCT runs QEMU under a CPU quota of PCT percent of one core
# (a cgroup, v1 or v2): a slow machine of this kind, made on demand, to
# show that the time limits scale (make check on a machine 3 times slower:
# DPF_GUEST_CPU=33).
cgroup=
if [ -n "${DPF_GUEST_CPU:-}" ]; then
	[[ $DPF_GUEST_CPU =~ ^[1-9][0-9]*$ ]] || die "DPF_GUEST_CPU: a percentage of one core, not '$DPF_GUEST_CPU'"
	quota=$((DPF_GUEST_CPU * 1000))
	if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
		cgroup=/sys/fs/cgroup/dpf-guest-$$
		mkdir "$cgroup" && echo "$quota 100000" > "$cgroup/cpu.max" ||
			die "DPF_GUEST_CPU: cannot set a CPU quota in $cgroup (cgroup v2)"
	elif [ -d /sys/fs/cgroup/cpu ]; then
		cgroup=/sys/fs/cgroup/cpu/dpf-guest-$$
		mkdir "$cgroup" && echo 100000 > "$cgroup/cpu.cfs_period_us" &&
			echo "$quota" > "$cgroup/cpu.cfs_quota_us" ||
			die "DPF_GUEST_CPU: cannot set a CPU quota in $cgroup (cgroup v1)"
	else
		die "DPF_GUEST_CPU: no cgroup CPU controller on this machine"
	fi
	trap 'rm -f "$img"; rmdir "$cgroup" 2>/dev/null' EXIT
	log "guest throttled to $DPF_GUEST_CPU% of one core ($cgroup)"
fi

log "booting $variant with a $size NVDIMM: $script (limit ${timeout}s at the reference speed${ceiling:+, at most ${ceiling}s}, log in $rundir)"
start=$(date +%s)
# The limit before the guest has measured its speed, and after.
limit=$((timeout * 4))
[ -z "$ceiling" ] || [ "$limit" -le "$ceiling" ] || limit=$ceiling
slowdown= too_slow= stop=
set +e
(
	[ -z "$cgroup" ] || echo "$BASHPID" > "$cgroup/cgroup.procs"
	exec "${qemu[@]}" -append "$append" \
		-serial "file:$rundir/console.log" -serial "file:$rundir/results.log" \
		-serial "file:$rundir/mce-requests" \
		</dev/null >"$rundir/qemu.log" 2>&1
) &
qemu_pid=$!
"$DPF_TOP/scripts/qemu-mce.py" "$monitor" "$rundir/mce-requests" "$rundir/mce.log" &
mce_pid=$!
# Polled once a second: the calibration, the time limit, output, and the
# exit line. A guest that printed its exit line but halts instead of
# powering off (a kernel without ACPI power-off) would sit until the
# limit: give it 30 s after the exit line, then stop QEMU.
quiet_limit=600 last_size=-1 last_output=$start
while kill -0 "$qemu_pid" 2>/dev/null; do
	now=$(date +%s)
	if [ -z "$slowdown" ] &&
	   line=$(grep -a -m1 '^DPF-CALIBRATION ' "$rundir/results.log" 2>/dev/null); then
		slowdown=$(sed -n 's/.* slowdown=\([0-9]*\).*/\1/p' <<< "$line")
		[ -n "$slowdown" ] || slowdown=100
		limit=$((timeout * slowdown / 100))
		quiet_limit=$((600 * slowdown / 100))
		if [ -n "$ceiling" ] && [ "$limit" -gt "$ceiling" ]; then
			too_slow="this machine is $(awk -v s="$slowdown" 'BEGIN { printf "%.1f", s / 100 }') times slower than the reference, and the ${ceiling}s left allow $(awk -v c="$ceiling" -v t="$timeout" 'BEGIN { printf "%.1f", c / t }') times the reference's limit of ${timeout}s"
			log "guest $script: the limit of ${timeout}s scales to ${limit}s; only ${ceiling}s are left, so ${ceiling}s it is ($too_slow)"
			limit=$ceiling
		fi
		log "guest $script: slowdown ${slowdown}% (time taken against the reference machine); limit ${limit}s"
	fi
	size_now=$(($(stat -c %s "$rundir/results.log" 2>/dev/null || echo 0) +
		$(stat -c %s "$rundir/console.log" 2>/dev/null || echo 0)))
	if [ "$size_now" != "$last_size" ]; then
		last_size=$size_now last_output=$now
	fi
	if [ $((now - start)) -ge "$limit" ]; then
		stop=timeout
	elif [ $((now - last_output)) -ge "$quiet_limit" ]; then
		stop="hung: no output for $((now - last_output))s"
	elif grep -qa '^DPF-GUEST-EXIT ' "$rundir/results.log" 2>/dev/null; then
		for _ in $(seq 30); do
			kill -0 "$qemu_pid" 2>/dev/null || break
			sleep 1
		done
		kill "$qemu_pid" 2>/dev/null
		break
	fi
	if [ -n "$stop" ]; then
		kill "$qemu_pid" 2>/dev/null
		sleep 5
		kill -9 "$qemu_pid" 2>/dev/null
		break
	fi
	sleep 1
done
wait "$qemu_pid"
kill "$mce_pid" 2>/dev/null
wait "$mce_pid" 2>/dev/null
rm -f "$monitor"
set -e
elapsed=$(($(date +%s) - start))
echo "${slowdown:-}" > "$rundir/slowdown"
# The serial ports deliver CRLF line ends.
sed -i 's/\r$//' "$rundir/console.log" "$rundir/results.log"
if [ -n "$stop" ]; then
	status=$stop
	[ "$stop" != timeout ] || status="timeout: limit ${limit}s${slowdown:+ (slowdown ${slowdown}%)}"
	[ -z "$too_slow" ] || status="$status: $too_slow"
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
