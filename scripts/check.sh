#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make check: every test.
#   1. host: cargo test of the pure range algebra (unit + property tests);
#   2. lint: rustfmt and clippy on the Rust, checkpatch --strict on the series;
#   3. guest: the debug kernel (KASAN, lockdep, UBSAN, kmemleak, KUnit) boots
#      in QEMU with an emulated NVDIMM and runs KUnit and the kselftests; any
#      kernel splat fails the run (scripts/results.py). Its time limit scales
#      with the slowdown the guest measures (scripts/vm.sh);
#   4. compile-only: every prefix of the series builds, the head in the
#      production configuration and without Rust, each standalone fix
#      alone on the pristine base, and the build without Rust differs from
#      pristine + fixes only in the functions config/feature-off.allowed
#      names (scripts/bisect-check.sh), beside the guest run;
#   5. plain: the series in a kernel without Rust (config/plain.config,
#      built after the compile-only builds, beside the guest run) boots and
#      runs the removal tests that need no ranged core (XFS, ext4).
# Ends with a table of where the time went, then one line "N passed, N
# failed", and fails if anything failed.
. "$(dirname "$0")/common.sh"

logs=$DPF_OUT/check
rm -rf "$logs"
mkdir -p "$logs"
passed=0 failed=0

# Each stage says when it starts, so a slow one shows in the log, and the
# run ends with a table of where its time went, so that the log of a slow
# machine says which stage was slow.
stage_names=() stage_starts=()
stage() {	# stage NAME [DETAIL]
	log "check: $1${2:+ ($2)} ($((SECONDS / 60)) min $((SECONDS % 60)) s in)"
	stage_names+=("$1")
	stage_starts+=("$SECONDS")
}
stage_table() {
	local i n=${#stage_names[@]} end secs total=$SECONDS
	[ "$total" -gt 0 ] || total=1
	printf '\nWhere the time went (%d min %d s in all):\n' $((SECONDS / 60)) $((SECONDS % 60))
	printf '  %-44s %8s %6s\n' stage seconds share
	for ((i = 0; i < n; i++)); do
		end=$SECONDS
		[ $((i + 1)) -lt "$n" ] && end=${stage_starts[i + 1]}
		secs=$((end - stage_starts[i]))
		printf '  %-44s %8d %5d%%\n' "${stage_names[i]}" "$secs" $((secs * 100 / total))
	done
	[ -z "${guest_slowdown:-}" ] ||
		printf '  (the guest measured a slowdown of %s%% against the reference machine)\n' "$guest_slowdown"
}
pass() { passed=$((passed + 1)); echo "  PASS  $*"; }
fail() { failed=$((failed + 1)); echo "  FAIL  $*"; }
finish() {
	stage_table
	echo
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
	exit
}

# Set-up: a failure here is one failed test, and nothing else can run. The
# step runs in a subshell, so a helper of common.sh that dies ends only it.
setup() {
	local name=$1
	shift
	if ! ("$@") > "$logs/$name.log" 2>&1; then
		tail -n 40 "$logs/$name.log"
		fail "$name (log: $logs/$name.log)"
		finish
	fi
}

stage "set-up" "packages, kernel source, tree"
setup deps-and-source deps_and_source
setup tree "$DPF_TOP/scripts/tree.sh"

stage "host tests" "cargo test"
host=$DPF_TOP/tools/testing/dev_pagemap_failure
if (cd "$host" && CARGO_TARGET_DIR=$DPF_OUT/host-target cargo test --locked 2>&1) > "$logs/host.log"; then
	host_rc=0
else
	host_rc=1
fi
read -r hp hf < <(awk '/^test result:/ { p += $4; f += $6 } END { print p + 0, f + 0 }' "$logs/host.log")
echo "  host: $hp passed, $hf failed (cargo test)"
passed=$((passed + hp))
failed=$((failed + hf))
if [ $host_rc -ne 0 ] && [ "$hf" -eq 0 ]; then
	tail -n 30 "$logs/host.log"
	fail "host tests did not build or run (log: $logs/host.log)"
fi
[ "$hp" -gt 0 ] || fail "host tests: no test ran"

stage "lint"
# Every Rust file of the core, listed in the kernel tree.
if (cd "$KTREE" && rustfmt --check --edition 2021 --config-path .rustfmt.toml \
	mm/dev_pagemap_failure.rs mm/dev_pagemap_failure/*.rs mm/dev_pagemap_failure/ffi/*.rs rust/kernel/memremap.rs) > "$logs/rustfmt.log" 2>&1 &&
   (cd "$host" && cargo fmt --check) >> "$logs/rustfmt.log" 2>&1; then
	pass "rustfmt: kernel Rust and host crate are formatted"
else
	head -n 40 "$logs/rustfmt.log"
	fail "rustfmt (log: $logs/rustfmt.log)"
fi
series=$logs/series
rm -rf "$series"
git -C "$KTREE" format-patch -q -o "$series" "$KBASE_TAG..dpf"
# Debian's python3 (with python3-ply and python3-git) for spdxcheck.py.
# The kernel tree is Debian's source tarball, without upstream history, so
# checkpatch cannot look up the commit a Fixes: tag names; everything else
# it checks.
if (cd "$KTREE" && PATH=/usr/bin:/bin:$PATH scripts/checkpatch.pl --strict -q \
	--ignore UNKNOWN_COMMIT_ID "$series"/*.patch) > "$logs/checkpatch.log" 2>&1; then
	pass "checkpatch --strict: all $(ls "$series" | wc -l) patches of the series"
else
	grep -E '^(ERROR|WARNING|CHECK)|^#|^total' "$logs/checkpatch.log" | head -n 40
	fail "checkpatch --strict (log: $logs/checkpatch.log)"
fi

stage "debug kernel"
# Recompile the core every time, so its rustc and clippy diagnostics are in
# this build's log; any Rust diagnostic in the log fails the lint.
touch "$KTREE/mm/dev_pagemap_failure.rs"
setup kernel-debug "$DPF_TOP/scripts/kernel.sh" debug
if grep -qE '(RUSTC|CLIPPY).*mm/dev_pagemap_failure.o' "$logs/kernel-debug.log" &&
   ! grep -qE '^(warning|error)(\[|:)' "$logs/kernel-debug.log"; then
	pass "rustc and clippy (CLIPPY=1 kernel build): no Rust diagnostics"
else
	grep -E -A8 '^(warning|error)(\[|:)' "$logs/kernel-debug.log" | head -n 60
	fail "rustc/clippy diagnostics in the kernel build (log: $logs/kernel-debug.log)"
fi
stage "initramfs" "tools, selftests, modules"
setup initramfs "$DPF_TOP/scripts/initramfs.sh"

stage "guest run, compile-only builds beside it" "debug kernel, QEMU TCG, 2 GiB NVDIMM; every prefix of the series at nice 19"
# Every prefix of the series builds (what make patches checks too), and the
# head is built in the compile-only configurations (scripts/bisect-check.sh):
# production (the feature on, without its test interfaces) and without Rust.
# The guest runs on one host thread (one TCG thread), so the compile-only
# builds run beside it on the other core, at nice 19 so that they take
# nothing from it; the guest's slowdown and time limit are measured and
# scaled with them running. They touch nothing the guest uses (their own
# worktree and build trees).
# Then the plain kernel (no Rust), which boots after the debug guest.
nice -n 19 "$DPF_TOP/scripts/bisect-check.sh" "$logs/bisect" > "$logs/bisect.log" 2>&1 &
bisect_pid=$!
( wait_for_bisect() { while kill -0 "$bisect_pid" 2>/dev/null; do sleep 5; done; }
  wait_for_bisect
  nice -n 19 "$DPF_TOP/scripts/kernel.sh" plain > "$logs/kernel-plain.log" 2>&1
  echo $? > "$logs/kernel-plain.rc" ) &
plain_pid=$!
# The guest's limit: DPF_GUEST_TIMEOUT s on the reference machine (where
# the guest run takes about 1000 s: the margin is for a calibration that a
# busy host makes read low; a stalled test is caught sooner, by the guest's
# watchdog, and a dead guest by vm.sh's silence limit), scaled
# by the slowdown the guest measures (scripts/vm.sh), but never beyond what
# is left of CI's 90 minutes (DPF_CI_LIMIT s from the start of make check),
# less 2 min to judge the run and report.
run=$DPF_OUT/runs/debug-check
ci_left=$((${DPF_CI_LIMIT:-5400} - SECONDS - 120))
[ "$ci_left" -gt 60 ] || ci_left=60
"$DPF_TOP/scripts/vm.sh" -k debug -t "${DPF_GUEST_TIMEOUT:-1500}" -c "$ci_left" -o "$run" \
	-a "${DPF_GUEST_ARGS:-}" check || true
guest_slowdown=$(cat "$run/slowdown" 2>/dev/null || true)
stage "compile-only builds left after the guest"
bisect_ok=0
if wait "$bisect_pid"; then
	bisect_ok=1
	pass "bisectable: $(tail -n1 "$logs/bisect.log")"
else
	cat "$logs/bisect.log" | tail -n 30
	fail "bisectable series (log: $logs/bisect.log)"
fi
# The test interfaces are in the debug object (so the check can fail) and in
# no object of the production configuration: the head's, which the bisect
# check builds whether it verified the head before or not.
production=$KBUILD_DIR/bisect
test_files=(inject_range queue_pfns queue_error owner_delay_ms bench_lookup last_failure_ns)
missing_in_debug=() found_in_production=()
for name in "${test_files[@]}"; do
	grep -qa "$name" "$KBUILD_DIR/debug/mm/dev_pagemap_failure.o" || missing_in_debug+=("$name")
	! grep -qa "$name" "$production/mm/dev_pagemap_failure.o" || found_in_production+=("$name")
done
if [ ${#missing_in_debug[@]} -eq 0 ] && [ ${#found_in_production[@]} -eq 0 ] &&
   grep -qx 'CONFIG_DEV_PAGEMAP_FAILURE=y' "$production/.config" &&
   ! grep -qE '^CONFIG_(DEV_PAGEMAP_FAILURE_TEST|DEV_PAGEMAP_FAILURE_KUNIT_TEST|KUNIT)=' "$production/.config" &&
   [ $bisect_ok = 1 ] && [ -f "$production/mm/dev_pagemap_failure.o" ]; then
	pass "production configuration: the core builds silently, without test interfaces (${test_files[*]})"
else
	fail "production configuration ($production): in it: ${found_in_production[*]:-none}; missing from debug: ${missing_in_debug[*]:-none}"
fi
# A kernel with Rust and without the feature compiles the series' C exactly
# as one without Rust does, which the bisect check builds, as long as no C
# file of the series tests CONFIG_RUST.
rust_tests=$(git -C "$KTREE" diff "$KBASE_TAG" dpf -- '*.c' '*.h' | grep -E '^\+.*CONFIG_RUST\b' || true)
if [ -z "$rust_tests" ]; then
	pass "feature off: no C file of the series tests CONFIG_RUST, so the build without Rust stands for it"
else
	echo "$rust_tests" | head -n 10
	fail "feature off: the series' C tests CONFIG_RUST; build it with Rust and without the feature too"
fi
stage "judging the guest run"
python3 "$DPF_TOP/scripts/results.py" "$run" dev_pagemap_failure dev_pagemap_failure_registry dev_pagemap_failure_ffi 2>&1 | tee "$logs/guest.txt" || true
last=$(tail -n1 "$logs/guest.txt")
if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed,\ ([0-9]+)\ skipped$ ]]; then
	passed=$((passed + BASH_REMATCH[1]))
	failed=$((failed + BASH_REMATCH[2] + BASH_REMATCH[3]))
	[ "${BASH_REMATCH[3]}" -eq 0 ] ||
		echo "  (${BASH_REMATCH[3]} skipped guest tests count as failed: every test must run)"
else
	fail "judging the guest run (scripts/results.py) did not finish"
fi

stage "vm.memory_failure_recovery=0" "a ranged failure panics, as memory_failure() of one page does"
# One more boot of the debug kernel (scripts/guest/panic.sh): the guest
# injects a ranged failure of XFS data with recovery disabled, and its
# kernel must panic before handling it.
panic_run=$DPF_OUT/runs/panic
"$DPF_TOP/scripts/vm.sh" -k debug -t 300 -o "$panic_run" panic > "$logs/panic.log" 2>&1 || true
panic_line=$(grep -a -m1 'Kernel panic - not syncing' "$panic_run/console.log" 2>/dev/null |
	sed 's/^\[ *[0-9.]*\] //' || true)
if grep -qa '^DPF-PANIC-INJECT ' "$panic_run/results.log" 2>/dev/null &&
   ! grep -qa '^DPF-PANIC-SURVIVED' "$panic_run/results.log" &&
   [[ $panic_line == *"Memory failure on pages"* ]]; then
	pass "vm.memory_failure_recovery=0: a ranged failure panics ($panic_line)"
else
	tail -n 20 "$panic_run/results.log" "$logs/panic.log" 2>/dev/null
	fail "vm.memory_failure_recovery=0: no panic for a ranged failure (console: ${panic_line:-none}; run: $panic_run)"
fi

stage "plain kernel, its guest run" "no Rust, so no ranged core: XFS and ext4 removal through kill_dax()"
wait "$plain_pid"
if [ "$(cat "$logs/kernel-plain.rc" 2>/dev/null)" = 0 ]; then
	pass "plain kernel (no Rust) builds"
	prun=$DPF_OUT/runs/plain-check
	ci_left=$((${DPF_CI_LIMIT:-5400} - SECONDS - 60))
	[ "$ci_left" -gt 60 ] || ci_left=60
	"$DPF_TOP/scripts/vm.sh" -k plain -t "${DPF_PLAIN_TIMEOUT:-300}" -c "$ci_left" \
		-o "$prun" check || true
	python3 "$DPF_TOP/scripts/results.py" "$prun" 2>&1 | tee "$logs/plain-guest.txt" || true
	last=$(tail -n1 "$logs/plain-guest.txt")
	if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed,\ ([0-9]+)\ skipped$ ]]; then
		passed=$((passed + BASH_REMATCH[1]))
		failed=$((failed + BASH_REMATCH[2] + BASH_REMATCH[3]))
	else
		fail "judging the plain guest run (scripts/results.py) did not finish"
	fi
else
	tail -n 40 "$logs/kernel-plain.log"
	fail "plain kernel (no Rust) (log: $logs/kernel-plain.log)"
fi

finish
